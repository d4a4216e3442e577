//! Promises of the HTTP API that no other test held the hub to:
//!
//! - `PATCH /v1/agents/{id}` changes routing at once: a skill added lets the agent take a
//!   waiting conversation, a capacity lowered withdraws the offer beyond it, a capacity
//!   raised lets it take one again (`docs/routing.md`, "Matching is event driven");
//! - `GET /v1/stats` per topic (waiting, longest wait, agents available) and totals,
//!   with known values after a scripted set-up;
//! - `GET /v1/conversations/{id}`: admin, supervisor and member agent; any other agent
//!   gets 403.
//!
//! "No offer" is shown without waiting for time to pass: the customer's `queue` frame
//! says the router has queued the conversation, and a `status` request of the agent (an
//! ask to the same router task) returns after anything that enqueue pushed to the agent;
//! an offer would be on the agent's socket before that ack.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use tokio::time::Instant;

/// Waits until the router has queued `conversation_id` (the customer's first `queue`
/// frame for it).
async fn wait_queued(customer: &mut Ws, conversation_id: &str) -> Value {
    let what = format!("a queue frame for {conversation_id}");
    customer
        .wait_for(&what, |f| {
            ty(f) == "queue" && f["conversation_id"] == conversation_id
        })
        .await
}

/// A round trip through the router task on the agent's socket (see the module comment).
async fn router_barrier(agent: &mut Ws) {
    agent.set_status("available").await;
}

fn offers_for<'a>(agent: &'a Ws, conversation_id: &str) -> Vec<&'a Value> {
    agent
        .seen()
        .iter()
        .filter(|f| ty(f) == "offer" && f["conversation_id"] == conversation_id)
        .collect()
}

async fn patch_agent(hub: &Hub, id: &str, body: Value) -> Value {
    let path = format!("/v1/agents/{id}");
    let (status, reply) = hub
        .http_json("PATCH", &path, Some(ADMIN_TOKEN), Some(body.clone()))
        .await;
    assert_eq!(status, 200, "PATCH {path} {body}: {status} {reply}");
    reply
}

#[tokio::test]
async fn patching_skills_and_capacity_changes_routing_at_once() {
    let (_redis, hub) = setup().await;
    let token = hub.create_agent("alice", "Alice", &[], 1, false).await;
    let (mut alice, _) = hub.agent(&token).await;
    alice.go_available().await;

    // A billing chat waits: alice lacks the skill.
    let (mut ann, _) = hub.customer(json!({"name": "Ann"})).await;
    let billing = ann.start_chat("billing", "my invoice is wrong").await;
    wait_queued(&mut ann, &billing).await;
    router_barrier(&mut alice).await;
    assert!(
        offers_for(&alice, &billing).is_empty(),
        "alice (no billing skill) was offered the billing chat: {:?}",
        alice.seen()
    );

    // PATCH adds the skill: the waiting chat is offered to her at once.
    let patched = patch_agent(&hub, "alice", json!({"skills": {"billing": 2}})).await;
    assert_eq!(patched["skills"], json!({"billing": 2}), "{patched}");
    let offer = alice.wait_offer_for(&billing).await;
    alice.accept(&offer).await;
    ann.wait_event(&billing, "joined").await;

    // Alice is full (capacity 1): a general chat waits.
    let (mut bea, _) = hub.customer(json!({"name": "Bea"})).await;
    let general = bea.start_chat("general", "a question").await;
    wait_queued(&mut bea, &general).await;
    router_barrier(&mut alice).await;
    assert!(
        offers_for(&alice, &general).is_empty(),
        "alice at capacity 1 with one chat was offered another: {:?}",
        alice.seen()
    );

    // Capacity raised to 2: the waiting chat is offered at once.
    let patched = patch_agent(&hub, "alice", json!({"capacity": 2})).await;
    assert_eq!(patched["capacity"], 2, "{patched}");
    assert_eq!(
        patched["skills"],
        json!({"billing": 2}),
        "PATCH changes only what it names: {patched}"
    );
    let offer = alice.wait_offer_for(&general).await;

    // Capacity lowered back to 1 while the offer is open: the offer is withdrawn (on the
    // wire `expired`, docs/routing.md) and not made again while she is full.
    patch_agent(&hub, "alice", json!({"capacity": 1})).await;
    let revoked = alice
        .wait_for("offer_revoked after lowering capacity", |f| {
            ty(f) == "offer_revoked" && f["offer_id"] == offer["offer_id"]
        })
        .await;
    assert_eq!(revoked["reason"], "expired", "{revoked}");
    alice
        .err(
            json!({"type": "accept", "offer_id": offer["offer_id"]}),
            "not_found",
        )
        .await;
    router_barrier(&mut alice).await;
    assert_eq!(
        offers_for(&alice, &general).len(),
        1,
        "alice, full again, was offered the chat again: {:?}",
        alice.seen()
    );
    let (status, agents) = hub
        .http_json("GET", "/v1/agents", Some(ADMIN_TOKEN), None)
        .await;
    assert_eq!(status, 200, "{agents}");
    let listed = agents["agents"]
        .as_array()
        .and_then(|all| all.iter().find(|a| a["id"] == "alice"))
        .unwrap_or_else(|| panic!("alice not in GET /v1/agents: {agents}"));
    assert_eq!(listed["capacity"], 1, "{listed}");
    assert_eq!(listed["load"], 1, "{listed}");

    // Raised again: offered again (the withdrawal did not exclude her).
    patch_agent(&hub, "alice", json!({"capacity": 2})).await;
    let again = alice
        .wait_for("a new offer for the general chat", |f| {
            ty(f) == "offer"
                && f["conversation_id"] == general
                && f["offer_id"] != offer["offer_id"]
        })
        .await;
    alice.accept(&again).await;
    bea.wait_event(&general, "joined").await;
}

