//! The frames of the public protocol the harness uses, as serde types: [`Out`] is what a
//! simulated client sends, [`In`] what it reads. Only the fields the harness needs are
//! declared; unknown fields and unknown frame types are ignored, as a careful client
//! does. [`In::parse`] reads the frames of a chat without serde's tagged-enum buffering,
//! with the same outcome. Nothing else in the crate builds or pokes at JSON.

use serde::{Deserialize, Serialize};

/// A client frame. Every request the harness sends carries a `req`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Out<'a> {
    Hello {
        role: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        token: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        session: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<&'a str>,
        /// `Some(false)`: our own messages come back as their acks only (issue 19); `None`
        /// leaves the field out, so the hub echoes as the contract says.
        #[serde(skip_serializing_if = "Option::is_none")]
        echo: Option<bool>,
    },
    Status {
        req: &'a str,
        status: &'a str,
    },
    Start {
        req: &'a str,
        topic: &'a str,
        text: &'a str,
    },
    Message {
        req: &'a str,
        conversation_id: &'a str,
        text: &'a str,
        client_msg_id: &'a str,
    },
    History {
        req: &'a str,
        conversation_id: &'a str,
        after_seq: u64,
        limit: u32,
    },
    Accept {
        req: &'a str,
        offer_id: &'a str,
    },
    Decline {
        req: &'a str,
        offer_id: &'a str,
    },
    Transfer {
        req: &'a str,
        conversation_id: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        to_agent: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        to_topic: Option<&'a str>,
    },
    Close {
        req: &'a str,
        conversation_id: &'a str,
    },
    Ping {
        req: &'a str,
    },
}

impl Out<'_> {
    pub fn to_text(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}

/// Who sent a message.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Party {
    pub role: String,
    pub id: String,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct AgentRef {
    pub id: String,
}

/// A stored conversation event (live or from `history`).
#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    pub conversation_id: String,
    pub seq: u64,
    pub kind: String,
    #[serde(default)]
    pub from: Option<Party>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub client_msg_id: Option<String>,
    #[serde(default)]
    pub agent: Option<AgentRef>,
    /// A `transfer` to a queue: the conversation's topic from then on.
    #[serde(default)]
    pub to_topic: Option<String>,
}

impl Event {
    pub fn is_message_from(&self, role: &str) -> bool {
        self.kind == "message" && self.from.as_ref().is_some_and(|f| f.role == role)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ConversationSummary {
    pub conversation_id: String,
    #[serde(default)]
    pub last_seq: u64,
}

/// A server frame, as far as the harness cares.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum In {
    Welcome {
        #[serde(default)]
        session: Option<String>,
        #[serde(default)]
        conversations: Vec<ConversationSummary>,
    },
    Ack {
        req: String,
        #[serde(default)]
        conversation_id: Option<String>,
        #[serde(default)]
        seq: Option<u64>,
        /// A stored message's `ts`, only on a connection that said `echo: false`: the ack
        /// then stands for the event the hub does not send it.
        #[serde(default)]
        ts: Option<u64>,
        #[serde(default)]
        events: Option<Vec<Event>>,
        #[serde(default)]
        more: Option<bool>,
    },
    Error {
        #[serde(default)]
        req: Option<String>,
        code: String,
        #[serde(default)]
        message: String,
    },
    Event(Event),
    Queue {
        conversation_id: String,
        #[serde(default)]
        position: Option<u64>,
    },
    Offer {
        offer_id: String,
        conversation_id: String,
        #[serde(default)]
        topic: String,
        #[serde(default)]
        preview: String,
        /// How long the conversation had waited when the router made the offer.
        #[serde(default)]
        waited_ms: u64,
        #[serde(default)]
        transfer: Option<serde::de::IgnoredAny>,
    },
    OfferRevoked {
        offer_id: String,
    },
    TransferFailed {
        conversation_id: String,
        #[serde(default)]
        reason: String,
    },
    Status {
        status: String,
    },
    #[serde(other)]
    Other,
}

impl In {
    /// Reads a server frame. `event` and `ack` frames, nearly every frame of a run, are
    /// read straight into their fields (`parse_common`); anything else goes through
    /// the tagged enum, which first buffers every field of the frame as serde `Content`.
    /// Both ways give the same result for every input.
    pub fn parse(text: &str) -> Result<In, serde_json::Error> {
        match In::parse_common(text) {
            Some(frame) => Ok(frame),
            None => serde_json::from_str(text),
        }
    }

