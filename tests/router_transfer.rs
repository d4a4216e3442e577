//! Transfers: the current agent keeps the conversation until the new one accepts; then the
//! new agent `joined` and the old one `left` (reason `transferred`). Nobody accepting in
//! the topic's transfer timeout gives the old agent `transfer_failed` and it keeps it.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

const NOTE: &str = "wants a refund over 500";

#[tokio::test]
async fn transfer_to_an_agent_hands_over_on_accept() {
    let (_redis, hub) = setup().await;
    let Chat {
        mut customer,
        mut agent,
        conversation_id: conv,
        ..
    } = chat(&hub).await;
    let (mut bob, _) = hub.available_agent("bob", "Bob", &[], 3).await;

    let ack = agent
        .ok(json!({"type": "transfer", "conversation_id": conv, "to_agent": "bob", "note": NOTE}))
        .await;
    assert_eq!(ack["seq"], 3, "transfer ack: {ack}");

    // The customer sees the transfer, never its note.
    let transfer = customer.wait_seq(&conv, 3).await;
    assert_eq!(transfer["kind"], "transfer", "{transfer}");
    assert_eq!(transfer["from_agent"], "alice", "{transfer}");
    assert_eq!(transfer["to_agent"], "bob", "{transfer}");
    assert!(
        transfer.get("note").is_none_or(|n| n.is_null()),
        "the transfer note reached the customer: {transfer}"
    );

    let offer = bob.wait_offer_for(&conv).await;
    assert_eq!(offer["transfer"]["from_agent"], "alice", "{offer}");
    assert_eq!(offer["transfer"]["note"], NOTE, "{offer}");

    // Until bob accepts, alice still owns it.
    let seq = customer.say(&conv, "hello?").await;
    agent.wait_seq(&conv, seq).await;

    bob.accept(&offer).await;
    let joined = customer.wait_event(&conv, "joined").await;
    let joined = if joined["agent"]["id"] == "alice" {
        customer.wait_event(&conv, "joined").await
    } else {
        joined
    };
    assert_eq!(joined["agent"]["id"], "bob", "{joined}");
    let left = customer.wait_event(&conv, "left").await;
    assert_eq!(left["agent"]["id"], "alice", "{left}");
    assert_eq!(left["reason"], "transferred", "{left}");
    assert!(
        seq_of(&joined) < seq_of(&left),
        "the new agent joins, then the old one leaves"
    );

    let seq = customer.say(&conv, "hi bob").await;
    bob.wait_seq(&conv, seq).await;

    let events = customer.history(&conv, 0).await;
    assert!(
        !events.iter().any(|e| e.to_string().contains(NOTE)),
        "customer history holds the transfer note: {events:?}"
    );
    let events = bob.history(&conv, 0).await;
    let transfer = events
        .iter()
        .find(|e| e["kind"] == "transfer")
        .unwrap_or_else(|| panic!("no transfer event in bob's history: {events:?}"));
    assert_eq!(transfer["note"], NOTE, "agents see the note: {transfer}");
}

#[tokio::test]
async fn transfer_to_a_topic_goes_to_an_agent_with_its_skills() {
    let (_redis, hub) = setup().await;
    let Chat {
        mut customer,
        mut agent,
        conversation_id: conv,
        ..
    } = chat(&hub).await;
    let (mut gina, _) = hub.available_agent("gina", "Gina", &[], 3).await;
    let (mut bill, _) = hub
        .available_agent("bill", "Bill", &[("billing", 5)], 3)
        .await;

    agent
        .ok(
            json!({"type": "transfer", "conversation_id": conv, "to_topic": "billing",
                   "note": NOTE}),
        )
        .await;
    let offer = bill.wait_offer_for(&conv).await;
    assert_eq!(offer["topic"], "billing", "{offer}");
    assert_eq!(offer["transfer"]["from_agent"], "alice", "{offer}");
    bill.accept(&offer).await;
    let left = customer.wait_event(&conv, "left").await;
    assert_eq!(left["agent"]["id"], "alice", "{left}");
    let events = customer.history(&conv, 0).await;
    let joined: Vec<_> = events
        .iter()
        .filter(|e| e["kind"] == "joined")
        .map(|e| e["agent"]["id"].clone())
        .collect();
    assert_eq!(joined, vec![json!("alice"), json!("bill")], "{events:?}");
    gina.ping().await;
    assert!(
        !gina
            .seen()
            .iter()
            .any(|f| ty(f) == "offer" && f["conversation_id"] == conv.as_str()),
        "gina has no billing skill but was offered the escalation"
    );
}

#[tokio::test]
async fn unanswered_transfer_fails_and_the_agent_keeps_the_conversation() {
    let (_redis, hub) = setup_with(TestConfig::default().transfer_timeout_ms(1000)).await;
    let Chat {
        mut customer,
        mut agent,
        conversation_id: conv,
        ..
    } = chat(&hub).await;
    let (mut bob, _) = hub.available_agent("bob", "Bob", &[], 3).await;

    agent
        .ok(json!({"type": "transfer", "conversation_id": conv, "to_agent": "bob", "note": NOTE}))
        .await;
    let offer = bob.wait_offer_for(&conv).await;
    let failed = agent
        .wait_for_within("transfer_failed", Duration::from_secs(6), |f| {
            ty(f) == "transfer_failed"
        })
        .await;
    assert_eq!(failed["conversation_id"], conv.as_str(), "{failed}");
    assert_eq!(failed["reason"], "timeout", "{failed}");

    // The offer is gone and alice still owns the conversation.
    bob.wait_for("the transfer offer withdrawn", |f| {
        ty(f) == "offer_revoked" && f["offer_id"] == offer["offer_id"]
    })
    .await;
    let seq = customer.say(&conv, "still there?").await;
    agent.wait_seq(&conv, seq).await;
    let events = customer.history(&conv, 0).await;
    assert!(
        !events.iter().any(|e| e["kind"] == "left"),
        "the customer was left without an owner: {events:?}"
    );
}
