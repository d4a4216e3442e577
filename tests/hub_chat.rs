//! Conversations end to end: start, offer, accept, messages, history, close; idempotent
//! resends, tabs, typing/read relays, notes hidden from customers, membership checks.

mod common;

use common::*;
use serde_json::{json, Value};

/// `ts` is integer milliseconds since the epoch (checked against this machine's clock).
fn assert_recent_ts(event: &Value) {
    let ts = event["ts"]
        .as_u64()
        .unwrap_or_else(|| panic!("event without integer ts: {event}"));
    let now = now_ms();
    assert!(
        ts + 60_000 > now && ts < now + 60_000,
        "ts {ts} is not milliseconds near now ({now}): {event}"
    );
}

#[tokio::test]
async fn full_chat_from_start_to_ticket() {
    let (_redis, hub) = setup().await;
    let token = hub.create_agent("alice", "Alice", &[], 3, false).await;

    let (mut customer, welcome) = hub
        .customer(json!({"name": "Ann", "email": "ann@example.com"}))
        .await;
    let visitor = welcome["visitor_id"]
        .as_str()
        .expect("visitor_id")
        .to_string();

    let start = customer
        .ok(
            json!({"type": "start", "topic": "general", "text": "My invoice is wrong",
                   "metadata": {"order": "A-17"}}),
        )
        .await;
    assert_eq!(start["seq"], 1, "start ack: {start}");
    let conv = start["conversation_id"]
        .as_str()
        .unwrap_or_else(|| panic!("start ack without conversation_id: {start}"))
        .to_string();

    // Nobody is available: the customer waits, first in line.
    let queue = customer
        .wait_for("queue position", |f| {
            ty(f) == "queue" && f["conversation_id"] == conv.as_str()
        })
        .await;
    assert_eq!(queue["position"], 1, "queue: {queue}");
    assert!(queue["eta_ms"].is_u64(), "queue.eta_ms: {queue}");

    let (mut agent, agent_welcome) = hub.agent(&token).await;
    assert_eq!(agent_welcome["status"], "away");
    let status = agent.set_status("available").await;
    assert_eq!(status["status"], "available", "status ack: {status}");

    let offer = agent.wait_offer_for(&conv).await;
    assert!(offer["offer_id"].is_string(), "offer: {offer}");
    assert_eq!(offer["topic"], "general", "offer: {offer}");
    assert_eq!(offer["priority"], 0, "offer: {offer}");
    assert_eq!(offer["customer"]["id"], visitor.as_str(), "offer: {offer}");
    assert_eq!(offer["customer"]["name"], "Ann", "offer: {offer}");
    assert_eq!(offer["customer"]["verified"], false, "offer: {offer}");
    assert_eq!(offer["preview"], "My invoice is wrong", "offer: {offer}");
    assert!(offer["waited_ms"].is_u64(), "offer: {offer}");
    let expires = offer["expires_ms"].as_u64().unwrap_or(0);
    assert!(
        expires > 0 && expires <= 15_000,
        "expires_ms within the topic's 15 s offer timeout: {offer}"
    );

    let accepted = agent.accept(&offer).await;
    assert_eq!(
        accepted["conversation_id"],
        conv.as_str(),
        "accept ack: {accepted}"
    );

    for side in [&mut customer, &mut agent] {
        let joined = side.wait_event(&conv, "joined").await;
        assert_eq!(joined["seq"], 2, "joined: {joined}");
        assert_eq!(joined["agent"]["id"], "alice", "joined: {joined}");
        assert_eq!(joined["agent"]["name"], "Alice", "joined: {joined}");
        assert_recent_ts(&joined);
    }

    // Agent → customer.
    let seq = agent.say(&conv, "Let me check that for you").await;
    assert_eq!(seq, 3);
    let event = customer.wait_seq(&conv, 3).await;
    assert_eq!(event["kind"], "message", "event: {event}");
    assert_eq!(event["text"], "Let me check that for you", "event: {event}");
    assert_eq!(event["from"]["role"], "agent", "event: {event}");
    assert_eq!(event["from"]["id"], "alice", "event: {event}");
    assert_eq!(event["from"]["name"], "Alice", "event: {event}");
    assert_recent_ts(&event);

    // Customer → agent, with a client_msg_id.
    let ack = customer
        .ok(
            json!({"type": "message", "conversation_id": conv, "text": "Thanks!",
                   "client_msg_id": "m-1"}),
        )
        .await;
    assert_eq!(ack["seq"], 4, "message ack: {ack}");
    let event = agent.wait_seq(&conv, 4).await;
    assert_eq!(event["kind"], "message", "event: {event}");
    assert_eq!(event["text"], "Thanks!", "event: {event}");
    assert_eq!(event["client_msg_id"], "m-1", "event: {event}");
    assert_eq!(event["from"]["role"], "customer", "event: {event}");
    assert_eq!(event["from"]["id"], visitor.as_str(), "event: {event}");
    assert_eq!(event["from"]["name"], "Ann", "event: {event}");

    // Both sides see the same history, oldest first.
    for side in [&mut customer, &mut agent] {
        let events = side.history(&conv, 0).await;
        assert_eq!(seqs(&events), vec![1, 2, 3, 4], "history: {events:?}");
        assert_eq!(
            kinds(&events),
            vec!["message", "joined", "message", "message"],
            "history: {events:?}"
        );
        assert_eq!(events[0]["text"], "My invoice is wrong");
        assert_eq!(events[0]["from"]["role"], "customer");
        assert!(events.iter().all(|e| e["conversation_id"] == conv.as_str()));
        let tail = side.history(&conv, 2).await;
        assert_eq!(seqs(&tail), vec![3, 4], "history after_seq 2: {tail:?}");
    }

    // The agent closes: a ticket is made and both sides hear about it.
    let closed = agent
        .ok(
            json!({"type": "close", "conversation_id": conv, "resolution": "resolved",
                   "tags": ["refund"]}),
        )
        .await;
    assert_eq!(closed["seq"], 5, "close ack: {closed}");
    let ticket = closed["ticket_id"]
        .as_str()
        .unwrap_or_else(|| panic!("close ack without ticket_id: {closed}"))
        .to_string();
    for side in [&mut customer, &mut agent] {
        let event = side.wait_event(&conv, "closed").await;
        assert_eq!(event["seq"], 5, "closed: {event}");
        assert_eq!(event["by"]["role"], "agent", "closed: {event}");
        assert_eq!(event["by"]["id"], "alice", "closed: {event}");
        assert_eq!(event["resolution"], "resolved", "closed: {event}");
        assert_eq!(event["ticket_id"], ticket.as_str(), "closed: {event}");
    }

    // The ticket keeps the metadata and tags.
    let path = format!("/v1/tickets/{ticket}");
    let stored = eventually("the ticket over HTTP", WAIT, || async {
        let (status, body) = hub.http_json("GET", &path, Some(ADMIN_TOKEN), None).await;
        (status == 200).then_some(body)
    })
    .await;
    assert_eq!(stored["metadata"], json!({"order": "A-17"}), "{stored}");
    assert_eq!(stored["tags"], json!(["refund"]), "{stored}");
    assert_eq!(stored["resolution"], "resolved", "{stored}");
    assert_eq!(stored["customer"]["id"], visitor.as_str(), "{stored}");
}

