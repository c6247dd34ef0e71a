//! `evaluate(inputs, today) -> Decision`: ADR-017's rules, with no I/O and no clock.

use std::collections::BTreeSet;

use chrono::{Datelike, Days, Months, NaiveDate};
use sha2::{Digest, Sha256};

use crate::approval;
use crate::config::{Config, Level};
use crate::decision::{Decision, Event, Figures, Outcome, Severity};
use crate::history::{DailyMean, DailySnapshot, History, covered};
use crate::model::ComponentId;
use crate::model::{Cause, DecisionId};
use crate::model::{ComponentState, Mode, Transition, TransitionKind};
use crate::money::Money;
use crate::runway::{self, CASH_STALE_DAYS, CASH_UNKNOWN_DAYS, Runway, WARNING_MARGIN_MONTHS};
use crate::state::{BreakerStatus, PendingApproval, SystemState};

/// Everything a decision depends on. Time is passed separately, as `today`.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub config: &'a Config,
    pub state: &'a SystemState,
    /// Daily snapshots, today's included; older than [`history_needed_from`] is ignored.
    pub history: &'a History,
}

/// The oldest snapshot the rules read on `today`: adapters load from here (a bounded
/// query) and the decision id covers exactly this window.
pub fn history_needed_from(config: &Config, today: NaiveDate) -> NaiveDate {
    // The longest debounce window (at least the 3-month mean), and the churn look-back
    // of twice the grace days; one more day for the previous day's alert ratio.
    let months = config.levels.iter().map(|l| l.required_consecutive_months).max().unwrap_or(0).max(3);
    let window_start = months_back(today, months);
    let churn_start = today - Days::new(u64::from(config.churn.grace_days) * 2);
    let mut from = window_start.min(churn_start);
    // The runway guard estimates today's cash from a figure up to 90 days old, with
    // the net burn of every day since.
    if config.runway.is_some() {
        from = from.min(today - Days::new(CASH_UNKNOWN_DAYS.unsigned_abs()));
    }
    from - Days::new(1)
}

/// A level change (or a same-level reshuffle) the rules want, before mode and breaker
/// have their say. (A "plan" elsewhere is the operator's dry run, `revscale plan`.)
struct Proposal {
    to_level: u8,
    cause: Option<Cause>,
    transitions: Vec<Transition>,
    /// Extra monthly cost of an upgrade, for the approval threshold.
    extra_cost: Money,
}

pub fn evaluate(inputs: &Inputs<'_>, today: NaiveDate) -> Decision {
    decide(inputs, today, Identify::Hashed)
}

/// How a decision is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identify {
    /// The deterministic id the store, the bus and Step Functions key on: a hash of
    /// every input ([`evaluate`]).
    Hashed,
    /// `<day>-L<from>-L<to>-unrecorded`: for decisions no store or bus ever sees (a
    /// forecast's paths, millions of them), where serialising the state and hashing it
    /// would be most of the work. The rules are the same.
    Unrecorded,
}

/// [`evaluate`], naming the decision as `identify` says.
pub fn decide(inputs: &Inputs<'_>, today: NaiveDate, identify: Identify) -> Decision {
    let Inputs { config, state, history } = *inputs;
    let window_start = history_needed_from(config, today);
    let snapshot = history.get(today).copied();
    let average_3m = history.three_month_mean(today);
    let figures = Figures {
        mrr: snapshot.map(|s| s.mrr),
        average_3m: average_3m.map(|m| m.rounded()),
        cost: snapshot.and_then(|s| s.cost),
        ratio: snapshot.and_then(|s| s.ratio()),
        runway: runway_today(config, state, history, today, config.zero()).and_then(|r| r.months()),
    };
    let mode = state.mode(config);
    let mut next_state = state.clone();
    next_state.settle_mode(config);
    let day = Day { config, state, history, today };
    let mut events = alerts(config, history, today, window_start);
    events.extend(runway_alerts(config, state, history, today, window_start));
    let mut notes = Notes { events, reasons: Vec::new() };

    let proposal = propose(&day, snapshot, average_3m, &mut notes);

    let outcome = match proposal {
        // Nothing is known against the change that waits: an approval given before the
        // collectors ran, or while another run holds the lock, stands until the engine
        // can decide again.
        Err(Waiting) => {
            if let Some(p) = &next_state.pending_approval {
                let approved =
                    p.approved_by.as_ref().map(|by| format!(", approved by {by},")).unwrap_or_default();
                notes.reasons.push(format!(
                    "the pending change L{} -> L{}{approved} is kept until the engine can decide again",
                    p.from, p.to
                ));
            }
            Outcome::Hold
        }
        Ok(None) => {
            if let Some(p) = next_state.pending_approval.take() {
                notes.reasons.push(format!(
                    "the pending change L{} -> L{} is withdrawn: its conditions no longer hold",
                    p.from, p.to
                ));
            }
            Outcome::Hold
        }
        Ok(Some(ref proposal)) => gate(&day, &mut next_state, proposal, mode, &mut notes),
    };

    let (to_level, cause, transitions) = match proposal {
        Ok(Some(p)) if outcome != Outcome::Hold => (p.to_level, p.cause, p.transitions),
        _ => (state.level, None, Vec::new()),
    };
    let id = match identify {
        Identify::Hashed => decision_id(inputs, today, window_start, state.level, to_level),
        Identify::Unrecorded => DecisionId(format!("{today}-L{}-L{to_level}-unrecorded", state.level)),
    };
    Decision {
        id,
        date: today,
        mode,
        from_level: state.level,
        to_level,
        cause,
        outcome,
        transitions,
        events: notes.events,
        reasons: notes.reasons,
        figures,
        state: next_state,
    }
}

/// What every rule reads on the day it evaluates.
#[derive(Clone, Copy)]
struct Day<'a> {
    config: &'a Config,
    state: &'a SystemState,
    history: &'a History,
    today: NaiveDate,
}