    /// An `event` or `ack` frame with `type` as its first key and only the fields the hub
    /// writes in a chat, read without the tagged enum's buffering. `None` for anything
    /// else (another type, `type` not first, a second `type`, another field, an escaped
    /// string where a borrowed one is read, a malformed frame): the general way then
    /// gives the same frame or the precise error.
    ///
    /// Unknown fields are refused rather than skipped because serde_json checks less when
    /// it skips a value than when it parses one (no nesting limit, lone surrogates in
    /// `\u` escapes and numbers too large for an `f64` pass), while the tagged enum
    /// parses every value: a frame this reads is one the general way reads the same.
    fn parse_common(text: &str) -> Option<In> {
        if text.starts_with(r#"{"type":"event""#) {
            let frame: EventFrame<'_> = serde_json::from_str(text).ok()?;
            Some(In::Event(frame.into()))
        } else if text.starts_with(r#"{"type":"ack""#) {
            let frame: AckFrame<'_> = serde_json::from_str(text).ok()?;
            Some(frame.into())
        } else {
            None
        }
    }
}

/// The `type` of an `event` frame, read without allocating.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum EventType {
    Event,
}

/// The `type` of an `ack` frame.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum AckType {
    Ack,
}

/// An [`Event`] as the hub writes one in an `event` frame (with `type`) or a history page
/// (without). The fields the harness does not use are declared too, so that they are
/// parsed (and checked) rather than skipped; borrowed, they cost no allocation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventFrame<'a> {
    #[serde(rename = "type", default)]
    _type: Option<EventType>,
    conversation_id: String,
    seq: u64,
    #[serde(rename = "ts", default)]
    _ts: Option<u64>,
    kind: String,
    #[serde(default, borrow)]
    from: Option<PartyFrame<'a>>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    client_msg_id: Option<String>,
    #[serde(default, borrow)]
    agent: Option<AgentFrame<'a>>,
    // The rest of `closed`, `left`, `transfer` and `rating`.
    #[serde(rename = "by", default, borrow)]
    _by: Option<PartyFrame<'a>>,
    #[serde(rename = "resolution", default, borrow)]
    _resolution: Option<&'a str>,
    #[serde(rename = "ticket_id", default, borrow)]
    _ticket_id: Option<&'a str>,
    #[serde(rename = "reason", default, borrow)]
    _reason: Option<&'a str>,
    #[serde(rename = "from_agent", default, borrow)]
    _from_agent: Option<&'a str>,
    #[serde(rename = "to_agent", default, borrow)]
    _to_agent: Option<&'a str>,
    #[serde(default, borrow)]
    to_topic: Option<&'a str>,
    #[serde(rename = "note", default, borrow)]
    _note: Option<&'a str>,
    #[serde(rename = "score", default)]
    _score: Option<u64>,
    #[serde(rename = "comment", default, borrow)]
    _comment: Option<&'a str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PartyFrame<'a> {
    role: String,
    id: String,
    #[serde(rename = "name", default, borrow)]
    _name: Option<&'a str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgentFrame<'a> {
    id: String,
    #[serde(rename = "name", default, borrow)]
    _name: Option<&'a str>,
}

impl From<EventFrame<'_>> for Event {
    fn from(frame: EventFrame<'_>) -> Event {
        Event {
            conversation_id: frame.conversation_id,
            seq: frame.seq,
            kind: frame.kind,
            from: frame.from.map(|p| Party {
                role: p.role,
                id: p.id,
            }),
            text: frame.text,
            client_msg_id: frame.client_msg_id,
            agent: frame.agent.map(|a| AgentRef { id: a.id }),
            to_topic: frame.to_topic.map(str::to_string),
        }
    }
}

