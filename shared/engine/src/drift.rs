//! The daily drift check: every component's real state, read through its driver, against
//! the state revscale recorded. Drift is reported (a metric, an alert naming the
//! component and both states, an audit entry) and never silently "fixed", with one
//! exception: a kind that AWS brings back up by itself ([`crate::config::Kind::restarts_by_itself`]:
//! a stopped RDS instance or Aurora cluster is started again after 7 days) is taken
//! back to its recorded state, and that is audited and counted too.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::config::{Component, Config};
use crate::model::{ComponentId, ComponentState};
use crate::ports::{
    Alert, Apply, AuditRecord, ComponentDriver, Notifier, Observed, StateStore, StoreError, Written,
};

/// What the check found for one component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "finding", rename_all = "snake_case")]
pub enum Finding {
    /// Where the state says it is.
    Agrees { actual: String },
    /// On its way somewhere (starting, updating): looked at again tomorrow.
    Moving { actual: String },
    /// Not where the state says. `restored`: taken back to the recorded state (only a
    /// kind AWS restarts by itself); `restore_error`: the attempt failed.
    Drifted {
        actual: String,
        restored: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        restore_error: Option<String>,
    },
    /// The driver could not read it (no permission, throttled): neither drift nor not.
    Unreadable { error: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComponentDrift {
    pub component: ComponentId,
    pub kind: &'static str,
    pub recorded: ComponentState,
    #[serde(flatten)]
    pub finding: Finding,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct DriftReport {
    /// Why nothing was checked (a provisioning run holds the lock: its components are
    /// legitimately on the move).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    pub components: Vec<ComponentDrift>,
}

impl DriftReport {
    pub fn drifted(&self) -> impl Iterator<Item = &ComponentDrift> {
        self.components.iter().filter(|c| matches!(c.finding, Finding::Drifted { .. }))
    }

    pub fn restored(&self) -> impl Iterator<Item = &ComponentDrift> {
        self.components.iter().filter(|c| matches!(c.finding, Finding::Drifted { restored: true, .. }))
    }
}

/// One component: what `observed` says of the `recorded` state. Pure.
pub fn compare(recorded: ComponentState, observed: &Observed) -> Finding {
    let actual = observed.actual.clone();
    if observed.agrees_with(recorded) {
        Finding::Agrees { actual }
    } else if observed.states.is_empty() && is_on_the_move(&actual) {
        Finding::Moving { actual }
    } else {
        Finding::Drifted { actual, restored: false, restore_error: None }
    }
}

/// Drivers describe a resource on its way with its AWS status; an `Observed` with no
/// state that is not on its way (deleted, scaled by hand, FAILED) is drift.
fn is_on_the_move(actual: &str) -> bool {
    let lower = actual.to_ascii_lowercase();
    [
        "progress",
        "starting",
        "stopping",
        "creating",
        "updating",
        "deleting",
        "pending",
        "modifying",
        "rebooting",
    ]
    .iter()
    .any(|word| lower.contains(word))
}

/// Whether a drifted component is taken back to `recorded`: only a kind AWS restarts by
/// itself, found up (HOT) while it was recorded down.
pub fn restores(component: &Component, recorded: ComponentState, observed: &Observed) -> bool {
    component.driver.as_kind().restarts_by_itself()
        && recorded != ComponentState::Hot
        && observed.agrees_with(ComponentState::Hot)
}

/// Reads every switchable component through `driver` and compares. Not a provisioning
/// step: it takes no lock and skips the whole check while a run holds it.
pub async fn check<S: StateStore, D: ComponentDriver>(
    config: &Config,
    store: &S,
    driver: &D,
    today: NaiveDate,
) -> Result<DriftReport, StoreError> {
    let state = match store.load_state().await? {
        Some(v) => v.value,
        None => crate::state::SystemState::initial(config, today),
    };
    if let Some(run) = &state.provisioning {
        return Ok(DriftReport {
            skipped: Some(format!("provisioning run {} holds the lock", run.decision_id)),
            components: vec![],
        });
    }
    let mut report = DriftReport::default();
    for id in &config.activation_order {
        let Some(component) = config.component(id) else { continue };
        if component.is_always_on() {
            continue;
        }
        let record = state.components.get(id);
        let recorded = record.map_or(ComponentState::Cold, |r| r.state);
        if recorded.is_transitional() {
            continue;
        }
        let finding = match driver.observe(component).await {
            Err(e) => Finding::Unreadable { error: e.to_string() },
            Ok(observed) => match compare(recorded, &observed) {
                Finding::Drifted { actual, .. } if restores(component, recorded, &observed) => {
                    let saved = record.and_then(|r| r.saved_capacity);
                    let result = driver.apply(Apply { component, target: recorded, saved }).await;
                    Finding::Drifted {
                        actual,
                        restored: result.is_ok(),
                        restore_error: result.err().map(|e| e.to_string()),
                    }
                }
                other => other,
            },
        };
        report.components.push(ComponentDrift {
            component: id.clone(),
            kind: component.driver.kind(),
            recorded,
            finding,
        });
    }
    Ok(report)
}

/// The lines an alert and the audit entry carry, one per drifted component.
pub fn describe(report: &DriftReport) -> Vec<String> {
    report
        .drifted()
        .map(|d| {
            let Finding::Drifted { actual, restored, restore_error } = &d.finding else {
                return String::new();
            };
            let action = match (restored, restore_error) {
                (true, _) => format!("; taken back to {} (AWS restarts it by itself)", d.recorded),
                (false, Some(e)) => format!("; taking it back to {} failed: {e}", d.recorded),
                (false, None) => "; left as it is: revscale never fixes drift silently".to_string(),
            };
            format!("{} ({}): recorded {}, actually {actual}{action}", d.component, d.kind, d.recorded)
        })
        .collect()
}

/// Records the day's drift in the audit trail (once per day: `drift-YYYY-MM-DD`, the
/// state written back unchanged under its version) and alerts, only when the record
/// is new, so a retried check neither alerts twice nor loses the entry. Returns
/// whether it alerted.
pub async fn record<S: StateStore, N: Notifier>(
    store: &S,
    notifier: &N,
    report: &DriftReport,
    now: DateTime<Utc>,
    today: NaiveDate,
) -> Result<bool, StoreError> {
    let lines = describe(report);
    if lines.is_empty() {
        return Ok(false);
    }
    let Some(current) = store.load_state().await? else { return Ok(false) };
    let record = AuditRecord {
        id: format!("drift-{today}"),
        at: now,
        kind: "drift".into(),
        actor: "revscale".into(),
        decision: None,
        events: vec![],
        note: lines.join("\n"),
        state_version: None,
    };
    match store.record_decision(&record, &current.value, Some(current.version)).await? {
        Written::AlreadyExists => Ok(false),
        Written::Created => {
            let alert = Alert {
                subject: format!("revscale: {} component(s) not where revscale left them", lines.len()),
                message: format!(
                    "The daily drift check ({today}) read each component through its driver:\n\n{}\n\n\
                     Check who changed them. revscale's next transition starts from what it recorded.",
                    lines.join("\n")
                ),
            };
            Ok(notifier.notify(&alert).await.is_ok())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ComponentState::{Cold, Hot, Warm};

    #[test]
    fn a_stopped_database_agrees_with_warm_and_with_cold() {
        let stopped = Observed::at(&[Cold, Warm], "stopped");
        assert!(matches!(compare(Warm, &stopped), Finding::Agrees { .. }));
        assert!(matches!(compare(Cold, &stopped), Finding::Agrees { .. }));
        assert!(matches!(compare(Hot, &stopped), Finding::Drifted { .. }));
    }

    #[test]
    fn a_resource_on_its_way_is_moving_and_one_deleted_or_scaled_by_hand_is_drift() {
        assert!(matches!(compare(Warm, &Observed::moving("starting")), Finding::Moving { .. }));
        assert!(matches!(compare(Hot, &Observed::moving("UPDATE_IN_PROGRESS")), Finding::Moving { .. }));
        assert!(matches!(
            compare(Hot, &Observed::at(&[], "no service (deleted outside revscale?)")),
            Finding::Drifted { .. }
        ));
        assert!(matches!(
            compare(Hot, &Observed::at(&[], "desiredCount 7, running 7")),
            Finding::Drifted { .. }
        ));
    }

    use crate::ports::{AuditStore, DriverError};
    use crate::state::{ComponentRecord, SystemState};
    use crate::testing::{MemoryNotifier, MemoryStore, ScriptedDriver, at, day};

    /// The shipped configuration with hume_ai (level 2) an RDS instance.
    fn config() -> Config {
        let mut tree: serde_norway::Value = serde_norway::from_str(crate::DEFAULT_CONFIG_YAML).unwrap();
        tree["components"]["hume_ai"]["driver"] =
            serde_norway::from_str("{kind: rds_instance, db_instance_identifier: reports}").unwrap();
        Config::from_yaml(&serde_norway::to_string(&tree).unwrap()).unwrap()
    }

    async fn store_with(config: &Config, states: &[(&str, ComponentState)]) -> MemoryStore {
        let store = MemoryStore::default();
        let mut state = SystemState::initial(config, day("2026-12-01"));
        for (id, s) in states {
            state.components.insert(ComponentId::new(*id), ComponentRecord::settled(*s, day("2026-12-01")));
        }
        let seed = crate::testing::seed_record("seed", at("2026-12-01"));
        store.record_decision(&seed, &state, None).await.unwrap();
        store
    }

    #[test]
    fn a_database_aws_restarted_is_stopped_again_audited_once_and_alerted_once() {
        pollster::block_on(async {
            let config = config();
            let store = store_with(&config, &[("hume_ai", Warm), ("eks_control_plane", Hot)]).await;
            let driver = ScriptedDriver::default()
                .on_observe("hume_ai", vec![Ok(Observed::at(&[Hot], "available"))])
                .on_observe("eks_control_plane", vec![Ok(Observed::at(&[Warm, Hot], "cluster ACTIVE"))])
                .on_observe("k8s_workers", vec![Ok(Observed::at(&[Cold], "no node group"))])
                .on_observe("vault_ha", vec![Err(DriverError::Transient("throttled".into()))])
                .on_observe("dat_iq", vec![Ok(Observed::at(&[Cold], "off"))])
                .on_observe("full_escrow", vec![Ok(Observed::at(&[Cold], "off"))])
                .on_observe("tee", vec![Ok(Observed::at(&[Cold], "no node group"))]);
            let report = check(&config, &store, &driver, day("2026-12-05")).await.unwrap();
            let drifted: Vec<_> = report.drifted().map(|d| d.component.as_str()).collect();
            assert_eq!(drifted, ["hume_ai"], "{report:?}");
            assert_eq!(report.restored().count(), 1);
            assert_eq!(driver.calls(), ["hume_ai -> warm"], "only the restarted database is driven");
            assert!(report.components.iter().any(
                |c| c.component.as_str() == "vault_ha" && matches!(c.finding, Finding::Unreadable { .. })
            ));
            let notifier = MemoryNotifier::default();
            let now = at("2026-12-05");
            assert!(record(&store, &notifier, &report, now, day("2026-12-05")).await.unwrap());
            assert!(!record(&store, &notifier, &report, now, day("2026-12-05")).await.unwrap(), "a retry");
            let sent = notifier.sent.lock().unwrap().clone();
            assert_eq!(sent.len(), 1);
            assert!(
                sent[0].message.contains(
                    "hume_ai (rds_instance): recorded warm, actually available; taken back to warm"
                ),
                "{}",
                sent[0].message
            );
            let trail = store.recent_audit(10, None).await.unwrap();
            assert_eq!(trail.iter().filter(|r| r.kind == "drift").count(), 1);
        });
    }

    #[test]
    fn a_cluster_changed_by_hand_is_reported_and_left_alone() {
        pollster::block_on(async {
            let config = config();
            let store = store_with(&config, &[("eks_control_plane", Hot)]).await;
            let driver = ScriptedDriver::default()
                .on_observe("eks_control_plane", vec![Ok(Observed::at(&[Cold], "no cluster"))]);
            let report = check(&config, &store, &driver, day("2026-12-05")).await.unwrap();
            let d = report.drifted().next().unwrap();
            assert_eq!((d.component.as_str(), d.recorded), ("eks_control_plane", Hot));
            assert!(
                matches!(&d.finding, Finding::Drifted { restored: false, actual, .. } if actual == "no cluster")
            );
            assert!(driver.calls().is_empty(), "drift is never fixed silently");
        });
    }

    #[test]
    fn nothing_is_checked_while_a_provisioning_run_holds_the_lock() {
        pollster::block_on(async {
            let config = config();
            let store = MemoryStore::default();
            let mut state = SystemState::initial(&config, day("2026-12-01"));
            crate::testing::stick_run(&mut state, "dec-1");
            let seed = crate::testing::seed_record("seed", at("2026-12-01"));
            store.record_decision(&seed, &state, None).await.unwrap();
            let driver = ScriptedDriver::default();
            let report = check(&config, &store, &driver, day("2026-12-05")).await.unwrap();
            assert!(report.skipped.unwrap().contains("dec-1"));
            assert!(report.components.is_empty());
        });
    }
}