/// What the rules say along the way: the events to publish and the reasons to record.
struct Notes {
    events: Vec<Event>,
    reasons: Vec<String>,
}

/// The engine cannot decide today: a run holds the lock, or today's figures are not
/// in. What waits for approval is kept, not withdrawn.
struct Waiting;

/// The change the rules want today, if any: an approved override first, then churn or
/// a cost overrun (down), then growth (up); then pre-warming and cool-down.
fn propose(
    day: &Day<'_>,
    snapshot: Option<DailySnapshot>,
    average_3m: Option<DailyMean>,
    notes: &mut Notes,
) -> Result<Option<Proposal>, Waiting> {
    let Day { config, state, history, today } = *day;
    if let Some(run) = &state.provisioning {
        notes.reasons.push(format!(
            "provisioning of {} (L{} -> L{}) is in progress since {}: no other change starts until it ends",
            run.decision_id, run.from_level, run.to_level, run.started_at
        ));
        return Err(Waiting);
    }
    if let Some((id, record)) = state.any_transitional() {
        notes.reasons.push(format!(
            "{id} is {} since {}: no other change starts until provisioning finishes",
            record.state, record.since
        ));
        return Err(Waiting);
    }
    if let Some(drain) = state.drain.as_ref().filter(|d| d.approved_by.is_some() && !d.is_active()) {
        // Approved before persons were compared, by its own requester under another
        // name: it does not count, and the operators must hear why nothing drains.
        notes.reasons.push(format!(
            "the drain requested by {} was approved by the same person ({}): it is not in force; another approver must approve it",
            drain.requested_by,
            drain.approved_by.as_deref().unwrap_or_default()
        ));
    }
    if let Some(drain) = state.drain.as_ref().filter(|d| d.is_active()) {
        notes.reasons.push(format!(
            "drained (requested by {}, approved by {}: {}): everything revscale manages goes COLD at L0, and nothing starts until the drain is cancelled",
            drain.requested_by,
            drain.approved_by.as_deref().unwrap_or_default(),
            drain.reason
        ));
        let transitions = transitions_to_cold(config, state);
        let extra_cost = cost_delta(config, &transitions);
        return Ok((!transitions.is_empty() || state.level != 0).then_some(Proposal {
            to_level: 0,
            cause: Some(Cause::Drain),
            transitions,
            extra_cost,
        }));
    }
    if let Some(o) = state.active_override(today) {
        let approved_by = o.approved_by.clone().unwrap_or_default();
        notes.events.push(Event::OverrideApplied {
            id: o.id.clone(),
            level: o.level,
            requested_by: o.requested_by.clone(),
            approved_by: approved_by.clone(),
            until: o.until,
        });
        notes.reasons.push(format!(
            "level pinned to L{} by override {} (requested by {}, approved by {approved_by}) until {}: debounce and cost guard do not apply",
            o.level, o.id, o.requested_by, o.until
        ));
        let target = o.level.min(config.top_level());
        let transitions = transitions_to_level(config, state, target);
        let extra_cost = cost_delta(config, &transitions);
        if extra_cost.minor > 0 {
            // Two people approved the override: it passes, and says what it costs.
            if let Some(hold) = runway_hold(day, &format!("L{target}"), extra_cost) {
                notes.reasons.push(format!(
                    "override {} passes the runway guard by its two-person approval: {}",
                    o.id, hold.reason
                ));
            } else if let (Some(before), Some(after)) = (
                runway_today(config, state, history, today, config.zero()).and_then(|r| r.months()),
                runway_today(config, state, history, today, extra_cost).and_then(|r| r.months()),
            ) && before != after
            {
                notes.reasons.push(format!(
                    "override {}: L{target} takes the runway from {before} to {after} months",
                    o.id
                ));
            }
        }
        return Ok((!transitions.is_empty() || target != state.level).then_some(Proposal {
            to_level: target,
            cause: Some(Cause::Override),
            transitions,
            extra_cost,
        }));
    }

    // An approved override needs no figures; everything automatic does.
    let Some(snapshot) = snapshot else {
        notes.reasons.push(format!("no snapshot for {today}: nothing is decided without today's figures"));
        return Err(Waiting);
    };
    // Without today's cost, growth cannot pass the cost guard and an overrun cannot be
    // measured: a change waiting for approval would look as if its conditions had
    // vanished. Wait for the figure instead.
    if snapshot.cost.is_none()
        && let Some(p) = &state.pending_approval
    {
        notes.reasons.push(format!(
            "no cost snapshot for {today}: the pending change L{} -> L{} waits for today's cost",
            p.from, p.to
        ));
        return Err(Waiting);
    }
    let downgrade = churn_target(config, state, history, today, snapshot, &mut notes.reasons)
        .or_else(|| overrun_proposal(config, state, history, today, snapshot, &mut notes.reasons))
        .or_else(|| runway_proposal(day, &mut notes.reasons));
    let (to_level, cause, mut transitions, extra_cost) = match downgrade {
        Some((target, cause)) => {
            let t = transitions_to_level(config, state, target);
            (target, Some(cause), t, config.zero())
        }
        None => match upgrade_target(day, snapshot, average_3m, notes) {
            Some((target, transitions, extra)) => (target, Some(Cause::Growth), transitions, extra),
            None => (state.level, None, Vec::new(), config.zero()),
        },
    };

    let mut keep: BTreeSet<ComponentId> = config.components_up_to(to_level);
    if to_level == state.level
        && let Some((level, warm, deploys)) = prewarm(day, snapshot, notes)
    {
        if !deploys.is_empty() {
            notes.events.push(Event::Prewarm {
                level,
                components: deploys.iter().map(|t| t.component.clone()).collect(),
            });
        }
        keep.extend(warm);
        transitions.extend(deploys);
    }
    let cooled = cooldown(config, state, today, &keep);
    if !cooled.is_empty() {
        notes
            .events
            .push(Event::Cooldown { components: cooled.iter().map(|t| t.component.clone()).collect() });
        notes.reasons.push(format!(
            "WARM for {} days or more without use: {} go COLD",
            config.churn.cooldown_days,
            cooled.iter().map(|t| t.component.as_str()).collect::<Vec<_>>().join(", ")
        ));
        transitions.extend(cooled);
    }
    Ok((!transitions.is_empty() || to_level != state.level).then_some(Proposal {
        to_level,
        cause,
        transitions,
        extra_cost,
    }))
}

