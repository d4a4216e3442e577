//! The ticket webhook outbox (issue 4): every ticket is POSTed at least once, signed
//! (`Switchboard-Signature`, verified here with our own HMAC) and keyed
//! (`Idempotency-Key`); failures are retried with backoff; a pending delivery survives a
//! hub killed with -9 whether the receiver answers 503 or is not listening at all; a
//! delivery that keeps failing ends in the dead-letter list.
//!
//! The receiver is an HTTP server inside the test (`common::extra::WebhookReceiver`).

mod common;

use std::time::Duration;

use common::extra::{
    describe, now_ms, setup_hub, verify_signature, HubConfig, WebhookDelivery, WebhookReceiver,
};
use common::*;
use serde_json::json;

const SECRET: &str = "hook-secret";
/// Deliveries wait out backoffs (and a restart): longer than the socket waits.
const DELIVERY_WAIT: Duration = Duration::from_secs(15);

/// Retries start at 300 ms and double (with jitter, up to half off) to at most 2 s.
fn webhook_config(url: &str) -> HubConfig {
    HubConfig::new(TestConfig::default())
        .webhook(url, SECRET)
        .webhook_setting("initial_backoff_ms", 300)
        .webhook_setting("max_backoff_ms", 2_000)
        .webhook_setting("give_up_after_ms", 600_000)
        .webhook_setting("request_timeout_ms", 2_000)
}

/// A chat alice closes; returns its ticket id and conversation id.
async fn closed_chat_ticket(hub: &Hub) -> (String, String) {
    let Chat {
        mut agent,
        mut customer,
        conversation_id,
        ..
    } = chat(hub).await;
    agent.say(&conversation_id, "Done, refund issued").await;
    let ack = agent
        .ok(json!({"type": "close", "conversation_id": conversation_id, "resolution": "resolved"}))
        .await;
    customer.wait_event(&conversation_id, "closed").await;
    let ticket_id = ack["ticket_id"]
        .as_str()
        .unwrap_or_else(|| panic!("close ack without ticket_id: {ack}"))
        .to_string();
    (ticket_id, conversation_id)
}

/// Every delivery is signed correctly and keyed by the ticket it carries.
fn assert_signed_and_keyed(deliveries: &[WebhookDelivery]) {
    for d in deliveries {
        assert!(
            d.verified.is_ok(),
            "bad signature: {:?}\n{}",
            d.verified,
            describe(deliveries)
        );
        assert_eq!(
            d.idempotency_key.as_deref(),
            d.body["ticket_id"].as_str(),
            "Idempotency-Key must be the ticket id:\n{}",
            describe(deliveries)
        );
    }
}

#[tokio::test]
async fn receiver_failing_three_times_still_gets_the_signed_ticket() {
    let receiver = WebhookReceiver::start(SECRET).await;
    receiver.fail_next(3);
    let (_redis, hub) = setup_hub(&webhook_config(&receiver.url())).await;

    let (ticket_id, conversation_id) = closed_chat_ticket(&hub).await;
    let deliveries = receiver.wait_delivered(&ticket_id, DELIVERY_WAIT).await;
    assert_signed_and_keyed(&deliveries);
    let statuses: Vec<u16> = deliveries.iter().map(|d| d.status).collect();
    assert_eq!(
        statuses[..4],
        [503, 503, 503, 200],
        "three failures, then the delivery:\n{}",
        describe(&deliveries)
    );

    // What was delivered is the stored ticket.
    let delivered = &deliveries[3].body;
    let stored = hub.wait_ticket(&ticket_id).await;
    assert_eq!(delivered["conversation_id"], conversation_id, "{delivered}");
    for field in [
        "ticket_id",
        "resolution",
        "opened_at",
        "closed_at",
        "wait_ms",
        "transcript",
    ] {
        assert_eq!(
            delivered[field], stored[field],
            "field {field}: {delivered} vs {stored}"
        );
    }

    // Retries back off: the third wait (600..1200 ms) is longer than the first (150..300
    // ms), whatever the jitter.
    let gap = |i: usize| deliveries[i + 1].at - deliveries[i].at;
    assert!(
        gap(0) >= Duration::from_millis(100),
        "the first retry came after {:?}: no backoff",
        gap(0)
    );
    assert!(
        gap(2) > gap(0),
        "retries must back off: gaps {:?}, {:?}, {:?}",
        gap(0),
        gap(1),
        gap(2)
    );
}

#[tokio::test]
async fn offline_message_goes_through_the_webhook() {
    let receiver = WebhookReceiver::start(SECRET).await;
    let (_redis, hub) = setup_hub(&webhook_config(&receiver.url())).await;
    let (mut customer, _) = hub.customer(json!({})).await;
    let ack = customer
        .ok(json!({
            "type": "offline_message", "topic": "billing", "name": "Ann",
            "email": "ann@example.com", "text": "Please call me back",
        }))
        .await;
    let ticket_id = ack["ticket_id"].as_str().expect("ticket_id");

    let deliveries = receiver.wait_delivered(ticket_id, DELIVERY_WAIT).await;
    assert_signed_and_keyed(&deliveries);
    let delivered = deliveries
        .iter()
        .find(|d| d.is_for(ticket_id) && d.acknowledged())
        .expect("acknowledged delivery");
    assert_eq!(
        delivered.body["resolution"], "offline_message",
        "{}",
        delivered.body
    );
    assert_eq!(
        delivered.body["transcript"][0]["text"],
        "Please call me back"
    );
}