#[tokio::test]
async fn resent_client_msg_id_gets_the_first_seq_and_is_stored_once() {
    let (_redis, hub) = setup().await;
    let Chat {
        mut customer,
        conversation_id: conv,
        ..
    } = chat(&hub).await;

    let frame = json!({"type": "message", "conversation_id": conv, "text": "once",
                       "client_msg_id": "m-81"});
    let first = customer.ok(frame.clone()).await;
    let again = customer.ok(frame.clone()).await;
    assert_eq!(first["seq"], 3, "first ack: {first}");
    assert_eq!(again["seq"], first["seq"], "resend ack: {again}");

    let next = customer
        .ok(
            json!({"type": "message", "conversation_id": conv, "text": "twice",
                   "client_msg_id": "m-82"}),
        )
        .await;
    assert_eq!(next["seq"], 4, "the resend stored nothing: {next}");

    let events = customer.history(&conv, 0).await;
    assert_eq!(seqs(&events), vec![1, 2, 3, 4], "history: {events:?}");
    let copies = events
        .iter()
        .filter(|e| e["client_msg_id"] == "m-81")
        .count();
    assert_eq!(copies, 1, "history holds m-81 once: {events:?}");
}

#[tokio::test]
async fn two_tabs_of_one_session_both_receive_events() {
    let (_redis, hub) = setup().await;
    let (mut agent, _) = hub.available_agent("alice", "Alice", &[], 3).await;
    let (mut tab1, welcome) = hub.customer(json!({})).await;
    let conv = tab1.start_chat("general", "hi from tab 1").await;

    let (mut tab2, welcome2) = hub.customer(json!({"session": welcome["session"]})).await;
    assert_eq!(welcome2["visitor_id"], welcome["visitor_id"], "{welcome2}");
    let listed = listed_in_welcome(&welcome2, &conv, "second tab's welcome");
    assert_eq!(listed["last_seq"], 1, "listed: {listed}");

    agent.accept_next_offer().await;
    tab1.wait_event(&conv, "joined").await;
    tab2.wait_event(&conv, "joined").await;

    let seq = agent.say(&conv, "hello both tabs").await;
    for tab in [&mut tab1, &mut tab2] {
        let event = tab.wait_seq(&conv, seq).await;
        assert_eq!(event["text"], "hello both tabs", "event: {event}");
    }

    // What one tab sends, the other tab sees.
    let seq = tab1.say(&conv, "typed in tab 1").await;
    let event = tab2.wait_seq(&conv, seq).await;
    assert_eq!(event["text"], "typed in tab 1", "event: {event}");
    assert_eq!(event["from"]["role"], "customer", "event: {event}");
}

