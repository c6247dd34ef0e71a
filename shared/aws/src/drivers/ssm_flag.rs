//! `ssm_flag`: a parameter the application reads, `off` (COLD), `warm` or `on` (HOT).

use aws_sdk_ssm::error::ProvideErrorMetadata;
use revscale_engine::config::Component;
use revscale_engine::drivers::SsmFlag;
use revscale_engine::model::ComponentState;
use revscale_engine::ports::{Apply, DriverError, DriverStatus, Observed};

use super::{AwsKind, Clients, is_code, sdk_error};

const NOT_FOUND: &[&str] = &["ParameterNotFound"];

/// The flag value the application reads for each state.
pub fn flag_value(target: ComponentState) -> &'static str {
    match target {
        ComponentState::Hot => "on",
        ComponentState::Warm => "warm",
        _ => "off",
    }
}

async fn value(aws: &Clients, name: &str) -> Result<Option<String>, DriverError> {
    match aws.ssm.get_parameter().name(name).send().await {
        Ok(o) => Ok(o.parameter.and_then(|p| p.value)),
        Err(e) if is_code(&e, NOT_FOUND) => Ok(None),
        Err(e) => Err(sdk_error(e, &[])),
    }
}

impl AwsKind for SsmFlag {
    fn iam_actions(&self) -> &'static [&'static str] {
        &["ssm:PutParameter", "ssm:GetParameter", "ssm:AddTagsToResource"]
    }

    async fn apply(&self, aws: &Clients, request: &Apply<'_>) -> Result<(), DriverError> {
        let name = &self.parameter_name;
        let tags = aws
            .tags(request.component)
            .into_iter()
            .map(|(key, value)| aws_sdk_ssm::types::Tag::builder().key(key).value(value).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| DriverError::Rejected(format!("tag for {name}: {e}")))?;
        // The value is written by the last call: a refused call leaves the flag as it
        // was, which is what a refusal promises (its undo restores the state alone and
        // calls no driver). A first write creates the parameter with its tags;
        // PutParameter takes no tags when it overwrites, so an existing one is tagged
        // first (idempotent, so `status --orphans` finds it), then written.
        let created = aws
            .ssm
            .put_parameter()
            .name(name)
            .value(flag_value(request.target))
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .set_tags(Some(tags.clone()))
            .send()
            .await;
        match created {
            Ok(_) => return Ok(()),
            Err(e) if e.code() == Some("ParameterAlreadyExists") => {}
            Err(e) => return Err(sdk_error(e, &[])),
        }
        aws.ssm
            .add_tags_to_resource()
            .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
            .resource_id(name)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| sdk_error(e, &[]))?;
        aws.ssm
            .put_parameter()
            .name(name)
            .value(flag_value(request.target))
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .map_err(|e| sdk_error(e, &[]))?;
        Ok(())
    }

    async fn status(
        &self,
        aws: &Clients,
        _: &Component,
        target: ComponentState,
    ) -> Result<DriverStatus, DriverError> {
        Ok(match value(aws, &self.parameter_name).await?.as_deref() {
            Some(v) if v == flag_value(target) => DriverStatus::Ready,
            None if target == ComponentState::Cold => DriverStatus::Ready,
            _ => DriverStatus::InProgress,
        })
    }

    async fn observe(&self, aws: &Clients, _: &Component) -> Result<Observed, DriverError> {
        Ok(match value(aws, &self.parameter_name).await?.as_deref() {
            None => Observed::at(&[ComponentState::Cold], "no parameter"),
            Some("off") => Observed::at(&[ComponentState::Cold], "off"),
            Some("warm") => Observed::at(&[ComponentState::Warm], "warm"),
            Some("on") => Observed::at(&[ComponentState::Hot], "on"),
            Some(other) => Observed::at(&[], format!("'{other}' (neither off, warm nor on)")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ComponentState::{Cold, Hot, Warm};

    #[test]
    fn flags_read_off_warm_on() {
        assert_eq!((flag_value(Cold), flag_value(Warm), flag_value(Hot)), ("off", "warm", "on"));
    }
}
