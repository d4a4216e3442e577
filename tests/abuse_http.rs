//! Issue 15 (part C), the REST API under abuse:
//! - `GET /v1/conversations/{id}` checks membership from the state hash before reading
//!   any event (a non-member costs no transcript read), refuses an agent who handed the
//!   chat away (as WebSocket `history` does), and still serves the whole chat, streamed;
//! - a paging cursor that is not a stream id is the client's mistake: 400, never 503;
//! - failed bearer tokens are throttled per client address (429 `rate_limited`), valid
//!   ones never count; `serve` refuses an admin token under 16 characters.

mod common;

use common::*;
use serde_json::json;

/// Transcript reads so far (`history` store round trips, in `GET /metrics`).
async fn history_reads(hub: &Hub) -> f64 {
    hub.metric("switchboard_store_seconds_count", &["op=\"history\""])
        .await
}

#[tokio::test]
async fn conversation_view_checks_membership_before_reading_events() {
    let (_redis, hub) = setup().await;
    let Chat {
        agent: mut alice,
        agent_token: alice_token,
        mut customer,
        conversation_id: c,
        ..
    } = chat(&hub).await;
    // A long-ish chat: more events than one streamed page (200).
    for i in 0..230 {
        customer.say(&c, &format!("message {i}")).await;
    }
    let (mut bob, bob_token) = hub.available_agent("bob", "Bob", &[], 3).await;
    let carol = hub.create_agent("carol", "Carol", &[], 3, false).await;

    // Carol never joined: refused, and not one transcript page was read for her.
    let before = history_reads(&hub).await;
    let path = format!("/v1/conversations/{c}");
    for _ in 0..30 {
        let (status, body) = hub.http_json("GET", &path, Some(&carol), None).await;
        assert_eq!(status, 403, "a non-member: {body}");
        assert_eq!(body["code"], "forbidden", "{body}");
    }
    assert_eq!(
        history_reads(&hub).await,
        before,
        "a non-member's requests read the transcript"
    );

    // Alice hands the chat to Bob: once she has left, she is refused like any other.
    alice
        .ok(json!({"type": "transfer", "conversation_id": c, "to_agent": "bob"}))
        .await;
    let offer = bob.wait_offer_for(&c).await;
    bob.accept(&offer).await;
    alice
        .wait_for("alice's left event", |f| {
            is_event(f, &c, "left") && f["agent"]["id"] == "alice"
        })
        .await;
    let (status, body) = hub.http_json("GET", &path, Some(&alice_token), None).await;
    assert_eq!(status, 403, "an agent who left the chat: {body}");
    alice
        .err(
            json!({"type": "history", "conversation_id": c, "after_seq": 0}),
            "forbidden",
        )
        .await;

    // Bob (the owner) and the admin get the whole chat, every seq once, in order.
    for token in [bob_token, ADMIN_TOKEN.to_string()] {
        let (status, body) = hub.http_json("GET", &path, Some(&token), None).await;
        assert_eq!(status, 200, "{body}");
        let events = body["events"].as_array().expect("events").clone();
        let last = body["conversation"]["last_seq"].as_u64().expect("last_seq");
        assert!(last > 230, "last_seq {last}");
        assert_eq!(seqs(&events), (1..=last).collect::<Vec<_>>());
        assert_eq!(
            body["conversation"]["agent"], "bob",
            "{}",
            body["conversation"]
        );
        assert_eq!(events[2]["text"], "message 0", "{}", events[2]);
    }
}

#[tokio::test]
async fn a_cursor_that_is_not_a_stream_id_is_a_bad_request() {
    let (_redis, hub) = setup().await;
    for cursor in [
        "18446744073709551615-18446744073709551615",
        "%2B1-0",
        "1-%2B0",
        "abc",
        "5",
        "1-2-3",
    ] {
        let path = format!("/v1/tickets?after={cursor}");
        let (status, body) = hub.http_json("GET", &path, Some(ADMIN_TOKEN), None).await;
        assert_eq!(status, 400, "cursor {cursor}: {body}");
        assert_eq!(body["code"], "bad_request", "{body}");
    }
    for cursor in ["0-0", "1-18446744073709551615", "18446744073709551615-0"] {
        let path = format!("/v1/tickets?after={cursor}");
        let (status, body) = hub.http_json("GET", &path, Some(ADMIN_TOKEN), None).await;
        assert_eq!(status, 200, "cursor {cursor}: {body}");
        assert!(body["tickets"].is_array(), "{body}");
    }
}

#[tokio::test]
async fn failed_bearer_tokens_are_throttled_per_address() {
    let redis = RedisServer::start().await;
    let toml = format!(
        "{}\n[auth]\nmax_failures = 5\nfailure_window_s = 600\n",
        TestConfig::default().to_toml()
    );
    let hub = Hub::start(&redis, &toml).await;

    // Valid tokens never count.
    for _ in 0..20 {
        let (status, _) = hub.http("GET", "/v1/agents", Some(ADMIN_TOKEN), None).await;
        assert_eq!(status, 200);
    }
    for attempt in 1..=5 {
        let (status, body) = hub
            .http_json("GET", "/v1/agents", Some("guess-guess-guess"), None)
            .await;
        assert_eq!(status, 401, "attempt {attempt}: {body}");
        if attempt == 4 {
            let (status, _) = hub.http("GET", "/v1/agents", Some(ADMIN_TOKEN), None).await;
            assert_eq!(status, 200, "below the limit a valid token works");
        }
    }
    // The fifth failure throttles the address: every bearer request waits out the window,
    // the right token included (a guess must learn nothing).
    for token in ["another-guess", ADMIN_TOKEN] {
        let (status, body) = hub.http_json("GET", "/v1/agents", Some(token), None).await;
        assert_eq!(status, 429, "{body}");
        assert_eq!(body["code"], "rate_limited", "{body}");
    }
    // Requests without a token are not throttled.
    let (status, _) = hub.get("/healthz").await;
    assert_eq!(status, 200);
    assert!(
        hub.metric(
            "switchboard_login_failures_total",
            &["outcome=\"throttled\""]
        )
        .await
            >= 2.0
    );
}

#[tokio::test]
async fn serve_refuses_an_admin_token_under_16_characters() {
    let redis = RedisServer::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("short.toml");
    let toml = TestConfig::default().to_toml().replace(
        &format!("admin_token = {ADMIN_TOKEN:?}"),
        "admin_token = \"short-token\"",
    );
    std::fs::write(&config, toml).expect("write config");
    let output = tokio::time::timeout(
        START_TIMEOUT,
        tokio::process::Command::new(hub_bin())
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--redis-url",
                &redis.url(),
            ])
            .arg("--config")
            .arg(&config)
            .env_remove("SWITCHBOARD_ADMIN_TOKEN")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the hub exits at once")
    .expect("run the hub");
    assert!(!output.status.success(), "a short admin token was accepted");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("admin_token"), "{stderr}");
    assert!(
        !stderr.contains("short-token"),
        "the token itself is printed: {stderr}"
    );
}
