//! What an upload must be: within the size limit, of an allowed type, and made of bytes
//! that are what its type says (magic bytes by the `infer` crate; text must be UTF-8).
//! A file whose kind cannot be verified is refused rather than trusted.

use crate::{config::AttachmentSettings, error::Error};

/// Declared types whose bytes have no signature: checked as text instead.
fn is_text(content_type: &str) -> bool {
    content_type.starts_with("text/") || content_type == "application/json"
}

pub fn check(settings: &AttachmentSettings, content_type: &str, bytes: &[u8]) -> Result<(), Error> {
    if bytes.len() > settings.max_bytes {
        return Err(Error::TooLarge(format!(
            "the file is over {} bytes",
            settings.max_bytes
        )));
    }
    if bytes.is_empty() {
        return Err(Error::bad_request("the file is empty"));
    }
    if !settings.allows(content_type) {
        return Err(Error::bad_request(format!(
            "files of type {content_type:?} are not accepted (allowed: {})",
            settings.allowed_types.join(", ")
        )));
    }
    let detected = infer::get(bytes).map(|kind| kind.mime_type());
    if is_text(content_type) {
        let text_like =
            detected.is_none() && std::str::from_utf8(bytes).is_ok() && !bytes.contains(&0);
        if !text_like {
            return Err(Error::bad_request(format!(
                "the file's content is not {content_type} text"
            )));
        }
        return Ok(());
    }
    match detected {
        Some(kind) if kind == content_type => Ok(()),
        Some(kind) => Err(Error::bad_request(format!(
            "the file's content is {kind}, not the declared {content_type}"
        ))),
        None => Err(Error::bad_request(format!(
            "the file's content is not {content_type}"
        ))),
    }
}

/// The media type of a `Content-Type` header: lower case, without parameters.
pub fn content_type_of(header: &str) -> String {
    header
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// The most of a file name kept.
const MAX_NAME_CHARS: usize = 200;

/// A file name fit to show and to offer as a download name: the last path segment,
/// without control or bidi-override characters, at most 200 characters; `file` when
/// nothing is left.
pub fn clean_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '"'))
        .take(MAX_NAME_CHARS)
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.');
    if trimmed.is_empty() {
        "file".into()
    } else {
        trimmed.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";
    const JPEG: &[u8] = b"\xFF\xD8\xFF\xE0\0\x10JFIF\0\x01";
    const PDF: &[u8] = b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n";

    fn settings() -> AttachmentSettings {
        AttachmentSettings::default()
    }

    #[test]
    fn bytes_must_match_the_declared_type() {
        let s = settings();
        assert!(check(&s, "image/png", PNG).is_ok());
        assert!(check(&s, "image/jpeg", JPEG).is_ok());
        assert!(check(&s, "application/pdf", PDF).is_ok());
        assert!(check(&s, "text/plain", "héllo\n".as_bytes()).is_ok());
        // A PNG said to be a JPEG, HTML said to be a PNG, a PDF said to be text.
        for (kind, bytes) in [
            ("image/jpeg", PNG),
            ("image/png", b"<html><script>alert(1)</script>".as_slice()),
            ("text/plain", PDF),
            ("text/plain", b"a\0b".as_slice()),
        ] {
            let err = check(&s, kind, bytes).expect_err(kind);
            assert_eq!(err.code().as_str(), "bad_request", "{kind}");
        }
    }

    #[test]
    fn types_outside_the_allowlist_and_oversize_files_are_refused() {
        let mut s = settings();
        let err = check(&s, "text/html", b"<p>hi</p>").expect_err("html");
        assert_eq!(err.code().as_str(), "bad_request");
        let err = check(&s, "image/svg+xml", b"<svg/>").expect_err("svg");
        assert_eq!(err.code().as_str(), "bad_request");
        s.max_bytes = 8;
        let err = check(&s, "image/png", PNG).expect_err("large");
        assert_eq!(err.code().as_str(), "too_large");
        assert!(check(&s, "text/plain", b"").is_err());
    }

    #[test]
    fn names_lose_paths_controls_and_overrides() {
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name("C:\\Users\\ann\\shot.png"), "shot.png");
        assert_eq!(clean_name("evil\u{202E}gnp.exe"), "evilgnp.exe");
        assert_eq!(clean_name("a\"b\r\n.txt"), "ab.txt");
        assert_eq!(clean_name(""), "file");
        assert_eq!(clean_name(".."), "file");
        assert_eq!(clean_name(&"x".repeat(500)).chars().count(), 200);
        assert_eq!(content_type_of("Image/PNG; charset=binary"), "image/png");
    }
}
