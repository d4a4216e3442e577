//! Connection-level promises no other test held the hub to (`docs/decisions.md`,
//! "Transport and limits"; `docs/protocol.md`, additions):
//!
//! - a client from which nothing arrives, not even a pong, for `limits.idle_timeout_ms` is
//!   closed with 1001, while a silent client that answers the server's pings stays;
//! - a `hello` while Redis is down (killed or hung) is closed with 1013, "storage
//!   unavailable", and the same `hello` works once Redis is back;
//! - the rate limit counts every client frame except `ping`.
//!
//! tungstenite answers pings by itself whenever the socket is read, so the client that
//! must not answer them is a minimal WebSocket client written here ([`RawWs`]): it does
//! the handshake, sends masked text frames and reads the server's frames, and never sends
//! a pong.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::Instant,
};

// ---------------------------------------------------------------------------------------
// A WebSocket client that never answers pings
// ---------------------------------------------------------------------------------------

/// One frame from the server.
enum RawFrame {
    Text(String),
    Ping,
    Close { code: Option<u16>, reason: String },
    Other(u8),
}

struct RawWs {
    stream: TcpStream,
    /// Bytes read but not yet parsed.
    buf: Vec<u8>,
}

impl RawWs {
    async fn connect(hub: &Hub, path: &str) -> RawWs {
        let addr = hub.addr();
        let mut stream = TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("connect to the hub at {addr}: {e}"));
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .expect("send the upgrade request");
        let mut raw = RawWs {
            stream,
            buf: Vec::new(),
        };
        let deadline = Instant::now() + WAIT;
        let head_end = loop {
            if let Some(at) = raw.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            assert!(
                raw.fill(deadline).await,
                "no upgrade response from the hub; got {:?}",
                String::from_utf8_lossy(&raw.buf)
            );
        };
        let head = String::from_utf8_lossy(&raw.buf[..head_end]).to_string();
        assert!(
            head.starts_with("HTTP/1.1 101"),
            "the hub did not switch protocols: {head}"
        );
        raw.buf.drain(..head_end);
        raw
    }

    /// Reads more bytes into the buffer; false on end of stream, error or deadline.
    async fn fill(&mut self, deadline: Instant) -> bool {
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            _ => false,
        }
    }

    /// Sends a text frame, masked as a client must.
    async fn send_text(&mut self, text: &str) {
        let payload = text.as_bytes();
        let mask = [0x37u8, 0xfa, 0x21, 0x3d];
        let mut frame = vec![0x81u8];
        match payload.len() {
            len @ 0..=125 => frame.push(0x80 | len as u8),
            len @ 126..=0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(len as u16).to_be_bytes());
            }
            len => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream
            .write_all(&frame)
            .await
            .expect("send a text frame");
    }

    /// The next whole frame, or `None` when the stream ends or `deadline` passes first.
    async fn next_frame(&mut self, deadline: Instant) -> Option<RawFrame> {
        loop {
            if let Some((opcode, payload, used)) = parse_frame(&self.buf) {
                self.buf.drain(..used);
                return Some(match opcode {
                    0x1 => RawFrame::Text(String::from_utf8_lossy(&payload).to_string()),
                    0x9 => RawFrame::Ping,
                    0x8 => RawFrame::Close {
                        code: (payload.len() >= 2)
                            .then(|| u16::from_be_bytes([payload[0], payload[1]])),
                        reason: String::from_utf8_lossy(payload.get(2..).unwrap_or(&[]))
                            .to_string(),
                    },
                    other => RawFrame::Other(other),
                });
            }
            if !self.fill(deadline).await {
                return None;
            }
        }
    }
}

/// `(opcode, payload, bytes used)` of the first whole (unmasked, server) frame in `buf`.
fn parse_frame(buf: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    let (&b0, &b1) = (buf.first()?, buf.get(1)?);
    let masked = b1 & 0x80 != 0;
    let (len, mut at) = match b1 & 0x7f {
        126 => (u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]) as usize, 4),
        127 => {
            let bytes: [u8; 8] = buf.get(2..10)?.try_into().ok()?;
            (u64::from_be_bytes(bytes) as usize, 10)
        }
        len => (len as usize, 2),
    };
    let mask = if masked {
        let key: [u8; 4] = buf.get(at..at + 4)?.try_into().ok()?;
        at += 4;
        Some(key)
    } else {
        None
    };
    let mut payload = buf.get(at..at + len)?.to_vec();
    if let Some(key) = mask {
        for (i, byte) in payload.iter_mut().enumerate() {
            *byte ^= key[i % 4];
        }
    }
    Some((b0 & 0x0f, payload, at + len))
}

