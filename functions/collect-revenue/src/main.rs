use collect_revenue::handler::{self, Env};
use lambda_runtime::{Error, run, service_fn};
use revscale_aws::dynamo::DynamoStore;
use revscale_aws::secrets::read_secret;
use revscale_aws::stripe::StripeSource;

#[tokio::main]
async fn main() -> Result<(), Error> {
    revscale_aws::lambda::init_tracing();
    let env = Env::from_env()?;
    let sdk = revscale_aws::sdk_config().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &env.table_name);
    let api_key = read_secret(&sdk, &env.stripe_key).await?;
    let stripe = StripeSource::new(&env.stripe_api_base, api_key, env.currency, env.fx.clone())?;
    run(service_fn(|event| handler::handle(&store, &stripe, event))).await
}
