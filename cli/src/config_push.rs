//! `revscale config push FILE --stack NAME`: validate a configuration as the deployed
//! functions will load it (the stack's mode, cluster, roles and currency applied), then
//! upload it to the stack's configuration parameter. The functions load it at their
//! next cold start; nothing is uploaded when anything is wrong.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use aws_sdk_ssm::types::{ParameterTier, ParameterType};
use revscale_engine::config::Deployment;
use revscale_engine::{Config, Currency};

use crate::stack::{Stack, Target};

#[derive(clap::Args)]
pub struct Args {
    /// The configuration to upload (checked first, as `config validate` does).
    file: PathBuf,
    #[command(flatten)]
    target: Target,
    /// Check the file against the stack and say what would be uploaded, without uploading.
    #[arg(long)]
    dry_run: bool,
    /// Print `{"stack", "parameter", "version", "uploaded", "notes"}` instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let config = crate::parse_config(&text, &args.file.display().to_string())
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let sdk = args.target.sdk().await;
        let stack = args.target.stack(&sdk).await?;
        let notes =
            check_against(&config, &stack).map_err(|e| anyhow::anyhow!("{}: {e}", args.file.display()))?;
        let missing = missing_resources(&sdk, &config, &stack).await;
        if !missing.is_empty() {
            anyhow::bail!("{}: {} problem(s)\n  {}", args.file.display(), missing.len(), missing.join("\n  "));
        }
        let parameter = stack.output("ConfigParameterName")?;
        let text = compact(&text, &config);
        // An SSM parameter holds 8 KB (advanced tier): a configuration that carries a
        // CloudFormation template may not fit, and PutParameter would say so only after
        // the checks passed.
        if text.len() > MAX_PARAMETER_BYTES {
            anyhow::bail!(
                "{}: with its templates the configuration is {} bytes; the stack's configuration parameter holds {MAX_PARAMETER_BYTES}: shorten the template (a CDK synth without metadata) or split the stack",
                args.file.display(),
                text.len()
            );
        }
        let version = if args.dry_run {
            None
        } else {
            let answer = aws_sdk_ssm::Client::new(&sdk)
                .put_parameter()
                .name(&parameter)
                .description(format!(
                    "revscale thresholds for stack {}, from revscale config push",
                    stack.name
                ))
                .value(&text)
                .r#type(ParameterType::String)
                .overwrite(true)
                // Standard (free) up to 4 KB, advanced beyond: a long config still fits.
                .tier(ParameterTier::IntelligentTiering)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("{}", aws_sdk_ssm::error::DisplayErrorContext(&e)))
                .with_context(|| format!("cannot write {parameter}"))?;
            Some(answer.version)
        };
        if args.json {
            let out = serde_json::json!({
                "stack": stack.name, "parameter": parameter, "version": version,
                "uploaded": version.is_some(), "notes": notes,
            });
            println!("{out}");
        } else {
            match version {
                Some(v) => println!(
                    "{}: valid for stack {}; uploaded to {parameter} (version {v}).\n\
                     The functions load it at their next cold start.",
                    args.file.display(),
                    stack.name
                ),
                None => println!(
                    "{}: valid for stack {}; would upload to {parameter} (dry run: nothing written)",
                    args.file.display(),
                    stack.name
                ),
            }
            for note in &notes {
                println!("note: {note}");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// What the deployed functions will make of `config`: problems are errors, and what
/// the stack decides instead of the file (its mode) is returned as notes.
/// The components whose resource must exist in every state (a service, a group, a
/// database, a function: revscale switches them, it does not create them) and that the
/// account does not have, read through each kind's driver with the operator's
/// credentials: the first transition would fail on them months later.
async fn missing_resources(sdk: &aws_config::SdkConfig, config: &Config, stack: &Stack) -> Vec<String> {
    use revscale_engine::ports::ComponentDriver;
    let Ok(config) =
        config.for_deployment(&Deployment::from_parameters(|name| stack.parameters.get(name).cloned()))
    else {
        return vec![];
    };
    // The tests' Kubernetes API, as the functions read it (loopback only).
    let test_server =
        match revscale_aws::kubernetes::TestEndpoint::from_vars(&revscale_aws::env::Vars::process()) {
            Ok(endpoint) => endpoint,
            Err(e) => return vec![e.to_string()],
        };
    let drivers = revscale_aws::drivers::AwsDrivers::new(sdk).with_kubernetes_endpoint(test_server);
    let mut missing = Vec::new();
    for id in &config.activation_order {
        let Some(component) = config.component(id) else { continue };
        let kind = component.driver.as_kind();
        if kind.must_exist() {
            match drivers.observe(component).await {
                Ok(seen) if seen.absent => {
                    missing.push(format!("components.{id}.driver: {} ({})", kind.resource(), seen.actual));
                    continue;
                }
                Ok(_) => {}
                // Unreadable with these credentials: said, not a refusal.
                Err(e) => eprintln!("note: components.{id}: cannot read {}: {e}", kind.resource()),
            }
        }
        // What its first step would refuse (an HPA on a workload, a missing label).
        match drivers.preflight(component).await {
            Ok(problems) => {
                missing.extend(problems.into_iter().map(|p| format!("components.{id}.driver: {p}")))
            }
            Err(e) => eprintln!("note: components.{id}: cannot check {}: {e}", kind.resource()),
        }
    }
    missing
}

/// What an advanced-tier SSM parameter holds.
const MAX_PARAMETER_BYTES: usize = 8 * 1024;

pub fn check_against(config: &Config, stack: &Stack) -> anyhow::Result<Vec<String>> {
    // Every parameter a kind may need; one a component needs and the stack lacks is a
    // problem `for_deployment` names.
    let deployment = Deployment::from_parameters(|name| stack.parameters.get(name).cloned());
    config.for_deployment(&deployment).map_err(|e| anyhow::anyhow!("{e}"))?;
    let stored: Currency = stack
        .parameter("RevenueCurrency")?
        .parse()
        .map_err(|e| anyhow::anyhow!("the stack's RevenueCurrency: {e}"))?;
    if config.currency != stored {
        anyhow::bail!(
            "currency {} differs from the stack's RevenueCurrency {stored}, the currency the collectors store revenue in",
            config.currency
        );
    }
    let mut notes = Vec::new();
    let deployed_mode = stack.parameter("Mode")?;
    if config.mode.to_string() != deployed_mode {
        notes.push(format!(
            "the file's mode ({}) is not used: the stack's Mode parameter ({deployed_mode}) decides, \
             or `revscale mode` until the next deploy that changes Mode",
            config.mode
        ));
    }
    Ok(notes)
}

/// The text to upload: without whole-line comments when that changes nothing (a
/// standard parameter holds 4 KB, and the shipped file's comments alone are 3 KB),
/// else as written.
fn compact(text: &str, config: &Config) -> String {
    let text = &with_templates(text, config);
    let stripped: String = text
        .lines()
        .filter(|line| !line.trim_start().starts_with('#') && !line.trim().is_empty())
        .map(|line| format!("{line}\n"))
        .collect();
    match (Config::from_yaml(&stripped), Config::from_yaml(text)) {
        (Ok(same), Ok(sent)) if same == sent => stripped,
        _ => text.to_string(),
    }
}

/// `text` with each file it names (a CloudFormation template, a workload's
/// manifests) carried in as its body (`template_body`, `manifests_body`): the
/// functions read no file. Unchanged when it names none.
fn with_templates(text: &str, config: &Config) -> String {
    let named: Vec<_> = config
        .components
        .iter()
        .filter_map(|(id, c)| {
            let mut driver = c.driver.clone();
            // Manifests are held as one line of JSON per document (the parameter holds
            // 8 KB, and comments and indentation are most of a YAML manifest).
            let named = driver.as_kind_mut().named_file()?;
            named.file.is_some().then(|| (id.to_string(), named.key, named.body_key, named.body.clone()))
        })
        .collect();
    if named.is_empty() {
        return text.to_string();
    }
    let Ok(mut tree) = serde_norway::from_str::<serde_norway::Value>(text) else { return text.to_string() };
    for (id, key, body_key, body) in named {
        if let Some(driver) = tree
            .get_mut("components")
            .and_then(|c| c.get_mut(id.as_str()))
            .and_then(|c| c.get_mut("driver"))
            .and_then(|d| d.as_mapping_mut())
        {
            driver.remove(key);
            if let Some(body) = body {
                driver.insert(body_key.into(), body.into());
            }
        }
    }
    serde_norway::to_string(&tree).unwrap_or_else(|_| text.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::collections::BTreeMap;

    use super::*;

    fn stack(mode: &str, currency: &str) -> Stack {
        let parameters: BTreeMap<String, String> = [
            ("EksClusterName", "revscale"),
            ("EksClusterRoleArn", "arn:aws:iam::111122223333:role/cluster"),
            ("EksNodeRoleArn", "arn:aws:iam::111122223333:role/node"),
            ("FlagPrefix", "/revscale/flags"),
            ("RevenueCurrency", currency),
            ("Mode", mode),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Stack { name: "rs".into(), outputs: BTreeMap::new(), parameters }
    }

    #[test]
    fn the_shipped_file_fits_the_stack_and_its_mode_is_noted_as_unused() {
        let config = Config::default_config().unwrap();
        assert!(check_against(&config, &stack("auto", "EUR")).unwrap().is_empty());
        let notes = check_against(&config, &stack("shadow", "EUR")).unwrap();
        assert!(notes[0].contains("the stack's Mode parameter (shadow) decides"), "{notes:?}");
    }

    #[test]
    fn a_file_in_another_currency_or_for_another_cluster_is_refused() {
        let config = Config::default_config().unwrap();
        let err = check_against(&config, &stack("auto", "USD")).unwrap_err().to_string();
        assert!(err.contains("differs from the stack's RevenueCurrency USD"), "{err}");
        let other = revscale_engine::DEFAULT_CONFIG_YAML.replace(
            "      kind: eks_cluster\n",
            "      kind: eks_cluster\n      role_arn: arn:aws:iam::111122223333:role/other\n",
        );
        let err = check_against(&Config::from_yaml(&other).unwrap(), &stack("auto", "EUR"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("components.eks_control_plane.driver.role_arn"), "{err}");
    }

    #[test]
    fn comments_are_left_out_of_the_upload_and_the_configuration_stays_the_same() {
        let text = revscale_engine::DEFAULT_CONFIG_YAML;
        let config = Config::from_yaml(text).unwrap();
        let uploaded = compact(text, &config);
        // The shipped manifests (Vault's, the TEE's, escrow's) take it past a standard
        // parameter's 4 KB: it is an advanced one (IntelligentTiering).
        assert!(uploaded.len() <= MAX_PARAMETER_BYTES, "fits the parameter: {} bytes", uploaded.len());
        assert!(!uploaded.contains("manifests_file"), "the functions read no file");
        // The same configuration, each workload's documents one line of JSON each.
        let sent = Config::from_yaml(&uploaded).unwrap();
        let documents = |c: &Config| -> Vec<serde_json::Value> {
            c.components
                .values()
                .filter_map(|c| match &c.driver {
                    revscale_engine::config::DriverSpec::KubernetesWorkload(w) => Some(w),
                    _ => None,
                })
                .flat_map(|w| w.manifests().unwrap().into_iter().map(|m| m.object))
                .collect()
        };
        assert_eq!(documents(&sent).len(), 8);
        assert_eq!(documents(&sent), documents(&config));
        // It decides with the same ids as the file; only the file names are gone.
        assert_eq!(sent.fingerprint, config.fingerprint);
        let without_file_names = |mut c: Config| {
            for component in c.components.values_mut() {
                if let Some(named) = component.driver.as_kind_mut().named_file() {
                    named.file.take();
                }
            }
            c
        };
        assert_eq!(sent, without_file_names(config));
    }
}
