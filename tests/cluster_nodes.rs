//! Several hubs on one Redis Cluster (`docs/protocol.md`, "Several nodes"): a customer on
//! one hub and an agent on another chat as on one node, and cutting every subscriber
//! connection on every master skips nothing.

mod common;

use std::time::Duration;

use common::{cluster::RedisCluster, nodes::*, *};
use serde_json::json;

/// Three hubs given the cluster's seed list; the first routes.
async fn hubs_on(cluster: &RedisCluster) -> Vec<Hub> {
    let config = TestConfig::default().to_toml();
    let ((a, a_id), (b, _)) = routing_and_other(&cluster.url_list(), &config).await;
    let c = Hub::start_url(&cluster.url_list(), &config).await;
    wait_routing(&c, &a_id, 3, TAKEOVER).await;
    vec![a, b, c]
}

/// A chat with the agent on `agent_hub` and the customer on `customer_hub`; checks the
/// accept's ack comes before its `joined`. Returns the agent, customer and conversation.
async fn cross_node_chat(agent_hub: &Hub, customer_hub: &Hub) -> (Ws, Ws, String) {
    let (mut agent, _) = agent_hub.available_agent("alice", "Alice", &[], 3).await;
    let (mut customer, _) = customer_hub.customer(json!({})).await;
    let conv = customer
        .start_chat("general", "hello across the cluster")
        .await;
    let offer = agent.wait_offer_for(&conv).await;
    let req = agent.req();
    agent
        .send(json!({"type": "accept", "req": req, "offer_id": offer["offer_id"]}))
        .await;
    let first = agent
        .wait_for("the accept's ack or the joined event", |f| {
            (ty(f) == "ack" && f["req"] == req.as_str()) || is_event(f, &conv, "joined")
        })
        .await;
    assert_eq!(ty(&first), "ack", "ack must precede joined: {first}");
    agent.wait_event(&conv, "joined").await;
    customer.wait_event(&conv, "joined").await;
    (agent, customer, conv)
}

#[tokio::test]
async fn a_customer_and_an_agent_on_different_hubs_chat_over_a_cluster() {
    let cluster = RedisCluster::start(3, 0).await;
    let hubs = hubs_on(&cluster).await;
    let (mut agent, mut customer, conv) = cross_node_chat(&hubs[1], &hubs[2]).await;
    let (mut supervisor, _) = hubs[0].supervisor("sue", "Sue").await;
    supervisor
        .ok(json!({"type": "monitor", "conversation_id": conv}))
        .await;

    let mut acked_all = Vec::new();
    for n in 0..10 {
        let text = format!("message {n}");
        let seq = if n % 2 == 0 {
            customer.say(&conv, &text).await
        } else {
            agent.say(&conv, &text).await
        };
        acked_all.push((seq, text));
    }
    let last = acked_all.last().map(|(seq, _)| *seq).unwrap_or(0);
    for ws in [&mut agent, &mut customer, &mut supervisor] {
        ws.wait_seq(&conv, last).await;
    }
    for (who, ws) in [
        ("the agent (hub b)", &agent),
        ("the customer (hub c)", &customer),
        ("the supervisor (hub a)", &supervisor),
    ] {
        let view = applied(ws, &conv);
        assert_view_complete(who, &view, &acked_all);
        assert_eq!(last_seq(&view), last, "{who}");
    }
    let stored = customer.history(&conv, 0).await;
    assert_stored_once(&stored, &[], &acked_all);
}

#[tokio::test]
async fn cutting_every_masters_subscribers_skips_nothing() {
    let cluster = RedisCluster::start(3, 0).await;
    let hubs = hubs_on(&cluster).await;
    let (mut agent, mut customer, conv) = cross_node_chat(&hubs[0], &hubs[1]).await;
    let mut acked_all = Vec::new();
    for n in 0..3 {
        let text = format!("before the cut {n}");
        acked_all.push((agent.say(&conv, &text).await, text));
    }

    let mut killed = 0;
    for port in cluster.master_ports().await {
        let count: Result<u64, String> = cluster::query(
            port,
            redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub"),
        )
        .await;
        killed += count.unwrap_or_else(|err| panic!("CLIENT KILL TYPE pubsub on {port}: {err}"));
    }
    // Each hub subscribes somewhere: at least one connection of each was cut.
    assert!(
        killed >= hubs.len() as u64,
        "only {killed} subscriber connections cut"
    );
    // Messages right after the cut, both ways: each arrives live, none is skipped.
    for n in 0..5 {
        let text = format!("agent during the cut {n}");
        acked_all.push((agent.say(&conv, &text).await, text));
        let text = format!("customer during the cut {n}");
        acked_all.push((customer.say(&conv, &text).await, text));
    }
    let last = acked_all.last().map(|(seq, _)| *seq).unwrap_or(0);
    for ws in [&mut agent, &mut customer] {
        ws.wait_for_within(
            "the last message after the cut",
            Duration::from_secs(10),
            |f| ty(f) == "event" && f["conversation_id"] == conv.as_str() && f["seq"] == last,
        )
        .await;
    }
    for (who, ws) in [
        ("the agent (hub a)", &agent),
        ("the customer (hub b)", &customer),
    ] {
        let view = applied(ws, &conv);
        assert_view_complete(who, &view, &acked_all);
        assert_eq!(last_seq(&view), last, "{who}");
    }
    for hub in &hubs {
        eventually("/readyz 200 after the cut", TAKEOVER, || async {
            (hub.get("/readyz").await.0 == 200).then_some(())
        })
        .await;
    }
    // And the feed is back: a message after it arrives live too.
    let seq = customer.say(&conv, "after the cut").await;
    agent.wait_seq(&conv, seq).await;
}