/// Applies the breaker, the mode and approvals to what the rules propose.
fn gate(
    day: &Day<'_>,
    next_state: &mut SystemState,
    proposal: &Proposal,
    mode: Mode,
    notes: &mut Notes,
) -> Outcome {
    let Day { config, state, today, .. } = *day;
    let Notes { events, reasons } = notes;
    let manual = matches!(proposal.cause, Some(Cause::Override | Cause::Drain));
    let changes_level = proposal.to_level != state.level;
    if !manual {
        match state.breaker.status(config, today) {
            BreakerStatus::Open { until } => {
                reasons.push(format!(
                    "circuit breaker open after {} failed run(s): no automatic transition starts before {until}",
                    state.breaker.consecutive_failures
                ));
                return Outcome::Hold;
            }
            BreakerStatus::HalfOpen => {
                reasons.push("circuit breaker cool-down is over: one attempt is allowed".into());
            }
            BreakerStatus::Closed => {}
        }
    }
    // A drain only removes what revscale made, and two people approved it: it acts in
    // shadow mode too, so that a stack switched back to shadow can still be emptied
    // before `sam delete`.
    if mode == Mode::Shadow && proposal.cause != Some(Cause::Drain) {
        if changes_level {
            events.push(Event::ShadowOnly {
                from: state.level,
                to: proposal.to_level,
                transitions: proposal.transitions.len(),
            });
        }
        reasons.push(format!(
            "shadow mode: {} transition(s) recorded, none executed",
            proposal.transitions.len()
        ));
        return Outcome::ShadowOnly;
    }
    // Cutting spend is a business decision: a step-down for cost or runway is only
    // ever proposed, in every mode.
    let overrun = proposal.cause.is_some_and(Cause::is_proposed_only);
    let needs_approval = !manual
        && changes_level
        && (overrun
            || match mode {
                Mode::Approval => true,
                Mode::Auto => proposal.extra_cost.minor > config.safety.approval_threshold.minor,
                Mode::Shadow => false,
            });
    if !needs_approval {
        if let Some(p) = next_state.pending_approval.take() {
            reasons.push(format!(
                "the pending change L{} -> L{} gives way to this one, which needs no approval",
                p.from, p.to
            ));
        }
        return Outcome::Execute;
    }
    // An approval holds `safety.approval_expiry_days` from the day it was given, a
    // request as long from the day it was made: past that, the change is proposed
    // afresh (a new id, a new e-mail) rather than acted on a stale review.
    let lapsed =
        |p: &PendingApproval| today > approval::last_day(config, p.approved_on.unwrap_or(p.requested_on));
    match &state.pending_approval {
        // The same change for the same reason: an approval given for a churn drop is
        // not an approval of a step-down for cost.
        Some(p)
            if p.from == state.level
                && p.to == proposal.to_level
                && p.cause == proposal.cause
                && p.extra_monthly_cost == proposal.extra_cost
                && !lapsed(p) =>
        {
            if let Some(by) = &p.approved_by {
                reasons.push(format!("L{} -> L{} approved by {by}", p.from, p.to));
                next_state.pending_approval = None;
                return Outcome::Execute;
            }
            reasons.push(format!("L{} -> L{} waits for approval since {}", p.from, p.to, p.requested_on));
        }
        stale => {
            if let Some(p) = stale.as_ref().filter(|p| lapsed(p)) {
                let what = if p.approved_by.is_some() { "its approval" } else { "the request" };
                reasons.push(format!(
                    "L{} -> L{} proposed on {}: {what} lapsed after {} days, so it is proposed again",
                    p.from, p.to, p.requested_on, config.safety.approval_expiry_days
                ));
            } else if let Some(p) = stale.as_ref().filter(|p| p.extra_monthly_cost != proposal.extra_cost) {
                reasons.push(format!(
                    "L{} -> L{} was proposed adding {} a month and now adds {}: what was reviewed is not what would run, so it is proposed again",
                    p.from, p.to, p.extra_monthly_cost, proposal.extra_cost
                ));
            }
            events.push(Event::ApprovalRequired {
                from: state.level,
                to: proposal.to_level,
                extra_monthly_cost: proposal.extra_cost,
            });
            next_state.pending_approval = Some(PendingApproval {
                from: state.level,
                to: proposal.to_level,
                cause: proposal.cause,
                requested_on: today,
                extra_monthly_cost: proposal.extra_cost,
                approved_by: None,
                approved_on: None,
            });
            let why = if overrun {
                format!(
                    "a step-down for {} is never automatic",
                    proposal.cause.map_or("cost".into(), |c| c.to_string())
                )
            } else if mode == Mode::Approval {
                "approval mode".to_string()
            } else {
                format!(
                    "it adds {} a month, above the approval threshold {}",
                    proposal.extra_cost, config.safety.approval_threshold
                )
            };
            reasons.push(format!("L{} -> L{} needs a human approval: {why}", state.level, proposal.to_level));
        }
    }
    Outcome::AwaitingApproval
}

