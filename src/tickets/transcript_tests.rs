//! The spliced ticket is the serialized one, byte for byte, whole or stored by
//! reference and read back, and the milestones give the same figures as every event.

use serde_json::Map;

use super::*;
use crate::{
    protocol::{AgentRef, Attachment, Event, LeftReason},
    store::ConversationRecord,
};

const CONVERSATION: &str = "c_7";

fn party(role: Role, id: &str) -> Party {
    Party {
        role,
        id: id.into(),
        name: (role == Role::Agent).then(|| id.to_uppercase()),
    }
}

fn agent(id: &str) -> AgentRef {
    AgentRef {
        id: id.into(),
        name: id.to_uppercase(),
    }
}

fn message(role: Role, id: &str, text: &str) -> EventBody {
    EventBody::Message {
        from: party(role, id),
        text: text.into(),
        client_msg_id: Some(format!("m-{text}").chars().take(12).collect()),
        attachment: None,
    }
}

/// A chat with every kind of event, texts that need escaping, and a system message.
fn bodies() -> Vec<EventBody> {
    vec![
        message(Role::Customer, "v_1", "hello \"there\"\n"),
        message(Role::System, "system", "you are next in line"),
        EventBody::Joined { agent: agent("a") },
        message(Role::Customer, "v_1", "grüße ✓ \u{1}"),
        message(Role::Agent, "a", "hi, how can I help?"),
        message(Role::Agent, "a", "still there?"),
        EventBody::Message {
            from: party(Role::Customer, "v_1"),
            text: String::new(),
            client_msg_id: None,
            attachment: Some(Attachment {
                id: "f_1".into(),
                name: "a \\ b.png".into(),
                size: 42,
                content_type: "image/png".into(),
            }),
        },
        EventBody::Note {
            from: party(Role::Agent, "a"),
            text: "VIP".into(),
        },
        EventBody::Transfer {
            from_agent: "a".into(),
            to_agent: Some("b".into()),
            to_topic: None,
            note: Some("over to you".into()),
        },
        EventBody::Left {
            agent: agent("a"),
            reason: LeftReason::Transferred,
        },
        EventBody::Joined { agent: agent("b") },
        message(Role::Agent, "b", "b here"),
        EventBody::Closed {
            by: party(Role::Agent, "b"),
            resolution: "resolved".into(),
            ticket_id: "t_7".into(),
        },
        EventBody::Rating {
            score: 5,
            comment: Some("great".into()),
        },
    ]
}

fn events() -> Vec<Event> {
    (1..)
        .zip(bodies())
        .map(|(seq, body)| Event {
            conversation_id: CONVERSATION.into(),
            seq,
            ts: 1_796_000_000_000 + seq * 1_000,
            body,
        })
        .collect()
}

fn stored(events: &[Event]) -> Vec<StoredEntry> {
    events
        .iter()
        .map(|event| StoredEntry {
            seq: event.seq,
            json: StoredEvent::json(event.ts, &event.body).expect("serializes"),
        })
        .collect()
}

fn record() -> ConversationRecord {
    ConversationRecord {
        id: CONVERSATION.into(),
        visitor_id: "v_1".into(),
        topic: "billing".into(),
        priority: 0,
        customer_name: Some("Ann \"the\" customer".into()),
        customer_email: None,
        verified: true,
        metadata: Map::from_iter([("plan".to_string(), "pro".into())]),
        created_at: 1_796_000_000_000,
        waiting_since: 1_796_000_000_000,
        state: crate::protocol::ConversationState::Closed,
        agent: Some("b".into()),
        last_seq: 14,
        closed_at: Some(1_796_000_013_000),
        ticket_id: Some("t_7".into()),
        flushed: false,
        preview: String::new(),
        tags: vec!["vip".into()],
        resolution: Some("resolved".into()),
        answered_at: None,
        first_response_at: None,
    }
}

#[test]
fn the_spliced_ticket_is_the_serialized_one() {
    let events = events();
    let mut ticket = Ticket::from_conversation(&record(), events.clone());
    let serialized = serde_json::to_string(&ticket).expect("serializes");
    let spliced = stored_form(&mut ticket, CONVERSATION, &stored(&events), false).expect("splices");
    assert_eq!(spliced, serialized);
    assert_eq!(
        ticket.transcript, events,
        "the ticket's own transcript is kept"
    );
}