/// One topic's entry in `GET /v1/stats`.
fn topic_stats<'a>(stats: &'a Value, topic: &str) -> &'a Value {
    stats["topics"]
        .as_array()
        .and_then(|topics| topics.iter().find(|t| t["topic"] == topic))
        .unwrap_or_else(|| panic!("no topic {topic} in /v1/stats: {stats}"))
}

async fn stats(hub: &Hub, token: &str) -> Value {
    let (status, stats) = hub.http_json("GET", "/v1/stats", Some(token), None).await;
    assert_eq!(status, 200, "GET /v1/stats: {status} {stats}");
    stats
}

/// `longest_wait_ms` of a topic must lie between the wait the test can be sure of (from
/// the start's ack to the stats request) and the most it can be (from sending `start` to
/// the stats answer), with a little slack for the hub's own clock reading.
fn assert_wait_between(stats: &Value, topic: &str, at_least: Duration, at_most: Duration) {
    const SLACK_MS: u64 = 50;
    let got = topic_stats(stats, topic)["longest_wait_ms"]
        .as_u64()
        .unwrap_or_else(|| panic!("{topic}: longest_wait_ms is not an integer: {stats}"));
    let low = (at_least.as_millis() as u64).saturating_sub(SLACK_MS);
    let high = at_most.as_millis() as u64 + SLACK_MS;
    assert!(
        (low..=high).contains(&got),
        "{topic}: longest_wait_ms {got} outside [{low}, {high}]: {stats}"
    );
}

/// A customer that starts a chat in `topic` which then waits; returns the socket, the
/// conversation id, and when the start was sent and acknowledged.
async fn waiting_chat(hub: &Hub, name: &str, topic: &str) -> (Ws, String, Instant, Instant) {
    let (mut customer, _) = hub.customer(json!({ "name": name })).await;
    let sent = Instant::now();
    let conv = customer.start_chat(topic, "waiting").await;
    let acked = Instant::now();
    wait_queued(&mut customer, &conv).await;
    (customer, conv, sent, acked)
}

