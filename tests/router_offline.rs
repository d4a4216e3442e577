//! Offers never go to, or stay with, an agent who went offline.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

#[tokio::test]
async fn an_offer_held_by_an_agent_who_drops_goes_to_the_next_agent_at_once() {
    let (_redis, hub) = setup_with(TestConfig::default().offer_timeout_ms(60_000)).await;
    let (mut alice, _) = hub.available_agent("alice", "Alice", &[], 2).await;
    let (mut customer, _) = hub.customer(json!({"name": "Ann"})).await;
    let conv = customer.start_chat("general", "anyone there?").await;
    let offer = alice.wait_offer().await;
    assert_eq!(offer["conversation_id"], conv.as_str());

    let (mut bob, _) = hub.available_agent("bob", "Bob", &[], 2).await;
    // Alice's socket dies with the offer unanswered (long before it would expire).
    alice.drop_connection();
    let offer = bob.wait_offer().await;
    assert_eq!(offer["conversation_id"], conv.as_str(), "{offer}");
    bob.accept(&offer).await;
    customer
        .wait_for("bob joined", |f| {
            is_event(f, &conv, "joined") && f["agent"]["id"] == "bob"
        })
        .await;
}

#[tokio::test]
async fn an_agent_who_went_away_gets_no_offers() {
    let (_redis, hub) = setup().await;
    let (mut alice, _) = hub.available_agent("alice", "Alice", &[], 2).await;
    alice.ok(json!({"type": "status", "status": "away"})).await;
    let (mut customer, _) = hub.customer(json!({})).await;
    let conv = customer.start_chat("general", "hello?").await;
    alice
        .expect_no("an offer while away", Duration::from_millis(500), |f| {
            ty(f) == "offer"
        })
        .await;
    alice
        .ok(json!({"type": "status", "status": "available"}))
        .await;
    let offer = alice.wait_offer().await;
    assert_eq!(offer["conversation_id"], conv.as_str());
}