#[test]
fn a_ticket_stored_by_reference_reads_back_as_the_serialized_one() {
    let events = events();
    let stored = stored(&events);
    let mut ticket = Ticket::from_conversation(&record(), events.clone());
    let serialized = serde_json::to_string(&ticket).expect("serializes");
    let form = reference_form(&mut ticket, CONVERSATION)
        .expect("serializes")
        .expect("refers");
    assert_eq!(
        stored_form(&mut ticket, CONVERSATION, &stored, true).expect("refers"),
        form
    );
    assert!(
        form.ends_with("\"transcript\":[]}") && !form.contains("how can I help"),
        "no transcript in it: {form}"
    );
    let ticket_form::StoredTicket::Referring {
        conversation_id,
        fields,
    } = ticket_form::StoredTicket::read(&form)
    else {
        panic!("not by reference: {form}");
    };
    assert_eq!(conversation_id, CONVERSATION);
    assert_eq!(
        ticket_form::with_transcript(fields, conversation_id, &stored).expect("splices"),
        serialized
    );
    assert_eq!(
        ticket.transcript, events,
        "the ticket's own transcript is kept"
    );
}

#[test]
fn a_stored_form_laid_out_otherwise_goes_through_its_type() {
    let events = events();
    let mut stored = stored(&events);
    // Fields in another order: not spliced, not glanced at, parsed.
    stored[0].json = r#"{"kind":"message","text":"hello \"there\"\n","ts":1796000001000,"from":{"name":null,"id":"v_1","role":"customer"},"client_msg_id":"m-hello \"the"}"#.into();
    let mut ticket = Ticket::from_conversation(&record(), events.clone());
    let serialized = serde_json::to_string(&ticket).expect("serializes");
    assert_eq!(
        stored_form(&mut ticket, CONVERSATION, &stored, false).expect("splices"),
        serialized
    );
    // Parsed to see what it is: a customer's message, so not a milestone.
    let kept = milestones(CONVERSATION, &stored).expect("parses");
    assert_eq!(
        kept,
        milestones(CONVERSATION, &self::stored(&events)).expect("parses")
    );
}

#[test]
fn the_milestones_are_every_event_but_the_messages_and_the_first_agent_message() {
    let events = events();
    let kept = milestones(CONVERSATION, &stored(&events)).expect("parses");
    let seqs: Vec<u64> = kept.iter().map(|event| event.seq).collect();
    assert_eq!(seqs, [3, 5, 8, 9, 10, 11, 13, 14]);
    assert_eq!(kept[1], events[4], "the first agent message, whole");
}

#[test]
fn the_milestones_give_the_ticket_the_same_figures() {
    let events = events();
    let whole = Ticket::from_conversation(&record(), events.clone());
    let kept = milestones(CONVERSATION, &stored(&events)).expect("parses");
    let from_milestones = Ticket::from_conversation(&record(), kept.clone());
    assert_eq!(
        Ticket {
            transcript: kept,
            ..whole
        },
        from_milestones
    );
    assert!(from_milestones.first_response_ms.is_some() && from_milestones.rating.is_some());
}

#[test]
fn an_unreadable_event_fails_the_flush() {
    let events = events();
    let mut stored = stored(&events);
    // Not laid out as written, so parsed, and it does not parse. (A stored form laid
    // out as written is trusted, as history pages trust it: only the hub writes them.)
    stored[2].json = "{\"kind\":\"joined\",\"ts\":1".into();
    assert!(milestones(CONVERSATION, &stored).is_err());
    let mut ticket = Ticket::from_conversation(&record(), events);
    assert!(stored_form(&mut ticket, CONVERSATION, &stored, false).is_err());
}

#[test]
fn the_milestones_kept_as_events_go_by_are_those_read_back() {
    let events = events();
    let mut log = MilestoneLog::default();
    for event in &events {
        assert!(log.record(event), "seq {}", event.seq);
    }
    assert_eq!(log.through(), 14);
    let read = milestones(CONVERSATION, &stored(&events)).expect("parses");
    assert_eq!(log.clone().into_milestones(), read);
    assert_eq!(
        Ticket::from_conversation(&record(), log.into_milestones()),
        Ticket::from_conversation(&record(), read)
    );
}

#[test]
fn a_log_that_missed_an_event_or_holds_too_many_covers_nothing() {
    let events = events();
    let mut log = MilestoneLog::default();
    assert!(!log.record(&events[1]), "seq 2 before seq 1");
    let mut log = MilestoneLog::default();
    assert!(log.record(&events[0]));
    assert!(!log.record(&events[0]), "seq 1 again");

    let mut log = MilestoneLog::default();
    let join = |seq: u64| Event {
        conversation_id: CONVERSATION.into(),
        seq,
        ts: seq,
        body: EventBody::Joined { agent: agent("a") },
    };
    for seq in 1..=MilestoneLog::MOST as u64 {
        assert!(log.record(&join(seq)), "seq {seq}");
    }
    assert!(
        !log.record(&join(MilestoneLog::MOST as u64 + 1)),
        "one too many"
    );
}
