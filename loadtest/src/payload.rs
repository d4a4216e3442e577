//! Message texts of the load. Each text starts with its send time (microseconds on the
//! run's clock), its message id and a flag, then padding up to the scenario's size, so
//! the receiving side measures latency from the text alone, with no shared map between
//! senders and receivers. It owns the text format and nothing else.
//!
//! Format: `<sent_us> <id> <flag> xxxx…` where `flag` is `-` (plain) or `T` (the agent
//! transfers the conversation after answering this message). Agent replies use the id
//! `r<customer message id>`, which is also their `client_msg_id`: two agents answering the
//! same message around a transfer therefore store one reply, not two.

/// No special handling.
pub const FLAG_PLAIN: char = '-';
/// The agent transfers the conversation after replying to this message.
pub const FLAG_TRANSFER: char = 'T';

/// The parsed head of a load text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp<'a> {
    pub sent_us: u64,
    pub id: &'a str,
    pub flag: char,
}

impl<'a> Stamp<'a> {
    /// The customer message id a reply answers (`r<id>` → `<id>`), if this is a reply.
    pub fn replies_to(&self) -> Option<&'a str> {
        self.id.strip_prefix('r')
    }
}

/// Builds a text of at least `size` bytes (longer only when the head itself is longer).
pub fn encode(sent_us: u64, id: &str, flag: char, size: usize) -> String {
    use std::fmt::Write;

    // One allocation: the head (at most 20 digits, the id, the flag, 3 spaces) and the
    // padding both fit.
    let mut text = String::with_capacity(size.max(id.len() + 28));
    // Writing to a String cannot fail.
    let _ = write!(text, "{sent_us} {id} {flag} ");
    if text.len() < size {
        let pad = size - text.len();
        text.extend(std::iter::repeat_n('x', pad));
    }
    text
}

/// Reads the head of a text; `None` for texts the harness did not write. Tolerates
/// truncation after the id (an offer's `preview` may be cut short).
pub fn decode(text: &str) -> Option<Stamp<'_>> {
    let mut parts = text.splitn(4, ' ');
    let sent_us = parts.next()?.parse().ok()?;
    let id = parts.next().filter(|id| !id.is_empty())?;
    let flag = parts
        .next()
        .and_then(|f| f.chars().next())
        .unwrap_or(FLAG_PLAIN);
    Some(Stamp { sent_us, id, flag })
}

/// The id of a customer's message `n` (0 is the opening text of `start`) in chat `chat`.
pub fn customer_msg_id(customer: usize, chat: u32, n: u32) -> String {
    format!("c{customer}.{chat}.{n}")
}

/// The id (and `client_msg_id`) of the reply to customer message `id`.
pub fn reply_id(customer_msg: &str) -> String {
    format!("r{customer_msg}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_padding() {
        let text = encode(123_456, "c3.1.7", FLAG_TRANSFER, 64);
        assert_eq!(text.len(), 64);
        let stamp = decode(&text).expect("our own text");
        assert_eq!(stamp.sent_us, 123_456);
        assert_eq!(stamp.id, "c3.1.7");
        assert_eq!(stamp.flag, FLAG_TRANSFER);
        assert_eq!(stamp.replies_to(), None);
    }

    #[test]
    fn short_size_keeps_the_head() {
        let text = encode(9, "c0.0.0", FLAG_PLAIN, 1);
        assert_eq!(decode(&text).map(|s| s.id), Some("c0.0.0"));
    }

    #[test]
    fn replies_point_at_the_customer_message() {
        let id = reply_id("c1.0.2");
        let text = encode(5, &id, FLAG_PLAIN, 0);
        assert_eq!(decode(&text).and_then(|s| s.replies_to()), Some("c1.0.2"));
    }

    #[test]
    fn truncated_preview_and_foreign_texts() {
        assert_eq!(decode("77 c1.0.0").map(|s| s.sent_us), Some(77));
        assert_eq!(decode("hello there"), None);
        assert_eq!(decode(""), None);
        assert_eq!(decode("12"), None);
    }
}
