//! A customer who drops off and comes back with its `session` catches up via `welcome`
//! (`last_seq`) and `history` (`after_seq`).

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn customer_catches_up_on_missed_messages_after_reconnecting() {
    let (_redis, hub) = setup().await;
    let Chat {
        customer,
        mut agent,
        welcome,
        conversation_id: conv,
        ..
    } = chat(&hub).await;
    // The customer has applied everything up to the join.
    let applied = 2;
    customer.close().await;

    let mut missed = Vec::new();
    for text in [
        "are you there?",
        "I found the problem",
        "refund is on its way",
    ] {
        missed.push((agent.say(&conv, text).await, text));
    }
    assert_eq!(
        missed.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
        vec![3, 4, 5]
    );

    let (mut customer, welcome2) = hub.customer(json!({"session": welcome["session"]})).await;
    assert_eq!(welcome2["visitor_id"], welcome["visitor_id"], "{welcome2}");
    let listed = listed_in_welcome(&welcome2, &conv, "welcome");
    assert_eq!(listed["state"], "assigned", "{listed}");
    assert_eq!(listed["last_seq"], 5, "{listed}");

    let events = customer.history(&conv, applied).await;
    assert_eq!(
        seqs(&events),
        vec![3, 4, 5],
        "history after_seq 2: {events:?}"
    );
    for (event, (seq, text)) in events.iter().zip(&missed) {
        assert_eq!(event["seq"], *seq, "{event}");
        assert_eq!(event["text"], *text, "{event}");
        assert_eq!(event["from"]["id"], "alice", "{event}");
    }

    // And it is live again: the next message arrives without asking.
    let seq = agent.say(&conv, "welcome back").await;
    let event = customer.wait_seq(&conv, seq).await;
    assert_eq!(event["text"], "welcome back", "{event}");
}

#[tokio::test]
async fn customer_reconnecting_after_a_dropped_connection_still_gets_its_conversation() {
    let (_redis, hub) = setup().await;
    let Chat {
        customer,
        mut agent,
        welcome,
        conversation_id: conv,
        ..
    } = chat(&hub).await;
    // No Close frame: the network just went away.
    customer.drop_connection();

    let seq = agent.say(&conv, "still there?").await;
    let (mut customer, welcome2) = hub.customer(json!({"session": welcome["session"]})).await;
    let listed = listed_in_welcome(&welcome2, &conv, "welcome");
    assert_eq!(listed["last_seq"], seq, "{listed}");
    let events = customer.history(&conv, 2).await;
    assert_eq!(seqs(&events), vec![seq], "{events:?}");

    let reply = customer.say(&conv, "yes, back now").await;
    assert_eq!(reply, seq + 1);
    agent.wait_seq(&conv, reply).await;
}
