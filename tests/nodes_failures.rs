//! Several hubs on one Redis when things go wrong (`docs/protocol.md`, "Several nodes"):
//! a node killed under traffic loses no acknowledged event and its clients resume on
//! another node; a frozen routing node that wakes up assigns nothing twice and exceeds
//! no capacity; a node shutting down hands routing over at once; a Redis restart leaves
//! a chat across nodes going.

mod common;

use std::time::Duration;

use common::{nodes::*, *};
use serde_json::{json, Value};
use tokio::time::Instant;

/// Every message of `sent` whose ack never arrived, sent again with its `client_msg_id`
/// (as a widget does after reconnecting); returns their `(seq, text)`.
async fn resend_unacked(
    ws: &mut Ws,
    old: &Ws,
    conversation_id: &str,
    sent: &[Sent],
) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    for s in sent {
        if reply_seen(old, &s.req).is_some_and(|r| ty(r) == "ack") {
            continue;
        }
        let mut frame = s.frame(conversation_id);
        if let Some(object) = frame.as_object_mut() {
            object.remove("req");
        }
        let ack = until_acked(ws, frame, TAKEOVER).await;
        out.push((seq_of(&ack), s.text.clone()));
    }
    out
}

/// What a client that reconnected ends up with: what it applied on the old connection,
/// then `history` after that, then what it applied live on the new one.
fn resumed_view(old: &Ws, history: &[Value], new: &Ws, conversation_id: &str) -> Vec<Value> {
    let mut view = applied(old, conversation_id);
    let after_old = last_seq(&view);
    view.extend(apply(history, after_old));
    let after_history = last_seq(&view);
    view.extend(apply(
        new.seen()
            .iter()
            .filter(|f| ty(f) == "event" && f["conversation_id"] == conversation_id),
        after_history,
    ));
    view
}

#[tokio::test]
async fn killing_the_customers_node_under_traffic_loses_no_acked_message() {
    let redis = RedisServer::start().await;
    let config = TestConfig::default().to_toml();
    let ((a, _), (mut b, _)) = routing_and_other(&redis.url(), &config).await;
    let (mut agent, _) = a.available_agent("alice", "Alice", &[], 3).await;
    let (mut customer, welcome) = b.customer(json!({})).await;
    let conv = customer.start_chat("general", "hello from node b").await;
    let offer = agent.wait_offer_for(&conv).await;
    agent.accept(&offer).await;
    customer.wait_event(&conv, "joined").await;

    // Both sides send back to back; the customer's node dies once its first message is
    // acknowledged, with the rest in flight.
    let customer_sent = pipeline(&mut customer, &conv, "customer", 0..30).await;
    let mut agent_sent = pipeline(&mut agent, &conv, "agent", 0..15).await;
    customer
        .wait_for("the ack of the customer's first message", |f| {
            ty(f) == "ack" && f["req"] == customer_sent[0].req.as_str()
        })
        .await;
    b.kill9();
    agent_sent.extend(pipeline(&mut agent, &conv, "agent", 15..30).await);
    let mut acked_all = wait_acks(&mut agent, &agent_sent, WAIT * 2).await;
    read_until_closed(&mut customer, WAIT * 2).await;
    let customer_acked = acked(&customer, &customer_sent);
    assert!(!customer_acked.is_empty());
    acked_all.extend(customer_acked);

    // The customer comes back on node a with its session and catches up.
    let (mut back, welcome2) = a.customer(json!({"session": welcome["session"]})).await;
    assert_eq!(welcome2["visitor_id"], welcome["visitor_id"], "{welcome2}");
    listed_in_welcome(&welcome2, &conv, "the welcome on node a");
    let seen_before = last_seq(&applied(&customer, &conv));
    let history = back.history(&conv, seen_before).await;
    acked_all.extend(resend_unacked(&mut back, &customer, &conv, &customer_sent).await);

    // The chat goes on both ways (both parties are on node a now).
    let from_customer = back.say(&conv, "customer is back").await;
    agent.wait_seq(&conv, from_customer).await;
    let from_agent = agent.say(&conv, "welcome back").await;
    back.wait_seq(&conv, from_agent).await;
    // Each side's own last message comes back to it too.
    agent.wait_seq(&conv, from_agent).await;
    acked_all.push((from_customer, "customer is back".into()));
    acked_all.push((from_agent, "welcome back".into()));

    let customer_view = resumed_view(&customer, &history, &back, &conv);
    assert_view_complete("the customer", &customer_view, &acked_all);
    assert_eq!(last_seq(&customer_view), from_agent);
    let agent_view = applied(&agent, &conv);
    assert_view_complete("the agent", &agent_view, &acked_all);
    assert_eq!(last_seq(&agent_view), from_agent);

    let stored = back.history(&conv, 0).await;
    let sent: Vec<&Sent> = customer_sent.iter().chain(&agent_sent).collect();
    assert_stored_once(&stored, &sent, &acked_all);
}

