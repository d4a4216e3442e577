//! A flush's transcript: read in the stored form and parsed only where a ticket's
//! figures and the reports read it. The ticket is stored referring to it
//! (`store::ticket_form`), not holding a second copy.
//!
//! A chat's last step costs in proportion to its length: at saturation the hub spent
//! more CPU on its tickets than on anything else after the load, most of it parsing
//! every stored event into its type and serializing it again (`docs/performance.md`,
//! issue 19, eleventh stop). The figures read few events: every event that is not a
//! message, and the first message an agent wrote. Those are the *milestones*; the
//! other messages go from their stored form into the ticket's JSON untouched.

use crate::{
    error::{Error, Result},
    protocol::{Event, EventBody, Party, Role, StoredEvent},
    store::{ticket_form, StoredEntry},
};

use super::Ticket;

/// The events a ticket's figures and the reports read, parsed, in seq order: every
/// event but the messages, and the first message from an agent. Over these,
/// [`Ticket::from_conversation`] and the reports' facts come out as over every event.
pub fn milestones(conversation_id: &str, stored: &[StoredEntry]) -> Result<Vec<Event>> {
    let mut milestones = Vec::new();
    let mut agent_has_written = false;
    for entry in stored {
        // Told from the stored form where it can be; a form laid out otherwise is parsed.
        let read = match StoredEvent::message_author(&entry.json) {
            Some(Role::Agent) => !agent_has_written,
            Some(Role::Customer | Role::System) => false,
            None => true,
        };
        if !read {
            continue;
        }
        let event = entry.event(conversation_id)?;
        if is_milestone(&event.body, &mut agent_has_written) {
            milestones.push(event);
        }
    }
    Ok(milestones)
}

/// Whether an event is a milestone, the events before it having set
/// `agent_has_written` (which this one may set).
fn is_milestone(body: &EventBody, agent_has_written: &mut bool) -> bool {
    match body {
        EventBody::Message {
            from: Party {
                role: Role::Agent, ..
            },
            ..
        } => !std::mem::replace(agent_has_written, true),
        EventBody::Message { .. } => false,
        _ => true,
    }
}

/// The milestones of a conversation, kept by its task as the events go by, in seq order
/// from the first: at the close the task hands them to the flush, which then reads none
/// of the chat back ([`super::Tickets::flush_with`]). A task that came to the
/// conversation later, missed an event or saw more than [`MilestoneLog::MOST`]
/// milestones has none to hand, and the flush reads the stream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MilestoneLog {
    /// Every event up to this seq has been seen.
    through: u64,
    milestones: Vec<Event>,
    agent_has_written: bool,
}

impl MilestoneLog {
    /// The most milestones a task keeps (a few per chat: joins, transfers, notes, the
    /// close): past this many, a chat's milestones are read back from the stream.
    pub const MOST: usize = 64;

    /// Takes in the next event. Answers false when `event` is not the next one or there
    /// are too many milestones: the log no longer covers the conversation.
    pub fn record(&mut self, event: &Event) -> bool {
        if event.seq != self.through + 1 {
            return false;
        }
        self.through = event.seq;
        if is_milestone(&event.body, &mut self.agent_has_written) {
            if self.milestones.len() == Self::MOST {
                return false;
            }
            self.milestones.push(event.clone());
        }
        true
    }

    /// Every event up to this seq has been taken in.
    pub fn through(&self) -> u64 {
        self.through
    }

    pub fn into_milestones(self) -> Vec<Event> {
        self.milestones
    }
}

/// The stored form of `ticket` that refers to its conversation's stream for its
/// transcript (`store::ticket_form`): the stream holds the same events for as long as
/// the ticket lives. `None` when the ticket cannot refer (then [`stored_form`] with the
/// events). `ticket.transcript` (its milestones) is left as it was.
pub(super) fn reference_form(ticket: &mut Ticket, conversation_id: &str) -> Result<Option<String>> {
    let head = head_json(ticket)?;
    Ok(ticket_form::by_reference(&head, conversation_id))
}

/// The stored form of `ticket`: referring to the conversation's stream when `refer` and
/// it can, else with every stored event as its transcript (the same text as serializing
/// the ticket with each event parsed). `ticket.transcript` (its milestones) is left as
/// it was.
pub(super) fn stored_form(
    ticket: &mut Ticket,
    conversation_id: &str,
    stored: &[StoredEntry],
    refer: bool,
) -> Result<String> {
    let head = head_json(ticket)?;
    if let Some(form) = refer
        .then(|| ticket_form::by_reference(&head, conversation_id))
        .flatten()
    {
        return Ok(form);
    }
    let fields = head.strip_prefix('{').ok_or(Error::Unavailable)?;
    Ok(ticket_form::with_transcript(
        fields,
        conversation_id,
        stored,
    )?)
}

/// The ticket's JSON with an empty transcript.
fn head_json(ticket: &mut Ticket) -> Result<String> {
    let milestones = std::mem::take(&mut ticket.transcript);
    let head = serde_json::to_string(&*ticket);
    ticket.transcript = milestones;
    head.map_err(|_| Error::Unavailable)
}

#[cfg(test)]
#[path = "transcript_tests.rs"]
mod tests;
