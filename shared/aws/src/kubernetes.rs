//! The Kubernetes API of an EKS cluster, for the `kubernetes_workload` driver: the few
//! calls it makes (read a workload, patch its `scale` subresource, list the
//! autoscalers of its namespace, annotate a KEDA ScaledObject), over the workspace's
//! HTTP client, authenticated as EKS authenticates IAM principals.
//!
//! Why not kube-rs: docs/dependencies.md has the measurement. The driver makes four
//! kinds of calls whose paths and JSON shapes are the API's stable `apps/v1`,
//! `autoscaling/v2` and `keda.sh/v1alpha1` ones; a client generated for every
//! resource of one Kubernetes version, with its own TLS stack configuration, costs the
//! provisioner more than these few hundred lines, as the Query client does for EC2.
//!
//! **The token** is what `aws eks get-token` prints: `k8s-aws-v1.` followed by the
//! base64url (unpadded) of an STS `GetCallerIdentity` URL presigned for 60 seconds, with
//! the header `x-k8s-aws-id: <cluster name>` signed, so that a token minted for one
//! cluster is refused by another. The API server's authenticator calls that URL and
//! maps the role it answers with to the cluster's access entries.

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use base64::Engine;
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// What every EKS token starts with.
pub const TOKEN_PREFIX: &str = "k8s-aws-v1.";
/// The signed header naming the cluster a token is for.
pub const CLUSTER_ID_HEADER: &str = "x-k8s-aws-id";
/// How long the presigned URL is valid, as `aws eks get-token` signs it (the API server
/// accepts a token for 15 minutes from its signing time, whatever this says).
pub const TOKEN_EXPIRES: Duration = Duration::from_secs(60);

/// Why a call to the Kubernetes API failed.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// The API server answered with an error (a `Status` object: its `reason` and
    /// `message`, e.g. `NotFound`, `Conflict`, `Forbidden`, `Invalid`).
    #[error("{method} {path}: HTTP {status} {reason}: {message}")]
    Api { method: &'static str, path: String, status: u16, reason: String, message: String },
    /// No answer (network, timeout, TLS) or an answer that is not the API's JSON.
    #[error("{method} {path}: {what}")]
    Transport {
        method: &'static str,
        path: String,
        what: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// No credentials, a certificate that does not parse, an endpoint that is no URL.
    #[error("{0}")]
    Setup(String),
}

impl KubeError {
    /// The HTTP status the API server answered with.
    pub fn status(&self) -> Option<u16> {
        match self {
            KubeError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Worth retrying as is: throttled (429), the server's own trouble (5xx), or no
    /// answer at all.
    pub fn is_transient(&self) -> bool {
        match self {
            KubeError::Api { status, .. } => *status == 429 || *status >= 500,
            KubeError::Transport { .. } => true,
            KubeError::Setup(_) => false,
        }
    }
}

/// Where STS answers for `region`, or the emulator's (`AWS_ENDPOINT_URL_STS`, else
/// `AWS_ENDPOINT_URL`) as the SDK clients read it.
pub fn sts_endpoint(region: &str, configured: Option<&str>) -> String {
    match configured {
        Some(url) => url.to_owned(),
        None if region.starts_with("cn-") => format!("https://sts.{region}.amazonaws.com.cn/"),
        None => format!("https://sts.{region}.amazonaws.com/"),
    }
}

/// The bearer token for `cluster`: see the module's documentation.
pub fn eks_token(
    identity: &Identity,
    region: &str,
    sts: &str,
    cluster: &str,
    now: SystemTime,
) -> Result<String, KubeError> {
    let setup = |what: String| KubeError::Setup(format!("cannot sign an EKS token for {cluster}: {what}"));
    let mut url = reqwest::Url::parse(sts).map_err(|e| setup(format!("invalid STS endpoint {sts}: {e}")))?;
    url.query_pairs_mut().append_pair("Action", "GetCallerIdentity").append_pair("Version", "2011-06-15");
    let host = match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => return Err(setup(format!("the STS endpoint {sts} names no host"))),
    };
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(TOKEN_EXPIRES);
    let params = v4::SigningParams::builder()
        .identity(identity)
        .region(region)
        .name("sts")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| setup(e.to_string()))?
        .into();
    let headers = [("host", host.as_str()), (CLUSTER_ID_HEADER, cluster)];
    let signable = SignableRequest::new("GET", url.as_str(), headers.into_iter(), SignableBody::Bytes(&[]))
        .map_err(|e| setup(e.to_string()))?;
    let (instructions, _) = sign(signable, &params).map_err(|e| setup(e.to_string()))?.into_parts();
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in instructions.params() {
            query.append_pair(name, value);
        }
    }
    Ok(format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(url.as_str())))
}

