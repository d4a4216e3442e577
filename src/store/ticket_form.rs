//! A ticket's stored form. A conversation's ticket is stored without its transcript:
//! the transcript is the conversation's event stream, which the flush keeps as long as
//! the ticket (`retention.rs`), so a chat is held in Redis once, not twice, and a flush
//! writes a few hundred bytes instead of a second copy of the chat. Readers get the
//! whole ticket: [`Store::ticket`] and the ticket pages splice the stream's events into
//! it in their stored form, as history pages do.
//!
//! The stored form is the ticket's JSON with an empty transcript (its last field),
//! headed by the conversation whose events it is:
//! `{"transcript_of":"c_…","ticket_id":…,"transcript":[]}`. A ticket stored with its
//! transcript in it (an offline message's, or one an older hub stored) is read as is.

use crate::protocol::{Audience, EventJson, PageEntry, StoredEvent};

use super::{Store, StoreError, StoreResult, StoredEntry};

/// How a stored ticket that refers to its conversation's stream starts.
const REFERENCE: &str = "{\"transcript_of\":\"";
/// How a ticket's JSON with an empty transcript ends (`transcript` is its last field).
const EMPTY_TRANSCRIPT: &str = "\"transcript\":[]}";

/// The stored form of the ticket whose JSON is `head` (its transcript empty) with the
/// events of `conversation_id` as its transcript; `None` when `head` is not laid out so
/// or the id would need escaping (the ticket is then stored whole).
pub fn by_reference(head: &str, conversation_id: &str) -> Option<String> {
    let fields = head.strip_prefix('{')?;
    let plain_id = !conversation_id.is_empty()
        && !conversation_id.contains(|c: char| c == '"' || c == '\\' || c.is_control());
    (plain_id && fields.ends_with(EMPTY_TRANSCRIPT))
        .then(|| format!("{REFERENCE}{conversation_id}\",{fields}"))
}

/// A stored ticket, as read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredTicket<'a> {
    /// The ticket's JSON, transcript included.
    Whole(&'a str),
    /// The ticket's fields after its `{`, ending with an empty transcript, whose
    /// transcript is the events of `conversation_id`.
    Referring {
        conversation_id: &'a str,
        fields: &'a str,
    },
}

impl<'a> StoredTicket<'a> {
    pub fn read(stored: &'a str) -> StoredTicket<'a> {
        let referring = stored
            .strip_prefix(REFERENCE)
            .and_then(|rest| rest.split_once("\","))
            .filter(|(_, fields)| fields.ends_with(EMPTY_TRANSCRIPT));
        match referring {
            Some((conversation_id, fields)) => StoredTicket::Referring {
                conversation_id,
                fields,
            },
            None => StoredTicket::Whole(stored),
        }
    }

    /// The ticket's JSON as stored, with an empty transcript when it refers to one.
    pub fn head(&self) -> String {
        match self {
            StoredTicket::Whole(json) => json.to_string(),
            StoredTicket::Referring { fields, .. } => format!("{{{fields}"),
        }
    }
}

/// The JSON of the ticket whose fields after its `{` are `fields` (ending with an
/// empty transcript), with `stored` (events of `conversation_id`) as its transcript:
/// the same text as serializing the ticket with each event parsed.
pub fn with_transcript(
    fields: &str,
    conversation_id: &str,
    stored: &[StoredEntry],
) -> StoreResult<String> {
    let mut events = Vec::with_capacity(stored.len());
    for entry in stored {
        match StoredEvent::page_json(conversation_id, entry.seq, &entry.json, Audience::Staff) {
            PageEntry::Visible(json) => events.push(json),
            // Staff see every event.
            PageEntry::Hidden => {}
            PageEntry::Unreadable => {
                return Err(StoreError::Corrupt(format!(
                    "event {} of {conversation_id} does not parse",
                    entry.seq
                )))
            }
        }
    }
    let open = fields
        .strip_suffix("[]}")
        .filter(|open| open.ends_with("\"transcript\":"))
        .ok_or_else(|| StoreError::Corrupt("a ticket's transcript is not its last field".into()))?;
    // One growth: `push_array` reserves the transcript's length.
    let mut json = String::with_capacity(open.len() + 3);
    json.push('{');
    json.push_str(open);
    EventJson::push_array(&mut json, &events);
    json.push('}');
    Ok(json)
}

impl Store {
    /// Stored tickets made whole, side by side, in order.
    pub async fn whole_tickets(
        &self,
        stored: Vec<Option<String>>,
    ) -> StoreResult<Vec<Option<String>>> {
        futures_util::future::try_join_all(stored.into_iter().map(|stored| async move {
            match stored {
                Some(stored) => self.whole_ticket(stored).await.map(Some),
                None => Ok(None),
            }
        }))
        .await
    }

    /// A stored ticket made whole: one that refers to its conversation's stream gets
    /// the stream's events as its transcript (none when the stream is gone).
    pub async fn whole_ticket(&self, stored: String) -> StoreResult<String> {
        match StoredTicket::read(&stored) {
            StoredTicket::Whole(_) => Ok(stored),
            StoredTicket::Referring {
                conversation_id,
                fields,
            } => {
                let events = self.all_stored_events(conversation_id).await?;
                with_transcript(fields, conversation_id, &events)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = r#"{"ticket_id":"t_1","conversation_id":"c_1","transcript":[]}"#;

    #[test]
    fn a_ticket_by_reference_is_read_back_as_its_head_and_conversation() {
        let stored = by_reference(HEAD, "c_1").expect("laid out");
        assert_eq!(
            stored,
            r#"{"transcript_of":"c_1","ticket_id":"t_1","conversation_id":"c_1","transcript":[]}"#
        );
        let read = StoredTicket::read(&stored);
        assert_eq!(
            read,
            StoredTicket::Referring {
                conversation_id: "c_1",
                fields: &HEAD[1..],
            }
        );
        assert_eq!(read.head(), HEAD);
    }

    #[test]
    fn what_cannot_refer_is_stored_and_read_whole() {
        assert_eq!(by_reference(HEAD, "c_\"1"), None, "an id needing escapes");
        assert_eq!(by_reference(HEAD, ""), None);
        let inline = r#"{"ticket_id":"t_1","transcript":[{"seq":1}]}"#;
        assert_eq!(by_reference(inline, "c_1"), None, "a transcript in it");
        for whole in [
            inline,
            r#"{"transcript_of":"c_1"}"#,
            r#"{"transcript_of":"c_1","transcript":[{"seq":1}]}"#,
            "",
        ] {
            assert_eq!(StoredTicket::read(whole), StoredTicket::Whole(whole));
        }
    }

    #[test]
    fn the_transcript_is_spliced_in_as_the_last_field() {
        let stored = [StoredEntry {
            seq: 1,
            json: r#"{"ts":5,"kind":"joined","agent":{"id":"a","name":"A"}}"#.into(),
        }];
        let json = with_transcript(&HEAD[1..], "c_1", &stored).expect("splices");
        let value: serde_json::Value = serde_json::from_str(&json).expect("JSON");
        assert_eq!(value["transcript"][0]["seq"], 1);
        assert_eq!(value["transcript"][0]["conversation_id"], "c_1");
        assert_eq!(value["transcript"][0]["kind"], "joined");
        assert!(with_transcript(r#""transcript":[]}"#, "c_1", &[]).is_ok());
        assert!(with_transcript(r#""ticket_id":"t_1"}"#, "c_1", &[]).is_err());
    }
}
