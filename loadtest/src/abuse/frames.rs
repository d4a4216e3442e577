//! Oversized and malformed frames: after a `hello`, each connection from an attacker
//! address sends one bad frame (over the frame size limit, far over it, invalid JSON,
//! invalid UTF-8 in a text frame, a binary frame, a reserved opcode), or invalid JSON in
//! place of the `hello`, and records how the hub answered: a close code, an error code,
//! or nothing. The contract's answers are noted beside each case; the suite does not fail
//! on them (the parser's property tests do), it shows them and that the hub stays up.

use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::{
    protocol::frame::{
        coding::{Data, OpCode},
        Frame,
    },
    Message,
};

use super::{
    client::{answer, customer, Target},
    net::{anyhow_kind, ws_from},
    report::AttackReport,
};
use crate::{wire::Out, ws::Ws};

/// The cases, each with what the contract (or issue 15) expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// One byte over `max_frame_bytes`: close 1009.
    JustOverLimit,
    /// 2 MiB, over the hub's hard limit too: close 1009 (or the socket ends).
    FarOverLimit,
    /// Error `bad_request`, the socket stays open.
    InvalidJson,
    /// Close 4400.
    InvalidJsonAsHello,
    /// Close 1007.
    InvalidUtf8,
    /// Text frames only: close 1003 (or an error).
    Binary,
    /// Close 1002.
    ReservedOpcode,
}

pub const CASES: [Case; 7] = [
    Case::JustOverLimit,
    Case::FarOverLimit,
    Case::InvalidJson,
    Case::InvalidJsonAsHello,
    Case::InvalidUtf8,
    Case::Binary,
    Case::ReservedOpcode,
];

impl Case {
    pub fn label(self) -> &'static str {
        match self {
            Case::JustOverLimit => "frame 1 byte over the limit",
            Case::FarOverLimit => "2 MiB frame",
            Case::InvalidJson => "invalid JSON",
            Case::InvalidJsonAsHello => "invalid JSON as hello",
            Case::InvalidUtf8 => "invalid UTF-8 text",
            Case::Binary => "binary frame",
            Case::ReservedOpcode => "reserved opcode",
        }
    }

    pub fn expected(self) -> &'static str {
        match self {
            Case::JustOverLimit | Case::FarOverLimit => "close 1009",
            Case::InvalidJson => "error bad_request",
            Case::InvalidJsonAsHello => "close 4400",
            Case::InvalidUtf8 => "close 1007",
            // Not in the contract; decisions.md: a binary frame is read as text.
            Case::Binary => "ack, read as text",
            Case::ReservedOpcode => "close 1002",
        }
    }

    /// The bad frame, for a hub whose frame limit is `max_frame_bytes`.
    pub fn message(self, max_frame_bytes: usize) -> Message {
        match self {
            Case::JustOverLimit => Message::Text(padded_ping(max_frame_bytes + 1).into()),
            Case::FarOverLimit => Message::Text(padded_ping(2 << 20).into()),
            Case::InvalidJson | Case::InvalidJsonAsHello => {
                Message::Text(r#"{"type":"ping","req":"#.into())
            }
            Case::InvalidUtf8 => Message::Frame(Frame::message(
                b"{\"type\":\"ping\",\"req\":\"\xff\xfe\"}".to_vec(),
                OpCode::Data(Data::Text),
                true,
            )),
            Case::Binary => Message::Binary(br#"{"type":"ping","req":"b"}"#.to_vec().into()),
            Case::ReservedOpcode => Message::Frame(Frame::message(
                b"{}".to_vec(),
                OpCode::Data(Data::Reserved(3)),
                true,
            )),
        }
    }
}

/// A well-formed `ping` padded with spaces to exactly `len` bytes.
fn padded_ping(len: usize) -> String {
    let mut text = String::from(r#"{"type":"ping","req":"big"}"#);
    let pad = len.saturating_sub(text.len());
    text.insert_str(1, &" ".repeat(pad));
    text
}

async fn one(target: Target, case: Case, i: usize, max_frame_bytes: usize) -> String {
    let local = target.addrs.attacker(i);
    let mut ws = if case == Case::InvalidJsonAsHello {
        match ws_from(local, target.hub, &target.endpoints.customer_ws, None).await {
            Ok(stream) => Ws::from_stream(stream, &target.ids),
            Err(err) => return format!("open: {}", err.kind()),
        }
    } else {
        match customer(&target, local, None, None).await {
            Ok((ws, _)) => ws,
            Err(kind) => return format!("open: {kind}"),
        }
    };
    if let Err(err) = ws.send_raw(case.message(max_frame_bytes)).await {
        return format!("send: {}", anyhow_kind(&err));
    }
    // The binary frame carries a `ping` with `req` "b": the hub reads it as text.
    let first = answer(&mut ws, (case == Case::Binary).then_some("b"))
        .await
        .kind();
    if case != Case::InvalidJson || first != "error bad_request" {
        return first;
    }
    // The socket should still serve requests.
    let req = ws.req();
    if ws.send(&Out::Ping { req: &req }).await.is_err() {
        return format!("{first}, then the socket was gone");
    }
    let then = answer(&mut ws, Some(&req)).await.kind();
    ws.close().await;
    format!("{first}, then {then} to a ping")
}

pub async fn run(target: &Target, per_case: usize, max_frame_bytes: usize) -> AttackReport {
    let started = tokio::time::Instant::now();
    let mut tasks = JoinSet::new();
    for (c, case) in CASES.into_iter().enumerate() {
        for k in 0..per_case {
            let target = target.clone();
            tasks.spawn(async move {
                let outcome = one(target, case, c * per_case + k, max_frame_bytes).await;
                (case, outcome)
            });
        }
    }
    let mut report = AttackReport {
        name: "oversized and malformed frames".into(),
        sent: format!(
            "{per_case} connection(s) per case from {} addresses: {} (frame limit taken as {max_frame_bytes} B)",
            target.addrs.attacker_count(),
            CASES.map(Case::label).join(", ")
        ),
        ..AttackReport::default()
    };
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((case, outcome)) => report.answers.add(format!(
                "{}: {outcome} (expected: {})",
                case.label(),
                case.expected()
            )),
            Err(err) => report.answers.add(format!("task failed: {err}")),
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_frames_are_what_they_say() {
        match Case::JustOverLimit.message(65_536) {
            Message::Text(text) => {
                assert_eq!(text.len(), 65_537);
                assert!(serde_json::from_str::<serde_json::Value>(text.as_str()).is_ok());
            }
            other => panic!("not text: {other:?}"),
        }
        match Case::InvalidUtf8.message(1) {
            Message::Frame(frame) => {
                assert!(std::str::from_utf8(frame.payload()).is_err());
                assert_eq!(frame.header().opcode, OpCode::Data(Data::Text));
            }
            other => panic!("not a raw frame: {other:?}"),
        }
        match Case::InvalidJson.message(1) {
            Message::Text(text) => {
                assert!(serde_json::from_str::<serde_json::Value>(text.as_str()).is_err())
            }
            other => panic!("not text: {other:?}"),
        }
        assert!(matches!(Case::Binary.message(1), Message::Binary(_)));
        assert_eq!(CASES.len(), 7);
    }
}
