//! Component drivers on AWS, behind the engine's `ComponentDriver` port: one module per
//! kind, each implementing [`AwsKind`] for the engine's spec of that kind. Dispatch
//! goes through the engine's registry (`with_driver_spec!`), so a kind the engine
//! knows and this crate does not implement fails to compile.
//!
//! | kind | COLD | WARM | HOT |
//! | --- | --- | --- | --- |
//! | `eks_cluster` | no cluster | control plane ACTIVE | as WARM |
//! | `eks_nodegroup` | no node group | min = desired = 0 | the configured sizes |
//! | `ssm_flag` | `off` | `warm` | `on` |
//! | `ecs_service` | desiredCount 0 | desiredCount 0 | the configured or saved count |
//! | `autoscaling_group` | min = desired = 0 | as COLD | the configured or saved sizes |
//! | `rds_instance`, `aurora_cluster` | stopped | stopped | available |
//! | `ec2_instances` | stopped | stopped | running, status checks passed |
//! | `lambda_provisioned_concurrency` | none | none | the configured amount |
//! | `cloudformation_stack` | no stack | WARM parameters | HOT parameters |
//! | `kubernetes_workload` | 0 replicas | 0 replicas (KEDA: paused at 0) | the configured or saved replicas (KEDA: resumed) |
//! | `always_on` | never switched | never switched | always |
//!
//! `apply` starts the change and returns at once; `status` reads progress towards a
//! state; `observe` reads where the resource is. Waiting is the state machine's job
//! (its Wait state), never a sleep in a Lambda.

use aws_sdk_eks::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use revscale_engine::config::{Component, DriverSpec, Kind};
use revscale_engine::drivers::{COMPONENT_TAG, MANAGED_TAG, STACK_TAG};
use revscale_engine::model::{Capacity, ComponentState};
use revscale_engine::ports::{Apply, ComponentDriver, DriverError, DriverStatus, Observed};
use revscale_engine::with_driver_spec;

pub mod always_on;
pub mod autoscaling_group;
pub mod cloudformation_stack;
pub mod ec2_instances;
pub mod ecs_service;
pub mod eks_cluster;
pub mod eks_nodegroup;
pub mod kubernetes_workload;
pub mod lambda_provisioned_concurrency;
pub mod rds;
pub mod ssm_flag;

pub use ssm_flag::flag_value;

/// The clients every kind uses, built once at cold start, and what the drivers tag
/// with.
pub struct Clients {
    pub eks: aws_sdk_eks::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub ecs: aws_sdk_ecs::Client,
    pub autoscaling: crate::query::QueryClient,
    pub rds: crate::query::QueryClient,
    pub lambda: aws_sdk_lambda::Client,
    pub cloudformation: crate::query::QueryClient,
    pub ec2: crate::ec2::Ec2Client,
    /// EKS tokens for the Kubernetes API of the stack's cluster.
    pub kubernetes: crate::kubernetes::TokenSource,
    /// The tests' Kubernetes-API-shaped server, standing in for every cluster's API
    /// (moto's clusters have none): [`AwsDrivers::with_kubernetes_endpoint`].
    pub kubernetes_endpoint: Option<crate::kubernetes::TestEndpoint>,
    /// The roles that get access entries on the cluster revscale creates.
    pub cluster_access: eks_cluster::ClusterAccess,
    stack: Option<String>,
}

impl Clients {
    /// Every tag a resource revscale creates or switches carries.
    pub fn tags<'a>(&'a self, component: &'a Component) -> Vec<(&'a str, &'a str)> {
        let mut tags = vec![MANAGED_TAG, (COMPONENT_TAG, component.id.as_str())];
        if let Some(stack) = &self.stack {
            tags.push((STACK_TAG, stack.as_str()));
        }
        tags
    }

    /// revscale's tags that a resource the company owns lacks (or carries with another
    /// value), among `existing` (key, value): never the component tag, which only its
    /// owner sets ([`verify_component_tag`] has checked it before).
    pub fn missing_tags<'a, 'b>(
        &'a self,
        component: &'a Component,
        existing: impl IntoIterator<Item = (&'b str, &'b str)> + Clone,
    ) -> Vec<(&'a str, &'a str)> {
        self.tags(component)
            .into_iter()
            .filter(|(key, value)| {
                *key != COMPONENT_TAG && !existing.clone().into_iter().any(|(k, v)| k == *key && v == *value)
            })
            .collect()
    }
}

