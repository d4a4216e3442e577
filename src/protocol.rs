//! Wire protocol v1: serde types for every frame, parsed once at the edge.
//!
//! `ClientFrame` is what clients send, `ServerFrame` what the hub sends; `Event` is a
//! stored conversation event. Nothing else in the crate reads or builds JSON by hand.
//! The contract is `docs/protocol.md`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A serialized server frame, shared by every connection it goes to: cloning it is a
/// reference count, and the WebSocket writer sends it without another copy.
pub type FrameText = axum::extract::ws::Utf8Bytes;

use crate::error::{Error, ErrorCode};

pub const PROTOCOL_VERSION: u32 = 1;
pub const MAX_REQ_LEN: usize = 64;

/// A client frame with its optional request id.
#[derive(Debug)]
pub struct Inbound {
    pub req: Option<String>,
    pub frame: ClientFrame,
}

/// Why a frame could not be parsed, with whatever `req` could still be read from it.
#[derive(Debug)]
pub struct ParseFailure {
    pub req: Option<String>,
    pub message: String,
}

impl Inbound {
    /// Parses one text frame. A frame that is not a JSON object, has an unknown `type` or
    /// a missing/ill-typed field is a `bad_request`; its `req` is kept when readable so
    /// the error can be matched to the request.
    pub fn parse(text: &str) -> Result<Inbound, ParseFailure> {
        Self::parse_message(text).map_or_else(|| Self::parse_general(text), Ok)
    }

    fn parse_general(text: &str) -> Result<Inbound, ParseFailure> {
        let mut value: Value = serde_json::from_str(text).map_err(|err| ParseFailure {
            req: None,
            message: format!("malformed JSON: {err}"),
        })?;
        let Some(object) = value.as_object_mut() else {
            return Err(ParseFailure {
                req: None,
                message: "a frame must be a JSON object".into(),
            });
        };
        let req = match object.remove("req") {
            None | Some(Value::Null) => None,
            Some(Value::String(req)) if req.chars().count() <= MAX_REQ_LEN => Some(req),
            Some(_) => {
                return Err(ParseFailure {
                    req: None,
                    message: format!("req must be a string of at most {MAX_REQ_LEN} characters"),
                })
            }
        };
        match object.get("type") {
            Some(Value::String(_)) => {}
            Some(_) => {
                return Err(ParseFailure {
                    req,
                    message: "type must be a string".into(),
                })
            }
            None => {
                return Err(ParseFailure {
                    req,
                    message: "missing field `type`".into(),
                })
            }
        }
        match ClientFrame::deserialize(value) {
            Ok(frame) => Ok(Inbound { req, frame }),
            Err(err) => Err(ParseFailure {
                req,
                message: err.to_string(),
            }),
        }
    }
}

impl Inbound {
    /// The one frame a busy chat is made of, parsed straight into its fields. Anything
    /// this does not take as a plain valid `message` (other types, an odd `req`,
    /// duplicate keys) goes the general way, which gives the precise error.
    fn parse_message(text: &str) -> Option<Inbound> {
        #[derive(Deserialize)]
        struct MessageFrame<'a> {
            #[serde(rename = "type", borrow)]
            kind: &'a str,
            req: Option<String>,
            conversation_id: String,
            text: String,
            client_msg_id: Option<String>,
        }
        let frame: MessageFrame<'_> = serde_json::from_str(text).ok()?;
        if frame.kind != "message"
            || frame
                .req
                .as_ref()
                .is_some_and(|r| r.chars().count() > MAX_REQ_LEN)
        {
            return None;
        }
        Some(Inbound {
            req: frame.req,
            frame: ClientFrame::Message {
                conversation_id: frame.conversation_id,
                text: frame.text,
                client_msg_id: frame.client_msg_id,
            },
        })
    }
}

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
}

#[derive(Debug, Clone, Deserialize)]
pub struct Hello {
    pub role: Role,
    pub token: Option<String>,
    pub session: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub identity: Option<Identity>,
}

