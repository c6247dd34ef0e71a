//! The state machines' definitions (infra/statemachine/*.asl.json), read as Step Functions
//! reads them: every Task that invokes a Lambda must retry the errors AWS recommends
//! retrying for Lambda, or a passing blip of the Lambda service fails (or rolls back) a run.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use serde_json::Value;

/// AWS's recommended Lambda retrier (Step Functions developer guide, "Handling errors").
/// `ClientExecutionTimeoutException`: the invocation timed out on the way; every step is
/// idempotent (retried calls write nothing twice), so retrying it is safe.
const LAMBDA_RETRIED: [&str; 5] = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.ClientExecutionTimeoutException",
];

fn definitions() -> Vec<(String, Value)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../infra/statemachine");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.to_string_lossy().ends_with(".asl.json") {
            let text = std::fs::read_to_string(&path).unwrap();
            let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            found.push((path.display().to_string(), json));
        }
    }
    found
}

/// Every state of a definition, nested ones (Parallel branches, Map iterators) included.
fn states<'a>(definition: &'a Value, out: &mut Vec<(&'a str, &'a Value)>) {
    for (name, state) in definition["States"].as_object().into_iter().flatten() {
        out.push((name, state));
        for branch in state["Branches"].as_array().into_iter().flatten() {
            states(branch, out);
        }
        for nested in [&state["Iterator"], &state["ItemProcessor"]] {
            states(nested, out);
        }
    }
}

/// A Task invokes Lambda when its resource is a function (the template substitutes the
/// provision function's ARN for `${...FunctionArn}`) or the `lambda:invoke` integration.
fn invokes_lambda(task: &Value) -> bool {
    let resource = task["Resource"].as_str().unwrap_or_default();
    resource.contains("FunctionArn}")
        || resource.starts_with("arn:aws:lambda:")
        || resource.starts_with("arn:aws:states:::lambda:invoke")
}

#[test]
fn every_task_that_invokes_lambda_retries_all_five_errors_aws_recommends() {
    let mut checked = 0;
    let mut missing = Vec::new();
    for (file, definition) in definitions() {
        let mut all = Vec::new();
        states(&definition, &mut all);
        for (name, state) in all {
            if state["Type"] != "Task" || !invokes_lambda(state) {
                continue;
            }
            checked += 1;
            let retried: Vec<&str> = state["Retry"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|r| r["ErrorEquals"].as_array().into_iter().flatten())
                .filter_map(Value::as_str)
                .collect();
            for error in LAMBDA_RETRIED {
                if !retried.contains(&error) {
                    missing.push(format!("{file}: {name} does not retry {error}"));
                }
            }
        }
    }
    assert!(checked >= 10, "the provision state machine's Lambda tasks were found: {checked}");
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}
