//! What revscale remembers between two evaluations, and the only ways it may change.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{Billing, Component, Config};
use crate::history::History;
use crate::identity;
use crate::model::{
    Capacity, Cause, ComponentId, ComponentState, DecisionId, IllegalTransition, Mode, ModeSource,
    Transition, TransitionKind,
};
use crate::money::{Currency, Money};
use crate::runway::CashBalance;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentRecord {
    pub state: ComponentState,
    /// The move in progress while the state is transitional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight: Option<TransitionKind>,
    /// When the component reached its current state (cool-down counts from here).
    pub since: NaiveDate,
    /// The last day a deploy (COLD -> WARM) finished: pre-warming deploys a component
    /// at most once per 90 days while the level stays the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed_on: Option<NaiveDate>,
    /// What ran at HOT when it last went WARM (never a capacity of 0), for HOT to
    /// restore exactly, unless the configuration fixes one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved_capacity: Option<Capacity>,
}

impl ComponentRecord {
    /// A component at rest in `state` since `since`, with no deploy on record.
    pub fn settled(state: ComponentState, since: NaiveDate) -> Self {
        ComponentRecord { state, in_flight: None, since, deployed_on: None, saved_capacity: None }
    }

    /// Keeps `observed` as HOT's capacity, if it is one: a component seen at 0 (scaled
    /// down by hand, or never up) leaves what was saved before as it is.
    pub fn save_capacity(&mut self, observed: Option<Capacity>) -> bool {
        match observed {
            Some(capacity) if !capacity.is_zero() => {
                self.saved_capacity = Some(capacity);
                true
            }
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Breaker {
    pub consecutive_failures: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_on: Option<NaiveDate>,
}

/// Where the circuit breaker stands on a given day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerStatus {
    Closed,
    /// Open until the given day, when one attempt is allowed.
    Open {
        until: NaiveDate,
    },
    /// The cool-down is over: one attempt may run; a failure re-opens it.
    HalfOpen,
}

impl Breaker {
    pub fn status(&self, config: &Config, today: NaiveDate) -> BreakerStatus {
        match self.opened_on {
            None => BreakerStatus::Closed,
            Some(opened) => {
                let until = opened + chrono::Days::new(u64::from(config.breaker.cooldown_days));
                if today < until { BreakerStatus::Open { until } } else { BreakerStatus::HalfOpen }
            }
        }
    }
}

/// A manual pin of the level, effective only once approved by someone else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    pub id: String,
    pub level: u8,
    /// Last day the pin holds (inclusive).
    pub until: NaiveDate,
    pub reason: String,
    pub requested_by: String,
    pub requested_on: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    #[serde(default)]
    pub cancelled: bool,
}

impl Override {
    /// Approved by another person than the requester (persons, not strings: see
    /// [`crate::identity`]), not cancelled, not expired.
    pub fn is_active(&self, today: NaiveDate) -> bool {
        let approved_by_another =
            self.approved_by.as_ref().is_some_and(|by| !identity::same_person(by, &self.requested_by));
        !self.cancelled && approved_by_another && today <= self.until
    }
}

/// A request to take down everything revscale made (`revscale drain`), ahead of a
/// teardown. Once a second person approves it, the engine moves every component it
/// manages to COLD and level 0, in every mode, and starts nothing until it is
/// cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drain {
    pub reason: String,
    pub requested_by: String,
    pub requested_on: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
}

impl Drain {
    /// Approved, by another person than the requester (persons, not strings: an
    /// Identity Center user under two permission sets is one person).
    pub fn is_active(&self) -> bool {
        self.approved_by.as_ref().is_some_and(|by| !identity::same_person(by, &self.requested_by))
    }

