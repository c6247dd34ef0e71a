use lambda_http::{Error, run, service_fn};
use override_api::handler::{self, Deps, Env};
use revscale_aws::dynamo::DynamoStore;
use revscale_aws::env::Vars;
use revscale_aws::publish::{EventBridgeBus, SnsNotifier};

#[tokio::main]
async fn main() -> Result<(), Error> {
    revscale_aws::lambda::init_tracing();
    let env = Env::from_vars(&Vars::process())?;
    let sdk = revscale_aws::sdk_config().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), env.table_name);
    let deps = Deps {
        config: env.config,
        bus: EventBridgeBus::new(aws_sdk_eventbridge::Client::new(&sdk), env.event_bus_name),
        notifier: SnsNotifier::new(aws_sdk_sns::Client::new(&sdk), env.alert_topic_arn),
        roles: env.roles,
        timezone: env.timezone,
    };
    run(service_fn(|req| {
        let response =
            handler::handle(&deps, &store, |request_id: &str| store.for_invocation(request_id), req);
        async move { Ok::<_, Error>(response.await) }
    }))
    .await
}
