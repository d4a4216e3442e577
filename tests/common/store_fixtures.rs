//! Conversations written straight through the store, without a hub: for the tests of the
//! append script and of the ticket flush.

use std::time::Duration;

use serde_json::Map;
use switchboard::{
    protocol::{ConversationState, EventBody, Party, Role, StoredEvent},
    store::{AppendItem, AppendOutcome, Appended, NewConversation, Requirement, Store, Update},
};

use super::RedisServer;

pub async fn connect_store(redis: &RedisServer) -> Store {
    Store::connect(&redis.url(), Duration::from_secs(20))
        .await
        .unwrap_or_else(|err| panic!("connect to the test's redis: {err}"))
}

pub fn customer_message(visitor_id: &str, text: &str) -> EventBody {
    EventBody::Message {
        from: Party {
            role: Role::Customer,
            id: visitor_id.into(),
            name: None,
        },
        text: text.into(),
        client_msg_id: None,
        attachment: None,
    }
}

/// A new conversation of `visitor_id` whose first message (seq 1) is "first".
pub async fn create_conversation(store: &Store, id: &str, visitor_id: &str) {
    let created = store
        .create_conversation(
            &NewConversation {
                id: id.into(),
                visitor_id: visitor_id.into(),
                topic: "general".into(),
                priority: 0,
                customer_name: None,
                customer_email: None,
                verified: false,
                metadata: Map::new(),
                created_at: 1,
                first_message: customer_message(visitor_id, "first"),
                preview: "first".into(),
            },
            "test-node",
        )
        .await
        .expect("create conversation");
    assert!(created, "{id} is new");
}

/// One event to append, with what the append requires and changes.
pub struct Append {
    pub body: EventBody,
    pub requirement: Requirement,
    pub updates: Vec<Update>,
}

impl Append {
    /// Any event, requiring an open conversation and changing nothing.
    pub fn event(body: EventBody) -> Append {
        Append {
            body,
            requirement: Requirement::Open,
            updates: Vec::new(),
        }
    }

    pub fn requiring(mut self, requirement: Requirement) -> Append {
        self.requirement = requirement;
        self
    }

    pub fn updating(mut self, update: Update) -> Append {
        self.updates.push(update);
        self
    }

    /// The close of a conversation by `by`, naming `ticket_id`, as a close stores it.
    pub fn closing(by: Party, ticket_id: &str) -> Append {
        Append::event(EventBody::Closed {
            by,
            resolution: "resolved".into(),
            ticket_id: ticket_id.into(),
        })
        .updating(Update::State(ConversationState::Closed))
        .updating(Update::TicketId(ticket_id.into()))
    }
}

/// Appends `items` to conversation `id` in one batch, as a writer that has read the
/// whole stream (or to a missing conversation).
pub async fn append(store: &Store, id: &str, items: &[Append]) -> Vec<AppendOutcome> {
    let last_seq = store
        .conversation(id)
        .await
        .expect("read conversation")
        .map_or(0, |record| record.last_seq);
    append_above(store, id, last_seq, items).await
}

/// Like [`append`], from a writer that has seen the stream up to `expected`, which must
/// be at least what the stream holds.
pub async fn append_above(
    store: &Store,
    id: &str,
    expected: u64,
    items: &[Append],
) -> Vec<AppendOutcome> {
    match try_append(store, id, expected, items).await {
        Appended::Done(outcomes) => outcomes,
        other => panic!("append on top of {expected} answered {other:?}"),
    }
}

/// Appends `items` on top of `expected`, whatever Redis answers.
pub async fn try_append(store: &Store, id: &str, expected: u64, items: &[Append]) -> Appended {
    let stored: Vec<String> = items
        .iter()
        .map(|item| StoredEvent::json(7, &item.body).expect("serialize"))
        .collect();
    let batch: Vec<AppendItem<'_>> = items
        .iter()
        .zip(&stored)
        .map(|(item, stored)| AppendItem {
            stored,
            requirement: &item.requirement,
            updates: &item.updates,
            note: "",
        })
        .collect();
    store
        .append_batch(id, "test-node", expected, &batch)
        .await
        .expect("append batch")
}
