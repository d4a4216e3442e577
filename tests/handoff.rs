//! Handoffs mid-chat (issue 4): transfer to a named agent (accepted, declined, timed out,
//! target away or full; the current agent keeps the chat until the new one accepts, then
//! the new one `joined` and the old one `left` with reason `transferred`), escalation to a
//! topic (offered by skills, with widening), internal notes that never reach the customer,
//! and supervisors who monitor and whisper (plain agents refused: `tests/hub_supervisor.rs`).
//!
//! Contract: `transfer`, `transfer_failed`, `note`, `monitor` in `docs/protocol.md`;
//! `offer.transfer` and the `left.reason` values in `docs/decisions.md`.

mod common;

use std::time::Duration;

use common::extra::{assert_customer_never_saw_a_note, setup_hub, HubConfig};
use common::*;
use serde_json::{json, Value};
use tokio::time::Instant;

const NOTE: &str = "wants a refund over 500";

fn transfer_to_agent(conversation_id: &str, to: &str) -> Value {
    json!({"type": "transfer", "conversation_id": conversation_id, "to_agent": to, "note": NOTE})
}

fn transfer_to_topic(conversation_id: &str, topic: &str) -> Value {
    json!({"type": "transfer", "conversation_id": conversation_id, "to_topic": topic, "note": NOTE})
}

fn is_transfer_failed(frame: &Value, conversation_id: &str) -> bool {
    ty(frame) == "transfer_failed" && frame["conversation_id"] == conversation_id
}

/// The `agent.id` of a `joined`/`left` event.
fn agent_of(event: &Value) -> &str {
    event["agent"]["id"].as_str().unwrap_or("")
}

/// After a failed transfer the requester still owns the chat: its message reaches the
/// customer, and the stored history shows nobody else joined and nobody left.
async fn assert_still_owned_by_alice(alice: &mut Ws, customer: &mut Ws, conversation_id: &str) {
    let seq = alice.say(conversation_id, "Still with you").await;
    let message = customer.wait_seq(conversation_id, seq).await;
    assert_eq!(message["from"]["id"], "alice", "{message}");
    let history = alice.history(conversation_id, 0).await;
    let joined: Vec<&str> = history
        .iter()
        .filter(|e| e["kind"] == "joined")
        .map(agent_of)
        .collect();
    assert_eq!(
        joined,
        ["alice"],
        "joins after a failed transfer: {history:?}"
    );
    assert!(
        !history.iter().any(|e| e["kind"] == "left"),
        "nobody may leave after a failed transfer: {history:?}"
    );
    assert!(customer.closed().is_none(), "the customer stays connected");
}

