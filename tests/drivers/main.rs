//! The driver contract, run against every kind on moto (as `store_contract` is for the
//! stores): from COLD, each kind goes WARM -> HOT -> WARM -> COLD; at every step `status`
//! reaches Ready, `observe` agrees with the state reached, a repeated `apply` changes
//! nothing, and what the driver switched carries revscale's tags. Each kind's module
//! sets its resource up in moto and adds what only it does (saved capacity, drift,
//! the RDS re-stop, CloudFormation's refusals).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

mod contract;
mod drift;

mod autoscaling_group;
mod cloudformation_stack;
mod ec2_instances;
mod ecs_service;
mod kubernetes_workload;
mod lambda_provisioned_concurrency;
mod rds;

use revscale_engine::config::DriverSpec;

/// Every kind the engine knows, but `always_on` (nothing to call) and the EKS and SSM
/// kinds (tests/provisioner.rs drives them through the real state machine), has a
/// contract test here.
#[test]
fn every_kind_of_the_registry_has_a_contract_test() {
    let covered: Vec<&str> = [
        ecs_service::KIND,
        autoscaling_group::KIND,
        rds::INSTANCE_KIND,
        rds::CLUSTER_KIND,
        lambda_provisioned_concurrency::KIND,
        cloudformation_stack::KIND,
        ec2_instances::KIND,
        kubernetes_workload::KIND,
        contract::EKS_AND_SSM_KINDS[0],
        contract::EKS_AND_SSM_KINDS[1],
        contract::EKS_AND_SSM_KINDS[2],
        "always_on",
    ]
    .to_vec();
    for spec in DriverSpec::examples() {
        assert!(covered.contains(&spec.kind()), "no contract test for {}", spec.kind());
    }
}
