//! Business hours (issue 18) against the real hub binary and a real redis-server: a
//! topic closed now is offline in the customer `welcome` (with its message and next
//! opening) and refuses `start` with `unavailable`/`closed`, storing nothing; a topic
//! open now chats as before. "Now" is the real clock: the closed topic is open all day
//! every day except holidays on yesterday, today and tomorrow (UTC), so the test never
//! depends on the hour it runs at, nor on a midnight passing during it.

mod common;

use common::{extra::*, *};
use jiff::{civil::Date, tz::TimeZone, Timestamp};
use serde_json::{json, Value};

const MESSAGE: &str = "We're closed; we answer from 9:00 (Paris time).";

fn today() -> Date {
    Timestamp::now().to_zoned_datetime(TimeZone::UTC).date()
}

/// Open all day, every day, except holidays around now.
fn closed_around_now() -> String {
    let today = today();
    let days = [today.yesterday().unwrap(), today, today.tomorrow().unwrap()];
    let all_day = r#"["00:00-24:00"]"#;
    format!(
        r#"{{ time_zone = "UTC", weekly = {{ mon = {all_day}, tue = {all_day}, wed = {all_day}, thu = {all_day}, fri = {all_day}, sat = {all_day}, sun = {all_day} }}, holidays = [{}], message = "{MESSAGE}" }}"#,
        days.map(|d| format!("\"{d}\"")).join(", ")
    )
}

/// Open all day every day, in a zone far from UTC.
const OPEN_ALWAYS: &str = r#"{ time_zone = "Pacific/Auckland", weekly = { mon = ["00:00-24:00"], tue = ["00:00-24:00"], wed = ["00:00-24:00"], thu = ["00:00-24:00"], fri = ["00:00-24:00"], sat = ["00:00-24:00"], sun = ["00:00-24:00"] } }"#;

fn expected_opening() -> u64 {
    let opens = today().tomorrow().unwrap().tomorrow().unwrap();
    opens
        .to_zoned_datetime(TimeZone::UTC)
        .unwrap()
        .timestamp()
        .as_millisecond() as u64
}

#[tokio::test]
async fn a_closed_topic_is_offline_and_refuses_start_while_open_ones_chat() {
    let config = HubConfig::new(TestConfig::default())
        .topic_key("billing", "hours", closed_around_now())
        .topic_key("urgent", "hours", OPEN_ALWAYS);
    let (_redis, hub) = setup_hub(&config).await;
    let (mut ann, _) = hub.available_agent("ann", "Ann", &[], 2).await;
    let (mut customer, welcome) = hub.customer(json!({})).await;

    assert_eq!(
        welcome["online"], true,
        "the default topic is open: {welcome}"
    );
    let topics = &welcome["topics"];
    assert_eq!(
        topics["billing"],
        json!({"online": false, "message": MESSAGE, "opens_at": expected_opening()}),
        "{welcome}"
    );
    assert_eq!(topics["general"], json!({"online": true, "default": true}));
    assert_eq!(topics["urgent"], json!({"online": true}));

    let refused = customer
        .err(
            json!({"type": "start", "topic": "billing", "text": "my invoice", "metadata": {}}),
            "unavailable",
        )
        .await;
    assert_eq!(refused["reason"], "closed", "{refused}");
    assert_eq!(refused["message"], MESSAGE, "{refused}");

    // Nothing was stored: no conversation holds the customer's slot, the queue is empty.
    let (status, queued) = hub
        .http_json(
            "GET",
            "/v1/conversations?state=queued",
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 200, "{queued}");
    assert_eq!(conversations(&queued), 0, "{queued}");

    // The offline form works on the closed topic.
    let ack = customer
        .ok(json!({"type": "offline_message", "topic": "billing", "email": "a@x.io", "text": "call me"}))
        .await;
    assert!(ack["ticket_id"].is_string(), "{ack}");

    // An open topic (with hours) chats as before.
    let conv = customer.start_chat("urgent", "hello?").await;
    ann.wait_offer_for(&conv).await;
}

#[tokio::test]
async fn a_closed_default_topic_makes_the_welcome_offline() {
    let config =
        HubConfig::new(TestConfig::default()).topic_key("general", "hours", closed_around_now());
    let (_redis, hub) = setup_hub(&config).await;
    // Ann can take billing chats: a topic is online only for agents who could take it.
    let (_ann, _) = hub
        .available_agent("ann", "Ann", &[("billing", 1)], 2)
        .await;
    let (mut customer, welcome) = hub.customer(json!({})).await;
    assert_eq!(welcome["online"], false, "{welcome}");
    assert_eq!(welcome["topics"]["general"]["online"], false, "{welcome}");
    assert_eq!(welcome["topics"]["general"]["default"], true, "{welcome}");
    assert_eq!(welcome["topics"]["billing"]["online"], true, "{welcome}");
    // A start without a topic goes to the default one, closed.
    let refused = customer
        .err(
            json!({"type": "start", "text": "hi", "metadata": {}}),
            "unavailable",
        )
        .await;
    assert_eq!(refused["reason"], "closed", "{refused}");
}

#[tokio::test]
async fn without_hours_the_welcome_is_as_before() {
    let (_redis, hub) = setup_hub(&HubConfig::new(TestConfig::default())).await;
    let (_customer, welcome) = hub.customer(json!({})).await;
    assert_eq!(welcome["online"], false, "nobody available: {welcome}");
    assert!(welcome.get("topics").is_none(), "{welcome}");
}

fn conversations(body: &Value) -> usize {
    body["conversations"].as_array().map_or(0, Vec::len)
}
