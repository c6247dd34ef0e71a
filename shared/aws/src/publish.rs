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

/// The longest subject SNS accepts: its Publish API wants subjects "less than 100
/// characters long".
const SNS_SUBJECT_MAX_CHARS: usize = 99;

/// What a subject we cannot send becomes (SNS rejects an empty one).
const FALLBACK_SUBJECT: &str = "revscale alert";

/// The alert's subject as SNS accepts it: printable ASCII only (the e-mail subject line;
/// SNS rejects line breaks and control characters, and older SNS documentation and the
/// e-mail protocol want ASCII), starting with a visible character, under 100
/// characters. A Publish that SNS refuses would lose the whole alert, so the subject is
/// made to fit rather than rejected: line breaks and other whitespace become one space,
/// any other character outside printable ASCII becomes `?` (the message keeps the full
/// text), and a subject that is too long ends in `...` to show it was cut.
pub fn sns_subject(subject: &str) -> String {
    let mut cleaned = String::with_capacity(subject.len());
    for c in subject.chars() {
        let c = match c {
            ' '..='~' => c,
            c if c.is_whitespace() || c.is_control() => ' ',
            _ => '?',
        };
        // Runs of spaces (a line break between two words, say) are one space.
        if c == ' ' && (cleaned.is_empty() || cleaned.ends_with(' ')) {
            continue;
        }
        cleaned.push(c);
    }
    let cleaned = cleaned.trim_end();
    if cleaned.is_empty() {
        return FALLBACK_SUBJECT.to_string();
    }
    // Printable ASCII: one byte per character, so byte lengths are character counts.
    if cleaned.len() <= SNS_SUBJECT_MAX_CHARS {
        return cleaned.to_string();
    }
    let cut = cleaned[..SNS_SUBJECT_MAX_CHARS - 3].trim_end();
    format!("{cut}...")
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
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(sns_subject(&alert.subject))
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

    fn is_acceptable_sns_subject(subject: &str) -> bool {
        (1..=99).contains(&subject.chars().count())
            && subject.chars().all(|c| (' '..='~').contains(&c))
            && !subject.starts_with(' ')
    }

    #[test]
    fn a_subject_of_99_characters_is_sent_as_it_is() {
        let subject = "a".repeat(99);
        assert_eq!(sns_subject(&subject), subject);
    }

    #[test]
    fn a_subject_of_100_characters_is_cut_to_99_ending_in_an_ellipsis() {
        let subject = sns_subject(&"b".repeat(100));
        assert_eq!(subject.chars().count(), 99);
        assert_eq!(subject, format!("{}...", "b".repeat(96)));
        assert!(is_acceptable_sns_subject(&subject), "{subject}");
    }

    #[test]
    fn a_subject_of_101_characters_is_cut_to_99() {
        let subject = sns_subject(&"c".repeat(101));
        assert_eq!(subject.chars().count(), 99);
        assert!(subject.ends_with("..."), "{subject}");
    }

    #[test]
    fn a_cut_subject_does_not_end_in_a_space_before_the_ellipsis() {
        let words = format!("{} {}", "d".repeat(95), "e".repeat(10));
        assert_eq!(sns_subject(&words), format!("{}...", "d".repeat(95)));
    }

    #[test]
    fn multibyte_text_becomes_ascii_and_fits_in_99_characters() {
        // 99 characters but 198 bytes: within the limit in characters, not in ASCII.
        let subject = sns_subject(&"é".repeat(99));
        assert_eq!(subject, "?".repeat(99));
        let long = sns_subject(&format!("revscale: coût {}", "€".repeat(120)));
        assert!(long.starts_with("revscale: co?t ???"), "{long}");
        assert_eq!(long.chars().count(), 99);
        assert!(is_acceptable_sns_subject(&long), "{long}");
    }

    #[test]
    fn line_breaks_and_control_characters_become_single_spaces() {
        assert_eq!(sns_subject("cost\r\n  is\thigh\u{7}!"), "cost is high !");
    }

    #[test]
    fn a_subject_starting_with_whitespace_starts_with_its_first_visible_character() {
        assert_eq!(sns_subject("\n \t revscale: level L1 -> L2 "), "revscale: level L1 -> L2");
    }

    #[test]
    fn a_subject_with_nothing_printable_becomes_the_fallback() {
        assert_eq!(sns_subject(""), "revscale alert");
        assert_eq!(sns_subject(" \n\t "), "revscale alert");
    }

    #[test]
    fn the_evaluators_subjects_are_sent_unchanged() {
        for subject in
            ["revscale WARNING: cost is 85% of MRR", "revscale: level L1 -> L2 waits for your approval"]
        {
            assert_eq!(sns_subject(subject), subject);
        }
    }
}