    /// What an approver names to approve this drain and no other: stable for the
    /// request, different for a drain requested again by someone else or for another
    /// reason.
    pub fn id(&self) -> String {
        // 64 bits: finding a reason whose tag collides with another's drain is out of
        // reach, so an approver's id cannot be made to name a drain they never saw.
        let digest = Sha256::digest(format!("{}\n{}", self.requested_by, self.reason).as_bytes());
        let tag: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("drain-{}-{tag}", self.requested_on.format("%Y%m%d"))
    }
}

/// A level change the engine wants but that waits for a human.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingApproval {
    pub from: u8,
    pub to: u8,
    /// Why the change is wanted: an approval holds for this change for this reason
    /// only (none on approvals recorded before causes were).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause>,
    pub requested_on: NaiveDate,
    pub extra_monthly_cost: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    /// The day it was approved: an approval the engine could not act on (no figures
    /// yet, a run in progress) lapses `safety.approval_expiry_days` later.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_on: Option<NaiveDate>,
}

impl PendingApproval {
    /// What an approver names to approve this change and no other: the move, its
    /// cause and the day it was proposed. A change replaced by another (a churn drop
    /// where growth was proposed) has another id.
    pub fn id(&self) -> String {
        let cause = self.cause.map_or_else(|| "change".to_string(), |c| c.to_string().replace(' ', "-"));
        // The cost it adds is part of what was reviewed: the same move made dearer (a
        // pushed config with other costs) is another change, with another id.
        let digest = Sha256::digest(format!("{}", self.extra_monthly_cost).as_bytes());
        let tag: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
        format!("pending-{}-L{}-L{}-{cause}-{tag}", self.requested_on.format("%Y%m%d"), self.from, self.to)
    }
}

/// The lock and the journal of one run, kept in the state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvisioningRun {
    pub decision_id: DecisionId,
    pub from_level: u8,
    pub to_level: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause>,
    pub transitions: Vec<Transition>,
    /// `transitions[..committed]` are done.
    pub committed: usize,
    pub started_at: DateTime<Utc>,
    /// When the step in progress started, for `provisioning_duration_seconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_started_at: Option<DateTime<Utc>>,
    /// Set by the first failed step: rollback is under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<RunFailure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undoing: Option<Undo>,
    /// What rollback has undone so far, in order.
    #[serde(default)]
    pub undone: Vec<Transition>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFailure {
    /// The stable error name the run ends with (`TransitionFailed`, ...).
    pub error: String,
    pub cause: String,
}

/// One rollback step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Undo {
    /// A transition that failed half-way: drive the component back where it started.
    Abort { transition: Transition },
    /// A committed transition: run its inverse.
    Reverse { transition: Transition },
}

impl Undo {
    /// The move being made and the state the driver must reach.
    pub fn target(&self) -> (Transition, ComponentState) {
        match self {
            Undo::Abort { transition } => (transition.clone(), transition.kind.from_state()),
            Undo::Reverse { transition } => {
                let inverse =
                    Transition { component: transition.component.clone(), kind: transition.kind.inverse() };
                let to = inverse.kind.to_state();
                (inverse, to)
            }
        }
    }
}

/// Everything revscale remembers between evaluations. Revenue and cost history is not
/// here: it is read from the snapshots, so alerts and churn are derived, not stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemState {
    pub level: u8,
    /// The day the current level was committed; sustained-overrun windows start after it.
    pub level_since: NaiveDate,
    pub components: BTreeMap<ComponentId, ComponentRecord>,
    pub breaker: Breaker,
    #[serde(default)]
    pub overrides: Vec<Override>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_approval: Option<PendingApproval>,
    /// A drain requested or in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain: Option<Drain>,
    /// The mode an operator set (`revscale mode`); `None` follows the deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// The deployment's mode when the operator set `mode`. A deploy with another mode
    /// wins over the operator's choice, so that redeploying with `Mode=shadow` stops a
    /// system running in auto.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode_set_over: Option<Mode>,
    /// The provisioning run in progress: its lock and journal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning: Option<ProvisioningRun>,
    /// The company's cash as an operator last set it (`revscale cash set`), for the
    /// runway guard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cash: Option<CashBalance>,
    /// Optimistic-locking version; every stored write increments it.
    #[serde(default)]
    pub version: u64,
}

