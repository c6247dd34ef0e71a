//! Who a principal is, as a person: the one comparison every two-person rule uses.
//!
//! API Gateway's IAM authorizer proves which principal signed a request; it does not
//! say which person that is. Two sessions of one role (`assumed-role/Operator/a` and
//! `assumed-role/Operator/b`) may be the same person, who picked both session names:
//!
//! | principal | person |
//! | --- | --- |
//! | IAM user `arn:aws:iam::A:user/alice` | itself |
//! | IAM Identity Center session `arn:aws:sts::A:assumed-role/AWSReservedSSO_<set>_<id>/alice@example.com` | the session itself, for role patterns; for the two-person rule only the user counts (Identity Center sets the session name to the user's name, which the user cannot choose): alice under two permission sets is still alice |
//! | any other role's session `arn:aws:sts::A:assumed-role/Operator/anything` | the role, `arn:aws:iam::A:role/Operator`: every session of a role is one person |
//! | federated user `arn:aws:sts::A:federated-user/name` | every federated user of the account: the caller of GetFederationToken chooses the name |
//! | the account root `arn:aws:iam::A:root` | itself |
//!
//! The two-person key is compared without regard to case: IAM user and role names are
//! unique regardless of case, so `user/Alice` and `user/alice` are one identity. Erring
//! this way can only refuse an approval, never let one person approve their own request.

/// The prefix IAM Identity Center gives the roles of its permission sets.
pub const IDENTITY_CENTER_ROLE_PREFIX: &str = "AWSReservedSSO_";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not an IAM principal ARN revscale can tell apart from another")]
pub struct UnknownPrincipal(pub String);

/// A principal ARN taken apart: partition, service, account and resource.
struct Arn<'a> {
    partition: &'a str,
    service: &'a str,
    account: &'a str,
    resource: &'a str,
}

fn parse_arn(arn: &str) -> Option<Arn<'_>> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, partition, service, _region, account, resource] = parts.as_slice() else {
        return None;
    };
    let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    (*prefix == "arn" && !partition.is_empty() && account_ok).then_some(Arn {
        partition,
        service,
        account,
        resource,
    })
}

/// The person a signed principal ARN stands for (see the module table).
pub fn person_of(principal: &str) -> Result<String, UnknownPrincipal> {
    let unknown = || UnknownPrincipal(principal.to_string());
    let Arn { partition, service, account, resource } = parse_arn(principal).ok_or_else(unknown)?;
    match (service, resource.split_once('/')) {
        ("iam", None) if resource == "root" => Ok(principal.to_string()),
        ("iam", Some(("user", name))) if !name.is_empty() => Ok(principal.to_string()),
        ("sts", Some(("assumed-role", rest))) => {
            let (role, session) = rest.split_once('/').ok_or_else(unknown)?;
            if role.is_empty() || session.is_empty() || session.contains('/') {
                return Err(unknown());
            }
            if role.starts_with(IDENTITY_CENTER_ROLE_PREFIX) {
                Ok(principal.to_string())
            } else {
                Ok(format!("arn:{partition}:iam::{account}:role/{role}"))
            }
        }
        ("sts", Some(("federated-user", name))) if !name.is_empty() => {
            Ok(format!("arn:{partition}:sts::{account}:federated-user/*"))
        }
        _ => Err(unknown()),
    }
}

/// The role an assumed-role person acts in, as the IAM role ARN without its path (STS
/// ARNs carry no path): what a role pattern is matched against.
pub fn role_of(person: &str) -> Option<String> {
    let Arn { partition, service, account, resource } = parse_arn(person)?;
    match (service, resource.split_once('/')) {
        ("iam", Some(("role", name))) => {
            Some(format!("arn:{partition}:iam::{account}:role/{}", name.rsplit('/').next()?))
        }
        ("sts", Some(("assumed-role", rest))) => {
            let (role, _) = rest.split_once('/')?;
            Some(format!("arn:{partition}:iam::{account}:role/{role}"))
        }
        _ => None,
    }
}

/// Who counts as one person for the two-person rule, from a principal or a person as
/// stored on a request (older records kept the principal). Anything that is neither
/// (the names tests and the simulator use) is its own key.
pub fn two_person_key(who: &str) -> String {
    let who = who.trim();
    let person = person_of(who).unwrap_or_else(|_| who.to_string());
    if let Some(Arn { partition, service: "sts", resource, .. }) = parse_arn(&person)
        && let Some(("assumed-role", rest)) = resource.split_once('/')
        && let Some((role, user)) = rest.split_once('/')
        && role.starts_with(IDENTITY_CENTER_ROLE_PREFIX)
    {
        // Identity Center users belong to the organisation, not to an account: alice
        // signing in to two accounts is still alice.
        return format!("identity-center:{partition}:{user}").to_lowercase();
    }
    person.to_lowercase()
}