/// The router's own vocabulary, spelled on the wire by the impls at the end of this file:
/// one enum per concept, never a second copy mapped by hand.
pub use crate::router::{AgentStatus, RevokeReason, TransferFailReason};

/// Where a conversation is: waiting for an agent, with one, or over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationState {
    Queued,
    Assigned,
    Closed,
}

impl ConversationState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConversationState::Queued => "queued",
            ConversationState::Assigned => "assigned",
            ConversationState::Closed => "closed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "queued" => Some(ConversationState::Queued),
            "assigned" => Some(ConversationState::Assigned),
            "closed" => Some(ConversationState::Closed),
            _ => None,
        }
    }

    pub fn is_open(self) -> bool {
        self != ConversationState::Closed
    }
}

/// Why an agent left a conversation (`left.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeftReason {
    /// Handed off to another agent or topic.
    Transferred,
    /// Its connections dropped and the grace period ran out.
    Disconnected,
    /// The admin deleted the agent.
    Removed,
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
        text: String,
        client_msg_id: Option<String>,
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
    OfflineMessage {
        topic: Option<String>,
        name: Option<String>,
        email: String,
        text: String,
    },
    Status {
        status: AgentStatus,
    },
    Accept {
        offer_id: String,
    },
    Decline {
        offer_id: String,
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

/// The kind-specific part of a conversation event; this is what Redis stores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventBody {
    Message {
        from: Party,
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<String>,
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
    Redacted(Event),
}

impl Event {
    /// The event as `audience` may see it, or `None` when it is hidden from them.
    pub fn visible_to(self, audience: Audience) -> Option<Event> {
        match (audience, self.customer_view()) {
            (Audience::Staff, _) | (Audience::Customer, CustomerView::Same) => Some(self),
            (Audience::Customer, CustomerView::Hidden) => None,
            (Audience::Customer, CustomerView::Redacted(event)) => Some(event),
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
            } => CustomerView::Redacted(Event {
                conversation_id: self.conversation_id.clone(),
                seq: self.seq,
                ts: self.ts,
                body: EventBody::Transfer {
                    from_agent: from_agent.clone(),
                    to_agent: to_agent.clone(),
                    to_topic: to_topic.clone(),
                    note: None,
                },
            }),
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
        let fields = stored.strip_prefix("{\"ts\":")?;
        let id = serde_json::to_string(conversation_id).ok()?;
        let mut frame = String::with_capacity(48 + id.len() + stored.len());
        frame.push_str("{\"type\":\"event\",\"conversation_id\":");
        frame.push_str(&id);
        frame.push_str(",\"seq\":");
        frame.push_str(itoa::Buffer::new().format(seq));
        frame.push_str(",\"ts\":");
        frame.push_str(fields);
        Some(frame.into())
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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConversationSummary {
    pub conversation_id: String,
    pub state: ConversationState,
    pub last_seq: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct AgentInfo {
    pub id: String,
    pub name: String,
    pub skills: std::collections::BTreeMap<String, u32>,
    pub capacity: u32,
    pub supervisor: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct CustomerInfo {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub verified: bool,
}

/// Request-specific fields of an `ack`; only the ones set are sent.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AckBody {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
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
        online: Option<bool>,
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
    Status {
        status: AgentStatus,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<StatusReason>,
    },
}

/// Why the hub changed an agent's status itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusReason {
    /// Too many offers expired in a row.
    MissedOffers,
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
        }
    }

    /// Serializes once; the text is shared by every connection it is fanned out to.
    pub fn to_text(&self) -> FrameText {
        match serde_json::to_string(self) {
            Ok(text) => text.into(),
            // Every field is a plain string, number or map with string keys, so this
            // cannot fail; say so loudly rather than send nothing if it ever does.
            Err(err) => {
                tracing::error!(cause = %err, "failed to serialize a server frame");
                FrameText::from_static(
                    r#"{"type":"error","code":"unavailable","message":"internal serialization error"}"#,
                )
            }
        }
    }
}

/// Writes a router enum as its protocol spelling.
macro_rules! serialize_as_wire {
    ($($ty:ty),*) => {$(
        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_wire())
            }
        }
    )*};
}

