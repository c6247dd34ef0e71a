//! `eks_cluster`: COLD = no cluster (`DeleteCluster`); WARM and HOT = control plane
//! ACTIVE (`CreateCluster`).
//!
//! The cluster is created with access entries as its only authentication
//! (`authenticationMode: API`) and without an administrator for its creator: once it is
//! ACTIVE, the provisioner's role gets an access entry with the edit policy and the
//! evaluator's the view policy, both scoped to the namespaces of the configuration's
//! workloads, and nothing cluster-wide.

use aws_sdk_eks::types::{
    AccessScope, AccessScopeType, AuthenticationMode, ClusterStatus, CreateAccessConfigRequest,
    VpcConfigRequest,
};
use revscale_engine::config::Component;
use revscale_engine::drivers::EksCluster;
use revscale_engine::model::ComponentState;
use revscale_engine::ports::{Apply, DriverError, DriverStatus, Observed};

use super::{AwsKind, Clients, is_code, sdk_error};

/// EKS's codes for "another operation is under way".
pub(crate) const BUSY: &[&str] = &["ResourceInUseException", "ConflictException"];
pub(crate) const NOT_FOUND: &[&str] = &["ResourceNotFoundException"];

/// The names of EKS's access policies revscale's roles get, in the workloads'
/// namespaces; [`policy_arn`] gives their ARN in the cluster's partition.
pub const EDIT_POLICY: &str = "AmazonEKSEditPolicy";
pub const VIEW_POLICY: &str = "AmazonEKSViewPolicy";

/// An access policy's ARN in the partition of `cluster_arn` (`aws`, `aws-cn`,
/// `aws-us-gov`): the policies exist in each partition under its own name.
pub fn policy_arn(cluster_arn: Option<&str>, policy: &str) -> String {
    let partition =
        cluster_arn.and_then(|arn| arn.split(':').nth(1)).filter(|p| !p.is_empty()).unwrap_or("aws");
    format!("arn:{partition}:eks::aws:cluster-access-policy/{policy}")
}

/// The roles that get access entries on the cluster revscale creates: the provisioner's
/// (`PROVISION_ROLE_ARN`, to scale and apply workloads) and the evaluator's
/// (`EVALUATE_ROLE_ARN`, whose daily drift check reads them). The template sets both;
/// without them (a local run) no entry is made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterAccess {
    pub provisioner: Option<String>,
    pub evaluator: Option<String>,
}

impl ClusterAccess {
    pub fn from_vars<F: Fn(&str) -> Option<String>>(vars: &crate::env::Vars<F>) -> Self {
        ClusterAccess {
            provisioner: vars.optional("PROVISION_ROLE_ARN"),
            evaluator: vars.optional("EVALUATE_ROLE_ARN"),
        }
    }

    /// Each role with the policy it gets.
    fn grants(&self) -> impl Iterator<Item = (&str, &'static str)> {
        [(self.provisioner.as_deref(), EDIT_POLICY), (self.evaluator.as_deref(), VIEW_POLICY)]
            .into_iter()
            .filter_map(|(role, policy)| role.map(|r| (r, policy)))
    }
}

