//! Taking routing over from a node that died in the middle of a hand-off
//! (`docs/protocol.md`, "Several nodes"): the assignment ledger (what capacity is checked
//! against, and what an agent's `welcome` lists while nobody routes) is reserved before
//! the `joined` it fences is stored, so a routing node killed between the two leaves the
//! ledger naming an agent that never joined. The next routing node makes the ledger say
//! what the conversations' records say.

mod common;

use std::collections::HashMap;

use common::{cluster::query, nodes::*, *};
use serde_json::json;

/// `sb:{router}:ledger` (conversation → agent) and `sb:{router}:load` (agent → count).
async fn ledger_and_load(redis: &RedisServer) -> (HashMap<String, String>, HashMap<String, u64>) {
    let ledger = query(
        redis.port(),
        redis::cmd("HGETALL").arg("sb:{router}:ledger"),
    )
    .await
    .expect("read the ledger");
    let load = query(redis.port(), redis::cmd("HGETALL").arg("sb:{router}:load"))
        .await
        .expect("read the loads");
    (ledger, load)
}

/// Whether an agent's `welcome` lists `conversation` among those it holds.
fn lists(welcome: &serde_json::Value, conversation: &str) -> bool {
    welcome["conversations"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["conversation_id"] == conversation)
}

#[cfg_attr(
    not(feature = "failpoints"),
    ignore = "needs the failpoints feature (the test command enables it)"
)]
#[tokio::test]
async fn a_routing_node_killed_between_a_hand_offs_reservation_and_its_join_leaves_the_chat_with_its_agent(
) {
    let redis = RedisServer::start().await;
    let config = TestConfig::default()
        .topic(TopicSpec::new("sales", &["sales"], 0))
        .to_toml();
    // Node a routes, and dies right after reserving a hand-off's new agent.
    let mut a = Hub::start_with_env(
        &redis,
        &config,
        &[("SWITCHBOARD_FAILPOINT", "after_transfer_reserved")],
    )
    .await;
    let a_id = node_id(&a).await;
    wait_routing(&a, &a_id, 1, TAKEOVER).await;
    let b = Hub::start_url(&redis.url(), &config).await;
    let b_id = node_id(&b).await;
    wait_routing(&b, &a_id, 2, TAKEOVER).await;

    // Everyone is on node b; each agent has room for one chat.
    let alice = b
        .create_agent("alice", "Alice", &[("sales", 1)], 1, false)
        .await;
    let bob = b
        .create_agent("bob", "Bob", &[("sales", 1)], 1, false)
        .await;
    let (mut alice_ws, _) = b.agent(&alice).await;
    alice_ws.go_available().await;
    let (mut customer, _) = b.customer(json!({})).await;
    let conv = customer.start_chat("sales", "my order is late").await;
    let offer = alice_ws.wait_offer_for(&conv).await;
    alice_ws.accept(&offer).await;
    alice_ws.wait_event(&conv, "joined").await;

    let (mut bob_ws, _) = b.agent(&bob).await;
    bob_ws.go_available().await;
    alice_ws
        .ok(json!({"type": "transfer", "conversation_id": conv, "to_agent": "bob"}))
        .await;
    let offer = bob_ws.wait_offer_for(&conv).await;
    bob_ws
        .send(json!({"type": "accept", "req": "take", "offer_id": offer["offer_id"]}))
        .await;
    let status = a.wait_exited(TAKEOVER).await;
    assert!(!status.success(), "node a should have aborted: {status}");
    assert!(
        a.output().contains("after_transfer_reserved"),
        "{}",
        a.log_tail(20)
    );

    // Node b takes over from the records: alice still has the chat, bob does not.
    wait_routing(&b, &b_id, 1, TAKEOVER).await;
    let (ledger, load) = ledger_and_load(&redis).await;
    assert_eq!(
        ledger.get(&conv).map(String::as_str),
        Some("alice"),
        "ledger {ledger:?}"
    );
    assert_eq!(load.get("alice"), Some(&1), "loads {load:?}");
    assert_eq!(load.get("bob"), None, "loads {load:?}");
    let (_alice_again, welcome) = b.agent(&alice).await;
    assert!(lists(&welcome, &conv), "alice's welcome: {welcome}");
    let (_bob_again, welcome) = b.agent(&bob).await;
    assert!(!lists(&welcome, &conv), "bob's welcome: {welcome}");
    alice_ws.say(&conv, "still with you").await;
    customer
        .wait_for("alice's message after the takeover", |f| {
            is_event(f, &conv, "message") && f["text"] == "still with you"
        })
        .await;

    // Bob, whom the dead node had counted, has room for the next chat (his capacity is
    // one): the new routing node's reservation for him is not refused as full.
    let (mut second, _) = b.customer(json!({})).await;
    let next = second.start_chat("sales", "another question").await;
    let offer = bob_ws.wait_offer_for(&next).await;
    bob_ws.accept(&offer).await;
    second.wait_event(&next, "joined").await;
}

/// An agent whose node died reconnects to another node at once, while nobody routes
/// yet: its `hello` asks the routing node, which is not there. When the next routing
/// node announces itself, the question is asked again and answered from the rebuilt
/// router, so the `welcome` carries the status the agent chose (`available`) rather than
/// the ledger's stand-in (`away`) that comes after 4 s without a routing node.
#[tokio::test]
async fn an_agent_reconnecting_while_routing_changes_hands_is_answered_by_the_new_routing_node() {
    let redis = RedisServer::start().await;
    let config = TestConfig::default()
        .topic(TopicSpec::new("sales", &["sales"], 0))
        .to_toml();
    let ((mut a, _), (b, b_id)) = routing_and_other(&redis.url(), &config).await;
    let alice = a
        .create_agent("alice", "Alice", &[("sales", 1)], 2, false)
        .await;
    let (mut alice_ws, _) = a.agent(&alice).await;
    alice_ws.go_available().await;
    let (mut customer, _) = b.customer(json!({})).await;
    let conv = customer.start_chat("sales", "hello?").await;
    let offer = alice_ws.wait_offer_for(&conv).await;
    alice_ws.accept(&offer).await;
    customer.wait_event(&conv, "joined").await;

    a.kill9();
    let (_alice_on_b, welcome) = b.agent(&alice).await;
    assert_eq!(welcome["status"], "available", "welcome {welcome}");
    assert!(lists(&welcome, &conv), "welcome {welcome}");
    wait_routing(&b, &b_id, 1, TAKEOVER).await;
}