#[tokio::test]
async fn agent_with_two_connections_gets_the_offer_on_both_and_the_first_accept_wins() {
    let (_redis, hub) = setup().await;
    let token = hub.create_agent("alice", "Alice", &[], 3, false).await;
    let (mut tab1, _) = hub.agent(&token).await;
    let (mut tab2, _) = hub.agent(&token).await;
    tab1.go_available().await;

    let (mut customer, _) = hub.customer(json!({})).await;
    let conv = customer.start_chat("general", "anyone?").await;

    let offer1 = tab1.wait_offer_for(&conv).await;
    let offer2 = tab2.wait_offer_for(&conv).await;
    assert_eq!(offer1["offer_id"], offer2["offer_id"]);

    let won = tab1.accept(&offer1).await;
    assert_eq!(won["conversation_id"], conv.as_str(), "accept ack: {won}");
    let lost = tab2
        .request(json!({"type": "accept", "offer_id": offer2["offer_id"]}))
        .await;
    assert!(
        ty(&lost) == "error" && (lost["code"] == "conflict" || lost["code"] == "not_found"),
        "the second accept must fail with conflict or not_found, got {lost}"
    );

    // Both tabs are the agent: both get its events.
    tab1.wait_event(&conv, "joined").await;
    tab2.wait_event(&conv, "joined").await;
    let joined = customer.wait_event(&conv, "joined").await;
    assert_eq!(joined["seq"], 2, "exactly one join: {joined}");
    let events = customer.history(&conv, 0).await;
    assert_eq!(kinds(&events), vec!["message", "joined"], "{events:?}");
}

#[tokio::test]
async fn typing_and_read_are_relayed_with_from() {
    let (_redis, hub) = setup().await;
    let Chat {
        mut customer,
        mut agent,
        welcome,
        conversation_id: conv,
        ..
    } = chat(&hub).await;

    customer
        .send(json!({"type": "typing", "conversation_id": conv, "on": true}))
        .await;
    let typing = agent
        .wait_for("typing from the customer", |f| ty(f) == "typing")
        .await;
    assert_eq!(typing["conversation_id"], conv.as_str(), "{typing}");
    assert_eq!(typing["on"], true, "{typing}");
    assert_eq!(typing["from"]["role"], "customer", "{typing}");
    assert_eq!(typing["from"]["id"], welcome["visitor_id"], "{typing}");

    // With a req it is acknowledged too.
    customer
        .ok(json!({"type": "typing", "conversation_id": conv, "on": false}))
        .await;
    let typing = agent
        .wait_for("typing off from the customer", |f| {
            ty(f) == "typing" && f["on"] == false
        })
        .await;
    assert_eq!(typing["from"]["role"], "customer", "{typing}");

    agent
        .send(json!({"type": "read", "conversation_id": conv, "seq": 1}))
        .await;
    let read = customer
        .wait_for("read from the agent", |f| ty(f) == "read")
        .await;
    assert_eq!(read["conversation_id"], conv.as_str(), "{read}");
    assert_eq!(read["seq"], 1, "{read}");
    assert_eq!(read["from"]["role"], "agent", "{read}");
    assert_eq!(read["from"]["id"], "alice", "{read}");

    agent
        .send(json!({"type": "typing", "conversation_id": conv, "on": true}))
        .await;
    let typing = customer
        .wait_for("typing from the agent", |f| ty(f) == "typing")
        .await;
    assert_eq!(typing["from"]["role"], "agent", "{typing}");
    assert_eq!(typing["from"]["id"], "alice", "{typing}");

    // Typing and read are not stored.
    let events = agent.history(&conv, 0).await;
    assert_eq!(seqs(&events), vec![1, 2], "{events:?}");
}

