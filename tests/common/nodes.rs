//! Helpers for tests of several hubs on one Redis or one Redis Cluster (`docs/protocol.md`,
//! "Several nodes"): which node routes (`GET /v1/nodes`), messages sent without waiting
//! for their acks (traffic a node dies under), and what a party ends up with — the events
//! it applied live by the contract's rule plus what `history` filled in.

use std::{collections::HashMap, time::Duration};

use serde_json::{json, Value};
use tokio::time::Instant;

use super::{eventually, seq_of, ty, Hub, Ws, ADMIN_TOKEN, WAIT};

/// How long another node may take to route after the routing node died or froze: the
/// lease (2.5 s) runs out, the next try (every 0.5 s) takes it; generous for a busy
/// machine.
pub const TAKEOVER: Duration = Duration::from_secs(15);

/// `GET /v1/nodes` as admin.
pub async fn nodes(hub: &Hub) -> Value {
    let (status, body) = hub
        .http_json("GET", "/v1/nodes", Some(ADMIN_TOKEN), None)
        .await;
    assert_eq!(status, 200, "GET /v1/nodes: {status} {body}");
    body
}

/// The node id of `hub` (`node` in its `/v1/nodes`).
pub async fn node_id(hub: &Hub) -> String {
    let body = nodes(hub).await;
    body["node"]
        .as_str()
        .unwrap_or_else(|| panic!("/v1/nodes without node: {body}"))
        .to_string()
}

/// The nodes `/v1/nodes` on `hub` marks as routing.
pub fn routing_ids(body: &Value) -> Vec<String> {
    body["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| n["routing"] == true)
        .filter_map(|n| n["id"].as_str().map(str::to_string))
        .collect()
}

/// Waits until `/v1/nodes` asked on `hub` lists `count` live nodes and says `router`
/// routes (and only it); returns the answer.
pub async fn wait_routing(hub: &Hub, router: &str, count: usize, timeout: Duration) -> Value {
    let what = format!("{router} routing among {count} live nodes");
    eventually(&what, timeout, || async {
        let body = nodes(hub).await;
        let listed = body["nodes"].as_array().map(Vec::len) == Some(count);
        (listed && body["routing"] == router && routing_ids(&body) == [router]).then_some(body)
    })
    .await
}

/// Two hubs on `redis_url`: the first routes (it takes the free lease at start-up), the
/// second does not. Returns them with their node ids.
pub async fn routing_and_other(redis_url: &str, config: &str) -> ((Hub, String), (Hub, String)) {
    let a = Hub::start_url(redis_url, config).await;
    let a_id = node_id(&a).await;
    wait_routing(&a, &a_id, 1, TAKEOVER).await;
    let b = Hub::start_url(redis_url, config).await;
    let b_id = node_id(&b).await;
    wait_routing(&b, &a_id, 2, TAKEOVER).await;
    ((a, a_id), (b, b_id))
}

/// One message sent without waiting for its ack.
#[derive(Clone, Debug)]
pub struct Sent {
    pub req: String,
    pub text: String,
    pub client_msg_id: String,
}

impl Sent {
    pub fn frame(&self, conversation_id: &str) -> Value {
        json!({"type": "message", "req": self.req, "conversation_id": conversation_id,
               "text": self.text, "client_msg_id": self.client_msg_id})
    }
}

/// Sends messages `"{who} {n}"` for `range`, back to back, without waiting for acks.
pub async fn pipeline(
    ws: &mut Ws,
    conversation_id: &str,
    who: &str,
    range: std::ops::Range<usize>,
) -> Vec<Sent> {
    let mut sent = Vec::new();
    for n in range {
        let message = Sent {
            req: ws.req(),
            text: format!("{who} {n}"),
            client_msg_id: format!("{who}-{n}"),
        };
        ws.send(message.frame(conversation_id)).await;
        sent.push(message);
    }
    sent
}

/// The `ack`/`error` for `req` among every frame `ws` received so far.
pub fn reply_seen<'a>(ws: &'a Ws, req: &str) -> Option<&'a Value> {
    ws.seen()
        .iter()
        .find(|f| matches!(ty(f), "ack" | "error") && f["req"] == req)
}

/// The seqs acknowledged to `ws` for `sent` so far: `(seq, text)`.
pub fn acked(ws: &Ws, sent: &[Sent]) -> Vec<(u64, String)> {
    sent.iter()
        .filter_map(|s| {
            reply_seen(ws, &s.req)
                .filter(|r| ty(r) == "ack")
                .map(|r| (seq_of(r), s.text.clone()))
        })
        .collect()
}

/// Waits for the ack of every message in `sent` on a live connection; returns
/// `(seq, text)` in sending order.
pub async fn wait_acks(ws: &mut Ws, sent: &[Sent], timeout: Duration) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    for s in sent {
        let what = format!("the ack for {} ({})", s.req, s.text);
        let reply = ws
            .wait_for_within(&what, timeout, |f| {
                matches!(ty(f), "ack" | "error") && f["req"] == s.req.as_str()
            })
            .await;
        assert_eq!(ty(&reply), "ack", "{}: {reply}", s.text);
        out.push((seq_of(&reply), s.text.clone()));
    }
    out
}

