//! Retention: a closed chat's keys, its ticket, the ticket log and the visitor's sticky
//! hint do not stay in Redis forever (`[retention]`, `docs/tickets.md`).
//!
//! Expiry is read straight from Redis (`PTTL`), so nothing waits for a day to pass; the
//! one test that needs a key gone configures a 1 s retention and polls for the key's
//! disappearance with a deadline.

mod common;

use std::time::Duration;

use common::extra::{find_event, setup_hub, transcript_values, HubConfig};
use common::*;
use redis::aio::MultiplexedConnection;
use serde_json::{json, Value};
use switchboard::store::keys;

const HOUR_S: i64 = 3_600;
/// How far below the configured TTL a fresh one may read: the time from the flush to
/// the `PTTL` (a slow CI machine included).
const SLACK_MS: i64 = 60_000;

async fn redis_conn(redis: &RedisServer) -> MultiplexedConnection {
    let client = redis::Client::open(redis.url())
        .unwrap_or_else(|err| panic!("redis url {}: {err}", redis.url()));
    client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|err| panic!("connect to the test's redis: {err}"))
}

/// `PTTL key`: ms left, -1 without expiry, -2 when the key does not exist.
async fn pttl(conn: &MultiplexedConnection, key: &str) -> i64 {
    let mut conn = conn.clone();
    redis::cmd("PTTL")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap_or_else(|err| panic!("PTTL {key}: {err}"))
}

async fn exists(conn: &MultiplexedConnection, key: &str) -> bool {
    let mut conn = conn.clone();
    redis::cmd("EXISTS")
        .arg(key)
        .query_async::<i64>(&mut conn)
        .await
        .unwrap_or_else(|err| panic!("EXISTS {key}: {err}"))
        == 1
}

async fn in_open_index(conn: &MultiplexedConnection, conversation_id: &str) -> bool {
    let mut conn = conn.clone();
    redis::cmd("ZSCORE")
        .arg(keys::open_conversations())
        .arg(conversation_id)
        .query_async::<Option<String>>(&mut conn)
        .await
        .unwrap_or_else(|err| panic!("ZSCORE open index: {err}"))
        .is_some()
}

/// The keys a conversation writes. (Versions before issue 19 also kept
/// `keys::client_msg_ids`; the retire script still sets its expiry when it exists.)
fn conversation_keys(conversation_id: &str) -> [String; 2] {
    [
        keys::conversation(conversation_id),
        keys::events(conversation_id),
    ]
}

/// The conversation's keys expire as configured: its state after `closed_s`, its
/// events (the ticket's transcript) with the ticket, after `ticket_s` (0: never).
async fn assert_retired(
    conn: &MultiplexedConnection,
    conversation_id: &str,
    closed_s: i64,
    ticket_s: i64,
    when: &str,
) {
    let [state, events] = conversation_keys(conversation_id);
    assert_fresh_ttl(
        &format!("{state}{when}"),
        pttl(conn, &state).await,
        closed_s,
    );
    let events_ttl = pttl(conn, &events).await;
    if ticket_s == 0 {
        assert_eq!(events_ttl, -1, "{events}{when} lives as long as the ticket");
    } else {
        assert_fresh_ttl(
            &format!("{events}{when}"),
            events_ttl,
            ticket_s.max(closed_s),
        );
    }
}

/// `ttl_ms` is a fresh TTL of `configured_s`.
fn assert_fresh_ttl(what: &str, ttl_ms: i64, configured_s: i64) {
    let configured_ms = configured_s * 1000;
    assert!(
        (configured_ms - SLACK_MS..=configured_ms).contains(&ttl_ms),
        "{what}: PTTL {ttl_ms} ms, expected just under {configured_ms} ms"
    );
}

/// Waits until the flush has retired the conversation (its state hash has a TTL: the
/// ticket is stored first, the expiry right after) and returns that TTL.
async fn wait_retired(conn: &MultiplexedConnection, conversation_id: &str) -> i64 {
    let key = keys::conversation(conversation_id);
    let what = format!("{key} to get an expiry");
    eventually(&what, WAIT, || async {
        let ttl = pttl(conn, &key).await;
        (ttl >= 0).then_some(ttl)
    })
    .await
}

/// A chat alice serves: the customer's message carries a `client_msg_id` (so all three
/// conversation keys exist) and the sticky-routing hint is stored. Returns the chat and
/// the visitor id.
async fn served_chat(hub: &Hub, conn: &MultiplexedConnection) -> (Chat, String) {
    let mut chat = chat(hub).await;
    let c = chat.conversation_id.clone();
    chat.customer
        .ok(
            json!({"type": "message", "conversation_id": c, "text": "thanks",
                   "client_msg_id": "m-1"}),
        )
        .await;
    let visitor_id = chat.welcome["visitor_id"]
        .as_str()
        .unwrap_or_else(|| panic!("welcome without visitor_id: {}", chat.welcome))
        .to_string();
    // The hint is written by a task of its own after the join: wait for it, so the close
    // below cannot overtake it.
    let hint = keys::visitor_last_agent(&visitor_id);
    eventually(&format!("{hint} to be set"), WAIT, || async {
        exists(conn, &hint).await.then_some(())
    })
    .await;
    (chat, visitor_id)
}

