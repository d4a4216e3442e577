//! Tickets of closed chats (issue 4): closing by the agent, the customer, a supervisor or
//! the idle timeout flushes exactly one ticket with the contract's fields, the full
//! transcript (notes included) and the right `wait_ms` and `first_response_ms`; ratings
//! after close (for agents and supervisors, stored on the ticket once); and a hub killed
//! between the close and the flush still yields exactly one ticket.
//!
//! Offline messages and reading and paging tickets over HTTP are in `tests/tickets_api.rs`.
//!
//! Timing figures are checked against wall-clock bounds this test observed around each
//! step (the hub and the test share the machine's clock), and against the ticket's own
//! transcript.

mod common;

use std::time::Duration;

use common::extra::{agent_ids, find_event};
use common::*;
use serde_json::{json, Value};

/// `[before, after]` in epoch milliseconds around one step.
#[derive(Clone, Copy, Debug)]
struct Window {
    before: u64,
    after: u64,
}

async fn timed<T>(step: impl std::future::Future<Output = T>) -> (T, Window) {
    let before = now_ms();
    let value = step.await;
    (
        value,
        Window {
            before,
            after: now_ms(),
        },
    )
}

/// What a ticket is checked against: who, and when the start and the join happened.
struct Facts {
    visitor_id: String,
    conversation_id: String,
    start: Window,
    join: Window,
}

/// A chat in progress with the times of its steps.
struct TimedChat {
    customer: Ws,
    agent: Ws,
    facts: Facts,
}

/// alice accepts a `general` chat started by Ann (with an email and metadata).
async fn timed_chat(hub: &Hub) -> TimedChat {
    let (mut agent, _) = hub.available_agent("alice", "Alice", &[], 3).await;
    let (mut customer, welcome) = hub.customer(json!({"email": "ann@example.com"})).await;
    let visitor_id = welcome["visitor_id"]
        .as_str()
        .expect("visitor_id")
        .to_string();
    let (ack, start) = timed(customer.ok(json!({
        "type": "start", "topic": "general", "text": "My invoice is wrong",
        "metadata": {"order": "A-17"},
    })))
    .await;
    let conversation_id = ack["conversation_id"].as_str().expect("id").to_string();
    let offer = agent.wait_offer_for(&conversation_id).await;
    let (_, join) = timed(async {
        agent.accept(&offer).await;
        agent.wait_event(&conversation_id, "joined").await;
    })
    .await;
    customer.wait_event(&conversation_id, "joined").await;
    TimedChat {
        customer,
        agent,
        facts: Facts {
            visitor_id,
            conversation_id,
            start,
            join,
        },
    }
}

/// `figure` (a duration from the start) lies within what the windows allow: at least
/// `event.before - start.after`, at most `event.after - start.before`.
fn assert_between(name: &str, figure: &Value, start: Window, event: Window, ticket: &Value) {
    let figure = figure
        .as_u64()
        .unwrap_or_else(|| panic!("{name} is not an integer: {ticket}"));
    let low = event.before.saturating_sub(start.after);
    let high = event.after - start.before;
    assert!(
        (low..=high).contains(&figure),
        "{name} = {figure} ms, but the test saw it between {low} and {high} ms: {ticket}"
    );
}

