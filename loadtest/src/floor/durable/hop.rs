//! The durable floor across two nodes (issue 19's cross-node target): two relays, each on
//! a runtime of its own, on one Redis. A pair's agent end is on the first node and its
//! customer end on the second, so every frame crosses, as every message does in the
//! hub's cross-node benchmark (agents on node a, customers on node b).
//!
//! The node that reads a frame appends it to the pair's stream and, in the same
//! pipeline, publishes it to the other node's channel: one round trip, and Redis runs the
//! `PUBLISH` after the `XADD`s, so a frame reaches the other node only once stored. The
//! other node's subscribing connection (RESP3) hands each push to the pair's socket
//! writer on the connection's own task, with no queue or task between them, as the hub's
//! live feed does. That is the least a server of several nodes can do to relay a message
//! durably from one node to another. Beside the one-node durable floor at the same load,
//! it says what the hop costs any server on this machine.
//!
//! This module owns a node's sockets by pair, the push handler, and the form of what one
//! node publishes to the other.

use std::{
    collections::HashMap,
    io::Write,
    sync::{atomic::Ordering, Arc, LazyLock, Mutex},
    time::Duration,
};

use anyhow::Context;
use futures_util::StreamExt;
use redis::{PushInfo, PushKind, Value};
use tokio::{net::TcpStream, sync::mpsc};
use tokio_tungstenite::tungstenite::Message;
use tracing::debug;

use super::{read_batch, Journal, BATCH};
use crate::floor::{accept, spawn_writer, Tx, QUEUE};

/// How a node sends a batch to the other node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HopPublish {
    /// `XADD`s and a `PUBLISH` in one pipeline: the least Redis can do. Redis runs the
    /// `PUBLISH` even when an `XADD` failed, which only a relay that never refuses an
    /// append can afford.
    Pipeline,
    /// The same commands in a script that publishes only once every `XADD` went in: the
    /// least a server can do whose appends may be refused (the hub's stream fence, where
    /// two nodes write one conversation), since Redis has no conditional `PUBLISH`.
    Script,
}

/// A node of two: the channel it subscribes to, the other node's, and how it publishes.
#[derive(Debug, Clone)]
pub struct HopSpec {
    pub own: String,
    pub peer: String,
    pub publish: HopPublish,
}

impl HopSpec {
    /// Node `node` (`'a'` or `'b'`) in the run tagged `tag`.
    pub fn of(tag: &str, node: char, publish: HopPublish) -> HopSpec {
        let other = if node == 'a' { 'b' } else { 'a' };
        HopSpec {
            own: format!("floor:{{{tag}}}:node-{node}"),
            peer: format!("floor:{{{tag}}}:node-{other}"),
            publish,
        }
    }
}

/// [`HopPublish::Script`]: KEYS: the pair's stream; ARGV: the channel, the published
/// batch, then each frame. A failed `XADD` ends the script before the `PUBLISH`.
static APPEND_AND_PUBLISH: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
for i = 3, #ARGV do redis.call('XADD', KEYS[1], '*', 'm', ARGV[i]) end
return redis.call('PUBLISH', ARGV[1], ARGV[2])
",
    )
});

/// What the push handler reaches: the node's sockets by pair, and the journal that counts
/// a frame no socket was there to take as failed.
struct Sockets {
    /// A std `Mutex`: held for one map operation, never across an `.await`.
    by_pair: Mutex<HashMap<String, Tx>>,
    journal: Arc<Journal>,
}

impl Sockets {
    fn insert(&self, pair: String, tx: Tx) {
        self.lock().insert(pair, tx);
    }