/// Gives revscale's roles their access entries on `spec`'s cluster (ACTIVE, its ARN
/// `cluster_arn`), each policy scoped to the workloads' namespaces; with no workload
/// left, takes the policy away. Reads first: a step with nothing to change writes
/// nothing (and answers false). An entry made by hand is kept, and so are policies
/// revscale does not give.
pub async fn grant_access(
    aws: &Clients,
    spec: &EksCluster,
    cluster_arn: Option<&str>,
) -> Result<bool, DriverError> {
    let mut changed = false;
    let mut namespaces = spec.workload_namespaces.clone();
    namespaces.sort();
    namespaces.dedup();
    for (role, policy) in aws.cluster_access.grants() {
        let policy = policy_arn(cluster_arn, policy);
        let listed = aws
            .eks
            .list_associated_access_policies()
            .cluster_name(&spec.cluster_name)
            .principal_arn(role)
            .send()
            .await;
        let scope_now: Option<Vec<String>> = match listed {
            Ok(out) => out
                .associated_access_policies
                .unwrap_or_default()
                .into_iter()
                .find(|a| a.policy_arn.as_deref() == Some(policy.as_str()))
                .map(|a| {
                    let scope = a.access_scope;
                    let mut current = scope.as_ref().and_then(|s| s.namespaces.clone()).unwrap_or_default();
                    // A cluster-wide scope is never the one wanted.
                    if scope.and_then(|s| s.r#type) != Some(AccessScopeType::Namespace) {
                        current = vec!["*".into()];
                    }
                    current.sort();
                    current
                }),
            // No entry yet.
            Err(e) if is_code(&e, NOT_FOUND) => {
                if namespaces.is_empty() {
                    continue;
                }
                let created = aws
                    .eks
                    .create_access_entry()
                    .cluster_name(&spec.cluster_name)
                    .principal_arn(role)
                    .send()
                    .await;
                changed = true;
                match created {
                    Ok(_) => None,
                    // Made a moment ago by another step: its policy is set below.
                    Err(e) if is_code(&e, &["ResourceInUseException"]) => None,
                    Err(e) => return Err(sdk_error(e, &["ConflictException"])),
                }
            }
            Err(e) => return Err(sdk_error(e, BUSY)),
        };
        match scope_now {
            Some(current) if current == namespaces => {}
            Some(_) if namespaces.is_empty() => {
                changed = true;
                aws.eks
                    .disassociate_access_policy()
                    .cluster_name(&spec.cluster_name)
                    .principal_arn(role)
                    .policy_arn(&policy)
                    .send()
                    .await
                    .map_err(|e| sdk_error(e, BUSY))?;
            }
            None if namespaces.is_empty() => {}
            // Associating again replaces the scope.
            _ => {
                changed = true;
                let scope = AccessScope::builder()
                    .r#type(AccessScopeType::Namespace)
                    .set_namespaces(Some(namespaces.clone()))
                    .build();
                aws.eks
                    .associate_access_policy()
                    .cluster_name(&spec.cluster_name)
                    .principal_arn(role)
                    .policy_arn(&policy)
                    .access_scope(scope)
                    .send()
                    .await
                    .map_err(|e| sdk_error(e, BUSY))?;
            }
        }
    }
    Ok(changed)
}

/// [`grant_access`] from a workload's step on the cluster revscale created (`found`,
/// as the step described it), with the configuration's `namespaces`: whether anything
/// changed. Nothing when the cluster is not ACTIVE (the step then fails for that
/// reason).
pub async fn keep_access_current(
    aws: &Clients,
    found: &aws_sdk_eks::types::Cluster,
    namespaces: &[String],
) -> Result<bool, DriverError> {
    let (Some(ClusterStatus::Active), Some(name)) = (&found.status, &found.name) else { return Ok(false) };
    let spec = EksCluster {
        cluster_name: name.clone(),
        workload_namespaces: namespaces.to_vec(),
        ..EksCluster::default()
    };
    grant_access(aws, &spec, found.arn.as_deref()).await
}

/// The cluster as EKS describes it, or `None` when it does not exist.
pub(crate) async fn cluster(
    aws: &Clients,
    name: &str,
) -> Result<Option<aws_sdk_eks::types::Cluster>, DriverError> {
    match aws.eks.describe_cluster().name(name).send().await {
        Ok(out) => Ok(out.cluster),
        Err(e) if is_code(&e, NOT_FOUND) => Ok(None),
        Err(e) => Err(sdk_error(e, BUSY)),
    }
}

