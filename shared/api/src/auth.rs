//! Who is asking, as a person, and what they may do.
//!
//! API Gateway's IAM authorizer proves which principal signed a request; who that is
//! as a person, and whether two principals are one person, is decided in one place,
//! the engine's [`revscale_engine::identity`], which the engine itself also uses before
//! it acts on an approval.
//!
//! Roles per route come from principal patterns (`*` wildcards) matched against the
//! person, and for a role's session also against the role's ARN: readers may read,
//! operators may change, approvers may approve or reject. Operators and approvers may
//! also read. A pattern written as a role's real ARN with its IAM path
//! (`role/ops/Operator`) matches that role's sessions: STS ARNs carry no path, and role
//! names are unique in an account whatever their path, so the path is dropped. A path
//! pattern whose role name has a wildcard is refused, since without the path it would
//! match roles outside it.

use std::fmt;

use revscale_engine::identity::{self, UnknownPrincipal};
use wildmatch::WildMatch;

/// A caller: the principal API Gateway verified, and the person it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The principal as signed (`userArn`): what the audit trail records as the actor.
    pub principal: String,
    /// Who that is, for the two-person rule and the role patterns.
    pub person: String,
}

impl Caller {
    /// Normalises a principal ARN to the person it stands for.
    pub fn from_principal(arn: &str) -> Result<Caller, UnknownPrincipal> {
        Ok(Caller { principal: arn.to_string(), person: identity::person_of(arn)? })
    }

    /// Whether this caller is the person `other` (a person or a principal ARN, as older
    /// records kept the principal) stands for.
    pub fn is_same_person_as(&self, other: &str) -> bool {
        identity::same_person(&self.person, other)
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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "principal pattern '{0}': a role pattern with an IAM path must name the role without wildcards (STS ARNs carry no path, so 'role/ops/*' would match every role); write 'role/ops/Operator' or 'role/*'"
)]
pub struct BadPattern(pub String);

impl Patterns {
    /// A comma-separated list: `arn:aws:iam::123456789012:role/Operator, arn:aws:iam::123456789012:user/*`.
    /// A role ARN with a path is kept as the role ARN without it.
    pub fn parse(list: &str) -> Result<Patterns, BadPattern> {
        list.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                let pattern = without_role_path(p)?;
                Ok((p.to_string(), WildMatch::new(&pattern)))
            })
            .collect::<Result<_, _>>()
            .map(Patterns)
    }

    /// Whether the person, or the role a role's session acts in, matches a pattern.
    pub fn matches(&self, person: &str) -> bool {
        let role = identity::role_of(person);
        self.0.iter().any(|(_, pattern)| {
            pattern.matches(person) || role.as_deref().is_some_and(|r| pattern.matches(r))
        })
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The patterns as written in the list.
    pub fn as_written(&self) -> Vec<&str> {
        self.0.iter().map(|(written, _)| written.as_str()).collect()
    }
}

/// `arn:P:iam::A:role/path/.../Name` as `arn:P:iam::A:role/Name`; anything else as it is.
fn without_role_path(pattern: &str) -> Result<String, BadPattern> {
    let Some((head, rest)) = pattern.split_once(":role/") else { return Ok(pattern.to_string()) };
    let Some((_path, name)) = rest.rsplit_once('/') else { return Ok(pattern.to_string()) };
    if name.contains(['*', '?']) || name.is_empty() {
        return Err(BadPattern(pattern.to_string()));
    }
    Ok(format!("{head}:role/{name}"))
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
            readers: Patterns(vec![("*".into(), WildMatch::new("*"))]),
            operators: Patterns(vec![("*".into(), WildMatch::new("*"))]),
            approvers: Patterns(vec![("*".into(), WildMatch::new("*"))]),
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
    fn a_role_pattern_with_an_iam_path_matches_that_roles_sessions_and_no_other() {
        let roles = Roles {
            readers: Patterns::parse("").unwrap(),
            operators: Patterns::parse("arn:aws:iam::123456789012:role/ops/platform/Operator").unwrap(),
            approvers: Patterns::parse(
                "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_Approver_9f8e",
            )
            .unwrap(),
        };
        let session = Caller::from_principal("arn:aws:sts::123456789012:assumed-role/Operator/s").unwrap();
        assert!(roles.allows(&session, Role::Operator));
        let other = Caller::from_principal("arn:aws:sts::123456789012:assumed-role/Operator2/s").unwrap();
        assert!(!roles.allows(&other, Role::Operator));
        let elsewhere = Caller::from_principal("arn:aws:sts::210987654321:assumed-role/Operator/s").unwrap();
        assert!(!roles.allows(&elsewhere, Role::Operator));
        let carol = Caller::from_principal(
            "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Approver_9f8e/carol@example.com",
        )
        .unwrap();
        assert!(roles.allows(&carol, Role::Approver) && !roles.allows(&carol, Role::Operator));
    }

    #[test]
    fn a_path_pattern_with_a_wildcard_role_name_is_refused_rather_than_widened() {
        let err = Patterns::parse("arn:aws:iam::123456789012:role/ops/*").unwrap_err();
        assert!(err.to_string().contains("role/ops/*"), "{err}");
        assert!(Patterns::parse("arn:aws:iam::123456789012:role/*").is_ok());
    }

    #[test]
    fn roles_follow_their_patterns_and_operators_and_approvers_may_read() {
        let roles = Roles {
            readers: Patterns::parse("").unwrap(),
            operators: Patterns::parse("arn:aws:iam::123456789012:role/Operator").unwrap(),
            approvers: Patterns::parse(
                " arn:aws:iam::123456789012:user/* , arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Approver_*/*",
            )
            .unwrap(),
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
