//! The batched append script against a real Redis: within one batch, a state change by
//! an earlier event and a missing conversation each get the same answer as if the events
//! had been appended one at a time; seqs stay gapless across batches; a writer that has
//! not read the whole stream stores nothing; and the stored form round-trips.
//! (A repeated `client_msg_id` is the conversation task's to answer: `tests/hub_chat.rs`,
//! `tests/nodes.rs`.)

mod common;

use common::store_fixtures::{
    append, append_above, connect_store, create_conversation, customer_message, try_append, Append,
};
use common::*;
use switchboard::protocol::{ConversationState, EventBody, StoredEvent};
use switchboard::store::{
    AppendOutcome, Appended, PlainAppended, PlainEvent, Requirement, Store, Update,
};

/// A message of visitor `v_1`.
fn item(text: &str) -> Append {
    Append::event(customer_message("v_1", text))
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

/// The texts of the stored messages, in seq order.
async fn stored_message_texts(store: &Store, id: &str) -> Vec<String> {
    stored_texts(store, id)
        .await
        .into_iter()
        .map(|(_, text)| text)
        .collect()
}

/// A subscriber to every node's live channel of `conversation`.
async fn live_subscriber(redis: &RedisServer, conversation: &str) -> redis::aio::PubSub {
    let mut subscriber = redis::Client::open(redis.url())
        .expect("redis url")
        .get_async_pubsub()
        .await
        .expect("pubsub");
    subscriber
        .psubscribe(format!("sb:{{{conversation}}}:live:*"))
        .await
        .expect("psubscribe");
    subscriber
}

/// A store on a fresh Redis holding `conversation` (its first event at seq 1), listed as
/// heard by each of `listeners`, and a subscriber to all of its live channels.
async fn listened_conversation(
    conversation: &str,
    listeners: &[&str],
) -> (RedisServer, Store, redis::aio::PubSub) {
    let redis = RedisServer::start().await;
    let store = connect_store(&redis).await;
    create_conversation(&store, conversation, "v_1").await;
    for node in listeners {
        assert!(store.listen(conversation, node).await.expect("listen"));
    }
    let subscriber = live_subscriber(&redis, conversation).await;
    (redis, store, subscriber)
}

/// The next message `subscriber` hears, within 10 s.
async fn next_published(subscriber: &mut redis::aio::PubSub) -> redis::Msg {
    use futures_util::StreamExt;
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        subscriber.on_message().next(),
    )
    .await
    .expect("published within 10 s")
    .expect("subscription open")
}

async fn stream_exists(redis: &RedisServer, key: &str) -> bool {
    let mut conn = redis::Client::open(redis.url())
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let exists: i64 = redis::cmd("EXISTS")
        .arg(key)
        .query_async(&mut conn)
        .await
        .expect("EXISTS");
    exists == 1
}

#[tokio::test]
async fn a_close_inside_a_batch_refuses_the_messages_after_it() {
    let redis = RedisServer::start().await;
    let store = connect_store(&redis).await;
    create_conversation(&store, "c_close", "v_1").await;

    let close = item("closing").updating(Update::State(ConversationState::Closed));
    let outcomes = append(&store, "c_close", &[item("before"), close, item("after")]).await;
    assert_eq!(
        outcomes,
        vec![
            AppendOutcome::Stored(2),
            AppendOutcome::Stored(3),
            AppendOutcome::WrongState,
        ]
    );
    let rating = item("rated").requiring(Requirement::ClosedUnrated);
    let outcomes = append(&store, "c_close", &[rating]).await;
    assert_eq!(outcomes, vec![AppendOutcome::Stored(4)]);
    let again = item("rated twice").requiring(Requirement::ClosedUnrated);
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
    let outcomes = append(&store, "c_none", &[item("x"), item("y")]).await;
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
    let outcomes = append(&store, "c_lost", &[item("a"), item("b")]).await;
    assert_eq!(outcomes.last(), Some(&AppendOutcome::Stored(3)));
    // This node delivered up to 5; Redis, after losing 4 and 5, holds 3.
    let outcomes = append_above(&store, "c_lost", 5, &[item("c")]).await;
    assert_eq!(outcomes, vec![AppendOutcome::Stored(6)]);
    let seqs: Vec<u64> = stored_texts(&store, "c_lost")
        .await
        .into_iter()
        .map(|(seq, _)| seq)
        .collect();
    assert_eq!(seqs, vec![1, 2, 3, 6]);
    assert_eq!(last_seq(&store, "c_lost").await, 6);
}

