//! What one ticket adds to the reports, read from its transcript once: the hour it
//! counts in, its topic's facts (started, answered, abandoned, transfers, times, SLA
//! outcomes) and each agent's share (handled, own handle time, transfers it made).
//! Ratings are facts of their own ([`RatingFacts`]): they arrive after the close.
//!
//! Pure: no clock, no Redis. `counters.rs` turns these into hash-field increments.

use crate::{
    config::{SlaTargets, SurveyKind},
    protocol::EventBody,
    tickets::Ticket,
};

pub const HOUR_MS: u64 = 3_600_000;

/// The start (unix ms) of the hour holding `ms`.
pub fn hour_of(ms: u64) -> u64 {
    ms - ms % HOUR_MS
}

/// The resolution of a ticket made from an offline message: not a chat, never counted.
const OFFLINE_MESSAGE: &str = "offline_message";

/// The facts of one chat for its topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketFacts {
    pub ticket_id: String,
    /// Start of the hour the chat was opened in (unix ms).
    pub hour: u64,
    pub topic: String,
    /// An agent joined at some point.
    pub answered: bool,
    /// Closed with no agent ever joined.
    pub abandoned_in_queue: bool,
    /// Transfers to an agent.
    pub transferred: u64,
    /// Transfers to a topic.
    pub escalated: u64,
    /// Opened → first `joined`.
    pub wait_ms: Option<u64>,
    /// Opened → first agent message.
    pub first_response_ms: Option<u64>,
    /// First `joined` → closed.
    pub handle_ms: Option<u64>,
    /// Opened → closed.
    pub resolution_ms: u64,
    /// Wait target met (`Some(true)`), missed, or not counted (`None`: no target, or
    /// abandoned within it).
    pub sla_wait: Option<bool>,
    pub sla_first_response: Option<bool>,
    /// Every agent who joined, in order of first join.
    pub agents: Vec<AgentFacts>,
}

/// One agent's share of a chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentFacts {
    pub agent: String,
    /// Its own time in the chat: each `joined` to its `left` (or the close), added up.
    pub handle_ms: u64,
    /// Transfers it made to an agent.
    pub transferred: u64,
    /// Transfers it made to a topic.
    pub escalated: u64,
    /// It held the chat when it closed (ratings count for this agent).
    pub owned_at_close: bool,
}

/// A rating, for the topic (and the agent holding the chat at close).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatingFacts {
    pub ticket_id: String,
    pub hour: u64,
    pub topic: String,
    pub agent: Option<String>,
    pub survey: SurveyKind,
    pub score: u8,
}

/// How a target counts: met or missed by the measured time; a chat that never got the
/// measured thing missed it only if it lasted longer than the target (a customer who
/// left before the target was up is not counted).
fn sla(target: Option<u64>, measured: Option<u64>, lasted_ms: u64) -> Option<bool> {
    let target = target?;
    match measured {
        Some(ms) => Some(ms <= target),
        None if lasted_ms > target => Some(false),
        None => None,
    }
}

impl TicketFacts {
    /// The facts of a ticket; `None` for a ticket that is not a chat (offline message).
    pub fn of(ticket: &Ticket, targets: &SlaTargets) -> Option<TicketFacts> {
        if ticket.resolution == OFFLINE_MESSAGE || ticket.conversation_id.is_none() {
            return None;
        }
        let opened = ticket.opened_at;
        let closed = ticket.closed_at.max(opened);
        let since = |ts: u64| ts.saturating_sub(opened);
        let mut facts = TicketFacts {
            ticket_id: ticket.ticket_id.clone(),
            hour: hour_of(opened),
            topic: ticket.topic.clone(),
            answered: false,
            abandoned_in_queue: false,
            transferred: 0,
            escalated: 0,
            wait_ms: None,
            first_response_ms: None,
            handle_ms: None,
            resolution_ms: closed - opened,
            sla_wait: None,
            sla_first_response: None,
            agents: Vec::new(),
        };
        // Per agent: its facts and, while it is in the chat, when it joined.
        let mut inside: Vec<Option<u64>> = Vec::new();
        let mut first_joined = None;
        for event in &ticket.transcript {
            match &event.body {
                EventBody::Joined { agent } => {
                    first_joined.get_or_insert(event.ts);
                    facts.wait_ms.get_or_insert(since(event.ts));
                    let at = match facts.agents.iter().position(|a| a.agent == agent.id) {
                        Some(at) => at,
                        None => {
                            facts.agents.push(AgentFacts {
                                agent: agent.id.clone(),
                                handle_ms: 0,
                                transferred: 0,
                                escalated: 0,
                                owned_at_close: false,
                            });
                            inside.push(None);
                            facts.agents.len() - 1
                        }
                    };
                    inside[at].get_or_insert(event.ts);
                }
                EventBody::Left { agent, .. } => {
                    if let Some(at) = facts.agents.iter().position(|a| a.agent == agent.id) {
                        if let Some(joined) = inside[at].take() {
                            facts.agents[at].handle_ms += event.ts.saturating_sub(joined);
                        }
                    }
                }
                EventBody::Message { from, .. } if from.role == crate::protocol::Role::Agent => {
                    facts.first_response_ms.get_or_insert(since(event.ts));
                }
                EventBody::Transfer {
                    from_agent,
                    to_agent,
                    to_topic,
                    ..
                } => {
                    let by = facts.agents.iter_mut().find(|a| &a.agent == from_agent);
                    if to_agent.is_some() {
                        facts.transferred += 1;
                        if let Some(by) = by {
                            by.transferred += 1;
                        }
                    } else if to_topic.is_some() {
                        facts.escalated += 1;
                        if let Some(by) = by {
                            by.escalated += 1;
                        }
                    }
                }
                _ => {}
            }
        }
        for (agent, joined) in facts.agents.iter_mut().zip(&inside) {
            if let Some(joined) = joined {
                agent.handle_ms += closed.saturating_sub(*joined);
                agent.owned_at_close = true;
            }
        }
        facts.answered = first_joined.is_some();
        facts.abandoned_in_queue = !facts.answered;
        facts.handle_ms = first_joined.map(|at| closed.saturating_sub(at));
        let lasted = facts.resolution_ms;
        facts.sla_wait = sla(targets.wait_ms, facts.wait_ms, lasted);
        facts.sla_first_response = sla(targets.first_response_ms, facts.first_response_ms, lasted);
        Some(facts)
    }
}

impl RatingFacts {
    /// The rating of a ticket, if it has one the topic's survey accepts.
    pub fn of(ticket: &Ticket, survey: SurveyKind) -> Option<RatingFacts> {
        let rating = ticket.rating.as_ref()?;
        let facts = TicketFacts::of(ticket, &SlaTargets::default())?;
        if !survey.accepts(rating.score) {
            tracing::warn!(ticket_id = %ticket.ticket_id, score = rating.score, ?survey, "a rating outside the topic's survey scale is not counted");
            return None;
        }
        Some(RatingFacts {
            ticket_id: facts.ticket_id,
            hour: facts.hour,
            topic: facts.topic,
            agent: facts
                .agents
                .into_iter()
                .find(|a| a.owned_at_close)
                .map(|a| a.agent),
            survey,
            score: rating.score,
        })
    }
}

#[cfg(test)]
#[path = "facts_tests.rs"]
pub(super) mod tests;
