//! Identity verification and customer sessions (issue 15): the contract's signature (of
//! `user_id` only) verifies the id alone; the extended form signs `user_id`, `name`,
//! `email` and `issued_at` and expires after `identity.identity_max_age_s`; session
//! tokens carry their issue time, expire after `identity.session_lifetime_s`, and an
//! admin can revoke a visitor's sessions (`POST /v1/visitors/{id}/revoke`).

mod common;

use common::{store_fixtures::connect_store, *};
use serde_json::{json, Value};

fn now_s() -> u64 {
    now_ms() / 1000
}

/// The extended identity: every field shown as verified is signed, with its issue time.
fn extended_identity(user_id: &str, name: &str, email: &str, issued_at: u64) -> Value {
    let canonical = format!("{user_id}\n{name}\n{email}\n{issued_at}");
    json!({
        "user_id": user_id, "name": name, "email": email, "issued_at": issued_at,
        "signature": hmac_hex(IDENTITY_SECRET, &canonical),
    })
}

async fn refused_hello(hub: &Hub, hello: Value) -> String {
    let mut ws = hub.connect_customer().await;
    ws.send(hello).await;
    ws.expect_close(4401, WAIT).await;
    ws.closed().map(|c| c.reason.clone()).unwrap_or_default()
}

#[tokio::test]
async fn the_contract_form_verifies_the_user_id_only() {
    let (_redis, hub) = setup().await;
    let token = hub.create_agent("alice", "Alice", &[], 1, false).await;
    let (mut agent, _) = hub.agent(&token).await;
    agent.go_available().await;
    let (mut customer, welcome) = hub
        .customer(json!({"identity": identity("u42", "Ann")}))
        .await;
    assert_eq!(welcome["verified"], true, "{welcome}");
    assert_eq!(welcome["verified_fields"], json!(["user_id"]), "{welcome}");
    let id = customer.start_chat("general", "hi").await;
    let offer = agent.wait_offer_for(&id).await;
    assert_eq!(offer["customer"]["verified"], true, "{offer}");
    assert_eq!(
        offer["customer"]["verified_fields"],
        json!(["user_id"]),
        "{offer}"
    );
    assert_eq!(
        offer["customer"]["name"], "Ann",
        "shown, though not verified"
    );
}

#[tokio::test]
async fn the_extended_form_signs_every_field_and_expires() {
    let (_redis, hub) = setup().await;
    let good = extended_identity("u7", "Bea", "bea@x.io", now_s());
    let (_ws, welcome) = hub.customer(json!({"identity": good.clone()})).await;
    assert_eq!(welcome["verified"], true, "{welcome}");
    assert_eq!(
        welcome["verified_fields"],
        json!(["user_id", "name", "email"]),
        "{welcome}"
    );
    // The same visitor as the contract form of the same user id.
    let (_ws2, plain) = hub
        .customer(json!({"identity": identity("u7", "Bea")}))
        .await;
    assert_eq!(plain["visitor_id"], welcome["visitor_id"]);

    // A name or email changed after signing is refused.
    let mut forged = good.clone();
    forged["name"] = json!("Mallory");
    refused_hello(
        &hub,
        json!({"type": "hello", "role": "customer", "identity": forged}),
    )
    .await;
    let mut forged = good.clone();
    forged["email"] = json!("mallory@x.io");
    refused_hello(
        &hub,
        json!({"type": "hello", "role": "customer", "identity": forged}),
    )
    .await;
    // Older than the default maximum age (a day), or from the future.
    let old = extended_identity("u7", "Bea", "bea@x.io", now_s() - 86_400 - 60);
    let reason = refused_hello(
        &hub,
        json!({"type": "hello", "role": "customer", "identity": old}),
    )
    .await;
    assert!(reason.contains("expired"), "{reason}");
    let future = extended_identity("u7", "Bea", "bea@x.io", now_s() + 3_600);
    refused_hello(
        &hub,
        json!({"type": "hello", "role": "customer", "identity": future}),
    )
    .await;
}

#[tokio::test]
async fn sessions_expire_and_older_tokens_are_refused() {
    let (redis, hub) = setup().await;
    let (ws, welcome) = hub.customer(json!({})).await;
    let session = welcome["session"].as_str().expect("session").to_string();
    let visitor = welcome["visitor_id"].as_str().expect("visitor").to_string();
    ws.close().await;
    // The token carries its issue time: it comes back as the same visitor.
    let (_ws, again) = hub.customer(json!({"session": session})).await;
    assert_eq!(again["visitor_id"], visitor.as_str());

    // A token issued 31 days ago (signed with the deployment's real session secret) is
    // past the default 30-day lifetime.
    let secret = connect_store(&redis)
        .await
        .session_secret()
        .await
        .expect("session secret");
    let issued = now_ms() - 31 * 86_400 * 1000;
    let signed = format!("{visitor}.{issued}");
    let stale = format!("{signed}.{}", hmac_hex(&secret, &signed));
    let reason = refused_hello(
        &hub,
        json!({"type": "hello", "role": "customer", "session": stale}),
    )
    .await;
    assert!(reason.contains("expired"), "{reason}");
    // The earlier form without an issue time never expires, so it is refused.
    let legacy = format!("{visitor}.{}", hmac_hex(&secret, &visitor));
    refused_hello(
        &hub,
        json!({"type": "hello", "role": "customer", "session": legacy}),
    )
    .await;
}

#[tokio::test]
async fn an_admin_revokes_a_visitors_sessions() {
    let (_redis, hub) = setup().await;
    let (mut ws, welcome) = hub.customer(json!({})).await;
    let session = welcome["session"].as_str().expect("session").to_string();
    let visitor = welcome["visitor_id"].as_str().expect("visitor").to_string();
    let path = format!("/v1/visitors/{visitor}/revoke");

    let (status, _) = hub.http("POST", &path, None, None).await;
    assert_eq!(status, 401, "anonymous");
    let (status, _) = hub
        .http(
            "POST",
            "/v1/visitors/not-a-visitor/revoke",
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 400);
    let (status, body) = hub.http("POST", &path, Some(ADMIN_TOKEN), None).await;
    assert_eq!(status, 204, "{body}");

    // The open connection is closed, and the token no longer opens a session.
    ws.expect_close(4401, WAIT).await;
    let reason = refused_hello(
        &hub,
        json!({"type": "hello", "role": "customer", "session": session}),
    )
    .await;
    assert!(reason.contains("revoked"), "{reason}");
    // Other visitors are not affected.
    hub.customer(json!({})).await;
}
