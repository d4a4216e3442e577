//! Tickets: a closed conversation becomes a ticket (readable over HTTP, transcript with
//! notes), ratings after close, and the offline form.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

async fn ticket(hub: &Hub, id: &str) -> Value {
    let path = format!("/v1/tickets/{id}");
    eventually(&format!("GET {path} to answer 200"), WAIT, || async {
        let (status, body) = hub.http_json("GET", &path, Some(ADMIN_TOKEN), None).await;
        (status == 200).then_some(body)
    })
    .await
}

#[tokio::test]
async fn closed_conversation_becomes_a_ticket_with_the_full_transcript() {
    let (_redis, hub) = setup().await;
    let Chat {
        mut customer,
        mut agent,
        conversation_id: conv,
        ..
    } = chat(&hub).await;
    agent
        .ok(json!({"type": "note", "conversation_id": conv, "text": "vip customer"}))
        .await;
    agent.say(&conv, "done!").await;
    let closed = agent
        .ok(
            json!({"type": "close", "conversation_id": conv, "resolution": "resolved",
                   "tags": ["refund"]}),
        )
        .await;
    let id = closed["ticket_id"].as_str().expect("ticket_id").to_string();
    customer.wait_event(&conv, "closed").await;

    let ticket = ticket(&hub, &id).await;
    assert_eq!(ticket["ticket_id"], id.as_str(), "{ticket}");
    assert_eq!(ticket["conversation_id"], conv.as_str(), "{ticket}");
    assert_eq!(ticket["topic"], "general", "{ticket}");
    assert_eq!(ticket["resolution"], "resolved", "{ticket}");
    assert_eq!(ticket["tags"], json!(["refund"]), "{ticket}");
    let agents = ticket["agents"].to_string();
    assert!(agents.contains("alice"), "agents: {ticket}");
    for field in ["opened_at", "closed_at", "wait_ms", "first_response_ms"] {
        assert!(ticket[field].is_u64(), "{field}: {ticket}");
    }
    let transcript = ticket["transcript"]
        .as_array()
        .unwrap_or_else(|| panic!("no transcript: {ticket}"));
    assert_eq!(seqs(transcript), vec![1, 2, 3, 4, 5], "{ticket}");
    assert_eq!(
        kinds(transcript),
        vec!["message", "joined", "note", "message", "closed"],
        "the transcript holds every event, notes included"
    );
}

#[tokio::test]
async fn rating_after_close_is_stored_for_agents_only() {
    let (_redis, hub) = setup().await;
    let Chat {
        mut customer,
        mut agent,
        conversation_id: conv,
        ..
    } = chat(&hub).await;
    let closed = customer
        .ok(json!({"type": "close", "conversation_id": conv, "resolution": "resolved"}))
        .await;
    let rated = customer
        .ok(json!({"type": "rate", "conversation_id": conv, "score": 5, "comment": "quick!"}))
        .await;
    assert_eq!(rated["seq"], 4, "rate ack: {rated}");
    customer
        .err(
            json!({"type": "rate", "conversation_id": conv, "score": 9}),
            "bad_request",
        )
        .await;

    let events = agent.history(&conv, 0).await;
    let rating = events
        .iter()
        .find(|e| e["kind"] == "rating")
        .unwrap_or_else(|| panic!("no rating in the agent's history: {events:?}"));
    assert_eq!(rating["score"], 5, "{rating}");
    assert_eq!(rating["comment"], "quick!", "{rating}");
    let events = customer.history(&conv, 0).await;
    assert!(
        !events.iter().any(|e| e["kind"] == "rating"),
        "ratings are for agents and supervisors: {events:?}"
    );

    let id = closed["ticket_id"].as_str().expect("ticket_id");
    let ticket = eventually(
        "the ticket to carry the rating",
        Duration::from_secs(5),
        || async {
            let ticket = ticket(&hub, id).await;
            (!ticket["rating"].is_null()).then_some(ticket)
        },
    )
    .await;
    assert_eq!(ticket["rating"]["score"], 5, "{ticket}");
}

#[tokio::test]
async fn offline_message_becomes_a_ticket_at_once() {
    let (_redis, hub) = setup().await;
    let (mut customer, welcome) = hub.customer(json!({})).await;
    assert_eq!(welcome["online"], false, "{welcome}");
    customer
        .err(
            json!({"type": "offline_message", "topic": "billing", "name": "Ann",
                   "text": "no email given"}),
            "bad_request",
        )
        .await;
    let ack = customer
        .ok(
            json!({"type": "offline_message", "topic": "billing", "name": "Ann",
                   "email": "a@x.io", "text": "Please call me back"}),
        )
        .await;
    let id = ack["ticket_id"]
        .as_str()
        .unwrap_or_else(|| panic!("offline_message ack without ticket_id: {ack}"));
    let ticket = ticket(&hub, id).await;
    assert_eq!(ticket["resolution"], "offline_message", "{ticket}");
    let transcript = ticket["transcript"]
        .as_array()
        .unwrap_or_else(|| panic!("no transcript: {ticket}"));
    assert_eq!(transcript.len(), 1, "one message: {ticket}");
    assert_eq!(transcript[0]["text"], "Please call me back", "{ticket}");
}
