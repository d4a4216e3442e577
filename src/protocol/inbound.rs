//! Parsing a client's text frame: once, into a typed [`ClientFrame`], keeping the `req`
//! of a frame that fails so the error can be matched to its request.

use serde::Deserialize;
use serde_json::Value;

use super::{ClientFrame, MAX_REQ_LEN};

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

    pub(super) fn parse_general(text: &str) -> Result<Inbound, ParseFailure> {
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
    pub(super) fn parse_message(text: &str) -> Option<Inbound> {
        #[derive(Deserialize)]
        struct MessageFrame<'a> {
            #[serde(rename = "type", borrow)]
            kind: &'a str,
            req: Option<String>,
            conversation_id: String,
            #[serde(default)]
            text: String,
            client_msg_id: Option<String>,
            attachment: Option<String>,
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
                attachment: frame.attachment,
            },
        })
    }
}