/// Warning at the alert ratio, critical at the block ratio; each fires on the day the
/// ratio crosses it and re-arms once it is back below. Derived from the snapshots, so a
/// replayed evaluation fires nothing new.
fn alerts(config: &Config, history: &History, today: NaiveDate, window_start: NaiveDate) -> Vec<Event> {
    let Some(snapshot) = history.get(today) else {
        return Vec::new();
    };
    let (Some(cost), Some(ratio)) = (snapshot.cost, snapshot.ratio()) else {
        return Vec::new();
    };
    let previous = history.before(today).filter(|p| p.date >= window_start).and_then(|p| p.ratio());
    [(Severity::Critical, config.safety.block_ratio), (Severity::Warning, config.safety.alert_ratio)]
        .into_iter()
        .find(|(_, threshold)| ratio >= *threshold && previous.is_none_or(|p| p < *threshold))
        .map(|(severity, threshold)| Event::Alert { severity, ratio, threshold, cost, mrr: snapshot.mrr })
        .into_iter()
        .collect()
}

/// Churn: MRR below the current level's minimum less the hysteresis on at least
/// `grace_days` of the last `2 x grace_days` recorded days, today included and below.
/// A clean drop qualifies after `grace_days`; a saw-tooth (six days under, one over)
/// within `2 x grace_days`; a single dip shorter than `grace_days` never does.
fn churn_target(
    config: &Config,
    state: &SystemState,
    history: &History,
    today: NaiveDate,
    snapshot: DailySnapshot,
    reasons: &mut Vec<String>,
) -> Option<(u8, Cause)> {
    let floor = config.churn.floor_level;
    if state.level <= floor {
        return None;
    }
    let grace = config.churn.grace_days;
    let current = config.level(state.level);
    let churn_line = current.min.times(config.churn.hysteresis.complement());
    if snapshot.mrr.minor >= churn_line.minor {
        return None;
    }
    let lookback = today - Days::new(u64::from(grace) * 2);
    let below = history.window(lookback, today).filter(|d| d.mrr.minor < churn_line.minor).count();
    if below < grace as usize {
        return None;
    }
    let to = config.level_for(snapshot.mrr).max(floor);
    if to >= state.level {
        return None;
    }
    reasons.push(format!(
        "churn: MRR below {churn_line} (L{} min {} less {} hysteresis) on {below} of the last {} days, today {}: drop to L{to}",
        state.level,
        current.min,
        config.churn.hysteresis,
        grace * 2,
        snapshot.mrr
    ));
    Some((to, Cause::Churn))
}

/// The runway on `today` at the day's figures, as the guard sees it: `None` without a
/// runway section or without a snapshot for the day. `history` is the production
/// history, as for [`evaluate`]. (`status`, the API and the simulator show it.)
pub fn runway(config: &Config, state: &SystemState, history: &History, today: NaiveDate) -> Option<Runway> {
    runway_today(config, state, history, today, config.zero())
}

/// The runway on `today`, with `extra` monthly cost, when the configuration guards it
/// (`None` without a runway section, or without a snapshot for the day).
fn runway_today(
    config: &Config,
    state: &SystemState,
    history: &History,
    day: NaiveDate,
    extra: Money,
) -> Option<Runway> {
    runway::runway_on(config.runway.as_ref()?, state.cash.as_ref(), history, day, extra)
}

/// Why the runway guard holds an activation, with the figures for its event.
struct RunwayHold {
    reason: String,
    before: Option<runway::RunwayMonths>,
    after: Option<runway::RunwayMonths>,
    min_months: u32,
}

impl RunwayHold {
    fn event(&self, level: u8) -> Event {
        Event::RunwayHeld {
            level,
            before: self.before,
            after: self.after,
            min_months: self.min_months,
            reason: self.reason.clone(),
        }
    }
}

/// The runway guard on an activation (`what`: "level 2", "pre-warming L2") adding
/// `extra` a month: held when the runway after it is under the minimum, or unknown.
/// `None` passes: no runway section, or a runway that stays at or above the minimum.
fn runway_hold(day: &Day<'_>, what: &str, extra: Money) -> Option<RunwayHold> {
    let Day { config, state, history, today } = *day;
    let min_months = config.runway.as_ref()?.min_months;
    // Even an activation that adds nothing waits while the runway is under the
    // minimum or unknown: the promise is that none leaves it there.
    let before = runway_today(config, state, history, today, config.zero())?;
    let after = runway_today(config, state, history, today, extra)?;
    match (&before, &after) {
        (Runway::Unknown { why }, _) | (_, Runway::Unknown { why }) => Some(RunwayHold {
            reason: format!("the runway is unknown ({why}): {what} waits until it is known"),
            before: None,
            after: None,
            min_months,
        }),
        (Runway::Known { months: b, .. }, Runway::Known { months: a, .. }) if a.is_under(min_months) => {
            let reason = if b.is_under(min_months) {
                // Already under: the figure that matters is what it adds, not a tenth of
                // a month.
                format!(
                    "the runway is {b} months, under the minimum {min_months}: {what} waits until it is back over it (it would add {extra} a month, leaving {a})"
                )
            } else {
                format!("{what} would shorten the runway from {b} to {a} months (minimum {min_months})")
            };
            Some(RunwayHold { reason, before: Some(*b), after: Some(*a), min_months })
        }
        _ => None,
    }
}

/// The runway under its minimum, today, with nothing activated: the engine never steps
/// down for it on its own, it proposes (for approval) the highest lower level whose
/// step-down brings the runway back to the minimum, and only when one does.
fn runway_proposal(day: &Day<'_>, reasons: &mut Vec<String>) -> Option<(u8, Cause)> {
    let Day { config, state, today, .. } = *day;
    let min = config.runway.as_ref()?.min_months;
    let Runway::Known { months, cash, net_burn, .. } =
        runway_today(config, state, day.history, today, config.zero())?
    else {
        return None;
    };
    let floor = config.churn.floor_level;
    if !months.is_under(min) || state.level <= floor {
        return None;
    }
    for target in (floor..state.level).rev() {
        // What the step-down would do at once (HOT -> WARM), as for a cost overrun.
        let moves = transitions_to_level(config, state, target);
        let saved = cost_delta(config, &moves);
        let Some(after) = runway_today(config, state, day.history, today, saved).and_then(|r| r.months())
        else {
            continue;
        };
        if !after.is_under(min) {
            let moved: BTreeSet<&ComponentId> = moves.iter().map(|t| &t.component).collect();
            let names: Vec<&str> = config
                .activation_order
                .iter()
                .filter(|id| moved.contains(id))
                .map(|id| id.as_str())
                .collect();
            reasons.push(format!(
                "runway: {months} months (cash {cash}, net burn {net_burn} a month) is under the minimum {min}; stepping down to L{target} (removing {}) would bring it to {after}: proposed, never automatic",
                names.join(", ")
            ));
            return Some((target, Cause::Runway));
        }
    }
    reasons.push(format!(
        "runway: {months} months (cash {cash}, net burn {net_burn} a month) is under the minimum {min}, and no step-down of what revscale manages brings it back: the burn is not revscale's to cut"
    ));
    None
}

