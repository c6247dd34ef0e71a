//! The daily drift check: every component's real state, read through its driver, against
//! the state revscale recorded. Drift is reported (a metric, an alert naming the
//! component and both states, an audit entry) and never silently "fixed", with one
//! exception: a kind that AWS brings back up by itself ([`crate::config::Kind::restarts_by_itself`]:
//! a stopped RDS instance or Aurora cluster is started again after 7 days) is taken
//! back to its recorded state, and that is audited and counted too.

use std::collections::BTreeSet;

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::Serialize;

use crate::config::{Component, Config};
use crate::model::{ComponentId, ComponentState, Mode, Transition};
use crate::ports::{
    Alert, Apply, AuditRecord, ComponentDriver, Notifier, Observed, StateStore, StoreError, Written,
};
use crate::state::{ComponentRecord, SystemState};

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
        /// The check found it may be taken back ([`restores`]); [`restore`] does it.
        #[serde(skip)]
        restorable: bool,
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
    } else if observed.moving {
        Finding::Moving { actual }
    } else {
        Finding::Drifted { actual, restored: false, restore_error: None, restorable: false }
    }
}

/// How long AWS keeps a database stopped before it starts it again.
pub const AWS_RESTARTS_AFTER_DAYS: u64 = 7;

/// Whether a drifted component may be taken back to `recorded`: only a kind AWS
/// restarts by itself (a database), found up (HOT) while recorded down for at least
/// the 7 days after which AWS starts it, outside shadow mode (which switches nothing).
/// A database someone started on purpose within those days is reported, not stopped.
pub fn restores(
    component: &Component,
    record: &ComponentRecord,
    observed: &Observed,
    mode: Mode,
    today: NaiveDate,
) -> bool {
    component.driver.as_kind().restarts_by_itself()
        && mode != Mode::Shadow
        && record.state != ComponentState::Hot
        && observed.agrees_with(ComponentState::Hot)
        && record.since + Days::new(AWS_RESTARTS_AFTER_DAYS) <= today
}

/// The components today's decision or a change waiting for approval is about to move:
/// the check leaves them alone (they are on their way, and stopping a database a run is
/// about to start would fail that run).
pub fn about_to_move(config: &Config, state: &SystemState, decided: &[Transition]) -> BTreeSet<ComponentId> {
    let mut ids: BTreeSet<ComponentId> = decided.iter().map(|t| t.component.clone()).collect();
    if let Some(pending) = &state.pending_approval {
        let (low, high) = (pending.from.min(pending.to), pending.from.max(pending.to));
        ids.extend(
            config.components.values().filter(|c| c.level > low && c.level <= high).map(|c| c.id.clone()),
        );
    }
    ids
}

