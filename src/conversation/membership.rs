//! Who belongs to a conversation and what each may do in it, as its task knows it.
//! Plain data: the task is the only one that changes it, as its events are stored.

use crate::{
    protocol::{ConversationState, EventBody},
    store::{ConversationRecord, Update},
};

/// Who asks, for the membership check.
#[derive(Debug, Clone)]
pub enum Author {
    Visitor(String),
    Agent {
        id: String,
        supervisor: bool,
    },
    /// The hub itself (router decisions, timeouts): always allowed.
    System,
}

/// What an append requires of the author.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// The customer, the owning agent, or a supervisor.
    Member,
    /// The owning agent or a supervisor (notes, transfers).
    Staff,
    /// Only the customer (ratings).
    Customer,
}

/// Membership and position of one conversation.
#[derive(Debug, Clone)]
pub struct Membership {
    pub visitor_id: String,
    /// The owning agent.
    pub agent: Option<String>,
    /// Agents who hear the conversation: from their `joined` until their `left`, so an
    /// outgoing agent of a hand-off still gets everything stored before its `left`.
    pub present: Vec<String>,
    pub state: ConversationState,
    pub last_seq: u64,
    /// Whether the first `joined` and the first agent message are stored (their times
    /// are written once, for the SLA).
    pub answered: bool,
    pub responded: bool,
}

impl Membership {
    pub fn from_record(record: ConversationRecord) -> Self {
        Membership {
            visitor_id: record.visitor_id,
            present: record.agent.iter().cloned().collect(),
            agent: record.agent,
            state: record.state,
            last_seq: record.last_seq,
            answered: record.answered_at.is_some(),
            responded: record.first_response_at.is_some(),
        }
    }

    /// A conversation just created: queued, its first message stored as seq 1.
    pub fn created(visitor_id: String) -> Self {
        Membership {
            visitor_id,
            agent: None,
            present: Vec::new(),
            state: ConversationState::Queued,
            last_seq: 1,
            answered: false,
            responded: false,
        }
    }

    /// The SLA milestone an event about to be stored at `ts` reaches, written with it:
    /// the first `joined`, the first agent message.
    pub fn milestone(&self, body: &EventBody, ts: u64) -> Option<Update> {
        match body {
            EventBody::Joined { .. } if !self.answered => Some(Update::AnsweredAt(ts)),
            EventBody::Message { from, .. }
                if !self.responded && from.role == crate::protocol::Role::Agent =>
            {
                Some(Update::FirstResponseAt(ts))
            }
            _ => None,
        }
    }

    pub fn allows(&self, author: &Author, permission: Permission) -> bool {
        match (author, permission) {
            (Author::System, _) => true,
            (Author::Visitor(v), Permission::Member | Permission::Customer) => {
                *v == self.visitor_id
            }
            (Author::Visitor(_), Permission::Staff) => false,
            (
                Author::Agent {
                    supervisor: true, ..
                },
                Permission::Member | Permission::Staff,
            ) => true,
            (Author::Agent { id, .. }, Permission::Member | Permission::Staff) => {
                self.agent.as_deref() == Some(id)
            }
            (Author::Agent { .. }, Permission::Customer) => false,
        }
    }

    /// Applies what an append stored with its event changed.
    pub fn apply(&mut self, updates: &[Update], seq: u64) {
        self.last_seq = self.last_seq.max(seq);
        for update in updates {
            match update {
                Update::State(state) => self.state = *state,
                Update::Agent(agent) => self.agent = agent.clone(),
                Update::AnsweredAt(_) => self.answered = true,
                Update::FirstResponseAt(_) => self.responded = true,
                Update::ClosedAt(_)
                | Update::TicketId(_)
                | Update::Resolution(_)
                | Update::Tags(_) => {}
            }
        }
    }

    /// Follows an event about to be delivered: a joining agent hears its own `joined`.
    pub fn before_delivery(&mut self, seq: u64, body: &EventBody) {
        self.last_seq = self.last_seq.max(seq);
        match body {
            EventBody::Joined { agent } => {
                self.agent = Some(agent.id.clone());
                if !self.present.contains(&agent.id) {
                    self.present.push(agent.id.clone());
                }
            }
            // Replayed events may change state (stored by another node).
            EventBody::Closed { .. } => self.state = ConversationState::Closed,
            _ => {}
        }
    }

    /// Follows an event just delivered: a leaving agent heard its own `left`, and hears
    /// nothing after it.
    pub fn after_delivery(&mut self, body: &EventBody) {
        if let EventBody::Left { agent, .. } = body {
            self.present.retain(|a| *a != agent.id);
            if self.agent.as_deref() == Some(agent.id.as_str()) {
                self.agent = None;
            }
        }
    }
}