/// Fields every ticket of a closed conversation shares, the exactly-once count, and the
/// timing figures recomputed from its own transcript.
async fn check_ticket(hub: &Hub, ticket: &Value, chat: &Facts, resolution: &str, closed: &Value) {
    let c = &chat.conversation_id;
    assert_eq!(ticket["ticket_id"], closed["ticket_id"], "{ticket}");
    assert_eq!(ticket["conversation_id"], *c, "{ticket}");
    assert_eq!(ticket["topic"], "general", "{ticket}");
    assert_eq!(ticket["customer"]["id"], chat.visitor_id, "{ticket}");
    assert_eq!(ticket["resolution"], resolution, "{ticket}");
    assert_eq!(ticket["metadata"], json!({"order": "A-17"}), "{ticket}");
    assert!(ticket["tags"].is_array(), "{ticket}");
    assert_eq!(agent_ids(ticket), ["alice"], "{ticket}");
    assert!(ticket["rating"].is_null(), "no rating yet: {ticket}");

    let opened_at = ticket["opened_at"].as_u64().expect("opened_at");
    assert!(
        (chat.start.before..=chat.start.after).contains(&opened_at),
        "opened_at {opened_at} outside the start window {:?}: {ticket}",
        chat.start
    );
    // The hub takes `closed_at` just before it stamps the `closed` event: allow the gap.
    let closed_at = ticket["closed_at"].as_u64().expect("closed_at");
    let closed_ts = closed["ts"].as_u64().expect("ts");
    assert!(
        closed_at <= closed_ts && closed_ts - closed_at < 100,
        "closed_at {closed_at} is not the close time (closed event ts {closed_ts}): {ticket}"
    );

    // The transcript is every event, notes included, ending with `closed`.
    let transcript = ticket["transcript"]
        .as_array()
        .unwrap_or_else(|| panic!("ticket without transcript: {ticket}"));
    let closed_seq = seq_of(closed);
    assert_eq!(
        seqs(transcript),
        (1..=closed_seq).collect::<Vec<_>>(),
        "transcript seqs: {ticket}"
    );
    assert_eq!(transcript.last().expect("events")["kind"], "closed");
    assert_eq!(transcript[0]["text"], "My invoice is wrong");

    // wait_ms and first_response_ms agree with the transcript's own timestamps.
    let joined = find_event(transcript, "joined");
    assert_eq!(
        ticket["wait_ms"].as_u64(),
        Some(joined["ts"].as_u64().expect("ts") - opened_at),
        "wait_ms must be the first join's ts minus opened_at: {ticket}"
    );
    assert_between("wait_ms", &ticket["wait_ms"], chat.start, chat.join, ticket);
    match transcript
        .iter()
        .find(|e| e["kind"] == "message" && e["from"]["role"] == "agent")
    {
        Some(reply) => assert_eq!(
            ticket["first_response_ms"].as_u64(),
            Some(reply["ts"].as_u64().expect("ts") - opened_at),
            "first_response_ms must be the first agent message's ts minus opened_at: {ticket}"
        ),
        None => assert!(
            ticket["first_response_ms"].is_null(),
            "no agent message, yet first_response_ms is set: {ticket}"
        ),
    }

    let tickets = hub.tickets_of(c).await;
    assert_eq!(tickets.len(), 1, "exactly one ticket for {c}: {tickets:?}");
}

#[tokio::test]
async fn close_by_agent_makes_one_ticket_with_timing_figures() {
    let (_redis, hub) = setup().await;
    let mut chat = timed_chat(&hub).await;
    let c = chat.facts.conversation_id.clone();

    chat.agent
        .ok(json!({"type": "note", "conversation_id": c, "text": "checked billing system"}))
        .await;
    let (_, reply) = timed(chat.agent.say(&c, "I see the problem, one moment")).await;
    chat.customer.say(&c, "Thanks").await;
    let (ack, close) = timed(chat.agent.ok(json!({
        "type": "close", "conversation_id": c, "resolution": "resolved", "tags": ["refund"],
    })))
    .await;
    let ticket_id = ack["ticket_id"]
        .as_str()
        .unwrap_or_else(|| panic!("close ack without ticket_id: {ack}"))
        .to_string();

    let closed = chat.customer.wait_event(&c, "closed").await;
    assert_eq!(closed["ticket_id"], ticket_id, "{closed}");
    assert_eq!(
        closed["seq"], ack["seq"],
        "close ack and event: {ack} {closed}"
    );
    assert_eq!(closed["resolution"], "resolved", "{closed}");
    assert_eq!(closed["by"]["role"], "agent", "{closed}");
    assert_eq!(closed["by"]["id"], "alice", "{closed}");
    let closed_ts = closed["ts"].as_u64().expect("ts");
    assert!(
        (close.before..=close.after).contains(&closed_ts),
        "{closed}"
    );
    chat.agent.wait_event(&c, "closed").await;

    let ticket = hub.wait_ticket(&ticket_id).await;
    check_ticket(&hub, &ticket, &chat.facts, "resolved", &closed).await;
    assert_eq!(ticket["tags"], json!(["refund"]), "{ticket}");
    assert_between(
        "first_response_ms",
        &ticket["first_response_ms"],
        chat.facts.start,
        reply,
        &ticket,
    );
    let transcript = ticket["transcript"].as_array().expect("transcript");
    let note = find_event(transcript, "note");
    assert_eq!(
        note["text"], "checked billing system",
        "notes are kept on the ticket"
    );

    // Closing again changes nothing.
    let again = chat
        .agent
        .request(json!({"type": "close", "conversation_id": c, "resolution": "resolved"}))
        .await;
    assert_eq!(ty(&again), "error", "a second close: {again}");
    assert_eq!(hub.tickets_of(&c).await.len(), 1);
    assert_eq!(hub.all_tickets().await.len(), 1);
}

