//! AWS's Query protocol (EC2, RDS, Auto Scaling, CloudFormation): a form-encoded POST
//! of `Action`, `Version` and the action's parameters, signed with SigV4 (`aws-sigv4`,
//! with the SDK configuration's credentials, region and endpoint), answered in XML,
//! read with `roxmltree`.
//!
//! Why not the SDK's clients for these four: each SDK crate carries every operation of
//! its service (EC2 over 600, RDS over 160, CloudFormation and Auto Scaling about 90 and
//! 60), with answer types of a hundred fields each. The functions' arm64 release build
//! compiles every client they use, and the provisioner's and evaluator's zips carry
//! each client's code, for the three to five calls a driver makes (docs/performance.md
//! has the sizes). The tests still set resources up with the SDK crates. The protocol,
//! the signature and the error shape are AWS's documented ones, unchanged for a
//! decade, and moto serves them as AWS does (tests/drivers/).

use std::time::{Duration, SystemTime};

use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;

/// A Query-protocol service: its SigV4 name, the first label of its endpoint, its API
/// version, and the variable that overrides its endpoint (as the SDK clients read it).
#[derive(Debug, Clone, Copy)]
pub struct Service {
    pub signing_name: &'static str,
    pub endpoint_prefix: &'static str,
    pub version: &'static str,
    pub endpoint_variable: &'static str,
    /// A global service's one endpoint and the region it is signed for (IAM:
    /// `iam.amazonaws.com`, us-east-1); `None` for a regional service.
    pub global: Option<(&'static str, &'static str)>,
}

pub const EC2: Service = Service {
    signing_name: "ec2",
    endpoint_prefix: "ec2",
    version: "2016-11-15",
    endpoint_variable: "AWS_ENDPOINT_URL_EC2",
    global: None,
};

pub const RDS: Service = Service {
    signing_name: "rds",
    endpoint_prefix: "rds",
    version: "2014-10-31",
    endpoint_variable: "AWS_ENDPOINT_URL_RDS",
    global: None,
};

pub const AUTOSCALING: Service = Service {
    signing_name: "autoscaling",
    endpoint_prefix: "autoscaling",
    version: "2011-01-01",
    endpoint_variable: "AWS_ENDPOINT_URL_AUTO_SCALING",
    global: None,
};

pub const CLOUDFORMATION: Service = Service {
    signing_name: "cloudformation",
    endpoint_prefix: "cloudformation",
    version: "2010-05-15",
    endpoint_variable: "AWS_ENDPOINT_URL_CLOUDFORMATION",
    global: None,
};

/// IAM, for `revscale doctor` (the provisioner role's permissions, the EKS
/// service-linked role): global, signed for us-east-1 in the commercial partition.
pub const IAM: Service = Service {
    signing_name: "iam",
    endpoint_prefix: "iam",
    version: "2010-05-08",
    endpoint_variable: "AWS_ENDPOINT_URL_IAM",
    global: Some(("https://iam.amazonaws.com/", "us-east-1")),
};