/// A record's `last_seq`: the stream's top entry, which nothing else records.
async fn last_seq(store: &Store, id: &str) -> u64 {
    store
        .conversation(id)
        .await
        .expect("read conversation")
        .expect("the conversation exists")
        .last_seq
}

/// A writer that has not seen the whole stream (another node stored events it has not
/// read yet) stores nothing and learns how far the stream goes; on top of that it
/// stores.
#[tokio::test]
async fn a_writer_behind_the_stream_stores_nothing() {
    let redis = RedisServer::start().await;
    let store = connect_store(&redis).await;
    create_conversation(&store, "c_behind", "v_1").await;
    let outcomes = append(&store, "c_behind", &[item("a"), item("b")]).await;
    assert_eq!(outcomes.last(), Some(&AppendOutcome::Stored(3)));
    assert_eq!(last_seq(&store, "c_behind").await, 3);
    // Refused whole, its state change too: the fence comes before any write.
    let late_close = item("late").updating(Update::State(ConversationState::Closed));
    assert_eq!(
        try_append(&store, "c_behind", 2, &[late_close]).await,
        Appended::Behind { last: 3 }
    );
    let record = store.conversation("c_behind").await.expect("read");
    assert!(
        record.is_some_and(|r| r.is_open()),
        "the late close was stored"
    );
    assert_eq!(
        try_append(&store, "c_behind", 3, &[item("c")]).await,
        Appended::Done(vec![AppendOutcome::Stored(4)])
    );
    let texts = stored_message_texts(&store, "c_behind").await;
    assert_eq!(texts, ["first", "a", "b", "c"]);
    assert_eq!(last_seq(&store, "c_behind").await, 4);
}

/// A rating behind the stream sets nothing: the chat can still be rated once on top.
#[tokio::test]
async fn a_rating_behind_the_stream_leaves_the_chat_unrated() {
    let redis = RedisServer::start().await;
    let store = connect_store(&redis).await;
    create_conversation(&store, "c_rate", "v_1").await;
    let close = item("bye").updating(Update::State(ConversationState::Closed));
    assert_eq!(
        append(&store, "c_rate", &[close]).await,
        vec![AppendOutcome::Stored(2)]
    );
    let rating = || item("rated").requiring(Requirement::ClosedUnrated);
    assert_eq!(
        try_append(&store, "c_rate", 1, &[rating()]).await,
        Appended::Behind { last: 2 }
    );
    assert_eq!(
        try_append(&store, "c_rate", 2, &[rating()]).await,
        Appended::Done(vec![AppendOutcome::Stored(3)])
    );
}

