//! Promises about agents that no other test held the hub to:
//!
//! - an agent's other tabs get `offer_revoked` with reason `taken` when one tab accepts
//!   (`docs/protocol.md`, additions);
//! - a supervisor may `transfer` any conversation, a plain agent who does not own it gets
//!   `forbidden` (contract, "Supervisors … may also … `transfer` … any conversation");
//! - a chained escalation L1 → L2 → L3 offers the conversation at each step with the
//!   target topic's priority plus its `escalation_priority_boost`, and the escalated
//!   priority holds on a re-offer and on a later hand-off (`docs/routing.md`, Transfers).

mod common;

use common::extra::*;
use common::*;
use serde_json::{json, Value};

fn is_revoke_of(frame: &Value, offer: &Value) -> bool {
    ty(frame) == "offer_revoked" && frame["offer_id"] == offer["offer_id"]
}

#[tokio::test]
async fn other_tabs_get_offer_revoked_taken_when_one_tab_accepts() {
    let (_redis, hub) = setup().await;
    let token = hub.create_agent("alice", "Alice", &[], 3, false).await;
    let mut tabs = Vec::new();
    for n in 1..=3 {
        let (mut tab, _welcome) = hub.agent(&token).await;
        tab.name = format!("alice tab {n}");
        tabs.push(tab);
    }
    tabs[0].go_available().await;

    let (mut customer, _) = hub.customer(json!({})).await;
    let conv = customer.start_chat("general", "anyone there?").await;
    let offer = tabs[0].wait_offer_for(&conv).await;
    for tab in &mut tabs[1..] {
        let same = tab.wait_offer_for(&conv).await;
        assert_eq!(
            same["offer_id"], offer["offer_id"],
            "{}: every tab shows the same offer",
            tab.name
        );
    }

    // The middle tab accepts: it gets the ack and the joined event.
    let ack = tabs[1].accept(&offer).await;
    assert_eq!(ack["conversation_id"], conv.as_str(), "accept ack: {ack}");
    let joined = tabs[1].wait_event(&conv, "joined").await;
    assert_eq!(joined["agent"]["id"], "alice", "{joined}");

    // The other tabs are told the offer is taken, then see the join like any agent tab.
    for index in [0, 2] {
        let tab = &mut tabs[index];
        let revoked = tab
            .wait_for("offer_revoked for the accepted offer", |f| {
                is_revoke_of(f, &offer)
            })
            .await;
        assert_eq!(revoked["reason"], "taken", "{}: {revoked}", tab.name);
        tab.wait_event(&conv, "joined").await;
    }

    // The accepting tab is not told that its own accept took the offer. The hub pushes
    // the other tabs' revocation before the ack, so one for this tab would already have
    // arrived, ahead of the ack it has read.
    let accepting = &tabs[1];
    assert!(
        !accepting.seen().iter().any(|f| is_revoke_of(f, &offer)),
        "the accepting tab got offer_revoked for its own accept: {:?}",
        accepting.seen()
    );
    let joined = customer.wait_event(&conv, "joined").await;
    assert_eq!(joined["seq"], 2, "exactly one join: {joined}");
}

#[tokio::test]
async fn supervisor_may_transfer_a_conversation_it_does_not_own_and_a_plain_agent_may_not() {
    let (_redis, hub) = setup().await;
    let Chat {
        mut customer,
        agent: mut alice,
        conversation_id: conv,
        ..
    } = chat(&hub).await;
    let (mut bob, _) = hub.available_agent("bob", "Bob", &[], 3).await;
    let (mut carol, _) = hub.available_agent("carol", "Carol", &[], 3).await;
    let (mut sue, _) = hub.supervisor("sue", "Sue").await;

    // Carol neither owns the conversation nor supervises: both kinds of transfer refused.
    carol
        .err(
            json!({"type": "transfer", "conversation_id": conv, "to_agent": "bob"}),
            "forbidden",
        )
        .await;
    carol
        .err(
            json!({"type": "transfer", "conversation_id": conv, "to_topic": "billing"}),
            "forbidden",
        )
        .await;
    // Nothing was stored or offered: the next event is still seq 3.
    let seq = alice.say(&conv, "still mine").await;
    assert_eq!(seq, 3, "a refused transfer must store nothing");
    let events = alice.history(&conv, 0).await;
    assert_eq!(
        kinds(&events),
        vec!["message", "joined", "message"],
        "{events:?}"
    );

    // Sue, a supervisor who is not a member, hands alice's conversation to bob.
    let note = "moving this to bob";
    let ack = sue
        .ok(json!({"type": "transfer", "conversation_id": conv, "to_agent": "bob", "note": note}))
        .await;
    let transfer_seq = seq_of(&ack);
    assert_eq!(transfer_seq, 4, "{ack}");
    let event = alice.wait_seq(&conv, transfer_seq).await;
    assert_eq!(event["kind"], "transfer", "{event}");
    assert_eq!(event["from_agent"], "alice", "the owner hands off: {event}");
    assert_eq!(event["to_agent"], "bob", "{event}");

    let offer = bob.wait_offer_for(&conv).await;
    assert_eq!(offer["transfer"]["note"], note, "{offer}");
    bob.accept(&offer).await;
    let joined = customer
        .wait_for("bob's joined event", |f| {
            is_event(f, &conv, "joined") && f["agent"]["id"] == "bob"
        })
        .await;
    let left = customer.wait_event(&conv, "left").await;
    assert_eq!(left["agent"]["id"], "alice", "{left}");
    assert_eq!(left["reason"], "transferred", "{left}");
    assert!(seq_of(&joined) < seq_of(&left), "{joined} then {left}");
    alice.wait_event(&conv, "left").await;

    // Bob owns it now: he speaks, the customer hears; carol never got an offer.
    let seq = bob.say(&conv, "Bob here").await;
    customer.wait_seq(&conv, seq).await;
    assert!(
        !carol.seen().iter().any(|f| ty(f) == "offer"),
        "carol was offered something: {:?}",
        carol.seen()
    );
}

