//! The operator commands against the API handler served locally by a small stand-in for
//! API Gateway's IAM authorization: it verifies each request's SigV4 signature (by
//! signing the same request again with the caller's secret) and passes the caller's
//! ARN in the request context, as API Gateway does.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use std::collections::HashMap;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use override_api::handler::{Deps, handle};
use revscale_engine::Config;
use revscale_engine::testing::{MemoryBus, MemoryNotifier, MemoryStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const USERS: [(&str, &str, &str); 2] = [
    ("AKIDALICE", "alice-secret", "arn:aws:iam::123456789012:user/alice"),
    ("AKIDBOB", "bob-secret", "arn:aws:iam::123456789012:user/bob"),
];

/// What the stand-in saw of each request: (method, path, signed?).
type Seen = Arc<Mutex<Vec<(String, String, bool)>>>;

fn verify(method: &str, url: &str, headers: &HashMap<String, String>, body: &[u8]) -> Option<&'static str> {
    let auth = headers.get("authorization")?;
    let access_key = auth.split("Credential=").nth(1)?.split('/').next()?;
    let (_, secret, arn) = USERS.iter().find(|(k, _, _)| *k == access_key)?;
    let signed: Vec<&str> = auth.split("SignedHeaders=").nth(1)?.split(',').next()?.split(';').collect();
    let amz_date = headers.get("x-amz-date")?;
    let time = chrono::NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ").ok()?.and_utc();
    let identity: Identity =
        aws_credential_types::Credentials::new(access_key, *secret, None, None, "test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("eu-west-1")
        .name("execute-api")
        .time(SystemTime::from(time))
        .settings(SigningSettings::default())
        .build()
        .ok()?
        .into();
    let pairs: Vec<(&str, &str)> = signed
        .iter()
        .filter(|h| **h != "x-amz-date" && **h != "x-amz-content-sha256")
        .filter_map(|h| headers.get(*h).map(|v| (*h, v.as_str())))
        .collect();
    let signable = SignableRequest::new(method, url, pairs.into_iter(), SignableBody::Bytes(body)).ok()?;
    let (instructions, _) = sign(signable, &params).ok()?.into_parts();
    let expected =
        instructions.headers().find(|(k, _)| k.eq_ignore_ascii_case("authorization"))?.1.to_string();
    (expected == *auth).then_some(*arn)
}

/// Serves the handler on 127.0.0.1; returns its base URL.
async fn serve(seen: Seen) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let url_base = base.clone();
    let store = Arc::new(MemoryStore::default());
    let deps = Arc::new(Deps {
        config: Config::default_config().unwrap(),
        bus: MemoryBus::default(),
        notifier: MemoryNotifier::default(),
        store: store.clone(),
        roles: override_api::auth::Roles::everyone(),
        timezone: Default::default(),
        executions: std::sync::Arc::new(revscale_engine::testing::MemoryExecutions::default()),
    });
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let (deps, seen, url_base) = (deps.clone(), seen.clone(), url_base.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let (head_end, length) = loop {
                    let n = socket.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| {
                                l.strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        break (end + 4, length);
                    }
                };
                while buf.len() < head_end + length {
                    let n = socket.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let body = buf[head_end..].to_vec();
                let mut lines = head.lines();
                let mut request_line = lines.next().unwrap_or_default().split(' ');
                let (method, target) = (
                    request_line.next().unwrap_or_default().to_string(),
                    request_line.next().unwrap_or_default().to_string(),
                );
                let headers: HashMap<String, String> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
                    .collect();
                let arn = verify(&method, &format!("{url_base}{target}"), &headers, &body);
                let (path, query) = target.split_once('?').unwrap_or((target.as_str(), ""));
                seen.lock().unwrap().push((
                    method.clone(),
                    path.to_string(),
                    headers.contains_key("authorization"),
                ));
                let mut context = serde_json::json!({
                    "accountId": "123456789012", "apiId": "local", "requestId": format!("req-{}", SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos()),
                    "routeKey": "$default", "stage": "$default", "timeEpoch": chrono::Utc::now().timestamp_millis(),
                    "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test"},
                });
                if let Some(arn) = arn {
                    context["authorizer"] = serde_json::json!({"iam": {"userArn": arn, "accessKey": "x", "accountId": "123456789012", "callerId": "x", "userId": "x"}});
                }
                let query_map: serde_json::Map<String, serde_json::Value> = query
                    .split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.into()))
                    .collect();
                let event = serde_json::json!({
                    "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": query,
                    "queryStringParameters": query_map, "headers": {"content-type": "application/json"},
                    "requestContext": context, "body": String::from_utf8_lossy(&body), "isBase64Encoded": false,
                });
                let request = lambda_http::request::from_str(&event.to_string()).unwrap();
                let response = handle(deps.as_ref(), request).await.unwrap();
                let status = response.status();
                let text = match response.body() {
                    lambda_http::Body::Text(t) => t.clone(),
                    lambda_http::Body::Binary(b) => String::from_utf8_lossy(b).to_string(),
                    _ => String::new(),
                };
                let out = format!(
                    "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or(""),
                    text.len()
                );
                let _ = socket.write_all(out.as_bytes()).await;
            });
        }
    });
    base
}

