//! Supervisors: `monitor` a conversation without joining (notes included), and note or
//! close any conversation; plain agents may not.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn supervisor_monitors_notes_and_closes_any_conversation() {
    let (_redis, hub) = setup().await;
    let Chat {
        mut customer,
        mut agent,
        conversation_id: conv,
        ..
    } = chat(&hub).await;
    let (mut sue, _) = hub.supervisor("sue", "Sue").await;

    let ack = sue
        .ok(json!({"type": "monitor", "conversation_id": conv}))
        .await;
    assert_eq!(ack["conversation_id"], conv.as_str(), "{ack}");
    assert_eq!(ack["last_seq"], 2, "{ack}");

    let note = agent
        .ok(json!({"type": "note", "conversation_id": conv, "text": "alice's note"}))
        .await;
    let seen = sue.wait_seq(&conv, seq_of(&note)).await;
    assert_eq!(seen["kind"], "note", "monitors see notes: {seen}");

    let note = sue
        .ok(json!({"type": "note", "conversation_id": conv, "text": "sue's note"}))
        .await;
    let seen = agent.wait_seq(&conv, seq_of(&note)).await;
    assert_eq!(seen["from"]["id"], "sue", "{seen}");

    // Monitoring is not joining: the customer saw no join, and no notes.
    let seq = agent.say(&conv, "back to you").await;
    customer.wait_seq(&conv, seq).await;
    let events = customer.history(&conv, 0).await;
    assert_eq!(
        kinds(&events),
        vec!["message", "joined", "message"],
        "{events:?}"
    );

    sue.ok(json!({"type": "unmonitor", "conversation_id": conv}))
        .await;
    let closed = sue
        .ok(json!({"type": "close", "conversation_id": conv, "resolution": "resolved"}))
        .await;
    assert!(closed["ticket_id"].is_string(), "{closed}");
    let event = customer.wait_event(&conv, "closed").await;
    assert_eq!(event["by"]["id"], "sue", "{event}");
}

#[tokio::test]
async fn plain_agent_may_not_monitor_or_touch_others_conversations() {
    let (_redis, hub) = setup().await;
    let Chat {
        conversation_id: conv,
        ..
    } = chat(&hub).await;
    let (mut bob, _) = hub.available_agent("bob", "Bob", &[], 3).await;
    bob.err(
        json!({"type": "monitor", "conversation_id": conv}),
        "forbidden",
    )
    .await;
    bob.err(
        json!({"type": "note", "conversation_id": conv, "text": "sneaky"}),
        "forbidden",
    )
    .await;
    bob.err(
        json!({"type": "message", "conversation_id": conv, "text": "sneaky"}),
        "forbidden",
    )
    .await;
    bob.err(
        json!({"type": "close", "conversation_id": conv, "resolution": "resolved"}),
        "forbidden",
    )
    .await;
}
