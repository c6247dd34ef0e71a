//! The thresholds configuration a function runs with, loaded once at cold start:
//!
//! 1. the text: the SSM parameter `revscale config push` writes
//!    (`REVSCALE_CONFIG_PARAMETER`), else the file `REVSCALE_CONFIG` names, else the
//!    file built into the binary. A parameter never pushed falls back to the file, so
//!    a new stack runs before its first push;
//! 2. the stack's mode (`REVSCALE_MODE`, its `Mode` parameter) replaces the file's;
//! 3. the stack's cluster, roles and flag prefix (`EKS_CLUSTER_NAME`,
//!    `EKS_CLUSTER_ROLE_ARN`, `EKS_NODE_ROLE_ARN`, `FLAG_PREFIX`) fill in what the file
//!    leaves out; a file that names others is refused.
//!
//! Anything invalid stops the cold start: the engine never runs on a configuration it
//! could not check.
//!
//! A pushed configuration names its files (a workload's manifests, a CloudFormation
//! template) by the parameters `config push` stored them in, under
//! `<parameter>/files/`, one each: a parameter holds 8 KB, and a configuration with
//! its files inline outgrew it. Each is named by its content, and push writes them
//! before the configuration that names them, so a cold start never reads one push's
//! configuration with another push's file.

use std::collections::BTreeMap;

use aws_sdk_ssm::error::{DisplayErrorContext, ProvideErrorMetadata};
use revscale_engine::config::{Deployment, DriverSpec};
use revscale_engine::{Config, Mode};
use sha2::Digest;

use crate::env::{EnvError, Vars};
use crate::lambda::FunctionError;

/// Where a function's configuration comes from, read from its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigSource {
    /// The file (`REVSCALE_CONFIG`, or the built-in one), read and checked once at
    /// cold start with the stack's mode and deployment applied: the fallback.
    file: Loaded,
    /// `REVSCALE_CONFIG_PARAMETER`.
    parameter: Option<String>,
    mode: Option<Mode>,
    deployment: Option<Deployment>,
}

/// A configuration ready to run, and where it came from (for the cold start's log).
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub config: Config,
    pub origin: String,
}

impl ConfigSource {
    pub fn from_vars<F: Fn(&str) -> Option<String>>(vars: &Vars<F>) -> Result<Self, EnvError> {
        let (text, name) = match vars.optional("REVSCALE_CONFIG") {
            Some(path) => (
                std::fs::read_to_string(&path).map_err(|e| EnvError::Invalid {
                    name: "REVSCALE_CONFIG",
                    message: format!("cannot read {path}: {e}"),
                })?,
                path,
            ),
            None => (revscale_engine::DEFAULT_CONFIG_YAML.to_string(), "the built-in configuration".into()),
        };
        let mode = match vars.optional("REVSCALE_MODE") {
            Some(m) => Some(
                m.trim().parse().map_err(|message| EnvError::Invalid { name: "REVSCALE_MODE", message })?,
            ),
            None => None,
        };
        // The stack's parameters, each from its variable (`STACK_PARAMETERS`). None set
        // at all: not a deployed stack (a local run), nothing to fill in or check.
        let deployment = Deployment::from_env(|name| (vars.0)(name).filter(|v| !v.trim().is_empty()));
        let deployment = (!deployment.0.is_empty()).then_some(deployment);
        let parameter = vars.optional("REVSCALE_CONFIG_PARAMETER");
        // Checked now: a broken fallback stops the cold start even when a pushed
        // configuration would have hidden it.
        let base = vars.optional("REVSCALE_CONFIG").map(|path| {
            std::path::Path::new(&path).parent().map(std::path::Path::to_path_buf).unwrap_or_default()
        });
        let read = |file: &str| match &base {
            Some(dir) => std::fs::read_to_string(dir.join(file)).map_err(|e| e.to_string()),
            // The built-in configuration's manifests are built in with it.
            None => revscale_engine::config::shipped_file(file),
        };
        let file =
            prepare(&text, name, "REVSCALE_CONFIG", mode, deployment.as_ref(), parameter.as_deref(), &read)?;
        Ok(ConfigSource { file, parameter, mode, deployment })
    }

    /// The configuration `pushed` to the parameter, or the file when nothing was
    /// pushed; the stack's mode and deployment applied.
    pub fn resolve(&self, pushed: Option<&Pushed>) -> Result<Loaded, EnvError> {
        match (pushed, &self.parameter) {
            (Some(pushed), Some(name)) => prepare(
                &pushed.text,
                format!("SSM parameter {name} (version {})", pushed.version),
                "REVSCALE_CONFIG_PARAMETER",
                self.mode,
                self.deployment.as_ref(),
                Some(name),
                &pushed.reader(name),
            ),
            _ => Ok(self.file.clone()),
        }
    }

