//! Tickets without a chat and over HTTP (issue 4): an offline message becomes a ticket at
//! once; tickets page in order with a cursor; one ticket by id; who may read tickets.
//!
//! Tickets of closed chats are in `tests/tickets.rs`.

mod common;

use common::extra::agent_ids;
use common::*;
use serde_json::json;

#[tokio::test]
async fn offline_message_becomes_a_ticket_at_once() {
    let (_redis, hub) = setup().await;
    let (mut customer, welcome) = hub.customer(json!({})).await;
    assert_eq!(welcome["online"], false, "no agent is online: {welcome}");

    customer
        .err(
            json!({"type": "offline_message", "topic": "billing", "name": "Ann", "text": "Call me"}),
            "bad_request",
        )
        .await;
    let ack = customer
        .ok(json!({
            "type": "offline_message", "topic": "billing", "name": "Ann",
            "email": "ann@example.com", "text": "Please call me back",
        }))
        .await;
    let ticket_id = ack["ticket_id"]
        .as_str()
        .unwrap_or_else(|| panic!("offline_message ack without ticket_id: {ack}"));

    // "At once": stored before the ack, so the first look finds it.
    let (status, ticket) = hub.ticket(ticket_id).await;
    assert_eq!(
        status, 200,
        "GET /v1/tickets/{ticket_id} right after the ack: {ticket}"
    );
    assert_eq!(ticket["ticket_id"], ticket_id, "{ticket}");
    assert_eq!(ticket["resolution"], "offline_message", "{ticket}");
    assert_eq!(ticket["topic"], "billing", "{ticket}");
    assert_eq!(ticket["customer"]["id"], welcome["visitor_id"], "{ticket}");
    assert!(
        ticket["customer"].to_string().contains("ann@example.com"),
        "the ticket must keep the email to answer: {ticket}"
    );
    let transcript = ticket["transcript"].as_array().expect("transcript");
    assert_eq!(transcript.len(), 1, "one message: {ticket}");
    assert_eq!(transcript[0]["kind"], "message", "{ticket}");
    assert_eq!(transcript[0]["text"], "Please call me back", "{ticket}");
    assert_eq!(agent_ids(&ticket), Vec::<String>::new(), "{ticket}");
    assert_eq!(hub.all_tickets().await.len(), 1);
}

#[tokio::test]
async fn tickets_page_in_order_with_a_cursor() {
    let (_redis, hub) = setup().await;
    let (mut customer, _) = hub.customer(json!({})).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let ack = customer
            .ok(json!({
                "type": "offline_message", "topic": "general", "name": "Ann",
                "email": "ann@example.com", "text": format!("message {n}"),
            }))
            .await;
        ids.push(ack["ticket_id"].as_str().expect("ticket_id").to_string());
    }

    let mut pages: Vec<Vec<String>> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = hub.tickets_page(after.as_deref(), 2).await;
        let tickets = page["tickets"].as_array().expect("tickets").clone();
        pages.push(
            tickets
                .iter()
                .map(|t| t["ticket_id"].as_str().unwrap_or("?").to_string())
                .collect(),
        );
        for ticket in &tickets {
            assert_eq!(ticket["resolution"], "offline_message", "{ticket}");
        }
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => break,
        }
        assert!(pages.len() < 10, "the cursor does not end: {pages:?}");
    }
    assert_eq!(
        pages,
        [ids[0..2].to_vec(), ids[2..4].to_vec(), ids[4..5].to_vec()],
        "pages of 2, oldest first"
    );

    // One ticket by id; who may read tickets.
    let (status, one) = hub.ticket(&ids[3]).await;
    assert_eq!(status, 200);
    assert_eq!(one["transcript"][0]["text"], "message 3", "{one}");
    assert_eq!(hub.ticket("t_999999").await.0, 404);
    let path = format!("/v1/tickets/{}", ids[0]);
    assert_eq!(hub.http("GET", &path, None, None).await.0, 401);
    let agent_token = hub.create_agent("alice", "Alice", &[], 3, false).await;
    assert_eq!(
        hub.http("GET", "/v1/tickets", Some(&agent_token), None)
            .await
            .0,
        403
    );
    let supervisor_token = hub.create_supervisor("sam", "Sam").await;
    let (status, page) = hub
        .http_json("GET", "/v1/tickets?limit=10", Some(&supervisor_token), None)
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["tickets"].as_array().map(Vec::len), Some(5), "{page}");
}