/// Why a cash figure was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CashRefused {
    #[error("cash is in {given}, the configuration in {expected}: give it in {expected}")]
    Currency { given: Currency, expected: Currency },
    #[error("cash {0} is negative: give the balance on the day, 0 or more")]
    Negative(Money),
    #[error("cash as of {as_of} is in the future (today is {today}): give the day the balance was true")]
    Future { as_of: NaiveDate, today: NaiveDate },
    #[error(
        "cash as of {as_of} is more than 90 days before today ({today}): too old to estimate the runway from; give a recent balance"
    )]
    TooOld { as_of: NaiveDate, today: NaiveDate },
}

impl SystemState {
    /// A fresh install: level 0, bootstrap components HOT, everything else COLD.
    pub fn initial(config: &Config, today: NaiveDate) -> SystemState {
        let hot = config.components_up_to(0);
        let components = config
            .components
            .keys()
            .map(|id| {
                let state = if hot.contains(id) { ComponentState::Hot } else { ComponentState::Cold };
                (id.clone(), ComponentRecord::settled(state, today))
            })
            .collect();
        SystemState {
            level: 0,
            level_since: today,
            components,
            breaker: Breaker::default(),
            overrides: Vec::new(),
            pending_approval: None,
            drain: None,
            mode: None,
            mode_set_over: None,
            provisioning: None,
            cash: None,
            version: 0,
        }
    }

    /// The mode in force: the operator's, as long as the deployment's mode is the one
    /// it was set over; otherwise the deployment's (`config.mode`, which the stack's
    /// `Mode` parameter sets). A choice stored before its deployment mode was recorded
    /// still holds.
    pub fn mode(&self, config: &Config) -> Mode {
        self.mode_in_force(config).0
    }

    pub fn mode_in_force(&self, config: &Config) -> (Mode, ModeSource) {
        match self.mode {
            Some(mode) if self.mode_set_over.is_none_or(|deployed| deployed == config.mode) => {
                (mode, ModeSource::Operator)
            }
            _ => (config.mode, ModeSource::Deployment),
        }
    }

    /// Forgets an operator's mode a deploy has replaced, so that a later deploy back to
    /// the mode it was set over does not bring it back; pins a choice stored before the
    /// deployed mode was recorded to the deployment in force. Every stored write of the
    /// state applies it.
    pub fn settle_mode(&mut self, config: &Config) {
        match (self.mode, self.mode_set_over) {
            (Some(_), Some(over)) if over != config.mode => {
                self.mode = None;
                self.mode_set_over = None;
            }
            (Some(_), None) => self.mode_set_over = Some(config.mode),
            _ => {}
        }
    }

    /// An operator's choice, which holds until a deploy changes the deployment's mode.
    pub fn set_mode(&mut self, mode: Mode, config: &Config) {
        self.mode = Some(mode);
        self.mode_set_over = Some(config.mode);
    }

    /// Records the company's cash on `as_of`, as `by` says on `today`: refused in
    /// another currency than the configuration's (no rate makes a balance comparable
    /// with a burn), negative, or dated after today.
    pub fn set_cash(
        &mut self,
        config: &Config,
        amount: Money,
        as_of: NaiveDate,
        by: &str,
        today: NaiveDate,
    ) -> Result<(), CashRefused> {
        if amount.currency != config.currency {
            return Err(CashRefused::Currency { given: amount.currency, expected: config.currency });
        }
        if amount.is_negative() {
            return Err(CashRefused::Negative(amount));
        }
        if as_of > today {
            return Err(CashRefused::Future { as_of, today });
        }
        if (today - as_of).num_days() > crate::runway::CASH_UNKNOWN_DAYS {
            return Err(CashRefused::TooOld { as_of, today });
        }
        self.cash = Some(CashBalance { amount, as_of, set_by: by.to_owned(), set_on: today });
        Ok(())
    }

