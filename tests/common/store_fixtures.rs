//! Conversations written straight through the store, without a hub: for the tests of the
//! append script and of the ticket flush.

use std::time::Duration;

use serde_json::Map;
use switchboard::{
    protocol::{EventBody, Party, Role, StoredEvent},
    store::{AppendItem, AppendOutcome, NewConversation, Requirement, Store, Update},
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
        .create_conversation(&NewConversation {
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
        })
        .await
        .expect("create conversation");
    assert!(created, "{id} is new");
}

/// One event to append, with what the append requires and changes.
pub struct Append {
    pub body: EventBody,
    pub client_msg_id: Option<&'static str>,
    pub requirement: Requirement,
    pub updates: Vec<Update>,
}

impl Append {
    /// Any event, requiring an open conversation and changing nothing.
    pub fn event(body: EventBody) -> Append {
        Append {
            body,
            client_msg_id: None,
            requirement: Requirement::Open,
            updates: Vec::new(),
        }
    }

    pub fn with_id(mut self, client_msg_id: &'static str) -> Append {
        self.client_msg_id = Some(client_msg_id);
        self
    }

    pub fn requiring(mut self, requirement: Requirement) -> Append {
        self.requirement = requirement;
        self
    }

    pub fn updating(mut self, update: Update) -> Append {
        self.updates.push(update);
        self
    }
}

/// Appends `items` to conversation `id` in one batch.
pub async fn append(store: &Store, id: &str, items: &[Append]) -> Vec<AppendOutcome> {
    append_above(store, id, 0, items).await
}

/// Like [`append`], from a node that has delivered up to `delivered` already.
pub async fn append_above(
    store: &Store,
    id: &str,
    delivered: u64,
    items: &[Append],
) -> Vec<AppendOutcome> {
    let stored: Vec<String> = items
        .iter()
        .map(|item| StoredEvent::json(7, &item.body).expect("serialize"))
        .collect();
    let batch: Vec<AppendItem<'_>> = items
        .iter()
        .zip(&stored)
        .map(|(item, stored)| AppendItem {
            stored,
            client_msg_id: item.client_msg_id,
            requirement: &item.requirement,
            updates: &item.updates,
            note: "",
        })
        .collect();
    store
        .append_batch(id, delivered, &batch)
        .await
        .expect("append batch")
}
