//! HTTP: health, readiness (tracks Redis), Prometheus metrics, and the agent admin API's
//! status codes and error bodies.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

#[tokio::test]
async fn healthz_is_200() {
    let (_redis, hub) = setup().await;
    let (status, body) = hub.get("/healthz").await;
    assert_eq!(status, 200, "healthz: {body}");
}

#[tokio::test]
async fn readyz_follows_redis() {
    let (mut redis, hub) = setup().await;
    let (status, body) = hub.get("/readyz").await;
    assert_eq!(status, 200, "readyz with Redis up: {body}");

    redis.kill();
    eventually("/readyz to answer 503 with Redis down", WAIT, || async {
        (hub.get("/readyz").await.0 == 503).then_some(())
    })
    .await;
    // Alive is not ready: healthz stays 200.
    assert_eq!(hub.get("/healthz").await.0, 200);

    redis.restart().await;
    eventually(
        "/readyz to answer 200 after Redis restarted",
        Duration::from_secs(20),
        || async { (hub.get("/readyz").await.0 == 200).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_a_connections_metric() {
    let (_redis, hub) = setup().await;
    let (_customer, _) = hub.customer(json!({})).await;
    let response = reqwest::get(hub.http_url("/metrics"))
        .await
        .expect("GET /metrics");
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(
        content_type.starts_with("text/plain"),
        "Prometheus text is served as text/plain, got {content_type:?}"
    );
    let body = response.text().await.expect("metrics body");

    let typed: Vec<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| name.contains("connection"))
        .collect();
    assert!(
        !typed.is_empty(),
        "no `# TYPE <..connection..>` metric in:\n{body}"
    );
    // With one customer connected, some connections sample is at least 1.
    let counted = body.lines().filter(|l| !l.starts_with('#')).any(|line| {
        let mut parts = line.split_whitespace();
        let (Some(name), Some(value)) = (parts.next(), parts.next()) else {
            return false;
        };
        typed.iter().any(|t| name.starts_with(t)) && value.parse::<f64>().is_ok_and(|v| v >= 1.0)
    });
    assert!(
        counted,
        "no connections sample >= 1 with a client connected:\n{body}"
    );
}

#[tokio::test]
async fn create_agent_status_codes_and_error_bodies() {
    let (_redis, hub) = setup().await;
    let body = json!({"id": "alice", "name": "Alice", "skills": {"billing": 5},
                      "capacity": 3, "supervisor": false, "auto_accept": false});

    let (status, reply) = hub
        .http_json("POST", "/v1/agents", None, Some(body.clone()))
        .await;
    assert_eq!(status, 401, "no token: {reply}");
    assert_eq!(reply["code"], "unauthorized", "{reply}");
    assert!(reply["message"].is_string(), "{reply}");

    let (status, reply) = hub
        .http_json("POST", "/v1/agents", Some("wrong"), Some(body.clone()))
        .await;
    assert_eq!(status, 401, "wrong token: {reply}");

    let token = hub
        .create_agent("alice", "Alice", &[("billing", 5)], 3, false)
        .await;
    let (status, reply) = hub
        .http_json("POST", "/v1/agents", Some(ADMIN_TOKEN), Some(body.clone()))
        .await;
    assert_eq!(status, 409, "duplicate id: {reply}");
    assert_eq!(reply["code"], "conflict", "{reply}");

    // An agent token is a valid bearer, but creating agents is for the admin.
    let mut bob = body.clone();
    bob["id"] = json!("bob");
    let (status, reply) = hub
        .http_json("POST", "/v1/agents", Some(&token), Some(bob))
        .await;
    assert_eq!(status, 403, "agent token on an admin endpoint: {reply}");
    assert_eq!(reply["code"], "forbidden", "{reply}");

    let mut bad = body;
    bad["id"] = json!("has spaces!");
    let (status, reply) = hub
        .http_json("POST", "/v1/agents", Some(ADMIN_TOKEN), Some(bad))
        .await;
    assert_eq!(status, 400, "an id outside [A-Za-z0-9_.-]: {reply}");
    assert_eq!(reply["code"], "bad_request", "{reply}");
}

fn agent_entry<'a>(list: &'a Value, id: &str) -> &'a Value {
    list["agents"]
        .as_array()
        .and_then(|agents| agents.iter().find(|a| a["id"] == id))
        .unwrap_or_else(|| panic!("GET /v1/agents does not list {id}: {list}"))
}

