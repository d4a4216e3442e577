//! The ticket webhook outbox (issue 4): every ticket is POSTed at least once to
//! `/tickets`, signed (`Switchboard-Signature: t=..,v1=hex HMAC-SHA256("<t>.<body>")`,
//! verified here with our own HMAC) and keyed (`Idempotency-Key: <ticket_id>`); non-2xx
//! answers are retried with backoff; a pending delivery survives a hub killed with -9
//! whether the receiver answered an error, answers 503 or is not listening at all; a
//! delivery that keeps failing ends in the dead-letter list.
//!
//! The receiver is an HTTP server inside the test (`common::extra::WebhookReceiver`).

mod common;

use std::time::Duration;

use common::extra::{
    describe, setup_hub, signature_parts, verify_signature, webhook_config, HubConfig,
    WebhookDelivery, WebhookReceiver,
};
use common::*;
use serde_json::{json, Value};

const SECRET: &str = "hook-secret";
/// Deliveries wait out backoffs (and a restart): longer than the socket waits.
const DELIVERY_WAIT: Duration = Duration::from_secs(15);

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

/// alice closes a new chat; returns the close ack and the conversation id.
async fn close_a_chat(hub: &Hub) -> (Value, String) {
    let Chat {
        mut agent,
        conversation_id,
        ..
    } = chat(hub).await;
    let closed = agent
        .ok(json!({"type": "close", "conversation_id": conversation_id, "resolution": "resolved"}))
        .await;
    (closed, conversation_id)
}

/// Checks method, path, signature, key and body of one delivery; returns the ticket.
fn verify(delivery: &WebhookDelivery) -> Value {
    assert_eq!(delivery.method, "POST", "{delivery:?}");
    assert_eq!(delivery.path, "/tickets", "{delivery:?}");
    let signature = delivery
        .signature
        .as_deref()
        .unwrap_or_else(|| panic!("no Switchboard-Signature: {delivery:?}"));
    let (t, v1) = signature_parts(signature);
    let t = t.unwrap_or_else(|| panic!("signature without t: {signature}"));
    let v1 = v1.unwrap_or_else(|| panic!("signature without v1: {signature}"));
    let seconds: u64 = t.parse().expect("t is unix seconds");
    let now = now_ms() / 1000;
    assert!(seconds.abs_diff(now) < 120, "t={t} is not now ({now})");
    assert_eq!(
        v1,
        hmac_hex(SECRET, &format!("{t}.{}", delivery.raw_body)),
        "v1 must be the HMAC of \"<t>.<body>\" under the webhook secret"
    );
    let ticket: Value = serde_json::from_str(&delivery.raw_body).expect("the body is JSON");
    assert_eq!(
        delivery.idempotency_key.as_deref(),
        ticket["ticket_id"].as_str(),
        "Idempotency-Key is the ticket id: {delivery:?}"
    );
    ticket
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
async fn ticket_is_posted_signed_and_retried_until_accepted() {
    let receiver = WebhookReceiver::start(SECRET).await;
    receiver.fail_next_with(1, 500);
    let config = HubConfig::new(TestConfig::default()).webhook(&receiver.url(), SECRET);
    let (_redis, hub) = setup_hub(&config).await;
    let (closed, conv) = close_a_chat(&hub).await;

    let first = receiver.nth("the ticket", 0, Duration::from_secs(10)).await;
    assert_eq!(first.status, 500);
    let ticket = verify(&first);
    assert_eq!(ticket["ticket_id"], closed["ticket_id"], "{ticket}");
    assert_eq!(ticket["conversation_id"], conv.as_str(), "{ticket}");

    let retry = receiver
        .nth("the retry after a 500", 1, Duration::from_secs(10))
        .await;
    assert_eq!(retry.status, 200);
    let again = verify(&retry);
    assert_eq!(again["ticket_id"], closed["ticket_id"]);
}

#[tokio::test]
async fn receiver_failing_three_times_still_gets_the_signed_ticket() {
    let receiver = WebhookReceiver::start(SECRET).await;
    receiver.fail_next(3);
    let (_redis, hub) = setup_hub(&webhook_config(&receiver.url(), SECRET)).await;

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
    let (_redis, hub) = setup_hub(&webhook_config(&receiver.url(), SECRET)).await;
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
    let (_redis, mut hub) = setup_hub(&webhook_config(&receiver.url(), SECRET)).await;
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
async fn pending_delivery_survives_a_hub_kill_9() {
    // Refuse the first delivery, then kill the hub before it can retry.
    let receiver = WebhookReceiver::start(SECRET).await;
    receiver.fail_next_with(1, 500);
    let config = HubConfig::new(TestConfig::default()).webhook(&receiver.url(), SECRET);
    let (_redis, mut hub) = setup_hub(&config).await;
    let (closed, _) = close_a_chat(&hub).await;
    let first = receiver.nth("the ticket", 0, Duration::from_secs(10)).await;
    assert_eq!(first.status, 500);
    hub.kill9();
    hub.restart().await;

    let mut next = 1;
    let delivered = loop {
        let delivery = receiver
            .nth(
                "the delivery from the restarted hub",
                next,
                Duration::from_secs(15),
            )
            .await;
        next += 1;
        if delivery.status == 200 {
            break delivery;
        }
    };
    let ticket = verify(&delivered);
    assert_eq!(ticket["ticket_id"], closed["ticket_id"], "{ticket}");
}

#[tokio::test]
async fn delivery_reaches_a_receiver_that_was_not_listening_across_a_hub_kill() {
    let mut receiver = WebhookReceiver::not_listening(SECRET);
    let (_redis, mut hub) = setup_hub(&webhook_config(&receiver.url(), SECRET)).await;
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
    let config = webhook_config(&receiver.url(), SECRET)
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
