//! Sticky routing: a verified customer's next conversation goes first to the agent who
//! served the last one, when that agent is free.
//!
//! The setup makes bob the winner by every other measure (higher skill level, more
//! capacity, idle longer); the control test shows the router does pick bob for a stranger.

mod common;

use common::*;
use serde_json::json;

/// alice serves `user`'s first conversation and closes it; bob is available all along.
/// Returns (alice, bob, customer).
async fn first_conversation_served_by_alice(hub: &Hub, user: &str) -> (Ws, Ws, Ws) {
    let (mut alice, _) = hub
        .available_agent("alice", "Alice", &[("billing", 1)], 1)
        .await;
    let (mut customer, _) = hub
        .customer(json!({"identity": identity(user, "Ann")}))
        .await;
    let conv1 = customer.start_chat("billing", "first question").await;
    let offer = alice.wait_offer_for(&conv1).await;
    assert_eq!(offer["customer"]["verified"], true, "{offer}");
    alice.accept(&offer).await;
    customer.wait_event(&conv1, "joined").await;

    let (bob, _) = hub
        .available_agent("bob", "Bob", &[("billing", 9)], 5)
        .await;
    alice
        .ok(json!({"type": "close", "conversation_id": conv1, "resolution": "resolved"}))
        .await;
    customer.wait_event(&conv1, "closed").await;
    (alice, bob, customer)
}

#[tokio::test]
async fn returning_verified_customer_is_offered_first_to_their_last_agent() {
    let (_redis, hub) = setup().await;
    let (mut alice, mut bob, mut customer) = first_conversation_served_by_alice(&hub, "u42").await;

    let conv2 = customer.start_chat("billing", "me again").await;
    let offer = alice.wait_offer_for(&conv2).await;
    alice.accept(&offer).await;
    let joined = customer.wait_event(&conv2, "joined").await;
    assert_eq!(joined["agent"]["id"], "alice", "{joined}");
    bob.ping().await;
    assert!(
        !bob.seen()
            .iter()
            .any(|f| ty(f) == "offer" && f["conversation_id"] == conv2.as_str()),
        "bob was offered the returning customer's conversation first"
    );
}

#[tokio::test]
async fn control_a_stranger_in_the_same_setup_goes_to_bob() {
    let (_redis, hub) = setup().await;
    let (_alice, mut bob, _first) = first_conversation_served_by_alice(&hub, "u42").await;

    let (mut stranger, _) = hub
        .customer(json!({"identity": identity("u77", "Stranger")}))
        .await;
    let conv = stranger.start_chat("billing", "hello").await;
    let offer = bob.wait_offer_for(&conv).await;
    assert_eq!(offer["customer"]["verified"], true, "{offer}");
}