#[tokio::test]
async fn transfer_to_agent_accepted_hands_over_with_the_note_and_full_history() {
    let (_redis, hub) = setup().await;
    let Chat {
        mut customer,
        agent: mut alice,
        conversation_id: c,
        ..
    } = chat(&hub).await;
    // Bob comes online only now, so the first offer went to alice.
    let (mut bob, _) = hub.available_agent("bob", "Bob", &[], 3).await;

    let note_ack = alice
        .ok(json!({"type": "note", "conversation_id": c, "text": "checked the billing system"}))
        .await;
    let note_seq = seq_of(&note_ack);
    let ack = alice.ok(transfer_to_agent(&c, "bob")).await;
    let transfer_seq = seq_of(&ack);

    // Everyone sees the stored transfer event; only agents see its note.
    let seen_by_customer = customer.wait_event(&c, "transfer").await;
    assert_eq!(
        seq_of(&seen_by_customer),
        transfer_seq,
        "{seen_by_customer}"
    );
    assert_eq!(
        seen_by_customer["from_agent"], "alice",
        "{seen_by_customer}"
    );
    assert_eq!(seen_by_customer["to_agent"], "bob", "{seen_by_customer}");
    assert!(
        seen_by_customer.get("note").is_none(),
        "the customer's transfer event must not carry the note: {seen_by_customer}"
    );
    let seen_by_alice = alice.wait_event(&c, "transfer").await;
    assert_eq!(seen_by_alice["note"], NOTE, "{seen_by_alice}");

    // Bob is offered the conversation with who hands it over and why.
    let offer = bob.wait_offer_for(&c).await;
    assert_eq!(offer["transfer"]["from_agent"], "alice", "{offer}");
    assert_eq!(offer["transfer"]["note"], NOTE, "{offer}");
    bob.accept(&offer).await;

    // The new agent joins before the old one leaves: the customer always has an owner.
    let joined = customer
        .wait_for("bob's joined event", |f| {
            is_event(f, &c, "joined") && f["agent"]["id"] == "bob"
        })
        .await;
    let left = customer.wait_event(&c, "left").await;
    assert_eq!(agent_of(&left), "alice", "{left}");
    assert_eq!(left["reason"], "transferred", "{left}");
    assert!(
        seq_of(&joined) < seq_of(&left),
        "joined ({joined}) must come before left ({left})"
    );
    assert!(seq_of(&joined) > transfer_seq, "{joined}");
    let alice_left = alice.wait_event(&c, "left").await;
    assert_eq!(seq_of(&alice_left), seq_of(&left), "{alice_left}");
    bob.wait_seq(&c, seq_of(&joined)).await;

    // Bob now has the full history, the earlier note and the transfer's note included.
    let history = bob.history(&c, 0).await;
    assert_eq!(
        seqs(&history),
        (1..=seq_of(&left)).collect::<Vec<_>>(),
        "bob's history: {history:?}"
    );
    let note = &history[note_seq as usize - 1];
    assert_eq!(note["kind"], "note", "{note}");
    assert_eq!(note["text"], "checked the billing system", "{note}");
    assert_eq!(history[transfer_seq as usize - 1]["note"], NOTE);

    // Bob owns the chat now; alice is no longer a member.
    let seq = bob.say(&c, "Hi, I am Bob, I can do the refund").await;
    let message = customer.wait_seq(&c, seq).await;
    assert_eq!(message["from"]["id"], "bob", "{message}");
    alice
        .err(
            json!({"type": "message", "conversation_id": c, "text": "still here?"}),
            "forbidden",
        )
        .await;

    assert!(customer.closed().is_none(), "the customer stays connected");
    assert_customer_never_saw_a_note(&mut customer, &c).await;
}

#[tokio::test]
async fn transfer_to_an_agent_hands_over_on_accept() {
    let (_redis, hub) = setup().await;
    let Chat {
        mut customer,
        mut agent,
        conversation_id: conv,
        ..
    } = chat(&hub).await;
    let (mut bob, _) = hub.available_agent("bob", "Bob", &[], 3).await;

    let ack = agent.ok(transfer_to_agent(&conv, "bob")).await;
    assert_eq!(ack["seq"], 3, "transfer ack: {ack}");

    // The customer sees the transfer, never its note.
    let transfer = customer.wait_seq(&conv, 3).await;
    assert_eq!(transfer["kind"], "transfer", "{transfer}");
    assert_eq!(transfer["from_agent"], "alice", "{transfer}");
    assert_eq!(transfer["to_agent"], "bob", "{transfer}");
    assert!(
        transfer.get("note").is_none_or(|n| n.is_null()),
        "the transfer note reached the customer: {transfer}"
    );

    let offer = bob.wait_offer_for(&conv).await;
    assert_eq!(offer["transfer"]["from_agent"], "alice", "{offer}");
    assert_eq!(offer["transfer"]["note"], NOTE, "{offer}");

    // Until bob accepts, alice still owns it.
    let seq = customer.say(&conv, "hello?").await;
    agent.wait_seq(&conv, seq).await;

    bob.accept(&offer).await;
    let joined = customer.wait_event(&conv, "joined").await;
    let joined = if joined["agent"]["id"] == "alice" {
        customer.wait_event(&conv, "joined").await
    } else {
        joined
    };
    assert_eq!(joined["agent"]["id"], "bob", "{joined}");
    let left = customer.wait_event(&conv, "left").await;
    assert_eq!(left["agent"]["id"], "alice", "{left}");
    assert_eq!(left["reason"], "transferred", "{left}");
    assert!(
        seq_of(&joined) < seq_of(&left),
        "the new agent joins, then the old one leaves"
    );

    let seq = customer.say(&conv, "hi bob").await;
    bob.wait_seq(&conv, seq).await;

    let events = customer.history(&conv, 0).await;
    assert!(
        !events.iter().any(|e| e.to_string().contains(NOTE)),
        "customer history holds the transfer note: {events:?}"
    );
    let events = bob.history(&conv, 0).await;
    let transfer = events
        .iter()
        .find(|e| e["kind"] == "transfer")
        .unwrap_or_else(|| panic!("no transfer event in bob's history: {events:?}"));
    assert_eq!(transfer["note"], NOTE, "agents see the note: {transfer}");
}