/// STS, for `revscale doctor` (who the caller is).
pub const STS: Service = Service {
    signing_name: "sts",
    endpoint_prefix: "sts",
    version: "2011-06-15",
    endpoint_variable: "AWS_ENDPOINT_URL_STS",
    global: None,
};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The service answered with an error: `code` as its `<Code>` says (e.g.
    /// `InvalidInstanceID.NotFound`, `DBInstanceNotFound`, `RequestLimitExceeded`).
    #[error("{service} {action}: {code}: {message} (HTTP {status})")]
    Service { service: &'static str, action: &'static str, status: u16, code: String, message: String },
    /// No answer (network, timeout) or an answer that is not the service's XML.
    #[error("{service} {action}: {what}")]
    Transport {
        service: &'static str,
        action: &'static str,
        what: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// No credentials or region, or a request that cannot be signed.
    #[error("{service} {action}: {what}")]
    Setup { service: &'static str, action: &'static str, what: String },
}

impl QueryError {
    /// The service's error code, when it answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            QueryError::Service { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The service's error message, when it answered with one.
    pub fn message(&self) -> Option<&str> {
        match self {
            QueryError::Service { message, .. } => Some(message),
            _ => None,
        }
    }

    /// Throttling, the service's own trouble (5xx) or no answer: worth the same call
    /// again.
    pub fn is_transient(&self) -> bool {
        match self {
            QueryError::Service { status, code, .. } => {
                *status >= 500
                    || matches!(
                        code.as_str(),
                        "RequestLimitExceeded"
                            | "Throttling"
                            | "ThrottlingException"
                            | "RequestThrottled"
                            | "InternalError"
                            | "InternalFailure"
                            | "ServiceUnavailable"
                            | "Unavailable"
                            // Auto Scaling's "a pending update to the same resource":
                            // throttling in all but name, worth the same retry.
                            | "ResourceContention"
                    )
            }
            QueryError::Transport { .. } => true,
            QueryError::Setup { .. } => false,
        }
    }
}

pub struct QueryClient {
    service: Service,
    http: reqwest::Client,
    credentials: Option<SharedCredentialsProvider>,
    region: Option<String>,
    endpoint: Option<String>,
}

impl QueryClient {
    /// Credentials, region and endpoint (the service's `AWS_ENDPOINT_URL_<SERVICE>`,
    /// else `AWS_ENDPOINT_URL`: the emulators') as the SDK clients have them.
    pub fn new(sdk: &aws_config::SdkConfig, service: Service) -> Self {
        Self::sharing(sdk, service, &http_client())
    }

    /// As [`QueryClient::new`], on an HTTP client (its connection pool and its root
    /// certificates, loaded once per client at cold start) shared with other services'.
    pub fn sharing(sdk: &aws_config::SdkConfig, service: Service, http: &reqwest::Client) -> Self {
        QueryClient {
            service,
            http: http.clone(),
            credentials: sdk.credentials_provider(),
            region: sdk.region().map(|r| r.to_string()),
            endpoint: std::env::var(service.endpoint_variable)
                .ok()
                .filter(|url| !url.is_empty())
                .or_else(|| sdk.endpoint_url().map(str::to_owned)),
        }
    }

    fn url(&self, action: &'static str) -> Result<(String, &str), QueryError> {
        let region = self.region.as_deref().ok_or_else(|| QueryError::Setup {
            service: self.service.signing_name,
            action,
            what: "no region is configured".into(),
        })?;
        let prefix = self.service.endpoint_prefix;
        let url = match (&self.endpoint, self.service.global) {
            // An emulator (or a VPC endpoint) answers for the configured region.
            (Some(endpoint), _) => endpoint.clone(),
            // China's and GovCloud's partitions have global endpoints of their own.
            (None, Some(_)) if region.starts_with("cn-") => {
                return Ok((format!("https://{prefix}.cn-north-1.amazonaws.com.cn/"), "cn-north-1"));
            }
            (None, Some(_)) if region.starts_with("us-gov-") => {
                return Ok((format!("https://{prefix}.us-gov.amazonaws.com/"), "us-gov-west-1"));
            }
            (None, Some((endpoint, signed_in))) => return Ok((endpoint.to_string(), signed_in)),
            (None, _) if region.starts_with("cn-") => format!("https://{prefix}.{region}.amazonaws.com.cn/"),
            (None, _) => format!("https://{prefix}.{region}.amazonaws.com/"),
        };
        Ok((url, region))
    }

    /// One signed call of `action` with its parameters; the answer's XML on success.
    pub async fn call(
        &self,
        action: &'static str,
        params: &[(String, String)],
    ) -> Result<String, QueryError> {
        let service = self.service.signing_name;
        let setup = |what: String| QueryError::Setup { service, action, what };
        let (url, region) = self.url(action)?;
        let mut form: Vec<(&str, &str)> = vec![("Action", action), ("Version", self.service.version)];
        form.extend(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let body = serde_urlencoded::to_string(&form).map_err(|e| setup(e.to_string()))?;
        let provider =
            self.credentials.as_ref().ok_or_else(|| setup("no AWS credentials provider".into()))?;
        // Per call: the Lambda's provider reads its environment; a CLI profile's own
        // provider caches what it resolved.
        let identity: Identity = provider
            .provide_credentials()
            .await
            .map_err(|e| setup(format!("cannot load AWS credentials: {e}")))?
            .into();
        let content_type = "application/x-www-form-urlencoded; charset=utf-8";
        let parsed = reqwest::Url::parse(&url).map_err(|e| setup(format!("invalid endpoint {url}: {e}")))?;
        let host = match (parsed.host_str(), parsed.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => return Err(setup(format!("the endpoint {url} names no host"))),
        };
        let headers = [("host", host.as_str()), ("content-type", content_type)];
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name(service)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| setup(e.to_string()))?
            .into();
        let signable = SignableRequest::new(
            "POST",
            url.as_str(),
            headers.into_iter(),
            SignableBody::Bytes(body.as_bytes()),
        )
        .map_err(|e| setup(e.to_string()))?;
        let (instructions, _) = sign(signable, &params).map_err(|e| setup(e.to_string()))?.into_parts();
        let mut request = self.http.post(parsed).header("content-type", content_type);
        for (name, value) in instructions.headers() {
            request = request.header(name, value);
        }
        let transport = |what: &str, e: reqwest::Error| QueryError::Transport {
            service,
            action,
            what: format!("{what}: {e}"),
            source: Some(Box::new(e)),
        };
        let response = request.body(body).send().await.map_err(|e| transport("no answer", e))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| transport("cannot read the answer", e))?;
        if (200..300).contains(&status) {
            Ok(text)
        } else {
            Err(service_error(service, action, status, &text))
        }
    }

    /// An answer that parsed as XML but not as the action's.
    pub fn bad_answer(&self, action: &'static str, what: String) -> QueryError {
        QueryError::Transport {
            service: self.service.signing_name,
            action,
            what: format!("an answer of another shape: {what}"),
            source: None,
        }
    }
}

