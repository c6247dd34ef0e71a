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

use revscale_aws::runtime_config::{Pushed, read_pushed, stored_files};

use crate::stack::{Stack, Target};

#[derive(clap::Args)]
pub struct Args {
    /// The configuration to upload (checked first, as `config validate` does).
    pub file: PathBuf,
    #[command(flatten)]
    pub target: Target,
    /// Check the file against the stack and say what would be uploaded, without uploading
    /// (what `config validate FILE --stack NAME` does).
    #[arg(long)]
    pub dry_run: bool,
    /// Print `{"stack", "parameter", "version", "uploaded", "files", "removed", "notes"}`
    /// instead of text.
    #[arg(long)]
    pub json: bool,
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
        let upload = upload(&text, &config, &parameter);
        // What is uploaded must read back as the file checked, files and all.
        let reads_back = Pushed { text: upload.text.clone(), version: 0, files: upload.stored() }
            .config(&parameter)
            .map(Config::without_file_names);
        if reads_back.as_ref().ok() != Some(&config.clone().without_file_names()) {
            anyhow::bail!(
                "{}: the text to upload does not read back as the file ({}): nothing uploaded",
                args.file.display(),
                reads_back.err().map_or_else(|| "another configuration".to_string(), |e| e.to_string())
            );
        }
        // A stack older than the files' own parameters runs functions that cannot read
        // them: they would stop at their next cold start.
        if !upload.files.is_empty() {
            match stack.output("ConfigFilesPath") {
                Ok(path) if path == revscale_aws::runtime_config::files_path(&parameter) => {}
                Ok(path) => anyhow::bail!(
                    "{}: the stack stores a configuration's files under {path}, not {}: is this revscale the stack's version?",
                    args.file.display(),
                    revscale_aws::runtime_config::files_path(&parameter)
                ),
                Err(_) => anyhow::bail!(
                    "{}: stack {} predates a configuration's files in parameters of their own, and its functions \
                     would not read them: deploy this version's template (sam deploy), then push",
                    args.file.display(),
                    stack.name
                ),
            }
        }
        // A parameter holds 8 KB (advanced tier): PutParameter would say so only after
        // the checks passed, and perhaps after some files were written.
        if upload.text.len() > MAX_PARAMETER_BYTES {
            anyhow::bail!(
                "{}: the configuration is {} bytes without its files; the stack's configuration parameter holds {MAX_PARAMETER_BYTES}: shorten it or split the stack",
                args.file.display(),
                upload.text.len()
            );
        }
        for file in &upload.files {
            if file.body.len() > MAX_PARAMETER_BYTES {
                anyhow::bail!(
                    "{}: components.{}.driver.{}: '{}' is {} bytes as stored ({}); a parameter holds {MAX_PARAMETER_BYTES}: split it between components",
                    args.file.display(),
                    file.component,
                    file.key,
                    file.file,
                    file.body.len(),
                    if file.key == "manifests_file" { "one line of JSON per document" } else { "as written" },
                );
            }
        }
        let (version, removed) = if args.dry_run {
            (None, Vec::new())
        } else {
            let ssm = aws_sdk_ssm::Client::new(&sdk);
            // Files written since this push began are never removed by it: another push
            // may be under way (SSM's clock and this one's may differ by a few seconds).
            let began = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
                - GC_CLOCK_MARGIN_SECONDS;
            // The configuration being replaced keeps its files until the next push: a
            // function starting now may have read it a moment ago.
            let previous = read_pushed(&ssm, &parameter).await;
            // The files first, the configuration naming them last: a function never
            // finds a configuration whose files are not there yet.
            for file in &upload.files {
                put(
                    &ssm,
                    &file.parameter,
                    &file.body,
                    format!("revscale: components.{}.driver.{} ({}) of {parameter}", file.component, file.key, file.file),
                )
                .await?;
            }
            let version = put(
                &ssm,
                &parameter,
                &upload.text,
                format!("revscale thresholds for stack {}, from revscale config push", stack.name),
            )
            .await?;
            let removed = match previous {
                Ok(previous) => {
                    let named = |pushed: Option<Pushed>| {
                        pushed.map(|p| stored_files(&p.text, &parameter)).unwrap_or_default()
                    };
                    let mut keep: Vec<String> = upload.files.iter().map(|f| f.parameter.clone()).collect();
                    keep.extend(named(previous));
                    remove_files_except(&ssm, &parameter, keep, began).await.unwrap_or_else(|e| {
                        eprintln!("note: the files of earlier pushes were not removed: {e:#}");
                        Vec::new()
                    })
                }
                // Which files it named is not known: none is removed.
                Err(e) => {
                    eprintln!("note: the files of earlier pushes were not removed ({e})");
                    Vec::new()
                }
            };
            (Some(version), removed)
        };
        let files: Vec<&str> = upload.files.iter().map(|f| f.parameter.as_str()).collect();
        if args.json {
            let out = serde_json::json!({
                "stack": stack.name, "parameter": parameter, "version": version,
                "uploaded": version.is_some(), "files": files, "removed": removed, "notes": notes,
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
            for file in &files {
                println!("  with {file}");
            }
            for file in &removed {
                println!("  removed {file} (no configuration names it any more)");
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

/// How far SSM's clock may be ahead of this machine's, for the files a push leaves to
/// another push under way.
const GC_CLOCK_MARGIN_SECONDS: i64 = 5;

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

/// Writes one parameter (standard up to 4 KB, advanced beyond) and returns its version.
async fn put(ssm: &aws_sdk_ssm::Client, name: &str, value: &str, description: String) -> anyhow::Result<i64> {
    let answer = ssm
        .put_parameter()
        .name(name)
        .description(description)
        .value(value)
        .r#type(ParameterType::String)
        .overwrite(true)
        .tier(ParameterTier::IntelligentTiering)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{}", aws_sdk_ssm::error::DisplayErrorContext(&e)))
        .with_context(|| format!("cannot write {name}"))?;
    Ok(answer.version)
}

/// Deletes the files stored under `parameter` that are not in `keep`, not named by
/// the configuration stored now (another push may have replaced this one's), and not
/// written since `began` (seconds since the epoch: another push may be writing them);
/// returns them.
async fn remove_files_except(
    ssm: &aws_sdk_ssm::Client,
    parameter: &str,
    mut keep: Vec<String>,
    began: i64,
) -> anyhow::Result<Vec<String>> {
    let path = revscale_aws::runtime_config::files_path(parameter);
    match read_pushed(ssm, parameter).await {
        Ok(now) => keep.extend(now.map(|p| stored_files(&p.text, parameter)).unwrap_or_default()),
        Err(e) => anyhow::bail!("cannot read the configuration stored now: {e}"),
    }
    let mut stale = Vec::new();
    let mut next = None;
    loop {
        let page = ssm
            .get_parameters_by_path()
            .path(path.trim_end_matches('/'))
            .set_next_token(next)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", aws_sdk_ssm::error::DisplayErrorContext(&e)))?;
        stale.extend(
            page.parameters
                .unwrap_or_default()
                .into_iter()
                .filter(|p| p.last_modified_date.is_some_and(|written| written.secs() < began))
                .filter_map(|p| p.name)
                .filter(|name| name.starts_with(&path) && !keep.contains(name)),
        );
        next = page.next_token;
        if next.is_none() {
            break;
        }
    }
    for names in stale.chunks(10) {
        ssm.delete_parameters()
            .set_names(Some(names.to_vec()))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", aws_sdk_ssm::error::DisplayErrorContext(&e)))?;
    }
    Ok(stale)
}

/// What `config push` uploads: the configuration, and each file it names in a
/// parameter of its own.
#[derive(Debug)]
struct Upload {
    text: String,
    files: Vec<StoredFile>,
}

impl Upload {
    /// The files by parameter, as a function reads them.
    fn stored(&self) -> std::collections::BTreeMap<String, String> {
        self.files.iter().map(|f| (f.parameter.clone(), f.body.clone())).collect()
    }
}

/// A file a configuration names (a workload's manifests, a CloudFormation template),
/// as stored: its component and key, the name it had, its parameter and its body.
#[derive(Debug)]
struct StoredFile {
    component: String,
    key: &'static str,
    file: String,
    parameter: String,
    body: String,
}

/// The configuration in `text` as uploaded to `parameter`: each file it names replaced
/// by the parameter the file is stored in, and without whole-line comments when that
/// changes nothing (a standard parameter holds 4 KB, and the shipped file's comments
/// alone are 3 KB).
fn upload(text: &str, config: &Config, parameter: &str) -> Upload {
    let (text, files) = with_stored_files(text, config, parameter);
    let stripped: String = text
        .lines()
        .filter(|line| !line.trim_start().starts_with('#') && !line.trim().is_empty())
        .map(|line| format!("{line}\n"))
        .collect();
    let stored: std::collections::BTreeMap<String, String> =
        files.iter().map(|f| (f.parameter.clone(), f.body.clone())).collect();
    let as_read = |text: &str| {
        let pushed = revscale_aws::runtime_config::Pushed {
            text: text.to_string(),
            version: 0,
            files: stored.clone(),
        };
        pushed.config(parameter)
    };
    let text = match (as_read(&stripped), as_read(&text)) {
        (Ok(same), Ok(sent)) if same == sent => stripped,
        _ => text,
    };
    Upload { text, files }
}

/// `text` with each file it names (`template_file`, `manifests_file`) named by the
/// parameter it is stored in, and those files as the configuration read them
/// (manifests as one line of JSON per document: comments and indentation are most of a
/// YAML manifest). Unchanged when it names none.
fn with_stored_files(text: &str, config: &Config, parameter: &str) -> (String, Vec<StoredFile>) {
    let files: Vec<StoredFile> = config
        .components
        .iter()
        .filter_map(|(id, c)| {
            let mut driver = c.driver.clone();
            let named = driver.as_kind_mut().named_file()?;
            let (file, body) = (named.file.clone()?, named.body.clone()?);
            Some(StoredFile {
                component: id.to_string(),
                key: named.key,
                parameter: revscale_aws::runtime_config::file_parameter(parameter, id.as_str(), &body),
                file,
                body,
            })
        })
        .collect();
    if files.is_empty() {
        return (text.to_string(), files);
    }
    let Ok(mut tree) = serde_norway::from_str::<serde_norway::Value>(text) else {
        return (text.to_string(), Vec::new());
    };
    for file in &files {
        if let Some(driver) = tree
            .get_mut("components")
            .and_then(|c| c.get_mut(file.component.as_str()))
            .and_then(|c| c.get_mut("driver"))
            .and_then(|d| d.as_mapping_mut())
        {
            driver.insert(file.key.into(), file.parameter.clone().into());
        }
    }
    match serde_norway::to_string(&tree) {
        Ok(text) => (text, files),
        Err(_) => (text.to_string(), Vec::new()),
    }
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
    fn comments_are_left_out_of_the_upload_each_file_goes_to_its_own_parameter_and_the_configuration_stays_the_same()
     {
        let text = revscale_engine::DEFAULT_CONFIG_YAML;
        let config = Config::from_yaml(text).unwrap();
        let uploaded = upload(text, &config, "/revscale/rs/config");
        assert!(uploaded.text.len() <= 4096, "a standard parameter holds it: {} bytes", uploaded.text.len());
        assert!(!uploaded.text.contains("manifests_body") && !uploaded.text.contains("examples/"));
        let stored: Vec<(&str, &str)> =
            uploaded.files.iter().map(|f| (f.component.as_str(), f.file.as_str())).collect();
        assert_eq!(
            stored,
            [
                ("full_escrow", "examples/manifests/escrow.yaml"),
                ("tee", "examples/manifests/tee.yaml"),
                ("vault_ha", "examples/manifests/vault.yaml")
            ]
        );
        for file in &uploaded.files {
            assert!(file.parameter.starts_with(&format!("/revscale/rs/config/files/{}-", file.component)));
            assert!(
                uploaded.text.contains(&format!("manifests_file: {}", file.parameter)),
                "{}",
                file.parameter
            );
            assert!(file.body.len() <= MAX_PARAMETER_BYTES);
        }
        // What the functions read back is the file's configuration, deciding with the
        // same ids; only the files' names differ.
        let pushed = revscale_aws::runtime_config::Pushed {
            text: uploaded.text.clone(),
            version: 1,
            files: uploaded.files.iter().map(|f| (f.parameter.clone(), f.body.clone())).collect(),
        };
        let sent = pushed.config("/revscale/rs/config").unwrap();
        assert_eq!(sent.fingerprint, config.fingerprint);
        assert_eq!(sent.without_file_names(), config.clone().without_file_names());
        // Another manifest, another parameter; the others keep theirs. A comment is
        // no change.
        let changed = |from: &str, to: &str| {
            let read = |f: &str| revscale_engine::config::shipped_file(f).map(|t| t.replace(from, to));
            let changed = Config::from_yaml_reading(text, &read).unwrap();
            upload(text, &changed, "/revscale/rs/config")
                .files
                .into_iter()
                .map(|f| f.parameter)
                .collect::<Vec<_>>()
        };
        let before: Vec<_> = uploaded.files.iter().map(|f| f.parameter.clone()).collect();
        let after = changed("ui = true", "ui = false");
        assert_eq!((&before[..2], before[2] != after[2]), (&after[..2], true));
        assert_eq!(changed("# Headless", "# Headless, and"), before);
    }
}