#[tokio::test]
async fn closed_conversation_becomes_a_ticket_with_the_full_transcript() {
    let (_redis, hub) = setup().await;
    let Chat {
        mut customer,
        mut agent,
        conversation_id: conv,
        ..
    } = chat(&hub).await;
    agent
        .ok(json!({"type": "note", "conversation_id": conv, "text": "vip customer"}))
        .await;
    agent.say(&conv, "done!").await;
    let closed = agent
        .ok(
            json!({"type": "close", "conversation_id": conv, "resolution": "resolved",
                   "tags": ["refund"]}),
        )
        .await;
    let id = closed["ticket_id"].as_str().expect("ticket_id").to_string();
    customer.wait_event(&conv, "closed").await;

    let ticket = hub.wait_ticket(&id).await;
    assert_eq!(ticket["ticket_id"], id.as_str(), "{ticket}");
    assert_eq!(ticket["conversation_id"], conv.as_str(), "{ticket}");
    assert_eq!(ticket["topic"], "general", "{ticket}");
    assert_eq!(ticket["resolution"], "resolved", "{ticket}");
    assert_eq!(ticket["tags"], json!(["refund"]), "{ticket}");
    let agents = ticket["agents"].to_string();
    assert!(agents.contains("alice"), "agents: {ticket}");
    for field in ["opened_at", "closed_at", "wait_ms", "first_response_ms"] {
        assert!(ticket[field].is_u64(), "{field}: {ticket}");
    }
    let transcript = ticket["transcript"]
        .as_array()
        .unwrap_or_else(|| panic!("no transcript: {ticket}"));
    assert_eq!(seqs(transcript), vec![1, 2, 3, 4, 5], "{ticket}");
    assert_eq!(
        kinds(transcript),
        vec!["message", "joined", "note", "message", "closed"],
        "the transcript holds every event, notes included"
    );
    // The task that created the chat kept its milestones: the flush read none of it back.
    assert_eq!(
        hub.metric("switchboard_ticket_flushes_read_back_total", &[])
            .await,
        0.0
    );
}

#[tokio::test]
async fn close_by_customer_is_customer_left() {
    let (_redis, hub) = setup().await;
    let mut chat = timed_chat(&hub).await;
    let c = chat.facts.conversation_id.clone();
    chat.customer.say(&c, "Never mind, found it").await;

    // Whatever resolution a customer names, it is `customer_left`.
    let ack = chat
        .customer
        .ok(json!({"type": "close", "conversation_id": c, "resolution": "resolved"}))
        .await;
    let ticket_id = ack["ticket_id"]
        .as_str()
        .expect("ticket_id in the close ack");
    let closed = chat.agent.wait_event(&c, "closed").await;
    assert_eq!(closed["ticket_id"], ticket_id, "{closed}");
    assert_eq!(closed["resolution"], "customer_left", "{closed}");
    assert_eq!(closed["by"]["role"], "customer", "{closed}");
    assert_eq!(closed["by"]["id"], chat.facts.visitor_id, "{closed}");

    let ticket = hub.wait_ticket(ticket_id).await;
    // No agent message: first_response_ms stays empty (checked in check_ticket).
    check_ticket(&hub, &ticket, &chat.facts, "customer_left", &closed).await;
}

#[tokio::test]
async fn close_by_supervisor_makes_one_ticket() {
    let (_redis, hub) = setup().await;
    let mut chat = timed_chat(&hub).await;
    let c = chat.facts.conversation_id.clone();
    let (_, reply) = timed(chat.agent.say(&c, "Looking into it")).await;
    let (mut sam, _) = hub.supervisor("sam", "Sam").await;

    // Not a member, not monitoring: a supervisor may still close it.
    let ack = sam
        .ok(json!({"type": "close", "conversation_id": c, "resolution": "resolved", "tags": ["spam"]}))
        .await;
    let ticket_id = ack["ticket_id"]
        .as_str()
        .expect("ticket_id in the close ack");
    let closed = chat.customer.wait_event(&c, "closed").await;
    assert_eq!(closed["ticket_id"], ticket_id, "{closed}");
    assert_eq!(closed["by"]["role"], "agent", "{closed}");
    assert_eq!(closed["by"]["id"], "sam", "{closed}");
    assert_eq!(
        chat.agent.wait_event(&c, "closed").await["seq"],
        closed["seq"]
    );

    let ticket = hub.wait_ticket(ticket_id).await;
    // `agents` lists who joined: alice, not the supervisor.
    check_ticket(&hub, &ticket, &chat.facts, "resolved", &closed).await;
    assert_eq!(ticket["tags"], json!(["spam"]), "{ticket}");
    assert_between(
        "first_response_ms",
        &ticket["first_response_ms"],
        chat.facts.start,
        reply,
        &ticket,
    );
}

