//! The one two-person gate: the only way an override, a drain or a pending level
//! change becomes approved.
//!
//! Every approve route calls [`approve`]; none sets `approved_by` itself. The gate
//! checks, in order, that the approver names what is waiting now (an approval is bound
//! to what was reviewed), that the request has not expired, that the approver is not
//! the person who asked (persons, not strings: [`crate::identity`]), and that nobody
//! approved it already. The engine checks the same person keys again before it acts
//! ([`crate::state::Override::is_active`], [`crate::state::Drain::is_active`]).

use chrono::{Days, NaiveDate};

use crate::config::Config;
use crate::identity;
use crate::state::{Drain, Override, PendingApproval};

/// Something that waits for a second person's approval.
pub trait Approvable {
    /// The id an approver names: the approval holds for this request and no other.
    fn approval_id(&self) -> String;
    /// What it is, in words, for refusals and for the approver.
    fn describe(&self) -> String;
    /// The person who asked for it; `None` when the engine proposed it (any approver
    /// is then a second person).
    fn requested_by(&self) -> Option<&str>;
    fn requested_on(&self) -> NaiveDate;
    fn approved_by(&self) -> Option<&str>;
    /// Records the approval. Only [`approve`] can call it: [`Gate`] cannot be built
    /// outside this module.
    fn record_approval(&mut self, approver: String, today: NaiveDate, gate: Gate);
}

/// Proof that [`approve`] let the approval through.
pub struct Gate(());

/// Why an approval was refused. The API answers `SamePerson` with 403 and the others
/// with 409.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalRefused {
    #[error(
        "the approval names '{presented}', but what waits now is {current_id}: {current}. Review it and approve that id if you agree"
    )]
    NotWhatWasReviewed { presented: String, current_id: String, current: String },
    #[error(
        "{what} was requested on {requested_on} and could be approved until {expired_after} (approvals hold {days} days): {again}"
    )]
    Expired {
        what: String,
        requested_on: NaiveDate,
        expired_after: NaiveDate,
        days: u32,
        again: &'static str,
    },
    #[error("{approver} asked for {what} and cannot approve it: another person must")]
    SamePerson { approver: String, what: String },
    /// A federated user is not a person revscale can tell apart from the IAM user who
    /// made it, on either side of an approval.
    #[error(
        "{who} is a federated user, whom revscale cannot tell apart from the IAM user who created it: {what} must be requested and approved by IAM users, Identity Center users or roles"
    )]
    Indistinct { who: String, what: String },
    #[error("{what} is already approved by {by}")]
    AlreadyApproved { what: String, by: String },
}

/// The last day a request made on `requested_on` may be approved, and a given approval
/// still acted on.
pub fn last_day(config: &Config, requested_on: NaiveDate) -> NaiveDate {
    requested_on + Days::new(u64::from(config.safety.approval_expiry_days))
}

/// The gate. `approver` is the person approving (or their principal), `presented_id`
/// the id they reviewed.
pub fn approve<A: Approvable + ?Sized>(
    item: &mut A,
    approver: &str,
    presented_id: &str,
    config: &Config,
    today: NaiveDate,
) -> Result<(), ApprovalRefused> {
    let current_id = item.approval_id();
    if presented_id.trim() != current_id {
        return Err(ApprovalRefused::NotWhatWasReviewed {
            presented: presented_id.trim().to_string(),
            current_id,
            current: item.describe(),
        });
    }
    let expired_after = last_day(config, item.requested_on());
    if today > expired_after {
        return Err(ApprovalRefused::Expired {
            what: item.describe(),
            requested_on: item.requested_on(),
            expired_after,
            days: config.safety.approval_expiry_days,
            again: if item.requested_by().is_some() {
                "it must be requested again"
            } else {
                "the engine proposes it again, with a new id, at its next evaluation while its reasons hold"
            },
        });
    }
    if let Some(who) =
        [Some(approver), item.requested_by()].into_iter().flatten().find(|w| identity::is_indistinct(w))
    {
        return Err(ApprovalRefused::Indistinct { who: who.to_string(), what: item.describe() });
    }
    if let Some(requester) = item.requested_by()
        && identity::same_person(approver, requester)
    {
        return Err(ApprovalRefused::SamePerson { approver: approver.to_string(), what: item.describe() });
    }
    if let Some(by) = item.approved_by() {
        return Err(ApprovalRefused::AlreadyApproved { what: item.describe(), by: by.to_string() });
    }
    item.record_approval(approver.to_string(), today, Gate(()));
    Ok(())
}

impl Approvable for Override {
    fn approval_id(&self) -> String {
        self.id.clone()
    }
    fn describe(&self) -> String {
        format!("override {} (pin L{} until {}: {})", self.id, self.level, self.until, self.reason)
    }
    fn requested_by(&self) -> Option<&str> {
        Some(&self.requested_by)
    }
    fn requested_on(&self) -> NaiveDate {
        self.requested_on
    }
    fn approved_by(&self) -> Option<&str> {
        self.approved_by.as_deref()
    }
    fn record_approval(&mut self, approver: String, _today: NaiveDate, _: Gate) {
        self.approved_by = Some(approver);
    }
}

