//! Canned responses (issue 18): the rules every response obeys, wherever it comes from
//! (`POST`/`PATCH /v1/canned`, or the config's `[[canned_responses]]` seed), and who may
//! change which. Pure functions over plain data: no I/O, and nothing from the rest of
//! the crate, so `config` and `http` both use them. Storage is `store/canned.rs`; the
//! placeholders (`{customer.name}`, …) are expanded by the console, never here.

use std::collections::BTreeMap;

/// The most responses a deployment holds (global and per topic together), so no caller
/// can fill Redis.
pub const MAX_RESPONSES: usize = 500;
/// A shortcut: 1 to 32 of `a-z`, `0-9`, `_`, `-`.
pub const MAX_SHORTCUT_CHARS: usize = 32;
/// A text: 1 to 2000 characters (Unicode scalar values), not blank.
pub const MAX_TEXT_CHARS: usize = 2000;

/// `Err` with a message a client can act on, when `shortcut` is not `[a-z0-9_-]{1,32}`.
pub fn check_shortcut(shortcut: &str) -> Result<(), String> {
    let ok = (1..=MAX_SHORTCUT_CHARS).contains(&shortcut.len())
        && shortcut
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "shortcut must match [a-z0-9_-]{{1,{MAX_SHORTCUT_CHARS}}}, got {shortcut:?}"
        ))
    }
}

/// `Err` when `text` is empty, only whitespace, over [`MAX_TEXT_CHARS`] characters, or
/// holds control characters other than line breaks and tabs.
pub fn check_text(text: &str) -> Result<(), String> {
    let chars = text.chars().count();
    if text.trim().is_empty() {
        Err("text must not be empty".into())
    } else if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        Err("text must hold no control characters (line breaks and tabs are fine)".into())
    } else if chars > MAX_TEXT_CHARS {
        Err(format!(
            "text must be at most {MAX_TEXT_CHARS} characters, got {chars}"
        ))
    } else {
        Ok(())
    }
}

/// Whether a supervisor holding `skills` manages the canned responses of a topic that
/// requires `topic_skills`: it holds every skill the topic requires (at any level),
/// i.e. it could be offered that topic's chats. A topic requiring no skill is every
/// supervisor's. Global responses are the admin's alone (not decided here).
pub fn supervisor_manages(skills: &BTreeMap<String, u32>, topic_skills: &[String]) -> bool {
    topic_skills.iter().all(|skill| skills.contains_key(skill))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortcuts() {
        for good in ["a", "refund", "re-fund_2", &"x".repeat(32)] {
            assert!(check_shortcut(good).is_ok(), "{good}");
        }
        for bad in ["", "Refund", "re fund", "/refund", "é", &"x".repeat(33)] {
            assert!(check_shortcut(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn texts() {
        assert!(check_text("Hi {customer.name}").is_ok());
        assert!(check_text("Two\nlines\tand a tab").is_ok());
        assert!(check_text("nul\u{0}").is_err());
        assert!(
            check_text(&"é".repeat(2000)).is_ok(),
            "characters, not bytes"
        );
        assert!(check_text(&"é".repeat(2001)).is_err());
        assert!(check_text("").is_err());
        assert!(check_text(" \n\t").is_err());
    }

    #[test]
    fn supervisors_manage_topics_whose_skills_they_hold() {
        let skills: BTreeMap<String, u32> = [("billing".to_string(), 3)].into();
        assert!(supervisor_manages(&skills, &[]));
        assert!(supervisor_manages(&skills, &["billing".into()]));
        assert!(!supervisor_manages(
            &skills,
            &["billing".into(), "fr".into()]
        ));
        assert!(!supervisor_manages(&BTreeMap::new(), &["billing".into()]));
    }
}