    pub fn component_state(&self, id: &ComponentId) -> ComponentState {
        self.components.get(id).map_or(ComponentState::Cold, |r| r.state)
    }

    /// Monthly cost of the managed components in their current states.
    pub fn managed_cost(&self, config: &Config) -> Money {
        self.cost_of(config, |_| true)
    }

    /// Monthly cost of the components billed by AWS in their current states: what Cost
    /// Explorer shows of them.
    pub fn aws_billed_cost(&self, config: &Config) -> Money {
        self.cost_of(config, |c| c.billing == Billing::Aws)
    }

    /// The production cost of a day: Cost Explorer's figure plus the configured cost
    /// of the components billed outside AWS, in their current states. The evaluator and
    /// the simulator both take their cost from here.
    pub fn production_cost(&self, config: &Config, aws_bill: Money) -> Money {
        let external = self.cost_of(config, |c| c.billing == Billing::External);
        Money::from_minor(aws_bill.minor.saturating_add(external.minor), config.currency)
    }

    /// The history the rules decide on: each day's collected (Cost Explorer) cost plus
    /// what is billed outside AWS for the components as they stand now.
    pub fn production_history(&self, config: &Config, billed: &History) -> History {
        // What `production_cost` adds is the same every day (the components as they
        // stand now): summed once, not once a day (a forecast runs this millions of
        // times).
        let external = self.cost_of(config, |c| c.billing == Billing::External);
        billed.with_costs(|aws| Money::from_minor(aws.minor.saturating_add(external.minor), config.currency))
    }

    fn cost_of(&self, config: &Config, include: impl Fn(&Component) -> bool) -> Money {
        let minor = config
            .components
            .values()
            .filter(|c| include(c))
            .map(|c| match self.component_state(&c.id) {
                ComponentState::Cold => 0,
                ComponentState::Warm => c.warm_cost.minor,
                // Transitional states are billed as the costlier end: a conservative
                // guard is better than a surprised founder.
                ComponentState::Hot | ComponentState::Warming | ComponentState::Cooling => c.hot_cost.minor,
            })
            .sum();
        Money::from_minor(minor, config.currency)
    }

    pub fn active_override(&self, today: NaiveDate) -> Option<&Override> {
        self.overrides.iter().filter(|o| o.is_active(today)).max_by_key(|o| (o.requested_on, o.id.clone()))
    }

    pub fn any_transitional(&self) -> Option<(&ComponentId, &ComponentRecord)> {
        self.components.iter().find(|(_, r)| r.state.is_transitional())
    }

    /// Moves a component into the transitional state of `kind`.
    pub fn start(&mut self, t: &Transition, today: NaiveDate) -> Result<(), IllegalTransition> {
        let record = self
            .components
            .get_mut(&t.component)
            .ok_or_else(|| IllegalTransition::UnknownComponent(t.component.clone()))?;
        if record.state != t.kind.from_state() {
            return Err(IllegalTransition::WrongStart {
                component: t.component.clone(),
                kind: t.kind,
                state: record.state,
                needs: t.kind.from_state(),
            });
        }
        *record = ComponentRecord {
            state: t.kind.transitional_state(),
            in_flight: Some(t.kind),
            since: today,
            deployed_on: record.deployed_on,
            saved_capacity: record.saved_capacity,
        };
        Ok(())
    }

    /// Completes a started transition.
    pub fn commit(&mut self, t: &Transition, today: NaiveDate) -> Result<(), IllegalTransition> {
        self.finish(t, t.kind.to_state(), today)
    }

    /// Abandons a started transition: the component is back where it started.
    pub fn abort(&mut self, t: &Transition, today: NaiveDate) -> Result<(), IllegalTransition> {
        self.finish(t, t.kind.from_state(), today)
    }

