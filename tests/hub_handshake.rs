//! The handshake: `hello` → `welcome`, and every way it can fail with its close code
//! (contract "Transport", decisions "Close codes").

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn no_hello_in_time_closes_4408() {
    let (_redis, hub) = setup_with(TestConfig::default().limit("hello_timeout_ms", 1000)).await;
    let mut customer = hub.connect_customer().await;
    customer.expect_close(4408, WAIT).await;
    let mut agent = hub.connect_agent().await;
    agent.expect_close(4408, WAIT).await;
}

#[tokio::test]
async fn hello_that_is_not_json_closes_4400() {
    let (_redis, hub) = setup().await;
    let mut ws = hub.connect_customer().await;
    ws.send_raw("hello, is it me you're looking for").await;
    ws.expect_close(4400, WAIT).await;
}

#[tokio::test]
async fn hello_with_the_wrong_role_for_the_endpoint_closes_4400() {
    let (_redis, hub) = setup().await;
    let token = hub.create_agent("alice", "Alice", &[], 3, false).await;
    let mut ws = hub.connect_customer().await;
    ws.send(json!({"type": "hello", "role": "agent", "token": token}))
        .await;
    ws.expect_close(4400, WAIT).await;

    let mut ws = hub.connect_agent().await;
    ws.send(json!({"type": "hello", "role": "customer"})).await;
    ws.expect_close(4400, WAIT).await;
}

#[tokio::test]
async fn agent_hello_without_token_closes_4400() {
    let (_redis, hub) = setup().await;
    let mut ws = hub.connect_agent().await;
    ws.send(json!({"type": "hello", "role": "agent"})).await;
    ws.expect_close(4400, WAIT).await;
}

#[tokio::test]
async fn first_frame_other_than_hello_closes_4400() {
    let (_redis, hub) = setup().await;
    let mut ws = hub.connect_customer().await;
    ws.send(json!({"type": "ping", "req": "r1"})).await;
    ws.expect_close(4400, WAIT).await;
}

#[tokio::test]
async fn unknown_agent_token_closes_4401() {
    let (_redis, hub) = setup().await;
    hub.create_agent("alice", "Alice", &[], 3, false).await;
    let mut ws = hub.connect_agent().await;
    ws.send(json!({"type": "hello", "role": "agent", "token": "not-a-token"}))
        .await;
    ws.expect_close(4401, WAIT).await;
}

#[tokio::test]
async fn forged_session_closes_4401() {
    let (_redis, hub) = setup().await;
    let (_first, welcome) = hub.customer(json!({})).await;
    let session = welcome["session"]
        .as_str()
        .unwrap_or_else(|| panic!("welcome without session: {welcome}"))
        .to_string();

    // The same token with its first character changed (whatever the format, this changes
    // what it claims or signs), and one made up from nothing.
    let mut chars: Vec<char> = session.chars().collect();
    chars[0] = if chars[0] == 'A' { 'B' } else { 'A' };
    let tampered: String = chars.into_iter().collect();
    for forged in [tampered.as_str(), "v_0123456789abcdef.deadbeef"] {
        let mut ws = hub.connect_customer().await;
        ws.send(json!({"type": "hello", "role": "customer", "session": forged}))
            .await;
        ws.expect_close(4401, WAIT).await;
    }

    // The genuine session still works.
    let (_again, welcome_again) = hub.customer(json!({"session": session})).await;
    assert_eq!(welcome_again["visitor_id"], welcome["visitor_id"]);
}

#[tokio::test]
async fn identity_with_a_wrong_signature_closes_4401() {
    let (_redis, hub) = setup().await;
    let mut ws = hub.connect_customer().await;
    let mut forged = identity("u42", "Ann");
    forged["signature"] = json!(sign_identity("u42", "not-the-site-secret"));
    ws.send(json!({"type": "hello", "role": "customer", "identity": forged}))
        .await;
    ws.expect_close(4401, WAIT).await;

    // A signature over another user id is just as wrong.
    let mut ws = hub.connect_customer().await;
    let mut other = identity("u42", "Ann");
    other["signature"] = json!(sign_identity("u43", IDENTITY_SECRET));
    ws.send(json!({"type": "hello", "role": "customer", "identity": other}))
        .await;
    ws.expect_close(4401, WAIT).await;
}

