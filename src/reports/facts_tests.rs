//! Facts read from hand-built tickets (the builders serve the store tests too).

use serde_json::Map;

use super::*;
use crate::{
    protocol::{AgentRef, Event, LeftReason, Party, Role},
    tickets::{Rating, TicketCustomer},
};

pub(crate) const T0: u64 = 1_796_000_000_000 - 1_796_000_000_000 % HOUR_MS + 600_000; // 10 min past

pub(crate) fn agent(id: &str) -> AgentRef {
    AgentRef {
        id: id.into(),
        name: id.to_uppercase(),
    }
}

pub(crate) fn event(ts: u64, body: EventBody) -> Event {
    Event {
        conversation_id: "c_1".into(),
        seq: 0,
        ts,
        body,
    }
}

pub(crate) fn message(role: Role, ts: u64) -> Event {
    event(
        ts,
        EventBody::Message {
            from: Party {
                role,
                id: "x".into(),
                name: None,
            },
            text: "hi".into(),
            client_msg_id: None,
            attachment: None,
        },
    )
}

pub(crate) fn ticket(transcript: Vec<Event>, closed_at: u64) -> Ticket {
    Ticket {
        ticket_id: "t_1".into(),
        conversation_id: Some("c_1".into()),
        topic: "billing".into(),
        customer: TicketCustomer {
            id: "v_1".into(),
            name: None,
            email: None,
            verified: false,
        },
        agents: vec![],
        resolution: "resolved".into(),
        tags: vec![],
        metadata: Map::new(),
        opened_at: T0,
        closed_at,
        wait_ms: None,
        first_response_ms: None,
        rating: None,
        transcript,
    }
}

/// Agent `a` transfers the chat to `b` at 60 s, leaves at 70 s, and `b` joins then.
fn a_hands_over_to_b() -> [Event; 3] {
    [
        event(
            T0 + 60_000,
            EventBody::Transfer {
                from_agent: "a".into(),
                to_agent: Some("b".into()),
                to_topic: None,
                note: None,
            },
        ),
        event(
            T0 + 70_000,
            EventBody::Left {
                agent: agent("a"),
                reason: LeftReason::Transferred,
            },
        ),
        event(T0 + 70_000, EventBody::Joined { agent: agent("b") }),
    ]
}

pub(crate) fn closed(ts: u64) -> Event {
    event(
        ts,
        EventBody::Closed {
            by: Party {
                role: Role::Agent,
                id: "b".into(),
                name: None,
            },
            resolution: "resolved".into(),
            ticket_id: "t_1".into(),
        },
    )
}

#[test]
fn a_transferred_chat() {
    let targets = SlaTargets {
        wait_ms: Some(30_000),
        first_response_ms: Some(40_000),
    };
    let t = ticket(
        vec![
            message(Role::Customer, T0),
            event(T0 + 20_000, EventBody::Joined { agent: agent("a") }),
            message(Role::Agent, T0 + 50_000),
        ]
        .into_iter()
        .chain(a_hands_over_to_b())
        .chain([
            event(
                T0 + 80_000,
                EventBody::Transfer {
                    from_agent: "b".into(),
                    to_agent: None,
                    to_topic: Some("general".into()),
                    note: None,
                },
            ),
            closed(T0 + 100_000),
        ])
        .collect(),
        T0 + 100_000,
    );
    let facts = TicketFacts::of(&t, &targets).unwrap();
    assert_eq!(facts.hour, T0 - 600_000);
    assert_eq!(facts.topic, "billing");
    assert!(facts.answered && !facts.abandoned_in_queue);
    assert_eq!((facts.transferred, facts.escalated), (1, 1));
    assert_eq!(facts.wait_ms, Some(20_000));
    assert_eq!(facts.first_response_ms, Some(50_000));
    assert_eq!(facts.handle_ms, Some(80_000));
    assert_eq!(facts.resolution_ms, 100_000);
    assert_eq!(facts.sla_wait, Some(true));
    assert_eq!(facts.sla_first_response, Some(false));
    assert_eq!(
        facts.agents,
        vec![
            AgentFacts {
                agent: "a".into(),
                handle_ms: 50_000,
                transferred: 1,
                escalated: 0,
                owned_at_close: false,
            },
            AgentFacts {
                agent: "b".into(),
                handle_ms: 30_000,
                transferred: 0,
                escalated: 1,
                owned_at_close: true,
            },
        ]
    );
    let mut rated = t.clone();
    rated.rating = Some(Rating {
        score: 4,
        comment: None,
    });
    let rating = RatingFacts::of(&rated, SurveyKind::Csat).unwrap();
    assert_eq!(rating.agent.as_deref(), Some("b"));
    assert_eq!((rating.score, rating.hour), (4, facts.hour));
    assert!(RatingFacts::of(&t, SurveyKind::Csat).is_none());
}