/// The runway's alerts, each on the day it crosses its line (re-armed once back
/// above): a warning under `min_months + 3`, critical under `min_months`; and the cash
/// figure's age crossing [`CASH_STALE_DAYS`] (warning) and [`CASH_UNKNOWN_DAYS`]
/// (critical: no activation passes until cash is set again). "The day before" is the
/// previous recorded day in the window, as for the cost alerts, so a replayed
/// evaluation fires nothing new.
fn runway_alerts(
    config: &Config,
    state: &SystemState,
    history: &History,
    today: NaiveDate,
    window_start: NaiveDate,
) -> Vec<Event> {
    let Some(guard) = config.runway.as_ref() else {
        return Vec::new();
    };
    let mut events = Vec::new();
    let previous = history.before(today).filter(|p| p.date >= window_start).map(|p| p.date);
    if let Some(cash) = &state.cash {
        let age = (today - cash.as_of).num_days();
        let age_before = previous.map(|d| (d - cash.as_of).num_days());
        // Stale from day 45, unknown after day 90.
        let crossed = |is_past: fn(i64) -> bool| is_past(age) && age_before.is_none_or(|a| !is_past(a));
        if crossed(|a| a > CASH_UNKNOWN_DAYS) {
            events.push(Event::CashStale { severity: Severity::Critical, as_of: cash.as_of, age_days: age });
        } else if crossed(|a| a >= CASH_STALE_DAYS) {
            events.push(Event::CashStale { severity: Severity::Warning, as_of: cash.as_of, age_days: age });
        }
    }
    let Some(Runway::Known { months, cash, net_burn, .. }) =
        runway_today(config, state, history, today, config.zero())
    else {
        return events;
    };
    let months_before = previous
        .and_then(|d| runway_today(config, state, history, d, config.zero()))
        .and_then(|r| r.months());
    let min = guard.min_months;
    [(Severity::Critical, min), (Severity::Warning, min.saturating_add(WARNING_MARGIN_MONTHS))]
        .into_iter()
        .find(|(_, line)| months.is_under(*line) && months_before.is_none_or(|b| !b.is_under(*line)))
        .map(|(severity, _)| Event::RunwayAlert { severity, months, min_months: min, cash, net_burn })
        .into_iter()
        .for_each(|e| events.push(e));
    events
}

/// Cost above the block ratio on `grace_days` recorded days since the level was
/// reached. revscale never steps down for cost on its own (the critical alert says
/// so): it proposes, for approval, the highest lower level whose removed components
/// bring the ratio under the alert ratio, and only when some level does.
fn overrun_proposal(
    config: &Config,
    state: &SystemState,
    history: &History,
    today: NaiveDate,
    snapshot: DailySnapshot,
    reasons: &mut Vec<String>,
) -> Option<(u8, Cause)> {
    let floor = config.churn.floor_level;
    let (cost, block) = (snapshot.cost?, config.safety.block_ratio);
    let grace = config.churn.grace_days;
    let lookback = today - Days::new(u64::from(grace));
    let over = history
        .window(lookback, today)
        .filter(|d| d.date > state.level_since && d.cost.is_some_and(|c| !c.is_zero()))
        .filter(|d| d.ratio().is_none_or(|r| r >= block))
        .count();
    if state.level <= floor || over < grace as usize {
        return None;
    }
    let ratio = snapshot.ratio().map_or("more than all".into(), |r| r.to_string());
    for target in (floor..state.level).rev() {
        // What the step-down would really do at once (HOT -> WARM; cool-down takes
        // the WARM ones later), so the projection never promises more than it saves.
        let moves = transitions_to_level(config, state, target);
        let moved: BTreeSet<&ComponentId> = moves.iter().map(|t| &t.component).collect();
        let removed: Vec<&ComponentId> =
            config.activation_order.iter().filter(|id| moved.contains(id)).collect();
        let projected = Money::from_minor(cost.minor + cost_delta(config, &moves).minor, config.currency);
        if projected.ratio_to(snapshot.mrr).is_some_and(|r| r < config.safety.alert_ratio) {
            let names = removed.iter().map(|id| id.as_str()).collect::<Vec<_>>().join(", ");
            reasons.push(format!(
                "cost overrun: cost {cost} is {ratio} of MRR {}, above {block} for {grace} days; removing {names} would bring it to {projected}, under {}: proposed, never automatic",
                snapshot.mrr, config.safety.alert_ratio
            ));
            return Some((target, Cause::CostOverrun));
        }
    }
    reasons.push(format!(
        "cost overrun: cost {cost} is {ratio} of MRR {}, above {block} for {grace} days, and removing every component revscale manages would not bring it under {}: the spend is not revscale's to cut",
        snapshot.mrr, config.safety.alert_ratio
    ));
    None
}

/// How a level's debounce window stands on a day: every recorded MRR in
/// `(day - N months, day]` at or above the level's minimum, on at least 90% of the
/// window's days.
#[derive(Debug, Clone, Copy)]
struct Window {
    days: u32,
    recorded: u32,
    /// Recorded days at or above the minimum since the last one below it.
    streak: u32,
    complete: bool,
}

