use collect_cost::handler::{self, Env};
use lambda_runtime::{Error, run, service_fn};
use revscale_aws::cost_explorer::CostExplorerSource;
use revscale_aws::dynamo::DynamoStore;

#[tokio::main]
async fn main() -> Result<(), Error> {
    revscale_aws::lambda::init_tracing();
    let env = Env::from_env()?;
    let sdk = revscale_aws::sdk_config().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &env.table_name);
    let mut source =
        CostExplorerSource::new(&sdk, env.metric.clone(), env.tag_key.clone(), env.currency, env.fx.clone());
    source.excluded_record_types = env.excluded_record_types.clone();
    run(service_fn(|event| handler::handle(&store, &source, event))).await
}
