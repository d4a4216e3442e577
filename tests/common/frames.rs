//! Generators of client frames for property tests: JSON of the right and wrong shapes for
//! every `ClientFrame` type, and mutations of a frame's text (truncation, byte
//! insertion, deletion), shared by the parser properties and the socket properties.

use proptest::{collection, prelude::*, sample};
use serde_json::{Map, Value};

/// Every `type` the contract and its additions name, plus a few that do not exist.
pub const TYPES: &[&str] = &[
    "hello",
    "start",
    "message",
    "history",
    "typing",
    "read",
    "ping",
    "close",
    "rate",
    "offline_message",
    "status",
    "accept",
    "decline",
    "transfer",
    "note",
    "monitor",
    "unmonitor",
    "dance",
    "",
    "Message",
    "ack",
];

/// Every field name a client frame has, plus a few unknown ones.
pub const FIELDS: &[&str] = &[
    "role",
    "token",
    "session",
    "name",
    "email",
    "identity",
    "topic",
    "text",
    "metadata",
    "conversation_id",
    "client_msg_id",
    "after_seq",
    "limit",
    "on",
    "seq",
    "resolution",
    "tags",
    "score",
    "comment",
    "status",
    "offer_id",
    "to_agent",
    "to_topic",
    "note",
    "user_id",
    "signature",
    "issued_at",
    "bogus",
];

/// Any JSON value, a few levels deep, with strings of any Unicode.
pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e9f64..1e9).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        sample::select(vec![
            "c_0000000000000000",
            "customer",
            "available",
            "general",
            "a@x.io"
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            collection::btree_map(".{0,6}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A `req` of every shape: mostly a valid string, sometimes too long or not a string.
pub fn req_value() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        6 => "[a-z0-9]{1,12}".prop_map(|r| Some(Value::from(r))),
        1 => Just(None),
        1 => ".{60,70}".prop_map(|r| Some(Value::from(r))),
        1 => json_value().prop_map(Some),
    ]
}

/// A frame-shaped object: a known (or unknown) `type`, a `req`, and fields of the
/// frame types with values of any shape.
pub fn frame_object() -> impl Strategy<Value = Value> {
    (
        prop_oneof![
            8 => sample::select(TYPES).prop_map(Value::from),
            1 => json_value(),
        ],
        req_value(),
        collection::btree_map(sample::select(FIELDS), json_value(), 0..6),
        any::<bool>(),
    )
        .prop_map(|(kind, req, fields, with_type)| {
            let mut object = Map::new();
            if with_type {
                object.insert("type".into(), kind);
            }
            if let Some(req) = req {
                object.insert("req".into(), req);
            }
            for (key, value) in fields {
                object.insert(key.to_string(), value);
            }
            Value::Object(object)
        })
}

/// A well-formed frame of each type, with plausible field values.
pub fn plausible_frame() -> impl Strategy<Value = Value> {
    let id = sample::select(vec!["c_0000000000000000", "o_1", "alice", ""]);
    let text = ".{0,40}";
    prop_oneof![
        (text, id.clone()).prop_map(|(t, c)| serde_json::json!({"type": "message", "conversation_id": c, "text": t})),
        text.prop_map(|t| serde_json::json!({"type": "start", "text": t, "metadata": {"k": t}})),
        (id.clone(), any::<u64>(), 0usize..2000).prop_map(|(c, a, l)| serde_json::json!({"type": "history", "conversation_id": c, "after_seq": a, "limit": l})),
        (id.clone(), any::<bool>()).prop_map(|(c, on)| serde_json::json!({"type": "typing", "conversation_id": c, "on": on})),
        (id.clone(), any::<u64>()).prop_map(|(c, s)| serde_json::json!({"type": "read", "conversation_id": c, "seq": s})),
        Just(serde_json::json!({"type": "ping"})),
        (id.clone(), collection::vec(text, 0..3)).prop_map(|(c, tags)| serde_json::json!({"type": "close", "conversation_id": c, "tags": tags})),
        (id.clone(), any::<u8>(), text).prop_map(|(c, s, t)| serde_json::json!({"type": "rate", "conversation_id": c, "score": s, "comment": t})),
        (text, text).prop_map(|(e, t)| serde_json::json!({"type": "offline_message", "email": e, "text": t})),
        id.clone().prop_map(|o| serde_json::json!({"type": "accept", "offer_id": o})),
        id.clone().prop_map(|c| serde_json::json!({"type": "monitor", "conversation_id": c})),
        (id, text).prop_map(|(c, t)| serde_json::json!({"type": "note", "conversation_id": c, "text": t})),
        Just(serde_json::json!({"type": "status", "status": "available"})),
        Just(serde_json::json!({"type": "hello", "role": "customer"})),
    ]
}

/// A mutation of a frame's bytes.
#[derive(Debug, Clone)]
pub enum Mutation {
    Truncate(usize),
    Insert(usize, u8),
    Delete(usize),
    Replace(usize, u8),
}

pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Insert(at, b)),
        any::<usize>().prop_map(Mutation::Delete),
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Replace(at, b)),
    ]
}

/// Applies mutations to `text`'s bytes; the result may be invalid UTF-8 (truncated in
/// the middle of a character, say), so it is read the way the hub reads a binary frame.
pub fn mutate(text: &str, mutations: &[Mutation]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for mutation in mutations {
        let len = bytes.len();
        match *mutation {
            Mutation::Truncate(at) => bytes.truncate(at % (len + 1)),
            Mutation::Insert(at, b) => bytes.insert(at % (len + 1), b),
            Mutation::Delete(at) if len > 0 => {
                bytes.remove(at % len);
            }
            Mutation::Replace(at, b) if len > 0 => bytes[at % len] = b,
            _ => {}
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The `req` the hub must answer for `text`: a JSON object's `req` when it is a string
/// of at most 64 characters.
pub fn readable_req(text: &str) -> Option<String> {
    let value: Value = serde_json::from_str(text).ok()?;
    match value.as_object()?.get("req")? {
        Value::String(req) if req.chars().count() <= 64 => Some(req.clone()),
        _ => None,
    }
}