#[tokio::test]
async fn idle_customer_is_closed_as_abandoned() {
    const IDLE_MS: u64 = 700;
    let (_redis, hub) =
        setup_with(TestConfig::default().router("customer_idle_timeout_ms", IDLE_MS)).await;
    let mut chat = timed_chat(&hub).await;
    let c = chat.facts.conversation_id.clone();
    let (_, reply) = timed(chat.agent.say(&c, "Are you still there?")).await;

    let TimedChat {
        customer,
        mut agent,
        facts,
    } = chat;
    let gone = now_ms();
    customer.close().await;
    let closed = agent
        .wait_for_within("the abandoned close", Duration::from_secs(8), |f| {
            is_event(f, &c, "closed")
        })
        .await;
    assert_eq!(closed["resolution"], "abandoned", "{closed}");
    assert_eq!(closed["by"]["role"], "system", "{closed}");
    let closed_ts = closed["ts"].as_u64().expect("ts");
    assert!(
        closed_ts >= gone + IDLE_MS - 10,
        "closed {} ms after the customer left, before the {IDLE_MS} ms idle timeout",
        closed_ts as i64 - gone as i64
    );
    let ticket_id = closed["ticket_id"].as_str().expect("ticket_id on closed");

    let ticket = hub.wait_ticket(ticket_id).await;
    check_ticket(&hub, &ticket, &facts, "abandoned", &closed).await;
    assert_between(
        "first_response_ms",
        &ticket["first_response_ms"],
        facts.start,
        reply,
        &ticket,
    );
}

#[tokio::test]
async fn rating_after_close_lands_on_the_ticket_once() {
    let (_redis, hub) = setup().await;
    let mut chat = timed_chat(&hub).await;
    let c = chat.facts.conversation_id.clone();
    let (mut sam, _) = hub.supervisor("sam", "Sam").await;
    sam.ok(json!({"type": "monitor", "conversation_id": c}))
        .await;

    let early = chat
        .customer
        .request(json!({"type": "rate", "conversation_id": c, "score": 5, "comment": "too early"}))
        .await;
    assert_eq!(ty(&early), "error", "rating an open conversation: {early}");

    let ack = chat
        .agent
        .ok(json!({"type": "close", "conversation_id": c, "resolution": "resolved"}))
        .await;
    let ticket_id = ack["ticket_id"].as_str().expect("ticket_id").to_string();
    chat.customer.wait_event(&c, "closed").await;

    let rated = chat
        .customer
        .ok(json!({"type": "rate", "conversation_id": c, "score": 5, "comment": "quick!"}))
        .await;
    let rating_seq = seq_of(&rated);
    for (who, ws) in [("agent", &mut chat.agent), ("supervisor", &mut sam)] {
        let event = ws.wait_seq(&c, rating_seq).await;
        assert_eq!(event["kind"], "rating", "{who}: {event}");
        assert_eq!(event["score"], 5, "{who}: {event}");
        assert_eq!(event["comment"], "quick!", "{who}: {event}");
    }

    let what = format!("the rating on ticket {ticket_id}");
    let ticket = eventually(&what, WAIT, || async {
        let (status, ticket) = hub.ticket(&ticket_id).await;
        (status == 200 && !ticket["rating"].is_null()).then_some(ticket)
    })
    .await;
    assert_eq!(ticket["rating"]["score"], 5, "{ticket}");
    assert_eq!(ticket["rating"]["comment"], "quick!", "{ticket}");

    chat.customer
        .err(
            json!({"type": "rate", "conversation_id": c, "score": 1, "comment": "changed my mind"}),
            "conflict",
        )
        .await;
    let (_, ticket) = hub.ticket(&ticket_id).await;
    assert_eq!(
        ticket["rating"]["score"], 5,
        "the first rating stays: {ticket}"
    );
    assert_eq!(hub.tickets_of(&c).await.len(), 1);
}

