use lambda_http::{Error, run, service_fn};
use override_api::handler::{self, Deps};
use revscale_aws::dynamo::DynamoStore;
use revscale_aws::env::Vars;
use revscale_aws::publish::{EventBridgeBus, SnsNotifier};

#[tokio::main]
async fn main() -> Result<(), Error> {
    revscale_aws::lambda::init_tracing();
    let vars = Vars::process();
    let table = vars.required("TABLE_NAME")?;
    let bus_name = vars.required("EVENT_BUS_NAME")?;
    let topic = vars.required("ALERT_TOPIC_ARN")?;
    let config = revscale_aws::env::load_config(&vars)?;
    let sdk = revscale_aws::sdk_config().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table);
    let deps = Deps {
        config,
        bus: EventBridgeBus::new(aws_sdk_eventbridge::Client::new(&sdk), bus_name),
        notifier: SnsNotifier::new(aws_sdk_sns::Client::new(&sdk), topic),
    };
    run(service_fn(|req| {
        let response =
            handler::handle(&deps, &store, |request_id: &str| store.for_invocation(request_id), req);
        async move { Ok::<_, Error>(response.await) }
    }))
    .await
}