#[tokio::test]
async fn stats_report_waiting_longest_wait_and_agents_available_per_topic_and_totals() {
    let (_redis, hub) = setup().await;
    // Alice: billing, one slot, available. Bob: connected but away. Carol: never connects.
    let alice_token = hub
        .create_agent("alice", "Alice", &[("billing", 3)], 1, false)
        .await;
    let (mut alice, _) = hub.agent(&alice_token).await;
    alice.go_available().await;
    let bob_token = hub.create_agent("bob", "Bob", &[], 2, false).await;
    let (mut bob, _) = hub.agent(&bob_token).await;
    hub.create_agent("carol", "Carol", &[("billing", 1), ("fr", 1)], 2, false)
        .await;
    let sue_token = {
        let body = json!({"id": "sue", "name": "Sue", "skills": {}, "capacity": 1,
                          "supervisor": true, "auto_accept": false});
        hub.create_agent_with(body).await
    };

    // A billing_fr chat: nobody available has fr, so it is offered to alice only once fr
    // is dropped (after 1500 ms); she declines, and it waits on, having waited that long.
    let (mut fr_customer, _) = hub.customer(json!({"name": "Fleur"})).await;
    let fr_sent = Instant::now();
    let fr_conv = fr_customer.start_chat("billing_fr", "facture").await;
    let fr_acked = Instant::now();
    let offer = alice
        .wait_for_within(
            "the billing_fr offer after widening",
            Duration::from_secs(6),
            |f| ty(f) == "offer" && f["conversation_id"] == fr_conv,
        )
        .await;
    alice
        .ok(json!({"type": "decline", "offer_id": offer["offer_id"]}))
        .await;

    // Alice takes a general chat and is full; then a billing and a general chat wait.
    let (mut first, _) = hub.customer(json!({"name": "First"})).await;
    let taken = first.start_chat("general", "hello").await;
    assert_eq!(alice.accept_next_offer().await, taken);
    first.wait_event(&taken, "joined").await;
    let (_billing_customer, _billing, billing_sent, billing_acked) =
        waiting_chat(&hub, "Bill", "billing").await;
    let (mut general_customer, general, general_sent, general_acked) =
        waiting_chat(&hub, "Gene", "general").await;
    router_barrier(&mut alice).await;

    let asked = Instant::now();
    let stats = stats(&hub, ADMIN_TOKEN).await;
    let answered = Instant::now();
    let expect = |topic: &str, waiting: u64, available: u64| {
        let entry = topic_stats(&stats, topic);
        assert_eq!(entry["waiting"], waiting, "{topic} waiting: {stats}");
        assert_eq!(
            entry["agents_available"], available,
            "{topic} agents_available: {stats}"
        );
    };
    // Alice counts wherever she has the skills, full or not; bob is away, carol offline.
    expect("general", 1, 1);
    expect("billing", 1, 1);
    expect("billing_fr", 1, 0);
    expect("urgent", 0, 1);
    assert_wait_between(
        &stats,
        "general",
        asked - general_acked,
        answered - general_sent,
    );
    assert_wait_between(
        &stats,
        "billing",
        asked - billing_acked,
        answered - billing_sent,
    );
    assert_wait_between(&stats, "billing_fr", asked - fr_acked, answered - fr_sent);
    assert!(
        topic_stats(&stats, "billing_fr")["longest_wait_ms"]
            .as_u64()
            .is_some_and(|ms| ms >= 1500),
        "billing_fr waited past its 1500 ms widening: {stats}"
    );
    assert_eq!(
        topic_stats(&stats, "urgent")["longest_wait_ms"],
        0,
        "{stats}"
    );
    let totals = &stats["totals"];
    assert_eq!(totals["waiting"], 3, "{stats}");
    assert_eq!(totals["agents_available"], 1, "{stats}");
    assert_eq!(totals["agents_online"], 2, "alice and bob (away): {stats}");
    assert_eq!(totals["active_conversations"], 1, "{stats}");

    // Bob becomes available and takes the general chat (the others need billing).
    bob.go_available().await;
    assert_eq!(bob.accept_next_offer().await, general);
    general_customer.wait_event(&general, "joined").await;
    router_barrier(&mut alice).await;
    let stats = self::stats(&hub, ADMIN_TOKEN).await;
    let expect = |topic: &str, waiting: u64, available: u64| {
        let entry = topic_stats(&stats, topic);
        assert_eq!(entry["waiting"], waiting, "{topic} waiting: {stats}");
        assert_eq!(
            entry["agents_available"], available,
            "{topic} agents_available: {stats}"
        );
    };
    expect("general", 0, 2);
    expect("billing", 1, 1);
    expect("billing_fr", 1, 0);
    expect("urgent", 0, 2);
    assert_eq!(
        topic_stats(&stats, "general")["longest_wait_ms"],
        0,
        "{stats}"
    );
    let totals = &stats["totals"];
    assert_eq!(totals["waiting"], 2, "{stats}");
    assert_eq!(totals["agents_available"], 2, "{stats}");
    assert_eq!(totals["agents_online"], 2, "{stats}");
    assert_eq!(totals["active_conversations"], 2, "{stats}");

    // Who may read it: admin and supervisors, not plain agents.
    let by_supervisor = self::stats(&hub, &sue_token).await;
    assert_eq!(by_supervisor["totals"], stats["totals"], "{by_supervisor}");
    let (status, body) = hub
        .http_json("GET", "/v1/stats", Some(&alice_token), None)
        .await;
    assert_eq!(status, 403, "a plain agent read /v1/stats: {body}");
    assert_eq!(body["code"], "forbidden", "{body}");
}