#[tokio::test]
async fn second_start_while_one_is_open_conflicts() {
    let (_redis, hub) = setup().await;
    let (mut customer, _) = hub.customer(json!({})).await;
    let conv = customer.start_chat("general", "first").await;
    customer
        .err(
            json!({"type": "start", "topic": "general", "text": "second"}),
            "conflict",
        )
        .await;

    // Once the first is closed, a new one may start.
    customer
        .ok(json!({"type": "close", "conversation_id": conv, "resolution": "resolved"}))
        .await;
    let next = customer.start_chat("general", "third").await;
    assert_ne!(next, conv);
}

#[tokio::test]
async fn customer_close_is_resolution_customer_left() {
    let (_redis, hub) = setup().await;
    let Chat {
        mut customer,
        mut agent,
        welcome,
        conversation_id: conv,
        ..
    } = chat(&hub).await;

    let ack = customer
        .ok(json!({"type": "close", "conversation_id": conv, "resolution": "resolved"}))
        .await;
    assert_eq!(ack["seq"], 3, "close ack: {ack}");
    assert!(ack["ticket_id"].is_string(), "close ack: {ack}");
    for side in [&mut agent, &mut customer] {
        let closed = side.wait_event(&conv, "closed").await;
        assert_eq!(closed["seq"], 3, "{closed}");
        assert_eq!(closed["resolution"], "customer_left", "{closed}");
        assert_eq!(closed["by"]["role"], "customer", "{closed}");
        assert_eq!(closed["by"]["id"], welcome["visitor_id"], "{closed}");
        assert_eq!(closed["ticket_id"], ack["ticket_id"], "{closed}");
    }
}

#[tokio::test]
async fn customer_never_sees_an_agent_note() {
    let (_redis, hub) = setup().await;
    let Chat {
        mut customer,
        mut agent,
        conversation_id: conv,
        ..
    } = chat(&hub).await;

    let note = agent
        .ok(json!({"type": "note", "conversation_id": conv, "text": "checked billing system"}))
        .await;
    assert_eq!(note["seq"], 3, "note ack: {note}");
    let seq = agent.say(&conv, "all sorted").await;
    assert_eq!(seq, 4);

    // Events reach a member in seq order, so once seq 4 is here, seq 3 would have been too.
    customer.wait_seq(&conv, 4).await;
    let leaked: Vec<&Value> = customer
        .seen()
        .iter()
        .filter(|f| {
            ty(f) == "event"
                && (f["kind"] == "note" || (f["conversation_id"] == conv.as_str() && f["seq"] == 3))
        })
        .collect();
    assert!(
        leaked.is_empty(),
        "the customer received the note: {leaked:?}"
    );
    assert!(
        !customer
            .seen()
            .iter()
            .any(|f| f.to_string().contains("checked billing system")),
        "the note's text reached the customer"
    );

    // Customer histories have seq gaps where notes are: allowed, since the customer is not
    // entitled to see them (the contract's "the events a client may see").
    let events = customer.history(&conv, 0).await;
    assert_eq!(seqs(&events), vec![1, 2, 4], "customer history: {events:?}");
    let events = agent.history(&conv, 0).await;
    assert_eq!(seqs(&events), vec![1, 2, 3, 4], "agent history: {events:?}");
    assert_eq!(events[2]["kind"], "note");
    assert_eq!(events[2]["text"], "checked billing system");
    assert_eq!(events[2]["from"]["id"], "alice");
}