serialize_as_wire!(AgentStatus, RevokeReason, TransferFailReason);

impl<'de> Deserialize<'de> for AgentStatus {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        [
            AgentStatus::Available,
            AgentStatus::Away,
            AgentStatus::Offline,
        ]
        .into_iter()
        .find(|status| status.as_wire() == text)
        .ok_or_else(|| serde::de::Error::unknown_variant(&text, &["available", "away", "offline"]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn party(id: &str) -> Party {
        Party {
            role: Role::Customer,
            id: id.into(),
            name: Some("Ann \"the\" \u{e9}\\".into()),
        }
    }

    /// The spliced frame is byte for byte the frame serialized from the event, for every
    /// kind and for texts that need escaping.
    #[test]
    fn frame_spliced_from_stored_form_equals_serialized_frame() {
        let bodies = vec![
            EventBody::Message {
                from: party("v_1"),
                text: "line\nbreak \"quoted\" \u{1F600} </script>".into(),
                client_msg_id: Some("m-1".into()),
            },
            EventBody::Message {
                from: party("v_2"),
                text: "no id".into(),
                client_msg_id: None,
            },
            EventBody::Joined {
                agent: AgentRef {
                    id: "alice".into(),
                    name: "Alice".into(),
                },
            },
            EventBody::Left {
                agent: AgentRef {
                    id: "bob".into(),
                    name: "Bob".into(),
                },
                reason: LeftReason::Transferred,
            },
            EventBody::Transfer {
                from_agent: "alice".into(),
                to_agent: None,
                to_topic: Some("billing".into()),
                note: Some("tier 2".into()),
            },
            EventBody::Note {
                from: party("alice"),
                text: "internal".into(),
            },
            EventBody::Closed {
                by: party("v_1"),
                resolution: "resolved".into(),
                ticket_id: "t_9".into(),
            },
            EventBody::Rating {
                score: 5,
                comment: None,
            },
        ];
        for (i, body) in bodies.into_iter().enumerate() {
            let event = Event {
                conversation_id: "c_\"odd\"\\id".into(),
                seq: 1 + 1000 * i as u64,
                ts: 1_763_790_000_123 + i as u64,
                body,
            };
            let stored = StoredEvent::json(event.ts, &event.body).expect("serializes");
            let spliced = StoredEvent::event_frame(&event.conversation_id, event.seq, &stored)
                .expect("stored form starts with ts");
            assert_eq!(spliced, event.frame_text());
            let stored_back: StoredEvent = serde_json::from_str(&stored).expect("parses");
            assert_eq!(stored_back.body, event.body);
        }
    }

    #[test]
    fn splice_refuses_an_unexpected_stored_form() {
        assert_eq!(
            StoredEvent::event_frame("c_1", 2, r#"{"kind":"x","ts":1}"#),
            None
        );
    }

    #[test]
    fn router_vocabulary_is_spelled_as_the_protocol_says() {
        let frame = ServerFrame::OfferRevoked {
            offer_id: "o_1".into(),
            reason: RevokeReason::Withdrawn,
        };
        assert_eq!(
            frame.to_text().as_str(),
            r#"{"type":"offer_revoked","offer_id":"o_1","reason":"expired"}"#
        );
        let status: AgentStatus = serde_json::from_str(r#""away""#).expect("parses");
        assert_eq!(status, AgentStatus::Away);
        assert!(serde_json::from_str::<AgentStatus>(r#""busy""#).is_err());
        let failed = ServerFrame::TransferFailed {
            conversation_id: "c".into(),
            reason: TransferFailReason::Declined,
        };
        assert!(failed
            .to_text()
            .as_str()
            .ends_with(r#""reason":"declined"}"#));
    }

    #[test]
    fn parses_message_with_req() {
        let inbound = Inbound::parse(
            r#"{"type":"message","req":"r2","conversation_id":"c_1","text":"hi","client_msg_id":"m-1"}"#,
        )
        .expect("valid frame");
        assert_eq!(inbound.req.as_deref(), Some("r2"));
        assert!(matches!(inbound.frame, ClientFrame::Message { .. }));
    }

    #[test]
    fn message_fast_path_agrees_with_the_general_parse() {
        let frames = [
            r#"{"type":"message","req":"r2","conversation_id":"c_1","text":"h\u00e9 \"x\"","client_msg_id":"m-1","extra":1}"#,
            r#"{"conversation_id":"c_1","text":"hi","type":"message"}"#,
            r#"{"type":"message","req":null,"conversation_id":"c_1","text":"hi","client_msg_id":null}"#,
        ];
        for text in frames {
            let fast = Inbound::parse_message(text).expect("fast path takes it");
            let general = Inbound::parse_general(text).expect("parses");
            assert_eq!(fast.req, general.req, "{text}");
            assert_eq!(
                format!("{:?}", fast.frame),
                format!("{:?}", general.frame),
                "{text}"
            );
        }
        let long_req = format!(
            r#"{{"type":"message","req":"{}","conversation_id":"c","text":"t"}}"#,
            "x".repeat(65)
        );
        for refused in [
            long_req.as_str(),
            r#"{"type":"typing","conversation_id":"c_1","on":true}"#,
            r#"{"type":"message","conversation_id":"c_1"}"#,
            r#"{"type":"message","type":"message","conversation_id":"c","text":"t"}"#,
        ] {
            assert!(Inbound::parse_message(refused).is_none(), "{refused}");
        }
        assert!(Inbound::parse(&long_req).is_err());
    }

    #[test]
    fn unknown_type_keeps_req() {
        let failure = Inbound::parse(r#"{"type":"dance","req":"r1"}"#).expect_err("unknown type");
        assert_eq!(failure.req.as_deref(), Some("r1"));
    }

    #[test]
    fn malformed_json_is_rejected() {
        assert!(Inbound::parse("{nope").is_err());
        assert!(Inbound::parse("[1,2]").is_err());
        assert!(Inbound::parse(r#"{"req":"r1"}"#).is_err());
    }

    #[test]
    fn overlong_req_is_rejected() {
        let req = "x".repeat(65);
        let frame = format!(r#"{{"type":"ping","req":"{req}"}}"#);
        assert!(Inbound::parse(&frame).is_err());
    }

    #[test]
    fn event_serializes_flat() {
        let event = Event {
            conversation_id: "c_9f2".into(),
            seq: 5,
            ts: 1,
            body: EventBody::Message {
                from: Party {
                    role: Role::Customer,
                    id: "v_1a".into(),
                    name: Some("Ann".into()),
                },
                text: "Hi".into(),
                client_msg_id: None,
            },
        };
        let text = ServerFrame::Event(event.clone()).to_text();
        assert_eq!(
            event.frame_text(),
            text,
            "the borrowed form is the same frame"
        );
        let value: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(value["type"], "event");
        assert_eq!(value["kind"], "message");
        assert_eq!(value["seq"], 5);
        assert_eq!(value["from"]["name"], "Ann");
    }

    #[test]
    fn customers_never_see_notes_or_transfer_notes() {
        let note = Event {
            conversation_id: "c".into(),
            seq: 2,
            ts: 1,
            body: EventBody::Note {
                from: Party {
                    role: Role::Agent,
                    id: "alice".into(),
                    name: None,
                },
                text: "internal".into(),
            },
        };
        assert!(note.clone().visible_to(Audience::Customer).is_none());
        let transfer = Event {
            body: EventBody::Transfer {
                from_agent: "alice".into(),
                to_agent: Some("bob".into()),
                to_topic: None,
                note: Some("secret".into()),
            },
            ..note
        };
        let seen = transfer.visible_to(Audience::Customer).expect("visible");
        assert!(matches!(seen.body, EventBody::Transfer { note: None, .. }));
    }
}