#[tokio::test]
async fn transfer_declined_tells_the_requester_who_keeps_the_chat() {
    let (_redis, hub) = setup().await;
    let Chat {
        mut customer,
        agent: mut alice,
        conversation_id: c,
        ..
    } = chat(&hub).await;
    let (mut bob, _) = hub.available_agent("bob", "Bob", &[], 3).await;

    alice.ok(transfer_to_agent(&c, "bob")).await;
    let offer = bob.wait_offer_for(&c).await;
    bob.ok(json!({"type": "decline", "offer_id": offer["offer_id"]}))
        .await;

    let failed = alice
        .wait_for("transfer_failed", |f| is_transfer_failed(f, &c))
        .await;
    assert_eq!(failed["reason"], "declined", "{failed}");
    assert_still_owned_by_alice(&mut alice, &mut customer, &c).await;
    assert_customer_never_saw_a_note(&mut customer, &c).await;
}

#[tokio::test]
async fn transfer_not_answered_in_time_fails_with_timeout() {
    const TRANSFER_TIMEOUT_MS: u64 = 800;
    let config = TestConfig::default().transfer_timeout_ms(TRANSFER_TIMEOUT_MS);
    let (_redis, hub) = setup_with(config).await;
    let Chat {
        mut customer,
        agent: mut alice,
        conversation_id: c,
        ..
    } = chat(&hub).await;
    let (mut bob, _) = hub.available_agent("bob", "Bob", &[], 3).await;

    let asked = Instant::now();
    alice.ok(transfer_to_agent(&c, "bob")).await;
    let offer = bob.wait_offer_for(&c).await;
    // Bob lets the offer lie.
    let failed = alice
        .wait_for("transfer_failed", |f| is_transfer_failed(f, &c))
        .await;
    let elapsed = asked.elapsed();
    assert_eq!(failed["reason"], "timeout", "{failed}");
    assert!(
        elapsed >= Duration::from_millis(TRANSFER_TIMEOUT_MS - 20),
        "transfer_failed after {elapsed:?}, before the transfer timeout of {TRANSFER_TIMEOUT_MS} ms"
    );

    // The offer is withdrawn and can no longer be taken.
    let revoked = bob
        .wait_for("offer_revoked for the transfer offer", |f| {
            ty(f) == "offer_revoked" && f["offer_id"] == offer["offer_id"]
        })
        .await;
    assert_eq!(revoked["reason"], "expired", "{revoked}");
    let late = bob
        .request(json!({"type": "accept", "offer_id": offer["offer_id"]}))
        .await;
    assert_eq!(ty(&late), "error", "accepting a timed-out transfer: {late}");

    assert_still_owned_by_alice(&mut alice, &mut customer, &c).await;
}

#[tokio::test]
async fn unanswered_transfer_fails_and_the_agent_keeps_the_conversation() {
    let (_redis, hub) = setup_with(TestConfig::default().transfer_timeout_ms(1000)).await;
    let Chat {
        mut customer,
        mut agent,
        conversation_id: conv,
        ..
    } = chat(&hub).await;
    let (mut bob, _) = hub.available_agent("bob", "Bob", &[], 3).await;

    agent.ok(transfer_to_agent(&conv, "bob")).await;
    let offer = bob.wait_offer_for(&conv).await;
    let failed = agent
        .wait_for_within("transfer_failed", Duration::from_secs(6), |f| {
            ty(f) == "transfer_failed"
        })
        .await;
    assert_eq!(failed["conversation_id"], conv.as_str(), "{failed}");
    assert_eq!(failed["reason"], "timeout", "{failed}");

    // The offer is gone and alice still owns the conversation.
    bob.wait_for("the transfer offer withdrawn", |f| {
        ty(f) == "offer_revoked" && f["offer_id"] == offer["offer_id"]
    })
    .await;
    let seq = customer.say(&conv, "still there?").await;
    agent.wait_seq(&conv, seq).await;
    let events = customer.history(&conv, 0).await;
    assert!(
        !events.iter().any(|e| e["kind"] == "left"),
        "the customer was left without an owner: {events:?}"
    );
}