/// alice closes the chat; returns the ticket id once the ticket is readable.
async fn close(hub: &Hub, chat: &mut Chat) -> String {
    let c = chat.conversation_id.clone();
    let ack = chat
        .agent
        .ok(json!({"type": "close", "conversation_id": c, "resolution": "resolved"}))
        .await;
    chat.customer.wait_event(&c, "closed").await;
    let ticket_id = ack["ticket_id"]
        .as_str()
        .unwrap_or_else(|| panic!("close ack without ticket_id: {ack}"))
        .to_string();
    hub.wait_ticket(&ticket_id).await;
    ticket_id
}

fn config(closed_conversation_s: i64, ticket_s: i64) -> HubConfig {
    HubConfig::new(TestConfig::default())
        .retention("closed_conversation_s", closed_conversation_s)
        .retention("ticket_s", ticket_s)
}

#[tokio::test]
async fn a_closed_chat_and_its_ticket_expire_as_configured() {
    let (redis, hub) = setup_hub(&config(HOUR_S, 2 * HOUR_S)).await;
    let conn = redis_conn(&redis).await;
    let (mut chat, visitor_id) = served_chat(&hub, &conn).await;
    let c = chat.conversation_id.clone();
    for key in conversation_keys(&c) {
        assert_eq!(pttl(&conn, &key).await, -1, "{key} expires while open");
    }
    // The sticky-routing hint expires even if no flush ever comes to set it again.
    let hint = keys::visitor_last_agent(&visitor_id);
    let hint_ttl = pttl(&conn, &hint).await;
    assert!(
        hint_ttl > 0 && hint_ttl <= 2 * HOUR_S * 1000,
        "{hint} while the chat is open: PTTL {hint_ttl}"
    );

    let ticket_id = close(&hub, &mut chat).await;
    wait_retired(&conn, &c).await;
    assert_retired(&conn, &c, HOUR_S, 2 * HOUR_S, "").await;
    let ticket = keys::ticket(&ticket_id);
    assert_fresh_ttl(&ticket, pttl(&conn, &ticket).await, 2 * HOUR_S);
    assert_fresh_ttl(&hint, pttl(&conn, &hint).await, 2 * HOUR_S);
    // The chat is held once: the stored ticket refers to the events for its transcript,
    // and is read whole.
    let stored: String = redis::cmd("GET")
        .arg(&ticket)
        .query_async(&mut conn.clone())
        .await
        .unwrap_or_else(|err| panic!("GET {ticket}: {err}"));
    assert!(
        stored.starts_with(&format!("{{\"transcript_of\":\"{c}\",")) && !stored.contains("thanks"),
        "stored: {stored}"
    );
    let (status, whole) = hub.ticket(&ticket_id).await;
    assert_eq!(status, 200, "{whole}");
    assert!(whole.get("transcript_of").is_none(), "{whole}");
    assert!(
        transcript_values(&whole, "text").contains(&"thanks"),
        "read whole: {whole}"
    );
    assert!(
        !exists(&conn, &keys::visitor_open(&visitor_id)).await,
        "the visitor's open slot is freed"
    );
    assert!(!in_open_index(&conn, &c).await, "{c} left the open index");

    // While kept, the closed chat is still there to read and to rate; the rating
    // rewrites the ticket but keeps its expiry.
    let events = chat.customer.history(&c, 0).await;
    assert_eq!(
        find_event(&events, "closed")["ticket_id"],
        ticket_id.as_str()
    );
    chat.customer
        .ok(json!({"type": "rate", "conversation_id": c, "score": 4}))
        .await;
    let what = format!("the rating on ticket {ticket_id}");
    eventually(&what, WAIT, || async {
        let (status, body) = hub.ticket(&ticket_id).await;
        (status == 200 && !body["rating"].is_null()).then_some(())
    })
    .await;
    assert_fresh_ttl(
        &format!("{ticket} after the rating"),
        pttl(&conn, &ticket).await,
        2 * HOUR_S,
    );
    assert_retired(&conn, &c, HOUR_S, 2 * HOUR_S, " after the rating").await;
}

