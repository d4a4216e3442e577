//! A flush holds a closed chat's whole transcript in memory while it builds the ticket,
//! so all flushes together hold at most a budget of events (the end of a load test
//! closed 200 chats of 10,000 events together and the hub peaked near 1 GB), while
//! short chats still flush side by side (a budget counted in flushes let a steady 550
//! closes a second outrun the flushes and pile up).

mod common;

use std::time::Duration;

use common::store_fixtures::{
    append, connect_store, create_conversation, customer_message, Append,
};
use common::*;
use switchboard::{
    metrics::Metrics,
    protocol::{Party, Role},
    store::{AppendOutcome, Store},
    tickets::Tickets,
};

/// Creates a closed conversation of `events` events (the first message, messages, the
/// close) and returns its ticket id.
async fn closed_chat(store: &Store, id: &str, events: usize) -> String {
    let visitor = format!("v_{id}");
    create_conversation(store, id, &visitor).await;
    let ticket_id = format!("t_{id}");
    let mut items: Vec<Append> = (2..events)
        .map(|n| Append::event(customer_message(&visitor, &format!("m{n}"))))
        .collect();
    items.push(Append::closing(
        Party {
            role: Role::Customer,
            id: visitor.clone(),
            name: None,
        },
        &ticket_id,
    ));
    let outcomes = append(store, id, &items).await;
    assert_eq!(outcomes.last(), Some(&AppendOutcome::Stored(events as u64)));
    ticket_id
}

#[tokio::test]
async fn flushes_together_hold_at_most_the_transcript_budget() {
    const CHATS: usize = 12;
    const EVENTS: usize = 6;
    const BUDGET: u32 = 10;
    let redis = RedisServer::start().await;
    let store = connect_store(&redis).await;
    let mut tickets_ids = Vec::new();
    for i in 0..CHATS {
        tickets_ids.push(closed_chat(&store, &format!("c_wave_{i}"), EVENTS).await);
    }
    let tickets = Tickets::new(store.clone(), Metrics::new(), false).with_transcript_budget(BUDGET);

    // Redis frozen while the wave starts: every flush has read nothing yet, so when Redis
    // comes back all of them want their transcript at the same moment.
    redis.stop();
    let flushes: Vec<_> = (0..CHATS)
        .map(|i| {
            let tickets = tickets.clone();
            tokio::spawn(async move { tickets.flush(&format!("c_wave_{i}")).await })
        })
        .collect();
    tokio::task::yield_now().await;
    redis.cont();
    for flush in flushes {
        tokio::time::timeout(Duration::from_secs(20), flush)
            .await
            .expect("every flush finishes")
            .expect("flush task")
            .expect("flush");
    }

    assert!(
        tickets.peak_events_held() <= u64::from(BUDGET),
        "flushes held {} events at once, the budget is {BUDGET}",
        tickets.peak_events_held()
    );
    assert_eq!(
        tickets.peak_events_held(),
        EVENTS as u64,
        "one 6-event transcript fits in a budget of 10, two do not"
    );
    for ticket_id in &tickets_ids {
        let ticket = store.ticket(ticket_id).await.expect("read ticket");
        assert!(ticket.is_some(), "ticket {ticket_id} stored");
    }
}

#[tokio::test]
async fn a_transcript_longer_than_the_budget_is_flushed_alone() {
    let redis = RedisServer::start().await;
    let store = connect_store(&redis).await;
    let ticket_id = closed_chat(&store, "c_long", 30).await;
    let tickets = Tickets::new(store.clone(), Metrics::new(), false).with_transcript_budget(10);
    tokio::time::timeout(Duration::from_secs(20), tickets.flush("c_long"))
        .await
        .expect("the flush finishes")
        .expect("flush");
    assert_eq!(tickets.peak_events_held(), 10, "it takes the whole budget");
    let ticket = store
        .ticket(&ticket_id)
        .await
        .expect("read ticket")
        .expect("ticket stored");
    let ticket: serde_json::Value = serde_json::from_str(&ticket).expect("ticket JSON");
    assert_eq!(
        ticket["transcript"].as_array().map(Vec::len),
        Some(30),
        "the whole transcript is on the ticket"
    );
}
