//! The scripted day of `tests/reports.rs`: chats built as tickets (what a flush would
//! store) and agent state changes, at known times of one UTC day. The figures they must
//! give are worked out beside the checks in `tests/reports.rs`.

use serde_json::Map;
use switchboard::{
    protocol::{AgentRef, AgentStatus, Event, EventBody, LeftReason, Party, Role},
    tickets::{Rating, Ticket, TicketCustomer},
};

pub const S: u64 = 1_000;
pub const MIN: u64 = 60 * S;
pub const HOUR: u64 = 60 * MIN;
pub const DAY: u64 = 24 * HOUR;

/// What happens in a scripted chat, seconds after it opened.
pub enum Step {
    Join(&'static str, u64),
    Say(&'static str, u64),
    Left(&'static str, u64),
    ToAgent(&'static str, &'static str, u64),
    ToTopic(&'static str, &'static str, u64),
}

fn party(role: Role, id: &str) -> Party {
    Party {
        role,
        id: id.into(),
        name: None,
    }
}

fn agent_ref(id: &str) -> AgentRef {
    AgentRef {
        id: id.into(),
        name: id.into(),
    }
}

/// A closed chat of `topic` opened at `opened`, closed `close_s` later.
pub fn chat(
    id: &str,
    topic: &str,
    opened: u64,
    steps: &[Step],
    close_s: u64,
    score: Option<u8>,
) -> Ticket {
    let mut transcript = vec![(
        opened,
        EventBody::Message {
            from: party(Role::Customer, "v_1"),
            text: "hello".into(),
            client_msg_id: None,
            attachment: None,
        },
    )];
    for step in steps {
        transcript.push(match *step {
            Step::Join(a, s) => (
                opened + s * S,
                EventBody::Joined {
                    agent: agent_ref(a),
                },
            ),
            Step::Say(a, s) => (
                opened + s * S,
                EventBody::Message {
                    from: party(Role::Agent, a),
                    text: "on it".into(),
                    client_msg_id: None,
                    attachment: None,
                },
            ),
            Step::Left(a, s) => (
                opened + s * S,
                EventBody::Left {
                    agent: agent_ref(a),
                    reason: LeftReason::Transferred,
                },
            ),
            Step::ToAgent(from, to, s) => (
                opened + s * S,
                EventBody::Transfer {
                    from_agent: from.into(),
                    to_agent: Some(to.into()),
                    to_topic: None,
                    note: None,
                },
            ),
            Step::ToTopic(from, to, s) => (
                opened + s * S,
                EventBody::Transfer {
                    from_agent: from.into(),
                    to_agent: None,
                    to_topic: Some(to.into()),
                    note: None,
                },
            ),
        });
    }
    let closed_at = opened + close_s * S;
    transcript.push((
        closed_at,
        EventBody::Closed {
            by: party(Role::Customer, "v_1"),
            resolution: "resolved".into(),
            ticket_id: id.into(),
        },
    ));
    Ticket {
        ticket_id: id.into(),
        conversation_id: Some(format!("c_{id}")),
        topic: topic.into(),
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
        opened_at: opened,
        closed_at,
        wait_ms: None,
        first_response_ms: None,
        rating: score.map(|score| Rating {
            score,
            comment: None,
        }),
        transcript: transcript
            .into_iter()
            .enumerate()
            .map(|(i, (ts, body))| Event {
                conversation_id: format!("c_{id}"),
                seq: i as u64 + 1,
                ts,
                body,
            })
            .collect(),
    }
}

/// The day's chats: `general` (CSAT) and `billing` (NPS), and an offline message
/// (not a chat). Their figures are worked out in `check_general` and `check_billing`.
pub fn scripted_day(d: u64) -> Vec<Ticket> {
    use Step::*;
    let mut offline = chat("t_off", "billing", d + 11 * HOUR, &[], 0, None);
    offline.resolution = "offline_message".into();
    offline.conversation_id = None;
    vec![
        chat(
            "t_g1",
            "general",
            d + 9 * HOUR + 10 * MIN,
            &[Join("ann", 10), Say("ann", 40)],
            600,
            Some(5),
        ),
        chat(
            "t_g2",
            "general",
            d + 9 * HOUR + 40 * MIN,
            &[Join("ann", 50), Say("ann", 70)],
            300,
            Some(3),
        ),
        chat("t_g3", "general", d + 14 * HOUR + 5 * MIN, &[], 20, None),
        chat("t_g4", "general", d + 14 * HOUR + 30 * MIN, &[], 120, None),
        chat(
            "t_g5",
            "general",
            d + 20 * HOUR,
            &[
                Join("ann", 5),
                Say("ann", 8),
                ToAgent("ann", "bob", 60),
                Left("ann", 65),
                Join("bob", 65),
                Say("bob", 70),
            ],
            360,
            Some(4),
        ),
        chat(
            "t_b1",
            "billing",
            d + 10 * HOUR,
            &[
                Join("bob", 30),
                Say("bob", 35),
                ToTopic("bob", "general", 120),
                Left("bob", 120),
                Join("ann", 180),
            ],
            240,
            Some(9),
        ),
        chat(
            "t_b2",
            "billing",
            d + 23 * HOUR + 30 * MIN,
            &[Join("bob", 90)],
            600,
            Some(6),
        ),
        offline,
    ]
}

/// `(agent, status, reason, busy, at)`.
pub fn scripted_states(
    d: u64,
) -> Vec<(&'static str, AgentStatus, Option<&'static str>, bool, u64)> {
    vec![
        ("ann", AgentStatus::Available, None, false, d + 8 * HOUR),
        ("ann", AgentStatus::Available, None, true, d + 9 * HOUR),
        (
            "ann",
            AgentStatus::Available,
            None,
            false,
            d + 10 * HOUR + 30 * MIN,
        ),
        (
            "ann",
            AgentStatus::Away,
            Some("lunch"),
            false,
            d + 12 * HOUR,
        ),
        ("ann", AgentStatus::Available, None, false, d + 13 * HOUR),
        ("ann", AgentStatus::WrapUp, None, false, d + 17 * HOUR),
        (
            "ann",
            AgentStatus::Offline,
            None,
            false,
            d + 17 * HOUR + 15 * MIN,
        ),
        ("bob", AgentStatus::Available, None, true, d + 10 * HOUR),
        (
            "bob",
            AgentStatus::Away,
            Some("break"),
            false,
            d + 10 * HOUR + 45 * MIN,
        ),
        ("bob", AgentStatus::Offline, None, false, d + 11 * HOUR),
    ]
}
