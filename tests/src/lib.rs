//! Shared set-up for the tests against the emulators that `tests/run.sh` starts.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use std::sync::atomic::{AtomicU32, Ordering};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use lambda_runtime::LambdaEvent;
use serde_json::Value;

pub fn moto_url() -> String {
    format!("http://127.0.0.1:{}", std::env::var("MOTO_PORT").unwrap_or_else(|_| "5055".into()))
}

/// tests/router.py: where moto's Step Functions and the provision Lambda send their
/// calls, and where the chaos test injects faults.
pub fn router_url() -> String {
    format!("http://127.0.0.1:{}", std::env::var("ROUTER_PORT").unwrap_or_else(|_| "5056".into()))
}

pub fn stripe_url() -> String {
    format!("http://127.0.0.1:{}", std::env::var("LOCALSTRIPE_PORT").unwrap_or_else(|_| "8420".into()))
}

/// SDK configuration aimed at moto, with throwaway credentials.
pub async fn sdk() -> SdkConfig {
    let url = moto_url();
    if reqwest::get(format!("{url}/moto-api/")).await.is_err() {
        panic!("moto is not reachable at {url}: run the tests with tests/run.sh, which starts the emulators");
    }
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(url)
        .region(aws_config::Region::new("eu-west-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "tests"))
        .load()
        .await
}

/// A name no other test (or earlier run against the same moto) has used.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{n}-{nanos}", std::process::id())
}

/// Creates the single revscale table (pk, sk), as the SAM template does, under a
/// fresh name.
/// The stack's EKS cluster (`EksClusterName` revscale), created in moto, which makes it
/// ACTIVE at once; its Kubernetes API is tests/kubernetes_fake.py on the router. An
/// existing one is kept.
pub async fn stack_cluster(sdk: &SdkConfig) -> Result<(), String> {
    aws_sdk_eks::Client::new(sdk)
        .create_cluster()
        .name("revscale")
        .role_arn("arn:aws:iam::123456789012:role/revscale-eks-cluster")
        .resources_vpc_config(aws_sdk_eks::types::VpcConfigRequest::builder().subnet_ids("subnet-1").build())
        .send()
        .await
        .map(|_| ())
        .map_err(|e| aws_sdk_eks::error::DisplayErrorContext(e).to_string())
}

pub async fn table(sdk: &SdkConfig) -> String {
    let name = unique("revscale");
    table_named(sdk, &name).await;
    name
}

/// Creates the revscale table under `name`, replacing any table of that name.
pub async fn table_named(sdk: &SdkConfig, name: &str) {
    let client = aws_sdk_dynamodb::Client::new(sdk);
    client.delete_table().table_name(name).send().await.ok();
    let key =
        |n: &str, t: KeyType| KeySchemaElement::builder().attribute_name(n).key_type(t).build().unwrap();
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .unwrap()
    };
    client
        .create_table()
        .table_name(name)
        .key_schema(key("pk", KeyType::Hash))
        .key_schema(key("sk", KeyType::Range))
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("sk"))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create table");
}

/// Creates (or reuses) an SQS queue; returns its URL and ARN.
pub async fn queue(sdk: &SdkConfig, name: &str) -> (String, String) {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let url =
        sqs.create_queue().queue_name(name).send().await.expect("create queue").queue_url.unwrap_or_default();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue attributes")
        .attributes
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn).cloned())
        .unwrap_or_default();
    (url, arn)
}

