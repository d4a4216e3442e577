//! The ticket webhook: each ticket is POSTed as JSON, signed
//! (`Switchboard-Signature: t=..,v1=hex HMAC-SHA256("<t>.<body>")`), with
//! `Idempotency-Key: <ticket_id>`; non-2xx answers are retried, and nothing is dropped
//! while the hub restarts.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const SECRET: &str = "hook-secret";

/// Checks signature, key and body of a delivery; returns the ticket.
fn verify(delivery: &Delivery) -> Value {
    assert_eq!(delivery.method, "POST", "{delivery:?}");
    assert_eq!(delivery.path, "/tickets", "{delivery:?}");
    let signature = delivery
        .header("switchboard-signature")
        .unwrap_or_else(|| panic!("no Switchboard-Signature: {delivery:?}"));
    let mut t = None;
    let mut v1 = None;
    for part in signature.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = Some(value.to_string()),
            Some(("v1", value)) => v1 = Some(value.to_string()),
            _ => {}
        }
    }
    let t = t.unwrap_or_else(|| panic!("signature without t: {signature}"));
    let v1 = v1.unwrap_or_else(|| panic!("signature without v1: {signature}"));
    let seconds: u64 = t.parse().expect("t is unix seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    assert!(seconds.abs_diff(now) < 120, "t={t} is not now ({now})");
    assert_eq!(
        v1,
        hmac_hex(SECRET, &format!("{t}.{}", delivery.body)),
        "v1 must be the HMAC of \"<t>.<body>\" under the webhook secret"
    );
    let ticket: Value = serde_json::from_str(&delivery.body).expect("the body is JSON");
    assert_eq!(
        delivery.header("idempotency-key"),
        ticket["ticket_id"].as_str(),
        "Idempotency-Key is the ticket id: {delivery:?}"
    );
    ticket
}

#[tokio::test]
async fn ticket_is_posted_signed_and_retried_until_accepted() {
    let mut sink = WebhookSink::start(1).await;
    let (_redis, hub) = setup_with(TestConfig::default().webhook(&sink.url, SECRET)).await;
    let Chat {
        mut agent,
        conversation_id: conv,
        ..
    } = chat(&hub).await;
    let closed = agent
        .ok(json!({"type": "close", "conversation_id": conv, "resolution": "resolved"}))
        .await;

    let first = sink.next("the ticket", Duration::from_secs(10)).await;
    assert_eq!(first.answered, 500);
    let ticket = verify(&first);
    assert_eq!(ticket["ticket_id"], closed["ticket_id"], "{ticket}");
    assert_eq!(ticket["conversation_id"], conv.as_str(), "{ticket}");

    let retry = sink
        .next("the retry after a 500", Duration::from_secs(10))
        .await;
    assert_eq!(retry.answered, 200);
    let again = verify(&retry);
    assert_eq!(again["ticket_id"], closed["ticket_id"]);
}

#[tokio::test]
async fn pending_delivery_survives_a_hub_kill_9() {
    // Refuse the first delivery, then kill the hub before it can retry.
    let mut sink = WebhookSink::start(1).await;
    let (_redis, mut hub) = setup_with(TestConfig::default().webhook(&sink.url, SECRET)).await;
    let Chat {
        mut agent,
        conversation_id: conv,
        ..
    } = chat(&hub).await;
    let closed = agent
        .ok(json!({"type": "close", "conversation_id": conv, "resolution": "resolved"}))
        .await;
    let first = sink.next("the ticket", Duration::from_secs(10)).await;
    assert_eq!(first.answered, 500);
    hub.kill9();
    hub.restart().await;

    let delivered = loop {
        let delivery = sink
            .next(
                "the delivery from the restarted hub",
                Duration::from_secs(15),
            )
            .await;
        if delivery.answered == 200 {
            break delivery;
        }
    };
    let ticket = verify(&delivered);
    assert_eq!(ticket["ticket_id"], closed["ticket_id"], "{ticket}");
}
