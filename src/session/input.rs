//! Checks on what a customer types: lengths of every string it supplies, texts that only
//! look blank, and bidirectional-override characters in names. Plain functions of the
//! text and the `[flood]` limits; must not touch the hub or Redis.

use serde_json::{Map, Value};

use crate::{
    config::{FloodSettings, SurveyKind},
    error::{Error, Result},
    hub::Hub,
};

/// Characters that show nothing: zero-width spaces and joiners, the word joiner, the
/// byte-order mark.
fn invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}')
}

/// Bidirectional embedding, override and isolate controls: in a name they would reverse
/// the text shown next to it.
pub fn bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Whether a text shows nothing readable: only whitespace, control characters (NUL
/// included), zero-width characters and bidi controls.
pub fn blank_looking(text: &str) -> bool {
    text.chars()
        .all(|c| c.is_whitespace() || c.is_control() || invisible(c) || bidi_control(c))
}

fn over(text: &str, max_chars: usize) -> bool {
    // Bytes bound chars from above: most texts are decided without counting.
    text.len() > max_chars && text.chars().count() > max_chars
}

/// A display name as shown to agents: bidi and control characters stripped, trimmed;
/// `None` when nothing readable is left. Longer than `max_chars`: `too_large`.
pub fn name(name: Option<String>, max_chars: usize) -> Result<Option<String>> {
    let Some(name) = name else { return Ok(None) };
    if over(&name, max_chars) {
        return Err(Error::TooLarge(format!(
            "name is over {max_chars} characters"
        )));
    }
    let cleaned: String = name
        .chars()
        .filter(|&c| !bidi_control(c) && !c.is_control())
        .collect();
    let cleaned = cleaned.trim();
    Ok((!blank_looking(cleaned)).then(|| cleaned.to_string()))
}

/// An email as given by a customer: bidi, control and zero-width characters stripped,
/// trimmed, at most `max_chars`; `None` when blank. Whether it looks like an address is
/// the caller's business (the offline form requires one; `hello` only shows it).
pub fn email(email: Option<String>, max_chars: usize) -> Result<Option<String>> {
    let Some(email) = email else { return Ok(None) };
    if over(&email, max_chars) {
        return Err(Error::TooLarge(format!(
            "email is over {max_chars} characters"
        )));
    }
    let cleaned: String = email
        .chars()
        .filter(|&c| !c.is_control() && !bidi_control(c) && !invisible(c))
        .collect();
    let cleaned = cleaned.trim();
    Ok((!cleaned.is_empty()).then(|| cleaned.to_string()))
}

/// An identifier the customer chooses (identity `user_id`, `client_msg_id`): not blank,
/// at most `max_chars`, no control characters.
pub fn identifier(what: &str, value: &str, max_chars: usize) -> Result<()> {
    if over(value, max_chars) {
        return Err(Error::TooLarge(format!(
            "{what} is over {max_chars} characters"
        )));
    }
    if blank_looking(value) || value.chars().any(|c| c.is_control() || bidi_control(c)) {
        return Err(Error::bad_request(format!(
            "{what} must be printable and not blank"
        )));
    }
    Ok(())
}

/// `start.metadata`: at most `max_metadata_entries` entries, keys and values (as JSON)
/// within their lengths.
pub fn metadata(metadata: &Map<String, Value>, limits: &FloodSettings) -> Result<()> {
    if metadata.len() > limits.max_metadata_entries {
        return Err(Error::TooLarge(format!(
            "metadata has over {} entries",
            limits.max_metadata_entries
        )));
    }
    for (key, value) in metadata {
        if over(key, limits.max_metadata_key_chars) {
            return Err(Error::TooLarge(format!(
                "a metadata key is over {} characters",
                limits.max_metadata_key_chars
            )));
        }
        let value_chars = match value {
            Value::String(text) => text.chars().count(),
            other => other.to_string().chars().count(),
        };
        if value_chars > limits.max_metadata_value_chars {
            return Err(Error::TooLarge(format!(
                "metadata value {key:?} is over {} characters",
                limits.max_metadata_value_chars
            )));
        }
    }
    Ok(())
}

/// A rating comment: at most `max_chars`; a blank-looking one is dropped.
pub fn comment(comment: Option<String>, max_chars: usize) -> Result<Option<String>> {
    let Some(comment) = comment else {
        return Ok(None);
    };
    if over(&comment, max_chars) {
        return Err(Error::TooLarge(format!(
            "comment is over {max_chars} characters"
        )));
    }
    Ok((!blank_looking(&comment)).then_some(comment))
}

/// The tags a customer's `close` may set: only those in the allow list.
pub fn customer_tags(tags: Vec<String>, allowed: &[String]) -> Vec<String> {
    let mut kept: Vec<String> = tags.into_iter().filter(|t| allowed.contains(t)).collect();
    kept.dedup();
    kept
}

/// The survey to announce for a topic: only a non-default one (NPS).
pub(super) fn nps_survey(hub: &Hub, topic: &str) -> Option<SurveyKind> {
    hub.config
        .topic(topic)
        .map(|t| t.survey)
        .filter(|kind| *kind == SurveyKind::Nps)
}

/// A score on the conversation's topic's scale: CSAT 1–5, NPS 0–10. The topic is
/// read only when some topic uses NPS and the score is outside 1–5.
pub(super) async fn check_score(hub: &Hub, conversation_id: &str, score: u8) -> Result<()> {
    if SurveyKind::Csat.accepts(score) {
        return Ok(());
    }
    let any_nps = hub
        .config
        .topics
        .iter()
        .any(|t| t.survey == SurveyKind::Nps);
    if any_nps && SurveyKind::Nps.accepts(score) {
        let topic = hub
            .store
            .conversation(conversation_id)
            .await?
            .map(|record| record.topic);
        if topic.is_some_and(|t| nps_survey(hub, &t).is_some()) {
            return Ok(());
        }
    }
    Err(Error::bad_request(if any_nps {
        "score must be 1 to 5 (0 to 10 where the topic's survey is NPS)"
    } else {
        "score must be 1 to 5"
    }))
}

/// How long a transcript link works.
const TRANSCRIPT_LINK_MS: u64 = 60_000;

/// A short-lived signed link to the transcript of the visitor's own closed chat.
pub(super) async fn transcript_link(
    hub: &Hub,
    visitor_id: &str,
    conversation_id: &str,
) -> Result<String> {
    let record = hub
        .store
        .conversation(conversation_id)
        .await?
        .filter(|r| r.visitor_id == visitor_id)
        .ok_or_else(|| Error::not_found(format!("no conversation {conversation_id} of yours")))?;
    if record.is_open() {
        return Err(Error::conflict(
            "the chat is still open: its transcript comes after it ends",
        ));
    }
    let expires = crate::clock::now_ms().saturating_add(TRANSCRIPT_LINK_MS);
    let sig = crate::auth::sign_transcript(&hub.session_secret, conversation_id, expires);
    Ok(format!(
        "/v1/transcript/{conversation_id}?expires={expires}&sig={sig}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_looking_texts() {
        for text in [
            "",
            "  \n\t",
            "\u{200B}\u{200C}\u{200D}",
            "\u{FEFF}\u{2060}",
            "\0\0",
            "\u{202E} ",
        ] {
            assert!(blank_looking(text), "{text:?}");
        }
        for text in ["a", " hi ", "\u{200B}x", "٣"] {
            assert!(!blank_looking(text), "{text:?}");
        }
    }

    #[test]
    fn names_lose_bidi_controls_and_are_capped() {
        let cleaned = name(Some("\u{202E}nnA\u{202C} ".into()), 100).expect("ok");
        assert_eq!(cleaned.as_deref(), Some("nnA"));
        assert_eq!(name(Some("\u{200B}".into()), 100).expect("ok"), None);
        assert!(name(Some("é".repeat(101)), 100).is_err());
        assert!(name(Some("é".repeat(100)), 100).is_ok());
    }

    #[test]
    fn emails_are_checked() {
        assert_eq!(
            email(Some(" a@x.io ".into()), 254).expect("ok").as_deref(),
            Some("a@x.io")
        );
        assert_eq!(
            email(Some("a\u{202E}@x.io".into()), 254)
                .expect("ok")
                .as_deref(),
            Some("a@x.io")
        );
        assert!(email(Some(format!("{}@x.io", "a".repeat(300))), 254).is_err());
        assert_eq!(email(Some("  ".into()), 254).expect("ok"), None);
    }

    #[test]
    fn only_allowed_tags_survive() {
        let allowed = vec!["refund".to_string()];
        assert_eq!(
            customer_tags(
                vec!["refund".into(), "x".repeat(5000), "vip".into()],
                &allowed
            ),
            vec!["refund".to_string()]
        );
        assert!(customer_tags(vec!["refund".into()], &[]).is_empty());
    }
}