#[tokio::test]
async fn pending_delivery_survives_a_hub_kill_while_the_receiver_is_down() {
    let receiver = WebhookReceiver::start(SECRET).await;
    receiver.set_down(true);
    let (_redis, mut hub) = setup_hub(&webhook_config(&receiver.url())).await;
    let (ticket_id, _) = closed_chat_ticket(&hub).await;

    // The hub tried and was refused: the delivery is pending when the hub dies.
    receiver
        .wait_until("a refused attempt", DELIVERY_WAIT, |d| {
            d.iter().any(|d| d.is_for(&ticket_id))
        })
        .await;
    hub.kill9();
    hub.restart().await;
    receiver.set_down(false);

    let deliveries = receiver.wait_delivered(&ticket_id, DELIVERY_WAIT).await;
    assert_signed_and_keyed(&deliveries);
}

#[tokio::test]
async fn delivery_reaches_a_receiver_that_was_not_listening_across_a_hub_kill() {
    let mut receiver = WebhookReceiver::not_listening(SECRET);
    let (_redis, mut hub) = setup_hub(&webhook_config(&receiver.url())).await;
    let (ticket_id, _) = closed_chat_ticket(&hub).await;

    // Nothing listens, so nothing reaches the receiver; the hub's metrics show it tried.
    eventually(
        "a failed webhook attempt in /metrics",
        DELIVERY_WAIT,
        || async {
            let failed = hub
                .metric(
                    "switchboard_webhook_deliveries_total",
                    &[r#"outcome="failed""#],
                )
                .await;
            (failed >= 1.0).then_some(())
        },
    )
    .await;
    hub.kill9();
    hub.restart().await;
    receiver.listen().await;

    let deliveries = receiver.wait_delivered(&ticket_id, DELIVERY_WAIT).await;
    assert_signed_and_keyed(&deliveries);
}

#[tokio::test]
async fn delivery_failing_past_give_up_goes_to_the_dead_letters() {
    let receiver = WebhookReceiver::start(SECRET).await;
    receiver.set_down(true);
    let config = webhook_config(&receiver.url())
        .webhook_setting("initial_backoff_ms", 100)
        .webhook_setting("max_backoff_ms", 200)
        .webhook_setting("give_up_after_ms", 800);
    let (_redis, hub) = setup_hub(&config).await;
    let (mut customer, _) = hub.customer(json!({})).await;
    let ack = customer
        .ok(json!({
            "type": "offline_message", "topic": "general", "name": "Ann",
            "email": "ann@example.com", "text": "Nobody will read this",
        }))
        .await;
    let ticket_id = ack["ticket_id"].as_str().expect("ticket_id").to_string();

    let stats = eventually(
        "the ticket in /v1/stats webhook.dead_letters",
        DELIVERY_WAIT,
        || async {
            let (status, stats) = hub
                .http_json("GET", "/v1/stats", Some(ADMIN_TOKEN), None)
                .await;
            assert_eq!(status, 200, "{stats}");
            let dead = stats["webhook"]["dead_letters"].as_array()?;
            dead.iter()
                .any(|t| t == ticket_id.as_str())
                .then_some(stats)
        },
    )
    .await;
    let dead_letters = hub
        .metric(
            "switchboard_webhook_deliveries_total",
            &[r#"outcome="dead_letter""#],
        )
        .await;
    assert_eq!(dead_letters, 1.0, "dead_letter metric; stats: {stats}");
    assert!(
        !receiver
            .deliveries()
            .iter()
            .any(WebhookDelivery::acknowledged),
        "nothing was acknowledged"
    );
}

/// The receiver's verification is not vacuous: it accepts the documented signature and
/// refuses a wrong secret, a changed body, a mangled header and a stale timestamp.
#[test]
fn receiver_signature_check_refuses_forgeries() {
    let body = r#"{"ticket_id":"t_1"}"#;
    let now_s = now_ms() / 1000;
    let header = switchboard::tickets::webhook::signature(SECRET, now_s, body);
    assert_eq!(
        verify_signature(SECRET, &header, body.as_bytes(), 300),
        Ok(())
    );
    assert!(verify_signature("other-secret", &header, body.as_bytes(), 300).is_err());
    assert!(verify_signature(SECRET, &header, br#"{"ticket_id":"t_2"}"#, 300).is_err());
    assert!(verify_signature(SECRET, "v1=00", body.as_bytes(), 300).is_err());
    let stale = switchboard::tickets::webhook::signature(SECRET, now_s - 3_600, body);
    assert!(verify_signature(SECRET, &stale, body.as_bytes(), 300).is_err());
}
