//! Wire protocol v1, typed: every frame is parsed once at the edge and built here. The
//! contract is `docs/protocol.md`; nothing else in the crate reads or builds JSON by hand.
//!
//! - this file — the frames: `ClientFrame` (what clients send), `ServerFrame` (what the
//!   hub sends) and their parts;
//! - `inbound` — parsing a client's text frame (with a fast path for `message`);
//! - `event` — stored conversation events, what customers may see of them, and their
//!   stored form (from which `event` frames are spliced);
//! - `page` — a `history` answer, spliced from the stored forms as well;
//! - `vocabulary` — the enums of states and reasons, and the wire spelling of the
//!   router's own enums.

mod event;
mod inbound;
mod page;
mod vocabulary;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use self::{
    event::{AgentRef, Attachment, Audience, CustomerView, Event, EventBody, Party, StoredEvent},
    inbound::{Inbound, ParseFailure},
    page::{EventJson, HistoryPage, PageEntry},
    vocabulary::{
        AgentStatus, ConversationState, LeftReason, RevokeReason, TransferFailReason, WRAP_UP_ENDED,
    },
};
use crate::error::{Error, ErrorCode};

/// A serialized server frame, shared by every connection it goes to: cloning it is a
/// reference count, and the WebSocket writer sends it without another copy.
pub type FrameText = axum::extract::ws::Utf8Bytes;

pub const PROTOCOL_VERSION: u32 = 1;
pub const MAX_REQ_LEN: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Agent,
    System,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Identity {
    pub user_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub signature: String,
    /// The extended form (an addition): unix seconds when the site signed it; the
    /// signature then covers `user_id`, `name`, `email` and `issued_at`.
    pub issued_at: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Hello {
    pub role: Role,
    pub token: Option<String>,
    pub session: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub identity: Option<Identity>,
    /// Issue 19: `false` asks the hub not to send this connection the `message` event of
    /// a `message` it sent and was acked for (the ack then carries the event's `ts`), so
    /// a busy client reads one frame per message it sends instead of two.
    #[serde(default = "echo_by_default")]
    pub echo: bool,
}

/// The contract sends every event to all members: the echo is on unless asked off.
fn echo_by_default() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    Hello(Hello),
    Start {
        topic: Option<String>,
        text: String,
        #[serde(default)]
        metadata: Option<Map<String, Value>>,
    },
    Message {
        conversation_id: String,
        /// May be left out (or empty) when `attachment` is given.
        #[serde(default)]
        text: String,
        client_msg_id: Option<String>,
        /// The id of a file uploaded to this conversation by the same sender.
        #[serde(default)]
        attachment: Option<String>,
    },
    History {
        conversation_id: String,
        #[serde(default)]
        after_seq: u64,
        limit: Option<usize>,
    },
    Typing {
        conversation_id: String,
        on: bool,
    },
    Read {
        conversation_id: String,
        seq: u64,
    },
    Ping {},
    Close {
        conversation_id: String,
        resolution: Option<String>,
        #[serde(default)]
        tags: Vec<String>,
    },
    Rate {
        conversation_id: String,
        score: u8,
        comment: Option<String>,
    },
    /// A customer asks for a short-lived link to its closed chat's transcript.
    Transcript {
        conversation_id: String,
    },
    /// A customer asks whether the desk is online now (the `welcome`'s `online` and
    /// `topics`, as of now): the widget follows the desk opening and closing.
    Presence {
        /// `online` for this topic rather than the default one (a widget with
        /// `data-topic`).
        #[serde(default)]
        topic: Option<String>,
    },
    OfflineMessage {
        topic: Option<String>,
        name: Option<String>,
        email: String,
        text: String,
    },
    Status {
        status: AgentStatus,
        /// With `away`: one of the configured away reasons.
        #[serde(default)]
        reason: Option<String>,
    },
    Accept {
        offer_id: String,
    },
    Decline {
        offer_id: String,
    },
    /// An agent takes a queued conversation itself.
    Take {
        conversation_id: String,
    },
    /// A supervisor gives a queued conversation to an agent.
    Assign {
        conversation_id: String,
        agent: String,
    },
    Transfer {
        conversation_id: String,
        to_agent: Option<String>,
        to_topic: Option<String>,
        note: Option<String>,
    },
    Note {
        conversation_id: String,
        text: String,
    },
    Monitor {
        conversation_id: String,
    },
    Unmonitor {
        conversation_id: String,
    },
}

