//! The Stripe API key, from Secrets Manager or an SSM SecureString: never from a plain
//! environment variable of the Lambda.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// A Secrets Manager secret ARN or name.
    SecretsManager(String),
    /// An SSM parameter name (SecureString, decrypted on read).
    Ssm(String),
}

/// Why the secret could not be read, split by what a retry can do: an `Unavailable`
/// read (throttled, timed out, a 5xx) may succeed in a moment, so the cold start reports
/// it as `Transient`; a `Read` one (no such secret, no permission) needs a person.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read secret {name}")]
    Read {
        name: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("secret {name} could not be read just now (throttled or unavailable)")]
    Unavailable {
        name: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("secret {0} is empty")]
    Empty(String),
}

/// Whether an SDK failure is worth retrying as is: no answer, a 5xx, or throttling.
fn is_transient<E: aws_sdk_ssm::error::ProvideErrorMetadata, R>(
    e: &aws_sdk_ssm::error::SdkError<E, R>,
    status: Option<u16>,
) -> bool {
    use aws_sdk_ssm::error::{ProvideErrorMetadata as _, SdkError};
    matches!(e, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_))
        || status.is_some_and(|s| s >= 500)
        || matches!(
            e.code(),
            Some(
                "ThrottlingException"
                    | "TooManyRequestsException"
                    | "RequestLimitExceeded"
                    | "InternalServerError"
                    | "InternalServiceError"
                    | "InternalFailure"
                    | "ServiceUnavailable"
            )
        )
}

/// Classifies an SDK failure of the read of `name`, keeping the SDK error as the source.
fn read_error<E>(
    name: &str,
    e: aws_sdk_ssm::error::SdkError<E, aws_sdk_ssm::config::http::HttpResponse>,
) -> SecretError
where
    E: aws_sdk_ssm::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let status = e.raw_response().map(|r| r.status().as_u16());
    let name = name.to_string();
    if is_transient(&e, status) {
        SecretError::Unavailable { name, source: Box::new(e) }
    } else {
        SecretError::Read { name, source: Box::new(e) }
    }
}

pub async fn read_secret(config: &aws_config::SdkConfig, secret: &SecretRef) -> Result<String, SecretError> {
    let value = match secret {
        SecretRef::SecretsManager(id) => aws_sdk_secretsmanager::Client::new(config)
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| read_error(id, e))?
            .secret_string
            .unwrap_or_default(),
        SecretRef::Ssm(name) => aws_sdk_ssm::Client::new(config)
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| read_error(name, e))?
            .parameter
            .and_then(|p| p.value)
            .unwrap_or_default(),
    };
    let trimmed = value.trim();
    if trimmed.is_empty() {
        let name = match secret {
            SecretRef::SecretsManager(n) | SecretRef::Ssm(n) => n.clone(),
        };
        return Err(SecretError::Empty(name));
    }
    Ok(trimmed.to_string())
}
