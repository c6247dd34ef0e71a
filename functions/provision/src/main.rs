use lambda_runtime::{Error, run, service_fn};
use provision::handler::{self, Deps, Env};
use revscale_aws::lambda::{start, traced};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (env, sdk) = start::<Env>().await?;
    let deps = Deps::on_aws(env, &sdk).await?;
    run(service_fn(traced(&deps, handler::handle))).await
}
