//! Offers: decline passes the conversation on, an unanswered offer expires and is
//! re-offered, and an agent that lets `max_missed_offers` expire in a row is set away.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use tokio::time::Instant;

fn offers_for<'a>(ws: &'a Ws, conv: &str) -> Vec<&'a Value> {
    ws.seen()
        .iter()
        .filter(|f| ty(f) == "offer" && f["conversation_id"] == conv)
        .collect()
}

#[tokio::test]
async fn declined_offer_goes_to_the_next_agent() {
    let (_redis, hub) = setup().await;
    let (mut ann, _) = hub.available_agent("ann", "Ann", &[], 3).await;
    let (mut customer, _) = hub.customer(json!({"name": "Carl"})).await;
    let conv = customer.start_chat("general", "help please").await;
    let offer = ann.wait_offer_for(&conv).await;

    let (mut ben, _) = hub.available_agent("ben", "Ben", &[], 3).await;
    let ack = ann
        .ok(json!({"type": "decline", "offer_id": offer["offer_id"]}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");

    let offer2 = ben.wait_offer_for(&conv).await;
    ben.accept(&offer2).await;
    let joined = customer.wait_event(&conv, "joined").await;
    assert_eq!(joined["agent"]["id"], "ben", "{joined}");
    assert_eq!(
        offers_for(&ann, &conv).len(),
        1,
        "ann declined and must not be offered it again while ben can take it"
    );
}

#[tokio::test]
async fn unanswered_offer_expires_and_goes_to_the_next_agent() {
    let (_redis, hub) = setup_with(TestConfig::default().offer_timeout_ms(1000)).await;
    let (mut ann, _) = hub.available_agent("ann", "Ann", &[], 3).await;
    let (mut customer, _) = hub.customer(json!({"name": "Carl"})).await;
    let conv = customer.start_chat("general", "help please").await;
    let offer = ann.wait_offer_for(&conv).await;
    let offered = Instant::now();
    let expires = offer["expires_ms"].as_u64().unwrap_or(0);
    assert!(
        expires > 0 && expires <= 1000,
        "expires_ms within the 1000 ms offer timeout: {offer}"
    );

    let (mut ben, _) = hub.available_agent("ben", "Ben", &[], 3).await;
    let revoked = ann
        .wait_for("the offer's expiry", |f| {
            ty(f) == "offer_revoked" && f["offer_id"] == offer["offer_id"]
        })
        .await;
    assert_eq!(revoked["reason"], "expired", "{revoked}");
    assert!(
        offered.elapsed() >= Duration::from_millis(800),
        "revoked after {:?}, before expires_ms",
        offered.elapsed()
    );

    let offer2 = ben.wait_offer_for(&conv).await;
    assert_ne!(offer2["offer_id"], offer["offer_id"]);
    // A late accept of the expired offer fails.
    let late = ann
        .request(json!({"type": "accept", "offer_id": offer["offer_id"]}))
        .await;
    assert!(
        ty(&late) == "error" && (late["code"] == "not_found" || late["code"] == "conflict"),
        "accepting an expired offer must fail: {late}"
    );
    ben.accept(&offer2).await;
    let joined = customer.wait_event(&conv, "joined").await;
    assert_eq!(joined["agent"]["id"], "ben", "{joined}");
}

#[tokio::test]
async fn agent_that_lets_two_offers_expire_is_set_away() {
    let (_redis, hub) = setup_with(TestConfig::default().offer_timeout_ms(800)).await;
    let (mut ann, _) = hub.available_agent("ann", "Ann", &[], 3).await;
    let (mut c1, _) = hub.customer(json!({"name": "One"})).await;
    let conv1 = c1.start_chat("general", "one").await;
    let (mut c2, _) = hub.customer(json!({"name": "Two"})).await;
    let conv2 = c2.start_chat("general", "two").await;

    let away = ann
        .wait_for_within(
            "status away after missed offers",
            Duration::from_secs(8),
            |f| ty(f) == "status" && f["status"] == "away",
        )
        .await;
    assert_eq!(away["reason"], "missed_offers", "{away}");

    // Exactly two offers expired before it, and none was answered.
    let position = |pred: &dyn Fn(&Value) -> bool| ann.seen().iter().position(pred);
    let away_at = position(&|f| ty(f) == "status" && f["status"] == "away").expect("seen");
    let expired_before = ann.seen()[..away_at]
        .iter()
        .filter(|f| ty(f) == "offer_revoked" && f["reason"] == "expired")
        .count();
    assert_eq!(
        expired_before,
        2,
        "away after max_missed_offers = 2 expired offers: {:?}",
        ann.seen()
    );

    let (_, list) = hub
        .http_json("GET", "/v1/agents", Some(ADMIN_TOKEN), None)
        .await;
    let entry = list["agents"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["id"] == "ann"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(entry["status"], "away", "{list}");

    // Available again: the waiting conversations come back to her.
    ann.go_available().await;
    let offer = ann.wait_offer().await;
    assert!(
        offer["conversation_id"] == conv1.as_str() || offer["conversation_id"] == conv2.as_str(),
        "{offer}"
    );
}

#[tokio::test]
async fn auto_accept_agent_is_assigned_without_an_offer() {
    let (_redis, hub) = setup().await;
    let token = hub.create_agent("otto", "Otto", &[], 3, true).await;
    let (mut otto, _) = hub.agent(&token).await;
    otto.go_available().await;
    let (mut customer, _) = hub.customer(json!({"name": "Carl"})).await;
    let conv = customer.start_chat("general", "hi").await;

    let joined = otto.wait_event(&conv, "joined").await;
    assert_eq!(joined["agent"]["id"], "otto", "{joined}");
    customer.wait_event(&conv, "joined").await;
    assert!(
        !otto.seen().iter().any(|f| ty(f) == "offer"),
        "an auto-accept agent got an offer: {:?}",
        otto.seen()
    );
}

#[tokio::test]
async fn offer_is_revoked_when_the_customer_closes() {
    let (_redis, hub) = setup().await;
    let (mut ann, _) = hub.available_agent("ann", "Ann", &[], 3).await;
    let (mut customer, _) = hub.customer(json!({"name": "Carl"})).await;
    let conv = customer.start_chat("general", "never mind").await;
    let offer = ann.wait_offer_for(&conv).await;
    customer
        .ok(json!({"type": "close", "conversation_id": conv, "resolution": "resolved"}))
        .await;
    let revoked = ann
        .wait_for("the offer's withdrawal", |f| {
            ty(f) == "offer_revoked" && f["offer_id"] == offer["offer_id"]
        })
        .await;
    assert_eq!(revoked["reason"], "closed", "{revoked}");
    ann.err(
        json!({"type": "accept", "offer_id": offer["offer_id"]}),
        "not_found",
    )
    .await;
}