/// The HTTP client the Query clients use: bounded waits, so that a stalled endpoint
/// fails the step (and its retry) instead of the Lambda's whole timeout.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_default()
}

/// `name.member.1`, `name.member.2`... for a list parameter of the Query services but
/// EC2 (which numbers `name.1`: [`numbered`]).
pub fn member_list(name: &str, values: &[String]) -> Vec<(String, String)> {
    values.iter().enumerate().map(|(n, v)| (format!("{name}.member.{}", n + 1), v.clone())).collect()
}

/// The `<{Action}Result>` element of an answer (every Query service but EC2 wraps its
/// answer in one).
pub fn result<'a, 'i>(
    doc: &'a roxmltree::Document<'i>,
    action: &str,
) -> Result<roxmltree::Node<'a, 'i>, String> {
    let response = root(doc, &format!("{action}Response"))?;
    child(response, &format!("{action}Result")).ok_or_else(|| format!("no <{action}Result>"))
}

/// `name.1`, `name.2`... for a list parameter.
pub fn numbered(name: &str, values: &[String]) -> Vec<(String, String)> {
    values.iter().enumerate().map(|(n, v)| (format!("{name}.{}", n + 1), v.clone())).collect()
}

/// The error answer: EC2's `<Response><Errors><Error><Code>..` or the other Query
/// services' `<ErrorResponse><Error><Code>..`. An answer without one (a proxy's HTML
/// page) keeps its status and a bounded excerpt.
pub fn service_error(service: &'static str, action: &'static str, status: u16, body: &str) -> QueryError {
    let parsed = roxmltree::Document::parse(body).ok();
    let error = parsed.as_ref().and_then(|doc| doc.descendants().find(|n| n.has_tag_name("Error")));
    let field = |name: &str| error.and_then(|e| child_text(e, name)).map(str::to_owned);
    match field("Code") {
        Some(code) => QueryError::Service {
            service,
            action,
            status,
            code,
            message: field("Message").unwrap_or_default(),
        },
        None => {
            let excerpt: String = body.chars().take(200).collect();
            QueryError::Service {
                service,
                action,
                status,
                code: if status >= 500 { "ServiceUnavailable" } else { "UnknownError" }.into(),
                message: excerpt,
            }
        }
    }
}

