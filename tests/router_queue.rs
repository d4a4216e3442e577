//! Queueing: capacity caps an agent's conversations, waiting customers get `queue`
//! positions, and a higher-priority topic is served first.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// alice (capacity 1) takes a first chat, so the next customers wait; returns her, that
/// first customer (kept connected) and its conversation id.
async fn busy_alice(hub: &Hub) -> (Ws, Ws, String) {
    let (mut alice, _) = hub.available_agent("alice", "Alice", &[], 1).await;
    let (mut busy, _) = hub.customer(json!({"name": "Busy"})).await;
    let conv0 = busy.start_chat("general", "keeping alice busy").await;
    assert_eq!(alice.accept_next_offer().await, conv0);
    (alice, busy, conv0)
}

/// Customer `name` starts a chat in `topic` and waits for its `queue` frame; returns the
/// customer, the conversation id and that frame.
async fn queued_customer(hub: &Hub, name: &str, topic: &str, text: &str) -> (Ws, String, Value) {
    let (mut customer, _) = hub.customer(json!({"name": name})).await;
    let conv = customer.start_chat(topic, text).await;
    let what = format!("the queue position of {name}'s conversation");
    let queue = customer
        .wait_for(&what, |f| {
            ty(f) == "queue" && f["conversation_id"] == conv.as_str()
        })
        .await;
    (customer, conv, queue)
}

#[tokio::test]
async fn agent_at_capacity_gets_no_offer_and_the_next_customer_waits_first_in_line() {
    let (_redis, hub) = setup().await;
    let (mut alice, _) = hub.available_agent("alice", "Alice", &[], 1).await;

    let (mut first, _) = hub.customer(json!({"name": "First"})).await;
    let conv1 = first.start_chat("general", "first!").await;
    assert_eq!(alice.accept_next_offer().await, conv1);
    first.wait_event(&conv1, "joined").await;

    let (mut second, conv2, queue) = queued_customer(&hub, "Second", "general", "second").await;
    assert_eq!(queue["position"], 1, "{queue}");
    assert!(queue["eta_ms"].is_u64(), "{queue}");

    // Alice is at capacity: the contract's capacity means no offer now.
    alice
        .expect_no(
            "an offer while at capacity",
            Duration::from_millis(700),
            |f| ty(f) == "offer",
        )
        .await;

    alice
        .ok(json!({"type": "close", "conversation_id": conv1, "resolution": "resolved"}))
        .await;
    let offer = alice.wait_offer_for(&conv2).await;
    alice.accept(&offer).await;
    let joined = second.wait_event(&conv2, "joined").await;
    assert_eq!(joined["agent"]["id"], "alice", "{joined}");
}

#[tokio::test]
async fn higher_priority_topic_is_served_first_when_an_agent_frees_up() {
    let (_redis, hub) = setup().await;
    let (mut alice, _busy, conv0) = busy_alice(&hub).await;

    let (_low, conv_low, queue) = queued_customer(&hub, "Low", "general", "no hurry").await;
    assert_eq!(queue["position"], 1, "{queue}");

    let (_high, conv_high, queue) = queued_customer(&hub, "High", "urgent", "urgent!").await;
    assert_eq!(
        queue["position"], 1,
        "priority 10 goes before priority 0: {queue}"
    );

    alice
        .ok(json!({"type": "close", "conversation_id": conv0, "resolution": "resolved"}))
        .await;
    let offer = alice.wait_offer().await;
    assert_eq!(
        offer["conversation_id"],
        conv_high.as_str(),
        "the urgent conversation must be offered first: {offer}"
    );
    assert_eq!(offer["priority"], 10, "{offer}");
    alice.accept(&offer).await;
    alice
        .ok(json!({"type": "close", "conversation_id": conv_high, "resolution": "resolved"}))
        .await;
    let offer = alice.wait_offer().await;
    assert_eq!(offer["conversation_id"], conv_low.as_str(), "{offer}");
}

#[tokio::test]
async fn waiting_customer_is_told_when_a_higher_priority_one_moves_ahead() {
    let (_redis, hub) = setup().await;
    // One agent who can serve both topics, busy: whoever is first in line is next.
    let (_alice, _busy, _conv0) = busy_alice(&hub).await;

    let (mut low, conv_low, queue) = queued_customer(&hub, "Low", "general", "no hurry").await;
    assert_eq!(queue["position"], 1, "{queue}");

    let (mut high, _) = hub.customer(json!({"name": "High"})).await;
    let conv_high = high.start_chat("urgent", "urgent!").await;
    high.wait_for("the high-priority customer's queue entry at 1", |f| {
        ty(f) == "queue" && f["conversation_id"] == conv_high.as_str() && f["position"] == 1
    })
    .await;
    // "whenever the position changes (at most once a second)": low is no longer next.
    low.wait_for("the low-priority customer's new position 2", |f| {
        ty(f) == "queue" && f["conversation_id"] == conv_low.as_str() && f["position"] == 2
    })
    .await;
}