impl ClientFrame {
    /// `ping` is exempt from rate limiting: it is how a browser proves its socket is alive.
    pub fn counts_against_rate_limit(&self) -> bool {
        !matches!(self, ClientFrame::Ping {})
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConversationSummary {
    pub conversation_id: String,
    pub state: ConversationState,
    pub last_seq: u64,
    /// To customers, when the topic's survey is not the default CSAT: the scale `rate`
    /// takes after close.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub survey: Option<crate::config::SurveyKind>,
}

/// A topic's entry in the customer `welcome`'s `topics` (business hours, issue 18).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TopicStatus {
    /// An agent is available and the topic is within its hours.
    pub online: bool,
    /// The topic a `start` without (or with an unknown) `topic` goes to.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
    /// The configured out-of-hours message, while the topic is closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When a closed topic opens next (Unix ms), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub opens_at: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AgentInfo {
    pub id: String,
    pub name: String,
    pub skills: std::collections::BTreeMap<String, u32>,
    pub capacity: u32,
    pub supervisor: bool,
    /// The reasons `status` `away` takes (configured).
    pub away_reasons: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CustomerInfo {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub verified: bool,
    /// Which fields the identity signature covered (an addition): `["user_id"]` for the
    /// contract's form, plus `name` and `email` for the extended form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_fields: Option<Vec<String>>,
}

/// Request-specific fields of an `ack`; only the ones set are sent.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AckBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// `presence`: as the `welcome`'s fields of the same names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub online: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topics: Option<std::collections::BTreeMap<String, TopicStatus>>,
    /// `transcript`: the link (path and query) to download it from, valid a minute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `start`: the survey scale when it is not the default CSAT.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub survey: Option<crate::config::SurveyKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// `message` on a connection that said `echo: false` (issue 19): the stored event's
    /// `ts`, which that connection is not sent the event to learn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ts: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<Event>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub more: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<AgentStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TransferOfferInfo {
    pub from_agent: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_topic: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Welcome {
        protocol: u32,
        #[serde(skip_serializing_if = "Option::is_none")]
        session: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        visitor_id: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        verified: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        verified_fields: Option<Vec<String>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        online: Option<bool>,
        /// Per topic, to customers when some topic has business hours (issue 18).
        #[serde(skip_serializing_if = "Option::is_none")]
        topics: Option<std::collections::BTreeMap<String, TopicStatus>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        agent: Option<AgentInfo>,
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<AgentStatus>,
        conversations: Vec<ConversationSummary>,
    },
    Ack {
        req: String,
        #[serde(flatten)]
        body: AckBody,
    },
    Error {
        #[serde(skip_serializing_if = "Option::is_none")]
        req: Option<String>,
        code: ErrorCode,
        message: String,
        /// Why, when a client should act on more than the code (an addition):
        /// `queue_full` or `closed` on an `unavailable` start.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'static str>,
    },
    Event(Event),
    Queue {
        conversation_id: String,
        position: u32,
        eta_ms: u64,
    },
    Offer {
        offer_id: String,
        conversation_id: String,
        topic: String,
        priority: i32,
        customer: CustomerInfo,
        preview: String,
        waited_ms: u64,
        expires_ms: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        transfer: Option<TransferOfferInfo>,
    },
    OfferRevoked {
        offer_id: String,
        reason: RevokeReason,
    },
    TransferFailed {
        conversation_id: String,
        reason: TransferFailReason,
    },
    Typing {
        conversation_id: String,
        from: Party,
        on: bool,
    },
    Read {
        conversation_id: String,
        from: Party,
        seq: u64,
    },
    /// To a customer queued for its topic's `leave_message_after_s`: it may leave a
    /// message instead (the widget offers its offline form); it stays queued meanwhile.
    LeaveMessage {
        conversation_id: String,
        waited_ms: u64,
    },
    /// The agent's status changed: by one of its tabs, or by the hub (`missed_offers`,
    /// a wrap-up starting or ending).
    Status {
        status: AgentStatus,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// With `wrap_up`: milliseconds until the agent is available again.
        #[serde(skip_serializing_if = "Option::is_none")]
        ends_in_ms: Option<u64>,
    },
}

impl ServerFrame {
    pub fn ack(req: String, body: AckBody) -> Self {
        ServerFrame::Ack { req, body }
    }

