//! The batched append script against a real Redis: within one batch, a repeated
//! `client_msg_id`, a state change by an earlier event and a missing conversation each
//! get the same answer as if the events had been appended one at a time; seqs stay
//! gapless across batches; and the stored form round-trips.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Map;
use switchboard::protocol::{EventBody, Party, Role};
use switchboard::store::{
    stored_event_json, AppendItem, AppendOutcome, NewConversation, Requirement, Store,
};

async fn store(redis: &RedisServer) -> Store {
    Store::connect(&redis.url(), Duration::from_secs(5))
        .await
        .unwrap_or_else(|err| panic!("connect to the test's redis: {err}"))
}

fn message(text: &str) -> EventBody {
    EventBody::Message {
        from: Party {
            role: Role::Customer,
            id: "v_1".into(),
            name: None,
        },
        text: text.into(),
        client_msg_id: None,
    }
}

async fn create(store: &Store, id: &str) {
    let created = store
        .create_conversation(&NewConversation {
            id: id.into(),
            visitor_id: "v_1".into(),
            topic: "general".into(),
            priority: 0,
            customer_name: None,
            customer_email: None,
            verified: false,
            metadata: Map::new(),
            created_at: 1,
            first_message: message("first"),
            preview: "first".into(),
        })
        .await
        .expect("create conversation");
    assert!(created, "{id} is new");
}

/// One event to append: its text, `client_msg_id`, requirement and field updates.
struct Item {
    text: &'static str,
    client_msg_id: Option<&'static str>,
    requirement: Requirement,
    updates: Vec<(&'static str, String)>,
}

fn item(text: &'static str, client_msg_id: Option<&'static str>) -> Item {
    Item {
        text,
        client_msg_id,
        requirement: Requirement::Open,
        updates: Vec::new(),
    }
}

async fn append(store: &Store, id: &str, items: &[Item]) -> Vec<AppendOutcome> {
    let stored: Vec<String> = items
        .iter()
        .map(|item| stored_event_json(7, &message(item.text)).expect("serialize"))
        .collect();
    let batch: Vec<AppendItem<'_>> = items
        .iter()
        .zip(&stored)
        .map(|(item, stored)| AppendItem {
            stored,
            client_msg_id: item.client_msg_id,
            requirement: item.requirement,
            updates: &item.updates,
        })
        .collect();
    store.append_batch(id, &batch).await.expect("append batch")
}

async fn stored_texts(store: &Store, id: &str) -> Vec<(u64, String)> {
    let (events, more) = store
        .history_in_order(id, 0, 100)
        .await
        .expect("read history");
    assert!(!more);
    events
        .into_iter()
        .map(|event| match event.body {
            EventBody::Message { text, .. } => (event.seq, text),
            other => panic!("unexpected event {other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn a_batch_answers_each_event_as_if_appended_alone() {
    let redis = RedisServer::start().await;
    let store = store(&redis).await;
    create(&store, "c_batch").await;

    let outcomes = append(
        &store,
        "c_batch",
        &[
            item("a", Some("m-a")),
            item("b", None),
            // The same id again inside the batch: the first one's seq, nothing stored.
            item("a again", Some("m-a")),
            item("c", Some("m-c")),
        ],
    )
    .await;
    assert_eq!(
        outcomes,
        vec![
            AppendOutcome::Stored(2),
            AppendOutcome::Stored(3),
            AppendOutcome::Duplicate(2),
            AppendOutcome::Stored(4),
        ]
    );

    // A later batch: an earlier id is still known, seqs go on without a gap.
    let outcomes = append(
        &store,
        "c_batch",
        &[item("c again", Some("m-c")), item("d", None)],
    )
    .await;
    assert_eq!(
        outcomes,
        vec![AppendOutcome::Duplicate(4), AppendOutcome::Stored(5)]
    );
    let record = store
        .conversation("c_batch")
        .await
        .expect("read conversation")
        .expect("conversation exists");
    assert_eq!(record.last_seq, 5);
    assert_eq!(
        stored_texts(&store, "c_batch").await,
        vec![
            (1, "first".to_string()),
            (2, "a".to_string()),
            (3, "b".to_string()),
            (4, "c".to_string()),
            (5, "d".to_string()),
        ]
    );
}

#[tokio::test]
async fn a_close_inside_a_batch_refuses_the_messages_after_it() {
    let redis = RedisServer::start().await;
    let store = store(&redis).await;
    create(&store, "c_close").await;

    let close = Item {
        text: "closing",
        client_msg_id: None,
        requirement: Requirement::Open,
        updates: vec![("state", "closed".to_string())],
    };
    let outcomes = append(
        &store,
        "c_close",
        &[
            item("before", Some("m-1")),
            close,
            item("after", Some("m-2")),
        ],
    )
    .await;
    assert_eq!(
        outcomes,
        vec![
            AppendOutcome::Stored(2),
            AppendOutcome::Stored(3),
            AppendOutcome::WrongState,
        ]
    );
    // The refused message did not claim its id.
    let client = redis::Client::open(redis.url()).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the test's redis");
    let claimed: bool = redis::cmd("HEXISTS")
        .arg(switchboard::store::keys::client_msg_ids("c_close"))
        .arg("m-2")
        .query_async(&mut conn)
        .await
        .expect("HEXISTS");
    assert!(
        !claimed,
        "a refused message must not claim its client_msg_id"
    );
    let rating = Item {
        text: "rated",
        client_msg_id: None,
        requirement: Requirement::ClosedUnrated,
        updates: Vec::new(),
    };
    let outcomes = append(&store, "c_close", &[rating]).await;
    assert_eq!(outcomes, vec![AppendOutcome::Stored(4)]);
    let again = Item {
        text: "rated twice",
        client_msg_id: None,
        requirement: Requirement::ClosedUnrated,
        updates: Vec::new(),
    };
    assert_eq!(
        append(&store, "c_close", &[again]).await,
        vec![AppendOutcome::WrongState]
    );
    assert_eq!(stored_texts(&store, "c_close").await.len(), 4);
}

#[tokio::test]
async fn appending_to_a_missing_conversation_stores_nothing() {
    let redis = RedisServer::start().await;
    let store = store(&redis).await;
    let outcomes = append(&store, "c_none", &[item("x", Some("m-x")), item("y", None)]).await;
    assert_eq!(
        outcomes,
        vec![AppendOutcome::NotFound, AppendOutcome::NotFound]
    );
    assert!(store
        .conversation("c_none")
        .await
        .expect("read conversation")
        .is_none());
}