#[tokio::test]
async fn defaults_keep_a_closed_chat_a_day_and_its_ticket_thirty_days() {
    let (redis, hub) = setup().await;
    let conn = redis_conn(&redis).await;
    let (mut chat, _) = served_chat(&hub, &conn).await;
    let c = chat.conversation_id.clone();
    let ticket_id = close(&hub, &mut chat).await;
    let day = 86_400;
    assert_fresh_ttl("conversation", wait_retired(&conn, &c).await, day);
    assert_retired(&conn, &c, day, 30 * day, "").await;
    let ticket = keys::ticket(&ticket_id);
    assert_fresh_ttl(&ticket, pttl(&conn, &ticket).await, 30 * day);
}

#[tokio::test]
async fn ticket_s_zero_keeps_tickets_forever() {
    let (redis, hub) = setup_hub(&config(HOUR_S, 0)).await;
    let conn = redis_conn(&redis).await;
    let (mut chat, visitor_id) = served_chat(&hub, &conn).await;
    let c = chat.conversation_id.clone();
    let ticket_id = close(&hub, &mut chat).await;

    assert_fresh_ttl("conversation", wait_retired(&conn, &c).await, HOUR_S);
    assert_retired(&conn, &c, HOUR_S, 0, "").await;
    assert_eq!(pttl(&conn, &keys::ticket(&ticket_id)).await, -1);
    assert_eq!(
        pttl(&conn, &keys::visitor_last_agent(&visitor_id)).await,
        -1,
        "the sticky hint lives as long as the tickets"
    );
    let (mut customer, _) = hub.customer(json!({})).await;
    let ack = customer
        .ok(
            json!({"type": "offline_message", "topic": "general", "name": "Ann",
                   "email": "ann@example.com", "text": "call me"}),
        )
        .await;
    let offline = ack["ticket_id"].as_str().expect("ticket_id");
    assert_eq!(pttl(&conn, &keys::ticket(offline)).await, -1);
}

#[cfg_attr(
    not(feature = "failpoints"),
    ignore = "needs the failpoints feature (the test command enables it)"
)]
#[tokio::test]
async fn a_flush_finished_after_a_crash_sets_the_expiry() {
    let redis = RedisServer::start().await;
    let conn = redis_conn(&redis).await;
    let mut hub = Hub::start_with_env(
        &redis,
        &config(HOUR_S, 2 * HOUR_S).to_toml(),
        &[("SWITCHBOARD_FAILPOINT", "after_close_before_flush")],
    )
    .await;
    let (mut chat, _) = served_chat(&hub, &conn).await;
    let c = chat.conversation_id.clone();
    chat.agent
        .send(json!({"type": "close", "conversation_id": c, "resolution": "resolved"}))
        .await;
    let status = hub.wait_exited(WAIT).await;
    assert!(!status.success(), "the hub should have aborted: {status}");
    assert!(in_open_index(&conn, &c).await, "closed but not flushed");
    assert_eq!(pttl(&conn, &keys::conversation(&c)).await, -1);

    hub.restart().await;
    wait_retired(&conn, &c).await;
    assert_retired(&conn, &c, HOUR_S, 2 * HOUR_S, "").await;
    // The recovery has no task's milestones: it read the chat back.
    assert_eq!(
        hub.metric("switchboard_ticket_flushes_read_back_total", &[])
            .await,
        1.0
    );
    let tickets = hub.tickets_of(&c).await;
    assert_eq!(tickets.len(), 1, "{tickets:?}");
    let ticket_id = tickets[0]["ticket_id"].as_str().expect("ticket_id");
    let ticket = keys::ticket(ticket_id);
    assert_fresh_ttl(&ticket, pttl(&conn, &ticket).await, 2 * HOUR_S);
    assert!(!in_open_index(&conn, &c).await);
}

/// A crash after the ticket was stored but before the conversation was retired (the
/// state an older hub left behind, too): the next flush finds the ticket stored, stores
/// nothing, and still sets the expiry.
#[tokio::test]
async fn a_flush_that_finds_its_ticket_stored_still_sets_the_expiry() {
    let (redis, mut hub) = setup_hub(&config(HOUR_S, 2 * HOUR_S)).await;
    let mut conn = redis_conn(&redis).await;
    let (mut chat, _) = served_chat(&hub, &conn).await;
    let c = chat.conversation_id.clone();
    let ticket_id = close(&hub, &mut chat).await;
    wait_retired(&conn, &c).await;

    let [state, events] = conversation_keys(&c);
    hub.kill9();
    redis::pipe()
        .cmd("PERSIST")
        .arg(&state)
        .cmd("PERSIST")
        .arg(&events)
        .cmd("HDEL")
        .arg(&state)
        .arg("flushed")
        .cmd("ZADD")
        .arg(keys::open_conversations())
        .arg(1)
        .arg(&c)
        .query_async::<()>(&mut conn)
        .await
        .unwrap_or_else(|err| panic!("rewind {c} to closed-but-unflushed: {err}"));

    hub.restart().await;
    wait_retired(&conn, &c).await;
    assert_retired(&conn, &c, HOUR_S, 2 * HOUR_S, "").await;
    assert!(!in_open_index(&conn, &c).await);
    let tickets = hub.tickets_of(&c).await;
    assert_eq!(tickets.len(), 1, "stored once: {tickets:?}");
    assert_eq!(tickets[0]["ticket_id"], ticket_id.as_str());
}

