//! A flush's transcript: read in the stored form, parsed only where a ticket's figures
//! and the reports read it, and spliced into the ticket's JSON as history pages are.
//!
//! A chat's last step costs in proportion to its length: at saturation the hub spent
//! more CPU on its tickets than on anything else after the load, most of it parsing
//! every stored event into its type and serializing it again (`docs/performance.md`,
//! issue 19, eleventh stop). The figures read few events: every event that is not a
//! message, and the first message an agent wrote. Those are the *milestones*; the
//! other messages go from their stored form into the ticket's JSON untouched.

use crate::{
    error::{Error, Result},
    protocol::{Audience, EventBody, EventJson, PageEntry, Party, Role, StoredEvent},
    store::{StoreError, StoredEntry},
};

use super::Ticket;

/// The events a ticket's figures and the reports read, parsed, in seq order: every
/// event but the messages, and the first message from an agent. Over these,
/// [`Ticket::from_conversation`] and the reports' facts come out as over every event.
pub fn milestones(
    conversation_id: &str,
    stored: &[StoredEntry],
) -> Result<Vec<crate::protocol::Event>> {
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
        if let EventBody::Message {
            from: Party {
                role: Role::Agent, ..
            },
            ..
        } = &event.body
        {
            if agent_has_written {
                continue;
            }
            agent_has_written = true;
        }
        milestones.push(event);
    }
    Ok(milestones)
}

/// The JSON of `ticket` with every stored event as its transcript: the same text as
/// serializing the ticket with each event parsed. `ticket.transcript` (its milestones)
/// is left as it was.
pub(super) fn ticket_json(
    ticket: &mut Ticket,
    conversation_id: &str,
    stored: &[StoredEntry],
) -> Result<String> {
    let mut events = Vec::with_capacity(stored.len());
    for entry in stored {
        match StoredEvent::page_json(conversation_id, entry.seq, &entry.json, Audience::Staff) {
            PageEntry::Visible(json) => events.push(json),
            // Staff see every event.
            PageEntry::Hidden => {}
            PageEntry::Unreadable => {
                return Err(Error::from(StoreError::Corrupt(format!(
                    "event {} of {conversation_id} does not parse",
                    entry.seq
                ))))
            }
        }
    }
    let milestones = std::mem::take(&mut ticket.transcript);
    let head = serde_json::to_string(&*ticket);
    ticket.transcript = milestones;
    let head = head.map_err(|_| Error::Unavailable)?;
    // The transcript is the ticket's last field: its JSON ends `"transcript":[]}`.
    let open = head.strip_suffix("[]}").ok_or(Error::Unavailable)?;
    // One growth: `push_array` reserves the transcript's length.
    let mut json = String::with_capacity(open.len() + 2);
    json.push_str(open);
    EventJson::push_array(&mut json, &events);
    json.push('}');
    Ok(json)
}

#[cfg(test)]
#[path = "transcript_tests.rs"]
mod tests;