#[tokio::test]
async fn transfer_to_an_away_or_full_agent_fails_unavailable() {
    let (_redis, hub) = setup().await;
    let Chat {
        mut customer,
        agent: mut alice,
        conversation_id: c,
        ..
    } = chat(&hub).await;

    // Bob is connected but away.
    let bob_token = hub.create_agent("bob", "Bob", &[], 1, false).await;
    let (mut bob, _) = hub.agent(&bob_token).await;
    alice.request(transfer_to_agent(&c, "bob")).await;
    let failed = alice
        .wait_for("transfer_failed (bob away)", |f| is_transfer_failed(f, &c))
        .await;
    assert_eq!(failed["reason"], "unavailable", "{failed}");
    bob.expect_no("an offer while away", Duration::from_millis(300), |f| {
        ty(f) == "offer"
    })
    .await;

    // Bob is available but full: alice steps away so bob gets the next chat, which
    // fills his one slot.
    alice.set_status("away").await;
    bob.go_available().await;
    let (mut other, _) = hub.customer(json!({"name": "Otto"})).await;
    let other_chat = other.start_chat("general", "Another question").await;
    assert_eq!(bob.accept_next_offer().await, other_chat);
    bob.wait_event(&other_chat, "joined").await;

    alice.request(transfer_to_agent(&c, "bob")).await;
    let failed = alice
        .wait_for("transfer_failed (bob full)", |f| is_transfer_failed(f, &c))
        .await;
    assert_eq!(failed["reason"], "unavailable", "{failed}");

    assert_still_owned_by_alice(&mut alice, &mut customer, &c).await;
}

/// `tier2_fr` needs tier2 and fr; after 1500 ms of escalation fr is dropped.
fn escalation_config() -> HubConfig {
    let mut tier2_fr = TopicSpec::new("tier2_fr", &["tier2", "fr"], 3);
    tier2_fr.expand = vec![(1500, vec!["fr".to_string()])];
    tier2_fr.transfer_timeout_ms = 10_000;
    let mut tier3 = TopicSpec::new("tier3", &["tier3"], 0);
    tier3.transfer_timeout_ms = 700;
    HubConfig::new(TestConfig::default().topic(tier2_fr).topic(tier3)).topic_key(
        "tier2_fr",
        "escalation_priority_boost",
        4,
    )
}

#[tokio::test]
async fn escalation_to_a_topic_widens_and_hands_over() {
    let (_redis, hub) = setup_hub(&escalation_config()).await;
    let chat_started = Instant::now();
    let Chat {
        mut customer,
        agent: mut alice,
        conversation_id: c,
        ..
    } = chat(&hub).await;
    // Only a tier2 agent without fr exists, and an fr agent without tier2.
    let (mut carol, _) = hub
        .available_agent("carol", "Carol", &[("tier2", 3)], 3)
        .await;
    let (mut dave, _) = hub.available_agent("dave", "Dave", &[("fr", 5)], 3).await;

    alice
        .ok(json!({"type": "note", "conversation_id": c, "text": "customer is on the pro plan"}))
        .await;
    let ack = alice.ok(transfer_to_topic(&c, "tier2_fr")).await;
    let transfer_seq = seq_of(&ack);
    let event = customer.wait_event(&c, "transfer").await;
    assert_eq!(event["to_topic"], "tier2_fr", "{event}");
    assert_eq!(event["from_agent"], "alice", "{event}");
    assert!(
        event.get("note").is_none(),
        "note shown to the customer: {event}"
    );

    // Nobody has tier2+fr: carol is offered the chat only once fr is dropped.
    let offer = carol
        .wait_for_within("the escalation offer", Duration::from_secs(6), |f| {
            ty(f) == "offer" && f["conversation_id"] == c
        })
        .await;
    let offered_after = chat_started.elapsed();
    assert!(
        offered_after >= Duration::from_millis(1500),
        "carol (no fr) was offered the chat after {offered_after:?}, before the 1500 ms widening"
    );
    assert_eq!(offer["transfer"]["from_agent"], "alice", "{offer}");
    assert_eq!(offer["transfer"]["note"], NOTE, "{offer}");
    assert_eq!(
        offer["priority"], 7,
        "topic priority 3 + escalation boost 4: {offer}"
    );
    carol.accept(&offer).await;

    let joined = customer
        .wait_for("carol's joined event", |f| {
            is_event(f, &c, "joined") && f["agent"]["id"] == "carol"
        })
        .await;
    let left = customer.wait_event(&c, "left").await;
    assert_eq!(agent_of(&left), "alice", "{left}");
    assert_eq!(left["reason"], "transferred", "{left}");
    assert!(seq_of(&joined) > transfer_seq && seq_of(&joined) < seq_of(&left));

    // Carol has the notes; the customer never did.
    let history = carol.history(&c, 0).await;
    let notes: Vec<&Value> = history.iter().filter(|e| e["kind"] == "note").collect();
    assert_eq!(notes.len(), 1, "carol's history: {history:?}");
    assert_eq!(notes[0]["text"], "customer is on the pro plan");
    let seq = carol.say(&c, "Bonjour, Carol from tier 2").await;
    customer.wait_seq(&c, seq).await;
    assert_customer_never_saw_a_note(&mut customer, &c).await;

    // Dave (fr only) never qualified.
    dave.expect_no(
        "an offer for the escalation",
        Duration::from_millis(200),
        |f| ty(f) == "offer",
    )
    .await;
}

