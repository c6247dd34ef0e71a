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
    // Cost Explorer throttles hard (and bills per request): back off patiently.
    let ce_config = aws_sdk_costexplorer::config::Builder::from(&sdk)
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(5))
        .build();
    let source = CostExplorerSource::new(
        aws_sdk_costexplorer::Client::from_conf(ce_config),
        env.metric.clone(),
        env.tag_key.clone(),
        env.currency,
        env.fx.clone(),
    );
    run(service_fn(|event| handler::handle(&store, &source, event))).await
}
