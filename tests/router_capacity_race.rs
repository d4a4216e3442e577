//! Capacity holds under a burst: many customers starting at once never give an agent
//! more conversations than its capacity, and the rest wait in a real queue.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

#[tokio::test]
async fn a_burst_of_customers_never_exceeds_capacity_and_the_rest_wait_in_line() {
    const CUSTOMERS: usize = 24;
    let (_redis, hub) = setup().await;
    // Auto-accept: no human in the loop to slow the race down.
    let token = hub.create_agent("alice", "Alice", &[], 3, true).await;
    let (mut alice, _) = hub.agent(&token).await;
    alice.go_available().await;

    let mut customers = Vec::new();
    for i in 0..CUSTOMERS {
        let (ws, _) = hub.customer(json!({"name": format!("c{i}")})).await;
        customers.push(ws);
    }
    let starts = customers.iter_mut().enumerate().map(|(i, ws)| async move {
        let conv = ws.start_chat("general", &format!("burst {i}")).await;
        (conv, ws)
    });
    let started = futures_util::future::join_all(starts).await;

    // Exactly three joins reach the agent; every other customer is told its place.
    let mut joined = Vec::new();
    for _ in 0..3 {
        let event = alice
            .wait_for("a join", |f| ty(f) == "event" && f["kind"] == "joined")
            .await;
        joined.push(
            event["conversation_id"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    let mut positions = Vec::new();
    for (conv, ws) in started {
        if joined.contains(&conv) {
            continue;
        }
        let queue = ws
            .wait_for("a queue position", |f| {
                ty(f) == "queue" && f["conversation_id"] == conv.as_str()
            })
            .await;
        positions.push(queue["position"].as_u64().unwrap_or(0));
    }
    assert_eq!(positions.len(), CUSTOMERS - 3);
    assert!(positions.iter().all(|p| *p >= 1), "{positions:?}");

    let (status, agents) = hub
        .http_json("GET", "/v1/agents", Some(ADMIN_TOKEN), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(agents["agents"][0]["load"], 3, "{agents}");
    alice
        .expect_no("a fourth join", Duration::from_millis(500), |f| {
            ty(f) == "event" && f["kind"] == "joined"
        })
        .await;
}