#[tokio::test]
async fn killing_the_agents_node_under_traffic_keeps_the_agent_owner() {
    let redis = RedisServer::start().await;
    // A short grace, so the wait below covers it: were the agent treated as gone after
    // its node died (though it is back on another node), the chat would be re-offered.
    let grace = Duration::from_millis(4000);
    let config = TestConfig::default()
        .router("agent_grace_ms", grace.as_millis())
        .to_toml();
    let ((a, _), (mut b, _)) = routing_and_other(&redis.url(), &config).await;
    let alice = b.create_agent("alice", "Alice", &[], 3, false).await;
    let (mut agent, _) = b.agent(&alice).await;
    agent.go_available().await;
    let (mut customer, _) = a.customer(json!({})).await;
    let conv = customer.start_chat("general", "hello from node a").await;
    let offer = agent.wait_offer_for(&conv).await;
    agent.accept(&offer).await;
    customer.wait_event(&conv, "joined").await;
    // Someone else the chat could go to, were it re-offered.
    let (mut bob, _) = a.available_agent("bob", "Bob", &[], 3).await;

    let agent_sent = pipeline(&mut agent, &conv, "agent", 0..30).await;
    let mut customer_sent = pipeline(&mut customer, &conv, "customer", 0..15).await;
    agent
        .wait_for("the ack of the agent's first message", |f| {
            ty(f) == "ack" && f["req"] == agent_sent[0].req.as_str()
        })
        .await;
    b.kill9();
    let killed_at = Instant::now();
    customer_sent.extend(pipeline(&mut customer, &conv, "customer", 15..30).await);
    let mut acked_all = wait_acks(&mut customer, &customer_sent, WAIT * 2).await;
    read_until_closed(&mut agent, WAIT * 2).await;
    acked_all.extend(acked(&agent, &agent_sent));

    // The agent comes back on node a with its token: still the owner.
    let (mut back, welcome) = a.agent(&alice).await;
    let listed = listed_in_welcome(&welcome, &conv, "alice's welcome on node a");
    assert_eq!(listed["state"], "assigned", "{listed}");
    let seen_before = last_seq(&applied(&agent, &conv));
    let history = back.history(&conv, seen_before).await;
    acked_all.extend(resend_unacked(&mut back, &agent, &conv, &agent_sent).await);
    let from_agent = back.say(&conv, "alice is back").await;
    customer.wait_seq(&conv, from_agent).await;

    // Past the dead node's heartbeat (3 s) and the grace after it: nobody else is
    // offered the chat, nobody left it.
    let window = (Duration::from_secs(3) + grace + Duration::from_secs(3))
        .saturating_sub(killed_at.elapsed());
    bob.expect_no("an offer of alice's chat", window, |f| {
        ty(f) == "offer" && f["conversation_id"] == conv.as_str()
    })
    .await;
    customer
        .expect_no("a left event", Duration::ZERO, |f| {
            is_event(f, &conv, "left")
        })
        .await;
    let from_agent_later = back.say(&conv, "still mine").await;
    let from_customer = customer.say(&conv, "thanks").await;
    back.wait_seq(&conv, from_customer).await;
    customer.wait_seq(&conv, from_agent_later).await;
    customer.wait_seq(&conv, from_customer).await;
    acked_all.push((from_agent, "alice is back".into()));
    acked_all.push((from_agent_later, "still mine".into()));
    acked_all.push((from_customer, "thanks".into()));

    let agent_view = resumed_view(&agent, &history, &back, &conv);
    assert_view_complete("the agent", &agent_view, &acked_all);
    assert_eq!(last_seq(&agent_view), from_customer);
    let customer_view = applied(&customer, &conv);
    assert_view_complete("the customer", &customer_view, &acked_all);
    assert_eq!(last_seq(&customer_view), from_customer);

    let stored = customer.history(&conv, 0).await;
    let sent: Vec<&Sent> = customer_sent.iter().chain(&agent_sent).collect();
    assert_stored_once(&stored, &sent, &acked_all);
    let joined: Vec<&Value> = stored.iter().filter(|e| e["kind"] == "joined").collect();
    assert_eq!(joined.len(), 1, "one join only: {joined:?}");
    assert_eq!(joined[0]["agent"]["id"], "alice", "{}", joined[0]);
}

