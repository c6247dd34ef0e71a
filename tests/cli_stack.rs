//! The operator's way to the deployed stack, against moto: `--stack` finds the
//! configuration parameter in the stack's outputs, `config push` checks the file
//! against the stack's parameters before writing it, and the functions load what was
//! pushed at cold start (the file until the first push).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test with its message

use std::process::Output;

use aws_sdk_cloudformation::types::Parameter;
use revscale_aws::env::from_pairs;
use revscale_aws::runtime_config::{ConfigSource, read_pushed};
use revscale_engine::Config;
use revscale_integration_tests::*;

/// A stack shaped like the SAM template's, as far as the CLI reads it: its
/// parameters and the ConfigParameterName, ConfigFilesPath and ApiUrl outputs.
async fn stack(sdk: &aws_config::SdkConfig) -> (String, String) {
    stack_of_version(sdk, true).await
}

/// [`stack`], or one deployed before a configuration's files had parameters of their
/// own (no ConfigFilesPath output: its functions cannot read them).
async fn stack_of_version(sdk: &aws_config::SdkConfig, files: bool) -> (String, String) {
    let name = unique("rs").replace('-', "x");
    let parameter = format!("/revscale/{name}/config");
    let template = serde_json::json!({
        "Parameters": {
            "Mode": {"Type": "String"}, "RevenueCurrency": {"Type": "String"},
            "EksClusterName": {"Type": "String"}, "EksClusterRoleArn": {"Type": "String"},
            "EksNodeRoleArn": {"Type": "String"}, "FlagPrefix": {"Type": "String"},
        },
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {
            "ConfigParameterName": {"Value": parameter},
            "ConfigFilesPath": {"Value": format!("{parameter}/files/")},
            // Nothing listens there: the CLI's error names the URL it took from the stack.
            "ApiUrl": {"Value": "http://127.0.0.1:9"},
        },
    });
    let mut template = template;
    if !files {
        template["Outputs"].as_object_mut().unwrap().remove("ConfigFilesPath");
    }
    let p = |k: &str, v: &str| Parameter::builder().parameter_key(k).parameter_value(v).build();
    aws_sdk_cloudformation::Client::new(sdk)
        .create_stack()
        .stack_name(&name)
        .template_body(template.to_string())
        .parameters(p("Mode", "shadow"))
        .parameters(p("RevenueCurrency", "EUR"))
        .parameters(p("EksClusterName", "revscale"))
        .parameters(p("EksClusterRoleArn", "arn:aws:iam::123456789012:role/revscale-eks-cluster"))
        .parameters(p("EksNodeRoleArn", "arn:aws:iam::123456789012:role/revscale-eks-node"))
        .parameters(p("FlagPrefix", "/revscale/flags"))
        .send()
        .await
        .unwrap();
    (name, parameter)
}