/// Reads every switchable component through `driver` and compares; changes nothing.
/// Skips the whole check while a provisioning run holds the lock, and the components
/// today's `decided` transitions or a change waiting for approval are about to move
/// ([`about_to_move`], on the state it reads: one read of the state for the whole check).
pub async fn check<S: StateStore, D: ComponentDriver>(
    config: &Config,
    store: &S,
    driver: &D,
    today: NaiveDate,
    decided: &[Transition],
) -> Result<DriftReport, StoreError> {
    let stored = store.load_state().await?;
    let state = match &stored {
        Some(v) => v.value.clone(),
        None => SystemState::initial(config, today),
    };
    let leave_alone = about_to_move(config, &state, decided);
    if let Some(run) = &state.provisioning {
        return Ok(DriftReport {
            skipped: Some(format!("provisioning run {} holds the lock", run.decision_id)),
            components: vec![],
        });
    }
    let mode = state.mode(config);
    let mut report = DriftReport::default();
    for id in &config.activation_order {
        let Some(component) = config.component(id) else { continue };
        if component.is_always_on() || leave_alone.contains(id) {
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
                // Nothing stored yet: nothing was recorded to take it back to.
                Finding::Drifted { actual, .. }
                    if stored.is_some()
                        && record.is_some_and(|r| restores(component, r, &observed, mode, today)) =>
                {
                    Finding::Drifted { actual, restored: false, restore_error: None, restorable: true }
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

/// Takes each restorable component back to its recorded state, one at a time: first
/// the claim (an audit entry `drift-restore-<day>-<component>`, written with the state
/// unchanged under the version just read, so that it fails if anything changed the
/// state since: a run began, an approval came in), then the driver's call. A claim
/// that fails leaves the component reported, not restored.
pub async fn restore<S: StateStore, D: ComponentDriver>(
    config: &Config,
    store: &S,
    driver: &D,
    mut report: DriftReport,
    now: DateTime<Utc>,
    today: NaiveDate,
) -> Result<DriftReport, StoreError> {
    for drift in &mut report.components {
        let Finding::Drifted { restorable: true, restored, restore_error, .. } = &mut drift.finding else {
            continue;
        };
        let Some(component) = config.component(&drift.component) else { continue };
        let Some(current) = store.load_state().await? else { continue };
        let record = current.value.components.get(&drift.component);
        let still = current.value.provisioning.is_none()
            && record.is_some_and(|r| r.state == drift.recorded && r.in_flight.is_none());
        if !still {
            *restore_error = Some("the state changed since the check: left for tomorrow's".into());
            continue;
        }
        let claim = AuditRecord {
            id: format!("drift-restore-{today}-{}", drift.component),
            at: now,
            kind: "drift".into(),
            actor: "revscale".into(),
            decision: None,
            events: vec![],
            note: format!(
                "{} found up while recorded {}: AWS starts a database stopped for {AWS_RESTARTS_AFTER_DAYS} days; taking it back",
                drift.component, drift.recorded
            ),
            state_version: None,
        };
        match store.record_decision(&claim, &current.value, Some(current.version)).await {
            Ok(Written::Created) => {}
            // A retried check already claimed (and took) it today.
            Ok(Written::AlreadyExists) => continue,
            Err(StoreError::Conflict(_)) => {
                *restore_error =
                    Some("the state changed while claiming it: left for tomorrow's check".into());
                continue;
            }
            Err(e) => return Err(e),
        }
        let saved = record.and_then(|r| r.saved_capacity);
        match driver.apply(Apply { component, target: drift.recorded, saved }).await {
            Ok(()) => *restored = true,
            Err(e) => *restore_error = Some(e.to_string()),
        }
    }
    Ok(report)
}

/// The lines an alert and the audit entry carry, one per drifted component.
pub fn describe(report: &DriftReport) -> Vec<String> {
    report
        .drifted()
        .map(|d| {
            let Finding::Drifted { actual, restored, restore_error, .. } = &d.finding else {
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
        let mut state = SystemState::initial(config, day("2026-11-20"));
        for (id, s) in states {
            state.components.insert(ComponentId::new(*id), ComponentRecord::settled(*s, day("2026-11-20")));
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
            let report = check(&config, &store, &driver, day("2026-12-05"), &[]).await.unwrap();
            let report =
                restore(&config, &store, &driver, report, at("2026-12-05"), day("2026-12-05")).await.unwrap();
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
            let mut ids: Vec<&str> =
                trail.iter().filter(|r| r.kind == "drift").map(|r| r.id.as_str()).collect();
            ids.sort_unstable();
            assert_eq!(
                ids,
                ["drift-2026-12-05", "drift-restore-2026-12-05-hume_ai"],
                "the claim and the day's entry"
            );
        });
    }

    #[test]
    fn a_cluster_changed_by_hand_is_reported_and_left_alone() {
        pollster::block_on(async {
            let config = config();
            let store = store_with(&config, &[("eks_control_plane", Hot)]).await;
            let driver = ScriptedDriver::default()
                .on_observe("eks_control_plane", vec![Ok(Observed::at(&[Cold], "no cluster"))]);
            let report = check(&config, &store, &driver, day("2026-12-05"), &[]).await.unwrap();
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
            let report = check(&config, &store, &driver, day("2026-12-05"), &[]).await.unwrap();
            assert!(report.skipped.unwrap().contains("dec-1"));
            assert!(report.components.is_empty());
        });
    }

    /// The database stopped since `since` in a store in `mode`, found up on 2026-12-05.
    async fn restarted_database(since: &str, mode: Mode) -> (Config, MemoryStore, ScriptedDriver) {
        let config = config();
        let store = MemoryStore::default();
        let mut state = SystemState::initial(&config, day(since));
        state.components.insert(ComponentId::new("hume_ai"), ComponentRecord::settled(Warm, day(since)));
        state.set_mode(mode, &config);
        store.record_decision(&crate::testing::seed_record("seed", at(since)), &state, None).await.unwrap();
        let mut driver = ScriptedDriver::default();
        for id in ["eks_control_plane", "k8s_workers", "vault_ha", "dat_iq", "full_escrow", "tee"] {
            driver = driver.on_observe(id, vec![Ok(Observed::at(&[Cold], "absent"))]);
        }
        let driver = driver.on_observe("hume_ai", vec![Ok(Observed::at(&[Hot], "available"))]);
        (config, store, driver)
    }

    #[test]
    fn a_database_up_is_never_stopped_in_shadow_mode_nor_within_the_days_aws_keeps_it_stopped() {
        pollster::block_on(async {
            for (since, mode, why) in [
                ("2026-11-20", Mode::Shadow, "shadow mode switches nothing"),
                ("2026-12-01", Mode::Auto, "stopped 4 days ago: someone started it, not AWS"),
            ] {
                let (config, store, driver) = restarted_database(since, mode).await;
                let report = check(&config, &store, &driver, day("2026-12-05"), &[]).await.unwrap();
                let report = restore(&config, &store, &driver, report, at("2026-12-05"), day("2026-12-05"))
                    .await
                    .unwrap();
                assert_eq!(report.drifted().count(), 1, "{why}: still reported");
                assert_eq!(report.restored().count(), 0, "{why}");
                assert!(driver.calls().is_empty(), "{why}");
            }
        });
    }

    #[test]
    fn a_database_todays_decision_or_a_pending_change_is_about_to_move_is_left_alone() {
        pollster::block_on(async {
            let (config, store, driver) = restarted_database("2026-11-20", Mode::Auto).await;
            let decided = [crate::model::Transition {
                component: ComponentId::new("hume_ai"),
                kind: crate::model::TransitionKind::Deploy,
            }];
            let report = check(&config, &store, &driver, day("2026-12-05"), &decided).await.unwrap();
            assert!(report.components.iter().all(|c| c.component.as_str() != "hume_ai"));
            assert!(driver.calls().is_empty());
        });
    }

    #[test]
    fn a_state_changed_between_the_check_and_the_restore_stops_nothing() {
        pollster::block_on(async {
            let (config, store, driver) = restarted_database("2026-11-20", Mode::Auto).await;
            let report = check(&config, &store, &driver, day("2026-12-05"), &[]).await.unwrap();
            // Meanwhile an approval's run begins: the lock is taken.
            let mut current = store.load_state().await.unwrap().unwrap();
            crate::testing::stick_run(&mut current.value, "dec-approved");
            let record = crate::testing::seed_record("run-begin", at("2026-12-05"));
            store.record_decision(&record, &current.value, Some(current.version)).await.unwrap();
            let report =
                restore(&config, &store, &driver, report, at("2026-12-05"), day("2026-12-05")).await.unwrap();
            assert_eq!(report.restored().count(), 0);
            assert!(driver.calls().is_empty(), "nothing stopped under a run");
            let d = report.drifted().next().unwrap();
            assert!(
                matches!(&d.finding, Finding::Drifted { restore_error: Some(e), .. } if e.contains("state changed"))
            );
        });
    }
}
