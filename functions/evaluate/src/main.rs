use evaluate::handler::{self, Deps, Env};
use lambda_runtime::{Error, run, service_fn};
use revscale_aws::lambda::{cold_start, start, traced};

#[tokio::main]
async fn main() -> Result<(), Error> {
    // Everything before `run` inside `cold_start`: a failure reaches Lambda's init error
    // endpoint under its type (a throttled read is `Transient`), not as a bare exit.
    let deps = cold_start(async {
        let (env, sdk) = start::<Env>().await?;
        Deps::on_aws(env, &sdk).await
    })
    .await?;
    run(service_fn(traced(&deps, handler::handle))).await
}