#[tokio::test]
async fn transfer_to_a_topic_goes_to_an_agent_with_its_skills() {
    let (_redis, hub) = setup().await;
    let Chat {
        mut customer,
        mut agent,
        conversation_id: conv,
        ..
    } = chat(&hub).await;
    let (mut gina, _) = hub.available_agent("gina", "Gina", &[], 3).await;
    let (mut bill, _) = hub
        .available_agent("bill", "Bill", &[("billing", 5)], 3)
        .await;

    agent.ok(transfer_to_topic(&conv, "billing")).await;
    let offer = bill.wait_offer_for(&conv).await;
    assert_eq!(offer["topic"], "billing", "{offer}");
    assert_eq!(offer["transfer"]["from_agent"], "alice", "{offer}");
    bill.accept(&offer).await;
    let left = customer.wait_event(&conv, "left").await;
    assert_eq!(left["agent"]["id"], "alice", "{left}");
    let events = customer.history(&conv, 0).await;
    let joined: Vec<_> = events
        .iter()
        .filter(|e| e["kind"] == "joined")
        .map(|e| e["agent"]["id"].clone())
        .collect();
    assert_eq!(joined, vec![json!("alice"), json!("bill")], "{events:?}");
    gina.ping().await;
    assert!(
        !gina
            .seen()
            .iter()
            .any(|f| ty(f) == "offer" && f["conversation_id"] == conv.as_str()),
        "gina has no billing skill but was offered the escalation"
    );
}

#[tokio::test]
async fn escalation_nobody_can_take_fails_with_timeout() {
    let (_redis, hub) = setup_hub(&escalation_config()).await;
    let Chat {
        mut customer,
        agent: mut alice,
        conversation_id: c,
        ..
    } = chat(&hub).await;

    let asked = Instant::now();
    alice.ok(transfer_to_topic(&c, "tier3")).await;
    let failed = alice
        .wait_for("transfer_failed", |f| is_transfer_failed(f, &c))
        .await;
    assert_eq!(failed["reason"], "timeout", "{failed}");
    assert!(
        asked.elapsed() >= Duration::from_millis(680),
        "transfer_failed after {:?}, before the 700 ms transfer timeout",
        asked.elapsed()
    );
    assert_still_owned_by_alice(&mut alice, &mut customer, &c).await;
}

#[tokio::test]
async fn customer_never_receives_a_note() {
    let (_redis, hub) = setup().await;
    let Chat {
        mut customer,
        agent: mut alice,
        conversation_id: c,
        ..
    } = chat(&hub).await;

    let note = alice
        .ok(json!({"type": "note", "conversation_id": c, "text": "internal: VIP"}))
        .await;
    let note_seq = seq_of(&note);
    let seq = alice.say(&c, "How can I help?").await;
    assert_eq!(seq, note_seq + 1);
    // The message after the note arrives; the note (its seq) never did.
    customer.wait_seq(&c, seq).await;
    assert!(
        !customer
            .seen()
            .iter()
            .any(|f| f["conversation_id"] == c && f["seq"] == note_seq),
        "the customer received seq {note_seq} (a note): {:?}",
        customer.seen()
    );
    let history = customer.history(&c, 0).await;
    assert!(
        !seqs(&history).contains(&note_seq),
        "the note is in the customer's history: {history:?}"
    );
    assert_customer_never_saw_a_note(&mut customer, &c).await;

    // The agent's own history has it.
    let agent_history = alice.history(&c, 0).await;
    assert_eq!(agent_history[note_seq as usize - 1]["kind"], "note");
}

