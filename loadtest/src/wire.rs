//! The frames of the public protocol the harness uses, as serde types: [`Out`] is what a
//! simulated client sends, [`In`] what it reads. Only the fields the harness needs are
//! declared; unknown fields and unknown frame types are ignored, as a careful client
//! does. Nothing else in the crate builds or pokes at JSON.

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
    },
    Offer {
        offer_id: String,
        conversation_id: String,
        #[serde(default)]
        topic: String,
        #[serde(default)]
        preview: String,
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
    pub fn parse(text: &str) -> Result<In, serde_json::Error> {
        serde_json::from_str(text)
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
        }
        .to_text()
        .expect("serializes");
        assert_eq!(hello, r#"{"type":"hello","role":"customer"}"#);
    }
}
