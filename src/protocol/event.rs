//! Conversation events: what is stored, what each audience sees, and the stored form
//! from which `event` frames are spliced without serializing a body twice.

use serde::{Deserialize, Serialize};

use super::{FrameText, LeftReason, Role, ServerFrame};

/// Who did something, as shown to the other members.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Party {
    pub role: Role,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRef {
    pub id: String,
    pub name: String,
}

/// A file a message carries: uploaded over HTTP first, then named by id in `message`.
/// The bytes are fetched through a short-lived signed link.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    pub id: String,
    pub name: String,
    pub size: u64,
    #[serde(rename = "type")]
    pub content_type: String,
}

/// The kind-specific part of a conversation event; this is what Redis stores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventBody {
    Message {
        from: Party,
        /// May be empty when the message carries an attachment.
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attachment: Option<Attachment>,
    },
    Joined {
        agent: AgentRef,
    },
    Left {
        agent: AgentRef,
        reason: LeftReason,
    },
    Transfer {
        from_agent: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to_agent: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to_topic: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    Note {
        from: Party,
        text: String,
    },
    Closed {
        by: Party,
        resolution: String,
        ticket_id: String,
    },
    Rating {
        score: u8,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
    },
}

/// A stored conversation event as clients receive it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub conversation_id: String,
    pub seq: u64,
    pub ts: u64,
    #[serde(flatten)]
    pub body: EventBody,
}

/// Who is looking at an event: customers never see internal notes, ratings or the
/// note attached to a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Customer,
    Staff,
}

/// How an event looks to the customer.
pub enum CustomerView {
    Hidden,
    /// Exactly as staff see it.
    Same,
    /// With the staff-only part taken out.
    Redacted(Box<Event>),
}

impl Event {
    /// The event as `audience` may see it, or `None` when it is hidden from them.
    pub fn visible_to(self, audience: Audience) -> Option<Event> {
        match (audience, self.customer_view()) {
            (Audience::Staff, _) | (Audience::Customer, CustomerView::Same) => Some(self),
            (Audience::Customer, CustomerView::Hidden) => None,
            (Audience::Customer, CustomerView::Redacted(event)) => Some(*event),
        }
    }

    /// What the customer sees of this event, without copying it when that is all of it.
    pub fn customer_view(&self) -> CustomerView {
        match &self.body {
            EventBody::Note { .. } | EventBody::Rating { .. } => CustomerView::Hidden,
            EventBody::Transfer {
                from_agent,
                to_agent,
                to_topic,
                ..
            } => CustomerView::Redacted(Box::new(Event {
                conversation_id: self.conversation_id.clone(),
                seq: self.seq,
                ts: self.ts,
                body: EventBody::Transfer {
                    from_agent: from_agent.clone(),
                    to_agent: to_agent.clone(),
                    to_topic: to_topic.clone(),
                    note: None,
                },
            })),
            _ => CustomerView::Same,
        }
    }

    /// The `event` frame for this event; the same text as
    /// `ServerFrame::Event(event.clone()).to_text()` without the copy.
    pub fn frame_text(&self) -> FrameText {
        /// Serializes like `ServerFrame::Event` from a borrowed event.
        #[derive(Serialize)]
        #[serde(tag = "type", rename = "event")]
        struct EventFrame<'a> {
            #[serde(flatten)]
            event: &'a Event,
        }
        match serde_json::to_string(&EventFrame { event: self }) {
            Ok(text) => text.into(),
            Err(_) => ServerFrame::Event(self.clone()).to_text(),
        }
    }
}

/// The stored form of an event: its body and time as one JSON object (the seq is the
/// stream entry id, the conversation the key). It is the `event` frame without its
/// first fields, which is what lets [`StoredEvent::event_frame`] splice frames.
#[derive(Serialize, Deserialize)]
pub struct StoredEvent {
    pub ts: u64,
    #[serde(flatten)]
    pub body: EventBody,
}

/// [`StoredEvent`] for writing, without copying the body.
#[derive(Serialize)]
struct StoredEventRef<'a> {
    ts: u64,
    #[serde(flatten)]
    body: &'a EventBody,
}

impl StoredEvent {
    /// The stored JSON of an event body at `ts`.
    pub fn json(ts: u64, body: &EventBody) -> serde_json::Result<String> {
        serde_json::to_string(&StoredEventRef { ts, body })
    }

    /// The `event` frame of a stored event, spliced from its stored JSON: the same text as
    /// `Event::frame_text`, without serializing the body a second time. The stored object
    /// starts with `"ts"`, the field that follows `seq` in the frame.
    pub fn event_frame(conversation_id: &str, seq: u64, stored: &str) -> Option<FrameText> {
        splice("{\"type\":\"event\",", conversation_id, seq, stored).map(FrameText::from)
    }

    pub fn into_event(self, conversation_id: &str, seq: u64) -> Event {
        Event {
            conversation_id: conversation_id.to_string(),
            seq,
            ts: self.ts,
            body: self.body,
        }
    }
}

/// `head` (an object's opening and the fields before the event's), then the event's
/// `conversation_id` and `seq`, then the stored form's fields from its `ts` on: an event's
/// JSON without serializing its body again. `None` when `stored` does not start with
/// its `ts`.
pub(super) fn splice(head: &str, conversation_id: &str, seq: u64, stored: &str) -> Option<String> {
    let fields = stored.strip_prefix("{\"ts\":")?;
    let id = serde_json::to_string(conversation_id).ok()?;
    let mut json = String::with_capacity(40 + head.len() + id.len() + stored.len());
    json.push_str(head);
    json.push_str("\"conversation_id\":");
    json.push_str(&id);
    json.push_str(",\"seq\":");
    json.push_str(itoa::Buffer::new().format(seq));
    json.push_str(",\"ts\":");
    json.push_str(fields);
    Some(json)
}

impl EventBody {
    /// The author's `client_msg_id`, when this is a message that carries one.
    pub fn client_msg_id(&self) -> Option<&str> {
        match self {
            EventBody::Message { client_msg_id, .. } => client_msg_id.as_deref(),
            _ => None,
        }
    }
}
