//! revscale's adapters: the engine's ports implemented on AWS and Stripe.

pub mod cost_explorer;
pub mod drivers;
pub mod dynamo;
pub mod ec2;
pub mod env;
pub mod executions;
pub mod iam;
pub mod kubernetes;
pub mod lambda;
pub mod metrics;
pub mod publish;
pub mod query;
pub mod runtime_config;
pub mod secrets;
pub mod stripe;

/// The SDK configuration every client of a function is built from (re-exported so the
/// function crates need no aws-config of their own).
pub use aws_config::SdkConfig;

/// Loads the SDK configuration once per cold start. `AWS_ENDPOINT_URL` (and the
/// per-service `AWS_ENDPOINT_URL_<SERVICE>`) are honoured by the SDK itself, so the same
/// binaries run against an emulator.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}