/// L1 → L2 → L3, each with an `escalation_priority_boost`; L1's own boost never applies
/// (nothing is escalated into it).
fn chain_config() -> HubConfig {
    let mut l1 = TopicSpec::new("l1", &[], 1);
    let mut l2 = TopicSpec::new("l2", &["l2"], 2);
    let mut l3 = TopicSpec::new("l3", &["l3"], 4);
    for topic in [&mut l1, &mut l2, &mut l3] {
        topic.transfer_timeout_ms = 30_000;
    }
    HubConfig::new(TestConfig::default().topic(l1).topic(l2).topic(l3))
        .topic_key("l1", "escalation_priority_boost", 7)
        .topic_key("l2", "escalation_priority_boost", 3)
        .topic_key("l3", "escalation_priority_boost", 5)
}

/// Waits for the hand-over from `from` to `to` on the customer's socket.
async fn wait_handover(customer: &mut Ws, conv: &str, from: &str, to: &str) {
    let what = format!("{to}'s joined event");
    let joined = customer
        .wait_for(&what, |f| {
            is_event(f, conv, "joined") && f["agent"]["id"] == to
        })
        .await;
    let what = format!("{from}'s left event");
    let left = customer
        .wait_for(&what, |f| {
            is_event(f, conv, "left") && f["agent"]["id"] == from
        })
        .await;
    assert_eq!(left["reason"], "transferred", "{left}");
    assert!(seq_of(&joined) < seq_of(&left), "{joined} then {left}");
}

#[tokio::test]
async fn chained_escalation_offers_each_step_at_the_target_priority_plus_its_boost() {
    let (_redis, hub) = setup_hub(&chain_config()).await;

    // L1: a new conversation is offered at the topic's own priority, no boost.
    let (mut first, _) = hub.available_agent("first", "First", &[], 3).await;
    let (mut customer, _) = hub.customer(json!({})).await;
    let conv = customer.start_chat("l1", "it is complicated").await;
    let offer = first.wait_offer_for(&conv).await;
    assert_eq!(offer["topic"], "l1", "{offer}");
    assert_eq!(offer["priority"], 1, "l1 priority 1, not boosted: {offer}");
    first.accept(&offer).await;
    customer.wait_event(&conv, "joined").await;

    // L1 → L2: priority 2 + boost 3. Bob ranks first (higher l2 level) and declines; the
    // re-offer to ben keeps the escalated priority.
    let (mut bob, _) = hub.available_agent("bob", "Bob", &[("l2", 5)], 3).await;
    let (mut ben, _) = hub.available_agent("ben", "Ben", &[("l2", 1)], 3).await;
    first
        .ok(json!({"type": "transfer", "conversation_id": conv, "to_topic": "l2"}))
        .await;
    let offer = bob.wait_offer_for(&conv).await;
    assert_eq!(offer["transfer"]["to_topic"], "l2", "{offer}");
    assert_eq!(offer["priority"], 5, "l2: 2 + boost 3: {offer}");
    bob.ok(json!({"type": "decline", "offer_id": offer["offer_id"]}))
        .await;
    let offer = ben.wait_offer_for(&conv).await;
    assert_eq!(
        offer["priority"], 5,
        "the re-offer of an escalation keeps 2 + 3: {offer}"
    );
    ben.accept(&offer).await;
    wait_handover(&mut customer, &conv, "first", "ben").await;

    // L2 → L3: priority 4 + boost 5, from the boosted L2 conversation.
    let (mut cleo, _) = hub.available_agent("cleo", "Cleo", &[("l3", 2)], 3).await;
    ben.ok(json!({"type": "transfer", "conversation_id": conv, "to_topic": "l3"}))
        .await;
    let offer = cleo.wait_offer_for(&conv).await;
    assert_eq!(offer["transfer"]["to_topic"], "l3", "{offer}");
    assert_eq!(offer["priority"], 9, "l3: 4 + boost 5: {offer}");
    cleo.accept(&offer).await;
    wait_handover(&mut customer, &conv, "ben", "cleo").await;

    // After the last escalation the conversation keeps its escalated priority: a hand-off
    // to a person is offered at 9 too.
    let (mut dora, _) = hub.available_agent("dora", "Dora", &[], 3).await;
    cleo.ok(json!({"type": "transfer", "conversation_id": conv, "to_agent": "dora"}))
        .await;
    let offer = dora.wait_offer_for(&conv).await;
    assert_eq!(
        offer["priority"], 9,
        "a hand-off after the escalation keeps its priority: {offer}"
    );
    dora.accept(&offer).await;
    wait_handover(&mut customer, &conv, "cleo", "dora").await;

    let events = customer.history(&conv, 0).await;
    let transfers: Vec<&Value> = events.iter().filter(|e| e["kind"] == "transfer").collect();
    assert_eq!(transfers.len(), 3, "{events:?}");
    assert_eq!(transfers[0]["to_topic"], "l2");
    assert_eq!(transfers[1]["to_topic"], "l3");
    assert_eq!(transfers[2]["to_agent"], "dora");
}