fn revscale(base: &str, user: Option<(&str, &str)>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_revscale"));
    cmd.args(args)
        .env("REVSCALE_API_URL", base)
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN");
    match user {
        Some((key, secret)) => cmd.env("AWS_ACCESS_KEY_ID", key).env("AWS_SECRET_ACCESS_KEY", secret),
        None => cmd.env_remove("AWS_ACCESS_KEY_ID").env_remove("AWS_SECRET_ACCESS_KEY"),
    };
    cmd.output().expect("revscale runs")
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands_are_signed_and_an_override_needs_two_people() {
    let seen: Seen = Arc::default();
    let base = serve(seen.clone()).await;
    let alice = Some(("AKIDALICE", "alice-secret"));
    let bob = Some(("AKIDBOB", "bob-secret"));
    let run = |user, args: Vec<&'static str>| {
        let base = base.clone();
        tokio::task::spawn_blocking(move || revscale(&base, user, &args))
    };

    let o = run(alice, vec!["status"]).await.unwrap();
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("level      L0") && out.contains("breaker    closed"), "{out}");

    let o =
        run(alice, vec!["override", "request", "--level", "2", "--until", "2099-01-01", "--reason", "pilot"])
            .await
            .unwrap();
    assert!(!o.status.success(), "an override beyond 30 days is refused");
    assert!(text(&o).1.contains("the API refused (400): field 'until'"), "{}", text(&o).1);

    let until = (chrono::Utc::now().date_naive() + chrono::Days::new(10)).to_string();
    let until: &'static str = Box::leak(until.into_boxed_str());
    let o = run(
        alice,
        vec!["override", "request", "--level", "2", "--until", until, "--reason", "pilot", "--json"],
    )
    .await
    .unwrap();
    assert!(o.status.success(), "{}", text(&o).1);
    let created: serde_json::Value = serde_json::from_str(&text(&o).0).unwrap();
    let id: &'static str =
        Box::leak(created["override"]["id"].as_str().unwrap().to_string().into_boxed_str());
    assert_eq!(
        created["override"]["requested_by"], "arn:aws:iam::123456789012:user/alice",
        "the verified signer is the requester"
    );

    let o = run(alice, vec!["override", "approve", id]).await.unwrap();
    assert!(
        text(&o).1.contains("the API refused (403)") && text(&o).1.contains("cannot approve it"),
        "self-approval: {}",
        text(&o).1
    );
    let o = run(bob, vec!["override", "approve", id, "--json"]).await.unwrap();
    assert!(o.status.success(), "{}", text(&o).1);
    let o = run(bob, vec!["override", "list"]).await.unwrap();
    assert!(
        text(&o).0.lines().any(|l| l.contains("active") && l.contains(id) && l.contains("L2")),
        "{}",
        text(&o).0
    );

    let o = run(bob, vec!["decisions", "--limit", "5"]).await.unwrap();
    let (out, _) = text(&o);
    assert!(out.contains("override-approve") && out.contains("user/bob"), "{out}");
    assert!(run(bob, vec!["mode", "shadow"]).await.unwrap().status.success());
    assert!(run(bob, vec!["breaker", "reset"]).await.unwrap().status.success());
    let o = run(alice, vec!["plan"]).await.unwrap();
    assert!(text(&o).0.starts_with("would do "), "{}", text(&o).0);

    // A second request, rejected by an approver, leaves the open list; nothing waits
    // for approval, so rejecting the pending change is a 404 that says so.
    let o =
        run(alice, vec!["override", "request", "--level", "1", "--until", until, "--reason", "x", "--json"])
            .await
            .unwrap();
    let second: serde_json::Value = serde_json::from_str(&text(&o).0).unwrap();
    let second: &'static str =
        Box::leak(second["override"]["id"].as_str().unwrap().to_string().into_boxed_str());
    let o = run(bob, vec!["override", "reject", second]).await.unwrap();
    assert!(o.status.success(), "{}", text(&o).1);
    let o = run(bob, vec!["override", "list"]).await.unwrap();
    assert!(!text(&o).0.contains(second), "a rejected override is no longer listed: {}", text(&o).0);
    let o = run(bob, vec!["pending", "reject", "--reason", "not now"]).await.unwrap();
    assert!(
        text(&o).1.contains("the API refused (404): no level change waits for approval"),
        "{}",
        text(&o).1
    );

    // A drain: the plan, alice's request, bob's approval with a flag before the
    // subcommand, and approve/cancel refusing the request's own flags before sending.
    let o = run(alice, vec!["drain", "--dry-run"]).await.unwrap();
    assert!(o.status.success() && text(&o).0.starts_with("drain      "), "{:?}", text(&o));
    let o = run(alice, vec!["drain", "--reason", "teardown"]).await.unwrap();
    assert!(text(&o).0.contains(" requested by arn:aws:iam::123456789012:user/alice"), "{:?}", text(&o));
    // The drain's id, as the request prints it: what bob approves by name.
    let drain_id: &'static str = Box::leak(
        text(&o)
            .0
            .split_whitespace()
            .nth(1)
            .expect("the drain line names its id")
            .to_string()
            .into_boxed_str(),
    );
    assert!(drain_id.starts_with("drain-"), "{drain_id}");
    let before = seen.lock().unwrap().len();
    let o = run(bob, vec!["drain", "--reason", "x", "cancel"]).await.unwrap();
    assert!(!o.status.success() && text(&o).1.contains("take no --reason"), "{:?}", text(&o));
    let o = run(bob, vec!["drain", "cancel", "--reason", "x"]).await.unwrap();
    assert!(!o.status.success() && text(&o).1.contains("unexpected argument '--reason'"), "{:?}", text(&o));
    assert_eq!(seen.lock().unwrap().len(), before);
    // Without --id and not at a terminal, nothing is approved: a script names what it approves.
    let o = run(bob, vec!["drain", "approve"]).await.unwrap();
    assert!(!o.status.success() && text(&o).1.contains(&format!("--id {drain_id}")), "{:?}", text(&o));
    let o = run(bob, vec!["drain", "approve", "--id", "drain-20261206-0000000000000000"]).await.unwrap();
    assert!(!o.status.success() && text(&o).1.contains("(409)"), "another id is refused: {:?}", text(&o));
    let o = run(bob, vec!["drain", "--json", "approve", "--id", drain_id]).await.unwrap();
    assert!(o.status.success(), "{:?}", text(&o));
    let approved: serde_json::Value = serde_json::from_str(&text(&o).0).unwrap();
    assert_eq!(approved["drain"]["approved_by"], "arn:aws:iam::123456789012:user/bob");
    assert!(run(alice, vec!["drain", "cancel"]).await.unwrap().status.success());
    let o = run(alice, vec!["drain"]).await.unwrap();
    assert!(
        !o.status.success() && text(&o).1.contains("--reason"),
        "a request needs a reason: {:?}",
        text(&o)
    );

    // Releasing a stuck run: the request reaches the API whole (nothing is stuck here,
    // so the API answers 409); a state a repair cannot leave is refused before sending.
    let o = run(
        bob,
        vec!["provisioning", "release", "d-1", "--component", "eks_control_plane=cold", "--reason", "fixed"],
    )
    .await
    .unwrap();
    assert!(
        text(&o).1.contains("the API refused (409): no provisioning run is in progress for d-1"),
        "{}",
        text(&o).1
    );
    let before = seen.lock().unwrap().len();
    let o = run(
        bob,
        vec!["provisioning", "release", "d-1", "--component", "eks_control_plane=warming", "--reason", "x"],
    )
    .await
    .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).1.contains("a repaired component is cold, warm or hot"), "{}", text(&o).1);
    assert_eq!(seen.lock().unwrap().len(), before);

    // Without credentials the CLI cannot sign, and says so; nothing is sent.
    let before = seen.lock().unwrap().len();
    let o = run(None, vec!["status"]).await.unwrap();
    assert!(!o.status.success());
    assert!(text(&o).1.contains("credentials"), "{}", text(&o).1);
    assert_eq!(seen.lock().unwrap().len(), before);

    // Every request that reached the API carried a SigV4 signature that verified.
    let seen = seen.lock().unwrap().clone();
    assert!(seen.len() >= 10);
    assert!(seen.iter().all(|(_, _, signed)| *signed), "{seen:?}");
}