    fn remove(&self, pair: &str) {
        self.lock().remove(pair);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Tx>> {
        self.by_pair.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A push from the other node: a batch of frames for one of our sockets, or, with no
    /// frames, the news that the pair's other end closed. Runs on the subscribing
    /// connection's task, so it never waits: a socket whose queue is full loses the frame,
    /// and the run counts it as failed.
    fn on_push(&self, info: PushInfo) {
        if info.kind != PushKind::Message {
            return;
        }
        let Some(Value::BulkString(payload)) = info.data.into_iter().nth(1) else {
            return;
        };
        let Some((pair, frames)) = decode(&payload) else {
            debug!("an unreadable push from the other node");
            self.journal.failed.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if frames.is_empty() {
            // Dropping the sender ends the writer once it has written what it holds.
            self.remove(pair);
            return;
        }
        let tx = self.lock().get(pair).cloned();
        let mut lost = 0;
        for frame in frames {
            let delivered = match (&tx, std::str::from_utf8(frame)) {
                (Some(tx), Ok(text)) => tx.try_send(Message::Text(text.into())).is_ok(),
                _ => false,
            };
            if !delivered {
                lost += 1;
            }
        }
        if lost > 0 {
            self.journal.failed.fetch_add(lost, Ordering::Relaxed);
        }
    }
}

/// One node of the two.
pub struct HopNode {
    sockets: Arc<Sockets>,
    peer_channel: String,
    publish: HopPublish,
    /// The subscribing connection, open for as long as the node runs.
    _feed: redis::aio::MultiplexedConnection,
}

impl HopNode {
    /// Subscribes to the node's own channel. The connection's task runs on the runtime
    /// this is called on (the relay's), so its CPU is the relay's.
    pub async fn connect(
        redis_url: &str,
        spec: HopSpec,
        journal: Arc<Journal>,
    ) -> anyhow::Result<Arc<HopNode>> {
        let sockets = Arc::new(Sockets {
            by_pair: Mutex::default(),
            journal,
        });
        let handler = Arc::clone(&sockets);
        let push = move |info: PushInfo| {
            handler.on_push(info);
            Ok::<(), std::convert::Infallible>(())
        };
        let separator = if redis_url.contains('?') { '&' } else { '?' };
        let client = redis::Client::open(format!("{redis_url}{separator}protocol=resp3"))
            .context("the Redis URL")?;
        let config = redis::AsyncConnectionConfig::new()
            .set_push_sender(push)
            .set_connection_timeout(Some(Duration::from_secs(5)));
        let mut feed = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .context("connect the node's subscription")?;
        feed.subscribe(&spec.own)
            .await
            .context("SUBSCRIBE the node's channel")?;
        Ok(Arc::new(HopNode {
            sockets,
            peer_channel: spec.peer,
            publish: spec.publish,
            _feed: feed,
        }))
    }
}

/// What a node publishes: `<pair>\n`, then each frame as `<length>\n<bytes>`. No frame:
/// the pair's end on the publishing node closed.
fn encode(pair: &str, frames: &[Message]) -> Vec<u8> {
    let bytes: usize = frames.iter().map(|f| f.len() + 8).sum();
    let mut out = Vec::with_capacity(pair.len() + 1 + bytes);
    out.extend_from_slice(pair.as_bytes());
    out.push(b'\n');
    for frame in frames {
        let data = frame_bytes(frame);
        // Writing to a `Vec` cannot fail.
        let _ = writeln!(out, "{}", data.len());
        out.extend_from_slice(data);
    }
    out
}

/// The pair and the frames of a published batch; `None` when it is not of [`encode`]'s
/// form.
fn decode(payload: &[u8]) -> Option<(&str, Vec<&[u8]>)> {
    let (pair, mut rest) = split_line(payload)?;
    let pair = std::str::from_utf8(pair).ok()?;
    let mut frames = Vec::new();
    while !rest.is_empty() {
        let (length, after) = split_line(rest)?;
        let length: usize = std::str::from_utf8(length).ok()?.parse().ok()?;
        frames.push(after.get(..length)?);
        rest = &after[length..];
    }
    Some((pair, frames))
}

/// The pair of a socket's request path `/pair/<n>`.
fn pair_of(path: &str) -> &str {
    path.trim_start_matches("/pair/")
}

/// A data frame's bytes (a control frame has none to relay).
fn frame_bytes(frame: &Message) -> &[u8] {
    match frame {
        Message::Text(text) => text.as_bytes(),
        Message::Binary(bytes) => bytes,
        _ => &[],
    }
}

/// The bytes before the first newline, and those after it.
fn split_line(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = bytes.iter().position(|b| *b == b'\n')?;
    Some((&bytes[..at], &bytes[at + 1..]))
}

impl Journal {
    /// Appends `frames` to `key` and publishes them to `channel` for `pair`, in one
    /// round trip, as `publish` says.
    async fn append_and_publish(
        &self,
        key: &str,
        pair: &str,
        frames: &[Message],
        channel: &str,
        publish: HopPublish,
    ) -> anyhow::Result<()> {
        match publish {
            HopPublish::Pipeline => {
                let mut pipe = redis::pipe();
                for frame in frames {
                    pipe.cmd("XADD")
                        .arg(key)
                        .arg("*")
                        .arg("m")
                        .arg(frame_bytes(frame));
                }
                pipe.cmd("PUBLISH").arg(channel).arg(encode(pair, frames));
                self.exec_counted(pipe, frames.len()).await
            }
            HopPublish::Script => {
                let mut invocation = APPEND_AND_PUBLISH.key(key);
                invocation.arg(channel).arg(encode(pair, frames));
                for frame in frames {
                    invocation.arg(frame_bytes(frame));
                }
                // EVALSHA; the crate loads the script the first time Redis lacks it.
                let mut conn = self.conn.clone();
                let answer = invocation.invoke_async::<()>(&mut conn).await;
                self.count(frames.len(), answer)
            }
        }
    }

    /// Tells the node on `channel` that the pair's end here closed.
    async fn publish_closed(&self, pair: &str, channel: &str) -> anyhow::Result<()> {
        let mut conn = self.conn.clone();
        redis::cmd("PUBLISH")
            .arg(channel)
            .arg(encode(pair, &[]))
            .exec_async(&mut conn)
            .await
            .context("PUBLISH")
    }
}

/// One socket of a node: registered under its pair before its handshake is answered (so
/// that a frame from the other node never arrives before it), then every frame it reads
/// is appended and published to the other node, whose push handler forwards it.
pub(crate) async fn relay(stream: TcpStream, node: Arc<HopNode>) -> anyhow::Result<()> {
    let (tx, rx) = mpsc::channel::<Message>(QUEUE);
    let sockets = Arc::clone(&node.sockets);
    let (socket, path) = accept(stream, move |path| {
        sockets.insert(pair_of(path).to_string(), tx);
    })
    .await?;
    let pair = pair_of(&path).to_string();
    let (sink, mut source) = socket.split();
    let writer = spawn_writer(sink, rx);
    let key = node.sockets.journal.key_for_path(&pair);
    let mut batch: Vec<Message> = Vec::with_capacity(BATCH);
    let end = loop {
        let end = read_batch(&mut source, &mut batch).await;
        if !batch.is_empty() {
            let journal = &node.sockets.journal;
            if let Err(err) = journal
                .append_and_publish(&key, &pair, &batch, &node.peer_channel, node.publish)
                .await
            {
                debug!(cause = %format!("{err:#}"), frames = batch.len(), "append failed; frames dropped");
            }
            batch.clear();
        }
        if let Some(result) = end {
            break result;
        }
    };
    // The other end's writer ends once it has what was published before this.
    if let Err(err) = node
        .sockets
        .journal
        .publish_closed(&pair, &node.peer_channel)
        .await
    {
        debug!(cause = %format!("{err:#}"), "the close did not reach the other node");
    }
    node.sockets.remove(&pair);
    writer.await.context("floor writer task")?;
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_reads_back_as_published() {
        let frames = [
            Message::Text("{\"text\":\"a\\nb\"}".into()),
            Message::Text("".into()),
            Message::Text("x\ny".into()),
        ];
        let payload = encode("17", &frames);
        let (pair, read) = decode(&payload).expect("decodes");
        assert_eq!(pair, "17");
        let texts: Vec<&[u8]> = frames
            .iter()
            .map(|f| f.to_text().expect("text").as_bytes())
            .collect();
        assert_eq!(read, texts);
        // The close notice: a pair and no frames.
        assert_eq!(decode(&encode("3", &[])), Some(("3", Vec::new())));
        // A frame cut short, or no pair line: not a batch.
        assert_eq!(decode(&payload[..payload.len() - 1]), None);
        assert_eq!(decode(b"17"), None);
        assert_eq!(decode(b"1\nx\nabc"), None);
    }
}