#[tokio::test]
async fn supervisor_monitors_sees_notes_and_whispers() {
    let (_redis, hub) = setup().await;
    let Chat {
        mut customer,
        agent: mut alice,
        conversation_id: c,
        ..
    } = chat(&hub).await;
    let (mut sam, _) = hub.supervisor("sam", "Sam").await;

    let ack = sam
        .ok(json!({"type": "monitor", "conversation_id": c}))
        .await;
    assert_eq!(ack["last_seq"], 2, "start and joined so far: {ack}");

    // The agent's note and the customer's message both reach the supervisor.
    let note = alice
        .ok(json!({"type": "note", "conversation_id": c, "text": "checked billing system"}))
        .await;
    let seen = sam.wait_seq(&c, seq_of(&note)).await;
    assert_eq!(seen["kind"], "note", "{seen}");
    assert_eq!(seen["text"], "checked billing system", "{seen}");
    assert_eq!(seen["from"]["id"], "alice", "{seen}");
    let seq = customer.say(&c, "Any news?").await;
    let seen = sam.wait_seq(&c, seq).await;
    assert_eq!(seen["kind"], "message", "{seen}");

    // A whisper: the supervisor's note reaches the agent, not the customer.
    let whisper = sam
        .ok(json!({"type": "note", "conversation_id": c, "text": "offer 10% off"}))
        .await;
    let heard = alice.wait_seq(&c, seq_of(&whisper)).await;
    sam.wait_seq(&c, seq_of(&whisper)).await;
    assert_eq!(heard["kind"], "note", "{heard}");
    assert_eq!(heard["from"]["id"], "sam", "{heard}");
    let seq = alice.say(&c, "I can offer 10% off").await;
    customer.wait_seq(&c, seq).await;
    sam.wait_seq(&c, seq).await;
    assert_customer_never_saw_a_note(&mut customer, &c).await;

    // The supervisor never joined.
    let history = alice.history(&c, 0).await;
    assert!(
        !history
            .iter()
            .any(|e| e["kind"] == "joined" && agent_of(e) == "sam"),
        "monitoring must not join: {history:?}"
    );

    // After unmonitor the supervisor gets nothing more.
    sam.ok(json!({"type": "unmonitor", "conversation_id": c}))
        .await;
    let after = alice.say(&c, "Anything else?").await;
    customer.wait_seq(&c, after).await;
    sam.expect_no("events after unmonitor", Duration::from_millis(300), |f| {
        ty(f) == "event" && f["conversation_id"] == c && f["seq"].as_u64() >= Some(after)
    })
    .await;
}

/// The transfer picker's list, for every agent: the others' names, status and load, and
/// the topics; nothing else of their profiles.
#[tokio::test]
async fn every_agent_sees_whom_it_may_transfer_to() {
    let (_redis, hub) = setup().await;
    let gus = hub.create_agent("gus", "Gus", &[], 2, false).await;
    let (_bea, _) = hub
        .available_agent("bea", "Bea", &[("billing", 3)], 4)
        .await;
    let (status, body) = hub
        .http_json("GET", "/v1/transfer-targets", Some(&gus), None)
        .await;
    assert_eq!(status, 200, "{body}");
    let agents = body["agents"].as_array().expect("agents");
    assert_eq!(agents.len(), 1, "not itself: {body}");
    assert_eq!(
        agents[0],
        json!({"id": "bea", "name": "Bea", "status": "available", "load": 0, "capacity": 4})
    );
    let topics = body["topics"].as_array().expect("topics");
    assert!(topics.contains(&json!("billing")), "{body}");
    let (status, _) = hub
        .http_json("GET", "/v1/transfer-targets", None, None)
        .await;
    assert_eq!(status, 401);
}
