//! The real `collect-revenue` binary, started as Lambda starts it, whose first SSM read
//! (the Stripe key) is throttled: it must tell the Runtime API's init error endpoint
//! `Transient`, so the retriers see a retryable error and not a bare runtime exit.
//!
//! One local server plays both sides: the Runtime API (`AWS_LAMBDA_RUNTIME_API`) and
//! SSM (`AWS_ENDPOINT_URL`), answering every `GetParameter` with a ThrottlingException.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One request the server received.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Serves one request per connection (answering `Connection: close`) and records it.
fn serve(listener: TcpListener, log: Arc<Mutex<Vec<Received>>>) {
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                break;
            }
            if let Some((n, v)) = h.trim_end().split_once(':') {
                headers.push((n.trim().to_string(), v.trim().to_string()));
            }
        }
        let length = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0usize);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let received = Received { method, path, headers, body: String::from_utf8_lossy(&body).into_owned() };
        let (status, content_type, answer) = if received.path == "/2018-06-01/runtime/init/error" {
            ("202 Accepted", "application/json", r#"{"status":"OK"}"#.to_string())
        } else if received.header("x-amz-target") == Some("AmazonSSM.GetParameter") {
            (
                "400 Bad Request",
                "application/x-amz-json-1.1",
                r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.to_string(),
            )
        } else {
            ("404 Not Found", "text/plain", "not here".to_string())
        };
        log.lock().unwrap().push(received);
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
            answer.len()
        );
        let _ = stream.write_all(response.as_bytes());
    }
}

#[test]
fn a_function_whose_first_ssm_read_is_throttled_reports_transient_to_the_init_error_endpoint() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let server_log = log.clone();
    std::thread::spawn(move || serve(listener, server_log));

    let mut child = Command::new(env!("CARGO_BIN_EXE_collect-revenue"))
        // Nothing from the machine's own AWS setup.
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_ENDPOINT_URL", format!("http://{address}"))
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_MAX_ATTEMPTS", "2")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_LAMBDA_FUNCTION_NAME", "revscale-collect-revenue")
        .env("TABLE_NAME", "revscale")
        .env("STRIPE_API_KEY_PARAMETER", "/revscale/stripe")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("the function did not stop after its failed cold start");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut logs = String::new();
    child.stdout.take().unwrap().read_to_string(&mut logs).unwrap();
    assert!(!status.success(), "a failed cold start exits with an error: {logs}");

    let received = log.lock().unwrap().clone();
    let reads =
        received.iter().filter(|r| r.header("x-amz-target") == Some("AmazonSSM.GetParameter")).count();
    assert!(reads >= 1, "the Stripe key was read from SSM: {received:#?}");
    let reports: Vec<&Received> = received
        .iter()
        .filter(|r| r.method == "POST" && r.path == "/2018-06-01/runtime/init/error")
        .collect();
    assert_eq!(reports.len(), 1, "one init error report: {received:#?}\n{logs}");
    assert_eq!(
        reports[0].header("Lambda-Runtime-Function-Error-Type"),
        Some("Transient"),
        "{:#?}",
        reports[0]
    );
    let body: serde_json::Value = serde_json::from_str(&reports[0].body).unwrap();
    assert_eq!(body["errorType"], "Transient");
    assert!(body["errorMessage"].as_str().unwrap().contains("/revscale/stripe"), "{body}");
    assert!(logs.contains("cold start failed"), "the failure is logged too: {logs}");
}
