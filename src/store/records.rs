//! A conversation's state hash, typed: what a new conversation writes, what a read
//! gives back, and the changes an append makes with its event.

use std::collections::HashMap;

use serde_json::{Map, Value as Json};

use super::{StoreError, StoreResult};
use crate::protocol::{ConversationState, EventBody};

/// A change to a conversation's state hash made together with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    State(ConversationState),
    /// The owning agent; `None` clears it.
    Agent(Option<String>),
    ClosedAt(u64),
    TicketId(String),
    Resolution(String),
    Tags(Vec<String>),
    /// When the first agent joined (set once, with that `joined`): the wait SLA.
    AnsweredAt(u64),
    /// When the first agent message was stored: the first-response SLA.
    FirstResponseAt(u64),
}

impl Update {
    /// The hash field and value this update writes.
    pub(super) fn field(&self) -> (&'static str, String) {
        match self {
            Update::State(state) => ("state", state.as_str().to_string()),
            Update::Agent(agent) => ("agent", agent.clone().unwrap_or_default()),
            Update::ClosedAt(at) => ("closed_at", at.to_string()),
            Update::TicketId(id) => ("ticket_id", id.clone()),
            Update::Resolution(resolution) => ("resolution", resolution.clone()),
            Update::Tags(tags) => (
                "tags",
                serde_json::to_string(tags).unwrap_or_else(|_| "[]".into()),
            ),
            Update::AnsweredAt(at) => ("answered_at", at.to_string()),
            Update::FirstResponseAt(at) => ("first_response_at", at.to_string()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewConversation {
    pub id: String,
    pub visitor_id: String,
    pub topic: String,
    pub priority: i32,
    pub customer_name: Option<String>,
    pub customer_email: Option<String>,
    pub verified: bool,
    pub metadata: Map<String, Json>,
    pub created_at: u64,
    pub first_message: EventBody,
    pub preview: String,
}

/// A conversation's state hash, typed.
#[derive(Debug, Clone)]
pub struct ConversationRecord {
    pub id: String,
    pub visitor_id: String,
    pub topic: String,
    pub priority: i32,
    pub customer_name: Option<String>,
    pub customer_email: Option<String>,
    pub verified: bool,
    pub metadata: Map<String, Json>,
    pub created_at: u64,
    /// Original start of the wait; kept through transfers and re-queues.
    pub waiting_since: u64,
    pub state: ConversationState,
    pub agent: Option<String>,
    pub last_seq: u64,
    pub closed_at: Option<u64>,
    pub ticket_id: Option<String>,
    pub flushed: bool,
    pub preview: String,
    pub tags: Vec<String>,
    pub resolution: Option<String>,
    /// First `joined` and first agent message (Unix ms), for the live SLA marks.
    pub answered_at: Option<u64>,
    pub first_response_at: Option<u64>,
}

impl ConversationRecord {
    pub fn is_open(&self) -> bool {
        self.state.is_open()
    }

    pub(super) fn from_hash(id: &str, mut hash: HashMap<String, String>) -> StoreResult<Self> {
        let mut take = |field: &str| hash.remove(field);
        let number = |value: Option<String>| -> StoreResult<u64> {
            value
                .map(|v| v.parse::<u64>())
                .transpose()
                .map(Option::unwrap_or_default)
                .map_err(|err| StoreError::Corrupt(format!("conversation {id}: {err}")))
        };
        let non_empty = |value: Option<String>| value.filter(|v| !v.is_empty());
        let metadata = match take("metadata") {
            Some(text) => serde_json::from_str(&text)?,
            None => Map::new(),
        };
        let tags = match take("tags") {
            Some(text) => serde_json::from_str(&text)?,
            None => Vec::new(),
        };
        Ok(ConversationRecord {
            id: id.to_string(),
            visitor_id: take("visitor_id").unwrap_or_default(),
            topic: take("topic").unwrap_or_default(),
            priority: take("priority")
                .and_then(|p| p.parse().ok())
                .unwrap_or_default(),
            customer_name: non_empty(take("customer_name")),
            customer_email: non_empty(take("customer_email")),
            verified: take("verified").as_deref() == Some("1"),
            metadata,
            created_at: number(take("created_at"))?,
            waiting_since: number(take("waiting_since"))?,
            state: take("state")
                .as_deref()
                .and_then(ConversationState::parse)
                .ok_or_else(|| StoreError::Corrupt(format!("conversation {id}: no state")))?,
            agent: non_empty(take("agent")),
            last_seq: number(take("last_seq"))?,
            closed_at: non_empty(take("closed_at"))
                .map(|v| number(Some(v)))
                .transpose()?,
            ticket_id: non_empty(take("ticket_id")),
            flushed: take("flushed").as_deref() == Some("1"),
            preview: take("preview").unwrap_or_default(),
            tags,
            resolution: non_empty(take("resolution")),
            answered_at: non_empty(take("answered_at")).and_then(|v| v.parse().ok()),
            first_response_at: non_empty(take("first_response_at")).and_then(|v| v.parse().ok()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn record_parses_from_hash() {
        let hash: HashMap<String, String> = [
            ("visitor_id", "v_1"),
            ("topic", "billing"),
            ("state", "assigned"),
            ("agent", "alice"),
            ("last_seq", "7"),
            ("created_at", "100"),
            ("waiting_since", "100"),
            ("metadata", "{\"plan\":\"pro\"}"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let record = ConversationRecord::from_hash("c_1", hash).expect("parses");
        assert_eq!(record.agent.as_deref(), Some("alice"));
        assert_eq!(record.last_seq, 7);
        assert!(record.is_open());
        assert_eq!(record.metadata["plan"], "pro");
    }
}

/// What an append must find before it stores anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    Any,
    Open,
    /// Closed and not rated yet; marks it rated.
    ClosedUnrated,
    /// Open, with no owning agent or with this one (`None`: none). A `joined` requires
    /// the owner the router believes in, so two routers that both believe they route
    /// (one paused past its lease) can never both assign the conversation.
    OwnedBy(Option<String>),
}

impl Requirement {
    fn wire(&self) -> std::borrow::Cow<'static, str> {
        match self {
            Requirement::Any => "any".into(),
            Requirement::Open => "open".into(),
            Requirement::ClosedUnrated => "closed_unrated".into(),
            Requirement::OwnedBy(None) => "owned:".into(),
            Requirement::OwnedBy(Some(agent)) => format!("owned:{agent}").into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    Stored(u64),
    /// The `client_msg_id` was seen before: this is the first one's seq (the
    /// conversation task answers this; the store never does).
    Duplicate(u64),
    NotFound,
    WrongState,
}

/// One event to append, with what the append requires and changes.
pub struct AppendItem<'a> {
    /// The event in its stored form, from [`stored_event_json`].
    pub stored: &'a str,
    pub requirement: &'a Requirement,
    pub updates: &'a [Update],
    /// Published with the event only (see [`APPEND`]).
    pub note: &'a str,
}

/// Adds one event's arguments to a batch invocation of [`APPEND`].
pub(super) fn push_append_args(
    invocation: &mut redis::ScriptInvocation<'static>,
    item: &AppendItem<'_>,
) {
    invocation
        .arg(item.stored)
        .arg(item.requirement.wire().as_ref())
        .arg(item.note)
        .arg(item.updates.len());
    for update in item.updates {
        let (field, value) = update.field();
        invocation.arg(field).arg(value);
    }
}

/// One event's answer from the append script: its seq, or -2 for the wrong state.
pub(super) fn decode_append(answer: i64) -> StoreResult<AppendOutcome> {
    match answer {
        -2 => Ok(AppendOutcome::WrongState),
        seq if seq > 0 => Ok(AppendOutcome::Stored(seq as u64)),
        other => Err(StoreError::Corrupt(format!("append answered {other}"))),
    }
}
