//! Flood control that survives reconnects (issue 15): limits per client address and per
//! visitor on new visitors, new chats and messages, counted in Redis; and the per-topic
//! cap on waiting chats, past which `start` answers `unavailable` with reason
//! `queue_full` (the widget's offline form). Other clients are played from other
//! loopback addresses (127.0.0.2, …); 127.0.0.1 is exempt by default.

mod common;

use common::{extra::HubConfig, from_addr::loopback, *};
use serde_json::{json, Value};

/// A hub whose config gets `flood` as its `[flood]` section, and `max_waiting` for the
/// default topic when given.
async fn hub_with(flood: &str, max_waiting: Option<u32>) -> (RedisServer, Hub) {
    let mut config = HubConfig::new(TestConfig::default());
    if let Some(max) = max_waiting {
        config = config.topic_key("general", "max_waiting", max);
    }
    let toml = format!("{}\n[flood]\n{flood}\n", config.to_toml());
    let redis = RedisServer::start().await;
    let hub = Hub::start(&redis, &toml).await;
    (redis, hub)
}

fn session_of(welcome: &Value) -> String {
    welcome["session"]
        .as_str()
        .unwrap_or_else(|| panic!("welcome without session: {welcome}"))
        .to_string()
}

#[tokio::test]
async fn new_visitors_per_address_are_limited_across_connections() {
    let (_redis, hub) = hub_with(
        "new_visitors_per_address = { limit = 3, window_s = 600 }",
        None,
    )
    .await;
    let attacker = loopback(2);
    let mut sessions = Vec::new();
    for _ in 0..3 {
        let (ws, welcome) = hub.customer_from(attacker, json!({})).await;
        sessions.push(session_of(&welcome));
        ws.close().await;
    }
    // The fourth new visitor from that address, on a fresh connection, is refused.
    let mut ws = hub.connect_customer_from(attacker).await;
    ws.send(json!({"type": "hello", "role": "customer"})).await;
    ws.expect_close(1013, WAIT).await;
    let reason = ws.closed().map(|c| c.reason.clone()).unwrap_or_default();
    assert!(reason.contains("too many new visitors"), "{reason}");

    // A returning visitor (with its session) is not a new one; another address and the
    // exempt loopback are not affected.
    let (_back, welcome) = hub
        .customer_from(attacker, json!({"session": sessions[0]}))
        .await;
    assert_eq!(
        session_of(&welcome).split('.').next(),
        sessions[0].split('.').next()
    );
    hub.customer_from(loopback(3), json!({})).await;
    for _ in 0..5 {
        hub.customer(json!({})).await;
    }
    let refused = hub
        .metric(
            "switchboard_flood_refusals_total",
            &["kind=\"new_visitor\"", "scope=\"address\""],
        )
        .await;
    assert_eq!(refused, 1.0, "new visitors refused by address");
}

#[tokio::test]
async fn starts_per_visitor_survive_reconnects_and_starts_per_address_too() {
    let (_redis, hub) = hub_with(
        "starts_per_visitor = { limit = 2, window_s = 600 }\nstarts_per_address = { limit = 4, window_s = 600 }",
        None,
    )
    .await;
    let address = loopback(4);
    let (mut ws, welcome) = hub.customer_from(address, json!({})).await;
    let session = session_of(&welcome);
    for round in 0..2 {
        let id = ws.start_chat("general", &format!("chat {round}")).await;
        ws.ok(json!({"type": "close", "conversation_id": id})).await;
        // Reconnect with the same session: the count stays.
        ws.close().await;
        ws = hub
            .customer_from(address, json!({"session": session}))
            .await
            .0;
    }
    let refused = ws
        .err(
            json!({"type": "start", "text": "third chat"}),
            "rate_limited",
        )
        .await;
    assert!(
        refused["message"]
            .as_str()
            .unwrap_or("")
            .contains("new chats"),
        "{refused}"
    );

    // Every attempt counts, refused ones too (3 so far): another visitor from the same
    // address fits the address's limit of 4, the next visitor's start does not.
    let (mut other, _) = hub.customer_from(address, json!({})).await;
    other.start_chat("general", "hello").await;
    let (mut third, _) = hub.customer_from(address, json!({})).await;
    third
        .err(json!({"type": "start", "text": "hello"}), "rate_limited")
        .await;
    // Elsewhere nothing is limited.
    let (mut elsewhere, _) = hub.customer_from(loopback(5), json!({})).await;
    elsewhere.start_chat("general", "hello").await;
}

#[tokio::test]
async fn messages_per_visitor_count_over_every_connection() {
    let (_redis, hub) =
        hub_with("messages_per_visitor = { limit = 5, window_s = 600 }", None).await;
    let address = loopback(6);
    let (mut first, welcome) = hub.customer_from(address, json!({})).await;
    let id = first.start_chat("general", "hi").await;
    for n in 0..3 {
        first.say(&id, &format!("one {n}")).await;
    }
    // A second tab of the same visitor shares the count.
    let (mut second, _) = hub
        .customer_from(address, json!({"session": session_of(&welcome)}))
        .await;
    for n in 0..2 {
        second.say(&id, &format!("two {n}")).await;
    }
    second
        .err(
            json!({"type": "message", "conversation_id": id, "text": "one too many"}),
            "rate_limited",
        )
        .await;
    first
        .err(
            json!({"type": "message", "conversation_id": id, "text": "here too"}),
            "rate_limited",
        )
        .await;
    // Pings are never limited.
    first.ping().await;
}

#[tokio::test]
async fn a_full_queue_answers_start_with_queue_full() {
    let (_redis, hub) = hub_with("", Some(2)).await;
    let mut waiting = Vec::new();
    for n in 0..2 {
        let (mut ws, _) = hub.customer(json!({})).await;
        let id = ws.start_chat("general", &format!("waiting {n}")).await;
        // The router has it once it sends the queue position.
        ws.wait_for("queue position", |f| {
            ty(f) == "queue" && f["conversation_id"] == id.as_str()
        })
        .await;
        waiting.push(ws);
    }
    let (mut late, _) = hub.customer(json!({})).await;
    let refused = late
        .err(json!({"type": "start", "text": "anyone?"}), "unavailable")
        .await;
    assert_eq!(refused["reason"], "queue_full", "{refused}");
    // The offline form still works.
    let ack = late
        .ok(json!({"type": "offline_message", "email": "a@x.io", "text": "call me"}))
        .await;
    assert!(
        ack["ticket_id"]
            .as_str()
            .is_some_and(|t| t.starts_with("t_")),
        "{ack}"
    );
    // Another topic has its own cap.
    late.start_chat("billing", "invoice").await;
    // Once one leaves the queue, there is room again.
    let first = &mut waiting[0];
    let welcome_id = first
        .seen()
        .iter()
        .find(|f| ty(f) == "queue")
        .and_then(|f| f["conversation_id"].as_str())
        .map(str::to_string)
        .expect("queue frame");
    first
        .ok(json!({"type": "close", "conversation_id": welcome_id}))
        .await;
    let (mut next, _) = hub.customer(json!({})).await;
    let mut started = None;
    for _ in 0..50 {
        let reply = next
            .request(json!({"type": "start", "text": "room now?"}))
            .await;
        if ty(&reply) == "ack" {
            started = Some(reply);
            break;
        }
        assert_eq!(reply["reason"], "queue_full", "{reply}");
        // The router hears of the close just after the close's ack: ask again.
        next.ping().await;
    }
    assert!(started.is_some(), "a start after a place was freed");
}