#[tokio::test]
async fn agent_list_shows_status_load_and_capacity() {
    let (_redis, hub) = setup().await;
    let token = hub.create_agent("alice", "Alice", &[], 2, false).await;
    let (status, list) = hub
        .http_json("GET", "/v1/agents", Some(ADMIN_TOKEN), None)
        .await;
    assert_eq!(status, 200, "{list}");
    let alice = agent_entry(&list, "alice");
    assert_eq!(alice["status"], "offline", "{alice}");
    assert_eq!(alice["capacity"], 2, "{alice}");
    assert_eq!(alice["load"], 0, "{alice}");

    let (mut agent, _) = hub.agent(&token).await;
    let (_, list) = hub
        .http_json("GET", "/v1/agents", Some(ADMIN_TOKEN), None)
        .await;
    assert_eq!(agent_entry(&list, "alice")["status"], "away", "{list}");

    agent.go_available().await;
    let (mut customer, _) = hub.customer(json!({})).await;
    let conv = customer.start_chat("general", "hi").await;
    let offer = agent.wait_offer_for(&conv).await;
    agent.accept(&offer).await;
    let (_, list) = hub
        .http_json("GET", "/v1/agents", Some(ADMIN_TOKEN), None)
        .await;
    let alice = agent_entry(&list, "alice");
    assert_eq!(alice["status"], "available", "{alice}");
    assert_eq!(alice["load"], 1, "{alice}");

    let (status, _) = hub.http_json("GET", "/v1/agents", None, None).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn deleting_an_agent_closes_its_sockets_4409_and_requeues_its_conversations() {
    let (_redis, hub) = setup().await;
    let Chat {
        mut customer,
        mut agent,
        conversation_id: conv,
        ..
    } = chat(&hub).await;
    let (mut bob, _) = hub.available_agent("bob", "Bob", &[], 3).await;

    let (status, body) = hub
        .http("DELETE", "/v1/agents/alice", Some(ADMIN_TOKEN), None)
        .await;
    assert_eq!(status, 204, "{body}");
    agent.expect_close(4409, WAIT).await;

    let left = customer.wait_event(&conv, "left").await;
    assert_eq!(left["agent"]["id"], "alice", "{left}");
    assert_eq!(left["reason"], "removed", "{left}");
    let offer = bob.wait_offer_for(&conv).await;
    bob.accept(&offer).await;
    customer.wait_event(&conv, "joined").await;
}

#[tokio::test]
async fn queued_conversations_are_listed() {
    let (_redis, hub) = setup().await;
    let (mut customer, _) = hub.customer(json!({})).await;
    let conv = customer.start_chat("billing", "anyone?").await;
    let (status, list) = hub
        .http_json(
            "GET",
            "/v1/conversations?state=queued",
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 200, "{list}");
    let listed = list["conversations"]
        .as_array()
        .unwrap_or_else(|| panic!("no conversations array: {list}"));
    assert!(
        listed.iter().any(|c| c["conversation_id"] == conv.as_str()),
        "{list}"
    );

    let (status, one) = hub
        .http_json(
            "GET",
            &format!("/v1/conversations/{conv}"),
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(seqs(one["events"].as_array().expect("events")), vec![1]);
    let (status, _) = hub
        .http_json("GET", "/v1/conversations?state=queued", None, None)
        .await;
    assert_eq!(status, 401);
}
