//! What a customer types is checked (issue 15): customers set no ticket tags (only those
//! in `flood.customer_tags`); every customer-supplied string has a length cap with a
//! clear `too_large`/`bad_request` (4400 in `hello`); blank-looking texts (whitespace,
//! zero-width, NUL and other control characters) are refused; bidi controls are
//! stripped from names so a right-to-left override cannot reverse the text beside one.

mod common;

use common::{extra::HubConfig, *};
use serde_json::{json, Value};

async fn hub_with_flood(flood: &str) -> (RedisServer, Hub) {
    let toml = format!(
        "{}\n[flood]\n{flood}\n",
        HubConfig::new(TestConfig::default()).to_toml()
    );
    let redis = RedisServer::start().await;
    let hub = Hub::start(&redis, &toml).await;
    (redis, hub)
}

async fn customer_close_tags(hub: &Hub, tags: Value) -> Value {
    let mut chat = chat(hub).await;
    let ack = chat
        .customer
        .ok(json!({"type": "close", "conversation_id": chat.conversation_id, "tags": tags}))
        .await;
    let ticket_id = ack["ticket_id"].as_str().expect("ticket id").to_string();
    hub.wait_ticket(&ticket_id).await["tags"].clone()
}

#[tokio::test]
async fn customers_set_no_ticket_tags() {
    let (_redis, hub) = setup().await;
    let mut tags: Vec<String> = (0..201).map(|n| format!("tag{n}")).collect();
    tags.push("x".repeat(5000));
    let stored = customer_close_tags(&hub, json!(tags)).await;
    assert_eq!(stored, json!([]), "customer tags reached the ticket");
}

#[tokio::test]
async fn customers_set_only_allowed_tags() {
    let (_redis, hub) = hub_with_flood("customer_tags = [\"refund\"]").await;
    let stored = customer_close_tags(&hub, json!(["vip", "refund", "x"])).await;
    assert_eq!(stored, json!(["refund"]));
}

#[tokio::test]
async fn agents_still_set_tags() {
    let (_redis, hub) = setup().await;
    let mut chat = chat(&hub).await;
    let ack = chat
        .agent
        .ok(json!({"type": "close", "conversation_id": chat.conversation_id, "tags": ["refund", "vip"]}))
        .await;
    let ticket = hub
        .wait_ticket(ack["ticket_id"].as_str().expect("id"))
        .await;
    assert_eq!(ticket["tags"], json!(["refund", "vip"]));
}

#[tokio::test]
async fn long_hello_fields_close_with_4400() {
    let (_redis, hub) = setup().await;
    for hello in [
        json!({"type": "hello", "role": "customer", "name": "n".repeat(101)}),
        json!({"type": "hello", "role": "customer", "email": format!("{}@x.io", "e".repeat(300))}),
    ] {
        let mut ws = hub.connect_customer().await;
        ws.send(hello.clone()).await;
        ws.expect_close(4400, WAIT).await;
    }
    // At the cap is fine.
    hub.customer(json!({"name": "n".repeat(100)})).await;
}

#[tokio::test]
async fn long_customer_strings_are_too_large() {
    let (_redis, hub) = setup().await;
    let (mut ws, _) = hub.customer(json!({})).await;
    let many: serde_json::Map<String, Value> =
        (0..21).map(|n| (format!("k{n}"), json!(n))).collect();
    for metadata in [
        json!(many),
        json!({"k".repeat(65): 1}),
        json!({"page": "p".repeat(513)}),
    ] {
        ws.err(
            json!({"type": "start", "text": "hi", "metadata": metadata}),
            "too_large",
        )
        .await;
    }
    ws.err(
        json!({"type": "offline_message", "email": "a@x.io", "name": "n".repeat(101), "text": "hi"}),
        "too_large",
    )
    .await;
    ws.err(
        json!({"type": "offline_message", "email": format!("{}@x.io", "e".repeat(300)), "text": "hi"}),
        "too_large",
    )
    .await;
    let id = ws
        .ok(json!({"type": "start", "text": "hi", "metadata": {"page": "https://shop/"}}))
        .await["conversation_id"]
        .as_str()
        .expect("id")
        .to_string();
    ws.err(
        json!({"type": "message", "conversation_id": id, "text": "hi", "client_msg_id": "m".repeat(129)}),
        "too_large",
    )
    .await;
    let ack = ws.ok(json!({"type": "close", "conversation_id": id})).await;
    assert!(ack["ticket_id"].is_string());
    ws.err(
        json!({"type": "rate", "conversation_id": id, "score": 5, "comment": "c".repeat(1001)}),
        "too_large",
    )
    .await;
    ws.ok(json!({"type": "rate", "conversation_id": id, "score": 5, "comment": "fine"}))
        .await;
}

#[tokio::test]
async fn blank_looking_texts_are_refused() {
    let (_redis, hub) = setup().await;
    let (mut ws, _) = hub.customer(json!({})).await;
    let blanks = [
        "\u{200B}\u{200C}\u{200D}",
        "\u{FEFF}\u{2060} ",
        "\u{0}\u{0}\u{0}",
        "\u{1}\u{7f}\n",
        "\u{202E}\u{2066}",
    ];
    for text in blanks {
        ws.err(json!({"type": "start", "text": text}), "bad_request")
            .await;
        ws.err(
            json!({"type": "offline_message", "email": "a@x.io", "text": text}),
            "bad_request",
        )
        .await;
    }
    let id = ws.start_chat("general", "a real question").await;
    for text in blanks {
        ws.err(
            json!({"type": "message", "conversation_id": id, "text": text}),
            "bad_request",
        )
        .await;
    }
    // Text with an invisible character beside a visible one is fine.
    ws.say(&id, "\u{200B}ok").await;
}

#[tokio::test]
async fn bidi_controls_are_stripped_from_names() {
    let (_redis, hub) = setup().await;
    let token = hub.create_agent("alice", "Alice", &[], 1, false).await;
    let (mut agent, _) = hub.agent(&token).await;
    agent.go_available().await;
    // "Ann" + RLO: without stripping, the text shown after the name reads reversed.
    let (mut customer, _) = hub
        .customer(json!({"name": "Ann\u{202E}\u{2066} gnp.exe"}))
        .await;
    let id = customer.start_chat("general", "hi").await;
    let offer = agent.wait_offer_for(&id).await;
    assert_eq!(offer["customer"]["name"], "Ann gnp.exe", "{offer}");
    agent.accept(&offer).await;
    let seq = customer.say(&id, "hello").await;
    let event = agent.wait_seq(&id, seq).await;
    assert_eq!(event["from"]["name"], "Ann gnp.exe", "{event}");
    let name = event["from"]["name"].as_str().unwrap_or_default();
    assert!(
        !name
            .chars()
            .any(|c| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')),
        "{name:?}"
    );
}