impl AwsKind for EksCluster {
    fn iam_actions(&self) -> &'static [&'static str] {
        &[
            "eks:CreateCluster",
            "eks:DescribeCluster",
            "eks:DeleteCluster",
            "eks:TagResource",
            "eks:CreateAccessEntry",
            "eks:ListAssociatedAccessPolicies",
            "eks:AssociateAccessPolicy",
            "eks:DisassociateAccessPolicy",
            "iam:PassRole",
        ]
    }

    async fn apply(&self, aws: &Clients, request: &Apply<'_>) -> Result<(), DriverError> {
        let found = cluster(aws, &self.cluster_name).await?;
        let status = found.as_ref().and_then(|c| c.status.clone());
        match (request.target, found.is_some()) {
            (ComponentState::Cold, true) => {
                aws.eks
                    .delete_cluster()
                    .name(&self.cluster_name)
                    .send()
                    .await
                    .map_err(|e| sdk_error(e, BUSY))?;
            }
            // ACTIVE (the step after the one that created it: WARM -> HOT, or any step
            // of a later run): the roles' access, for today's namespaces.
            (ComponentState::Warm | ComponentState::Hot, true) if status == Some(ClusterStatus::Active) => {
                grant_access(aws, self, found.as_ref().and_then(|c| c.arn.as_deref())).await?;
            }
            (ComponentState::Warm | ComponentState::Hot, false) => {
                let vpc = VpcConfigRequest::builder()
                    .set_subnet_ids(Some(self.subnet_ids.clone()))
                    .set_security_group_ids(Some(self.security_group_ids.clone()))
                    .build();
                let tags =
                    aws.tags(request.component).into_iter().map(|(k, v)| (k.into(), v.into())).collect();
                // Access entries only, and no administrator for the creator: who may
                // do what inside is granted, namespace by namespace, once it is ACTIVE.
                let access = CreateAccessConfigRequest::builder()
                    .authentication_mode(AuthenticationMode::Api)
                    .bootstrap_cluster_creator_admin_permissions(false)
                    .build();
                aws.eks
                    .create_cluster()
                    .name(&self.cluster_name)
                    .role_arn(&self.role_arn)
                    .access_config(access)
                    .version(&self.kubernetes_version)
                    .resources_vpc_config(vpc)
                    .set_tags(Some(tags))
                    .send()
                    .await
                    .map_err(|e| sdk_error(e, BUSY))?;
            }
            _ => {}
        }
        Ok(())
    }

    async fn status(
        &self,
        aws: &Clients,
        _: &Component,
        target: ComponentState,
    ) -> Result<DriverStatus, DriverError> {
        let status = cluster(aws, &self.cluster_name).await?.and_then(|c| c.status);
        Ok(cluster_progress(status.as_ref(), target))
    }

    async fn observe(&self, aws: &Clients, _: &Component) -> Result<Observed, DriverError> {
        Ok(match cluster(aws, &self.cluster_name).await?.and_then(|c| c.status) {
            None => Observed::at(&[ComponentState::Cold], "no cluster"),
            Some(ClusterStatus::Active) => {
                Observed::at(&[ComponentState::Warm, ComponentState::Hot], "cluster ACTIVE")
            }
            Some(other) => Observed::moving(format!("cluster {}", other.as_str())),
        })
    }
}

