//! Which deployment a command talks to, and as whom: `--profile`, `--region`,
//! `--stack` and `--api-url`, resolved the way the AWS CLI resolves them, so that an
//! operator signed in with IAM Identity Center (SSO), a `credential_process` or an
//! assumed-role profile needs nothing revscale-specific.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use aws_config::{BehaviorVersion, Region, SdkConfig};

/// Where the stack is and who signs. Every operator command takes these.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct Target {
    /// AWS profile to sign with, from ~/.aws/config: IAM Identity Center (SSO),
    /// credential_process, assumed role or keys [default: AWS_PROFILE, then `default`].
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    /// AWS region of the stack [default: AWS_REGION, then the profile's region]. An
    /// execute-api URL names its own region, and its requests are signed for that one.
    #[arg(long, global = true, value_name = "REGION")]
    pub region: Option<String>,
    /// Name of the deployed revscale stack: the API URL and the configuration
    /// parameter are read from its outputs (needs cloudformation:DescribeStacks)
    /// [env: REVSCALE_STACK].
    #[arg(long, global = true, value_name = "NAME")]
    pub stack: Option<String>,
    /// The API's base URL, instead of --stack (the stack's ApiUrl output)
    /// [env: REVSCALE_API_URL].
    #[arg(long, global = true, value_name = "URL")]
    pub api_url: Option<String>,
}

/// Where a value came from: said when it is missing or wrong.
const NO_TARGET: &str = "no stack: pass --stack NAME (or --api-url URL), or set REVSCALE_STACK";

impl Target {
    /// The SDK configuration for the chosen profile and region; nothing is fetched yet.
    pub async fn sdk(&self) -> SdkConfig {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(profile) = &self.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = &self.region {
            loader = loader.region(Region::new(region.clone()));
        }
        loader.load().await
    }

    /// The stack to read outputs from: `--stack`, else `REVSCALE_STACK` unless an API
    /// URL was given on the command line.
    pub fn stack_name(&self) -> Option<String> {
        self.stack.clone().or_else(|| (self.api_url.is_none()).then(|| env_var("REVSCALE_STACK")).flatten())
    }

    /// The API's base URL: `--api-url`, else the stack's `ApiUrl` output, else
    /// `REVSCALE_API_URL`. Flags beat the environment, so `--stack other` works in a
    /// shell that exported the URL of another stack.
    pub async fn api_url(&self, sdk: &SdkConfig) -> anyhow::Result<String> {
        if let Some(url) = &self.api_url {
            return Ok(url.clone());
        }
        if let Some(stack) = self.stack_name() {
            return output(&stack_outputs(sdk, &stack).await?, &stack, "ApiUrl");
        }
        env_var("REVSCALE_API_URL").context(NO_TARGET)
    }

    /// The stack's outputs and parameters, for commands that need more than the URL.
    pub async fn stack(&self, sdk: &SdkConfig) -> anyhow::Result<Stack> {
        let name = self.stack_name().context("no stack: pass --stack NAME or set REVSCALE_STACK")?;
        let described = describe(sdk, &name).await?;
        Ok(Stack { name, outputs: described.0, parameters: described.1 })
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A deployed stack, as CloudFormation describes it.
#[derive(Debug, Clone)]
pub struct Stack {
    pub name: String,
    pub outputs: BTreeMap<String, String>,
    pub parameters: BTreeMap<String, String>,
}

impl Stack {
    pub fn output(&self, key: &str) -> anyhow::Result<String> {
        output(&self.outputs, &self.name, key)
    }

    pub fn parameter(&self, key: &str) -> anyhow::Result<String> {
        self.parameters.get(key).cloned().with_context(|| {
            format!("stack {} has no parameter {key}: is it a revscale stack of this version?", self.name)
        })
    }
}

fn output(outputs: &BTreeMap<String, String>, stack: &str, key: &str) -> anyhow::Result<String> {
    outputs.get(key).cloned().with_context(|| {
        format!("stack {stack} has no output {key}: is it a revscale stack of this version?")
    })
}

async fn stack_outputs(sdk: &SdkConfig, stack: &str) -> anyhow::Result<BTreeMap<String, String>> {
    Ok(describe(sdk, stack).await?.0)
}

async fn describe(
    sdk: &SdkConfig,
    stack: &str,
) -> anyhow::Result<(BTreeMap<String, String>, BTreeMap<String, String>)> {
    let region = sdk.region().map_or_else(|| "no region".to_string(), ToString::to_string);
    let answer = aws_sdk_cloudformation::Client::new(sdk)
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .map_err(|e| {
            // The code and message when the service gave them: the debug dump of the
            // raw answer helps no operator.
            use aws_sdk_cloudformation::error::ProvideErrorMetadata;
            match (e.code(), e.message()) {
                (Some(code), Some(message)) => anyhow::anyhow!("{code}: {message}"),
                _ => anyhow::anyhow!("{}", aws_sdk_cloudformation::error::DisplayErrorContext(&e)),
            }
        })
        .with_context(|| format!("cannot describe stack {stack} ({region})"))?;
    let Some(found) = answer.stacks().first() else { bail!("stack {stack} does not exist ({region})") };
    let outputs = found
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_string(), o.output_value()?.to_string())))
        .collect();
    let parameters = found
        .parameters()
        .iter()
        .filter_map(|p| Some((p.parameter_key()?.to_string(), p.parameter_value()?.to_string())))
        .collect();
    Ok((outputs, parameters))
}

/// The region a request to `url` is signed for: the one an execute-api host names
/// (`abc.execute-api.eu-west-1.amazonaws.com`), which is the only one API Gateway
/// accepts, else the profile's or `--region`.
pub fn signing_region(url: &str, configured: Option<&Region>) -> anyhow::Result<String> {
    region_from_url(url).or_else(|| configured.map(ToString::to_string)).context(
        "no AWS region: pass --region, set AWS_REGION or give the profile a region \
         (an execute-api URL names its own)",
    )
}

/// `https://abc.execute-api.eu-west-1.amazonaws.com/...` -> `eu-west-1`; `None` for any
/// other host (a custom domain, a local server).
pub fn region_from_url(url: &str) -> Option<String> {
    let host = reqwest::Url::parse(url).ok()?.host_str()?.to_string();
    let mut parts = host.split('.');
    parts.next()?;
    (parts.next()? == "execute-api").then(|| parts.next().map(String::from)).flatten()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_execute_api_url_names_the_signing_region_whatever_the_profile_says() {
        let profile = Region::new("us-east-1");
        let url = "https://abc123.execute-api.eu-west-1.amazonaws.com/";
        assert_eq!(signing_region(url, Some(&profile)).unwrap(), "eu-west-1");
        assert_eq!(signing_region("https://ops.example.com", Some(&profile)).unwrap(), "us-east-1");
        assert_eq!(region_from_url("http://127.0.0.1:9000"), None);
        assert_eq!(
            region_from_url("https://abc.execute-api.ap-southeast-2.amazonaws.com.cn/x").as_deref(),
            Some("ap-southeast-2")
        );
    }

    #[test]
    fn without_any_region_the_error_says_how_to_give_one() {
        let err = signing_region("https://ops.example.com", None).unwrap_err().to_string();
        assert!(err.contains("--region"), "{err}");
    }

    #[test]
    fn a_missing_output_names_the_stack_and_the_key() {
        let stack = Stack { name: "rs".into(), outputs: BTreeMap::new(), parameters: BTreeMap::new() };
        let err = stack.output("ApiUrl").unwrap_err().to_string();
        assert_eq!(err, "stack rs has no output ApiUrl: is it a revscale stack of this version?");
    }
}