#[tokio::test]
async fn rating_after_close_is_stored_for_agents_only() {
    let (_redis, hub) = setup().await;
    let Chat {
        mut customer,
        mut agent,
        conversation_id: conv,
        ..
    } = chat(&hub).await;
    let closed = customer
        .ok(json!({"type": "close", "conversation_id": conv, "resolution": "resolved"}))
        .await;
    let rated = customer
        .ok(json!({"type": "rate", "conversation_id": conv, "score": 5, "comment": "quick!"}))
        .await;
    assert_eq!(rated["seq"], 4, "rate ack: {rated}");
    customer
        .err(
            json!({"type": "rate", "conversation_id": conv, "score": 9}),
            "bad_request",
        )
        .await;

    let events = agent.history(&conv, 0).await;
    let rating = events
        .iter()
        .find(|e| e["kind"] == "rating")
        .unwrap_or_else(|| panic!("no rating in the agent's history: {events:?}"));
    assert_eq!(rating["score"], 5, "{rating}");
    assert_eq!(rating["comment"], "quick!", "{rating}");
    let events = customer.history(&conv, 0).await;
    assert!(
        !events.iter().any(|e| e["kind"] == "rating"),
        "ratings are for agents and supervisors: {events:?}"
    );

    let id = closed["ticket_id"].as_str().expect("ticket_id");
    let ticket = eventually(
        "the ticket to carry the rating",
        Duration::from_secs(5),
        || async {
            let ticket = hub.wait_ticket(id).await;
            (!ticket["rating"].is_null()).then_some(ticket)
        },
    )
    .await;
    assert_eq!(ticket["rating"]["score"], 5, "{ticket}");
}

#[cfg_attr(
    not(feature = "failpoints"),
    ignore = "needs the failpoints feature (the test command enables it)"
)]
#[tokio::test]
async fn hub_killed_between_close_and_flush_still_yields_one_ticket() {
    let redis = RedisServer::start().await;
    let mut hub = Hub::start_with_env(
        &redis,
        &TestConfig::default().to_toml(),
        &[("SWITCHBOARD_FAILPOINT", "after_close_before_flush")],
    )
    .await;
    let Chat {
        customer: _customer,
        agent: mut alice,
        agent_token,
        conversation_id: c,
        ..
    } = chat(&hub).await;
    alice.say(&c, "Refund issued").await;

    // The hub dies right after storing `closed`; the ack may or may not get out first.
    alice
        .send(
            json!({"type": "close", "req": "bye", "conversation_id": c, "resolution": "resolved"}),
        )
        .await;
    let mut ack = None;
    while let Some(frame) = alice.next_frame(WAIT).await {
        if ty(&frame) == "ack" && frame["req"] == "bye" {
            ack = Some(frame);
        }
    }
    assert!(
        alice.closed().is_some(),
        "the hub with the failpoint armed kept the socket open after close: {:?}",
        alice.seen()
    );
    let status = hub.wait_exited(WAIT).await;
    assert!(!status.success(), "the hub should have aborted: {status}");
    assert!(
        hub.output().contains("failpoint"),
        "the hub did not die at the failpoint:\n{}",
        hub.log_tail(20)
    );

    // A new hub (failpoint disarmed) finishes the flush.
    hub.restart().await;
    let (status, body) = hub
        .http_json(
            "GET",
            &format!("/v1/conversations/{c}"),
            Some(ADMIN_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let events = body["events"].as_array().expect("events").clone();
    let closed = find_event(&events, "closed").clone();
    let ticket_id = closed["ticket_id"].as_str().expect("ticket_id").to_string();
    if let Some(ack) = &ack {
        assert_eq!(
            ack["ticket_id"], ticket_id,
            "the ack named another ticket: {ack}"
        );
    }
    let what = format!("ticket {ticket_id} flushed after the restart");
    let ticket = eventually(&what, Duration::from_secs(12), || async {
        let (status, ticket) = hub.ticket(&ticket_id).await;
        (status == 200).then_some(ticket)
    })
    .await;
    assert_eq!(ticket["conversation_id"], c, "{ticket}");
    assert_eq!(ticket["resolution"], "resolved", "{ticket}");
    let transcript = ticket["transcript"].as_array().expect("transcript");
    assert_eq!(seqs(transcript), seqs(&events), "{ticket}");
    assert_eq!(hub.tickets_of(&c).await.len(), 1);

    // Another restart flushes nothing again; a new chat gets a new ticket.
    hub.restart().await;
    let (mut alice, _) = hub.agent(&agent_token).await;
    alice.go_available().await;
    let (mut customer, _) = hub.customer(json!({})).await;
    let second = customer.start_chat("general", "One more thing").await;
    assert_eq!(alice.accept_next_offer().await, second);
    let ack = alice
        .ok(json!({"type": "close", "conversation_id": second, "resolution": "resolved"}))
        .await;
    let second_ticket = ack["ticket_id"].as_str().expect("ticket_id");
    assert_ne!(second_ticket, ticket_id);
    hub.wait_ticket(second_ticket).await;
    let all = hub.all_tickets().await;
    let conversations: Vec<&Value> = all.iter().map(|t| &t["conversation_id"]).collect();
    assert_eq!(conversations, [&json!(c), &json!(second)], "{all:?}");
}