/// Whether a principal's person cannot be told apart from others at all: a federated
/// user's name is chosen by whoever called GetFederationToken, an IAM user among them,
/// so `alice` could approve her own request as `federated-user/anything`. Such a
/// principal may neither approve nor have its requests approved.
pub fn is_indistinct(who: &str) -> bool {
    let who = who.trim();
    let person = person_of(who).unwrap_or_else(|_| who.to_string());
    parse_arn(&person).is_some_and(|arn| arn.service == "sts" && arn.resource.starts_with("federated-user/"))
}

/// Whether `a` and `b` (principals or persons) are one person for the two-person rule.
pub fn same_person(a: &str, b: &str) -> bool {
    two_person_key(a) == two_person_key(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE_OPERATOR: &str =
        "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_RevscaleOperator_0a1b/alice";
    const ALICE_APPROVER: &str =
        "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_RevscaleApprover_9f8e/alice";

    #[test]
    fn an_identity_center_user_is_one_person_under_every_permission_set() {
        assert!(same_person(ALICE_OPERATOR, ALICE_APPROVER));
        assert!(same_person(&person_of(ALICE_OPERATOR).unwrap(), ALICE_APPROVER));
        assert!(!same_person(
            ALICE_OPERATOR,
            "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_RevscaleApprover_9f8e/bob"
        ));
    }

    #[test]
    fn names_that_differ_only_by_case_are_one_person() {
        assert!(same_person("arn:aws:iam::123456789012:user/Alice", "arn:aws:iam::123456789012:user/alice"));
        assert!(same_person(
            ALICE_OPERATOR,
            "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_X_1/ALICE"
        ));
    }

    #[test]
    fn a_role_session_is_its_role_and_another_account_is_another_person() {
        assert!(same_person(
            "arn:aws:sts::123456789012:assumed-role/Operator/a",
            "arn:aws:iam::123456789012:role/Operator"
        ));
        assert!(!same_person(
            "arn:aws:sts::123456789012:assumed-role/Operator/a",
            "arn:aws:sts::210987654321:assumed-role/Operator/a"
        ));
    }

    #[test]
    fn role_of_drops_the_path_sts_arns_do_not_carry() {
        assert_eq!(
            role_of("arn:aws:iam::123456789012:role/ops/team/Operator").as_deref(),
            Some("arn:aws:iam::123456789012:role/Operator")
        );
        assert_eq!(
            role_of("arn:aws:sts::123456789012:assumed-role/Operator/s").as_deref(),
            Some("arn:aws:iam::123456789012:role/Operator")
        );
        assert_eq!(role_of("arn:aws:iam::123456789012:user/alice"), None);
    }

    #[test]
    fn an_identity_center_user_is_one_person_in_every_account_of_the_organisation() {
        assert!(same_person(
            ALICE_OPERATOR,
            "arn:aws:sts::210987654321:assumed-role/AWSReservedSSO_RevscaleApprover_77aa/alice"
        ));
        assert!(!same_person(
            ALICE_OPERATOR,
            "arn:aws-us-gov:sts::123456789012:assumed-role/AWSReservedSSO_RevscaleApprover_77aa/alice"
        ));
    }

    #[test]
    fn federated_users_cannot_be_told_apart_from_anyone_and_others_can() {
        assert!(is_indistinct("arn:aws:sts::123456789012:federated-user/alice"));
        assert!(is_indistinct("arn:aws:sts::123456789012:federated-user/*"));
        assert!(!is_indistinct("arn:aws:iam::123456789012:user/alice"));
        assert!(!is_indistinct(ALICE_OPERATOR));
        assert!(!is_indistinct("alice"));
    }

    #[test]
    fn a_stored_principal_with_surrounding_spaces_is_the_same_person() {
        assert!(same_person(
            " arn:aws:sts::123456789012:assumed-role/Operator/a ",
            "arn:aws:iam::123456789012:role/Operator"
        ));
    }

    #[test]
    fn a_session_name_with_a_slash_is_not_a_principal() {
        assert!(person_of("arn:aws:sts::123456789012:assumed-role/Operator/a/b").is_err());
    }
}