/// What one kind does on AWS. Implemented by the engine's spec of that kind.
pub trait AwsKind {
    /// The IAM actions the provisioner needs for this kind: the template's policy must
    /// grant each (`tests/template.rs` checks it).
    fn iam_actions(&self) -> &'static [&'static str];
    fn apply(
        &self,
        aws: &Clients,
        request: &Apply<'_>,
    ) -> impl Future<Output = Result<(), DriverError>> + Send;
    fn status(
        &self,
        aws: &Clients,
        component: &Component,
        target: ComponentState,
    ) -> impl Future<Output = Result<DriverStatus, DriverError>> + Send;
    fn observe(
        &self,
        aws: &Clients,
        component: &Component,
    ) -> impl Future<Output = Result<Observed, DriverError>> + Send;
    /// What the first step would refuse, read now (`revscale config push` asks with
    /// the operator's credentials, months before that step): each problem in words.
    /// `Err` when it cannot be read.
    fn preflight(
        &self,
        _aws: &Clients,
        _component: &Component,
    ) -> impl Future<Output = Result<Vec<String>, DriverError>> + Send {
        async { Ok(Vec::new()) }
    }
}

/// The IAM actions a spec's kind needs.
pub fn iam_actions(spec: &DriverSpec) -> &'static [&'static str] {
    with_driver_spec!(spec, s => s.iam_actions())
}

pub struct AwsDrivers {
    clients: Clients,
}

impl AwsDrivers {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        use crate::query::{AUTOSCALING, CLOUDFORMATION, QueryClient, RDS};
        // One HTTP client (one pool, root certificates loaded once) for the Query
        // services.
        let http = crate::query::http_client();
        AwsDrivers {
            clients: Clients {
                eks: aws_sdk_eks::Client::new(sdk),
                ssm: aws_sdk_ssm::Client::new(sdk),
                ecs: aws_sdk_ecs::Client::new(sdk),
                autoscaling: QueryClient::sharing(sdk, AUTOSCALING, &http),
                rds: QueryClient::sharing(sdk, RDS, &http),
                lambda: aws_sdk_lambda::Client::new(sdk),
                cloudformation: QueryClient::sharing(sdk, CLOUDFORMATION, &http),
                ec2: crate::ec2::Ec2Client::sharing(sdk, &http),
                kubernetes: crate::kubernetes::TokenSource::new(sdk),
                kubernetes_endpoint: None,
                cluster_access: eks_cluster::ClusterAccess::default(),
                stack: None,
            },
        }
    }

    /// Sends every Kubernetes API call to the tests' server instead of the cluster's
    /// endpoint.
    pub fn with_kubernetes_endpoint(mut self, endpoint: Option<crate::kubernetes::TestEndpoint>) -> Self {
        self.clients.kubernetes_endpoint = endpoint;
        self
    }

    /// The roles that get access entries on the cluster revscale creates.
    pub fn with_cluster_access(mut self, access: eks_cluster::ClusterAccess) -> Self {
        self.clients.cluster_access = access;
        self
    }

    /// Tags what the drivers create with the stack's name too.
    pub fn for_stack(mut self, stack: Option<String>) -> Self {
        self.clients.stack = stack;
        self
    }
}

impl AwsDrivers {
    /// What the component's first step would refuse, read now ([`AwsKind::preflight`]).
    pub async fn preflight(&self, component: &Component) -> Result<Vec<String>, DriverError> {
        with_driver_spec!(&component.driver, s => s.preflight(&self.clients, component).await)
    }
}

impl ComponentDriver for AwsDrivers {
    async fn apply(&self, request: Apply<'_>) -> Result<(), DriverError> {
        with_driver_spec!(&request.component.driver, s => s.apply(&self.clients, &request).await)
    }

    async fn status(
        &self,
        component: &Component,
        target: ComponentState,
    ) -> Result<DriverStatus, DriverError> {
        with_driver_spec!(&component.driver, s => s.status(&self.clients, component, target).await)
    }

    async fn observe(&self, component: &Component) -> Result<Observed, DriverError> {
        with_driver_spec!(&component.driver, s => s.observe(&self.clients, component).await)
    }
}

