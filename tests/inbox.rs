//! The inbox of offline messages (issue 18): what customers leave through the widget's
//! offline form reaches the agents of its topic, newest first, until one marks it
//! handled. Real hub binary, real redis-server.

mod common;

use common::*;
use serde_json::{json, Value};

async fn leave(hub: &Hub, topic: &str, email: &str, text: &str) -> String {
    let (mut customer, _) = hub.customer(json!({})).await;
    let ack = customer
        .ok(json!({"type": "offline_message", "topic": topic, "name": "Nina", "email": email, "text": text}))
        .await;
    ack["ticket_id"].as_str().expect("ticket_id").to_string()
}

async fn inbox(hub: &Hub, token: &str, query: &str) -> Value {
    let (status, body) = hub
        .http_json("GET", &format!("/v1/inbox{query}"), Some(token), None)
        .await;
    assert_eq!(status, 200, "GET /v1/inbox{query}: {body}");
    body
}

fn ids(body: &Value) -> Vec<String> {
    body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["ticket_id"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn offline_messages_wait_in_their_topics_inbox_until_handled() {
    let (_redis, hub) = setup().await;
    let general = hub.create_agent("gus", "Gus", &[], 2, false).await;
    let billing = hub
        .create_agent("bea", "Bea", &[("billing", 3)], 2, false)
        .await;
    let lead = hub
        .create_agent_with(
            json!({"id": "sue", "name": "Sue", "skills": {}, "capacity": 2, "supervisor": true}),
        )
        .await;

    let first = leave(&hub, "general", "one@x.io", "Please call me back").await;
    let second = leave(&hub, "billing", "two@x.io", "Refund for order 77?").await;

    // Newest first; each sees the topics it could be offered.
    let all = inbox(&hub, &lead, "").await;
    assert_eq!(ids(&all), vec![second.clone(), first.clone()], "{all}");
    assert_eq!(all["open"], 2);
    let message = &all["messages"][0];
    assert_eq!(message["text"], "Refund for order 77?");
    assert_eq!(message["customer"]["email"], "two@x.io");
    assert_eq!(message["customer"]["name"], "Nina");
    assert_eq!(message["topic"], "billing");
    assert!(message["left_at"].as_u64().is_some(), "{message}");
    assert_eq!(
        ids(&inbox(&hub, &billing, "").await),
        vec![second.clone(), first.clone()]
    );
    assert_eq!(ids(&inbox(&hub, &general, "").await), vec![first.clone()]);

    // Bea handles the billing message: it moves to the handled list, with who and when.
    let path = format!("/v1/inbox/{second}");
    let (status, body) = hub
        .http_json(
            "PATCH",
            &path,
            Some(&billing),
            Some(json!({"handled": true})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&inbox(&hub, &lead, "").await), vec![first.clone()]);
    let done = inbox(&hub, &lead, "?state=done").await;
    assert_eq!(ids(&done), vec![second.clone()]);
    assert_eq!(done["messages"][0]["handled_by"], "bea");
    assert!(done["messages"][0]["handled_at"].as_u64().is_some());
    assert_eq!(done["open"], 1);
    // Again: no change, no error. Back to open: it returns in its place.
    let (status, _) = hub
        .http_json(
            "PATCH",
            &path,
            Some(&billing),
            Some(json!({"handled": true})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = hub
        .http_json("PATCH", &path, Some(&lead), Some(json!({"handled": false})))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        ids(&inbox(&hub, &lead, "").await),
        vec![second.clone(), first.clone()]
    );
    assert!(ids(&inbox(&hub, &lead, "?state=done").await).is_empty());

    // Gus may not touch a billing message; bad requests are clear.
    let (status, body) = hub
        .http_json(
            "PATCH",
            &path,
            Some(&general),
            Some(json!({"handled": true})),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    let (status, _) = hub
        .http_json(
            "PATCH",
            "/v1/inbox/t_999999",
            Some(&lead),
            Some(json!({"handled": true})),
        )
        .await;
    assert_eq!(status, 404);
    let (status, body) = hub
        .http_json("PATCH", &path, Some(&lead), Some(json!({"handled": "yes"})))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("bad_request")),
        "{body}"
    );
    let (status, _) = hub
        .http_json("GET", "/v1/inbox?state=maybe", Some(&lead), None)
        .await;
    assert_eq!(status, 400);
    let (status, _) = hub.http_json("GET", "/v1/inbox", None, None).await;
    assert_eq!(status, 401);

    // A chat's ticket is not an offline message: it never enters the inbox.
    let Chat {
        mut agent,
        mut customer,
        conversation_id,
        ..
    } = chat(&hub).await;
    agent
        .ok(json!({"type": "close", "conversation_id": conversation_id}))
        .await;
    customer.wait_event(&conversation_id, "closed").await;
    assert_eq!(inbox(&hub, &lead, "").await["open"], 2);
}