/// An `ack` as the hub writes one for `start`, `message`, `history` and `close`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AckFrame<'a> {
    #[serde(rename = "type")]
    _type: AckType,
    req: String,
    #[serde(default)]
    conversation_id: Option<String>,
    #[serde(default)]
    seq: Option<u64>,
    #[serde(default)]
    ts: Option<u64>,
    #[serde(default, borrow)]
    events: Option<Vec<EventFrame<'a>>>,
    #[serde(default)]
    more: Option<bool>,
    #[serde(rename = "ticket_id", default, borrow)]
    _ticket_id: Option<&'a str>,
}

impl From<AckFrame<'_>> for In {
    fn from(frame: AckFrame<'_>) -> In {
        In::Ack {
            req: frame.req,
            conversation_id: frame.conversation_id,
            seq: frame.seq,
            ts: frame.ts,
            events: frame
                .events
                .map(|events| events.into_iter().map(Event::from).collect()),
            more: frame.more,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_contract_examples() {
        let event = In::parse(
            r#"{"type":"event","conversation_id":"c_9f2","seq":5,"ts":1763790000123,
                "kind":"message","from":{"role":"customer","id":"v_1a","name":"Ann"},"text":"Hi"}"#,
        )
        .expect("event");
        match event {
            In::Event(e) => {
                assert_eq!(e.seq, 5);
                assert!(e.is_message_from("customer"));
                assert_eq!(e.text.as_deref(), Some("Hi"));
            }
            other => panic!("not an event: {other:?}"),
        }
        let offer = In::parse(
            r#"{"type":"offer","offer_id":"o_77","conversation_id":"c_9f2","topic":"billing",
                "priority":0,"customer":{"id":"v_1a","name":"Ann","verified":false},
                "preview":"My invoice is wrong","waited_ms":1200,"expires_ms":15000}"#,
        )
        .expect("offer");
        assert!(matches!(offer, In::Offer { transfer: None, .. }));
        let ack = In::parse(r#"{"type":"ack","req":"r3","events":[],"more":false}"#).expect("ack");
        assert!(matches!(
            ack,
            In::Ack {
                more: Some(false),
                ..
            }
        ));
        let typing = In::parse(r#"{"type":"typing","conversation_id":"c","from":{},"on":true}"#)
            .expect("typing");
        assert!(matches!(typing, In::Other));
    }

    /// The frames of a chat as the hub writes them (`type` first, compact).
    const CHAT_FRAMES: [&str; 11] = [
        r#"{"type":"event","conversation_id":"c_00f3a9e1b2c4d5e6","seq":7,"ts":1763790000123,"kind":"message","from":{"role":"customer","id":"v_9e0f1a2b3c4d5e6f","name":"lt-c3"},"text":"812345 c3.0.4 - xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","client_msg_id":"c3.0.4"}"#,
        r#"{"type":"event","conversation_id":"c_00f3a9e1b2c4d5e6","seq":2,"ts":1763790000200,"kind":"joined","agent":{"id":"lt1a2b3c-a0","name":"lt1a2b3c-a0"}}"#,
        r#"{"type":"event","conversation_id":"c_00f3a9e1b2c4d5e6","seq":10,"ts":1795557449115,"kind":"transfer","from_agent":"lt1a2b3c-a0","to_topic":"general"}"#,
        r#"{"type":"event","conversation_id":"c_00f3a9e1b2c4d5e6","seq":12,"ts":1795557449116,"kind":"left","agent":{"id":"lt1a2b3c-a0","name":"lt1a2b3c-a0"},"reason":"transferred"}"#,
        r#"{"type":"event","conversation_id":"c_00f3a9e1b2c4d5e6","seq":19,"ts":1763790000300,"kind":"closed","by":{"role":"customer","id":"v_1","name":"lt-c3"},"resolution":"resolved","ticket_id":"t_1"}"#,
        r#"{"type":"ack","req":"r12","seq":8}"#,
        r#"{"type":"ack","req":"r13","seq":9,"ts":1763790000123}"#,
        r#"{"type":"ack","req":"r1","conversation_id":"c_00f3a9e1b2c4d5e6","seq":1}"#,
        r#"{"type":"ack","req":"r5","seq":19,"ticket_id":"t_1"}"#,
        r#"{"type":"ack","req":"r40","events":[{"conversation_id":"c_1","seq":1,"ts":1,"kind":"message","from":{"role":"customer","id":"v_1"},"text":"5 c0.0.0 -","client_msg_id":"c0.0.0"},{"conversation_id":"c_1","seq":2,"ts":2,"kind":"joined","agent":{"id":"a0","name":"a0"}}],"more":true}"#,
        r#"{"type":"ack","req":"r6","events":[{"conversation_id":"c_1","seq":3,"ts":3,"kind":"rating","score":5,"comment":"ok"},{"conversation_id":"c_1","seq":4,"ts":4,"kind":"note","from":{"role":"agent","id":"a0","name":"a0"},"text":"vip"}],"more":false}"#,
    ];

    /// Once per agent: the fast path leaves it to the general way.
    const STATUS_ACK: &str = r#"{"type":"ack","req":"r1","status":"available"}"#;

    /// `In::parse` gives exactly what the tagged enum alone gives, error or frame.
    fn agrees(text: &str) {
        let general = serde_json::from_str::<In>(text);
        assert_eq!(
            format!("{:?}", In::parse(text)),
            format!("{general:?}"),
            "{text}"
        );
    }

    #[test]
    fn the_hubs_events_and_acks_take_the_fast_path() {
        for text in CHAT_FRAMES {
            assert!(In::parse_common(text).is_some(), "{text}");
            assert!(serde_json::from_str::<In>(text).is_ok(), "{text}");
            agrees(text);
        }
        assert!(In::parse_common(STATUS_ACK).is_none());
        assert!(matches!(In::parse(STATUS_ACK), Ok(In::Ack { req, .. }) if req == "r1"));
    }

    #[test]
    fn other_frames_go_the_general_way_with_the_same_result() {
        let cases = [
            // `type` not first.
            r#"{"conversation_id":"c","type":"event","seq":1,"kind":"message"}"#,
            r#"{"req":"r1","type":"ack","seq":3}"#,
            // Other types, and names that merely start like ours.
            r#"{"type":"error","req":"r1","code":"conflict","message":"taken"}"#,
            r#"{"type":"events","conversation_id":"c","seq":1,"kind":"message"}"#,
            r#"{"type":"acknowledged","req":"r1"}"#,
            r#"{"type":"ack" ,"req":"r1"}"#,
            // A second `type`: an error for the tagged enum, so for the fast path too.
            r#"{"type":"event","conversation_id":"c","seq":1,"kind":"message","type":"ack"}"#,
            r#"{"type":"ack","req":"r1","type":"ack"}"#,
            // Missing, mistyped and repeated fields.
            r#"{"type":"event","seq":1,"kind":"message"}"#,
            r#"{"type":"event","conversation_id":"c","seq":-1,"kind":"message"}"#,
            r#"{"type":"event","conversation_id":"c","seq":1.5,"kind":"message"}"#,
            r#"{"type":"event","conversation_id":"c","seq":1,"seq":2,"kind":"message"}"#,
            r#"{"type":"event","conversation_id":"c","seq":1,"kind":"message","from":null,"text":null}"#,
            r#"{"type":"event","conversation_id":"c","seq":1,"kind":"message","from":["agent","a1"]}"#,
            r#"{"type":"ack"}"#,
            r#"{"type":"ack","req":null}"#,
            r#"{"type":"ack","req":"r1","events":[{"seq":1}]}"#,
            r#"{"type":"ack","req":"r1","more":"yes"}"#,
            // Malformed JSON.
            r#"{"type":"event""#,
            r#"{"type":"event",}"#,
            r#"{"type":"ack","req":"r1"} trailing"#,
            r#"{"type":"ack","req":"r1"}}"#,
            "",
            "[]",
            "null",
            // Escapes the fast path leaves to the general way.
            r#"{"type":"ack","req":"r\u0031"}"#,
            r#"{"type":"event","conversation_id":"c","seq":1,"kind":"message","text":"say \"hi\"\n"}"#,
        ];
        for text in cases {
            agrees(text);
        }
        assert!(In::parse_common(cases[0]).is_none());
    }

    /// serde_json checks less when it skips a value than when it parses one, and the
    /// tagged enum parses every value: the fast path must not skip what it would refuse.
    #[test]
    fn what_skipping_would_let_through_is_refused_both_ways() {
        let deep = format!(
            r#"{{"type":"ack","req":"r1","x":{}{}}}"#,
            "[".repeat(130),
            "]".repeat(130)
        );
        let long_number = format!(r#"{{"type":"ack","req":"r1","x":1{}}}"#, "0".repeat(400));
        let refused = [
            r#"{"type":"ack","req":"r1","x":"\ud800"}"#,
            r#"{"type":"event","conversation_id":"c","seq":1,"kind":"message","from":{"role":"customer","id":"v","name":"\udc00"}}"#,
            r#"{"type":"event","conversation_id":"c","seq":1,"ts":1e400,"kind":"message"}"#,
            r#"{"type":"ack","req":"r1","events":[{"conversation_id":"c","seq":1,"kind":"rating","comment":"\udbff"}]}"#,
            r#"{"type":"ack","req":"r1","x":-2.5E+999}"#,
            long_number.as_str(),
            deep.as_str(),
        ];
        for text in refused {
            assert!(serde_json::from_str::<In>(text).is_err(), "{text}");
            assert!(In::parse_common(text).is_none(), "{text}");
            agrees(text);
        }
        // Fields the fast path does not know, or reads stricter than the harness needs,
        // go the general way.
        for text in [
            r#"{"type":"ack","req":"r1","last_seq":4}"#,
            r#"{"type":"ack","req":"r1","x":[[[[[[[[[[{}]]]]]]]]]]}"#,
            r#"{"type":"event","conversation_id":"c","seq":1,"ts":-1,"kind":"message"}"#,
            r#"{"type":"event","conversation_id":"c","seq":1,"kind":"message","from":{"role":"agent","id":"a","name":7}}"#,
            r#"{"type":"event","conversation_id":"c","seq":1,"kind":"joined","agent":{"id":"a","name":"\u0041"}}"#,
            r#"{"type":"event","conversation_id":"c","seq":1,"kind":"rating","score":-1,"comment":"caf\u00e9"}"#,
            r#"{"type":"event","conversation_id":"c","seq":1,"kind":"closed","by":{"role":"agent","id":"a","team":"x"}}"#,
        ] {
            assert!(In::parse_common(text).is_none(), "{text}");
            assert!(In::parse(text).is_ok(), "{text}");
            agrees(text);
        }
    }

    /// Every truncation and every one-character deletion of the hub's frames.
    #[test]
    fn damaged_frames_give_the_same_result_both_ways() {
        for frame in CHAT_FRAMES.into_iter().chain([STATUS_ACK]) {
            for (at, _) in frame.char_indices() {
                agrees(&frame[..at]);
                let mut damaged = frame.to_string();
                damaged.remove(at);
                agrees(&damaged);
            }
        }
    }

    #[test]
    fn writes_requests() {
        let text = Out::Message {
            req: "r2",
            conversation_id: "c_9f2",
            text: "hi",
            client_msg_id: "m-81",
        }
        .to_text()
        .expect("serializes");
        assert_eq!(
            text,
            r#"{"type":"message","req":"r2","conversation_id":"c_9f2","text":"hi","client_msg_id":"m-81"}"#
        );
        let hello = Out::Hello {
            role: "customer",
            token: None,
            session: None,
            name: None,
            echo: None,
        }
        .to_text()
        .expect("serializes");
        assert_eq!(hello, r#"{"type":"hello","role":"customer"}"#);
        let quiet = Out::Hello {
            role: "agent",
            token: Some("t"),
            session: None,
            name: None,
            echo: Some(false),
        }
        .to_text()
        .expect("serializes");
        assert_eq!(
            quiet,
            r#"{"type":"hello","role":"agent","token":"t","echo":false}"#
        );
    }
}