    fn finish(
        &mut self,
        t: &Transition,
        to: ComponentState,
        today: NaiveDate,
    ) -> Result<(), IllegalTransition> {
        let record = self
            .components
            .get_mut(&t.component)
            .ok_or_else(|| IllegalTransition::UnknownComponent(t.component.clone()))?;
        if record.state != t.kind.transitional_state() || record.in_flight != Some(t.kind) {
            return Err(IllegalTransition::WrongFinish {
                component: t.component.clone(),
                kind: t.kind,
                state: record.state,
                needs: t.kind.transitional_state(),
            });
        }
        let deployed = t.kind == TransitionKind::Deploy && to == ComponentState::Warm;
        *record = ComponentRecord {
            state: to,
            in_flight: None,
            since: today,
            deployed_on: if deployed { Some(today) } else { record.deployed_on },
            saved_capacity: record.saved_capacity,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    fn setup() -> (Config, SystemState) {
        let c = Config::default_config().unwrap();
        let s = SystemState::initial(&c, day("2026-01-01"));
        (c, s)
    }

    fn t(component: &str, kind: TransitionKind) -> Transition {
        Transition { component: ComponentId::new(component), kind }
    }

    #[test]
    fn only_legal_transitions_are_possible() {
        let (_, mut s) = setup();
        let d = day("2026-01-02");
        // COLD cannot be activated directly.
        let err = s.start(&t("eks_control_plane", TransitionKind::Activate), d).unwrap_err();
        assert!(matches!(err, IllegalTransition::WrongStart { state: ComponentState::Cold, .. }));
        // Nor can a transition be committed that was never started.
        assert!(s.commit(&t("eks_control_plane", TransitionKind::Deploy), d).is_err());
        s.start(&t("eks_control_plane", TransitionKind::Deploy), d).unwrap();
        assert_eq!(s.component_state(&ComponentId::new("eks_control_plane")), ComponentState::Warming);
        // Finishing a different move than the one in flight is refused.
        assert!(s.commit(&t("eks_control_plane", TransitionKind::Activate), d).is_err());
        s.commit(&t("eks_control_plane", TransitionKind::Deploy), d).unwrap();
        s.start(&t("eks_control_plane", TransitionKind::Activate), d).unwrap();
        s.commit(&t("eks_control_plane", TransitionKind::Activate), d).unwrap();
        assert_eq!(s.component_state(&ComponentId::new("eks_control_plane")), ComponentState::Hot);
        assert!(s.start(&t("nope", TransitionKind::Deploy), d).is_err());
        assert!(s.commit(&t("nope", TransitionKind::Deploy), d).is_err());
    }

    #[test]
    fn aborting_returns_to_the_starting_state() {
        let (_, mut s) = setup();
        let d = day("2026-01-02");
        let deploy = t("hume_ai", TransitionKind::Deploy);
        s.start(&deploy, d).unwrap();
        s.abort(&deploy, d).unwrap();
        assert_eq!(s.component_state(&ComponentId::new("hume_ai")), ComponentState::Cold);
        assert!(s.any_transitional().is_none());
    }

    #[test]
    fn every_transition_has_an_inverse_that_undoes_it() {
        for kind in [
            TransitionKind::Deploy,
            TransitionKind::Activate,
            TransitionKind::Deactivate,
            TransitionKind::Decommission,
        ] {
            assert_eq!(kind.inverse().from_state(), kind.to_state());
            assert_eq!(kind.inverse().to_state(), kind.from_state());
            assert_eq!(kind.inverse().inverse(), kind);
            assert!(kind.transitional_state().is_transitional());
        }
    }

    #[test]
    fn activation_state_metric_is_zero_cold_one_warm_two_hot() {
        assert_eq!(ComponentState::Cold.metric_value(), 0);
        assert_eq!(ComponentState::Warm.metric_value(), 1);
        assert_eq!(ComponentState::Hot.metric_value(), 2);
        assert_eq!(ComponentState::Warming.metric_value(), 0);
        assert_eq!(ComponentState::Cooling.metric_value(), 2);
    }

    #[test]
    fn initial_state_runs_only_the_bootstrap_components() {
        let (c, s) = setup();
        assert_eq!(s.component_state(&ComponentId::new("ollama")), ComponentState::Hot);
        assert_eq!(s.component_state(&ComponentId::new("eks_control_plane")), ComponentState::Cold);
        assert_eq!(s.managed_cost(&c).minor, 2500);
        assert_eq!(s.mode(&c), Mode::Auto);
    }

    #[test]
    fn an_operators_mode_holds_until_a_deploy_changes_the_deployed_mode() {
        let (mut deployed, mut s) = setup();
        deployed.mode = Mode::Shadow;
        assert_eq!(s.mode_in_force(&deployed), (Mode::Shadow, ModeSource::Deployment));
        s.set_mode(Mode::Auto, &deployed);
        assert_eq!(s.mode_in_force(&deployed), (Mode::Auto, ModeSource::Operator));
        // A redeploy that keeps Mode keeps the choice, even after a write.
        s.settle_mode(&deployed);
        assert_eq!(s.mode_in_force(&deployed), (Mode::Auto, ModeSource::Operator));
        // Redeployed with Mode=approval: the deploy wins, and the next write forgets
        // the choice, so a deploy back to shadow is shadow.
        deployed.mode = Mode::Approval;
        assert_eq!(s.mode_in_force(&deployed), (Mode::Approval, ModeSource::Deployment));
        s.settle_mode(&deployed);
        assert_eq!((s.mode, s.mode_set_over), (None, None));
        deployed.mode = Mode::Shadow;
        assert_eq!(s.mode_in_force(&deployed), (Mode::Shadow, ModeSource::Deployment));
        // A choice stored before the deployed mode was recorded holds, and the next
        // write ties it to the deployment in force: a deploy that changes Mode wins.
        s.mode = Some(Mode::Auto);
        assert_eq!(s.mode_in_force(&deployed), (Mode::Auto, ModeSource::Operator));
        s.settle_mode(&deployed);
        assert_eq!(s.mode_set_over, Some(Mode::Shadow));
        deployed.mode = Mode::Approval;
        assert_eq!(s.mode_in_force(&deployed), (Mode::Approval, ModeSource::Deployment));
    }

    #[test]
    fn modes_parse_and_print() {
        for m in [Mode::Shadow, Mode::Approval, Mode::Auto] {
            assert_eq!(m.to_string().parse::<Mode>().unwrap(), m);
        }
        assert!("yolo".parse::<Mode>().is_err());
    }

    #[test]
    fn an_override_needs_approval_and_expires_after_its_last_day() {
        let mut o = Override {
            id: "o1".into(),
            level: 3,
            until: day("2026-02-10"),
            reason: "launch".into(),
            requested_by: "alice".into(),
            requested_on: day("2026-02-01"),
            approved_by: None,
            cancelled: false,
        };
        assert!(!o.is_active(day("2026-02-02")));
        o.approved_by = Some("alice".into());
        assert!(!o.is_active(day("2026-02-02")), "self-approval must not activate an override");
        o.approved_by = Some("bob".into());
        assert!(o.is_active(day("2026-02-10")));
        assert!(!o.is_active(day("2026-02-11")));
        o.cancelled = true;
        assert!(!o.is_active(day("2026-02-05")));
    }

    #[test]
    fn breaker_is_open_during_cooldown_then_half_open() {
        let (c, mut s) = setup();
        assert_eq!(s.breaker.status(&c, day("2026-01-01")), BreakerStatus::Closed);
        s.breaker.opened_on = Some(day("2026-01-10"));
        assert_eq!(s.breaker.status(&c, day("2026-01-12")), BreakerStatus::Open { until: day("2026-01-13") });
        assert_eq!(s.breaker.status(&c, day("2026-01-13")), BreakerStatus::HalfOpen);
    }
}