/// Maps an EKS cluster status to progress towards `target`.
pub fn cluster_progress(status: Option<&ClusterStatus>, target: ComponentState) -> DriverStatus {
    match (status, target) {
        (None, ComponentState::Cold) => DriverStatus::Ready,
        (None, _) => DriverStatus::Failed("the cluster does not exist".into()),
        (Some(ClusterStatus::Active), ComponentState::Warm | ComponentState::Hot) => DriverStatus::Ready,
        (Some(ClusterStatus::Creating | ClusterStatus::Updating | ClusterStatus::Pending), _) => {
            DriverStatus::InProgress
        }
        (Some(ClusterStatus::Deleting), ComponentState::Cold) => DriverStatus::InProgress,
        (Some(ClusterStatus::Deleting), _) => DriverStatus::Failed("the cluster is being deleted".into()),
        (Some(ClusterStatus::Failed), _) => DriverStatus::Failed("the cluster is FAILED".into()),
        // Still there after a delete was requested: the deletion has not begun yet.
        (Some(ClusterStatus::Active), _) => DriverStatus::InProgress,
        (Some(other), _) => DriverStatus::Failed(format!("unexpected cluster status {}", other.as_str())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ComponentState::{Cold, Hot, Warm};

    // Access entries, against a server answering as EKS does (restJson: the error's
    // code in `x-amzn-ErrorType`).
    mod access {
        use wiremock::matchers::{body_partial_json, method, path, path_regex};
        use wiremock::{Mock, MockServer, ResponseTemplate};

        use super::super::*;

        const ROLE: &str = "arn:aws-cn:iam::111122223333:role/revscale-provision";
        const CLUSTER_ARN: &str = "arn:aws-cn:eks:cn-north-1:111122223333:cluster/revscale";
        const LIST: &str = r"^/clusters/revscale/access-entries/[^/]+/access-policies$";
        const EDIT_IN_CHINA: &str = "arn:aws-cn:eks::aws:cluster-access-policy/AmazonEKSEditPolicy";

        fn clients(server: &MockServer) -> Clients {
            crate::drivers::clients_at(
                &server.uri(),
                ClusterAccess { provisioner: Some(ROLE.into()), evaluator: None },
            )
        }

        fn spec(namespaces: &[&str]) -> EksCluster {
            EksCluster {
                cluster_name: "revscale".into(),
                workload_namespaces: namespaces.iter().map(|n| n.to_string()).collect(),
                ..EksCluster::default()
            }
        }

        /// The role's entry with the edit policy at `scope`.
        fn associated(scope: serde_json::Value) -> ResponseTemplate {
            ResponseTemplate::new(200).set_body_json(serde_json::json!({
                "clusterName": "revscale", "principalArn": ROLE,
                "associatedAccessPolicies": [
                    {"policyArn": "arn:aws-cn:eks::aws:cluster-access-policy/AmazonEKSAdminViewPolicy",
                     "accessScope": {"type": "cluster"}},
                    {"policyArn": EDIT_IN_CHINA, "accessScope": scope},
                ],
            }))
        }

        async fn expect(
            server: &MockServer,
            verb: &str,
            at: &str,
            times: u64,
            body: Option<serde_json::Value>,
        ) {
            let mut mock = Mock::given(method(verb)).and(path_regex(at));
            if let Some(body) = body {
                mock = mock.and(body_partial_json(body));
            }
            mock.respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({})))
                .expect(times)
                .mount(server)
                .await;
        }

        #[tokio::test]
        async fn a_role_without_an_entry_gets_one_and_the_edit_policy_of_the_clusters_partition_in_its_namespaces()
         {
            let server = MockServer::start().await;
            Mock::given(method("GET"))
                .and(path_regex(LIST))
                .respond_with(
                    ResponseTemplate::new(404)
                        .insert_header("x-amzn-ErrorType", "ResourceNotFoundException")
                        .set_body_json(
                            serde_json::json!({"message": "The specified principalArn could not be found."}),
                        ),
                )
                .expect(1)
                .mount(&server)
                .await;
            Mock::given(method("POST"))
                .and(path("/clusters/revscale/access-entries"))
                .and(body_partial_json(serde_json::json!({"principalArn": ROLE})))
                .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({})))
                .expect(1)
                .mount(&server)
                .await;
            let scope = serde_json::json!({"policyArn": EDIT_IN_CHINA,
                "accessScope": {"type": "namespace", "namespaces": ["tee", "vault"]}});
            expect(&server, "POST", LIST, 1, Some(scope)).await;
            grant_access(&clients(&server), &spec(&["vault", "tee", "vault"]), Some(CLUSTER_ARN))
                .await
                .unwrap();
        }

        #[tokio::test]
        async fn a_step_whose_scope_is_already_right_only_reads() {
            let server = MockServer::start().await;
            let scope = serde_json::json!({"type": "namespace", "namespaces": ["vault", "tee"]});
            Mock::given(method("GET"))
                .and(path_regex(LIST))
                .respond_with(associated(scope))
                .expect(1)
                .mount(&server)
                .await;
            expect(&server, "POST", ".*", 0, None).await;
            expect(&server, "DELETE", ".*", 0, None).await;
            grant_access(&clients(&server), &spec(&["tee", "vault"]), Some(CLUSTER_ARN)).await.unwrap();
        }

        #[tokio::test]
        async fn a_namespace_added_or_a_cluster_wide_scope_is_set_to_the_workloads_namespaces() {
            for current in [
                serde_json::json!({"type": "namespace", "namespaces": ["vault"]}),
                serde_json::json!({"type": "cluster"}),
            ] {
                let server = MockServer::start().await;
                Mock::given(method("GET"))
                    .and(path_regex(LIST))
                    .respond_with(associated(current))
                    .mount(&server)
                    .await;
                let scope =
                    serde_json::json!({"accessScope": {"type": "namespace", "namespaces": ["tee", "vault"]}});
                expect(&server, "POST", LIST, 1, Some(scope)).await;
                expect(&server, "POST", "^/clusters/revscale/access-entries$", 0, None).await;
                grant_access(&clients(&server), &spec(&["tee", "vault"]), Some(CLUSTER_ARN)).await.unwrap();
            }
        }

        #[tokio::test]
        async fn with_no_workload_left_the_role_loses_the_policy_and_no_entry_is_made_for_none() {
            let server = MockServer::start().await;
            let scope = serde_json::json!({"type": "namespace", "namespaces": ["vault"]});
            Mock::given(method("GET"))
                .and(path_regex(LIST))
                .respond_with(associated(scope))
                .mount(&server)
                .await;
            let edit = "arn%3Aaws-cn%3Aeks%3A%3Aaws%3Acluster-access-policy%2FAmazonEKSEditPolicy";
            expect(
                &server,
                "DELETE",
                &format!("^/clusters/revscale/access-entries/[^/]+/access-policies/{edit}$"),
                1,
                None,
            )
            .await;
            expect(&server, "POST", ".*", 0, None).await;
            grant_access(&clients(&server), &spec(&[]), Some(CLUSTER_ARN)).await.unwrap();

            let server = MockServer::start().await;
            Mock::given(method("GET"))
                .and(path_regex(LIST))
                .respond_with(
                    ResponseTemplate::new(404).insert_header("x-amzn-ErrorType", "ResourceNotFoundException"),
                )
                .mount(&server)
                .await;
            expect(&server, "POST", ".*", 0, None).await;
            grant_access(&clients(&server), &spec(&[]), Some(CLUSTER_ARN)).await.unwrap();
        }

        #[tokio::test]
        async fn a_refused_read_fails_the_step_naming_what_eks_said() {
            let server = MockServer::start().await;
            Mock::given(method("GET"))
                .and(path_regex(LIST))
                .respond_with(
                    ResponseTemplate::new(403)
                        .insert_header("x-amzn-ErrorType", "AccessDeniedException")
                        .set_body_json(serde_json::json!({"message": "not authorized to perform: eks:ListAssociatedAccessPolicies"})),
                )
                .mount(&server)
                .await;
            expect(&server, "POST", ".*", 0, None).await;
            let err =
                grant_access(&clients(&server), &spec(&["vault"]), Some(CLUSTER_ARN)).await.unwrap_err();
            assert!(err.to_string().contains("eks:ListAssociatedAccessPolicies"), "{err}");
        }

        #[test]
        fn the_policies_are_named_in_the_clusters_partition() {
            assert_eq!(policy_arn(Some(CLUSTER_ARN), EDIT_POLICY), EDIT_IN_CHINA);
            assert_eq!(
                policy_arn(Some("arn:aws-us-gov:eks:us-gov-west-1:1:cluster/x"), VIEW_POLICY),
                "arn:aws-us-gov:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"
            );
            assert_eq!(
                policy_arn(None, VIEW_POLICY),
                "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"
            );
        }
    }

    #[test]
    fn every_cluster_status_maps_to_progress() {
        use ClusterStatus as C;
        assert_eq!(cluster_progress(None, Cold), DriverStatus::Ready);
        assert!(matches!(cluster_progress(None, Warm), DriverStatus::Failed(_)));
        assert_eq!(cluster_progress(Some(&C::Active), Warm), DriverStatus::Ready);
        assert_eq!(cluster_progress(Some(&C::Active), Hot), DriverStatus::Ready);
        assert_eq!(cluster_progress(Some(&C::Active), Cold), DriverStatus::InProgress);
        for s in [C::Creating, C::Updating, C::Pending] {
            assert_eq!(cluster_progress(Some(&s), Warm), DriverStatus::InProgress, "{s:?}");
        }
        assert_eq!(cluster_progress(Some(&C::Deleting), Cold), DriverStatus::InProgress);
        assert!(matches!(cluster_progress(Some(&C::Deleting), Warm), DriverStatus::Failed(_)));
        assert!(matches!(cluster_progress(Some(&C::Failed), Warm), DriverStatus::Failed(_)));
        assert!(matches!(cluster_progress(Some(&C::from("SOMETHING_NEW")), Warm), DriverStatus::Failed(_)));
    }
}