#[tokio::test]
async fn a_member_agent_may_read_its_conversation_and_others_get_403() {
    let (_redis, hub) = setup().await;
    let Chat {
        agent: mut alice,
        agent_token: alice_token,
        conversation_id: alices,
        ..
    } = chat(&hub).await;
    // Bob gets a conversation of his own (alice steps away so it goes to him).
    alice.set_status("away").await;
    let (mut bob, bob_token) = hub.available_agent("bob", "Bob", &[], 3).await;
    let (mut customer, _) = hub.customer(json!({"name": "Ben"})).await;
    let bobs = customer.start_chat("general", "for bob").await;
    assert_eq!(bob.accept_next_offer().await, bobs);
    customer.wait_event(&bobs, "joined").await;
    let sue_token = {
        let body = json!({"id": "sue", "name": "Sue", "skills": {}, "capacity": 1,
                          "supervisor": true, "auto_accept": false});
        hub.create_agent_with(body).await
    };

    let read = |conv: &str, token: &str| {
        let path = format!("/v1/conversations/{conv}");
        let token = token.to_string();
        let hub = &hub;
        async move { hub.http_json("GET", &path, Some(&token), None).await }
    };
    for (who, conv, token) in [
        ("alice (member)", &alices, &alice_token),
        ("bob (member)", &bobs, &bob_token),
        ("sue (supervisor)", &alices, &sue_token),
        ("the admin", &bobs, &ADMIN_TOKEN.to_string()),
    ] {
        let (status, body) = read(conv, token).await;
        assert_eq!(status, 200, "{who} reading {conv}: {status} {body}");
        assert_eq!(
            body["conversation"]["conversation_id"],
            conv.as_str(),
            "{body}"
        );
        let events = body["events"]
            .as_array()
            .unwrap_or_else(|| panic!("{who}: no events array: {body}"));
        assert_eq!(kinds(events), vec!["message", "joined"], "{who}: {body}");
    }
    for (who, conv, token) in [
        ("alice (not a member)", &bobs, &alice_token),
        ("bob (not a member)", &alices, &bob_token),
    ] {
        let (status, body) = read(conv, token).await;
        assert_eq!(status, 403, "{who} reading {conv}: {status} {body}");
        assert_eq!(body["code"], "forbidden", "{who}: {body}");
    }
    let (status, body) = hub
        .http_json("GET", &format!("/v1/conversations/{alices}"), None, None)
        .await;
    assert_eq!(status, 401, "no token: {body}");
}
