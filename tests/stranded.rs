//! Nobody waits forever (issue 18): an agent who let an offer expire is offered the
//! chat again after the exclusion cooldown; agents take queued chats themselves and
//! supervisors assign them; a long wait offers the customer to leave a message.
//! Real hub binary, real redis-server.

mod common;

use std::time::Duration;

use common::{extra::*, *};
use serde_json::{json, Value};

fn config() -> HubConfig {
    HubConfig::new(
        TestConfig::default()
            .offer_timeout_ms(600)
            .router("exclusion_cooldown_ms", 1500),
    )
    .topic_key("general", "leave_message_after_s", 2)
}

#[tokio::test]
async fn the_only_agent_is_offered_the_chat_again_after_letting_it_expire() {
    let (_redis, hub) = setup_hub(&config()).await;
    let (mut ann, _) = hub.available_agent("ann", "Ann", &[], 1).await;
    let (mut customer, _) = hub.customer(json!({})).await;
    let conv = customer.start_chat("general", "hello?").await;
    let first = ann.wait_offer_for(&conv).await;
    ann.wait_for("the expiry", |f| {
        ty(f) == "offer_revoked" && f["offer_id"] == first["offer_id"]
    })
    .await;
    let second = ann
        .wait_for_within("the chat offered again", Duration::from_secs(10), |f| {
            ty(f) == "offer"
                && f["conversation_id"] == conv.as_str()
                && f["offer_id"] != first["offer_id"]
        })
        .await;
    ann.accept(&second).await;
    customer.wait_event(&conv, "joined").await;
}

#[tokio::test]
async fn an_agent_takes_a_chat_from_the_queue() {
    let (_redis, hub) = setup_hub(&config()).await;
    let token = hub.create_agent("ann", "Ann", &[], 2, false).await;
    let (mut ann, _) = hub.agent(&token).await;
    let (mut customer, _) = hub.customer(json!({"name": "Carl"})).await;
    let conv = customer.start_chat("billing", "nobody has billing").await;
    let (status, body) = hub.http_json("GET", "/v1/queue", Some(&token), None).await;
    assert_eq!(status, 200, "{body}");
    let listed = body["queue"].as_array().cloned().unwrap_or_default();
    assert!(
        listed
            .iter()
            .any(|c| c["conversation_id"] == conv.as_str() && c["customer"]["name"] == "Carl"),
        "{body}"
    );
    let ack = ann
        .ok(json!({"type": "take", "conversation_id": conv}))
        .await;
    assert_eq!(ack["conversation_id"], conv.as_str(), "{ack}");
    let joined = customer.wait_event(&conv, "joined").await;
    assert_eq!(joined["agent"]["id"], "ann", "{joined}");
    ann.wait_event(&conv, "joined").await;
    ann.err(json!({"type": "take", "conversation_id": conv}), "conflict")
        .await;
    let (status, _) = hub.http_json("GET", "/v1/queue", None, None).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_supervisor_assigns_a_chat_offered_to_someone_else() {
    let (_redis, hub) = setup_hub(&config().topic_key("general", "offer_timeout_ms", 60000)).await;
    let (mut ben, _) = hub.available_agent("ben", "Ben", &[], 1).await;
    let cat_token = hub.create_agent("cat", "Cat", &[], 1, false).await;
    let (mut cat, _) = hub.agent(&cat_token).await;
    let (mut sup, _) = hub.supervisor("sue", "Sue").await;
    let (mut customer, _) = hub.customer(json!({})).await;
    let conv = customer.start_chat("general", "hi").await;
    let offer = ben.wait_offer_for(&conv).await;
    cat.err(
        json!({"type": "assign", "conversation_id": conv, "agent": "ben"}),
        "forbidden",
    )
    .await;
    sup.ok(json!({"type": "assign", "conversation_id": conv, "agent": "cat"}))
        .await;
    let revoked = ben
        .wait_for("the offer taken", |f| {
            ty(f) == "offer_revoked" && f["offer_id"] == offer["offer_id"]
        })
        .await;
    assert_eq!(revoked["reason"], "taken", "{revoked}");
    let joined = cat.wait_event(&conv, "joined").await;
    assert_eq!(joined["agent"]["id"], "cat", "{joined}");
    sup.err(
        json!({"type": "assign", "conversation_id": conv, "agent": "ben"}),
        "conflict",
    )
    .await;
}

#[tokio::test]
async fn a_long_wait_offers_to_leave_a_message() {
    let (_redis, hub) = setup_hub(&config()).await;
    let (mut customer, _) = hub.customer(json!({})).await;
    let conv = customer.start_chat("general", "anyone there?").await;
    let frame: Value = customer
        .wait_for_within("leave_message", Duration::from_secs(10), |f| {
            ty(f) == "leave_message"
        })
        .await;
    assert_eq!(frame["conversation_id"], conv.as_str(), "{frame}");
    assert!(
        frame["waited_ms"].as_u64().is_some_and(|w| w >= 1900),
        "{frame}"
    );
}

#[tokio::test]
async fn presence_follows_agents_coming_and_going() {
    let (_redis, hub) = setup_hub(&config()).await;
    let (mut customer, welcome) = hub.customer(json!({})).await;
    assert_eq!(welcome["online"], false, "{welcome}");
    let ack = customer.ok(json!({"type": "presence"})).await;
    assert_eq!(ack["online"], false, "{ack}");
    let (mut ann, _) = hub.available_agent("ann", "Ann", &[], 1).await;
    let ack = customer.ok(json!({"type": "presence"})).await;
    assert_eq!(ack["online"], true, "{ack}");
    ann.set_status("away").await;
    let ack = customer.ok(json!({"type": "presence"})).await;
    assert_eq!(ack["online"], false, "{ack}");
    ann.err(json!({"type": "presence"}), "forbidden").await;
}

/// "Online" means someone who could take the chat is there: an agent without the
/// billing skill does not make the billing topic online (issue 18's walkthrough).
#[tokio::test]
async fn online_counts_only_agents_who_could_take_the_topic() {
    let (_redis, hub) = setup_hub(&config()).await;
    let (mut customer, _) = hub.customer(json!({})).await;
    let (mut gus, _) = hub.available_agent("gus", "Gus", &[], 1).await;
    let ack = customer.ok(json!({"type": "presence"})).await;
    assert_eq!(ack["online"], true, "the default topic: {ack}");
    let ack = customer
        .ok(json!({"type": "presence", "topic": "billing"}))
        .await;
    assert_eq!(ack["online"], false, "nobody with billing: {ack}");
    let (_bea, _) = hub
        .available_agent("bea", "Bea", &[("billing", 3)], 1)
        .await;
    let ack = customer
        .ok(json!({"type": "presence", "topic": "billing"}))
        .await;
    assert_eq!(ack["online"], true, "{ack}");
    gus.set_status("away").await;
    let ack = customer.ok(json!({"type": "presence"})).await;
    assert_eq!(ack["online"], true, "Bea can take general chats too: {ack}");
    customer
        .err(json!({"type": "presence", "topic": "nope"}), "bad_request")
        .await;
}
