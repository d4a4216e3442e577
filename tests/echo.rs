//! Echo of one's own messages (issue 19): a connection whose `hello` says `echo: false`
//! gets the `ack` of its `message` (with `seq` and the stored `ts`) and not the event;
//! every other connection, other tabs of the same party included, still gets it, and a
//! default `hello` behaves as the contract says.
//!
//! "Not received" is shown without waiting for a timeout: events reach a connection in
//! `seq` order, so once a later event (the other side's reply) has arrived, the own
//! message's event would have arrived before it.

mod common;

use common::*;
use serde_json::{json, Value};

/// The ack of a `message` from `ws`, asserting its `seq` and its integer `ts`.
async fn say_acked(ws: &mut Ws, conversation_id: &str, text: &str, id: &str) -> (u64, u64) {
    let ack = ws
        .ok(
            json!({"type": "message", "conversation_id": conversation_id,
                   "text": text, "client_msg_id": id}),
        )
        .await;
    let ts = ack["ts"]
        .as_u64()
        .unwrap_or_else(|| panic!("an echo-free message ack carries ts: {ack}"));
    (seq_of(&ack), ts)
}

/// Asserts `ws` was never sent the event `seq` of `conversation_id`.
fn assert_never_sent(ws: &Ws, conversation_id: &str, seq: u64) {
    let echoed = ws
        .seen()
        .iter()
        .find(|f| ty(f) == "event" && f["conversation_id"] == conversation_id && f["seq"] == seq);
    assert!(
        echoed.is_none(),
        "{} asked for no echo but was sent its own event: {echoed:?}",
        ws.name
    );
}

/// The event `seq` as a recipient got it: the author's text, id and the acked `ts`.
fn assert_is_the_message(event: &Value, text: &str, id: &str, ts: u64) {
    assert_eq!(event["kind"], "message", "event: {event}");
    assert_eq!(event["text"], text, "event: {event}");
    assert_eq!(event["client_msg_id"], id, "event: {event}");
    assert_eq!(event["ts"], ts, "the ack's ts is the event's: {event}");
}

/// A customer who said `echo: false` starts a chat that alice accepts.
async fn echo_free_customer_chat(hub: &Hub) -> (Ws, Value, Ws, String) {
    let (mut agent, _token) = hub.available_agent("alice", "Alice", &[], 3).await;
    let (mut customer, welcome) = hub.customer(json!({"echo": false})).await;
    let conv = customer.start_chat("general", "Hello, I need help").await;
    // `start` is not a `message` request: its event still reaches its author.
    customer.wait_seq(&conv, 1).await;
    assert_eq!(agent.accept_next_offer().await, conv);
    customer.wait_event(&conv, "joined").await;
    agent.wait_event(&conv, "joined").await;
    (customer, welcome, agent, conv)
}

#[tokio::test]
async fn customer_without_echo_is_acked_with_ts_and_other_connections_get_the_event() {
    let (_redis, hub) = setup().await;
    let (mut customer, welcome, mut agent, conv) = echo_free_customer_chat(&hub).await;
    let session = welcome["session"].as_str().expect("session").to_string();
    let (mut tab, _) = hub.customer(json!({"session": session})).await;
    tab.name = "customer tab (echo on)".into();

    let (seq, ts) = say_acked(&mut customer, &conv, "no echo, please", "m-1").await;
    let at_agent = agent.wait_seq(&conv, seq).await;
    assert_is_the_message(&at_agent, "no echo, please", "m-1", ts);
    let at_tab = tab.wait_seq(&conv, seq).await;
    assert_is_the_message(&at_tab, "no echo, please", "m-1", ts);

    // A resend is acked as the contract says (the first seq), and still not echoed.
    let again = customer
        .ok(json!({"type": "message", "conversation_id": conv,
                   "text": "no echo, please", "client_msg_id": "m-1"}))
        .await;
    assert_eq!(seq_of(&again), seq, "duplicate ack: {again}");

    let reply = agent.say(&conv, "Sure").await;
    assert!(reply > seq);
    customer.wait_seq(&conv, reply).await;
    assert_never_sent(&customer, &conv, seq);

    // The other tab's message is not this connection's: it is delivered here.
    let from_tab = tab.say(&conv, "from my other tab").await;
    let at_customer = customer.wait_seq(&conv, from_tab).await;
    assert_eq!(at_customer["text"], "from my other tab", "{at_customer}");

    // A message without req has no ack to stand for its event: it is echoed.
    customer
        .send(json!({"type": "message", "conversation_id": conv,
                     "text": "fire and forget", "client_msg_id": "m-2"}))
        .await;
    customer
        .wait_for("the event of a message sent without req", |f| {
            is_event(f, &conv, "message") && f["client_msg_id"] == "m-2"
        })
        .await;

    // Every other event still reaches the author: its own close included.
    customer
        .ok(json!({"type": "close", "conversation_id": conv}))
        .await;
    customer.wait_event(&conv, "closed").await;
}

