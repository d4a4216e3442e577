//! Credentials: random tokens, agent token hashing, signed visitor sessions and
//! customer identity signatures. Comparisons of secrets are constant-time.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// `bytes` random bytes, URL-safe base64.
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// An opaque server-made id: `prefix` + 16 hex digits.
pub fn random_id(prefix: &str) -> String {
    format!("{prefix}{:016x}", rand::rng().next_u64())
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn hmac_hex(key: &[u8], message: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

fn verify_hmac_hex(key: &[u8], message: &[u8], signature_hex: &str) -> bool {
    let Ok(signature) = hex::decode(signature_hex.trim()) else {
        return false;
    };
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.verify_slice(&signature).is_ok()
}

/// Hex HMAC-SHA256 as used by identity signatures and webhook signatures.
pub fn sign(key: &str, message: &str) -> String {
    hmac_hex(key.as_bytes(), message.as_bytes())
}

/// Checks a customer identity: `signature` is hex HMAC-SHA256 of `user_id`.
pub fn verify_identity(identity_secret: &str, user_id: &str, signature: &str) -> bool {
    verify_hmac_hex(identity_secret.as_bytes(), user_id.as_bytes(), signature)
}

/// What a short-lived signed link covers: its kind, the ids it opens and its expiry, a
/// line each (ids never hold a newline), so a link opens that one thing until then.
fn link_text(kind: &str, ids: &[&str], expires_ms: u64) -> String {
    let mut text = String::from(kind);
    for id in ids {
        text.push('\n');
        text.push_str(id);
    }
    text.push('\n');
    text.push_str(&expires_ms.to_string());
    text
}

/// The signature of a transcript link (one conversation's transcript).
pub fn sign_transcript(secret: &str, conversation_id: &str, expires_ms: u64) -> String {
    let text = link_text("transcript", &[conversation_id], expires_ms);
    hmac_hex(secret.as_bytes(), text.as_bytes())
}

/// Checks a transcript link's signature (not its expiry).
pub fn verify_transcript(secret: &str, conversation_id: &str, expires_ms: u64, sig: &str) -> bool {
    let text = link_text("transcript", &[conversation_id], expires_ms);
    verify_hmac_hex(secret.as_bytes(), text.as_bytes(), sig)
}

/// The signature of a download link to one uploaded file.
pub fn sign_attachment(
    secret: &str,
    conversation_id: &str,
    attachment_id: &str,
    expires_ms: u64,
) -> String {
    let text = link_text("attachment", &[conversation_id, attachment_id], expires_ms);
    hmac_hex(secret.as_bytes(), text.as_bytes())
}

/// Checks a download link's signature (not its expiry).
pub fn verify_attachment(
    secret: &str,
    conversation_id: &str,
    attachment_id: &str,
    expires_ms: u64,
    sig: &str,
) -> bool {
    let text = link_text("attachment", &[conversation_id, attachment_id], expires_ms);
    verify_hmac_hex(secret.as_bytes(), text.as_bytes(), sig)
}

/// A visitor session token: `<visitor_id>.<issued ms>.<hmac of both>`, opaque to
/// clients. The issue time lets the hub expire sessions and revoke those issued before
/// a revocation.
pub fn make_session(secret: &str, visitor_id: &str, issued_ms: u64) -> String {
    let signed = format!("{visitor_id}.{issued_ms}");
    let signature = hmac_hex(secret.as_bytes(), signed.as_bytes());
    format!("{signed}.{signature}")
}

/// A valid session token's visitor id and issue time (ms). Tokens of the older form
/// (without an issue time) are not valid.
pub fn open_session(secret: &str, session: &str) -> Option<(String, u64)> {
    let (signed, signature) = session.rsplit_once('.')?;
    let (visitor_id, issued) = signed.rsplit_once('.')?;
    if visitor_id.is_empty() || visitor_id.len() > 128 || visitor_id.contains('.') {
        return None;
    }
    let issued_ms: u64 = issued.parse().ok()?;
    verify_hmac_hex(secret.as_bytes(), signed.as_bytes(), signature)
        .then(|| (visitor_id.to_string(), issued_ms))
}

/// The string an extended identity signature covers: `user_id`, `name`, `email` (empty
/// when absent) and `issued_at`, each on a line of its own. Fields with control
/// characters are refused before this, so the lines cannot be shifted.
pub fn identity_canonical(
    user_id: &str,
    name: Option<&str>,
    email: Option<&str>,
    issued_at: u64,
) -> String {
    format!(
        "{user_id}\n{}\n{}\n{issued_at}",
        name.unwrap_or_default(),
        email.unwrap_or_default()
    )
}

/// Checks an extended identity: `signature` is hex HMAC-SHA256 of
/// [`identity_canonical`].
pub fn verify_identity_extended(
    identity_secret: &str,
    user_id: &str,
    name: Option<&str>,
    email: Option<&str>,
    issued_at: u64,
    signature: &str,
) -> bool {
    let canonical = identity_canonical(user_id, name, email, issued_at);
    verify_hmac_hex(identity_secret.as_bytes(), canonical.as_bytes(), signature)
}

/// Constant-time equality for bearer tokens.
pub fn same_secret(given: &str, expected: &str) -> bool {
    let (a, b) = (
        Sha256::digest(given.as_bytes()),
        Sha256::digest(expected.as_bytes()),
    );
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Visitor id of a verified customer: stable per `user_id`, so every device of that
/// user is the same visitor.
pub fn verified_visitor_id(identity_secret: &str, user_id: &str) -> String {
    format!(
        "v_u{}",
        &hmac_hex(
            identity_secret.as_bytes(),
            format!("visitor:{user_id}").as_bytes()
        )[..16]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_round_trip_and_reject_forgery() {
        let session = make_session("k", "v_1a", 1_700_000_000_123);
        assert_eq!(
            open_session("k", &session),
            Some(("v_1a".to_string(), 1_700_000_000_123))
        );
        assert_eq!(open_session("other", &session), None);
        assert_eq!(open_session("k", "v_1a.00"), None);
        assert_eq!(open_session("k", "garbage"), None);
        let old_form = format!("v_1a.{}", sign("k", "v_1a"));
        assert_eq!(open_session("k", &old_form), None, "no issue time");
        let moved = session.replacen("123", "124", 1);
        assert_eq!(open_session("k", &moved), None, "issue time is signed");
    }

    #[test]
    fn identity_signature_is_hmac_of_user_id() {
        let signature = sign("site-secret", "u42");
        assert!(verify_identity("site-secret", "u42", &signature));
        assert!(!verify_identity("site-secret", "u43", &signature));
        assert!(!verify_identity("site-secret", "u42", "zz"));
    }

    #[test]
    fn extended_identity_covers_every_field() {
        let canonical = identity_canonical("u42", Some("Ann"), Some("a@x.io"), 1_764_700_000);
        assert_eq!(canonical, "u42\nAnn\na@x.io\n1764700000");
        let signature = sign("s", &canonical);
        let check =
            |name, email, at| verify_identity_extended("s", "u42", name, email, at, &signature);
        assert!(check(Some("Ann"), Some("a@x.io"), 1_764_700_000));
        assert!(!check(Some("Bob"), Some("a@x.io"), 1_764_700_000));
        assert!(!check(Some("Ann"), None, 1_764_700_000));
        assert!(!check(Some("Ann"), Some("a@x.io"), 1_764_700_001));
    }

    #[test]
    fn secrets_compare() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
    }
}