fn months_back(day: NaiveDate, months: u32) -> NaiveDate {
    day.checked_sub_months(Months::new(months)).unwrap_or(NaiveDate::MIN)
}

/// Daily MRR in `(day - months, day]` for `day = today + ahead`, the days after
/// `today` assumed recorded at `assumed` (what pre-warming asks: would it complete if
/// MRR held?). Returns the window's calendar days and its figures.
fn daily_figures(
    history: &History,
    today: NaiveDate,
    ahead: u32,
    months: u32,
    assumed: Money,
) -> (u32, impl Iterator<Item = Money> + '_) {
    let day = today + Days::new(u64::from(ahead));
    let start = months_back(day, months);
    let days = u32::try_from((day - start).num_days()).unwrap_or(u32::MAX);
    (days, history.window(start, today).map(|s| s.mrr).chain((0..ahead).map(move |_| assumed)))
}

fn window(level: &Level, history: &History, today: NaiveDate, ahead: u32, assumed: Money) -> Window {
    let (days, figures) = daily_figures(history, today, ahead, level.required_consecutive_months, assumed);
    let mut w = Window { days, recorded: 0, streak: 0, complete: false };
    let mut any_below = false;
    for mrr in figures {
        w.recorded += 1;
        if mrr.minor >= level.min.minor {
            w.streak += 1;
        } else {
            w.streak = 0;
            any_below = true;
        }
    }
    w.complete = !any_below && covered(w.recorded, w.days);
    w
}

/// The 3-month daily mean is at least `min`, on 90% of the days, on `today + ahead`.
fn mean_reaches(history: &History, today: NaiveDate, ahead: u32, assumed: Money, min: Money) -> bool {
    let (days, figures) = daily_figures(history, today, ahead, 3, assumed);
    let (mut total, mut recorded) = (0i128, 0u32);
    for mrr in figures {
        total += i128::from(mrr.minor);
        recorded += 1;
    }
    recorded > 0 && covered(recorded, days) && total >= i128::from(min.minor) * i128::from(recorded)
}

/// What is still missing for `level` on `today`, in words. Empty means eligible.
fn missing_for_level(level: &Level, history: &History, today: NaiveDate, today_mrr: Money) -> Vec<String> {
    let mut missing = Vec::new();
    let n = level.required_consecutive_months;
    let w = window(level, history, today, 0, today_mrr);
    if !w.complete {
        let months = if n == 1 { "month".to_string() } else { format!("{n} months") };
        let gaps = w.days.saturating_sub(w.recorded);
        let gap_note =
            if gaps > 0 { format!(" ({gaps} without a snapshot; 90% must have one)") } else { String::new() };
        missing.push(format!(
            "level {} needs MRR >= {} on every day of the last {months}: {} of the {} days needed{gap_note}",
            level.number, level.min, w.streak, w.days
        ));
    }
    match history.three_month_mean(today) {
        None => missing.push(format!("level {} needs 3 months of daily MRR: none recorded", level.number)),
        Some(mean) if !mean.covered() => missing.push(format!(
            "level {} needs 3 months of daily MRR with 90% of days recorded: {} of {}",
            level.number, mean.recorded, mean.days
        )),
        Some(mean) if !mean.at_least(level.min) => missing.push(format!(
            "level {} needs a 3-month daily average >= {}; it is {}",
            level.number,
            level.min,
            mean.rounded()
        )),
        Some(_) => {}
    }
    if today_mrr.minor < level.min.minor {
        missing.push(format!("level {} needs today's MRR >= {}; it is {today_mrr}", level.number, level.min));
    }
    missing
}

/// Would `level` be eligible within `days` if MRR held at today's figure?
fn completes_within(level: &Level, history: &History, today: NaiveDate, today_mrr: Money, days: u32) -> bool {
    today_mrr.minor >= level.min.minor
        && (0..=days).any(|ahead| {
            window(level, history, today, ahead, today_mrr).complete
                && mean_reaches(history, today, ahead, today_mrr, level.min)
        })
}

/// The highest eligible level that passes the cost guard, with its transitions and
/// extra monthly cost.
fn upgrade_target(
    day: &Day<'_>,
    snapshot: DailySnapshot,
    average_3m: Option<DailyMean>,
    notes: &mut Notes,
) -> Option<(u8, Vec<Transition>, Money)> {
    let Day { config, state, history, today } = *day;
    let Notes { events, reasons } = notes;
    let mut eligible = Vec::new();
    for level in config.levels.iter().skip(usize::from(state.level) + 1) {
        let missing = missing_for_level(level, history, today, snapshot.mrr);
        if missing.is_empty() {
            eligible.push(level.number);
        } else if eligible.is_empty() || level.number == eligible.last().copied().unwrap_or(0) + 1 {
            // Explain the first level that is out of reach; higher ones are further away.
            reasons.extend(missing);
            break;
        }
    }
    if eligible.is_empty() {
        return None;
    }
    let Some(cost) = snapshot.cost else {
        reasons.push(format!("no cost snapshot for {today}: no activation without the cost guard"));
        return None;
    };
    let reference = match average_3m {
        Some(avg) => Money::from_minor(avg.floor().minor.min(snapshot.mrr.minor), config.currency),
        None => config.zero(),
    };
    let mut first_block = true;
    for &candidate in eligible.iter().rev() {
        let level = config.level(candidate);
        let transitions = transitions_to_level(config, state, candidate);
        let extra = cost_delta(config, &transitions);
        let projected = Money::from_minor(cost.minor + extra.minor, config.currency);
        let limit = reference.times(config.safety.block_ratio);
        // Eligibility needs today's MRR and the average at or above a level minimum
        // that is above zero, so `reference` is positive here: no revenue, no level.
        let block = if projected.minor > limit.minor {
            Some(format!(
                "projected cost {projected} (today {cost} + {extra}) exceeds {} of reference revenue {reference} = {limit}",
                config.safety.block_ratio
            ))
        } else if projected.minor > level.max_burn.minor {
            Some(format!("projected cost {projected} exceeds L{candidate}'s max burn {}", level.max_burn))
        } else if extra.minor > config.safety.auto_activation_cost_limit.minor {
            Some(format!(
                "it adds {extra} a month, above the automatic-activation limit {}; only an approved override can",
                config.safety.auto_activation_cost_limit
            ))
        } else {
            None
        };
        if block.is_none()
            && let Some(hold) = runway_hold(day, &format!("level {candidate}"), extra)
        {
            reasons.push(format!("L{candidate} held by the runway guard: {}", hold.reason));
            if first_block {
                events.push(hold.event(candidate));
                first_block = false;
            }
            continue;
        }
        match block {
            Some(why) => {
                reasons.push(format!("L{candidate} blocked by the cost guard: {why}"));
                if first_block {
                    events.push(Event::Blocked {
                        level: candidate,
                        projected_cost: projected,
                        limit: Money::from_minor(limit.minor.min(level.max_burn.minor), config.currency),
                        reference_revenue: reference,
                        max_burn: level.max_burn,
                        reason: why,
                    });
                    first_block = false;
                }
            }
            None => {
                reasons.push(format!(
                    "L{candidate} eligible: MRR >= {} on every day of the last {} month(s), today {}, 3-month daily average {}; projected cost {projected} within {limit}",
                    level.min,
                    level.required_consecutive_months,
                    snapshot.mrr,
                    average_3m.map_or("-".into(), |a| a.rounded().to_string())
                ));
                return Some((candidate, transitions, extra));
            }
        }
    }
    None
}

