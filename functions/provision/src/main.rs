use lambda_runtime::{Error, run, service_fn};
use provision::handler::{self, Deps};
use revscale_aws::drivers::AwsDrivers;
use revscale_aws::dynamo::DynamoStore;
use revscale_aws::env::Vars;
use revscale_aws::publish::{EventBridgeBus, SnsNotifier};

#[tokio::main]
async fn main() -> Result<(), Error> {
    revscale_aws::lambda::init_tracing();
    let env = provision::handler::Env::from_vars(&Vars::process())?;
    let sdk = revscale_aws::sdk_config().await;
    let deps = Deps {
        config: env.config,
        store: DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &env.table_name),
        driver: AwsDrivers::new(&sdk),
        bus: EventBridgeBus::new(aws_sdk_eventbridge::Client::new(&sdk), &env.event_bus_name),
        notifier: SnsNotifier::new(aws_sdk_sns::Client::new(&sdk), &env.alert_topic_arn),
        max_checks: env.max_checks,
        max_decision_age: env.max_decision_age,
        timezone: env.timezone,
    };
    run(service_fn(|event| handler::handle(&deps, event))).await
}
