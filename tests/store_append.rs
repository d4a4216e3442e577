//! The batched append script against a real Redis: within one batch, a repeated
//! `client_msg_id`, a state change by an earlier event and a missing conversation each
//! get the same answer as if the events had been appended one at a time; seqs stay
//! gapless across batches; and the stored form round-trips.

mod common;

use common::store_fixtures::{
    append, append_above, connect_store, create_conversation, customer_message, Append,
};
use common::*;
use switchboard::protocol::{ConversationState, EventBody};
use switchboard::store::{AppendOutcome, Requirement, Store, Update};

/// A message of visitor `v_1`, with its `client_msg_id` if given.
fn item(text: &str, client_msg_id: Option<&'static str>) -> Append {
    let item = Append::event(customer_message("v_1", text));
    match client_msg_id {
        Some(id) => item.with_id(id),
        None => item,
    }
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
    let store = connect_store(&redis).await;
    create_conversation(&store, "c_batch", "v_1").await;

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
    let store = connect_store(&redis).await;
    create_conversation(&store, "c_close", "v_1").await;

    let close = item("closing", None).updating(Update::State(ConversationState::Closed));
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
    let rating = item("rated", None).requiring(Requirement::ClosedUnrated);
    let outcomes = append(&store, "c_close", &[rating]).await;
    assert_eq!(outcomes, vec![AppendOutcome::Stored(4)]);
    let again = item("rated twice", None).requiring(Requirement::ClosedUnrated);
    assert_eq!(
        append(&store, "c_close", &[again]).await,
        vec![AppendOutcome::WrongState]
    );
    assert_eq!(stored_texts(&store, "c_close").await.len(), 4);
}

#[tokio::test]
async fn appending_to_a_missing_conversation_stores_nothing() {
    let redis = RedisServer::start().await;
    let store = connect_store(&redis).await;
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

/// Redis lost the last appends (an asynchronous replica promoted in a failover) while a
/// node had delivered them: the next event gets a seq above what was delivered, never
/// one a client already saw with another event.
#[tokio::test]
async fn seqs_stay_above_what_a_node_delivered_after_redis_lost_appends() {
    let redis = RedisServer::start().await;
    let store = connect_store(&redis).await;
    create_conversation(&store, "c_lost", "v_1").await;
    let outcomes = append(&store, "c_lost", &[item("a", None), item("b", None)]).await;
    assert_eq!(outcomes.last(), Some(&AppendOutcome::Stored(3)));
    // This node delivered up to 5; Redis, after losing 4 and 5, holds 3.
    let outcomes = append_above(&store, "c_lost", 5, &[item("c", None)]).await;
    assert_eq!(outcomes, vec![AppendOutcome::Stored(6)]);
    let seqs: Vec<u64> = stored_texts(&store, "c_lost")
        .await
        .into_iter()
        .map(|(seq, _)| seq)
        .collect();
    assert_eq!(seqs, vec![1, 2, 3, 6]);
    // A node that delivered less changes nothing.
    let outcomes = append_above(&store, "c_lost", 2, &[item("d", None)]).await;
    assert_eq!(outcomes, vec![AppendOutcome::Stored(7)]);
}
