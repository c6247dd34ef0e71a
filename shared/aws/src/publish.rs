//! EventBridge and SNS behind the engine's `EventBus` and `Notifier` ports.

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use revscale_engine::ports::{Alert, EventBus, Notifier, PublishError};

pub const EVENT_SOURCE: &str = "revscale";

#[derive(Clone)]
pub struct EventBridgeBus {
    client: aws_sdk_eventbridge::Client,
    bus_name: String,
}

impl EventBridgeBus {
    pub fn new(client: aws_sdk_eventbridge::Client, bus_name: impl Into<String>) -> Self {
        EventBridgeBus { client, bus_name: bus_name.into() }
    }
}

impl EventBus for EventBridgeBus {
    async fn publish(&self, detail_type: &str, detail: &serde_json::Value) -> Result<(), PublishError> {
        let entry = PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus_name)
            .source(EVENT_SOURCE)
            .detail_type(detail_type)
            .detail(detail.to_string())
            .build();
        let out = self
            .client
            .put_events()
            .entries(entry)
            .send()
            .await
            .map_err(|e| PublishError(aws_sdk_eventbridge::error::DisplayErrorContext(&e).to_string()))?;
        // PutEvents succeeds as a call even when an entry is rejected.
        if out.failed_entry_count() > 0 {
            let why = out.entries().iter().filter_map(|e| e.error_message()).collect::<Vec<_>>().join("; ");
            return Err(PublishError(format!("EventBridge rejected the event: {why}")));
        }
        Ok(())
    }
}

/// One alert, per subscription protocol (SNS `MessageStructure: json`): AWS Chatbot
/// (Amazon Q Developer in chat applications, which subscribes over HTTPS) reads its
/// custom notification format, so Slack and Teams show a title and a body; e-mail and
/// SQS subscribers get the plain text, readable as it is.
pub fn sns_message(alert: &Alert) -> String {
    let chatbot = serde_json::json!({
        "version": "1.0",
        "source": "custom",
        "content": {
            "textType": "client-markdown",
            "title": alert.subject,
            "description": alert.message,
            "keywords": ["revscale"],
        },
        "metadata": {
            "summary": alert.subject,
            "eventType": "revscale alert",
        },
    });
    // The subject travels apart (the e-mail's subject line).
    let plain = alert.message.clone();
    serde_json::json!({
        "default": chatbot.to_string(),
        "email": plain,
        "email-json": plain,
        "sqs": plain,
    })
    .to_string()
}

#[derive(Clone)]
pub struct SnsNotifier {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsNotifier {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        SnsNotifier { client, topic_arn: topic_arn.into() }
    }
}

impl Notifier for SnsNotifier {
    async fn notify(&self, alert: &Alert) -> Result<(), PublishError> {
        // SNS subjects are limited to 100 characters.
        let subject: String = alert.subject.chars().take(100).collect();
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject)
            .message_structure("json")
            .message(sns_message(alert))
            .send()
            .await
            .map_err(|e| PublishError(aws_sdk_sns::error::DisplayErrorContext(&e).to_string()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn chatbot_gets_its_custom_notification_and_email_the_plain_text() {
        let alert = Alert {
            subject: "revscale: cost at 85% of MRR".into(),
            message: "Cost EUR 425 is 85% of MRR EUR 500.\nRun `revscale status`.".into(),
        };
        let per_protocol: serde_json::Value = serde_json::from_str(&sns_message(&alert)).unwrap();
        let chatbot: serde_json::Value =
            serde_json::from_str(per_protocol["default"].as_str().unwrap()).unwrap();
        assert_eq!((chatbot["version"].as_str(), chatbot["source"].as_str()), (Some("1.0"), Some("custom")));
        assert_eq!(chatbot["content"]["title"], "revscale: cost at 85% of MRR");
        assert_eq!(chatbot["content"]["description"], alert.message);
        let email = per_protocol["email"].as_str().unwrap();
        assert_eq!(email, alert.message);
        assert!(!email.contains('{'), "no JSON in the e-mail: {email}");
        assert_eq!(per_protocol["sqs"], per_protocol["email"]);
    }
}