/// The next level's components, COLD -> WARM, when its window would complete within
/// `prewarm_days` if MRR held, and the WARM cost passes the cost guard. Returns the
/// level, the components to keep WARM (while the condition holds, cool-down leaves them
/// alone) and the deploys to make now.
fn prewarm(
    day: &Day<'_>,
    snapshot: DailySnapshot,
    notes: &mut Notes,
) -> Option<(u8, BTreeSet<ComponentId>, Vec<Transition>)> {
    let Day { config, state, history, today } = *day;
    let Notes { events, reasons } = notes;
    let next = state.level.checked_add(1).filter(|n| *n <= config.top_level())?;
    let level = config.level(next);
    if !completes_within(level, history, today, snapshot.mrr, config.prewarm_days) {
        return None;
    }
    let candidates: Vec<&ComponentId> = config
        .activation_order
        .iter()
        .filter(|id| level.auto_enable.contains(id) && !config.components[*id].is_always_on())
        .collect();
    // While the level is this close, what is WARM for it stays WARM, including when it
    // is eligible already but its upgrade is blocked (the upgrade path decides that).
    let keep: BTreeSet<ComponentId> = candidates.iter().map(|id| (*id).clone()).collect();
    if missing_for_level(level, history, today, snapshot.mrr).is_empty() {
        return Some((next, keep, Vec::new()));
    }
    let mut transitions = Vec::new();
    for id in candidates.iter().filter(|id| state.component_state(id) == ComponentState::Cold) {
        match bounce(state, id, today) {
            Some(why) => reasons.push(format!("pre-warming L{next}: {why}")),
            None => transitions.push(Transition { component: (*id).clone(), kind: TransitionKind::Deploy }),
        }
    }
    let Some(cost) = snapshot.cost.filter(|_| !transitions.is_empty()) else {
        return Some((next, keep, Vec::new()));
    };
    let extra = cost_delta(config, &transitions);
    let projected = Money::from_minor(cost.minor + extra.minor, config.currency);
    // The same reference revenue as for an activation: real days, not assumed ones.
    let Some(average) = history.three_month_mean(today) else {
        reasons.push(format!("pre-warming L{next} skipped: no daily MRR to take an average from"));
        return Some((next, keep, Vec::new()));
    };
    let reference = Money::from_minor(average.floor().minor.min(snapshot.mrr.minor), config.currency);
    let limit = reference.times(config.safety.block_ratio);
    if projected.minor > limit.minor || projected.minor > level.max_burn.minor {
        reasons.push(format!(
            "pre-warming L{next} skipped: WARM cost would bring cost to {projected}, above {limit}"
        ));
        return Some((next, keep, Vec::new()));
    }
    if let Some(hold) = runway_hold(day, &format!("pre-warming L{next}"), extra) {
        reasons.push(format!("pre-warming L{next} held by the runway guard: {}", hold.reason));
        events.push(hold.event(next));
        return Some((next, keep, Vec::new()));
    }
    reasons.push(format!(
        "pre-warming L{next}: its window completes within {} days if MRR holds at {} (>= {}); WARM adds {extra}",
        config.prewarm_days, snapshot.mrr, level.min
    ));
    Some((next, keep, transitions))
}

/// A pre-warmed component that went COLD rests this long before it is pre-warmed again.
pub const PREWARM_COLD_REST_DAYS: u64 = 30;
/// While the level stays the same, pre-warming deploys a component at most this often:
/// MRR hovering at a threshold does not create and delete a cluster every month.
pub const PREWARM_REDEPLOY_DAYS: u64 = 90;

/// Why pre-warming must not deploy `id` today, if it must not.
fn bounce(state: &SystemState, id: &ComponentId, today: NaiveDate) -> Option<String> {
    let record = state.components.get(id)?;
    // Whatever the record says of deploys (state written before they were recorded,
    // a component that started HOT): COLD since less than 30 days is too recent.
    let rested = record.since + Days::new(PREWARM_COLD_REST_DAYS);
    if record.state == ComponentState::Cold && today < rested {
        return Some(format!("{id} went COLD on {}: not deployed again before {rested}", record.since));
    }
    let deployed = record.deployed_on?;
    let again = deployed + Days::new(PREWARM_REDEPLOY_DAYS);
    if state.level_since <= deployed && today < again {
        return Some(format!(
            "{id} was deployed on {deployed} and the level has not changed since: not deployed again before {again}"
        ));
    }
    None
}

