//! IAM and STS through the signed Query client, for `revscale doctor`: who the caller
//! is, whether a role exists, and what a principal's policies allow (policy
//! simulation). Three calls do not justify the IAM SDK crate's build time.

use crate::query::{self, IAM, QueryClient, QueryError, STS};

/// One action's outcome under a policy simulation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub action: String,
    /// `allowed`, `explicitDeny` or `implicitDeny`, as IAM says it.
    pub decision: String,
    /// Condition keys a statement needed and the simulation was not given: a denial
    /// with some is the simulation's limit, not necessarily the policy's.
    pub missing_context: Vec<String>,
}

impl Evaluation {
    pub fn allowed(&self) -> bool {
        self.decision == "allowed"
    }
}

/// What to simulate: actions on resources, with condition keys (each with one or more
/// values: `aws:TagKeys` is a list).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Simulation {
    pub actions: Vec<String>,
    /// The resources' ARNs; empty means `*`.
    pub resources: Vec<String>,
    pub context: Vec<(String, Vec<String>)>,
}

pub struct Iam {
    iam: QueryClient,
    sts: QueryClient,
}

impl Iam {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        let http = query::http_client();
        Iam { iam: QueryClient::sharing(sdk, IAM, &http), sts: QueryClient::sharing(sdk, STS, &http) }
    }

    /// The ARN of the principal whose credentials sign (`sts:GetCallerIdentity`, which
    /// no policy can deny).
    pub async fn caller_arn(&self) -> Result<String, QueryError> {
        let xml = self.sts.call("GetCallerIdentity", &[]).await?;
        parse_caller(&xml).map_err(|what| self.sts.bad_answer("GetCallerIdentity", what))
    }

    /// Whether the role exists: `false` on IAM's NoSuchEntity, an error on anything else.
    pub async fn role_exists(&self, name: &str) -> Result<bool, QueryError> {
        match self.iam.call("GetRole", &[("RoleName".into(), name.into())]).await {
            Ok(_) => Ok(true),
            Err(e) if e.code() == Some("NoSuchEntity") => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// What `principal`'s policies decide for each action on the simulation's
    /// resources, with its condition keys set (a policy scoped by tag needs them to
    /// allow anything).
    pub async fn simulate(
        &self,
        principal: &str,
        simulation: &Simulation,
    ) -> Result<Vec<Evaluation>, QueryError> {
        let mut params = vec![("PolicySourceArn".to_string(), principal.to_string())];
        params.extend(query::member_list("ActionNames", &simulation.actions));
        params.extend(query::member_list("ResourceArns", &simulation.resources));
        for (n, (key, values)) in simulation.context.iter().enumerate() {
            let prefix = format!("ContextEntries.member.{}", n + 1);
            params.push((format!("{prefix}.ContextKeyName"), key.clone()));
            params.extend(query::member_list(&format!("{prefix}.ContextKeyValues"), values));
            let kind = if values.len() > 1 { "stringList" } else { "string" };
            params.push((format!("{prefix}.ContextKeyType"), kind.into()));
        }
        let xml = self.iam.call("SimulatePrincipalPolicy", &params).await?;
        parse_simulation(&xml).map_err(|what| self.iam.bad_answer("SimulatePrincipalPolicy", what))
    }
}

fn parse_caller(xml: &str) -> Result<String, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| e.to_string())?;
    let result = query::result(&doc, "GetCallerIdentity")?;
    query::child_text(result, "Arn").map(str::to_owned).ok_or_else(|| "no <Arn>".into())
}

fn parse_simulation(xml: &str) -> Result<Vec<Evaluation>, String> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| e.to_string())?;
    let result = query::result(&doc, "SimulatePrincipalPolicy")?;
    query::members(result, "EvaluationResults", "member")
        .map(|m| {
            Ok(Evaluation {
                action: query::child_text(m, "EvalActionName")
                    .ok_or("a result without <EvalActionName>")?
                    .to_owned(),
                decision: query::child_text(m, "EvalDecision")
                    .ok_or("a result without <EvalDecision>")?
                    .to_owned(),
                missing_context: query::members(m, "MissingContextValues", "member")
                    .filter_map(|k| k.text())
                    .map(|k| k.trim().to_owned())
                    .collect(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_simulation_answer_gives_each_actions_decision() {
        // The shape of IAM's documented SimulatePrincipalPolicy answer.
        let xml = r#"<SimulatePrincipalPolicyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
  <SimulatePrincipalPolicyResult>
    <IsTruncated>false</IsTruncated>
    <EvaluationResults>
      <member><EvalResourceName>*</EvalResourceName><EvalActionName>ecs:UpdateService</EvalActionName><EvalDecision>allowed</EvalDecision><MatchedStatements/></member>
      <member><EvalResourceName>*</EvalResourceName><EvalActionName>ecs:TagResource</EvalActionName><EvalDecision>implicitDeny</EvalDecision><MatchedStatements/><MissingContextValues><member>aws:ResourceTag/team</member></MissingContextValues></member>
    </EvaluationResults>
  </SimulatePrincipalPolicyResult>
  <ResponseMetadata><RequestId>004d7059</RequestId></ResponseMetadata>
</SimulatePrincipalPolicyResponse>"#;
        let results = parse_simulation(xml).unwrap();
        assert_eq!(results.len(), 2);
        assert!(results[0].allowed());
        assert_eq!((results[1].action.as_str(), results[1].allowed()), ("ecs:TagResource", false));
        assert_eq!(results[1].missing_context, ["aws:ResourceTag/team"]);
        assert!(results[0].missing_context.is_empty());
        assert!(parse_simulation("<ErrorResponse/>").is_err());
    }

    #[test]
    fn the_callers_arn_is_read_from_get_caller_identity() {
        let xml = r#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/alice</Arn><UserId>AIDA</UserId><Account>123456789012</Account></GetCallerIdentityResult>
</GetCallerIdentityResponse>"#;
        assert_eq!(parse_caller(xml).unwrap(), "arn:aws:iam::123456789012:user/alice");
    }
}