#[tokio::test]
async fn identity_with_the_right_signature_is_verified_in_the_offer() {
    let (_redis, hub) = setup().await;
    let (mut agent, _) = hub.available_agent("alice", "Alice", &[], 3).await;

    let (mut verified, _) = hub
        .customer(json!({"identity": identity("u42", "Ann Verified")}))
        .await;
    let conversation = verified.start_chat("general", "hi, it's me").await;
    let offer = agent.wait_offer_for(&conversation).await;
    assert_eq!(offer["customer"]["verified"], true, "offer: {offer}");
    assert!(
        offer["customer"]["id"].is_string(),
        "offer.customer.id: {offer}"
    );
    agent
        .ok(json!({"type": "decline", "offer_id": offer["offer_id"]}))
        .await;

    let (mut anonymous, _) = hub.customer(json!({"name": "Bob"})).await;
    let conversation = anonymous.start_chat("general", "hello?").await;
    let offer = agent.wait_offer_for(&conversation).await;
    assert_eq!(offer["customer"]["verified"], false, "offer: {offer}");
    assert_eq!(offer["customer"]["name"], "Bob", "offer: {offer}");
}

#[tokio::test]
async fn customer_welcome_has_the_contract_fields() {
    let (_redis, hub) = setup().await;
    let (_ws, welcome) = hub.customer(json!({"email": "ann@example.com"})).await;
    assert_eq!(welcome["protocol"], 1, "welcome: {welcome}");
    assert!(welcome["session"].is_string(), "welcome: {welcome}");
    assert!(welcome["visitor_id"].is_string(), "welcome: {welcome}");
    assert_eq!(welcome["conversations"], json!([]), "welcome: {welcome}");
    assert_eq!(welcome["online"], false, "no agent is available: {welcome}");
}

#[tokio::test]
async fn customer_welcome_says_online_when_an_agent_is_available() {
    let (_redis, hub) = setup().await;
    let (_agent, _) = hub.available_agent("alice", "Alice", &[], 3).await;
    let (_ws, welcome) = hub.customer(json!({})).await;
    assert_eq!(welcome["online"], true, "welcome: {welcome}");
}

#[tokio::test]
async fn agent_welcome_has_the_contract_fields() {
    let (_redis, hub) = setup().await;
    let token = hub
        .create_agent("alice", "Alice", &[("billing", 5), ("fr", 3)], 3, false)
        .await;
    let (_ws, welcome) = hub.agent(&token).await;
    assert_eq!(welcome["protocol"], 1, "welcome: {welcome}");
    let agent = &welcome["agent"];
    assert_eq!(agent["id"], "alice", "welcome: {welcome}");
    assert_eq!(agent["name"], "Alice", "welcome: {welcome}");
    assert_eq!(
        agent["skills"],
        json!({"billing": 5, "fr": 3}),
        "welcome: {welcome}"
    );
    assert_eq!(agent["capacity"], 3, "welcome: {welcome}");
    assert_eq!(agent["supervisor"], false, "welcome: {welcome}");
    assert_eq!(welcome["status"], "away", "welcome: {welcome}");
    assert_eq!(welcome["conversations"], json!([]), "welcome: {welcome}");
}

#[tokio::test]
async fn welcome_then_the_socket_serves_requests() {
    let (_redis, hub) = setup().await;
    let (mut ws, _) = hub.customer(json!({})).await;
    ws.ping().await;
    let reply = ws.request(json!({"type": "ping", "req": "p-1"})).await;
    assert_eq!(reply, json!({"type": "ack", "req": "p-1"}));
}
