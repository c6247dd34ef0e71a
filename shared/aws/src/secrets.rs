//! The Stripe API key, from Secrets Manager or an SSM SecureString: never from a plain
//! environment variable of the Lambda.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretRef {
    /// A Secrets Manager secret ARN or name.
    SecretsManager(String),
    /// An SSM parameter name (SecureString, decrypted on read).
    Ssm(String),
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read secret {name}: {message}")]
    Read { name: String, message: String },
    #[error("secret {0} is empty")]
    Empty(String),
}

pub async fn read_secret(config: &aws_config::SdkConfig, secret: &SecretRef) -> Result<String, SecretError> {
    let value = match secret {
        SecretRef::SecretsManager(id) => aws_sdk_secretsmanager::Client::new(config)
            .get_secret_value()
            .secret_id(id)
            .send()
            .await
            .map_err(|e| SecretError::Read {
                name: id.clone(),
                message: aws_sdk_secretsmanager::error::DisplayErrorContext(&e).to_string(),
            })?
            .secret_string
            .unwrap_or_default(),
        SecretRef::Ssm(name) => aws_sdk_ssm::Client::new(config)
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| SecretError::Read {
                name: name.clone(),
                message: aws_sdk_ssm::error::DisplayErrorContext(&e).to_string(),
            })?
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
