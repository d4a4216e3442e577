//! Issue 15 (part C), the ticket webhook under abuse:
//! - the webhook URL's query string (often a secret) never reaches the log, also not in
//!   a network error;
//! - a redirect is not followed with the signed body: a 3xx is a failure, retried with
//!   backoff, and the redirect's target never hears of the ticket;
//! - when the outbox stream (and its consumer group) is deleted while the hub runs, the
//!   group is created again and the next ticket is still delivered.

mod common;

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use axum::http::{header, StatusCode};
use common::extra::{setup_hub, webhook_config, WebhookReceiver};
use common::*;
use serde_json::json;
use switchboard::store::keys;

const SECRET: &str = "hook-secret";
const QUERY_SECRET: &str = "query-secret-3f9a";
/// Deliveries wait out backoffs: longer than the socket waits.
const DELIVERY_WAIT: Duration = Duration::from_secs(15);

/// An offline message from a new customer; returns its ticket id (a ticket at once).
async fn offline_ticket(hub: &Hub) -> String {
    let (mut customer, _) = hub.customer(json!({})).await;
    let ack = customer
        .ok(
            json!({"type": "offline_message", "topic": "general", "name": "Ann",
                   "email": "ann@example.com", "text": "call me back"}),
        )
        .await;
    ack["ticket_id"]
        .as_str()
        .unwrap_or_else(|| panic!("offline_message ack without ticket_id: {ack}"))
        .to_string()
}

/// Waits until the hub's output holds `needle` at least `times` times.
async fn wait_logged(hub: &Hub, needle: &str, times: usize) {
    let output = hub.output();
    let what = format!("{times} log lines with {needle:?}");
    eventually(&what, DELIVERY_WAIT, || {
        let output = output.clone();
        async move {
            let tail = output.tail(5_000);
            (tail.matches(needle).count() >= times).then_some(())
        }
    })
    .await;
}

#[tokio::test]
async fn a_webhook_query_string_is_never_logged() {
    // Nobody listens there: each attempt is a network error naming the URL.
    let url = format!(
        "http://127.0.0.1:{}/tickets?key={QUERY_SECRET}",
        free_port()
    );
    let (_redis, hub) = setup_hub(&webhook_config(&url, SECRET)).await;
    offline_ticket(&hub).await;
    wait_logged(&hub, "webhook failed; will retry", 2).await;
    let log = hub.output().tail(5_000);
    assert!(
        !log.contains(QUERY_SECRET),
        "the webhook URL's query string is in the log:\n{log}"
    );
    assert!(log.contains("/tickets?***"), "the URL, redacted:\n{log}");
}

/// Answers every request with a 307 to `location`; counts them.
async fn redirector(location: String) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&hits);
    let app = axum::Router::new().fallback(move || {
        let counted = Arc::clone(&counted);
        let location = location.clone();
        async move {
            counted.fetch_add(1, Ordering::SeqCst);
            (
                StatusCode::TEMPORARY_REDIRECT,
                [(header::LOCATION, location)],
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the redirector");
    let addr = listener.local_addr().expect("redirector address");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("redirector");
    });
    (format!("http://{addr}/tickets?key={QUERY_SECRET}"), hits)
}

#[tokio::test]
async fn a_redirect_is_a_failure_and_is_not_followed() {
    let receiver = WebhookReceiver::start(SECRET).await;
    let (url, hits) = redirector(receiver.url()).await;
    let (_redis, hub) = setup_hub(&webhook_config(&url, SECRET)).await;
    offline_ticket(&hub).await;
    // Two attempts: the first 307 counted as a failure and was retried after a backoff.
    eventually("a retry after the 307", DELIVERY_WAIT, || async {
        (hits.load(Ordering::SeqCst) >= 2).then_some(())
    })
    .await;
    // reqwest follows a redirect before it returns, so had the first been followed its
    // target would have the delivery by now.
    assert!(
        receiver.deliveries().is_empty(),
        "the signed body followed the redirect: {}",
        common::extra::describe(&receiver.deliveries())
    );
    let failed = hub
        .metric(
            "switchboard_webhook_deliveries_total",
            &["outcome=\"failed\""],
        )
        .await;
    assert!(failed >= 1.0, "failed deliveries: {failed}");
    assert!(!hub.output().tail(5_000).contains(QUERY_SECRET));
}

#[tokio::test]
async fn delivery_carries_on_after_the_outbox_is_deleted() {
    let receiver = WebhookReceiver::start(SECRET).await;
    let (redis, hub) = setup_hub(&webhook_config(&receiver.url(), SECRET)).await;
    let first = offline_ticket(&hub).await;
    receiver.wait_delivered(&first, DELIVERY_WAIT).await;

    // The outbox and its consumer group vanish (a key deleted by hand, a FLUSHALL).
    let client = redis::Client::open(redis.url()).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the test's redis");
    let deleted: i64 = redis::cmd("DEL")
        .arg(keys::webhook_outbox())
        .query_async(&mut conn)
        .await
        .expect("DEL the outbox");
    assert_eq!(deleted, 1, "the outbox stream existed");

    let second = offline_ticket(&hub).await;
    receiver.wait_delivered(&second, DELIVERY_WAIT).await;
    let log = hub.output().tail(5_000);
    assert!(
        log.contains("WARN") && log.contains("webhook outbox or its group is gone"),
        "a warning when the group had to be created again:\n{log}"
    );
}