#[tokio::test]
async fn a_rating_after_the_chat_expired_is_not_found_and_writes_nothing() {
    let (redis, hub) = setup_hub(&config(1, 2 * HOUR_S)).await;
    let conn = redis_conn(&redis).await;
    let (mut chat, _) = served_chat(&hub, &conn).await;
    let c = chat.conversation_id.clone();
    let ticket_id = close(&hub, &mut chat).await;
    wait_retired(&conn, &c).await;

    // The state expires; the events stay, the ticket's transcript.
    let [state, events] = conversation_keys(&c);
    let what = format!("{state} to expire");
    eventually(&what, Duration::from_secs(10), || async {
        (!exists(&conn, &state).await).then_some(())
    })
    .await;

    chat.customer
        .err(
            json!({"type": "rate", "conversation_id": c, "score": 5}),
            "not_found",
        )
        .await;
    assert!(!exists(&conn, &state).await, "{state} was recreated");
    assert_fresh_ttl(&events, pttl(&conn, &events).await, 2 * HOUR_S);
    let path = format!("/v1/conversations/{c}");
    let (status, body) = hub.http("GET", &path, Some(ADMIN_TOKEN), None).await;
    assert_eq!(status, 404, "GET {path}: {body}");
    let (status, ticket) = hub.ticket(&ticket_id).await;
    assert_eq!(status, 200, "{ticket}");
    assert!(ticket["rating"].is_null(), "{ticket}");
    let kinds = transcript_values(&ticket, "kind");
    assert!(
        kinds.contains(&"message") && kinds.last() == Some(&"closed"),
        "the ticket still holds the whole chat once the conversation expired: {kinds:?}"
    );
    let ticket = keys::ticket(&ticket_id);
    assert_fresh_ttl(&ticket, pttl(&conn, &ticket).await, 2 * HOUR_S);
}

/// Tickets kept 1 s: a page over expired tickets skips them (and still pages on), and
/// the next stored ticket trims the log.
#[tokio::test]
async fn the_ticket_log_is_trimmed_and_pages_skip_expired_tickets() {
    let (redis, hub) = setup_hub(&config(1, 1)).await;
    let conn = redis_conn(&redis).await;
    let (mut customer, _) = hub.customer(json!({})).await;
    // More than one stream node (100 entries): the trim drops whole nodes.
    let old = 120;
    let mut last = String::new();
    for n in 0..old {
        let ack = customer
            .ok(
                json!({"type": "offline_message", "topic": "general", "name": "Ann",
                       "email": "ann@example.com", "text": format!("message {n}")}),
            )
            .await;
        last = ack["ticket_id"].as_str().expect("ticket_id").to_string();
    }
    assert_eq!(log_ids(&conn).await.len(), old);

    let what = format!("ticket {last}, the newest, to expire");
    eventually(&what, Duration::from_secs(10), || async {
        (!exists(&conn, &keys::ticket(&last)).await).then_some(())
    })
    .await;
    let page = hub.tickets_page(None, 50).await;
    assert_eq!(page["tickets"], json!([]), "{page}");
    assert!(
        page["next"].is_string(),
        "a page of expired tickets still pages on: {page}"
    );
    let listed: Vec<Value> = hub.all_tickets().await;
    assert!(listed.is_empty(), "expired tickets are listed: {listed:?}");

    let ack = customer
        .ok(
            json!({"type": "offline_message", "topic": "general", "name": "Ann",
                   "email": "ann@example.com", "text": "one more"}),
        )
        .await;
    let fresh = ack["ticket_id"].as_str().expect("ticket_id");
    // Read from the log itself: the fresh ticket may expire too before a page shows it.
    let ids = log_ids(&conn).await;
    assert!(
        ids.len() < old,
        "the log was not trimmed: {} entries",
        ids.len()
    );
    assert_eq!(ids.last().map(String::as_str), Some(fresh), "{ids:?}");
}

/// The ticket ids in the ticket log, oldest first.
async fn log_ids(conn: &MultiplexedConnection) -> Vec<String> {
    let mut conn = conn.clone();
    let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(keys::ticket_log())
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap_or_else(|err| panic!("XRANGE ticket log: {err}"));
    reply
        .ids
        .iter()
        .map(|entry| {
            entry
                .get::<String>("ticket_id")
                .unwrap_or_else(|| panic!("log entry without ticket_id: {entry:?}"))
        })
        .collect()
}