    /// Reads the pushed parameter (if the function has one) with its files, and
    /// resolves.
    pub async fn load(&self, sdk: &aws_config::SdkConfig) -> Result<Loaded, FunctionError> {
        let Some(name) = &self.parameter else {
            return self.resolve(None).map_err(|e| FunctionError::Configuration(e.to_string()));
        };
        let pushed = read_pushed(&aws_sdk_ssm::Client::new(sdk), name).await.map_err(|e| match e {
            PushedError::Denied { .. } => FunctionError::Configuration(e.to_string()),
            PushedError::Unavailable { .. } => FunctionError::Transient(e.to_string()),
        })?;
        if pushed.is_none() {
            tracing::warn!(parameter = %name, "no configuration pushed yet: running with the file");
        }
        let loaded =
            self.resolve(pushed.as_ref()).map_err(|e| FunctionError::Configuration(e.to_string()))?;
        tracing::info!(origin = %loaded.origin, mode = %loaded.config.mode, "configuration loaded");
        Ok(loaded)
    }
}

/// A configuration `revscale config push` stored: the parameter's text and version, and
/// the files it names, each read from its own parameter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pushed {
    pub text: String,
    pub version: i64,
    /// By parameter name.
    pub files: BTreeMap<String, String>,
}

impl Pushed {
    /// How the files `text` names are read: from `files` under the parameter's path,
    /// else the shipped manifests built in (as [`Config::from_yaml`] reads them).
    pub fn reader<'a>(&'a self, parameter: &str) -> impl Fn(&str) -> Result<String, String> + 'a {
        let path = files_path(parameter);
        move |file: &str| match self.files.get(file) {
            Some(body) => Ok(body.clone()),
            None if file.starts_with(&path) => {
                Err("the parameter is not there: a configuration's files are stored \
                 with it; push it again with `revscale config push`"
                    .to_string())
            }
            None => revscale_engine::config::shipped_file(file),
        }
    }

    /// The configuration as pushed, before the stack's mode and deployment are applied
    /// (what the CLI shows and checks).
    pub fn config(&self, parameter: &str) -> Result<Config, revscale_engine::ConfigError> {
        Config::from_yaml_reading(&self.text, &self.reader(parameter))
    }
}

/// Where `config push` stores the files a configuration names: one parameter each,
/// under the configuration parameter's own name.
pub fn files_path(parameter: &str) -> String {
    format!("{parameter}/files/")
}

/// The parameter a component's file is stored in, named by the file's content: a push
/// that changes a file stores it under a new name, so the configuration it replaces
/// still finds its own until the push after.
pub fn file_parameter(parameter: &str, component: &str, body: &str) -> String {
    let digest = sha2::Sha256::digest(body.as_bytes());
    let short: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("{}{component}-{short}", files_path(parameter))
}

/// The files `text` names that are stored under `parameter`'s path: what must be read
/// before it can be parsed. Nothing when the text does not parse (parsing it says why).
pub fn stored_files(text: &str, parameter: &str) -> Vec<String> {
    let path = files_path(parameter);
    let named = std::cell::RefCell::new(Vec::new());
    // Every file is asked for before any is used, so one pass with a reader that
    // records and refuses finds them all.
    let _ = Config::from_yaml_reading(text, &|file: &str| {
        named.borrow_mut().push(file.to_string());
        Err(String::new())
    });
    named.into_inner().into_iter().filter(|f| f.starts_with(&path)).collect()
}

/// Why the pushed configuration could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PushedError {
    /// Not allowed (a policy to fix, not a moment to wait for).
    #[error("cannot read the configuration parameter {name}: {message}")]
    Denied { name: String, message: String },
    #[error("cannot read the configuration parameter {name}: {message}")]
    Unavailable { name: String, message: String },
}

/// The configuration pushed to `parameter` and the files it names, or `None` when
/// nothing was ever pushed. A file it names that is not there is left out: parsing
/// says which.
pub async fn read_pushed(ssm: &aws_sdk_ssm::Client, parameter: &str) -> Result<Option<Pushed>, PushedError> {
    let failed = |name: &str, e: &dyn ProvideErrorMetadata, message: String| match e.code() {
        Some("AccessDeniedException") => PushedError::Denied { name: name.to_string(), message },
        _ => PushedError::Unavailable { name: name.to_string(), message },
    };
    let answer = match ssm.get_parameter().name(parameter).send().await {
        Ok(out) => out,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_parameter_not_found()) => return Ok(None),
        Err(e) => {
            let message = DisplayErrorContext(&e).to_string();
            return Err(failed(parameter, &e, message));
        }
    };
    let stored = answer.parameter.ok_or_else(|| PushedError::Unavailable {
        name: parameter.to_string(),
        message: "SSM answered without the parameter".into(),
    })?;
    let text = stored.value.unwrap_or_default();
    let mut files = BTreeMap::new();
    // GetParameters takes ten names a call.
    for names in stored_files(&text, parameter).chunks(10) {
        let out = ssm.get_parameters().set_names(Some(names.to_vec())).send().await.map_err(|e| {
            let message = format!("its files {names:?}: {}", DisplayErrorContext(&e));
            failed(parameter, &e, message)
        })?;
        for file in out.parameters.unwrap_or_default() {
            if let (Some(name), Some(value)) = (file.name, file.value) {
                files.insert(name, value);
            }
        }
    }
    Ok(Some(Pushed { text, version: stored.version, files }))
}

