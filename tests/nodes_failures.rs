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

    // The chat goes on both ways across the nodes... now both on a.
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
