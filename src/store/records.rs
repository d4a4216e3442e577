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