    pub fn error(req: Option<String>, err: &Error) -> Self {
        ServerFrame::Error {
            req,
            code: err.code(),
            message: err.to_string(),
            reason: err.reason(),
        }
    }

    /// Serializes once; the text is shared by every connection it is fanned out to.
    pub fn to_text(&self) -> FrameText {
        if let ServerFrame::Ack { req, body } = self {
            return ack_text(req, body);
        }
        text_or_error(serde_json::to_string(self))
    }
}

impl AckBody {
    /// The `seq` (and `ts`) of an ack that carries nothing else: a stored `message`'s,
    /// the frame the hub sends most. Every field is named, so a new one fails to compile
    /// here rather than being left out of the fast form.
    fn seq_only(&self) -> Option<(u64, Option<u64>)> {
        let AckBody {
            conversation_id: None,
            online: None,
            topics: None,
            url: None,
            survey: None,
            seq: Some(seq),
            ts,
            ticket_id: None,
            events: None,
            more: None,
            status: None,
            last_seq: None,
        } = self
        else {
            return None;
        };
        Some((*seq, *ts))
    }
}

/// The text of `ServerFrame::Ack { req, body }`, from borrowed parts: the conversation
/// task acks a stored event from the request it still holds, without moving the body.
pub fn ack_text(req: &str, body: &AckBody) -> FrameText {
    /// Serializes like `ServerFrame::Ack`.
    #[derive(Serialize)]
    #[serde(tag = "type", rename = "ack")]
    struct AckFrame<'a> {
        req: &'a str,
        #[serde(flatten)]
        body: &'a AckBody,
    }
    if let Some(text) = body
        .seq_only()
        .and_then(|(seq, ts)| seq_ack_text(req, seq, ts))
    {
        return text;
    }
    text_or_error(serde_json::to_string(&AckFrame { req, body }))
}

/// A serialized frame's text. Every field is a plain string, number or map with string
/// keys, so serializing cannot fail; if it ever does, say so loudly and send an error
/// rather than nothing.
fn text_or_error(serialized: serde_json::Result<String>) -> FrameText {
    match serialized {
        Ok(text) => text.into(),
        Err(err) => {
            tracing::error!(cause = %err, "failed to serialize a server frame");
            FrameText::from_static(
                r#"{"type":"error","code":"unavailable","message":"internal serialization error"}"#,
            )
        }
    }
}

/// `{"type":"ack","req":…,"seq":…,"ts":…}` as serde writes it, without the map serde
/// uses for a flattened body (a tenth of the hub's JSON work at saturation). `None`
/// only if serde_json could not write a string, which it always can.
fn seq_ack_text(req: &str, seq: u64, ts: Option<u64>) -> Option<FrameText> {
    let mut out = Vec::with_capacity(56 + req.len());
    out.extend_from_slice(br#"{"type":"ack","req":"#);
    serde_json::to_writer(&mut out, req).ok()?;
    out.extend_from_slice(br#","seq":"#);
    out.extend_from_slice(itoa::Buffer::new().format(seq).as_bytes());
    if let Some(ts) = ts {
        out.extend_from_slice(br#","ts":"#);
        out.extend_from_slice(itoa::Buffer::new().format(ts).as_bytes());
    }
    out.push(b'}');
    String::from_utf8(out).ok().map(FrameText::from)
}

#[cfg(test)]
mod tests;