/// The plain append (one event, no field, no requirement for Redis): stored on top of
/// the stream the writer has read, refused whole behind it, and never making a stream
/// for a conversation that is gone.
#[tokio::test]
async fn a_plain_append_is_fenced_by_the_stream() {
    let redis = RedisServer::start().await;
    let store = connect_store(&redis).await;
    create_conversation(&store, "c_plain", "v_1").await;
    let json = |text: &str| StoredEvent::json(2, &customer_message("v_1", text)).expect("json");
    let plain = |expected: u64, text: &str| {
        let (store, stored) = (&store, json(text));
        async move {
            store
                .append_plain(
                    "c_plain",
                    "test-node",
                    expected,
                    &[PlainEvent {
                        stored: &stored,
                        note: "",
                    }],
                )
                .await
                .expect("append")
        }
    };
    match plain(1, "a").await {
        PlainAppended::Stored { seq, publication } => {
            assert_eq!(seq, 2);
            assert!(publication.is_empty(), "the storing node alone listens");
        }
        other => panic!("not stored: {other:?}"),
    }
    assert!(matches!(
        plain(1, "late").await,
        PlainAppended::Behind { last: 2 }
    ));
    assert!(matches!(
        plain(2, "b").await,
        PlainAppended::Stored { seq: 3, .. }
    ));
    let texts = stored_message_texts(&store, "c_plain").await;
    assert_eq!(texts, ["first", "a", "b"]);
    assert_eq!(last_seq(&store, "c_plain").await, 3);

    let gone = store
        .append_plain(
            "c_gone",
            "test-node",
            0,
            &[PlainEvent {
                stored: &json("x"),
                note: "",
            }],
        )
        .await
        .expect("append");
    assert!(matches!(gone, PlainAppended::NotFound), "{gone:?}");
    assert!(
        !stream_exists(&redis, "sb:{c_gone}:events").await,
        "a stream was made for a conversation that is gone"
    );
}

/// A plain append's event goes to every other listening node, in the form the feed
/// reads, with the note for a connection there; none to the node that stored it.
#[tokio::test]
async fn a_plain_append_is_published_to_the_other_listeners() {
    let (_redis, store, mut subscriber) = listened_conversation("c_pub", &["other-node"]).await;
    let stored = StoredEvent::json(2, &customer_message("v_1", "hi")).expect("json");
    let note = r#"{"req":"r1"}"#;
    let appended = store
        .append_plain(
            "c_pub",
            "test-node",
            1,
            &[PlainEvent {
                stored: &stored,
                note,
            }],
        )
        .await
        .expect("append");
    let PlainAppended::Stored {
        seq: 2,
        publication,
    } = appended
    else {
        panic!("not stored as seq 2: {appended:?}");
    };
    store.publish_live(publication).await.expect("publish");
    let message = next_published(&mut subscriber).await;
    assert_eq!(message.get_channel_name(), "sb:{c_pub}:live:other-node");
    let payload: String = message.get_payload().expect("text");
    assert_eq!(
        payload,
        format!("2 {} {} {note}{stored}", note.len(), stored.len())
    );
}

/// A batch of plain events goes in one call: stored as the next seqs on top of the
/// stream the writer has read, refused whole behind it (nothing of it stored), never
/// making a stream for a conversation that is gone, and published to the other listeners
/// as one message the feed reads event by event.
#[tokio::test]
async fn a_plain_batch_is_fenced_whole_and_published_as_one_message() {
    let (redis, store, mut subscriber) = listened_conversation("c_pb", &["other-node"]).await;
    let json = |text: &str| StoredEvent::json(2, &customer_message("v_1", text)).expect("json");
    let (a, b, c) = (json("a"), json("b"), json("c"));
    let batch = [
        PlainEvent {
            stored: &a,
            note: r#"{"req":"r1"}"#,
        },
        PlainEvent {
            stored: &b,
            note: "",
        },
        PlainEvent {
            stored: &c,
            note: "",
        },
    ];
    let appended = store
        .append_plain_batch("c_pb", "test-node", 1, &batch, false)
        .await
        .expect("append");
    let PlainAppended::Stored {
        seq: 2,
        publication,
    } = appended
    else {
        panic!("not stored from seq 2: {appended:?}");
    };
    store.publish_live(publication).await.expect("publish");
    let message = next_published(&mut subscriber).await;
    assert_eq!(message.get_channel_name(), "sb:{c_pb}:live:other-node");
    let payload: String = message.get_payload().expect("text");
    let note = r#"{"req":"r1"}"#;
    assert_eq!(
        payload,
        format!(
            "2 {} {} {note}{a}3 0 {} {b}4 0 {} {c}",
            note.len(),
            a.len(),
            b.len(),
            c.len()
        )
    );

    // A writer that has read up to seq 1 only is behind: nothing of its batch goes in.
    // (Writers append only on top of whole entries, and 2–4 are one: `store::entries`.)
    let behind = store
        .append_plain_batch("c_pb", "test-node", 1, &batch, false)
        .await
        .expect("append");
    assert!(
        matches!(behind, PlainAppended::Behind { last: 4 }),
        "{behind:?}"
    );
    let texts = stored_message_texts(&store, "c_pb").await;
    assert_eq!(texts, ["first", "a", "b", "c"]);
    assert_eq!(last_seq(&store, "c_pb").await, 4);

    // Gone, by the plain commands and by the script that publishes.
    for others_listen in [false, true] {
        let gone = store
            .append_plain_batch("c_pb_gone", "test-node", 0, &batch, others_listen)
            .await
            .expect("append");
        assert!(matches!(gone, PlainAppended::NotFound), "{gone:?}");
    }
    assert!(
        !stream_exists(&redis, "sb:{c_pb_gone}:events").await,
        "a stream was made for a conversation that is gone"
    );
}

