//! The protocol floor's steps: what `docs/protocol.md` asks of every message that the
//! durable floor does not do, added to it one at a time so that each step's cost is
//! measured on its own, in the same run as the durable floor and the hub (issue 19).
//!
//! - [`Obligations::Acks`]: the durable relay, and once Redis answered, the author also
//!   gets an `ack` naming its `req`: a second frame to a second socket per message, and
//!   each frame parsed for its `req`.
//! - [`Obligations::Sequenced`]: both ends of a pair write to one conversation, so one
//!   task per pair (the only writer of its stream, as the hub's conversation task) gives
//!   each message its `seq`, stores it under the explicit id `<seq>-0` in the protocol's
//!   stored form (`ts`, `kind`, `from`, `text`, `client_msg_id`), acks the author with the
//!   seq and sends the other end an `event` frame spliced from the stored form. The
//!   readers parse each frame into its fields and hand it to the pair's task.
//!
//! What stays out, because it is the product's and not the protocol's minimum: sessions,
//! permissions and flood limits, the index of seen `client_msg_id`s, metrics, tracing,
//! several nodes (the listeners read), the hub's own message types.

use std::borrow::Cow;

use anyhow::Context;
use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tracing::debug;

use super::{classify, Journal, Read, BATCH};
use crate::floor::Tx;

/// How much of the protocol the durable relay does per message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Obligations {
    /// Store, then forward the frame as it came: the durable floor of issue 19.
    #[default]
    Relay,
    /// Also ack every stored message to its author.
    Acks,
    /// Also give each message its conversation's `seq` in one task per pair, store the
    /// protocol's form under it, and deliver an `event` frame.
    Sequenced,
}

/// A message a reader hands to its pair's task, or the news that a side closed.
pub(crate) enum Posted {
    Message {
        side: usize,
        req: String,
        text: String,
        client_msg_id: String,
    },
    Closed {
        side: usize,
    },
}

pub(crate) type PairTx = mpsc::Sender<Posted>;

/// Room for posted messages per pair: a reader waits when its pair's task is this far
/// behind, as a hub reader waits on its conversation task.
const POSTED: usize = 256;

pub(crate) fn pair_channel() -> (PairTx, mpsc::Receiver<Posted>) {
    mpsc::channel(POSTED)
}

/// A client's `message` frame, as far as a protocol server must read it.
#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(borrow)]
    req: Cow<'a, str>,
    // Other frame types (skipped) have neither.
    #[serde(borrow, default)]
    text: Cow<'a, str>,
    #[serde(borrow, default)]
    client_msg_id: Cow<'a, str>,
}

/// The `req` of a client frame, for its ack.
#[derive(Deserialize)]
struct Req<'a> {
    #[serde(borrow)]
    req: Cow<'a, str>,
}

#[derive(Serialize)]
struct Ack<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    req: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
}

fn ack_frame(req: &str, seq: Option<u64>) -> anyhow::Result<Message> {
    let json = serde_json::to_string(&Ack {
        kind: "ack",
        req,
        seq,
    })?;
    Ok(Message::Text(json.into()))
}

#[derive(Serialize)]
struct Author<'a> {
    role: &'static str,
    id: &'a str,
}

/// The stored form of a message (the hub's is the same shape).
#[derive(Serialize)]
struct Stored<'a> {
    ts: u64,
    kind: &'static str,
    from: Author<'a>,
    text: &'a str,
    client_msg_id: &'a str,
}

/// The ack of a client frame stored by the durable relay ([`Obligations::Acks`]): its
/// `req`, read from the frame.
pub(crate) fn ack_of(frame: &Message) -> anyhow::Result<Message> {
    let req = serde_json::from_slice::<Req<'_>>(frame_bytes(frame))
        .context("a client frame without req")?;
    ack_frame(&req.req, None)
}

fn frame_bytes(frame: &Message) -> &[u8] {
    match frame {
        Message::Text(text) => text.as_bytes(),
        Message::Binary(bytes) => bytes,
        _ => &[],
    }
}

/// [`Obligations::Sequenced`]' reader loop: parse each message frame and post it to the
/// pair's task; say when the socket closed.
pub(crate) async fn post_parsed<S>(source: &mut S, side: usize, pair: &PairTx) -> anyhow::Result<()>
where
    S: Stream<Item = Result<Message, WsError>> + Unpin,
{
    let result = loop {
        let frame = match classify(source.next().await) {
            Read::Data(frame) => frame,
            Read::Skip => continue,
            Read::End(result) => break result,
        };
        let incoming: Incoming<'_> = match serde_json::from_slice(frame_bytes(&frame)) {
            Ok(incoming) => incoming,
            // Still say the side closed (below): the partner's socket must end too.
            Err(err) => break Err(anyhow::Error::new(err).context("a client frame")),
        };
        if incoming.kind != "message" {
            continue;
        }
        let posted = Posted::Message {
            side,
            req: incoming.req.into_owned(),
            text: incoming.text.into_owned(),
            client_msg_id: incoming.client_msg_id.into_owned(),
        };
        if pair.send(posted).await.is_err() {
            break Ok(());
        }
    };
    let _ = pair.send(Posted::Closed { side }).await;
    result
}

