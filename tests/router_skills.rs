//! Routing by skills: a topic's skills are all required of the agent, and bullseye
//! widening drops some of them after the topic's `expand.after_ms`.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use tokio::time::Instant;

#[tokio::test]
async fn billing_conversation_goes_only_to_an_agent_with_the_billing_skill() {
    let (_redis, hub) = setup().await;
    // Capacity 1: whatever it is offered first is what the router matched it with.
    let (mut gina, _) = hub.available_agent("gina", "Gina", &[], 1).await;

    let (mut payer, _) = hub.customer(json!({"name": "Payer"})).await;
    let billing = payer.start_chat("billing", "my invoice is wrong").await;
    let queue = payer
        .wait_for("queue for the billing conversation", |f| {
            ty(f) == "queue" && f["conversation_id"] == billing.as_str()
        })
        .await;
    assert_eq!(queue["position"], 1, "{queue}");

    // A general conversation started after it is gina's first offer: the billing one,
    // although older, does not match her skills.
    let (mut other, _) = hub.customer(json!({"name": "Other"})).await;
    let general = other.start_chat("general", "just a question").await;
    let first = gina.wait_offer().await;
    assert_eq!(
        first["conversation_id"],
        general.as_str(),
        "gina (no billing skill) was offered {first}"
    );

    // Once an agent with the skill is available, it gets the billing conversation.
    let (mut bill, _) = hub
        .available_agent("bill", "Bill", &[("billing", 5)], 3)
        .await;
    let offer = bill.wait_offer_for(&billing).await;
    assert_eq!(offer["topic"], "billing", "{offer}");
    bill.accept(&offer).await;
    let joined = payer.wait_event(&billing, "joined").await;
    assert_eq!(joined["agent"]["id"], "bill", "{joined}");

    assert!(
        !gina
            .seen()
            .iter()
            .any(|f| ty(f) == "offer" && f["conversation_id"] == billing.as_str()),
        "gina was offered the billing conversation: {:?}",
        gina.seen()
    );
}

#[tokio::test]
async fn billing_fr_goes_at_once_to_an_agent_with_both_skills() {
    let (_redis, hub) = setup().await;
    let (mut bill, _) = hub
        .available_agent("bill", "Bill", &[("billing", 5)], 3)
        .await;
    let (mut francoise, _) = hub
        .available_agent("francoise", "Françoise", &[("billing", 5), ("fr", 5)], 3)
        .await;

    let (mut client, _) = hub.customer(json!({"name": "Client"})).await;
    let started = Instant::now();
    let conv = client.start_chat("billing_fr", "ma facture").await;
    let offer = francoise.wait_offer_for(&conv).await;
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "an exact match must not wait for widening ({:?})",
        started.elapsed()
    );
    assert_eq!(offer["priority"], 5, "{offer}");
    francoise.accept(&offer).await;
    client.wait_event(&conv, "joined").await;

    bill.ping().await;
    assert!(
        !bill.seen().iter().any(|f| ty(f) == "offer"),
        "bill (no fr) was offered: {:?}",
        bill.seen()
    );
}

#[tokio::test]
async fn billing_fr_widens_to_billing_only_after_the_expand_time() {
    let (_redis, hub) = setup().await;
    let (mut bill, _) = hub
        .available_agent("bill", "Bill", &[("billing", 5)], 3)
        .await;

    let (mut client, _) = hub.customer(json!({"name": "Client"})).await;
    let started = Instant::now();
    let conv = client.start_chat("billing_fr", "ma facture").await;
    // The topic drops `fr` after 1500 ms.
    let offer = bill
        .wait_for_within("the widened offer", Duration::from_secs(6), |f| {
            ty(f) == "offer" && f["conversation_id"] == conv.as_str()
        })
        .await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1450),
        "offered to a billing-only agent after {waited:?}, before the 1500 ms expand time"
    );
    let waited_ms = offer["waited_ms"].as_u64().unwrap_or(0);
    assert!(
        (1400..6000).contains(&waited_ms),
        "waited_ms should reflect the wait: {offer}"
    );
    bill.accept(&offer).await;
    let joined = client.wait_event(&conv, "joined").await;
    assert_eq!(joined["agent"]["id"], "bill", "{joined}");
}

#[tokio::test]
async fn unknown_or_absent_topic_uses_the_default_topic() {
    let (_redis, hub) = setup().await;
    let (mut gina, _) = hub.available_agent("gina", "Gina", &[], 3).await;
    let (mut first, _) = hub.customer(json!({})).await;
    let conv = first.start_chat("no-such-topic", "hello").await;
    let offer = gina.wait_offer_for(&conv).await;
    assert_eq!(offer["topic"], "general", "{offer}");

    let (mut second, _) = hub.customer(json!({})).await;
    let ack = second
        .ok(json!({"type": "start", "text": "no topic at all"}))
        .await;
    let conv = ack["conversation_id"].as_str().expect("conversation_id");
    let offer = gina.wait_offer_for(conv).await;
    assert_eq!(offer["topic"], "general", "{offer}");
}