/// Sorts an SDK error: throttling, 5xx and network trouble are transient (retried);
/// one of `busy` (the service's codes for "another operation is under way") is busy;
/// anything else is a refusal. Each kind passes its service's busy codes.
pub fn sdk_error<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    e: SdkError<E, aws_sdk_eks::config::http::HttpResponse>,
    busy: &[&str],
) -> DriverError {
    // A 5xx is the service's own trouble, whatever its error code says.
    let server_side = e.raw_response().is_some_and(|r| r.status().is_server_error());
    let transient = server_side
        || matches!(e, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_))
        || matches!(
            e.code(),
            Some(
                "ThrottlingException"
                    | "Throttling"
                    | "TooManyRequestsException"
                    | "RequestLimitExceeded"
                    | "ServerException"
                    | "ServiceUnavailableException"
                    | "ServiceUnavailable"
                    | "InternalFailure"
                    // Auto Scaling's "a pending update to the same resource": throttling
                    // in all but name, worth the same retry.
                    | "ResourceContention"
            )
        );
    let message = DisplayErrorContext(&e).to_string();
    if transient {
        DriverError::Transient(message)
    } else if e.code().is_some_and(|code| busy.contains(&code)) {
        DriverError::Busy(message)
    } else {
        DriverError::Rejected(message)
    }
}

/// Sorts a Query-protocol error (EC2, RDS, Auto Scaling, CloudFormation) as
/// [`sdk_error`] sorts the SDK's.
pub fn query_error(e: crate::query::QueryError, busy: &[&str]) -> DriverError {
    let message = e.to_string();
    if e.is_transient() {
        DriverError::Transient(message)
    } else if e.code().is_some_and(|code| busy.contains(&code)) {
        DriverError::Busy(message)
    } else {
        DriverError::Rejected(message)
    }
}

/// Whether the error is one of the service's "no such resource" codes.
pub fn is_code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>, codes: &[&str]) -> bool {
    e.code().is_some_and(|code| codes.contains(&code))
}

/// Checks, before `apply` changes anything on a resource the company owns (tagging
/// included), that the resource's `revscale-component` tag names `component`: a typo in a
/// configured identifier must not switch another component's resource, which the
/// stack's IAM policy (any value of the tag) would allow. `tags` are the resource's
/// (key, value) as its describe call returns them. `observe` and `status` never ask.
pub fn verify_component_tag<'a>(
    component: &Component,
    tags: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), DriverError> {
    let value = tags.into_iter().find(|(key, _)| *key == COMPONENT_TAG).map(|(_, value)| value);
    verify_component_mark(component, &Kind::resource(component.driver.as_kind()), value, &Mark::Tag)
}

/// How a resource names the component it belongs to.
pub enum Mark {
    /// An AWS resource's tag (the stack's IAM policy requires it too).
    Tag,
    /// A Kubernetes object's label; the `kubectl label` arguments that set it
    /// (`-n vault statefulset/vault`).
    Label { kubectl: String },
}

/// The one rule for tags and labels alike: `resource` is switched only when its
/// `revscale-component` names `component`; missing or naming another, it is refused,
/// saying how to mark it.
pub fn verify_component_mark(
    component: &Component,
    resource: &str,
    value: Option<&str>,
    mark: &Mark,
) -> Result<(), DriverError> {
    let id = component.id.as_str();
    let (carries, thing) = match mark {
        Mark::Tag => ("", "resource"),
        Mark::Label { .. } => ("the label ", "workload"),
    };
    match value {
        Some(value) if value == id => Ok(()),
        Some(value) => Err(DriverError::Rejected(format!(
            "{id}: {resource} carries {carries}{COMPONENT_TAG}={value}, not {id}: is the configuration naming the \
             right {thing}?"
        ))),
        None => Err(DriverError::Rejected(match mark {
            Mark::Tag => format!(
                "{id}: {resource} has no {COMPONENT_TAG} tag: tag it {COMPONENT_TAG}={id}: revscale switches \
                 only resources whose tag names their component (the stack's IAM policy requires the tag)"
            ),
            Mark::Label { kubectl } => format!(
                "{id}: {resource} has no {COMPONENT_TAG} label: label it (kubectl label {kubectl} {COMPONENT_TAG}={id}): \
                 revscale switches only workloads whose label names their component"
            ),
        })),
    }
}

/// Clients whose AWS calls all go to `uri` (a wiremock server) in region cn-north-1,
/// with test credentials, and whose Kubernetes calls go there too.
#[cfg(test)]
pub(crate) fn clients_at(uri: &str, access: eks_cluster::ClusterAccess) -> Clients {
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("cn-north-1"))
        .endpoint_url(uri)
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(
            aws_credential_types::Credentials::new("AKIDTEST", "secret", None, None, "test"),
        ))
        .build();
    let vars = crate::env::from_pairs(&[(crate::kubernetes::TestEndpoint::VARIABLE, uri)]);
    let endpoint = crate::kubernetes::TestEndpoint::from_vars(&vars).unwrap_or_else(|e| panic!("{e}"));
    AwsDrivers::new(&sdk).with_cluster_access(access).with_kubernetes_endpoint(endpoint).clients
}