/// One pair's task: the only writer of the pair's stream. `writers[side]` is that side's
/// socket writer; a side's writer is let go when the OTHER side closes (as in the relay:
/// a socket ends when its partner's reader ends), and the task ends when both have.
pub(crate) async fn run_pair(
    journal: &Journal,
    key: String,
    conversation_id: String,
    writers: [Tx; 2],
    mut posted: mpsc::Receiver<Posted>,
) {
    let mut writers = writers.map(Some);
    let mut open = [true, true];
    let mut seq = 0u64;
    let mut batch: Vec<Posted> = Vec::with_capacity(BATCH);
    // Side 0 connected first: the floor's clients open the agent end first.
    let ids = [
        format!("{conversation_id}-a"),
        format!("{conversation_id}-c"),
    ];
    while open.iter().any(|o| *o) {
        let Some(first) = posted.recv().await else {
            break;
        };
        batch.push(first);
        while batch.len() < BATCH {
            match posted.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let ts = now_ms();
        let mut entries: Vec<(u64, String)> = Vec::with_capacity(batch.len());
        for item in &batch {
            if let Posted::Message {
                side,
                text,
                client_msg_id,
                ..
            } = item
            {
                seq += 1;
                let stored = Stored {
                    ts,
                    kind: "message",
                    from: Author {
                        role: if *side == 0 { "agent" } else { "customer" },
                        id: &ids[*side],
                    },
                    text,
                    client_msg_id,
                };
                match serde_json::to_string(&stored) {
                    Ok(json) => entries.push((seq, json)),
                    Err(err) => debug!(cause = %err, "cannot encode a stored message"),
                }
            }
        }
        let stored = entries.is_empty()
            || match journal.append_entries(&key, &entries).await {
                Ok(()) => true,
                Err(err) => {
                    debug!(cause = %format!("{err:#}"), "append failed; messages dropped");
                    false
                }
            };
        let mut entries = entries.into_iter();
        for item in batch.drain(..) {
            match item {
                Posted::Message { side, req, .. } => {
                    let Some((seq, json)) = entries.next() else {
                        continue;
                    };
                    if !stored {
                        continue;
                    }
                    if let (Some(author), Ok(ack)) = (&writers[side], ack_frame(&req, Some(seq))) {
                        let _ = author.send(ack).await;
                    }
                    if let Some(other) = &writers[1 - side] {
                        let event = event_frame(&conversation_id, seq, &json);
                        let _ = other.send(Message::Text(event.into())).await;
                    }
                }
                Posted::Closed { side } => {
                    open[side] = false;
                    writers[1 - side] = None;
                }
            }
        }
    }
}

/// The `event` frame of a stored message: its stored JSON with the frame's fields in
/// front, as the hub splices it (no second encoding of the body).
fn event_frame(conversation_id: &str, seq: u64, stored: &str) -> String {
    let body = stored.strip_prefix('{').unwrap_or(stored);
    let mut frame = String::with_capacity(stored.len() + conversation_id.len() + 48);
    frame.push_str("{\"type\":\"event\",\"conversation_id\":\"");
    frame.push_str(conversation_id);
    frame.push_str("\",\"seq\":");
    frame.push_str(&seq.to_string());
    frame.push(',');
    frame.push_str(body);
    frame
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Journal {
    /// Appends `entries` (seq, stored JSON) under their explicit ids `<seq>-0`, as ONE
    /// pipeline; `Ok` once Redis holds every one.
    async fn append_entries(&self, key: &str, entries: &[(u64, String)]) -> anyhow::Result<()> {
        let mut pipe = redis::pipe();
        for (seq, json) in entries {
            pipe.cmd("XADD")
                .arg(key)
                .arg(format!("{seq}-0"))
                .arg("e")
                .arg(json.as_str());
        }
        self.exec_counted(pipe, entries.len()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_frame_is_the_stored_form_with_the_frames_fields_in_front() {
        let stored = serde_json::to_string(&Stored {
            ts: 7,
            kind: "message",
            from: Author {
                role: "customer",
                id: "p1-c",
            },
            text: "hi \"there\"",
            client_msg_id: "m1",
        })
        .expect("json");
        let frame: serde_json::Value =
            serde_json::from_str(&event_frame("p1", 5, &stored)).expect("a JSON frame");
        assert_eq!(frame["type"], "event");
        assert_eq!(frame["conversation_id"], "p1");
        assert_eq!(frame["seq"], 5);
        assert_eq!(frame["ts"], 7);
        assert_eq!(frame["kind"], "message");
        assert_eq!(frame["from"]["role"], "customer");
        assert_eq!(frame["text"], "hi \"there\"");
        assert_eq!(frame["client_msg_id"], "m1");
        let ack: serde_json::Value = serde_json::from_str(
            ack_frame("r\"1", Some(5))
                .expect("ack")
                .to_text()
                .expect("text"),
        )
        .expect("a JSON ack");
        assert_eq!(ack["req"], "r\"1");
        assert_eq!(ack["seq"], 5);
    }
}