/// Mints tokens with the SDK configuration's credentials (the provisioner's role).
#[derive(Clone)]
pub struct TokenSource {
    credentials: Option<SharedCredentialsProvider>,
    region: Option<String>,
    sts: Option<String>,
}

impl TokenSource {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        TokenSource {
            credentials: sdk.credentials_provider(),
            region: sdk.region().map(|r| r.to_string()),
            sts: std::env::var("AWS_ENDPOINT_URL_STS")
                .ok()
                .filter(|url| !url.is_empty())
                .or_else(|| sdk.endpoint_url().map(str::to_owned)),
        }
    }

    /// A fresh token for `cluster` (one per client: a token is good for 15 minutes,
    /// longer than any one invocation).
    pub async fn token(&self, cluster: &str) -> Result<String, KubeError> {
        let region = self
            .region
            .as_deref()
            .ok_or_else(|| KubeError::Setup("no region is configured: cannot sign an EKS token".into()))?;
        let provider = self.credentials.as_ref().ok_or_else(|| {
            KubeError::Setup("no AWS credentials provider: cannot sign an EKS token".into())
        })?;
        let identity: Identity = provider
            .provide_credentials()
            .await
            .map_err(|e| KubeError::Setup(format!("cannot load AWS credentials: {e}")))?
            .into();
        eks_token(&identity, region, &sts_endpoint(region, self.sts.as_deref()), cluster, SystemTime::now())
    }
}

/// `REVSCALE_KUBERNETES_ENDPOINT`: the emulator tests' Kubernetes-API-shaped server,
/// which stands in for every cluster's API (moto's clusters have none). Loopback only,
/// since the EKS token goes there; plain HTTP, no certificate authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestEndpoint(String);

impl TestEndpoint {
    pub const VARIABLE: &'static str = "REVSCALE_KUBERNETES_ENDPOINT";