/// Every `joined` event `ws` received for agent `agent`, by conversation.
fn joins_of(ws: &Ws, agent: &str) -> Vec<String> {
    ws.seen()
        .iter()
        .filter(|f| ty(f) == "event" && f["kind"] == "joined" && f["agent"]["id"] == agent)
        .filter_map(|f| f["conversation_id"].as_str().map(str::to_string))
        .collect()
}

/// `GET /v1/conversations/{id}` as admin: its `joined` events.
async fn stored_joins(hub: &Hub, conversation_id: &str) -> Vec<Value> {
    let path = format!("/v1/conversations/{conversation_id}");
    let (status, body) = hub.http_json("GET", &path, Some(ADMIN_TOKEN), None).await;
    assert_eq!(status, 200, "GET {path}: {body}");
    body["events"]
        .as_array()
        .unwrap_or_else(|| panic!("GET {path} without events: {body}"))
        .iter()
        .filter(|e| e["kind"] == "joined")
        .cloned()
        .collect()
}

/// `GET /v1/agents` as admin: `(load, capacity)` of `agent`.
async fn load_of(hub: &Hub, agent: &str) -> (u64, u64) {
    let (status, body) = hub
        .http_json("GET", "/v1/agents", Some(ADMIN_TOKEN), None)
        .await;
    assert_eq!(status, 200, "GET /v1/agents: {body}");
    let entry = body["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["id"] == agent)
        .unwrap_or_else(|| panic!("{agent} not in {body}"));
    (
        entry["load"].as_u64().unwrap_or(u64::MAX),
        entry["capacity"].as_u64().unwrap_or(0),
    )
}

#[tokio::test]
async fn a_frozen_routing_node_that_wakes_up_assigns_nothing_twice() {
    let redis = RedisServer::start().await;
    // Two disjoint topics: `xavier` is offered sales chats and accepts them by hand,
    // `zoe` is assigned support chats directly (auto-accept), a write the woken node
    // would attempt itself.
    let config = TestConfig::default()
        .topic(TopicSpec::new("sales", &["sales"], 0))
        .topic(TopicSpec::new("support", &["support"], 0))
        .to_toml();
    let ((a, a_id), (b, b_id)) = routing_and_other(&redis.url(), &config).await;
    let xavier = b
        .create_agent("xavier", "Xavier", &[("sales", 1)], 1, false)
        .await;
    let zoe = b
        .create_agent("zoe", "Zoe", &[("support", 1)], 1, true)
        .await;
    let (mut x, _) = b.agent(&xavier).await;
    x.go_available().await;
    let (mut z, _) = b.agent(&zoe).await;
    z.go_available().await;

    // The routing node freezes with both agents free; chats arrive meanwhile (their
    // enqueue messages wait in the frozen node's socket).
    a.stop();
    wait_frozen(a.pid()).await;
    let mut customers = Vec::new();
    for topic in ["sales", "sales", "support", "support"] {
        let (mut customer, _) = b.customer(json!({})).await;
        let conv = customer
            .start_chat(topic, &format!("a {topic} question"))
            .await;
        customers.push((customer, conv));
    }
    eventually("node b routing while a is frozen", TAKEOVER, || async {
        (nodes(&b).await["routing"] == b_id.as_str()).then_some(())
    })
    .await;

    // The new routing node offers a sales chat to xavier and assigns one to zoe.
    let offer = x
        .wait_for_within("an offer from the new routing node", TAKEOVER, |f| {
            ty(f) == "offer"
        })
        .await;
    x.accept(&offer).await;
    let offered = offer["conversation_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    x.wait_event(&offered, "joined").await;
    z.wait_for_within("zoe's assignment by the new routing node", TAKEOVER, |f| {
        ty(f) == "event" && f["kind"] == "joined" && f["agent"]["id"] == "zoe"
    })
    .await;

    // The old node wakes up believing it routes, with both agents free in its memory.
    a.cont();
    // Xavier takes whatever he is offered now; none of it may become a second chat.
    let deadline = Instant::now() + Duration::from_secs(6);
    while let Some(frame) = x
        .next_frame(deadline.saturating_duration_since(Instant::now()))
        .await
    {
        if ty(&frame) == "offer" {
            let req = x.req();
            x.send(json!({"type": "accept", "req": req, "offer_id": frame["offer_id"]}))
                .await;
        }
    }
    z.expect_no(
        "a second assignment of zoe",
        Duration::from_millis(500),
        |f| ty(f) == "event" && f["kind"] == "joined" && f["agent"]["id"] == "zoe",
    )
    .await;

    // The old node stops routing; the new one goes on, alone.
    eventually("node a stepping down", TAKEOVER, || async {
        a.output().contains("stepping down").then_some(())
    })
    .await;
    for hub in [&a, &b] {
        let body = wait_routing(hub, &b_id, 2, TAKEOVER).await;
        assert_ne!(body["routing"], a_id.as_str(), "{body}");
    }

    for (agent, ws) in [("xavier", &x), ("zoe", &z)] {
        let joins = joins_of(ws, agent);
        assert_eq!(joins.len(), 1, "{agent} joined {joins:?}");
        for hub in [&a, &b] {
            let (load, capacity) = load_of(hub, agent).await;
            assert!(
                load <= capacity,
                "{agent}: load {load} over capacity {capacity}"
            );
        }
    }
    let mut assigned = 0;
    for (customer, conv) in &customers {
        let joins = stored_joins(&b, conv).await;
        assert!(
            joins.len() <= 1,
            "{conv} assigned more than once: {joins:?}"
        );
        assigned += joins.len();
        let seen = customer
            .seen()
            .iter()
            .filter(|f| is_event(f, conv, "joined"))
            .count();
        assert!(seen <= joins.len(), "{conv}: the customer saw {seen} joins");
    }
    assert_eq!(assigned, 2, "one chat each for xavier and zoe");
}

/// SIGTERM to the routing node; returns when another node routes, and how long that took.
async fn terminate_router(a: &Hub, a_id: &str, b: &Hub, b_id: &str) -> Duration {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &a.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -TERM {a_id}");
    let signalled = Instant::now();
    eventually("node b routing after a's SIGTERM", TAKEOVER, || async {
        (nodes(b).await["routing"] == b_id).then_some(())
    })
    .await;
    signalled.elapsed()
}

/// A new chat on `hub`, offered to `agent` and accepted.
async fn chat_offered_to(hub: &Hub, agent: &mut Ws, text: &str) {
    let (mut customer, _) = hub.customer(json!({})).await;
    let conv = customer.start_chat("general", text).await;
    let offer = agent.wait_offer_for(&conv).await;
    agent.accept(&offer).await;
    customer.wait_event(&conv, "joined").await;
}

#[tokio::test]
async fn a_routing_node_shutting_down_hands_routing_over_at_once() {
    let redis = RedisServer::start().await;
    let config = TestConfig::default().to_toml();
    let ((mut a, a_id), (b, b_id)) = routing_and_other(&redis.url(), &config).await;
    let (mut agent, _) = b.available_agent("alice", "Alice", &[], 3).await;
    // Node b's heartbeat tells whoever routes next that alice is connected there.
    eventually("alice in node b's heartbeat", TAKEOVER, || async {
        let body = nodes(&b).await;
        let listed = body["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|n| n["id"] == b_id.as_str() && n["connections"]["agent"].as_u64() == Some(1));
        listed.then_some(())
    })
    .await;

    let took = terminate_router(&a, &a_id, &b, &b_id).await;
    // The lease alone would take 2–3 s to run out; a handover is one bus message.
    assert!(
        took <= Duration::from_secs(2),
        "routing moved only after {took:?}\nnode a:\n{}\nnode b:\n{}",
        a.log_tail(20),
        b.log_tail(20)
    );
    let exit = a.wait_exited(TAKEOVER).await;
    assert!(exit.success(), "node a exited with {exit}");

    // And the new routing node routes.
    chat_offered_to(&b, &mut agent, "after the handover").await;
}

/// The new routing node rebuilds who is connected from the nodes' heartbeats (one a
/// second). An agent that connected and went `available` since its node's last
/// heartbeat is first taken for disconnected, and when the next heartbeat lists it, it
/// comes back `away`: it gets no offers though it chose `available` and was acked.
#[tokio::test]
async fn an_agent_available_just_before_a_handover_stays_available() {
    let redis = RedisServer::start().await;
    let config = TestConfig::default().to_toml();
    let ((a, a_id), (b, b_id)) = routing_and_other(&redis.url(), &config).await;
    let (mut agent, _) = b.available_agent("alice", "Alice", &[], 3).await;
    terminate_router(&a, &a_id, &b, &b_id).await;
    chat_offered_to(&b, &mut agent, "after the handover").await;
}

#[tokio::test]
async fn a_chat_across_nodes_goes_on_after_a_redis_restart() {
    let mut redis = RedisServer::start().await;
    let config = TestConfig::default().to_toml();
    let ((a, _), (b, _)) = routing_and_other(&redis.url(), &config).await;
    let (mut agent, _) = a.available_agent("alice", "Alice", &[], 3).await;
    let (mut customer, _) = b.customer(json!({})).await;
    let conv = customer.start_chat("general", "before the restart").await;
    let offer = agent.wait_offer_for(&conv).await;
    agent.accept(&offer).await;
    customer.wait_event(&conv, "joined").await;
    let mut acked_all = Vec::new();
    for n in 0..3 {
        let text = format!("customer before {n}");
        acked_all.push((customer.say(&conv, &text).await, text));
        let text = format!("agent before {n}");
        acked_all.push((agent.say(&conv, &text).await, text));
    }
    agent.wait_seq(&conv, acked_all[5].0).await;
    customer.wait_seq(&conv, acked_all[5].0).await;

    redis.restart().await;
    for hub in [&a, &b] {
        eventually("/readyz 200 after the restart", TAKEOVER, || async {
            (hub.get("/readyz").await.0 == 200).then_some(())
        })
        .await;
    }

    // Messages after the restart reach the other node's party live.
    for n in 0..3 {
        let text = format!("customer after {n}");
        let seq = say_until_acked(&mut customer, &conv, &text, TAKEOVER).await;
        agent
            .wait_for_within(&format!("{text} on node a"), TAKEOVER, |f| {
                ty(f) == "event" && f["conversation_id"] == conv.as_str() && f["seq"] == seq
            })
            .await;
        acked_all.push((seq, text));
        let text = format!("agent after {n}");
        let seq = say_until_acked(&mut agent, &conv, &text, TAKEOVER).await;
        customer
            .wait_for_within(&format!("{text} on node b"), TAKEOVER, |f| {
                ty(f) == "event" && f["conversation_id"] == conv.as_str() && f["seq"] == seq
            })
            .await;
        acked_all.push((seq, text));
    }
    let last = acked_all.last().map(|(seq, _)| *seq).unwrap_or(0);
    agent.wait_seq(&conv, last).await;

    let customer_view = applied(&customer, &conv);
    assert_view_complete("the customer (node b)", &customer_view, &acked_all);
    assert_eq!(last_seq(&customer_view), last);
    let agent_view = applied(&agent, &conv);
    assert_view_complete("the agent (node a)", &agent_view, &acked_all);
    assert_eq!(last_seq(&agent_view), last);
    let stored = agent.history(&conv, 0).await;
    assert_stored_once(&stored, &[], &acked_all);
    assert_eq!(last_seq(&stored), last);
    for hub in [&a, &b] {
        assert_eq!(hub.get("/readyz").await.0, 200);
    }
}

/// A frozen routing node's own agent accepts the offer it was given; the accept waits in
/// the frozen node's socket while another node takes over and has the chat accepted by
/// someone else. When the old node wakes up, that accept must not assign the chat again.
#[tokio::test]
async fn an_accept_held_by_a_frozen_routing_node_is_not_applied_after_a_takeover() {
    let redis = RedisServer::start().await;
    let config = TestConfig::default()
        .topic(TopicSpec::new("sales", &["sales"], 0))
        .to_toml();
    let ((a, a_id), (b, b_id)) = routing_and_other(&redis.url(), &config).await;
    let yuri = a
        .create_agent("yuri", "Yuri", &[("sales", 1)], 1, false)
        .await;
    let xavier = b
        .create_agent("xavier", "Xavier", &[("sales", 1)], 1, false)
        .await;
    let (mut y, _) = a.agent(&yuri).await;
    y.go_available().await;
    let (mut customer, _) = b.customer(json!({})).await;
    let conv = customer.start_chat("sales", "who takes me?").await;
    let offer = y.wait_offer_for(&conv).await;

    a.stop();
    wait_frozen(a.pid()).await;
    let accept_req = y.req();
    y.send(json!({"type": "accept", "req": accept_req, "offer_id": offer["offer_id"]}))
        .await;
    eventually("node b routing while a is frozen", TAKEOVER, || async {
        (nodes(&b).await["routing"] == b_id.as_str()).then_some(())
    })
    .await;
    let (mut x, _) = b.agent(&xavier).await;
    until_acked(
        &mut x,
        json!({"type": "status", "status": "available"}),
        TAKEOVER,
    )
    .await;
    let offer = x
        .wait_for_within("the chat offered by the new routing node", TAKEOVER, |f| {
            ty(f) == "offer" && f["conversation_id"] == conv.as_str()
        })
        .await;
    x.accept(&offer).await;
    x.wait_event(&conv, "joined").await;
    customer.wait_event(&conv, "joined").await;

    a.cont();
    let reply = y
        .wait_for_within("the reply to the held accept", TAKEOVER, |f| {
            matches!(ty(f), "ack" | "error") && f["req"] == accept_req.as_str()
        })
        .await;
    if ty(&reply) == "ack" {
        let path = format!("/v1/conversations/{conv}");
        let (_, stored) = b.http_json("GET", &path, Some(ADMIN_TOKEN), None).await;
        panic!(
            "the held accept went through: {reply}\nstored: {stored}\nnode a:\n{}\nnode b:\n{}",
            a.log_tail(30),
            b.log_tail(30)
        );
    }
    for hub in [&a, &b] {
        wait_routing(hub, &b_id, 2, TAKEOVER).await;
    }
    customer
        .expect_no("a second joined", Duration::from_millis(500), |f| {
            is_event(f, &conv, "joined")
        })
        .await;
    let joins = stored_joins(&b, &conv).await;
    assert_eq!(joins.len(), 1, "{conv} joined: {joins:?}");
    assert_eq!(joins[0]["agent"]["id"], "xavier", "{}", joins[0]);
    assert!(joins_of(&y, "yuri").is_empty(), "yuri was assigned");
    for agent in ["xavier", "yuri"] {
        let (load, capacity) = load_of(&b, agent).await;
        assert!(load <= capacity, "{agent}: load {load} over {capacity}");
    }
    assert_ne!(nodes(&a).await["routing"], a_id.as_str());
}

/// The fence of an assignment (the reservation script, `conversation/task.rs` `fenced`)
/// and the append of its `joined` are two round trips to Redis. A routing node paused
/// between them (here: frozen while it handles an accept, sent just before SIGSTOP)
/// writes its `joined` after another node took over and gave the chat to someone else.
/// Which step the frozen node had reached varies, so this fails only now and then (about
/// one run in twenty on a busy 2-core machine); whatever the step, the chat must end up
/// with one agent.
#[tokio::test]
async fn a_routing_node_frozen_while_it_assigns_never_assigns_twice() {
    let redis = RedisServer::start().await;
    let config = TestConfig::default()
        .topic(TopicSpec::new("sales", &["sales"], 0))
        .to_toml();
    let ((a, _), (b, b_id)) = routing_and_other(&redis.url(), &config).await;
    let yuri = a
        .create_agent("yuri", "Yuri", &[("sales", 1)], 1, false)
        .await;
    let xavier = b
        .create_agent("xavier", "Xavier", &[("sales", 1)], 1, false)
        .await;
    let (mut y, _) = a.agent(&yuri).await;
    y.go_available().await;
    let (mut customer, _) = b.customer(json!({})).await;
    let conv = customer.start_chat("sales", "who takes me?").await;
    let offer = y.wait_offer_for(&conv).await;

    let accept_req = y.req();
    y.send(json!({"type": "accept", "req": accept_req, "offer_id": offer["offer_id"]}))
        .await;
    a.stop();
    wait_frozen(a.pid()).await;
    eventually("node b routing while a is frozen", TAKEOVER, || async {
        (nodes(&b).await["routing"] == b_id.as_str()).then_some(())
    })
    .await;
    let (mut x, _) = b.agent(&xavier).await;
    until_acked(
        &mut x,
        json!({"type": "status", "status": "available"}),
        TAKEOVER,
    )
    .await;
    let path = format!("/v1/conversations/{conv}");
    let (_, stored) = b.http_json("GET", &path, Some(ADMIN_TOKEN), None).await;
    if stored["conversation"]["state"] == "queued" {
        // As far as Redis shows, nobody has it: the new routing node offers it.
        let offer = x
            .wait_for_within("the chat offered by the new routing node", TAKEOVER, |f| {
                ty(f) == "offer" && f["conversation_id"] == conv.as_str()
            })
            .await;
        x.request(json!({"type": "accept", "offer_id": offer["offer_id"]}))
            .await;
    }

    a.cont();
    y.wait_for_within("the reply to the accept", TAKEOVER, |f| {
        matches!(ty(f), "ack" | "error") && f["req"] == accept_req.as_str()
    })
    .await;
    for hub in [&a, &b] {
        wait_routing(hub, &b_id, 2, TAKEOVER).await;
    }
    let joins = stored_joins(&b, &conv).await;
    let (_, stored) = b.http_json("GET", &path, Some(ADMIN_TOKEN), None).await;
    assert_eq!(
        joins.len(),
        1,
        "{conv} assigned {} times: {stored}\nnode a:\n{}\nnode b:\n{}",
        joins.len(),
        a.log_tail(20),
        b.log_tail(20)
    );
    for agent in ["xavier", "yuri"] {
        let (load, capacity) = load_of(&b, agent).await;
        assert!(load <= capacity, "{agent}: load {load} over {capacity}");
    }
}