/// What the raw client saw until the server closed the connection.
struct Ending {
    code: Option<u16>,
    reason: String,
    pings: usize,
    texts: Vec<Value>,
    /// When the Close frame was read.
    at: Instant,
}

/// Reads (never answering pings) until the server's Close frame; fails after `timeout`.
async fn read_until_close(raw: &mut RawWs, timeout: Duration) -> Ending {
    let deadline = Instant::now() + timeout;
    let mut pings = 0;
    let mut texts = Vec::new();
    loop {
        match raw.next_frame(deadline).await {
            Some(RawFrame::Text(text)) => texts.push(
                serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("a text frame that is not JSON ({e}): {text}")),
            ),
            Some(RawFrame::Ping) => pings += 1,
            Some(RawFrame::Other(opcode)) => panic!("unexpected frame with opcode {opcode}"),
            Some(RawFrame::Close { code, reason }) => {
                return Ending {
                    code,
                    reason,
                    pings,
                    texts,
                    at: Instant::now(),
                }
            }
            None => panic!(
                "no Close frame within {timeout:?} (pings {pings}, texts {texts:?}): the \
                 connection was neither closed nor ended"
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Idle timeout
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_client_that_answers_no_ping_is_closed_1001_after_the_idle_timeout() {
    const PING_MS: u64 = 200;
    const IDLE_MS: u64 = 1000;
    let config = TestConfig::default()
        .limit("ping_interval_ms", PING_MS)
        .limit("idle_timeout_ms", IDLE_MS);
    let (_redis, hub) = setup_with(config).await;

    // A silent client that does answer pings (tungstenite does, while it reads).
    let (mut answering, _) = hub.customer(json!({"name": "Pong"})).await;
    answering.name = "customer answering pings".into();

    // A client that says hello and then nothing, not even a pong.
    let mut raw = RawWs::connect(&hub, "/v1/customer/ws").await;
    raw.send_text(&json!({"type": "hello", "role": "customer", "name": "Mute"}).to_string())
        .await;
    let last_sent = Instant::now();

    let silent_for = Duration::from_millis(3 * IDLE_MS);
    let (ending, ()) = tokio::join!(
        read_until_close(&mut raw, Duration::from_millis(IDLE_MS) + WAIT),
        // Only the Close frame the other client gets is awaited; this one must stay.
        answering.expect_silence(silent_for),
    );
    let closed_after = ending.at - last_sent;

    assert_eq!(
        ending.texts.iter().map(ty).collect::<Vec<_>>(),
        vec!["welcome"],
        "{:?}",
        ending.texts
    );
    assert_eq!(
        ending.code,
        Some(1001),
        "close of a client that never pongs (reason {:?})",
        ending.reason
    );
    assert!(
        ending.pings >= 2,
        "the server sent {} pings in {closed_after:?} with a {PING_MS} ms interval",
        ending.pings
    );
    assert!(
        closed_after >= Duration::from_millis(IDLE_MS),
        "closed after {closed_after:?}, before the {IDLE_MS} ms idle timeout"
    );
    // Checked every ping interval: closed within one interval of the timeout, plus
    // scheduling slack on a busy machine.
    let latest = Duration::from_millis(IDLE_MS + PING_MS + 1000);
    assert!(
        closed_after <= latest,
        "closed after {closed_after:?}, later than {latest:?}"
    );

    // The client that answered pings, silent three times as long, is still served.
    answering.ping().await;
    assert!(answering.closed().is_none(), "{:?}", answering.closed());
}

// ---------------------------------------------------------------------------------------
// Redis down during hello
// ---------------------------------------------------------------------------------------

/// Sends `hello` on a fresh connection: `Ok(welcome)`, or `Err(close)` when the hub
/// closes instead.
async fn try_hello(hub: &Hub, path: &str, hello: &Value) -> Result<Value, Closed> {
    let mut ws = Ws::connect(hub, path, "hello while redis is down").await;
    ws.send(hello.clone()).await;
    match ws.next_frame(WAIT).await {
        Some(frame) if ty(&frame) == "welcome" => Ok(frame),
        Some(frame) => panic!("expected a welcome or a close after {hello}, got {frame}"),
        None => Err(ws
            .closed()
            .cloned()
            .unwrap_or_else(|| panic!("no answer to {hello} within {WAIT:?}"))),
    }
}

fn assert_storage_unavailable(closed: &Closed, what: &str) {
    assert_eq!(closed.code, Some(1013), "{what}: {closed:?}");
    assert!(
        closed.reason.contains("storage unavailable"),
        "{what}: the close reason should say storage is unavailable: {closed:?}"
    );
}

/// Retries `hello` (as a client told 1013 would) until a welcome comes back.
async fn hello_after_recovery(hub: &Hub, path: &str, hello: &Value) -> Value {
    let what = format!("a welcome for {hello} once Redis is back");
    eventually(&what, Duration::from_secs(20), || async {
        match try_hello(hub, path, hello).await {
            Ok(welcome) => Some(welcome),
            Err(closed) => {
                assert_storage_unavailable(&closed, "hello while Redis comes back");
                None
            }
        }
    })
    .await
}

#[tokio::test]
async fn hello_while_redis_is_killed_closes_1013_storage_unavailable() {
    let (mut redis, hub) = setup_with(TestConfig::default().limit("store_timeout_ms", 500)).await;
    let token = hub.create_agent("alice", "Alice", &[], 3, false).await;
    let customer_hello = json!({"type": "hello", "role": "customer", "name": "Ann"});
    let agent_hello = json!({"type": "hello", "role": "agent", "token": token});

    redis.kill();
    let closed = try_hello(&hub, "/v1/customer/ws", &customer_hello)
        .await
        .expect_err("a customer welcome without Redis");
    assert_storage_unavailable(&closed, "customer hello, Redis killed");
    let closed = try_hello(&hub, "/v1/agent/ws", &agent_hello)
        .await
        .expect_err("an agent welcome without Redis");
    assert_storage_unavailable(&closed, "agent hello, Redis killed");

    redis.restart().await;
    let welcome = hello_after_recovery(&hub, "/v1/customer/ws", &customer_hello).await;
    assert!(welcome["session"].is_string(), "{welcome}");
    let welcome = hello_after_recovery(&hub, "/v1/agent/ws", &agent_hello).await;
    assert_eq!(welcome["agent"]["id"], "alice", "{welcome}");
}

#[tokio::test]
async fn hello_while_redis_hangs_closes_1013_within_the_store_timeout() {
    const STORE_TIMEOUT_MS: u64 = 500;
    let config = TestConfig::default().limit("store_timeout_ms", STORE_TIMEOUT_MS);
    let (redis, hub) = setup_with(config).await;
    let token = hub.create_agent("alice", "Alice", &[], 3, false).await;
    let agent_hello = json!({"type": "hello", "role": "agent", "token": token});

    redis.stop();
    let asked = Instant::now();
    let closed = try_hello(&hub, "/v1/agent/ws", &agent_hello).await;
    let took = asked.elapsed();
    redis.cont();
    let closed = closed.expect_err("an agent welcome while Redis hangs");
    assert_storage_unavailable(&closed, "agent hello, Redis hung");
    // `try_hello` waits WAIT at most; the store timeout (and a retry on a broken
    // connection) bounds it well below that.
    assert!(
        took < Duration::from_millis(4 * STORE_TIMEOUT_MS + 1000),
        "the 1013 came {took:?} after hello"
    );

    let welcome = hello_after_recovery(&hub, "/v1/agent/ws", &agent_hello).await;
    assert_eq!(welcome["agent"]["id"], "alice", "{welcome}");
}

// ---------------------------------------------------------------------------------------
// Rate limit
// ---------------------------------------------------------------------------------------

/// Sends every frame at once, then collects their replies in order.
async fn burst(ws: &mut Ws, frames: Vec<Value>) -> Vec<Value> {
    let mut reqs = Vec::new();
    for mut frame in frames {
        let req = ws.req();
        frame["req"] = json!(req);
        ws.send(frame).await;
        reqs.push(req);
    }
    let mut replies = Vec::new();
    for req in reqs {
        let what = format!("the reply to {req}");
        replies.push(
            ws.wait_for(&what, |f| {
                matches!(ty(f), "ack" | "error") && f["req"] == req.as_str()
            })
            .await,
        );
    }
    replies
}

fn outcome(reply: &Value) -> String {
    match ty(reply) {
        "ack" => "ack".to_string(),
        _ => reply["code"].as_str().unwrap_or("?").to_string(),
    }
}

#[tokio::test]
async fn pings_do_not_count_against_the_rate_limit_and_other_frames_do() {
    const LIMIT: usize = 4;
    const PINGS: usize = 40;
    let (_redis, hub) = setup_with(TestConfig::default().limit("messages_per_10s", LIMIT)).await;
    let (mut ws, _) = hub.customer(json!({})).await;
    // Frame 1 of the window.
    let conv = ws.start_chat("general", "hi").await;

    // Ten times the limit in pings, in one burst: every one acknowledged.
    let replies = burst(&mut ws, vec![json!({"type": "ping"}); PINGS]).await;
    let refused: Vec<&Value> = replies.iter().filter(|r| ty(r) != "ack").collect();
    assert!(
        refused.is_empty(),
        "{} of {PINGS} pings refused with a limit of {LIMIT}: {refused:?}",
        refused.len()
    );

    // A normal frame still goes through (frame 2 of the window).
    let seq = ws.say(&conv, "after the pings").await;
    assert_eq!(seq, 2);

    // Non-ping frames count: frames 3 and 4 pass, the rest are refused, whatever their
    // type (a message, a typing with req, a history).
    let message = |text: &str| json!({"type": "message", "conversation_id": conv, "text": text});
    let frames = vec![
        message("three"),
        json!({"type": "typing", "conversation_id": conv, "on": true}),
        message("five"),
        json!({"type": "typing", "conversation_id": conv, "on": false}),
        json!({"type": "history", "conversation_id": conv, "after_seq": 0}),
    ];
    let replies = burst(&mut ws, frames).await;
    assert_eq!(
        replies.iter().map(outcome).collect::<Vec<_>>(),
        vec!["ack", "ack", "rate_limited", "rate_limited", "rate_limited"],
        "with {LIMIT} frames per 10 s and 2 used: {replies:?}"
    );

    // Pings are still answered while every other frame is refused, and the socket stays.
    let replies = burst(&mut ws, vec![json!({"type": "ping"}); PINGS]).await;
    assert!(
        replies.iter().all(|r| ty(r) == "ack"),
        "pings refused while the window is full: {replies:?}"
    );
    assert!(ws.closed().is_none(), "{:?}", ws.closed());
}

#[tokio::test]
async fn frames_that_fail_to_parse_count_against_the_rate_limit_too() {
    const LIMIT: usize = 4;
    let (_redis, hub) = setup_with(TestConfig::default().limit("messages_per_10s", LIMIT)).await;
    let (mut ws, _) = hub.customer(json!({})).await;
    // Frame 1 of the window.
    let conv = ws.start_chat("general", "hi").await;

    // "Every client frame except ping counts": frames 2 to 4 are answered for what they
    // are (bad_request), the ones beyond the limit are refused unread.
    let frames = vec![
        json!({"type": "no_such_type"}),
        json!({"type": "message", "conversation_id": conv}),
        json!({"type": "no_such_type"}),
        json!({"type": "message", "conversation_id": conv}),
        json!({"type": "no_such_type"}),
    ];
    let replies = burst(&mut ws, frames).await;
    assert_eq!(
        replies.iter().map(outcome).collect::<Vec<_>>(),
        vec![
            "bad_request",
            "bad_request",
            "bad_request",
            "rate_limited",
            "rate_limited"
        ],
        "with {LIMIT} frames per 10 s and 1 used: {replies:?}"
    );
    // The window is full: a well-formed frame is refused too.
    ws.err(
        json!({"type": "message", "conversation_id": conv, "text": "over the limit"}),
        "rate_limited",
    )
    .await;
}