/// WARM components outside `keep` whose cool-down is over go COLD, dependents first; a
/// component whose dependent still exists waits for it.
fn cooldown(
    config: &Config,
    state: &SystemState,
    today: NaiveDate,
    keep: &BTreeSet<ComponentId>,
) -> Vec<Transition> {
    let cooldown = Days::new(u64::from(config.churn.cooldown_days));
    let mut chosen: BTreeSet<&ComponentId> = BTreeSet::new();
    let mut out = Vec::new();
    for id in config.activation_order.iter().rev() {
        let Some(record) = state.components.get(id) else {
            continue;
        };
        let due = record.state == ComponentState::Warm && record.since + cooldown <= today;
        if !due || keep.contains(id) || config.components[id].is_always_on() {
            continue;
        }
        let dependents_gone = config
            .components
            .values()
            .filter(|c| c.depends_on.contains(id))
            .all(|c| chosen.contains(&c.id) || state.component_state(&c.id) == ComponentState::Cold);
        if dependents_gone {
            chosen.insert(id);
            out.push(Transition { component: id.clone(), kind: TransitionKind::Decommission });
        }
    }
    out
}

/// The moves that bring every component to what `target` needs: deactivations first
/// (dependents first), then deploys and activations (dependencies first). WARM
/// components outside the target stay WARM: cool-down decides when they go COLD.
pub fn transitions_to_level(config: &Config, state: &SystemState, target: u8) -> Vec<Transition> {
    let wanted = config.components_up_to(target);
    let mut out = Vec::new();
    for id in config.activation_order.iter().rev() {
        if !wanted.contains(id)
            && state.component_state(id) == ComponentState::Hot
            && !config.components[id].is_always_on()
        {
            out.push(Transition { component: id.clone(), kind: TransitionKind::Deactivate });
        }
    }
    for id in &config.activation_order {
        if !wanted.contains(id) || config.components[id].is_always_on() {
            continue;
        }
        match state.component_state(id) {
            ComponentState::Cold => {
                out.push(Transition { component: id.clone(), kind: TransitionKind::Deploy });
                out.push(Transition { component: id.clone(), kind: TransitionKind::Activate });
            }
            ComponentState::Warm => {
                out.push(Transition { component: id.clone(), kind: TransitionKind::Activate })
            }
            ComponentState::Hot | ComponentState::Warming | ComponentState::Cooling => {}
        }
    }
    out
}

/// The moves that take every component revscale manages to COLD: dependents first,
/// each HOT one deactivated, then decommissioned. Always-on components are not
/// revscale's to remove.
pub fn transitions_to_cold(config: &Config, state: &SystemState) -> Vec<Transition> {
    let mut out = Vec::new();
    for id in config.activation_order.iter().rev() {
        if config.components[id].is_always_on() {
            continue;
        }
        let kinds: &[TransitionKind] = match state.component_state(id) {
            ComponentState::Hot => &[TransitionKind::Deactivate, TransitionKind::Decommission],
            ComponentState::Warm => &[TransitionKind::Decommission],
            ComponentState::Cold | ComponentState::Warming | ComponentState::Cooling => &[],
        };
        out.extend(kinds.iter().map(|kind| Transition { component: id.clone(), kind: *kind }));
    }
    out
}

/// Change of the monthly bill once `transitions` are done.
pub fn cost_delta(config: &Config, transitions: &[Transition]) -> Money {
    let minor = transitions
        .iter()
        .filter_map(|t| config.components.get(&t.component).map(|c| (c, t.kind)))
        .map(|(c, kind)| match kind {
            TransitionKind::Deploy => c.warm_cost.minor,
            TransitionKind::Activate => c.hot_cost.minor - c.warm_cost.minor,
            TransitionKind::Deactivate => c.warm_cost.minor - c.hot_cost.minor,
            TransitionKind::Decommission => -c.warm_cost.minor,
        })
        .sum();
    Money::from_minor(minor, config.currency)
}

fn decision_id(
    inputs: &Inputs<'_>,
    today: NaiveDate,
    window_start: NaiveDate,
    from: u8,
    to: u8,
) -> DecisionId {
    // The version is bookkeeping of the store, not an input of the rules: a replay
    // after a write must produce the same id.
    let mut state = inputs.state.clone();
    state.version = 0;
    let mut hasher = Sha256::new();
    hasher.update(today.num_days_from_ce().to_be_bytes());
    hasher.update(inputs.config.fingerprint);
    // The effective mode: a mode set outside the file (REVSCALE_MODE, the API) changes
    // the decision, so it must change the id, or the new decision would pass for a replay.
    hasher.update(format!("{:?}", inputs.state.mode(inputs.config)).as_bytes());
    // Serialising plain data to JSON cannot fail; an empty buffer would still hash
    // deterministically.
    let state_json = serde_json::to_vec(&state).unwrap_or_default();
    hasher.update((state_json.len() as u64).to_be_bytes());
    hasher.update(&state_json);
    // Snapshots are hashed field by field: this runs on every evaluation, and JSON
    // for a four-month window costs more than all the rules together.
    for s in inputs.history.range(window_start, today) {
        hasher.update(s.date.num_days_from_ce().to_be_bytes());
        hasher.update(s.mrr.minor.to_be_bytes());
        hasher.update(s.mrr.currency.as_str().as_bytes());
        match s.cost {
            Some(cost) => {
                hasher.update([1]);
                hasher.update(cost.minor.to_be_bytes());
                hasher.update(cost.currency.as_str().as_bytes());
            }
            None => hasher.update([0]),
        }
    }
    let digest = hasher.finalize();
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    DecisionId(format!("{today}-L{from}-L{to}-{hex}"))
}
