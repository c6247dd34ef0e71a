use evaluate::handler::{self, Env};
use lambda_runtime::{Error, run, service_fn};
use revscale_aws::dynamo::DynamoStore;
use revscale_aws::publish::{EventBridgeBus, SnsNotifier};

#[tokio::main]
async fn main() -> Result<(), Error> {
    revscale_aws::lambda::init_tracing();
    let env = Env::from_env()?;
    let config = env.config.clone();
    let sdk = revscale_aws::sdk_config().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &env.table_name);
    let bus = EventBridgeBus::new(aws_sdk_eventbridge::Client::new(&sdk), &env.event_bus_name);
    let notifier = SnsNotifier::new(aws_sdk_sns::Client::new(&sdk), &env.alert_topic_arn);
    run(service_fn(|event| {
        handler::handle(&config, |id: &str| store.for_invocation(id), &bus, &notifier, event)
    }))
    .await
}
