//! Failed closes use up no ticket numbers (issue 15): a close refused because the
//! conversation is closed already, the closer is not a member, or there is no such
//! conversation takes no number from the ticket counter, so the next ticket is numbered
//! right after the last one.

mod common;

use common::*;
use serde_json::json;

fn number(ticket_id: &serde_json::Value) -> u64 {
    ticket_id
        .as_str()
        .and_then(|t| t.strip_prefix("t_"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a ticket id: {ticket_id}"))
}

#[tokio::test]
async fn refused_closes_take_no_ticket_number() {
    let (_redis, hub) = setup().await;
    let (mut ann, _) = hub.customer(json!({})).await;
    let first = ann.start_chat("general", "first").await;
    let ack = ann
        .ok(json!({"type": "close", "conversation_id": first}))
        .await;
    let before = number(&ack["ticket_id"]);

    let (mut bob, _) = hub.customer(json!({"name": "Bob"})).await;
    let second = bob.start_chat("general", "second").await;
    for _ in 0..5 {
        // Already closed.
        ann.err(
            json!({"type": "close", "conversation_id": first}),
            "conflict",
        )
        .await;
        // Not a member.
        ann.err(
            json!({"type": "close", "conversation_id": second}),
            "forbidden",
        )
        .await;
        // No such conversation.
        ann.err(
            json!({"type": "close", "conversation_id": "c_0000000000000000"}),
            "not_found",
        )
        .await;
    }
    let ack = bob
        .ok(json!({"type": "close", "conversation_id": second}))
        .await;
    assert_eq!(
        number(&ack["ticket_id"]),
        before + 1,
        "refused closes used up ticket numbers: {ack}"
    );
}

#[tokio::test]
async fn concurrent_closes_of_one_chat_take_one_number() {
    let (_redis, hub) = setup().await;
    let mut chat = chat(&hub).await;
    let id = chat.conversation_id.clone();
    // Both members close at once: one wins, the other is refused, one number is used.
    chat.customer
        .send(json!({"type": "close", "req": "c1", "conversation_id": id}))
        .await;
    chat.agent
        .send(json!({"type": "close", "req": "a1", "conversation_id": id}))
        .await;
    let from_customer = chat
        .customer
        .wait_for("close answer", |f| f["req"] == "c1")
        .await;
    let from_agent = chat
        .agent
        .wait_for("close answer", |f| f["req"] == "a1")
        .await;
    let (won, lost) = if ty(&from_customer) == "ack" {
        (from_customer, from_agent)
    } else {
        (from_agent, from_customer)
    };
    assert_eq!(ty(&won), "ack", "{won}");
    assert_eq!(lost["code"], "conflict", "{lost}");
    let (mut next, _) = hub.customer(json!({"name": "Cy"})).await;
    let other = next.start_chat("general", "next").await;
    let ack = next
        .ok(json!({"type": "close", "conversation_id": other}))
        .await;
    assert_eq!(number(&ack["ticket_id"]), number(&won["ticket_id"]) + 1);
}