/// A writer that knows other nodes listen has the append publish the hint in the same
/// call, for a lone event too: each other listener hears it once, the storing node never,
/// a refused append publishes nothing, and the answer says whether others still listen.
#[tokio::test]
async fn a_plain_append_that_knows_others_listen_publishes_in_its_own_call() {
    let (_redis, store, mut subscriber) =
        listened_conversation("c_pi", &["test-node", "other-node"]).await;
    let json = |text: &str| StoredEvent::json(2, &customer_message("v_1", text)).expect("json");
    let (a, b, c) = (json("a"), json("b"), json("c"));
    let event = |stored| PlainEvent { stored, note: "" };

    let lone = store
        .append_plain_batch("c_pi", "test-node", 1, &[event(&a)], true)
        .await
        .expect("append");
    let PlainAppended::Stored {
        seq: 2,
        publication,
    } = lone
    else {
        panic!("not stored as seq 2: {lone:?}");
    };
    assert!(
        publication.is_empty(),
        "published already, nothing left to send"
    );
    assert!(publication.others_listen());

    // Behind the stream: refused, and nothing is published.
    let behind = store
        .append_plain_batch("c_pi", "test-node", 1, &[event(&b)], true)
        .await
        .expect("append");
    assert!(
        matches!(behind, PlainAppended::Behind { last: 2 }),
        "{behind:?}"
    );

    let batch = store
        .append_plain_batch("c_pi", "test-node", 2, &[event(&b), event(&c)], true)
        .await
        .expect("append");
    assert!(
        matches!(batch, PlainAppended::Stored { seq: 3, .. }),
        "{batch:?}"
    );

    // Heard in order, each once, only on the other node's channel: a publish to the
    // storing node or of the refused append would come between.
    for expected in [
        format!("2 0 {} {a}", a.len()),
        format!("3 0 {} {b}4 0 {} {c}", b.len(), c.len()),
    ] {
        let message = next_published(&mut subscriber).await;
        assert_eq!(message.get_channel_name(), "sb:{c_pi}:live:other-node");
        let payload: String = message.get_payload().expect("text");
        assert_eq!(payload, expected);
    }
    let texts = stored_message_texts(&store, "c_pi").await;
    assert_eq!(texts, ["first", "a", "b", "c"]);

    // A node alone: the answer says nobody else listens, so the next append goes plain.
    create_conversation(&store, "c_alone", "v_2").await;
    assert!(store.listen("c_alone", "test-node").await.expect("listen"));
    let alone = store
        .append_plain_batch("c_alone", "test-node", 1, &[event(&a)], true)
        .await
        .expect("append");
    let PlainAppended::Stored { publication, .. } = alone else {
        panic!("not stored: {alone:?}");
    };
    assert!(publication.is_empty() && !publication.others_listen());
}