/// Parses `text`, applies the stack's mode and deployment, and checks that no flag is
/// the configuration parameter itself; problems name `variable` and `origin`.
fn prepare(
    text: &str,
    origin: String,
    variable: &'static str,
    mode: Option<Mode>,
    deployment: Option<&Deployment>,
    parameter: Option<&str>,
    // How the files it names are read: beside a configuration file, from their
    // parameters for a pushed one, built in for the built-in one.
    read: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Loaded, EnvError> {
    let invalid = |e: revscale_engine::ConfigError| EnvError::Invalid {
        name: variable,
        message: format!("{origin}: {e}"),
    };
    let mut config = Config::from_yaml_reading(text, read).map_err(invalid)?;
    if let Some(mode) = mode {
        config.mode = mode;
    }
    if let Some(deployment) = deployment {
        config = config.for_deployment(deployment).map_err(invalid)?;
    }
    // A flag the provisioner writes must never be the configuration itself, nor a file
    // it names.
    if let Some(parameter) = parameter {
        let files = files_path(parameter);
        let clash = config.components.iter().find(|(_, c)| {
            matches!(&c.driver, DriverSpec::SsmFlag(flag)
                if flag.parameter_name == parameter || flag.parameter_name.starts_with(&files))
        });
        if let Some((id, _)) = clash {
            return Err(EnvError::Invalid {
                name: variable,
                message: format!(
                    "{origin}: components.{id}.driver.parameter_name is the configuration parameter {parameter} or one of its files"
                ),
            });
        }
    }
    Ok(Loaded { config, origin })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::env::from_pairs;

    const DEPLOYED: [(&str, &str); 4] = [
        ("EKS_CLUSTER_NAME", "prod"),
        ("EKS_CLUSTER_ROLE_ARN", "arn:aws:iam::111122223333:role/cluster"),
        ("EKS_NODE_ROLE_ARN", "arn:aws:iam::111122223333:role/node"),
        ("FLAG_PREFIX", "/revscale/flags"),
    ];

    #[test]
    fn the_built_in_file_runs_unless_a_file_is_named_and_the_stack_mode_wins() {
        let source = ConfigSource::from_vars(&from_pairs(&[("REVSCALE_MODE", "shadow")])).unwrap();
        let loaded = source.resolve(None).unwrap();
        assert_eq!(
            (loaded.config.mode, loaded.origin.as_str()),
            (Mode::Shadow, "the built-in configuration")
        );
        let auto = ConfigSource::from_vars(&from_pairs(&[])).unwrap().resolve(None).unwrap();
        assert_eq!(auto.config.mode, Mode::Auto);
        let err = ConfigSource::from_vars(&from_pairs(&[("REVSCALE_MODE", "yolo")])).unwrap_err().to_string();
        assert!(
            err.starts_with("environment variable REVSCALE_MODE is invalid: unknown mode 'yolo'"),
            "{err}"
        );
        let err = ConfigSource::from_vars(&from_pairs(&[("REVSCALE_CONFIG", "/no/such.yaml")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot read /no/such.yaml"), "{err}");
    }

    #[test]
    fn a_pushed_configuration_replaces_the_file_and_gets_the_stacks_cluster_and_mode() {
        let mut vars = DEPLOYED.to_vec();
        vars.extend([("REVSCALE_CONFIG_PARAMETER", "/rs/config"), ("REVSCALE_MODE", "approval")]);
        let source = ConfigSource::from_vars(&from_pairs(&vars)).unwrap();
        let pushed = revscale_engine::DEFAULT_CONFIG_YAML.replace("max_burn: 800", "max_burn: 900");
        let loaded = source.resolve(Some(&Pushed { text: pushed, version: 7, ..Pushed::default() })).unwrap();
        assert_eq!(loaded.origin, "SSM parameter /rs/config (version 7)");
        assert_eq!(loaded.config.levels[1].max_burn.minor, 90_000);
        assert_eq!(loaded.config.mode, Mode::Approval);
        let workers = &loaded.config.components[&revscale_engine::ComponentId::new("k8s_workers")].driver;
        assert!(
            matches!(workers, revscale_engine::config::DriverSpec::EksNodegroup(n) if n.cluster_name == "prod")
        );
    }

    #[test]
    fn a_pushed_configuration_that_is_invalid_or_names_another_cluster_stops_the_cold_start() {
        let mut vars = DEPLOYED.to_vec();
        vars.push(("REVSCALE_CONFIG_PARAMETER", "/rs/config"));
        let source = ConfigSource::from_vars(&from_pairs(&vars)).unwrap();
        let pushed = |text: &str, version| Pushed { text: text.into(), version, ..Pushed::default() };
        let err = source.resolve(Some(&pushed("currency: EUR\n", 2))).unwrap_err().to_string();
        assert!(err.starts_with("environment variable REVSCALE_CONFIG_PARAMETER is invalid: SSM parameter /rs/config (version 2): "), "{err}");
        let other = revscale_engine::DEFAULT_CONFIG_YAML.replace(
            "      kind: eks_cluster\n",
            "      kind: eks_cluster\n      role_arn: arn:aws:iam::111122223333:role/other\n",
        );
        let err = source.resolve(Some(&pushed(&other, 3))).unwrap_err().to_string();
        assert!(err.contains("differs from the stack's EksClusterRoleArn"), "{err}");
    }

    #[test]
    fn a_pushed_configuration_reads_its_manifests_from_their_own_parameters_and_names_one_missing() {
        let mut vars = DEPLOYED.to_vec();
        vars.push(("REVSCALE_CONFIG_PARAMETER", "/rs/config"));
        let source = ConfigSource::from_vars(&from_pairs(&vars)).unwrap();
        let vault = revscale_engine::config::shipped_file("manifests/vault.yaml").unwrap();
        let stored = file_parameter("/rs/config", "vault_ha", &vault);
        assert!(
            stored.starts_with("/rs/config/files/vault_ha-")
                && stored.len() == "/rs/config/files/vault_ha-".len() + 16
        );
        let text = revscale_engine::DEFAULT_CONFIG_YAML
            .replace("manifests_file: examples/manifests/vault.yaml", &format!("manifests_file: {stored}"));
        assert_eq!(stored_files(&text, "/rs/config"), vec![stored.clone()], "the other two are built in");
        let with = Pushed { text: text.clone(), version: 4, files: [(stored.clone(), vault)].into() };
        let loaded = source.resolve(Some(&with)).unwrap();
        assert_eq!(
            loaded.config.without_file_names(),
            source.resolve(None).unwrap().config.without_file_names(),
            "the same manifests, from their parameter"
        );
        let without = Pushed { text, version: 5, files: BTreeMap::new() };
        let err = source.resolve(Some(&without)).unwrap_err().to_string();
        assert!(err.contains(&format!("components.vault_ha.driver.manifests_file: cannot read '{stored}': the parameter is not there")), "{err}");
        assert!(err.contains("push it again"), "{err}");
        // A file's parameter is named by its content: another body, another name.
        assert_ne!(file_parameter("/rs/config", "vault_ha", "kind: ConfigMap"), stored);
    }

    #[test]
    fn a_flag_that_would_overwrite_a_file_of_the_pushed_configuration_is_refused() {
        let vars = [("REVSCALE_CONFIG_PARAMETER", "/rs/config")];
        let source = ConfigSource::from_vars(&from_pairs(&vars)).unwrap();
        let text = revscale_engine::DEFAULT_CONFIG_YAML
            .replace("/revscale/flags/hume_ai", "/rs/config/files/hume_ai");
        let err =
            source.resolve(Some(&Pushed { text, version: 1, ..Pushed::default() })).unwrap_err().to_string();
        assert!(err.contains("components.hume_ai.driver.parameter_name is the configuration parameter /rs/config or one of its files"), "{err}");
    }

    #[test]
    fn a_flag_that_would_overwrite_the_configuration_parameter_is_refused() {
        let vars = [("REVSCALE_CONFIG_PARAMETER", "/revscale/flags/hume_ai")];
        let err = ConfigSource::from_vars(&from_pairs(&vars)).unwrap_err().to_string();
        assert!(
            err.contains("components.hume_ai.driver.parameter_name is the configuration parameter"),
            "{err}"
        );
    }

    #[test]
    fn a_stack_parameter_a_component_needs_but_the_environment_lacks_stops_the_cold_start_naming_the_field() {
        let err = ConfigSource::from_vars(&from_pairs(&DEPLOYED[..2])).unwrap_err().to_string();
        assert!(err.contains("components.k8s_workers.driver.node_role_arn"), "{err}");
        assert!(err.contains("the stack sets no EksNodeRoleArn"), "{err}");
    }
}
