//! Who is asking, as a person, and what they may do.
//!
//! API Gateway's IAM authorizer proves which principal signed a request; it does not
//! say which person that is. Two sessions of one role (`assumed-role/Operator/a` and
//! `assumed-role/Operator/b`) may be the same person, who picked both session names,
//! so the two-person rule compares persons:
//!
//! | principal | person |
//! | --- | --- |
//! | IAM user `arn:aws:iam::A:user/alice` | itself |
//! | IAM Identity Center session `arn:aws:sts::A:assumed-role/AWSReservedSSO_<set>_<id>/alice@example.com` | role + session name: Identity Center sets the session name to the user's own name, and the user cannot choose it. For the two-person rule only the user counts: alice under two permission sets is still alice |
//! | any other role's session `arn:aws:sts::A:assumed-role/Operator/anything` | the role, `arn:aws:iam::A:role/Operator`: every session of a role is one person |
//! | federated user `arn:aws:sts::A:federated-user/name` | every federated user of the account: the caller of GetFederationToken chooses the name |
//! | the account root `arn:aws:iam::A:root` | itself |
//!
//! Roles per route come from principal patterns (`*` wildcards) matched against the
//! person: readers may read, operators may change, approvers may approve or reject.
//! Operators and approvers may also read.

use std::fmt;

use wildmatch::WildMatch;

/// The prefix IAM Identity Center gives the roles of its permission sets.
const IDENTITY_CENTER_ROLE_PREFIX: &str = "AWSReservedSSO_";

/// A caller: the principal API Gateway verified, and the person it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The principal as signed (`userArn`): what the audit trail records as the actor.
    pub principal: String,
    /// Who that is, for the two-person rule and the role patterns.
    pub person: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not an IAM principal ARN revscale can tell apart from another")]
pub struct UnknownPrincipal(pub String);

impl Caller {
    /// Normalises a principal ARN to the person it stands for (see the module table).
    pub fn from_principal(arn: &str) -> Result<Caller, UnknownPrincipal> {
        let unknown = || UnknownPrincipal(arn.to_string());
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [prefix, partition, service, _region, account, resource] = parts.as_slice() else {
            return Err(unknown());
        };
        let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
        if *prefix != "arn" || partition.is_empty() || !account_ok {
            return Err(unknown());
        }
        let person = match (*service, resource.split_once('/')) {
            ("iam", None) if *resource == "root" => arn.to_string(),
            ("iam", Some(("user", name))) if !name.is_empty() => arn.to_string(),
            ("sts", Some(("assumed-role", rest))) => {
                let (role, session) = rest.split_once('/').ok_or_else(unknown)?;
                if role.is_empty() || session.is_empty() {
                    return Err(unknown());
                }
                if role.starts_with(IDENTITY_CENTER_ROLE_PREFIX) {
                    arn.to_string()
                } else {
                    format!("arn:{partition}:iam::{account}:role/{role}")
                }
            }
            ("sts", Some(("federated-user", name))) if !name.is_empty() => {
                format!("arn:{partition}:sts::{account}:federated-user/*")
            }
            _ => return Err(unknown()),
        };
        Ok(Caller { principal: arn.to_string(), person })
    }

    /// Whether this caller is the person `other` (a person or a principal ARN, as older
    /// records kept the principal) stands for.
    pub fn is_same_person_as(&self, other: &str) -> bool {
        Caller::from_principal(other).map_or(other == self.person || other == self.principal, |o| {
            o.two_person_key() == self.two_person_key()
        })
    }

    /// Who counts as one person for the two-person rule: the person, except that an
    /// Identity Center user is the same user under every permission set (the session
    /// name is the user's name, in the account).
    fn two_person_key(&self) -> String {
        let parts: Vec<&str> = self.person.splitn(6, ':').collect();
        if let [_, partition, "sts", _, account, resource] = parts.as_slice()
            && let Some(("assumed-role", rest)) = resource.split_once('/')
            && let Some((role, user)) = rest.split_once('/')
            && role.starts_with(IDENTITY_CENTER_ROLE_PREFIX)
        {
            return format!("identity-center:{partition}:{account}:{user}");
        }
        self.person.clone()
    }
}

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Reader,
    Operator,
    Approver,
}

impl Role {
    /// The environment variable (and template parameter) holding the role's patterns.
    pub fn variable(self) -> &'static str {
        match self {
            Role::Reader => "READER_PRINCIPALS",
            Role::Operator => "OPERATOR_PRINCIPALS",
            Role::Approver => "APPROVER_PRINCIPALS",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Reader => "reader",
            Role::Operator => "operator",
            Role::Approver => "approver",
        })
    }
}

/// A role's principal patterns.
#[derive(Debug, Clone, Default)]
pub struct Patterns(Vec<(String, WildMatch)>);