/// Sends every `Level Change Requested` event on `bus` to a new SQS queue (the one
/// EventBridge target moto delivers to), as the stack's rule would match them; returns
/// the queue's URL.
pub async fn capture_level_change_requests(sdk: &SdkConfig, bus: &str) -> String {
    let (url, arn) = queue(sdk, &unique("requests")).await;
    let events = aws_sdk_eventbridge::Client::new(sdk);
    let rule = unique("capture-requests");
    events
        .put_rule()
        .name(&rule)
        .event_bus_name(bus)
        .event_pattern(r#"{"source": ["revscale"], "detail-type": ["Level Change Requested"]}"#)
        .send()
        .await
        .expect("put rule");
    let target =
        aws_sdk_eventbridge::types::Target::builder().id("capture").arn(arn).build().expect("target");
    events.put_targets().rule(&rule).event_bus_name(bus).targets(target).send().await.expect("put targets");
    url
}

/// Creates (or reuses) the SNS topic `name`, subscribed by a new SQS queue standing
/// in for the operators' e-mail; returns the topic's ARN and the queue's URL.
pub async fn topic_with_inbox(sdk: &SdkConfig, name: &str) -> (String, String) {
    let sns = aws_sdk_sns::Client::new(sdk);
    let topic =
        sns.create_topic().name(name).send().await.expect("create topic").topic_arn.unwrap_or_default();
    let (url, arn) = queue(sdk, &unique("inbox")).await;
    sns.subscribe().topic_arn(&topic).protocol("sqs").endpoint(arn).send().await.expect("subscribe");
    (topic, url)
}

/// Creates the state machine `infra/statemachine/<name>.asl.json` under a fresh name,
/// with SAM's definition substitution done for `substitution` (placeholder, value);
/// returns its ARN.
pub async fn create_state_machine(sdk: &SdkConfig, name: &str, substitution: (&str, &str)) -> String {
    let path = format!("{}/../infra/statemachine/{name}.asl.json", env!("CARGO_MANIFEST_DIR"));
    let definition = std::fs::read_to_string(&path).expect("state machine definition");
    aws_sdk_sfn::Client::new(sdk)
        .create_state_machine()
        .name(unique(name))
        .definition(definition.replace(substitution.0, substitution.1))
        .role_arn(format!("arn:aws:iam::123456789012:role/revscale-{name}"))
        .send()
        .await
        .expect("create state machine")
        .state_machine_arn
}

/// Waits (at most five minutes) for an execution to end; returns its description.
pub async fn finished_execution(
    sfn: &aws_sdk_sfn::Client,
    arn: &str,
) -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
    let started = std::time::Instant::now();
    loop {
        let d = sfn.describe_execution().execution_arn(arn).send().await.expect("describe execution");
        if d.status != aws_sdk_sfn::types::ExecutionStatus::Running {
            return d;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(300), "{arn} still running");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

/// Receives and deletes every message waiting in a queue, bodies parsed as JSON.
pub async fn drain(sdk: &SdkConfig, url: &str) -> Vec<Value> {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut out = Vec::new();
    loop {
        let got =
            sqs.receive_message().queue_url(url).max_number_of_messages(10).send().await.expect("receive");
        let messages = got.messages.unwrap_or_default();
        if messages.is_empty() {
            return out;
        }
        for m in messages {
            out.push(serde_json::from_str(m.body().unwrap_or("null")).unwrap_or(Value::Null));
            if let Some(handle) = m.receipt_handle() {
                sqs.delete_message().queue_url(url).receipt_handle(handle).send().await.expect("delete");
            }
        }
    }
}

/// A scheduled event as EventBridge Scheduler delivers it, at `time`.
/// Generic over the payload type, so one helper serves the evaluator
/// (`EventBridgeEvent<Value>`) and the collectors (`Daily`, which wraps the same event).
pub fn scheduled<T: From<EventBridgeEvent<Value>>>(id: &str, time: &str) -> LambdaEvent<T> {
    let json = serde_json::json!({
        "version": "0", "id": id, "detail-type": "Scheduled Event", "source": "aws.scheduler",
        "account": "123456789012", "time": time, "region": "eu-west-1", "resources": [], "detail": {}
    });
    let event: EventBridgeEvent<Value> = serde_json::from_value(json).expect("valid event");
    LambdaEvent::new(T::from(event), lambda_runtime::Context::default())
}

/// Writes a line straight to stderr, past the test harness's output capture: the
/// figures and histories these tests are asked to show appear in the test output
/// (and in CI's log) even when every test passes.
pub fn report(line: &str) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

/// One localstripe call (form-encoded, like Stripe's API), failing the test on an error.
pub async fn stripe(key: &str, method: reqwest::Method, path: &str, form: &[(&str, &str)]) -> Value {
    let response = reqwest::Client::new()
        .request(method, format!("{}{path}", stripe_url()))
        .basic_auth(key, Some(""))
        .form(form)
        .send()
        .await
        .expect("localstripe answers");
    let body: Value = response.json().await.expect("JSON");
    assert!(body.get("error").is_none(), "{path}: {body}");
    body
}

/// A localstripe customer with a test card (localstripe refuses subscriptions without
/// a payment method); returns its id.
pub async fn stripe_customer(key: &str, email: &str) -> String {
    let card = [
        ("card[number]", "4242424242424242"),
        ("card[exp_month]", "12"),
        ("card[exp_year]", "2030"),
        ("card[cvc]", "123"),
    ];
    let token = stripe(key, reqwest::Method::POST, "/v1/tokens", &card).await;
    let token = token["id"].as_str().expect("token id").to_string();
    let customer =
        stripe(key, reqwest::Method::POST, "/v1/customers", &[("email", email), ("source", &token)]).await;
    customer["id"].as_str().expect("customer id").to_string()
}

/// The `revscale` binary `cargo test --workspace` built beside the running test (the
/// workspace's feature set: nothing is rebuilt for it); built if it is missing.
pub fn revscale_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap().to_path_buf();
    let binary = dir.join("revscale");
    if !binary.exists() {
        let built = std::process::Command::new(env!("CARGO"))
            .args(["build", "-q", "--locked", "--workspace", "--bins"])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .status()
            .unwrap();
        assert!(built.success(), "cannot build the revscale binary");
    }
    binary
}

/// The CLI as an operator runs it, from the repository's root, aimed at moto with
/// test credentials and no profile of the machine's.
pub fn revscale_command(args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(revscale_binary());
    command
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .env("AWS_ENDPOINT_URL", moto_url())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env_remove("AWS_PROFILE")
        .env_remove("REVSCALE_API_URL");
    command
}

/// Queues a `GetCostAndUsage` answer (`{"ResultsByTime": [...], ...}`) in moto: the next
/// new request gets it.
pub async fn inject_cost_results(results: serde_json::Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/moto-api/static/ce/cost-and-usage-results", moto_url()))
        .json(&serde_json::json!({"results": [results]}))
        .send()
        .await
        .expect("moto answers");
    assert!(response.status().is_success());
}