#[tokio::test]
async fn customer_cannot_read_or_write_someone_elses_conversation() {
    let (_redis, hub) = setup().await;
    let (mut ann, _) = hub.customer(json!({"name": "Ann"})).await;
    let conv = ann.start_chat("general", "private matter").await;

    let (mut mallory, _) = hub.customer(json!({"name": "Mallory"})).await;
    mallory
        .err(
            json!({"type": "history", "conversation_id": conv, "after_seq": 0, "limit": 200}),
            "forbidden",
        )
        .await;
    mallory
        .err(
            json!({"type": "message", "conversation_id": conv, "text": "let me in"}),
            "forbidden",
        )
        .await;
    mallory
        .err(
            json!({"type": "close", "conversation_id": conv, "resolution": "resolved"}),
            "forbidden",
        )
        .await;

    let events = ann.history(&conv, 0).await;
    assert_eq!(seqs(&events), vec![1], "nothing was added: {events:?}");
    assert!(
        !mallory.seen().iter().any(|f| ty(f) == "event"),
        "mallory received events of a conversation she is not in: {:?}",
        mallory.seen()
    );
}

/// Both sides pipeline messages at once: every member still receives the events in seq
/// order, without gaps (a replayed duplicate at or below the highest seq is allowed).
#[tokio::test]
async fn concurrent_senders_events_reach_everyone_in_seq_order() {
    const EACH: u64 = 30;
    let (_redis, hub) = setup().await;
    let Chat {
        mut customer,
        mut agent,
        welcome,
        conversation_id: conv,
        ..
    } = chat(&hub).await;
    let (mut tab2, _) = hub.customer(json!({"session": welcome["session"]})).await;

    for i in 0..EACH {
        customer
            .send(
                json!({"type": "message", "req": format!("c{i}"), "conversation_id": conv,
                         "text": format!("customer {i}")}),
            )
            .await;
        agent
            .send(
                json!({"type": "message", "req": format!("a{i}"), "conversation_id": conv,
                         "text": format!("agent {i}")}),
            )
            .await;
    }
    let last = 2 + 2 * EACH;
    for ws in [&mut customer, &mut agent, &mut tab2] {
        ws.wait_for_within(
            &format!("event seq {last}"),
            std::time::Duration::from_secs(10),
            |f| ty(f) == "event" && f["seq"] == last,
        )
        .await;
        let mut highest = 2;
        for event in ws.seen().iter().filter(|f| ty(f) == "event") {
            let seq = seq_of(event);
            if seq <= highest {
                continue;
            }
            assert_eq!(
                seq,
                highest + 1,
                "{}: event {seq} arrived before {}",
                ws.name,
                highest + 1
            );
            highest = seq;
        }
        assert_eq!(highest, last);
    }
    // Every pipelined message got its ack.
    for (ws, prefix) in [(&customer, 'c'), (&agent, 'a')] {
        let acked: Vec<u64> = ws
            .seen()
            .iter()
            .filter(|f| ty(f) == "ack" && f["req"].as_str().is_some_and(|r| r.starts_with(prefix)))
            .map(seq_of)
            .collect();
        assert_eq!(acked.len() as u64, EACH);
    }
}

#[tokio::test]
async fn history_pages_with_limit_and_more() {
    let (_redis, hub) = setup().await;
    let Chat {
        mut customer,
        conversation_id: conv,
        ..
    } = chat(&hub).await;
    for i in 0..5 {
        customer.say(&conv, &format!("line {i}")).await;
    }
    // Pages of 3: after which seq, the seqs on the page, and `more`.
    let pages = [
        (0, vec![1, 2, 3], true),
        (3, vec![4, 5, 6], true),
        (6, vec![7], false),
    ];
    for (after_seq, expected, more) in pages {
        let page = customer
            .ok(json!({"type": "history", "conversation_id": conv, "after_seq": after_seq, "limit": 3}))
            .await;
        let events = page["events"].as_array().expect("events").clone();
        assert_eq!(seqs(&events), expected, "{page}");
        assert_eq!(page["more"], more, "{page}");
    }
}
