//! The contract every driver keeps, on moto.

use std::collections::BTreeMap;
use std::time::Duration;

use revscale_aws::drivers::AwsDrivers;
use revscale_engine::config::{Billing, Component, DriverSpec};
use revscale_engine::drivers::{COMPONENT_TAG, MANAGED_TAG, STACK_TAG};
use revscale_engine::model::{Capacity, ComponentState};
use revscale_engine::ports::{Apply, ComponentDriver, DriverStatus, Observed};
use revscale_engine::{ComponentId, Currency, Money};

/// The kinds tests/provisioner.rs covers through the real state machine.
pub const EKS_AND_SSM_KINDS: [&str; 3] = ["eks_cluster", "eks_nodegroup", "ssm_flag"];

pub const STACK: &str = "revscale-contract";

pub async fn drivers() -> AwsDrivers {
    AwsDrivers::new(&revscale_integration_tests::sdk().await).for_stack(Some(STACK.into()))
}

pub fn component(id: &str, spec: impl Into<DriverSpec>) -> Component {
    let zero = Money::parse("0", Currency::EUR).unwrap();
    Component {
        id: ComponentId::new(id),
        driver: spec.into(),
        billing: Billing::Aws,
        hot_cost: zero,
        warm_cost: zero,
        depends_on: vec![],
        level: 1,
    }
}

/// Polls `status` until Ready (moto answers at once or within a few calls).
pub async fn until_ready(drivers: &AwsDrivers, c: &Component, target: ComponentState) {
    for _ in 0..50 {
        match drivers.status(c, target).await.unwrap() {
            DriverStatus::Ready => return,
            DriverStatus::InProgress => tokio::time::sleep(Duration::from_millis(100)).await,
            DriverStatus::Failed(why) => panic!("{}: {target} failed: {why}", c.id),
        }
    }
    panic!("{}: never ready at {target}", c.id);
}

/// Takes `c` to `target` as the provisioner does: when leaving HOT, HOT's capacity is
/// observed and kept first; HOT gets what was kept. Returns what is kept now.
pub async fn take(
    drivers: &AwsDrivers,
    c: &Component,
    from: ComponentState,
    target: ComponentState,
    mut saved: Option<Capacity>,
) -> Option<Capacity> {
    if from == ComponentState::Hot && c.driver.as_kind().saves_capacity() {
        let observed = drivers.observe(c).await.unwrap();
        if let Some(capacity) = observed.capacity.filter(|c| !c.is_zero()) {
            saved = Some(capacity);
        }
    }
    drivers.apply(Apply { component: c, target, saved }).await.unwrap();
    until_ready(drivers, c, target).await;
    saved
}

/// The contract: from COLD, WARM -> HOT -> WARM -> COLD. `tags` reads the tags of what
/// the driver switched (`None`: the kind has nothing taggable, e.g. provisioned
/// concurrency, whose function is the user's). Returns the observations per step.
pub async fn keeps_the_contract<F, Fut>(c: &Component, tags: F) -> Vec<(ComponentState, Observed)>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Option<BTreeMap<String, String>>>,
{
    use ComponentState::{Cold, Hot, Warm};
    let drivers = drivers().await;
    let first = drivers.observe(c).await.unwrap();
    assert!(first.agrees_with(Cold), "{}: set up COLD, observed {first:?}", c.id);
    let mut saved = None;
    let mut seen = Vec::new();
    let mut at = Cold;
    for target in [Warm, Hot, Warm, Cold] {
        saved = take(&drivers, c, at, target, saved).await;
        let observed = drivers.observe(c).await.unwrap();
        assert!(observed.agrees_with(target), "{}: at {target}, observed {observed:?}", c.id);
        // Idempotent: the same request again changes nothing and is still Ready.
        drivers.apply(Apply { component: c, target, saved }).await.unwrap();
        until_ready(&drivers, c, target).await;
        let again = drivers.observe(c).await.unwrap();
        assert_eq!(again.states, observed.states, "{}: a repeated {target} moved it", c.id);
        if target != Cold
            && let Some(tags) = tags().await
        {
            assert_eq!(
                tags.get(MANAGED_TAG.0).map(String::as_str),
                Some(MANAGED_TAG.1),
                "{}: {tags:?}",
                c.id
            );
            assert_eq!(
                tags.get(COMPONENT_TAG).map(String::as_str),
                Some(c.id.as_str()),
                "{}: {tags:?}",
                c.id
            );
            assert_eq!(tags.get(STACK_TAG).map(String::as_str), Some(STACK), "{}: {tags:?}", c.id);
        }
        seen.push((target, observed));
        at = target;
    }
    seen
}
