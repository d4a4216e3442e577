//! Agent disconnect grace (`[router] agent_grace_ms`): an agent whose connections all drop
//! keeps its conversations if it comes back in time; otherwise it `left` (reason
//! `disconnected`) and the conversation is routed to someone else.

mod common;

use std::time::Duration;

use common::*;
use tokio::time::Instant;

const GRACE_MS: u64 = 1500;

fn config() -> TestConfig {
    TestConfig::default().router("agent_grace_ms", GRACE_MS)
}

#[tokio::test]
async fn agent_back_within_grace_still_owns_the_conversation() {
    let (_redis, hub) = setup_with(config()).await;
    let Chat {
        mut customer,
        agent,
        agent_token,
        conversation_id: conv,
        ..
    } = chat(&hub).await;
    let (mut bob, _) = hub.available_agent("bob", "Bob", &[], 3).await;

    agent.drop_connection();
    let (mut alice, welcome) = hub.agent(&agent_token).await;
    let listed = listed_in_welcome(&welcome, &conv, "alice's welcome");
    assert_eq!(listed["state"], "assigned", "{listed}");

    // Past the grace period nothing happens: the customer must never see alice leave.
    customer
        .expect_no(
            "a left event",
            Duration::from_millis(GRACE_MS + 1000),
            |f| ty(f) == "event" && f["kind"] == "left",
        )
        .await;
    let seq = customer.say(&conv, "still with me?").await;
    let event = alice.wait_seq(&conv, seq).await;
    assert_eq!(event["text"], "still with me?", "{event}");
    let reply = alice.say(&conv, "yes").await;
    customer.wait_seq(&conv, reply).await;
    assert!(
        !bob.seen()
            .iter()
            .any(|f| ty(f) == "offer" && f["conversation_id"] == conv.as_str()),
        "bob was offered a conversation alice still owns"
    );
    bob.ping().await;
}

#[tokio::test]
async fn agent_gone_past_grace_leaves_and_the_conversation_is_rerouted() {
    let (_redis, hub) = setup_with(config()).await;
    let Chat {
        mut customer,
        agent,
        conversation_id: conv,
        ..
    } = chat(&hub).await;
    let (mut bob, _) = hub.available_agent("bob", "Bob", &[], 3).await;

    let dropped = Instant::now();
    agent.close().await;
    let left = customer
        .wait_for_within("alice's left event", Duration::from_secs(8), |f| {
            is_event(f, &conv, "left")
        })
        .await;
    let after = dropped.elapsed();
    assert!(
        after >= Duration::from_millis(GRACE_MS - 50),
        "left after {after:?}, before the {GRACE_MS} ms grace"
    );
    assert_eq!(left["agent"]["id"], "alice", "{left}");
    assert_eq!(left["reason"], "disconnected", "{left}");

    let offer = bob.wait_offer_for(&conv).await;
    bob.accept(&offer).await;
    let joined = customer.wait_event(&conv, "joined").await;
    assert_eq!(joined["agent"]["id"], "bob", "{joined}");
    let events = customer.history(&conv, 0).await;
    assert_eq!(
        kinds(&events),
        vec!["message", "joined", "left", "joined"],
        "{events:?}"
    );
}

#[tokio::test]
async fn customer_gone_past_the_idle_timeout_is_closed_as_abandoned() {
    let (_redis, hub) =
        setup_with(TestConfig::default().router("customer_idle_timeout_ms", 1500)).await;
    let Chat {
        customer,
        mut agent,
        conversation_id: conv,
        ..
    } = chat(&hub).await;
    let gone = Instant::now();
    customer.close().await;
    let closed = agent
        .wait_for_within("the abandoned close", Duration::from_secs(8), |f| {
            is_event(f, &conv, "closed")
        })
        .await;
    assert!(
        gone.elapsed() >= Duration::from_millis(1450),
        "closed after {:?}, before the idle timeout",
        gone.elapsed()
    );
    assert_eq!(closed["resolution"], "abandoned", "{closed}");
    assert!(closed["ticket_id"].is_string(), "{closed}");
}