/// The count `target` asks for, of tasks or replicas alike: 0 for WARM and COLD, HOT's
/// capacity (configured, else saved) for HOT; `None` when HOT has no count (never 0:
/// that would be WARM by another name).
pub fn desired_count_for(target: ComponentState, hot: Option<Capacity>) -> Option<u32> {
    match target {
        ComponentState::Hot => hot.map(|c| c.desired).filter(|n| *n > 0),
        _ => Some(0),
    }
}

/// The message a driver gives when its resource is gone (deleted behind revscale's
/// back): a refusal, never a panic; the drift check reports it as "absent".
pub fn missing(component: &Component) -> DriverError {
    DriverError::Rejected(format!(
        "{}: {} does not exist (deleted outside revscale?)",
        component.id,
        revscale_engine::config::Kind::resource(component.driver.as_kind())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use revscale_engine::drivers::EcsService;

    fn component(id: &str) -> Component {
        let zero = revscale_engine::Money::parse("0", revscale_engine::Currency::EUR)
            .unwrap_or_else(|e| panic!("{e}"));
        Component {
            id: revscale_engine::ComponentId::new(id),
            driver: EcsService { cluster: "prod".into(), service: "web".into(), desired_count: Some(2) }
                .into(),
            billing: revscale_engine::config::Billing::Aws,
            hot_cost: zero,
            warm_cost: zero,
            depends_on: vec![],
            level: 1,
        }
    }

    fn refusal(result: Result<(), DriverError>) -> String {
        match result {
            Err(DriverError::Rejected(why)) => why,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn a_resource_whose_component_tag_names_the_component_may_be_switched() {
        let tags = [("team", "shop"), (COMPONENT_TAG, "web"), (MANAGED_TAG.0, MANAGED_TAG.1)];
        assert_eq!(verify_component_tag(&component("web"), tags), Ok(()));
    }

    #[test]
    fn a_resource_tagged_for_another_component_is_refused_naming_both() {
        let why = refusal(verify_component_tag(&component("web"), [(COMPONENT_TAG, "billing")]));
        assert!(why.contains("ECS service web in cluster prod"), "{why}");
        assert!(why.contains("carries revscale-component=billing, not web"), "{why}");
        assert!(why.contains("is the configuration naming the right resource?"), "{why}");
    }

    #[test]
    fn a_resource_without_the_component_tag_is_refused_with_how_to_tag_it() {
        for tags in [vec![], vec![("team", "shop"), (MANAGED_TAG.0, MANAGED_TAG.1)]] {
            let why = refusal(verify_component_tag(&component("web"), tags));
            assert!(why.starts_with("web: ECS service web in cluster prod"), "{why}");
            assert!(why.contains("tag it revscale-component=web"), "{why}");
            assert!(why.contains("the stack's IAM policy requires the tag"), "{why}");
        }
    }

    #[test]
    fn a_component_tag_with_an_empty_value_or_another_case_names_no_component() {
        for value in ["", "Web", "web "] {
            let why = refusal(verify_component_tag(&component("web"), [(COMPONENT_TAG, value)]));
            assert!(why.contains("not web"), "{value:?}: {why}");
        }
    }

    #[test]
    fn the_missing_tags_never_include_the_component_tag() {
        let c = component("web");
        let clients_tags = |stack: Option<&str>, existing: &[(&str, &str)]| {
            let sdk = aws_config::SdkConfig::builder()
                .behavior_version(aws_config::BehaviorVersion::latest())
                .build();
            let drivers = AwsDrivers::new(&sdk).for_stack(stack.map(str::to_owned));
            drivers
                .clients
                .missing_tags(&c, existing.iter().copied())
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect::<Vec<_>>()
        };
        let owned = |pairs: &[(&str, &str)]| {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<Vec<_>>()
        };
        assert_eq!(
            clients_tags(Some("prod"), &[(COMPONENT_TAG, "web")]),
            owned(&[MANAGED_TAG, (STACK_TAG, "prod")])
        );
        assert_eq!(
            clients_tags(Some("prod"), &[(COMPONENT_TAG, "web"), MANAGED_TAG, (STACK_TAG, "prod")]),
            owned(&[])
        );
        assert_eq!(clients_tags(None, &[(STACK_TAG, "other")]), owned(&[MANAGED_TAG]));
        assert_eq!(
            clients_tags(Some("prod"), &[(STACK_TAG, "other")]),
            owned(&[MANAGED_TAG, (STACK_TAG, "prod")])
        );
    }
}
