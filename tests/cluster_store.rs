//! The hub on a Redis Cluster (issue 16, the store part): one hub given the cluster's
//! seed list, or a single node's URL, runs a whole chat — offer, accept, messages both
//! ways, a reconnect that resumes with history, close and the ticket — with every
//! conversation's keys in their own slot and the shared indexes in theirs.

mod common;

use common::{cluster::RedisCluster, *};
use serde_json::json;

/// Start to ticket: the conversation's keys, the visitor's, the open index, the agent
/// profiles and the ticket log are spread over the masters.
async fn whole_chat(hub: &Hub) {
    let Chat {
        mut customer,
        mut agent,
        welcome,
        conversation_id: conv,
        ..
    } = chat(hub).await;

    let seq = agent.say(&conv, "Hi, Alice here").await;
    assert_eq!(seq, 3);
    customer.wait_seq(&conv, seq).await;
    let seq = customer.say(&conv, "My order is late").await;
    assert_eq!(seq, 4);
    agent.wait_seq(&conv, seq).await;

    // The customer drops off and comes back with its session.
    customer.close().await;
    let seq = agent.say(&conv, "It ships today").await;
    let (mut customer, welcome2) = hub.customer(json!({"session": welcome["session"]})).await;
    let listed = listed_in_welcome(&welcome2, &conv, "welcome after reconnecting");
    assert_eq!(listed["last_seq"], seq, "{listed}");
    let events = customer.history(&conv, 0).await;
    assert_eq!(seqs(&events), vec![1, 2, 3, 4, 5], "{events:?}");
    assert_eq!(events[4]["text"], "It ships today", "{events:?}");
    let seq = customer.say(&conv, "Thanks!").await;
    agent.wait_seq(&conv, seq).await;

    let ack = agent
        .ok(json!({"type": "close", "conversation_id": conv, "resolution": "resolved"}))
        .await;
    let ticket_id = ack["ticket_id"]
        .as_str()
        .unwrap_or_else(|| panic!("close ack without ticket_id: {ack}"))
        .to_string();
    customer.wait_event(&conv, "closed").await;
    let ticket = hub.wait_ticket(&ticket_id).await;
    assert_eq!(ticket["conversation_id"], conv.as_str(), "{ticket}");
    assert_eq!(hub.tickets_of(&conv).await.len(), 1);
    // A cross-slot script or pipeline fails on a cluster; one retried in the background
    // (the ticket sweep) would still show up in the log.
    for symptom in ["CROSSSLOT", "crossed slots", "MOVED", "ERROR"] {
        assert!(
            !hub.output().contains(symptom),
            "the hub logged {symptom}:\n{}",
            hub.log_tail(60)
        );
    }
}

#[tokio::test]
async fn a_whole_chat_runs_on_a_three_master_cluster() {
    let cluster = RedisCluster::start(3, 0).await;
    let hub = Hub::start_url(&cluster.url_list(), &TestConfig::default().to_toml()).await;
    whole_chat(&hub).await;
}

#[tokio::test]
async fn a_single_seed_url_of_a_cluster_node_is_detected_as_a_cluster() {
    let cluster = RedisCluster::start(3, 0).await;
    let hub = Hub::start_url(&cluster.node_url(), &TestConfig::default().to_toml()).await;
    whole_chat(&hub).await;
}