    pub fn parse(url: &str) -> Result<Self, String> {
        let loopback = reqwest::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(|h| matches!(h, "127.0.0.1" | "localhost" | "[::1]")))
            .unwrap_or(false);
        if loopback {
            Ok(TestEndpoint(url.to_owned()))
        } else {
            Err(format!(
                "{url} is not a loopback address: the Kubernetes endpoint override is for the emulator tests"
            ))
        }
    }

    /// The optional variable, as the functions' `Env` reads it.
    pub fn from_vars<F: Fn(&str) -> Option<String>>(
        vars: &crate::env::Vars<F>,
    ) -> Result<Option<Self>, crate::env::EnvError> {
        vars.optional(Self::VARIABLE)
            .map(|url| {
                Self::parse(&url)
                    .map_err(|message| crate::env::EnvError::Invalid { name: Self::VARIABLE, message })
            })
            .transpose()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One cluster's API: its endpoint, trusting only the cluster's own certificate
/// authority, with a bearer token.
pub struct KubeClient {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// The content types of the API's two patches the driver sends.
pub const MERGE_PATCH: &str = "application/merge-patch+json";
pub const APPLY_PATCH: &str = "application/apply-patch+yaml";

/// The field manager revscale's server-side applies name: `kubectl get -o yaml
/// --show-managed-fields` shows which fields are revscale's.
pub const FIELD_MANAGER: &str = "revscale";

impl KubeClient {
    /// `ca_pem`: the cluster's certificate authority, as `DescribeCluster` gives it
    /// (decoded from base64). `None` only for a plain-HTTP test server.
    pub fn new(endpoint: &str, ca_pem: Option<&[u8]>, token: String) -> Result<Self, KubeError> {
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .connect_timeout(Duration::from_secs(5));
        if let Some(pem) = ca_pem {
            let certificates = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                KubeError::Setup(format!("the cluster's certificate authority does not parse: {e}"))
            })?;
            if certificates.is_empty() {
                return Err(KubeError::Setup(
                    "the cluster's certificate authority holds no certificate".into(),
                ));
            }
            // The cluster's own authority only: a public CA has no say over it.
            builder = builder.tls_certs_only(certificates);
        }
        // rustls reads the certificates themselves here, not at parsing.
        let http = builder.build().map_err(|e| {
            KubeError::Setup(format!(
                "cannot build the Kubernetes API client on the cluster's certificate authority: {e}"
            ))
        })?;
        Ok(KubeClient { http, base: endpoint.trim_end_matches('/').to_owned(), token })
    }

    /// The object at `path`, or `None` when the API answers 404.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<Option<T>, KubeError> {
        match self.send("GET", path, None).await {
            Ok(found) => Ok(Some(found)),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A JSON merge patch of the object at `path`; the object as patched.
    pub async fn merge_patch<T: DeserializeOwned>(
        &self,
        path: &str,
        patch: &serde_json::Value,
    ) -> Result<T, KubeError> {
        self.send("PATCH", path, Some((MERGE_PATCH, patch))).await
    }

    /// Server-side apply of `object` at `path` as revscale's field manager, forcing
    /// conflicts (the objects are revscale's own: the API's advice for a controller);
    /// with `dry_run`, the API server checks everything (admission included) and
    /// stores nothing. The object as applied.
    pub async fn apply<T: DeserializeOwned>(
        &self,
        path: &str,
        object: &serde_json::Value,
        dry_run: bool,
    ) -> Result<T, KubeError> {
        let dry_run = if dry_run { "&dryRun=All" } else { "" };
        let path = format!("{path}?fieldManager={FIELD_MANAGER}&force=true{dry_run}");
        self.send("PATCH", &path, Some((APPLY_PATCH, object))).await
    }

    /// Deletes the object at `path` with `options` (a `DeleteOptions`: its
    /// preconditions); `false` when it was already gone.
    pub async fn delete(&self, path: &str, options: &serde_json::Value) -> Result<bool, KubeError> {
        match self.send::<serde_json::Value>("DELETE", path, Some(("application/json", options))).await {
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(404) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: &'static str,
        path: &str,
        body: Option<(&'static str, &serde_json::Value)>,
    ) -> Result<T, KubeError> {
        let url = format!("{}{path}", self.base);
        let transport = |what: String, source: Option<Box<dyn std::error::Error + Send + Sync>>| {
            KubeError::Transport { method, path: path.to_owned(), what, source }
        };
        let mut request = match (method, body) {
            ("DELETE", _) => self.http.delete(&url),
            (_, None) => self.http.get(&url),
            (_, Some(_)) => self.http.patch(&url),
        };
        if let Some((content_type, body)) = body {
            // JSON is YAML: the apply patch's content type takes it as it is.
            request = request
                .header("content-type", content_type)
                .body(serde_json::to_vec(body).map_err(|e| transport(e.to_string(), None))?);
        }
        request = request.bearer_auth(&self.token).header("accept", "application/json");
        let response =
            request.send().await.map_err(|e| transport(format!("no answer: {e}"), Some(Box::new(e))))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| transport(format!("cannot read the answer: {e}"), Some(Box::new(e))))?;
        if !(200..300).contains(&status) {
            // The API answers errors with a `Status` object; a proxy or load balancer
            // in between may not.
            let answer: StatusObject = serde_json::from_slice(&bytes).unwrap_or_default();
            let message = match answer.message {
                Some(message) => message,
                None => String::from_utf8_lossy(&bytes).chars().take(300).collect(),
            };
            return Err(KubeError::Api {
                method,
                path: path.to_owned(),
                status,
                reason: answer.reason.unwrap_or_else(|| "no reason given".into()),
                message,
            });
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| transport(format!("an answer of another shape: {e}"), Some(Box::new(e))))
    }
}

/// The API's error answer (`kind: Status`).
#[derive(Debug, Default, Deserialize)]
struct StatusObject {
    reason: Option<String>,
    message: Option<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use aws_credential_types::Credentials;

    fn identity() -> Identity {
        Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None, None, "test").into()
    }

    fn decoded(token: &str) -> reqwest::Url {
        let body = token.strip_prefix(TOKEN_PREFIX).unwrap();
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(body).unwrap();
        reqwest::Url::parse(std::str::from_utf8(&url).unwrap()).unwrap()
    }

    fn query(url: &reqwest::Url, name: &str) -> Option<String> {
        url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }

    #[test]
    fn a_token_is_a_presigned_get_caller_identity_for_the_cluster_as_aws_eks_get_token_makes_it() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000);
        let token =
            eks_token(&identity(), "eu-west-1", &sts_endpoint("eu-west-1", None), "revscale", at).unwrap();
        assert!(token.starts_with("k8s-aws-v1."), "{token}");
        assert!(!token.contains('=') && !token.contains('+') && !token.contains('/'), "base64url, unpadded");
        let url = decoded(&token);
        assert_eq!(url.host_str(), Some("sts.eu-west-1.amazonaws.com"));
        assert_eq!(query(&url, "Action").as_deref(), Some("GetCallerIdentity"));
        assert_eq!(query(&url, "Version").as_deref(), Some("2011-06-15"));
        assert_eq!(query(&url, "X-Amz-Algorithm").as_deref(), Some("AWS4-HMAC-SHA256"));
        assert_eq!(query(&url, "X-Amz-Expires").as_deref(), Some("60"));
        assert_eq!(query(&url, "X-Amz-SignedHeaders").as_deref(), Some("host;x-k8s-aws-id"));
        let credential = query(&url, "X-Amz-Credential").unwrap();
        assert!(
            credential.starts_with("AKIDEXAMPLE/") && credential.ends_with("/eu-west-1/sts/aws4_request")
        );
        assert_eq!(query(&url, "X-Amz-Signature").map(|s| s.len()), Some(64));
    }

    #[test]
    fn a_token_for_another_cluster_or_another_moment_carries_another_signature() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_780_000_000);
        let sts = sts_endpoint("eu-west-1", None);
        let signature = |cluster: &str, at: SystemTime| {
            query(
                &decoded(&eks_token(&identity(), "eu-west-1", &sts, cluster, at).unwrap()),
                "X-Amz-Signature",
            )
        };
        assert_eq!(signature("revscale", at), signature("revscale", at), "deterministic for one moment");
        assert_ne!(signature("revscale", at), signature("other", at));
        assert_ne!(signature("revscale", at), signature("revscale", at + Duration::from_secs(1)));
    }

    #[test]
    fn an_emulator_or_china_has_its_own_sts_endpoint() {
        assert_eq!(sts_endpoint("cn-north-1", None), "https://sts.cn-north-1.amazonaws.com.cn/");
        let token = eks_token(
            &identity(),
            "eu-west-1",
            &sts_endpoint("eu-west-1", Some("http://127.0.0.1:5055")),
            "revscale",
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!(decoded(&token).port(), Some(5055));
        let e = eks_token(&identity(), "eu-west-1", "not a url", "revscale", SystemTime::now()).unwrap_err();
        assert!(e.to_string().contains("invalid STS endpoint"), "{e}");
    }

    #[test]
    fn a_certificate_authority_that_does_not_parse_is_a_setup_error() {
        let e = KubeClient::new(
            "https://example.eks.amazonaws.com",
            Some(b"-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"),
            "t".into(),
        );
        let Err(KubeError::Setup(why)) = e else { panic!("not a setup error") };
        assert!(why.contains("certificate authority"), "{why}");
    }

    #[test]
    fn the_test_endpoint_may_only_be_a_loopback_address() {
        for url in ["http://127.0.0.1:5056", "http://localhost:1", "http://[::1]:80/"] {
            assert_eq!(TestEndpoint::parse(url).unwrap().as_str(), url);
        }
        for url in ["https://ABC.gr7.eu-west-1.eks.amazonaws.com", "http://10.0.0.1", "127.0.0.1:5056", ""] {
            let e = TestEndpoint::parse(url).unwrap_err();
            assert!(e.contains("not a loopback address"), "{url}: {e}");
        }
    }

    #[test]
    fn throttling_server_errors_and_no_answer_are_transient_and_refusals_are_not() {
        let api = |status| KubeError::Api {
            method: "GET",
            path: "/".into(),
            status,
            reason: String::new(),
            message: String::new(),
        };
        for status in [429, 500, 503] {
            assert!(api(status).is_transient(), "{status}");
        }
        for status in [400, 401, 403, 404, 409, 422] {
            assert!(!api(status).is_transient(), "{status}");
        }
    }
}
