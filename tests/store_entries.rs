//! The stream's entries (`store::entries`): a batch of plain events is one entry, and
//! every reader sees the events one by one, in seq order, whatever entry holds them.
//! Against a real Redis.

mod common;

use common::store_fixtures::{
    append_above, connect_store, create_conversation, customer_message, try_append, Append,
};
use common::*;
use switchboard::protocol::{EventBody, StoredEvent};
use switchboard::store::{Appended, PlainAppended, PlainEvent, Store};

fn text_of(body: &EventBody) -> String {
    match body {
        EventBody::Message { text, .. } => text.clone(),
        other => panic!("unexpected event {other:?}"),
    }
}

/// A lone plain message stored on top of `expected`.
async fn lone_message(
    store: &Store,
    conversation: &str,
    expected: u64,
    text: &str,
) -> PlainAppended {
    let stored = StoredEvent::json(2, &customer_message("v_1", text)).expect("json");
    store
        .append_plain(
            conversation,
            "node",
            expected,
            &[PlainEvent {
                stored: &stored,
                note: "",
            }],
        )
        .await
        .expect("append a lone message")
}

/// Seq 1 (the first message, alone), 2–6 (one batch entry), 7 (alone, plain), 8 (by the
/// append script).
async fn stream_of_mixed_entries(store: &Store, conversation: &str) {
    create_conversation(store, conversation, "v_1").await;
    let json = |text: &str| StoredEvent::json(2, &customer_message("v_1", text)).expect("json");
    let texts: Vec<String> = (2..=6).map(|seq| json(&format!("m{seq}"))).collect();
    let batch: Vec<PlainEvent<'_>> = texts
        .iter()
        .map(|stored| PlainEvent { stored, note: "" })
        .collect();
    let appended = store
        .append_plain_batch(conversation, "node", 1, &batch, false)
        .await
        .expect("append batch");
    assert!(
        matches!(appended, PlainAppended::Stored { seq: 2, .. }),
        "{appended:?}"
    );
    // The append script behind a batch entry learns the entry's last seq, not its first.
    let behind = try_append(
        store,
        conversation,
        1,
        &[Append::event(customer_message("v_1", "x"))],
    )
    .await;
    assert_eq!(behind, Appended::Behind { last: 6 });
    let lone = lone_message(store, conversation, 6, "m7").await;
    assert!(
        matches!(lone, PlainAppended::Stored { seq: 7, .. }),
        "{lone:?}"
    );
    append_above(
        store,
        conversation,
        7,
        &[Append::event(customer_message("v_1", "m8"))],
    )
    .await;
}

/// Every page a client may ask for holds exactly the events after its start, at most its
/// limit, with `more` exactly when events follow; the conversation task's pages end at
/// an entry's end; the record's `last_seq` is the top entry's last event; a gap in the
/// seqs is read across.
#[tokio::test]
async fn pages_read_events_one_by_one_through_batch_entries() {
    let redis = RedisServer::start().await;
    let store = connect_store(&redis).await;
    stream_of_mixed_entries(&store, "c_entries").await;
    let record = store
        .conversation("c_entries")
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(record.last_seq, 8);

    for after in 0..=8u64 {
        for limit in 1..=9usize {
            let (events, more) = store
                .history("c_entries", after, limit)
                .await
                .expect("page");
            let seqs: Vec<u64> = events.iter().map(|event| event.seq).collect();
            let expected: Vec<u64> = (after + 1..=8).take(limit).collect();
            assert_eq!(seqs, expected, "after {after}, limit {limit}");
            assert_eq!(
                more,
                after + (limit as u64) < 8,
                "more, after {after}, limit {limit}"
            );
            for event in events.iter().filter(|event| event.seq > 1) {
                assert_eq!(text_of(&event.body), format!("m{}", event.seq));
            }
            let (stored, stored_more) = store
                .stored_history("c_entries", after, limit)
                .await
                .expect("stored page");
            let stored_seqs: Vec<u64> = stored.iter().map(|entry| entry.seq).collect();
            assert_eq!(
                stored_seqs, expected,
                "stored, after {after}, limit {limit}"
            );
            assert_eq!(stored_more, more);
        }
    }

    // The task's reads: from inside the batch to its end, and past the limit if need be.
    let in_order = |after, limit| {
        let store = &store;
        async move {
            let (events, more) = store
                .history_in_order("c_entries", after, limit)
                .await
                .expect("page in order");
            (
                events.iter().map(|event| event.seq).collect::<Vec<_>>(),
                more,
            )
        }
    };
    assert_eq!(in_order(0, 1).await, (vec![1], true));
    assert_eq!(in_order(1, 1).await, (vec![2, 3, 4, 5, 6], true));
    assert_eq!(in_order(3, 1).await, (vec![4, 5, 6], true));
    assert_eq!(in_order(1, 6).await, (vec![2, 3, 4, 5, 6, 7], true));
    assert_eq!(in_order(6, 10).await, (vec![7, 8], false));
    assert_eq!(in_order(8, 10).await, (vec![], false));

    // Seqs lost in a failover leave a gap, and the writer goes on above it: a page that
    // starts in the gap reads on from the next entry, however wide the gap.
    let above = lone_message(&store, "c_entries", 20, "m21").await;
    assert!(
        matches!(above, PlainAppended::Stored { seq: 21, .. }),
        "{above:?}"
    );
    for (after, limit, seqs, more) in [
        (8, 5, vec![21], false),
        (8, 20, vec![21], false),
        (6, 3, vec![7, 8], true),
        (0, 100, vec![1, 2, 3, 4, 5, 6, 7, 8, 21], false),
    ] {
        let (events, page_more) = store
            .history("c_entries", after, limit)
            .await
            .expect("page");
        let page: Vec<u64> = events.iter().map(|event| event.seq).collect();
        assert_eq!(
            (page, page_more),
            (seqs, more),
            "after {after}, limit {limit}"
        );
    }
    assert_eq!(in_order(8, 5).await, (vec![21], false));
}
