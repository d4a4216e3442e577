//! Several hubs on one Redis behave as one service (`docs/protocol.md`, "Several
//! nodes"): clients on different nodes chat, an agent's tabs on two nodes are one agent,
//! routing survives the routing node's death, and a node whose live feed is cut catches
//! every conversation up from the stream.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// Long enough for a lease to expire and another node to take routing over.
const TAKEOVER: Duration = Duration::from_secs(10);

async fn hubs(redis: &RedisServer, n: usize) -> Vec<Hub> {
    let config = TestConfig::default().to_toml();
    let mut hubs = Vec::new();
    for _ in 0..n {
        hubs.push(Hub::start(redis, &config).await);
    }
    hubs
}

async fn nodes(hub: &Hub) -> Value {
    let (status, body) = hub
        .http_json("GET", "/v1/nodes", Some(ADMIN_TOKEN), None)
        .await;
    assert_eq!(status, 200, "GET /v1/nodes: {status} {body}");
    body
}

/// Every event of `conversation` the socket saw, in arrival order, by seq.
fn event_seqs(ws: &Ws, conversation: &str) -> Vec<u64> {
    ws.seen()
        .iter()
        .filter(|f| ty(f) == "event" && f["conversation_id"] == conversation)
        .map(seq_of)
        .collect()
}

fn assert_gapless(seqs: &[u64], who: &str) {
    let mut unique = seqs.to_vec();
    unique.dedup();
    let expected: Vec<u64> = (unique[0]..unique[0] + unique.len() as u64).collect();
    assert_eq!(
        unique, expected,
        "{who} saw seqs out of order or with gaps: {seqs:?}"
    );
}