/// The answer's root element, if it is `expected`.
pub fn root<'a, 'i>(
    doc: &'a roxmltree::Document<'i>,
    expected: &str,
) -> Result<roxmltree::Node<'a, 'i>, String> {
    let root = doc.root_element();
    if root.has_tag_name(expected) {
        Ok(root)
    } else {
        Err(format!("<{}> instead of <{expected}>", root.tag_name().name()))
    }
}

/// The first child element named `name` (namespaces aside).
pub fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children().find(|n| n.has_tag_name(name))
}

/// The trimmed text of the first child element named `name`: for codes, statuses and
/// identifiers.
pub fn child_text<'a>(node: roxmltree::Node<'a, '_>, name: &str) -> Option<&'a str> {
    child(node, name).and_then(|n| n.text()).map(str::trim)
}

/// The text of the first child element named `name` as it is, for values a user wrote
/// (a parameter, a tag), whose spaces and line ends are theirs: trimmed, a YAML block's
/// trailing newline would never equal the configured value.
pub fn child_value<'a>(node: roxmltree::Node<'a, '_>, name: &str) -> Option<&'a str> {
    child(node, name).map(|n| n.text().unwrap_or(""))
}

/// The `member` elements of the list `list` under `node`: `item` in EC2's answers,
/// the member's own name in the other services' (`DBInstance`, `Tag`).
pub fn members<'a, 'i>(
    node: roxmltree::Node<'a, 'i>,
    list: &str,
    member: &'static str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> + use<'a, 'i> {
    child(node, list).into_iter().flat_map(move |s| s.children().filter(move |n| n.has_tag_name(member)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec2s_error_answer_keeps_its_code_and_message_and_sorts_throttling_as_transient() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>InvalidInstanceID.NotFound</Code><Message>The instance ID 'i-1a2b3c4d' does not exist</Message></Error></Errors><RequestID>ea966190</RequestID></Response>"#;
        let e = service_error("ec2", "DescribeInstances", 400, xml);
        assert_eq!(e.code(), Some("InvalidInstanceID.NotFound"));
        assert!(e.to_string().contains("'i-1a2b3c4d' does not exist"), "{e}");
        assert!(!e.is_transient());
        let throttled = service_error(
            "ec2",
            "StartInstances",
            503,
            "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors></Response>",
        );
        assert!(throttled.is_transient());
        let proxy = service_error("ec2", "StopInstances", 502, "<html>Bad Gateway</html>");
        assert_eq!(proxy.code(), Some("ServiceUnavailable"));
        assert!(proxy.is_transient());
        assert!(!service_error("ec2", "StopInstances", 403, "denied").is_transient());
    }

    #[test]
    fn the_other_query_services_error_answer_is_read_the_same_way() {
        let xml = r#"<ErrorResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/">
  <Error><Type>Sender</Type><Code>DBInstanceNotFound</Code><Message>DBInstance orders not found.</Message></Error>
  <RequestId>5e6ab6b1</RequestId></ErrorResponse>"#;
        let e = service_error("rds", "DescribeDBInstances", 404, xml);
        assert_eq!(e.code(), Some("DBInstanceNotFound"));
        assert_eq!(
            e.to_string(),
            "rds DescribeDBInstances: DBInstanceNotFound: DBInstance orders not found. (HTTP 404)"
        );
        let throttled = service_error(
            "rds",
            "StartDBInstance",
            400,
            "<ErrorResponse><Error><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>",
        );
        assert!(throttled.is_transient());
    }

    #[test]
    fn list_parameters_are_numbered_from_one() {
        assert_eq!(
            numbered("InstanceId", &["i-1".into(), "i-2".into()]),
            [("InstanceId.1".to_owned(), "i-1".to_owned()), ("InstanceId.2".to_owned(), "i-2".to_owned())]
        );
    }
}
