//! The durability rule under `kill -9`: every acknowledged event survives a hub crash, seqs
//! stay gapless, and the restarted hub picks up where the old one stopped.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::{json, Value};

const MESSAGES: usize = 50;

fn message(conv: &str, i: usize) -> Value {
    json!({"type": "message", "req": format!("m{i}"), "conversation_id": conv,
           "text": format!("message {i}"), "client_msg_id": format!("cm-{i}")})
}

/// The message index of an ack for `m{i}`.
fn acked_index(frame: &Value) -> Option<usize> {
    if ty(frame) != "ack" {
        return None;
    }
    frame["req"].as_str()?.strip_prefix('m')?.parse().ok()
}

#[tokio::test]
async fn acknowledged_events_survive_kill_9() {
    let (_redis, mut hub) = setup().await;
    let Chat {
        mut customer,
        welcome,
        agent_token,
        conversation_id: conv,
        ..
    } = chat(&hub).await;

    // Pipeline all the messages, then crash the hub after half of them are acknowledged
    // (the rest are in flight: stored or not, acknowledged or not).
    for i in 0..MESSAGES {
        customer.send(message(&conv, i)).await;
    }
    let mut acked = 0;
    while acked < MESSAGES / 2 {
        customer
            .wait_for("an ack for one of the pipelined messages", |f| {
                acked_index(f).is_some()
            })
            .await;
        acked += 1;
    }
    hub.kill9();

    // Every ack that reached this socket before it died counts as acknowledged.
    while customer.next_frame(WAIT).await.is_some() {}
    assert!(
        customer.closed().is_some(),
        "the socket to the killed hub is not closed"
    );
    let acks: BTreeMap<usize, u64> = customer
        .seen()
        .iter()
        .filter_map(|f| Some((acked_index(f)?, seq_of(f))))
        .collect();
    assert!(acks.len() >= MESSAGES / 2);
    let errors: Vec<&Value> = customer
        .seen()
        .iter()
        .filter(|f| ty(f) == "error")
        .collect();
    assert!(errors.is_empty(), "errors before the crash: {errors:?}");

    hub.restart().await;
    eprintln!(
        "{} of {MESSAGES} messages acknowledged before the kill",
        acks.len()
    );

    let (mut customer, welcome2) = hub.customer(json!({"session": welcome["session"]})).await;
    let listed = listed_in_welcome(&welcome2, &conv, "the restarted hub's welcome");
    assert_ne!(listed["state"], "closed", "{listed}");
    let last_seq = listed["last_seq"]
        .as_u64()
        .unwrap_or_else(|| panic!("no last_seq: {listed}"));

    let events = customer.history(&conv, 0).await;
    let n = events.len() as u64;
    assert_eq!(
        seqs(&events),
        (1..=n).collect::<Vec<_>>(),
        "seqs must be 1..n without gaps after the crash"
    );
    assert_eq!(last_seq, n, "welcome last_seq vs history");
    assert!(
        n >= 2 + acks.len() as u64,
        "{} acked messages but only {n} events",
        acks.len()
    );
    for (i, seq) in &acks {
        let event = &events[(*seq - 1) as usize];
        assert_eq!(
            event["client_msg_id"],
            format!("cm-{i}"),
            "acked message {i} (seq {seq}) is missing or different after the crash: {event}"
        );
        assert_eq!(event["text"], format!("message {i}"), "{event}");
    }
    eprintln!("{} events survived the kill", events.len());
    let mut stored: BTreeMap<String, u64> = BTreeMap::new();
    for event in &events {
        if let Some(id) = event["client_msg_id"].as_str() {
            let previous = stored.insert(id.to_string(), seq_of(event));
            assert!(previous.is_none(), "{id} is stored twice: {events:?}");
        }
    }

    // The client retries everything it sent (the contract's at-least-once from the client
    // side): acknowledged ones get their first seq back, and nothing is stored twice.
    let mut final_seqs = BTreeMap::new();
    for i in 0..MESSAGES {
        let ack = customer.ok(message(&conv, i)).await;
        let seq = seq_of(&ack);
        if let Some(first) = acks.get(&i) {
            assert_eq!(seq, *first, "retry of acked message {i}: {ack}");
        }
        if let Some(first) = stored.get(&format!("cm-{i}")) {
            assert_eq!(seq, *first, "retry of stored message {i}: {ack}");
        }
        final_seqs.insert(i, seq);
    }
    let events = customer.history(&conv, 0).await;
    let total = 2 + MESSAGES as u64;
    assert_eq!(
        seqs(&events),
        (1..=total).collect::<Vec<_>>(),
        "every message stored exactly once, seqs gapless"
    );
    for (i, seq) in &final_seqs {
        assert_eq!(
            events[(*seq - 1) as usize]["client_msg_id"],
            format!("cm-{i}")
        );
    }

    // The agent comes back to its conversation too.
    let (mut agent, agent_welcome) = hub.agent(&agent_token).await;
    let listed = listed_in_welcome(
        &agent_welcome,
        &conv,
        "the agent's welcome after the restart",
    );
    assert_eq!(listed["last_seq"], total, "{listed}");
    let seq = agent.say(&conv, "sorry, we had a hiccup").await;
    assert_eq!(seq, total + 1);
    customer.wait_seq(&conv, seq).await;
}

#[tokio::test]
async fn queued_conversation_is_offered_after_kill_9() {
    let (_redis, mut hub) = setup().await;
    let token = hub.create_agent("alice", "Alice", &[], 3, false).await;
    let (mut customer, welcome) = hub.customer(json!({})).await;
    let conv = customer.start_chat("general", "is anybody there?").await;
    hub.kill9();
    drop(customer);
    hub.restart().await;

    let (mut customer, welcome2) = hub.customer(json!({"session": welcome["session"]})).await;
    let listed = listed_in_welcome(&welcome2, &conv, "the restarted hub's welcome");
    assert_eq!(listed["state"], "queued", "{listed}");

    let (mut agent, _) = hub.agent(&token).await;
    agent.go_available().await;
    let offer = agent.wait_offer_for(&conv).await;
    assert_eq!(offer["preview"], "is anybody there?", "{offer}");
    agent.accept(&offer).await;
    let joined = customer.wait_event(&conv, "joined").await;
    assert_eq!(joined["seq"], 2, "{joined}");
}