/// The CLI, as an operator runs it, aimed at moto.
fn revscale(args: &[&str]) -> Output {
    revscale_command(args).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[tokio::test]
async fn config_push_checks_the_file_against_the_stack_then_the_functions_load_it_at_cold_start() {
    let sdk = sdk().await;
    let (name, parameter) = stack(&sdk).await;
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/revenue_thresholds.yaml");

    // Before any push the functions run with their file.
    let mut vars = vec![
        ("REVSCALE_CONFIG_PARAMETER", parameter.as_str()),
        ("REVSCALE_MODE", "shadow"),
        ("EKS_CLUSTER_NAME", "revscale"),
        ("EKS_CLUSTER_ROLE_ARN", "arn:aws:iam::123456789012:role/revscale-eks-cluster"),
        ("EKS_NODE_ROLE_ARN", "arn:aws:iam::123456789012:role/revscale-eks-node"),
        ("FLAG_PREFIX", "/revscale/flags"),
    ];
    let source = ConfigSource::from_vars(&from_pairs(&vars)).unwrap();
    assert_eq!(source.load(&sdk).await.unwrap().origin, "the built-in configuration");

    // A dry run writes nothing.
    let o = revscale(&["config", "push", shipped, "--stack", &name, "--dry-run"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("dry run: nothing written"), "{}", text(&o));
    assert!(ssm.get_parameter().name(&parameter).send().await.is_err());

    // The shipped file fits; its mode (auto) is noted as not the one in force.
    let o = revscale(&["config", "push", shipped, "--stack", &name, "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let pushed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (pushed["parameter"].as_str(), pushed["version"].as_i64()),
        (Some(parameter.as_str()), Some(1))
    );
    assert!(pushed["notes"][0].as_str().unwrap().contains("the stack's Mode parameter (shadow) decides"));

    // A file that names another role is refused, and the parameter keeps version 1.
    let other = std::env::temp_dir().join(format!("{name}-other-role.yaml"));
    std::fs::write(
        &other,
        std::fs::read_to_string(shipped)
            .unwrap()
            .replace(
                "      kind: eks_cluster\n",
                "      kind: eks_cluster\n      role_arn: arn:aws:iam::123456789012:role/other\n",
            )
            // Its manifests stay where the shipped file names them.
            .replace(
                "manifests_file: examples/",
                concat!("manifests_file: ", env!("CARGO_MANIFEST_DIR"), "/../config/examples/"),
            ),
    )
    .unwrap();
    let o = revscale(&["config", "push", other.to_str().unwrap(), "--stack", &name]);
    assert!(!o.status.success());
    assert!(text(&o).contains("components.eks_control_plane.driver.role_arn"), "{}", text(&o));
    let stored = read_pushed(&ssm, &parameter).await.unwrap().unwrap();
    assert_eq!(stored.version, 1);
    // The file's three manifests are stored in parameters of their own, beside it (the
    // functions read no file, and a parameter holds 8 KB): the same configuration,
    // deciding with the same ids, but for the files' names.
    let files_path = format!("{parameter}/files/");
    assert_eq!(stored.files.len(), 3, "{:?}", stored.files.keys());
    assert!(stored.files.keys().all(|k| k.starts_with(&files_path)), "{:?}", stored.files.keys());
    let file = Config::from_yaml(&std::fs::read_to_string(shipped).unwrap()).unwrap().without_file_names();
    assert_eq!(
        stored.config(&parameter).unwrap().without_file_names(),
        file,
        "what is stored is the file, comments aside"
    );
    report(&format!(
        "config push of the shipped file: the configuration {} bytes, its files {:?} bytes",
        stored.text.len(),
        stored.files.values().map(String::len).collect::<Vec<_>>()
    ));

    // A threshold changed and pushed: the next cold start runs with it, under the
    // stack's mode and cluster.
    let raised = std::env::temp_dir().join(format!("{name}-raised.yaml"));
    std::fs::write(&raised, shipped_elsewhere().replace("max_burn: 800", "max_burn: 900")).unwrap();
    let o = revscale(&["config", "push", raised.to_str().unwrap(), "--stack", &name]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("(version 2)"), "{}", text(&o));
    let loaded = source.load(&sdk).await.unwrap();
    assert_eq!(loaded.origin, format!("SSM parameter {parameter} (version 2)"));
    assert_eq!(loaded.config.levels[1].max_burn.minor, 90_000);
    assert_eq!(loaded.config.mode, revscale_engine::Mode::Shadow);
    assert_eq!(read_pushed(&ssm, &parameter).await.unwrap().unwrap().files, stored.files, "the same files");

    // Vault's manifests changed: a new parameter for them; the one the replaced
    // configuration names stays for a push more (a function may have just read it).
    let elsewhere = std::env::temp_dir().join(unique("manifests"));
    std::fs::create_dir_all(&elsewhere).unwrap();
    for (name, body) in revscale_engine::config::SHIPPED_MANIFESTS {
        std::fs::write(elsewhere.join(name), body.replace("ui = true", "ui = false")).unwrap();
    }
    let changed = std::env::temp_dir().join(format!("{name}-changed.yaml"));
    std::fs::write(
        &changed,
        include_str!("../config/revenue_thresholds.yaml").replace(
            "manifests_file: examples/manifests/",
            &format!("manifests_file: {}/", elsewhere.display()),
        ),
    )
    .unwrap();
    let push = |file: &std::path::Path| {
        let o = revscale(&["config", "push", file.to_str().unwrap(), "--stack", &name, "--json"]);
        assert!(o.status.success(), "{}", text(&o));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let names = |v: &serde_json::Value| -> Vec<String> {
        v.as_array().unwrap().iter().map(|n| n.as_str().unwrap().to_string()).collect()
    };
    let third = push(&changed);
    let new_vault: Vec<String> =
        names(&third["files"]).into_iter().filter(|f| !stored.files.contains_key(f)).collect();
    assert_eq!(new_vault.len(), 1, "{third}");
    assert!(new_vault[0].starts_with(&format!("{files_path}vault_ha-")), "{third}");
    assert_eq!(names(&third["removed"]), Vec::<String>::new());
    let loaded = source.load(&sdk).await.unwrap();
    assert_eq!(loaded.origin, format!("SSM parameter {parameter} (version 3)"));
    // Back to the shipped manifests: the changed ones are kept while the configuration
    // this push replaces names them, and removed by the push after.
    assert_eq!(names(&push(&raised)["removed"]), Vec::<String>::new());
    // A file written in the last seconds may be another push's under way: never
    // removed (config_push.rs, GC_CLOCK_MARGIN_SECONDS).
    assert_eq!(names(&push(&raised)["removed"]), Vec::<String>::new());
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    assert_eq!(names(&push(&raised)["removed"]), new_vault);
    assert!(ssm.get_parameter().name(&new_vault[0]).send().await.is_err());

    // A file the configuration names that is gone (deleted by hand): the cold start
    // stops, naming it, instead of running without it.
    let vault = stored.files.keys().find(|k| k.contains("vault_ha-")).unwrap().clone();
    ssm.delete_parameter().name(&vault).send().await.unwrap();
    let err = source.load(&sdk).await.unwrap_err().to_string();
    assert!(
        err.contains(&format!("components.vault_ha.driver.manifests_file: cannot read '{vault}'")),
        "{err}"
    );
    assert!(err.contains("push it again"), "{err}");
    let o = revscale(&["config", "push", raised.to_str().unwrap(), "--stack", &name]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(source.load(&sdk).await.unwrap().origin, format!("SSM parameter {parameter} (version 7)"));
    std::fs::remove_file(&changed).ok();
    std::fs::remove_dir_all(&elsewhere).ok();

    // A function whose stack keeps its flags elsewhere refuses to start on it.
    vars[5] = ("FLAG_PREFIX", "/elsewhere");
    let err = ConfigSource::from_vars(&from_pairs(&vars)).unwrap_err();
    assert!(err.to_string().contains("outside the stack's FlagPrefix '/elsewhere'"), "{err}");

    // The operator commands find the API in the stack's outputs; --api-url beats it.
    let o = revscale(&["status", "--stack", &name]);
    assert!(text(&o).contains("cannot reach http://127.0.0.1:9/status"), "{}", text(&o));
    let o = revscale(&["status", "--stack", &name, "--api-url", "http://127.0.0.1:8"]);
    assert!(text(&o).contains("cannot reach http://127.0.0.1:8/status"), "{}", text(&o));

    // No such stack: the error names it.
    let o = revscale(&["config", "push", shipped, "--stack", "no-such-stack"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("no-such-stack"), "{}", text(&o));
    std::fs::remove_file(other).ok();
    std::fs::remove_file(raised).ok();
}

/// A configuration with manifests pushed to a stack whose functions predate the files'
/// own parameters would stop them at their next cold start: refused, nothing written.
/// One without files still goes.
#[tokio::test]
async fn config_push_of_files_to_a_stack_older_than_their_parameters_is_refused_before_anything_is_written() {
    let sdk = sdk().await;
    let (name, parameter) = stack_of_version(&sdk, false).await;
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/revenue_thresholds.yaml");
    let o = revscale(&["config", "push", shipped, "--stack", &name]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("predates a configuration's files in parameters of their own"), "{}", text(&o));
    assert!(text(&o).contains("deploy this version's template"), "{}", text(&o));
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    assert!(ssm.get_parameter().name(&parameter).send().await.is_err(), "nothing was uploaded");
    let files = ssm.get_parameters_by_path().path(format!("{parameter}/files")).send().await.unwrap();
    assert_eq!(files.parameters.unwrap_or_default().len(), 0, "no file was uploaded");
    // Without manifests there is nothing it cannot read.
    let mut tree: serde_norway::Value = serde_norway::from_str(revscale_engine::DEFAULT_CONFIG_YAML).unwrap();
    for id in ["vault_ha", "tee", "full_escrow"] {
        tree["components"][id]["driver"] =
            serde_norway::from_str(&format!("{{kind: ssm_flag, parameter_name: /revscale/flags/{id}}}"))
                .unwrap();
    }
    let plain = std::env::temp_dir().join(format!("{}.yaml", unique("no-files")));
    std::fs::write(&plain, serde_norway::to_string(&tree).unwrap()).unwrap();
    let o = revscale(&["config", "push", plain.to_str().unwrap(), "--stack", &name]);
    assert!(o.status.success(), "{}", text(&o));
    std::fs::remove_file(plain).ok();
}

/// `revscale drift` reads each component through its driver (here moto's ECS and RDS)
/// and compares it with the state the API records (here a server answering `/status`
/// as the API does): a HOT service found at 0 is drift, a stopped database recorded
/// WARM agrees, and the exit status says drift.
#[tokio::test]
async fn drift_compares_what_the_drivers_read_with_what_the_api_recorded() {
    use wiremock::matchers::{method, path};
    let sdk = sdk().await;
    let (cluster, service, db) = (unique("drift"), unique("orders"), unique("reports"));
    let ecs = aws_sdk_ecs::Client::new(&sdk);
    ecs.create_cluster().cluster_name(&cluster).send().await.unwrap();
    let container =
        aws_sdk_ecs::types::ContainerDefinition::builder().name("o").image("nginx").memory(256).build();
    ecs.register_task_definition().family(&service).container_definitions(container).send().await.unwrap();
    ecs.create_service()
        .cluster(&cluster)
        .service_name(&service)
        .task_definition(&service)
        .desired_count(0)
        .send()
        .await
        .unwrap();
    let rds = aws_sdk_rds::Client::new(&sdk);
    rds.create_db_instance()
        .db_instance_identifier(&db)
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("revscale")
        .master_user_password("not-a-secret-0")
        .send()
        .await
        .unwrap();
    rds.stop_db_instance().db_instance_identifier(&db).send().await.unwrap();

    // A configuration whose level 1 switches the two.
    let mut tree: serde_norway::Value = serde_norway::from_str(revscale_engine::DEFAULT_CONFIG_YAML).unwrap();
    for (i, (_, level)) in tree["levels"].as_mapping_mut().unwrap().iter_mut().enumerate() {
        level["auto_enable"] =
            serde_norway::from_str(if i == 1 { "[orders, reports]" } else { "[]" }).unwrap();
    }
    tree["components"] = serde_norway::from_str(&format!(
        "orders: {{billing: aws, cost: {{hot: 0, warm: 0}}, driver: {{kind: ecs_service, cluster: {cluster}, service: {service}, desired_count: 2}}}}\n\
         reports: {{billing: aws, cost: {{hot: 0, warm: 0}}, driver: {{kind: rds_instance, db_instance_identifier: {db}}}}}\n"
    ))
    .unwrap();
    let file = std::env::temp_dir().join(format!("{}.yaml", unique("drift-config")));
    std::fs::write(&file, serde_norway::to_string(&tree).unwrap()).unwrap();

    // The API's answer: orders HOT, reports WARM.
    let golden: serde_json::Value = serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../functions/override-api/tests/wire_format.golden.json"
    )))
    .unwrap();
    let mut status = golden["status, fresh"]["body"].clone();
    status["components"] = serde_json::json!({
        "orders": {"state": "hot", "since": "2026-11-01", "kind": "ecs_service"},
        "reports": {"state": "warm", "since": "2026-11-01", "kind": "rds_instance"},
    });
    let api = wiremock::MockServer::start().await;
    wiremock::Mock::given(method("GET"))
        .and(path("/status"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(&status))
        .mount(&api)
        .await;

    let o = revscale(&["drift", "--api-url", &api.uri(), "--config", file.to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(3), "drift is exit status 3: {}", text(&o));
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let by_component =
        |id: &str| rows.as_array().unwrap().iter().find(|r| r["component"] == id).cloned().unwrap();
    let orders = by_component("orders");
    assert_eq!(
        (orders["recorded"].as_str(), orders["difference"].as_str()),
        (Some("hot"), Some("drift")),
        "{orders}"
    );
    assert!(orders["actual"].as_str().unwrap().starts_with("desiredCount 0"), "{orders}");
    let reports = by_component("reports");
    assert_eq!(reports["difference"], "agrees", "{reports}");
    report(&format!(
        "revscale drift:\n{}",
        text(&revscale(&["drift", "--api-url", &api.uri(), "--config", file.to_str().unwrap()]))
    ));
}

/// A configuration naming a service and a database the account does not have is
/// refused by `config push`, each by its key path and resource, before anything is
/// uploaded: the first transition would otherwise fail on them months later.
#[tokio::test]
async fn config_push_refuses_a_service_or_a_database_the_account_does_not_have() {
    let sdk = sdk().await;
    let (name, parameter) = stack(&sdk).await;
    let mut tree: serde_norway::Value = serde_norway::from_str(revscale_engine::DEFAULT_CONFIG_YAML).unwrap();
    for (i, (_, level)) in tree["levels"].as_mapping_mut().unwrap().iter_mut().enumerate() {
        level["auto_enable"] =
            serde_norway::from_str(if i == 1 { "[orders, reports]" } else { "[]" }).unwrap();
    }
    tree["components"] = serde_norway::from_str(
        "orders: {billing: aws, cost: {hot: 0, warm: 0}, driver: {kind: ecs_service, cluster: no-such-cluster, service: orders, desired_count: 2}}\n\
         reports: {billing: aws, cost: {hot: 0, warm: 0}, driver: {kind: rds_instance, db_instance_identifier: no-such-db}}\n",
    )
    .unwrap();
    tree["mode"] = "shadow".into();
    let file = std::env::temp_dir().join(format!("{}.yaml", unique("missing")));
    std::fs::write(&file, serde_norway::to_string(&tree).unwrap()).unwrap();
    let o = revscale(&["config", "push", file.to_str().unwrap(), "--stack", &name]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("components.orders.driver: ECS service orders in cluster no-such-cluster"), "{out}");
    assert!(out.contains("components.reports.driver: RDS instance no-such-db"), "{out}");
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    assert!(ssm.get_parameter().name(&parameter).send().await.is_err(), "nothing was uploaded");
}

/// What a workload's first step would refuse is found at push, with the operator's
/// credentials, before anything is uploaded: an HPA scaling it, a missing label.
#[tokio::test]
async fn config_push_refuses_a_workload_an_hpa_scales_or_that_is_not_labelled_for_its_component() {
    let sdk = sdk().await;
    let (name, parameter) = stack(&sdk).await;
    // The stack's cluster (EksClusterName revscale), ACTIVE in moto, its API the fake.
    stack_cluster(&sdk).await.ok();
    let kubernetes = format!("{}/_kubernetes", revscale_integration_tests::router_url());
    let http = reqwest::Client::new();
    for control in [
        serde_json::json!({"namespace": "shop", "kind": "Deployment", "name": "web", "replicas": 2,
                           "labels": {"revscale-component": "web"}}),
        serde_json::json!({"namespace": "shop", "kind": "Deployment", "name": "api", "replicas": 2, "labels": {}}),
        serde_json::json!({"hpa": {"namespace": "shop", "name": "web-cpu",
                                   "target": {"kind": "Deployment", "name": "web"}}}),
    ] {
        assert!(http.post(&kubernetes).json(&control).send().await.unwrap().status().is_success());
    }
    let mut tree: serde_norway::Value = serde_norway::from_str(revscale_engine::DEFAULT_CONFIG_YAML).unwrap();
    for (i, (_, level)) in tree["levels"].as_mapping_mut().unwrap().iter_mut().enumerate() {
        level["auto_enable"] = serde_norway::from_str(if i == 1 { "[web, api]" } else { "[]" }).unwrap();
    }
    tree["components"] = serde_norway::from_str(
        "web: {billing: aws, cost: {hot: 0, warm: 0}, driver: {kind: kubernetes_workload, namespace: shop, workload_kind: Deployment, name: web}}\n\
         api: {billing: aws, cost: {hot: 0, warm: 0}, driver: {kind: kubernetes_workload, namespace: shop, workload_kind: Deployment, name: api}}\n",
    )
    .unwrap();
    tree["mode"] = "shadow".into();
    let file = std::env::temp_dir().join(format!("{}.yaml", unique("workloads")));
    std::fs::write(&file, serde_norway::to_string(&tree).unwrap()).unwrap();
    let o = revscale_command(&["config", "push", file.to_str().unwrap(), "--stack", &name])
        .env("REVSCALE_KUBERNETES_ENDPOINT", revscale_integration_tests::router_url())
        .output()
        .unwrap();
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(
        out.contains(
            "components.web.driver: web: the HorizontalPodAutoscaler shop/web-cpu scales Deployment shop/web"
        ),
        "{out}"
    );
    assert!(
        out.contains("components.api.driver: api: Deployment shop/api has no revscale-component label"),
        "{out}"
    );
    // `config validate --stack` finds the same, and so uploads nothing either; without
    // --stack it checks the file alone, which is valid.
    let o = revscale_command(&["config", "validate", file.to_str().unwrap(), "--stack", &name])
        .env("REVSCALE_KUBERNETES_ENDPOINT", revscale_integration_tests::router_url())
        .output()
        .unwrap();
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("shop/web-cpu scales Deployment shop/web"), "{}", text(&o));
    let o = revscale(&["config", "validate", file.to_str().unwrap()]);
    assert!(o.status.success() && text(&o).contains(": valid ("), "{}", text(&o));
    let ssm = aws_sdk_ssm::Client::new(&sdk);
    assert!(ssm.get_parameter().name(&parameter).send().await.is_err(), "nothing was uploaded");
}

/// The shipped configuration's text for a file written elsewhere: its manifests named
/// where they are (config/examples/manifests).
fn shipped_elsewhere() -> String {
    include_str!("../config/revenue_thresholds.yaml").replace(
        "manifests_file: examples/",
        concat!("manifests_file: ", env!("CARGO_MANIFEST_DIR"), "/../config/examples/"),
    )
}
