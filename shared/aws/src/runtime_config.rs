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

use aws_sdk_ssm::error::{DisplayErrorContext, ProvideErrorMetadata};
use revscale_engine::config::{Deployment, DriverSpec};
use revscale_engine::{Config, Mode};

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
        let file =
            prepare(&text, name, "REVSCALE_CONFIG", mode, deployment.as_ref(), parameter.as_deref(), base)?;
        Ok(ConfigSource { file, parameter, mode, deployment })
    }

    /// The configuration from `pushed` (the parameter's text and version), or from the
    /// file when nothing was pushed; the stack's mode and deployment applied.
    pub fn resolve(&self, pushed: Option<(&str, i64)>) -> Result<Loaded, EnvError> {
        match (pushed, &self.parameter) {
            (Some((text, version)), Some(name)) => prepare(
                text,
                format!("SSM parameter {name} (version {version})"),
                "REVSCALE_CONFIG_PARAMETER",
                self.mode,
                self.deployment.as_ref(),
                Some(name),
                None,
            ),
            _ => Ok(self.file.clone()),
        }
    }

    /// Reads the pushed parameter (if the function has one) and resolves.
    pub async fn load(&self, sdk: &aws_config::SdkConfig) -> Result<Loaded, FunctionError> {
        let Some(name) = &self.parameter else {
            return self.resolve(None).map_err(|e| FunctionError::Configuration(e.to_string()));
        };
        let answer = aws_sdk_ssm::Client::new(sdk).get_parameter().name(name).send().await;
        let loaded = match answer {
            Ok(out) => {
                let parameter = out.parameter.ok_or_else(|| {
                    FunctionError::Internal(format!("SSM answered for {name} without the parameter"))
                })?;
                let text = parameter.value.unwrap_or_default();
                self.resolve(Some((&text, parameter.version)))
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_parameter_not_found()) => {
                tracing::warn!(parameter = %name, "no configuration pushed yet: running with the file");
                self.resolve(None)
            }
            Err(e) => {
                let message =
                    format!("cannot read the configuration parameter {name}: {}", DisplayErrorContext(&e));
                return Err(match e.code() {
                    Some("AccessDeniedException") => FunctionError::Configuration(message),
                    _ => FunctionError::Transient(message),
                });
            }
        };
        let loaded = loaded.map_err(|e| FunctionError::Configuration(e.to_string()))?;
        tracing::info!(origin = %loaded.origin, mode = %loaded.config.mode, "configuration loaded");
        Ok(loaded)
    }
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
    // Where the files a configuration file names are (its directory); none for a
    // pushed configuration, which carries them.
    base: Option<std::path::PathBuf>,
) -> Result<Loaded, EnvError> {
    let invalid = |e: revscale_engine::ConfigError| EnvError::Invalid {
        name: variable,
        message: format!("{origin}: {e}"),
    };
    let read = |file: &str| match &base {
        Some(dir) => std::fs::read_to_string(dir.join(file)).map_err(|e| e.to_string()),
        // The built-in configuration's manifests are built in with it; a pushed
        // one carries its files (template_body, manifests_body).
        None => revscale_engine::config::shipped_file(file),
    };
    let mut config = Config::from_yaml_reading(text, &read).map_err(invalid)?;
    if let Some(mode) = mode {
        config.mode = mode;
    }
    if let Some(deployment) = deployment {
        config = config.for_deployment(deployment).map_err(invalid)?;
    }
    // A flag the provisioner writes must never be the configuration itself.
    if let Some(parameter) = parameter {
        let clash = config.components.iter().find(
            |(_, c)| matches!(&c.driver, DriverSpec::SsmFlag(flag) if flag.parameter_name == parameter),
        );
        if let Some((id, _)) = clash {
            return Err(EnvError::Invalid {
                name: variable,
                message: format!(
                    "{origin}: components.{id}.driver.parameter_name is the configuration parameter {parameter}"
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
        let loaded = source.resolve(Some((&pushed, 7))).unwrap();
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
        let err = source.resolve(Some(("currency: EUR\n", 2))).unwrap_err().to_string();
        assert!(err.starts_with("environment variable REVSCALE_CONFIG_PARAMETER is invalid: SSM parameter /rs/config (version 2): "), "{err}");
        let other = revscale_engine::DEFAULT_CONFIG_YAML.replace(
            "      kind: eks_cluster\n",
            "      kind: eks_cluster\n      role_arn: arn:aws:iam::111122223333:role/other\n",
        );
        let err = source.resolve(Some((&other, 3))).unwrap_err().to_string();
        assert!(err.contains("differs from the stack's EksClusterRoleArn"), "{err}");
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