impl Approvable for Drain {
    fn approval_id(&self) -> String {
        self.id()
    }
    fn describe(&self) -> String {
        format!(
            "drain {} (requested by {} on {}: {})",
            self.id(),
            self.requested_by,
            self.requested_on,
            self.reason
        )
    }
    fn requested_by(&self) -> Option<&str> {
        Some(&self.requested_by)
    }
    fn requested_on(&self) -> NaiveDate {
        self.requested_on
    }
    fn approved_by(&self) -> Option<&str> {
        self.approved_by.as_deref()
    }
    fn record_approval(&mut self, approver: String, _today: NaiveDate, _: Gate) {
        self.approved_by = Some(approver);
    }
}

impl Approvable for PendingApproval {
    fn approval_id(&self) -> String {
        self.id()
    }
    fn describe(&self) -> String {
        let cause = self.cause.map(|c| format!(" ({c})")).unwrap_or_default();
        format!(
            "level change {} L{} -> L{}{cause}, proposed on {}, adding {} a month",
            self.id(),
            self.from,
            self.to,
            self.requested_on,
            self.extra_monthly_cost
        )
    }
    fn requested_by(&self) -> Option<&str> {
        None
    }
    fn requested_on(&self) -> NaiveDate {
        self.requested_on
    }
    fn approved_by(&self) -> Option<&str> {
        self.approved_by.as_deref()
    }
    fn record_approval(&mut self, approver: String, today: NaiveDate, _: Gate) {
        self.approved_by = Some(approver);
        self.approved_on = Some(today);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Cause;

    fn day(d: &str) -> NaiveDate {
        d.parse().unwrap()
    }

    fn config() -> Config {
        Config::default_config().unwrap()
    }

    fn drain(by: &str) -> Drain {
        Drain {
            reason: "teardown".into(),
            requested_by: by.into(),
            requested_on: day("2026-11-29"),
            approved_by: None,
        }
    }

    fn pending() -> PendingApproval {
        PendingApproval {
            from: 1,
            to: 2,
            cause: Some(Cause::Growth),
            requested_on: day("2026-11-29"),
            extra_monthly_cost: config().zero(),
            approved_by: None,
            approved_on: None,
        }
    }

    #[test]
    fn an_approval_naming_another_request_is_refused_and_shows_what_waits_now() {
        let mut p = pending();
        let err =
            approve(&mut p, "bob", "pending-20261129-L1-L2-churn", &config(), day("2026-11-30")).unwrap_err();
        let ApprovalRefused::NotWhatWasReviewed { current_id, current, .. } = &err else { panic!("{err:?}") };
        assert!(current_id.starts_with("pending-20261129-L1-L2-growth-"), "{current_id}");
        assert!(current.contains("L1 -> L2 (growth)"), "{current}");
        assert_eq!(p.approved_by, None);
    }

    #[test]
    fn a_request_older_than_the_expiry_cannot_be_approved() {
        let c = config();
        let mut d = drain("alice");
        let id = d.id();
        let last = last_day(&c, d.requested_on);
        assert_eq!(last, day("2026-12-06"), "seven days by default");
        let late = last.succ_opt().unwrap();
        assert!(matches!(approve(&mut d, "bob", &id, &c, late), Err(ApprovalRefused::Expired { .. })));
        assert!(approve(&mut d, "bob", &id, &c, last).is_ok());
    }

    #[test]
    fn the_requester_under_another_permission_set_cannot_approve_a_drain() {
        let requester = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_RevscaleOperator_x/alice";
        let approver = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_RevscaleApprover_y/alice";
        let mut d = drain(requester);
        let id = d.id();
        let err = approve(&mut d, approver, &id, &config(), day("2026-11-29")).unwrap_err();
        assert!(matches!(err, ApprovalRefused::SamePerson { .. }), "{err:?}");
        assert!(!d.is_active());
    }

    #[test]
    fn a_second_approval_is_refused_and_the_first_stands() {
        let mut p = pending();
        let id = p.id();
        approve(&mut p, "bob", &id, &config(), day("2026-11-30")).unwrap();
        assert_eq!((p.approved_by.as_deref(), p.approved_on), (Some("bob"), Some(day("2026-11-30"))));
        let err = approve(&mut p, "carol", &id, &config(), day("2026-11-30")).unwrap_err();
        assert!(matches!(err, ApprovalRefused::AlreadyApproved { .. }));
        assert_eq!(p.approved_by.as_deref(), Some("bob"));
    }

    #[test]
    fn a_federated_user_may_neither_approve_nor_be_approved() {
        let mut d = drain("arn:aws:iam::123456789012:user/alice");
        let id = d.id();
        let federated = "arn:aws:sts::123456789012:federated-user/bob";
        let err = approve(&mut d, federated, &id, &config(), day("2026-11-29")).unwrap_err();
        assert!(matches!(err, ApprovalRefused::Indistinct { .. }), "{err:?}");
        let mut by_federated = drain(federated);
        let id = by_federated.id();
        let err = approve(
            &mut by_federated,
            "arn:aws:iam::123456789012:user/carol",
            &id,
            &config(),
            day("2026-11-29"),
        )
        .unwrap_err();
        assert!(matches!(err, ApprovalRefused::Indistinct { .. }), "{err:?}");
        assert_eq!(by_federated.approved_by, None);
    }

    #[test]
    fn drain_ids_differ_by_requester_and_reason() {
        assert_ne!(drain("alice").id(), drain("bob").id());
        let mut other = drain("alice");
        other.reason = "another reason".into();
        assert_ne!(drain("alice").id(), other.id());
        assert!(drain("alice").id().starts_with("drain-20261129-"));
    }
}