/// Reads (and keeps in `seen`) whatever arrives until the socket ends; fails when it
/// is still open after `timeout`.
pub async fn read_until_closed(ws: &mut Ws, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while ws.closed().is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "{}: the socket is still open after {timeout:?}",
            ws.name
        );
        // Buffered frames come back first; they are in `seen` already.
        let _frame = ws.next_frame(left.min(WAIT)).await;
    }
}

/// The events of `conversation_id` that a client applies from what `ws` received: each
/// one above the highest seq applied before it (the contract's rule), in arrival order.
pub fn applied(ws: &Ws, conversation_id: &str) -> Vec<Value> {
    apply(
        ws.seen()
            .iter()
            .filter(|f| ty(f) == "event" && f["conversation_id"] == conversation_id),
        0,
    )
}

/// `events` applied by the contract's rule after `after_seq`.
pub fn apply<'a>(events: impl IntoIterator<Item = &'a Value>, after_seq: u64) -> Vec<Value> {
    let mut highest = after_seq;
    let mut out = Vec::new();
    for event in events {
        let seq = seq_of(event);
        if seq > highest {
            highest = seq;
            out.push(event.clone());
        }
    }
    out
}

/// The highest seq among `events` (0 when empty).
pub fn last_seq(events: &[Value]) -> u64 {
    events.last().map(seq_of).unwrap_or(0)
}

/// Checks what one party ended up with: the seqs of `view` follow each other without a
/// gap, and every acknowledged `(seq, text)` from `from` its first seq on is in it
/// exactly once, holding that text.
pub fn assert_view_complete(who: &str, view: &[Value], acked: &[(u64, String)]) {
    let seqs: Vec<u64> = view.iter().map(seq_of).collect();
    let first = seqs.first().copied().unwrap_or(1);
    let expected: Vec<u64> = (first..first + seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "{who}: seqs out of order or with gaps");
    let by_seq: HashMap<u64, &Value> = view.iter().map(|e| (seq_of(e), e)).collect();
    for (seq, text) in acked.iter().filter(|(seq, _)| *seq >= first) {
        let event = by_seq
            .get(seq)
            .unwrap_or_else(|| panic!("{who}: acked seq {seq} ({text}) missing; saw {seqs:?}"));
        assert_eq!(event["text"], text.as_str(), "{who}: seq {seq}: {event}");
    }
}

/// Checks a conversation's whole history: gapless from 1, every text of `sent` stored at
/// most once, every acked `(seq, text)` at its seq.
pub fn assert_stored_once(history: &[Value], sent: &[&Sent], acked: &[(u64, String)]) {
    assert_view_complete("the stored history", history, acked);
    assert_eq!(history.first().map(seq_of), Some(1), "history from seq 1");
    for s in sent {
        let copies = history
            .iter()
            .filter(|e| e["text"] == s.text.as_str())
            .count();
        assert!(copies <= 1, "{} stored {copies} times", s.text);
    }
}

/// Sends `frame` (without `req`: each try gets a fresh one) until acknowledged, resending
/// after `unavailable` (the request was not applied); returns the ack.
pub async fn until_acked(ws: &mut Ws, frame: Value, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let reply = ws.request_within(frame.clone(), WAIT * 2).await;
        match ty(&reply) {
            "ack" => return reply,
            "error" if reply["code"] == "unavailable" => {}
            _ => panic!("{}: unexpected reply to {frame}: {reply}", ws.name),
        }
        assert!(
            Instant::now() < deadline,
            "{}: {frame} still unavailable after {timeout:?}: {reply}",
            ws.name
        );
        // Resend pacing, not synchronization: only a retry tells that it goes through.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `message` sent until acknowledged (same `client_msg_id` each time); returns its seq.
pub async fn say_until_acked(
    ws: &mut Ws,
    conversation_id: &str,
    text: &str,
    timeout: Duration,
) -> u64 {
    let frame = json!({"type": "message", "conversation_id": conversation_id, "text": text,
                       "client_msg_id": text});
    seq_of(&until_acked(ws, frame, timeout).await)
}

/// Waits until every thread of the process `pid` is stopped (after SIGSTOP): the
/// signal is sent at once, but a busy machine may take a moment to stop each thread.
pub async fn wait_frozen(pid: u32) {
    let what = format!("every thread of process {pid} stopped");
    eventually(&what, WAIT, || async move {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
        let mut all = true;
        for task in tasks.flatten() {
            let status = std::fs::read_to_string(task.path().join("status")).ok()?;
            let stopped = status
                .lines()
                .any(|l| l.starts_with("State:") && l.contains("T ("));
            all &= stopped;
        }
        all.then_some(())
    })
    .await;
}