#[tokio::test]
async fn agent_without_echo_is_acked_with_ts_and_its_other_tab_gets_the_event() {
    let (_redis, hub) = setup().await;
    let mut chat = chat(&hub).await;
    let conv = chat.conversation_id.clone();
    let mut quiet = hub.connect_agent().await;
    quiet.name = "agent alice (echo off)".into();
    quiet
        .hello(
            json!({"type": "hello", "role": "agent", "token": chat.agent_token,
                      "echo": false}),
        )
        .await;

    let (seq, ts) = say_acked(&mut quiet, &conv, "How can I help?", "a-1").await;
    let at_customer = chat.customer.wait_seq(&conv, seq).await;
    assert_is_the_message(&at_customer, "How can I help?", "a-1", ts);
    let at_other_tab = chat.agent.wait_seq(&conv, seq).await;
    assert_is_the_message(&at_other_tab, "How can I help?", "a-1", ts);

    let reply = chat.customer.say(&conv, "My invoice").await;
    quiet.wait_seq(&conv, reply).await;
    assert_never_sent(&quiet, &conv, seq);

    // Notes are not messages: the author's own note still comes back to it.
    let note = quiet
        .ok(json!({"type": "note", "conversation_id": conv, "text": "VIP"}))
        .await;
    quiet.wait_seq(&conv, seq_of(&note)).await;
}

#[tokio::test]
async fn default_hello_echoes_and_its_ack_is_unchanged() {
    let (_redis, hub) = setup().await;
    let mut chat = chat(&hub).await;
    let conv = chat.conversation_id.clone();

    let ack = chat
        .customer
        .ok(json!({"type": "message", "conversation_id": conv,
                   "text": "echo me", "client_msg_id": "m-1"}))
        .await;
    assert!(
        ack.get("ts").is_none(),
        "a default ack carries no ts: {ack}"
    );
    let seq = seq_of(&ack);
    let own = chat.customer.wait_seq(&conv, seq).await;
    assert_eq!(own["client_msg_id"], "m-1", "{own}");
    chat.agent.wait_seq(&conv, seq).await;

    let agent_seq = chat.agent.say(&conv, "echo me too").await;
    chat.agent.wait_seq(&conv, agent_seq).await;
}

#[tokio::test]
async fn history_still_returns_own_messages_without_echo() {
    let (_redis, hub) = setup().await;
    let (mut customer, _welcome, mut agent, conv) = echo_free_customer_chat(&hub).await;
    let (seq, ts) = say_acked(&mut customer, &conv, "for the record", "m-1").await;
    agent.wait_seq(&conv, seq).await;

    let events = customer.history(&conv, 0).await;
    let own = events
        .iter()
        .find(|e| e["seq"] == seq)
        .unwrap_or_else(|| panic!("history lacks own message {seq}: {events:?}"));
    assert_is_the_message(own, "for the record", "m-1", ts);
    assert_eq!(seqs(&events), (1..=seq).collect::<Vec<_>>());
}