impl Patterns {
    /// A comma-separated list: `arn:aws:iam::123456789012:role/Operator, arn:aws:iam::123456789012:user/*`.
    pub fn parse(list: &str) -> Patterns {
        Patterns(
            list.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| (p.to_string(), WildMatch::new(p)))
                .collect(),
        )
    }

    fn matches(&self, person: &str) -> bool {
        self.0.iter().any(|(_, pattern)| pattern.matches(person))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Who may do what.
#[derive(Debug, Clone, Default)]
pub struct Roles {
    pub readers: Patterns,
    pub operators: Patterns,
    pub approvers: Patterns,
}

impl Roles {
    /// Everyone may do everything: for tests only, so no deployed binary has it.
    #[cfg(any(test, feature = "testing"))]
    pub fn everyone() -> Roles {
        Roles {
            readers: Patterns::parse("*"),
            operators: Patterns::parse("*"),
            approvers: Patterns::parse("*"),
        }
    }

    pub fn allows(&self, caller: &Caller, role: Role) -> bool {
        let person = caller.person.as_str();
        match role {
            Role::Reader => {
                self.readers.matches(person)
                    || self.operators.matches(person)
                    || self.approvers.matches(person)
            }
            Role::Operator => self.operators.matches(person),
            Role::Approver => self.approvers.matches(person),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(arn: &str) -> String {
        Caller::from_principal(arn).unwrap().person
    }

    #[test]
    fn two_sessions_of_one_role_are_one_person() {
        let a = person("arn:aws:sts::123456789012:assumed-role/Operator/a");
        let b = person("arn:aws:sts::123456789012:assumed-role/Operator/b");
        assert_eq!(a, "arn:aws:iam::123456789012:role/Operator");
        assert_eq!(a, b);
    }

    #[test]
    fn identity_center_sessions_are_their_users_and_iam_users_themselves() {
        let alice =
            person("arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Ops_0a1b2c3d/alice@example.com");
        let bob =
            person("arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Ops_0a1b2c3d/bob@example.com");
        assert_ne!(alice, bob);
        assert!(alice.ends_with("/alice@example.com"));
        assert_eq!(person("arn:aws:iam::123456789012:user/alice"), "arn:aws:iam::123456789012:user/alice");
        assert_eq!(person("arn:aws:iam::123456789012:root"), "arn:aws:iam::123456789012:root");
        assert_eq!(
            person("arn:aws-us-gov:sts::123456789012:assumed-role/Operator/x"),
            "arn:aws-us-gov:iam::123456789012:role/Operator"
        );
    }

    #[test]
    fn an_identity_center_user_under_two_permission_sets_is_one_person_for_approvals() {
        let as_operator = Caller::from_principal(
            "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Operator_0a1b/alice@example.com",
        )
        .unwrap();
        let as_approver = Caller::from_principal(
            "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Approver_9f8e/alice@example.com",
        )
        .unwrap();
        assert_ne!(as_operator.person, as_approver.person, "each permission set matches its own patterns");
        assert!(as_approver.is_same_person_as(&as_operator.person));
        let bob = Caller::from_principal(
            "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Approver_9f8e/bob@example.com",
        )
        .unwrap();
        assert!(!bob.is_same_person_as(&as_operator.person));
    }

    #[test]
    fn federated_users_are_one_person_since_their_names_are_chosen_by_the_caller() {
        assert_eq!(
            person("arn:aws:sts::123456789012:federated-user/alice"),
            person("arn:aws:sts::123456789012:federated-user/bob")
        );
    }

    #[test]
    fn anything_that_is_not_a_principal_arn_is_refused() {
        for bad in [
            "",
            "alice",
            "arn:aws:iam::123:user/alice",
            "arn:aws:sts::123456789012:assumed-role/Operator",
            "arn:aws:sts::123456789012:assumed-role//x",
            "arn:aws:s3:::bucket",
            "arn:aws:iam::123456789012:group/admins",
        ] {
            assert!(Caller::from_principal(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_caller_is_compared_by_person_even_with_a_stored_principal() {
        let b = Caller::from_principal("arn:aws:sts::123456789012:assumed-role/Operator/b").unwrap();
        assert!(b.is_same_person_as("arn:aws:sts::123456789012:assumed-role/Operator/a"));
        assert!(b.is_same_person_as("arn:aws:iam::123456789012:role/Operator"));
        assert!(!b.is_same_person_as("arn:aws:iam::123456789012:user/alice"));
    }

    #[test]
    fn roles_follow_their_patterns_and_operators_and_approvers_may_read() {
        let roles = Roles {
            readers: Patterns::parse(""),
            operators: Patterns::parse("arn:aws:iam::123456789012:role/Operator"),
            approvers: Patterns::parse(
                " arn:aws:iam::123456789012:user/* , arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Approver_*/*",
            ),
        };
        let operator = Caller::from_principal("arn:aws:sts::123456789012:assumed-role/Operator/s").unwrap();
        let alice = Caller::from_principal("arn:aws:iam::123456789012:user/alice").unwrap();
        let sso =
            Caller::from_principal("arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Approver_9f/carol")
                .unwrap();
        let stranger = Caller::from_principal("arn:aws:sts::123456789012:assumed-role/Other/s").unwrap();
        assert!(roles.allows(&operator, Role::Operator) && !roles.allows(&operator, Role::Approver));
        assert!(roles.allows(&operator, Role::Reader));
        assert!(roles.allows(&alice, Role::Approver) && !roles.allows(&alice, Role::Operator));
        assert!(roles.allows(&sso, Role::Approver));
        assert!(!roles.allows(&stranger, Role::Reader));
        assert!(Roles::everyone().allows(&stranger, Role::Approver));
    }
}