#[tokio::test]
async fn a_stack_or_an_api_url_is_required() {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_revscale"));
    let o = cmd
        .arg("status")
        .env_remove("REVSCALE_API_URL")
        .env_remove("REVSCALE_STACK")
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_REGION", "eu-west-1")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        text(&o).1.contains("no stack: pass --stack NAME (or --api-url URL), or set REVSCALE_STACK"),
        "{}",
        text(&o).1
    );
}

/// The CLI as an operator signed in through a profile runs it: no keys in the
/// environment, only an AWS config file.
fn revscale_with_profile(base: &str, config_file: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_revscale"))
        .args(args)
        .args(["--api-url", base])
        .env("AWS_CONFIG_FILE", config_file)
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("REVSCALE_API_URL")
        .output()
        .expect("revscale runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_process_profile_signs_the_requests_in_the_region_given() {
    let seen: Seen = Arc::default();
    let base = serve(seen.clone()).await;
    let dir = std::env::temp_dir().join(format!("revscale-profile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // What `aws configure export-credentials` or a vault helper prints.
    let helper = dir.join("credentials.sh");
    std::fs::write(
        &helper,
        "#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\": \"AKIDBOB\", \"SecretAccessKey\": \"bob-secret\"}'\n",
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let config = dir.join("config");
    std::fs::write(
        &config,
        format!(
            "[profile ops]\nregion = eu-west-1\ncredential_process = {0}\n\n\
             [profile ops-elsewhere]\nregion = us-east-1\ncredential_process = {0}\n",
            helper.display()
        ),
    )
    .unwrap();
    let run = move |args: Vec<&'static str>| {
        let (base, config) = (base.clone(), config.clone());
        tokio::task::spawn_blocking(move || revscale_with_profile(&base, &config, &args))
    };

    let o = run(vec!["mode", "approval", "--profile", "ops", "--json"]).await.unwrap();
    assert!(o.status.success(), "{}", text(&o).1);
    let o = run(vec!["decisions", "--profile", "ops", "--json"]).await.unwrap();
    let decisions: serde_json::Value = serde_json::from_str(&text(&o).0).unwrap();
    assert_eq!(
        decisions["decisions"][0]["actor"], "arn:aws:iam::123456789012:user/bob",
        "the API verified the process's credentials as bob's"
    );

    // Signed for the profile's us-east-1, the request does not verify (the API is in
    // eu-west-1) and is refused; --region names the right one.
    let o = run(vec!["status", "--profile", "ops-elsewhere"]).await.unwrap();
    assert!(!o.status.success() && text(&o).1.contains("(403)"), "{}", text(&o).1);
    let o = run(vec!["status", "--profile", "ops-elsewhere", "--region", "eu-west-1"]).await.unwrap();
    assert!(o.status.success(), "{}", text(&o).1);
    assert!(text(&o).0.contains("mode       approval (set with `revscale mode`"), "{}", text(&o).0);

    // A profile that does not exist is named in the error; nothing is sent.
    let before = seen.lock().unwrap().len();
    let o = run(vec!["status", "--profile", "nobody"]).await.unwrap();
    assert!(!o.status.success());
    assert!(text(&o).1.contains("nobody"), "{}", text(&o).1);
    assert_eq!(seen.lock().unwrap().len(), before);
    std::fs::remove_dir_all(&dir).ok();
}
