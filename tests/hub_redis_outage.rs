//! Redis down mid-chat: requests that store events answer `unavailable` promptly (never an
//! ack, never a hang), and once Redis is back the hub recovers on its own, losing nothing
//! it acknowledged before.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use tokio::time::Instant;

/// Sends `frame` until it is acknowledged; every refusal before must be `unavailable`.
async fn retry_until_ack(ws: &mut Ws, frame: Value, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let reply = ws.request(frame.clone()).await;
        if ty(&reply) == "ack" {
            return reply;
        }
        assert_eq!(
            reply["code"], "unavailable",
            "while Redis comes back, {frame} got {reply}"
        );
        assert!(
            Instant::now() < deadline,
            "{}: the hub did not recover within {timeout:?} after Redis restarted; last reply {reply}",
            ws.name
        );
        // A retry interval, as a client would use; there is no event announcing recovery.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn redis_outage_answers_unavailable_and_the_hub_recovers_by_itself() {
    let (mut redis, hub) = setup().await;
    let Chat {
        mut customer,
        mut agent,
        conversation_id: conv,
        ..
    } = chat(&hub).await;

    let mut before = Vec::new();
    for i in 0..5 {
        let text = format!("before the outage {i}");
        before.push((customer.say(&conv, &text).await, text));
    }
    let last_before = before.last().expect("five messages").0;
    assert_eq!(last_before, 7);

    redis.kill();

    // Writes are refused promptly, with their req, and never acknowledged.
    let during = json!({"type": "message", "req": "during", "conversation_id": conv,
                        "text": "during the outage", "client_msg_id": "cm-during"});
    let asked = Instant::now();
    let reply = customer.request(during.clone()).await;
    assert_eq!(ty(&reply), "error", "a write with Redis down: {reply}");
    assert_eq!(reply["code"], "unavailable", "{reply}");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "unavailable took {:?}",
        asked.elapsed()
    );
    let reply = agent
        .request(json!({"type": "note", "conversation_id": conv, "text": "down?"}))
        .await;
    assert_eq!(
        reply["code"], "unavailable",
        "a note with Redis down: {reply}"
    );
    let reply = agent
        .request(json!({"type": "message", "conversation_id": conv, "text": "hello?"}))
        .await;
    assert_eq!(reply["code"], "unavailable", "{reply}");
    // The sockets stay open through the outage.
    customer.ping().await;
    agent.ping().await;

    redis.restart().await;

    // No hub restart: the same connections work again.
    let ack = retry_until_ack(&mut customer, during, Duration::from_secs(20)).await;
    assert_eq!(
        seq_of(&ack),
        last_before + 1,
        "refused requests must not have been applied: {ack}"
    );
    let event = agent.wait_seq(&conv, last_before + 1).await;
    assert_eq!(event["text"], "during the outage", "{event}");
    let seq = agent.say(&conv, "back again").await;
    assert_eq!(seq, last_before + 2);
    customer.wait_seq(&conv, seq).await;

    // Nothing acknowledged before the outage is missing, and seqs have no gap.
    let events = customer.history(&conv, 0).await;
    assert_eq!(
        seqs(&events),
        (1..=last_before + 2).collect::<Vec<_>>(),
        "{events:?}"
    );
    for (seq, text) in &before {
        assert_eq!(events[(*seq - 1) as usize]["text"], text.as_str());
    }

    // The router works again too: a new customer is offered to the agent.
    let (mut second, _) = hub.customer(json!({"name": "Second"})).await;
    let conv2 = second.start_chat("general", "after the outage").await;
    let offer = agent.wait_offer_for(&conv2).await;
    agent.accept(&offer).await;
    second.wait_event(&conv2, "joined").await;
}

#[tokio::test]
async fn start_during_an_outage_is_unavailable_and_creates_nothing() {
    let (mut redis, hub) = setup().await;
    let (mut customer, welcome) = hub.customer(json!({})).await;
    redis.kill();
    let reply = customer
        .request(json!({"type": "start", "topic": "general", "text": "anyone?"}))
        .await;
    assert_eq!(reply["code"], "unavailable", "{reply}");
    redis.restart().await;

    let start = json!({"type": "start", "req": "again", "topic": "general", "text": "anyone?"});
    let ack = retry_until_ack(&mut customer, start, Duration::from_secs(20)).await;
    assert_eq!(ack["seq"], 1, "{ack}");
    let conv = ack["conversation_id"].as_str().expect("conversation_id");
    // The refused start left nothing behind: the visitor holds exactly this conversation.
    let (_again, welcome) = hub.customer(json!({"session": welcome["session"]})).await;
    let listed = welcome["conversations"].as_array().expect("conversations");
    assert_eq!(listed.len(), 1, "{welcome}");
    assert_eq!(listed[0]["conversation_id"], conv, "{welcome}");
    let events = customer.history(conv, 0).await;
    assert_eq!(seqs(&events), vec![1]);
}