#[tokio::test]
async fn customer_and_agent_on_different_nodes_chat_as_on_one() {
    let redis = RedisServer::start().await;
    let hubs = hubs(&redis, 3).await;
    let (a, b, c) = (&hubs[0], &hubs[1], &hubs[2]);
    // Each node announces itself with its first heartbeat, right after it starts.
    let body = eventually("three nodes listed", Duration::from_secs(5), || async {
        let body = nodes(a).await;
        (body["nodes"].as_array().map(Vec::len) == Some(3)).then_some(body)
    })
    .await;
    let routing: Vec<&Value> = body["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| n["routing"] == true)
        .collect();
    assert_eq!(routing.len(), 1, "exactly one node routes: {body}");

    let (mut agent, _) = a.available_agent("alice", "Alice", &[], 3).await;
    let super_token = c
        .create_agent_with(json!({"id": "sue", "name": "Sue", "capacity": 1, "supervisor": true}))
        .await;
    let (mut supervisor, _) = c.agent(&super_token).await;
    let (mut customer, _) = b.customer(json!({})).await;
    let conversation = customer.start_chat("general", "hello from node b").await;

    let offer = agent.wait_offer_for(&conversation).await;
    let req = agent.req();
    agent
        .send(json!({"type": "accept", "req": req, "offer_id": offer["offer_id"]}))
        .await;
    // The ack comes before the `joined` it acknowledges, though another node stored it.
    let ack_or_joined = agent
        .wait_for("the accept's ack or the joined event", |f| {
            (ty(f) == "ack" && f["req"] == req.as_str()) || is_event(f, &conversation, "joined")
        })
        .await;
    assert_eq!(
        ty(&ack_or_joined),
        "ack",
        "ack must precede joined: {ack_or_joined}"
    );
    agent.wait_event(&conversation, "joined").await;
    customer.wait_event(&conversation, "joined").await;
    supervisor
        .ok(json!({"type": "monitor", "conversation_id": conversation}))
        .await;

    let mut last = 0;
    for i in 0..10 {
        last = if i % 2 == 0 {
            customer.say(&conversation, &format!("customer {i}")).await
        } else {
            agent.say(&conversation, &format!("agent {i}")).await
        };
    }
    agent.wait_seq(&conversation, last).await;
    customer.wait_seq(&conversation, last).await;
    supervisor.wait_seq(&conversation, last).await;
    assert_gapless(&event_seqs(&agent, &conversation), "the agent (node a)");
    assert_gapless(
        &event_seqs(&customer, &conversation),
        "the customer (node b)",
    );
    assert_gapless(
        &event_seqs(&supervisor, &conversation),
        "the supervisor (node c)",
    );
}

#[tokio::test]
async fn an_agents_tabs_on_two_nodes_are_one_agent() {
    let redis = RedisServer::start().await;
    let hubs = hubs(&redis, 3).await;
    let (a, b, c) = (&hubs[0], &hubs[1], &hubs[2]);
    let token = a.create_agent("alice", "Alice", &[], 1, false).await;
    let (mut tab_a, _) = a.agent(&token).await;
    let (mut tab_b, _) = b.agent(&token).await;
    tab_a.go_available().await;

    // Any node counts both tabs (the others' as of their last heartbeat).
    eventually(
        "alice's two tabs counted on node c",
        Duration::from_secs(5),
        || async {
            let (_, body) = c
                .http_json("GET", "/v1/agents", Some(ADMIN_TOKEN), None)
                .await;
            (body["agents"][0]["connections"] == 2).then_some(())
        },
    )
    .await;
    let (mut customer, _) = c.customer(json!({})).await;
    let conversation = customer.start_chat("general", "two tabs").await;
    let offer_a = tab_a.wait_offer_for(&conversation).await;
    let offer_b = tab_b.wait_offer_for(&conversation).await;
    assert_eq!(offer_a["offer_id"], offer_b["offer_id"]);
    tab_b.accept(&offer_b).await;
    let revoked = tab_a
        .wait_for("offer_revoked taken on the other tab", |f| {
            ty(f) == "offer_revoked" && f["offer_id"] == offer_a["offer_id"]
        })
        .await;
    assert_eq!(revoked["reason"], "taken", "{revoked}");
    tab_a.wait_event(&conversation, "joined").await;
    tab_b.wait_event(&conversation, "joined").await;

    // One capacity across both tabs: a second customer is not offered to alice.
    let (mut second, _) = c.customer(json!({})).await;
    let waiting = second.start_chat("general", "queued behind").await;
    tab_a
        .expect_no(
            "an offer beyond capacity",
            Duration::from_millis(800),
            |f| ty(f) == "offer" && f["conversation_id"] == waiting.as_str(),
        )
        .await;
}

#[tokio::test]
async fn killing_the_routing_node_moves_routing_and_loses_nothing() {
    let redis = RedisServer::start().await;
    let mut hubs = hubs(&redis, 2).await;
    let body = nodes(&hubs[0]).await;
    let router_id = body["routing"].as_str().unwrap_or_default().to_string();
    let router_index = body["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .position(|n| n["id"] == router_id.as_str() && n["address"] == hubs[0].addr().to_string())
        .map_or(1, |_| 0);
    let survivor_index = 1 - router_index;

    let token = hubs[survivor_index]
        .create_agent("alice", "Alice", &[], 3, false)
        .await;
    let (mut agent, _) = hubs[survivor_index].agent(&token).await;
    agent.go_available().await;
    let (mut customer, _) = hubs[survivor_index].customer(json!({})).await;
    let first = customer.start_chat("general", "before the kill").await;
    let offer = agent.wait_offer_for(&first).await;
    agent.accept(&offer).await;
    let seq = customer.say(&first, "acked before the kill").await;

    hubs[router_index].kill9();

    // A new chat is routed by the survivor within the takeover time.
    let (mut late, _) = hubs[survivor_index].customer(json!({})).await;
    let second = late.start_chat("general", "after the kill").await;
    agent
        .wait_for_within("an offer after the routing node died", TAKEOVER, |f| {
            ty(f) == "offer" && f["conversation_id"] == second.as_str()
        })
        .await;
    // The dead node's heartbeat expires; the survivor routes.
    let body = eventually("only the survivor listed", TAKEOVER, || async {
        let body = nodes(&hubs[survivor_index]).await;
        (body["nodes"].as_array().map(Vec::len) == Some(1)).then_some(body)
    })
    .await;
    assert_eq!(body["nodes"][0]["routing"], true, "{body}");
    // The first chat goes on, nothing acknowledged is missing.
    let next = agent.say(&first, "still here").await;
    customer.wait_seq(&first, next).await;
    let history = customer.history(&first, 0).await;
    assert!(seqs(&history).contains(&seq), "acked seq {seq} missing");
    assert_gapless(&seqs(&history), "history");
}

#[tokio::test]
async fn a_cut_live_feed_is_noticed_and_nothing_is_skipped() {
    let redis = RedisServer::start().await;
    let hubs = hubs(&redis, 2).await;
    let (a, b) = (&hubs[0], &hubs[1]);
    let (mut agent, _) = a.available_agent("alice", "Alice", &[], 3).await;
    let (mut customer, _) = b.customer(json!({})).await;
    let conversation = customer.start_chat("general", "feed test").await;
    let offer = agent.wait_offer_for(&conversation).await;
    agent.accept(&offer).await;
    customer.wait_event(&conversation, "joined").await;

    // Cut every subscriber connection; messages sent meanwhile must still arrive.
    let killed = redis_cli(redis.port(), &["CLIENT", "KILL", "TYPE", "pubsub"]);
    assert!(killed.is_some(), "CLIENT KILL failed");
    let mut last = 0;
    for i in 0..5 {
        last = agent
            .say(&conversation, &format!("during the cut {i}"))
            .await;
    }
    customer
        .wait_for_within(
            "the last message after the feed was cut",
            Duration::from_secs(10),
            |f| {
                ty(f) == "event"
                    && f["conversation_id"] == conversation.as_str()
                    && f["seq"] == last
            },
        )
        .await;
    assert_gapless(&event_seqs(&customer, &conversation), "the customer");
    for hub in [a, b] {
        eventually("/readyz 200 again", Duration::from_secs(10), || async {
            let (status, _) = hub.get("/readyz").await;
            (status == 200).then_some(())
        })
        .await;
    }
}

fn redis_cli(port: u16, args: &[&str]) -> Option<String> {
    let output = std::process::Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A conversation stored while no router heard of it (its node stopped routing before its
/// `Enqueue` reached anyone) is taken in by the routing node and offered: none is
/// stranded in the queue.
#[tokio::test]
async fn an_open_conversation_no_router_heard_of_is_taken_in() {
    let redis = RedisServer::start().await;
    let hubs = hubs(&redis, 2).await;
    let (mut agent, _) = hubs[1].available_agent("alice", "Alice", &[], 3).await;
    let store = common::store_fixtures::connect_store(&redis).await;
    common::store_fixtures::create_conversation(&store, "c_orphan", "v_orphan").await;
    agent
        .wait_for_within("an offer of the orphaned conversation", TAKEOVER, |f| {
            ty(f) == "offer" && f["conversation_id"] == "c_orphan"
        })
        .await;
}

/// A hand-off to an agent on a third node: alice (node a) hands the chat of a customer on
/// node b to bob (node c); bob is offered it with the note, joins, alice leaves, and all
/// three see the same events in the same order.
#[tokio::test]
async fn a_transfer_to_an_agent_on_a_third_node_hands_over() {
    let redis = RedisServer::start().await;
    let hubs = hubs(&redis, 3).await;
    let (a, b, c) = (&hubs[0], &hubs[1], &hubs[2]);
    let (mut alice, _) = a.available_agent("alice", "Alice", &[], 3).await;
    let (mut customer, _) = b.customer(json!({})).await;
    let conversation = customer.start_chat("general", "please transfer me").await;
    let offer = alice.wait_offer_for(&conversation).await;
    alice.accept(&offer).await;
    customer.wait_event(&conversation, "joined").await;
    let bob_token = c.create_agent("bob", "Bob", &[], 3, false).await;
    let (mut bob, _) = c.agent(&bob_token).await;
    bob.go_available().await;

    alice
        .ok(json!({"type": "transfer", "conversation_id": conversation,
                   "to_agent": "bob", "note": "wants a refund"}))
        .await;
    let offer = bob.wait_offer_for(&conversation).await;
    assert_eq!(offer["transfer"]["from_agent"], "alice", "{offer}");
    assert_eq!(offer["transfer"]["note"], "wants a refund", "{offer}");
    bob.accept(&offer).await;
    let joined = customer
        .wait_for("bob's joined", |f| {
            is_event(f, &conversation, "joined") && f["agent"]["id"] == "bob"
        })
        .await;
    let left = customer.wait_event(&conversation, "left").await;
    assert!(seq_of(&joined) < seq_of(&left), "joined before left");
    alice.wait_seq(&conversation, seq_of(&left)).await;
    bob.wait_seq(&conversation, seq_of(&joined)).await;
    let next = bob.say(&conversation, "bob here").await;
    customer.wait_seq(&conversation, next).await;
    assert_gapless(
        &event_seqs(&customer, &conversation),
        "the customer (node b)",
    );
}

/// Sends `count` messages from `tab` without waiting, ids `<name>-<i>`, then the ids of
/// the other tab again; answers the acks' seqs by id.
async fn send_burst(
    tab: &mut Ws,
    conversation: &str,
    name: &str,
    other: &str,
    count: usize,
) -> Vec<(String, u64)> {
    let mut reqs = Vec::new();
    for i in 0..count {
        for id in [format!("{name}-{i}"), format!("{other}-{i}")] {
            let req = tab.req();
            tab.send(
                json!({"type": "message", "req": req, "conversation_id": conversation,
                            "text": id, "client_msg_id": id}),
            )
            .await;
            reqs.push((req, id));
        }
    }
    let mut seqs = Vec::new();
    for (req, id) in reqs {
        let ack = tab
            .wait_for(&format!("the ack of {id}"), |f| {
                ty(f) == "ack" && f["req"] == req.as_str()
            })
            .await;
        seqs.push((id, seq_of(&ack)));
    }
    seqs
}

/// Two tabs of one customer on two nodes send at once, and each resends the other's
/// messages with the same ids, as a reconnect to another node would: the two nodes'
/// conversation tasks write the same stream, and every id is stored exactly once with
/// one seq, whichever node stored it first and whichever is asked again.
#[tokio::test]
async fn a_message_resent_through_another_node_is_stored_once() {
    let redis = RedisServer::start().await;
    let hubs = hubs(&redis, 2).await;
    let (a, b) = (&hubs[0], &hubs[1]);
    let (mut agent, _) = a.available_agent("alice", "Alice", &[], 3).await;
    let (mut tab_b, welcome) = b.customer(json!({})).await;
    let conversation = tab_b.start_chat("general", "hello").await;
    agent.accept_next_offer().await;
    tab_b.wait_event(&conversation, "joined").await;
    let (mut tab_a, _) = a.customer(json!({"session": welcome["session"]})).await;

    let (on_a, on_b) = tokio::join!(
        send_burst(&mut tab_a, &conversation, "a", "b", 30),
        send_burst(&mut tab_b, &conversation, "b", "a", 30),
    );
    let mut by_id = std::collections::HashMap::new();
    for (id, seq) in on_a.iter().chain(&on_b) {
        let first = by_id.entry(id.clone()).or_insert(*seq);
        assert_eq!(*first, *seq, "{id} was acked with two seqs");
    }
    assert_eq!(by_id.len(), 60, "every id acked");

    let events = tab_a.history(&conversation, 0).await;
    let messages: Vec<(&str, u64)> = events
        .iter()
        .filter_map(|e| Some((e["client_msg_id"].as_str()?, seq_of(e))))
        .collect();
    assert_eq!(messages.len(), 60, "each id stored once: {messages:?}");
    for (id, seq) in messages {
        assert_eq!(by_id.get(id), Some(&seq), "{id} stored at {seq}");
    }
    let seqs: Vec<u64> = events.iter().map(seq_of).collect();
    assert_gapless(&seqs, "the stored history");
}