#[test]
fn abandoned_chats_and_the_sla() {
    let targets = SlaTargets {
        wait_ms: Some(30_000),
        first_response_ms: None,
    };
    // Left after 10 s: not counted against the wait target.
    let short = ticket(
        vec![message(Role::Customer, T0), closed(T0 + 10_000)],
        T0 + 10_000,
    );
    let facts = TicketFacts::of(&short, &targets).unwrap();
    assert!(facts.abandoned_in_queue && !facts.answered);
    assert_eq!((facts.wait_ms, facts.handle_ms), (None, None));
    assert_eq!(facts.sla_wait, None);
    assert_eq!(facts.sla_first_response, None);
    assert!(facts.agents.is_empty());
    // Left after 45 s: missed.
    let long = ticket(
        vec![message(Role::Customer, T0), closed(T0 + 45_000)],
        T0 + 45_000,
    );
    assert_eq!(
        TicketFacts::of(&long, &targets).unwrap().sla_wait,
        Some(false)
    );
}

#[test]
fn offline_messages_are_not_chats() {
    let mut offline = ticket(vec![message(Role::Customer, T0)], T0);
    offline.resolution = "offline_message".into();
    offline.conversation_id = None;
    assert!(TicketFacts::of(&offline, &SlaTargets::default()).is_none());
}

#[test]
fn a_rating_off_the_survey_scale_is_not_counted() {
    let mut t = ticket(vec![message(Role::Customer, T0), closed(T0 + 1)], T0 + 1);
    t.rating = Some(Rating {
        score: 9,
        comment: None,
    });
    assert!(RatingFacts::of(&t, SurveyKind::Csat).is_none());
    let nps = RatingFacts::of(&t, SurveyKind::Nps).unwrap();
    assert_eq!((nps.score, nps.agent), (9, None));
}

#[test]
fn the_milestones_of_a_transcript_give_the_same_facts() {
    let chat = |transcript: Vec<Event>| {
        let mut t = ticket(transcript, T0 + 100_000);
        t.rating = Some(Rating {
            score: 4,
            comment: None,
        });
        t
    };
    let whole: Vec<Event> = (1..)
        .zip(
            [
                message(Role::Customer, T0),
                message(Role::Agent, T0 + 5_000),
                event(T0 + 20_000, EventBody::Joined { agent: agent("a") }),
                message(Role::Customer, T0 + 30_000),
                message(Role::Agent, T0 + 50_000),
                message(Role::System, T0 + 55_000),
            ]
            .into_iter()
            .chain(a_hands_over_to_b())
            .chain([message(Role::Agent, T0 + 90_000), closed(T0 + 100_000)]),
        )
        .map(|(seq, event)| Event { seq, ..event })
        .collect();
    let stored: Vec<crate::store::StoredEntry> = whole
        .iter()
        .map(|event| crate::store::StoredEntry {
            seq: event.seq,
            json: crate::protocol::StoredEvent::json(event.ts, &event.body).expect("serializes"),
        })
        .collect();
    let kept = crate::tickets::transcript::milestones("c_1", &stored).expect("parses");
    assert!(kept.len() < whole.len());
    let targets = SlaTargets {
        wait_ms: Some(30_000),
        first_response_ms: Some(4_000),
    };
    let (whole, kept) = (chat(whole), chat(kept));
    assert_eq!(
        TicketFacts::of(&whole, &targets),
        TicketFacts::of(&kept, &targets)
    );
    assert_eq!(
        RatingFacts::of(&whole, SurveyKind::Csat),
        RatingFacts::of(&kept, SurveyKind::Csat)
    );
}
