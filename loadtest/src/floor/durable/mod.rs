//! The durable floor (issue 19): the raw floor's pair relay, but every frame a socket
//! reads is first appended to a Redis stream of its pair (`XADD`, field `m` = the frame's
//! bytes, one entry per frame) and forwarded only once Redis answered. All sockets share
//! ONE multiplexed connection, which pipelines their concurrent commands. It is the least
//! any server can do to relay a message durably through Redis on this machine; the Redis
//! is the hub's own (AOF on, `appendfsync everysec`) when `run` measures it.
//!
//! This module owns the appends (the [`Journal`]) and the order they keep; `run.rs` owns
//! the durable run: its Redis sampling, the count of what Redis holds at the end (`XLEN`,
//! on a connection of its own) and the deletion of the run's streams.

use std::{
    future::Future,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use anyhow::Context;
use futures_util::{FutureExt, Stream, StreamExt};
use redis::aio::MultiplexedConnection;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tracing::debug;

use super::Tx;

pub mod hop;
mod run;
pub mod sequenced;

pub use run::{
    connect_redis, delete, run_durable_floor, stream_lengths, DurableFloor, DurableTarget,
    JournalFigures,
};
pub use sequenced::Obligations;

/// At most this many frames go into one pipeline: what one socket had read by the time
/// its previous pipeline was answered. A bound, so that a socket's batch (and the time
/// its first frame waits for its last) stays small.
const BATCH: usize = 64;

/// An append not answered in this time counts as failed. Generous: a busy two-core
/// machine and an AOF rewrite's fork stall Redis for milliseconds, not seconds, and a
/// frame the relay gave up on is a lost message, not a slow one.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the durable relay appends.
#[derive(Debug, Clone)]
pub struct JournalSpec {
    pub redis_url: String,
    /// Names this run's streams (see [`stream_key`]), so that they are told from any other
    /// run's and deleted exactly.
    pub tag: String,
    /// How much of the protocol the relay does per message.
    pub obligations: Obligations,
    /// When the relay is one of two nodes: its channel, the other node's, and how it
    /// publishes to it.
    pub hop: Option<hop::HopSpec>,
}

/// The key of pair `pair`'s stream in the run tagged `tag`: `floor:{<tag>-pair-<n>}:events`.
pub fn stream_key(tag: &str, pair: usize) -> String {
    stream_key_of(tag, &pair.to_string())
}

fn stream_key_of(tag: &str, pair: &str) -> String {
    format!("floor:{{{tag}-pair-{pair}}}:events")
}

/// The durable relay's appends: one connection shared by every socket, and counters.
pub struct Journal {
    conn: MultiplexedConnection,
    tag: String,
    appended: AtomicU64,
    failed: AtomicU64,
    pipelines: AtomicU64,
}

impl Journal {
    /// Connects; the connection's task runs on the runtime this is called on.
    pub async fn connect(spec: JournalSpec) -> anyhow::Result<Journal> {
        Ok(Journal {
            conn: connect(&spec.redis_url).await?,
            tag: spec.tag,
            appended: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            pipelines: AtomicU64::new(0),
        })
    }

    /// The stream of the socket whose request path is `path` (`/pair/<n>`).
    pub fn key_for_path(&self, path: &str) -> String {
        stream_key_of(&self.tag, path.strip_prefix("/pair/").unwrap_or(path))
    }
}

async fn connect(url: &str) -> anyhow::Result<MultiplexedConnection> {
    let client = redis::Client::open(url).context("the Redis URL")?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(RESPONSE_TIMEOUT));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .context("connect to Redis")
}

/// Stores a socket's frames, in order. A trait so that the relay loop's ordering can be
/// tested without Redis.
pub(crate) trait Append: Sync {
    /// Appends `frames` to `key` in their order; `Ok` once the store holds every one.
    fn append(
        &self,
        key: &str,
        frames: &[Message],
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

impl Append for Journal {
    async fn append(&self, key: &str, frames: &[Message]) -> anyhow::Result<()> {
        let mut pipe = redis::pipe();
        for frame in frames {
            let bytes: &[u8] = match frame {
                Message::Text(text) => text.as_bytes(),
                Message::Binary(bytes) => bytes,
                // The relay loop hands data frames only.
                _ => &[],
            };
            pipe.cmd("XADD").arg(key).arg("*").arg("m").arg(bytes);
        }
        // Any error answer fails the whole pipeline: none of its frames is forwarded.
        self.exec_counted(pipe, frames.len()).await
    }
}

impl Journal {
    /// Sends a pipeline of `n` appends and counts them as appended or failed.
    async fn exec_counted(&self, pipe: redis::Pipeline, n: usize) -> anyhow::Result<()> {
        // A clone per pipeline: the handle is a channel to the connection's task, and
        // `exec_async` needs it mutably.
        let mut conn = self.conn.clone();
        let answer = pipe.exec_async(&mut conn).await;
        self.count(n, answer)
    }

    /// Counts a round trip of `n` appends as appended or failed, by Redis's `answer`.
    fn count(&self, n: usize, answer: redis::RedisResult<()>) -> anyhow::Result<()> {
        let n = n as u64;
        self.pipelines.fetch_add(1, Ordering::Relaxed);
        match answer {
            Ok(()) => {
                self.appended.fetch_add(n, Ordering::Relaxed);
                Ok(())
            }
            Err(err) => {
                self.failed.fetch_add(n, Ordering::Relaxed);
                Err(err).context("XADD")
            }
        }
    }
}

/// What one read from the socket gave.
enum Read {
    Data(Message),
    Skip,
    End(anyhow::Result<()>),
}

fn classify(item: Option<Result<Message, WsError>>) -> Read {
    match item {
        Some(Ok(frame @ (Message::Text(_) | Message::Binary(_)))) => Read::Data(frame),
        Some(Ok(Message::Close(_))) | None => Read::End(Ok(())),
        Some(Ok(_)) => Read::Skip,
        Some(Err(err)) => Read::End(Err(err.into())),
    }
}

/// Waits for one data frame, then takes whatever further frames `source` already holds
/// (without waiting, up to [`BATCH`]) into `batch`. Returns how the socket ended, if it
/// did: a batch read before the end is still whole in `batch`.
async fn read_batch<S>(source: &mut S, batch: &mut Vec<Message>) -> Option<anyhow::Result<()>>
where
    S: Stream<Item = Result<Message, WsError>> + Unpin,
{
    loop {
        match classify(source.next().await) {
            Read::Data(frame) => {
                batch.push(frame);
                break;
            }
            Read::Skip => continue,
            Read::End(result) => return Some(result),
        }
    }
    while batch.len() < BATCH {
        // `None`: nothing more is ready now.
        let Some(item) = source.next().now_or_never() else {
            break;
        };
        match classify(item) {
            Read::Data(frame) => batch.push(frame),
            Read::Skip => {}
            Read::End(result) => return Some(result),
        }
    }
    None
}

/// The durable relay's reader loop for one socket: append, wait for the store, forward.
///
/// Order: a frame must not overtake an earlier frame of the same socket, in the stream
/// nor at the partner. The loop waits for one frame, takes whatever further frames the
/// socket already holds (without waiting, up to [`BATCH`]), appends them as ONE pipeline
/// (the commands of one pipeline reach Redis in order on the one connection, and Redis
/// runs them in order), awaits its answer and only then forwards the frames, in the order
/// read, and reads on. That is the cheapest way that keeps order: no per-frame task, no
/// queue of in-flight appends to match answers with, one wake-up per batch; and while a
/// pipeline is out the next frames gather in the socket, so the batches grow with the
/// load, as the hub's per-conversation batches do. Other sockets' pipelines share the
/// connection meanwhile.
///
/// A failed append (an error answer, no answer in time) is counted by the journal and its
/// frames are dropped, never forwarded: the pair's clients then miss those replies, and
/// the run reports the failures. Returns when the socket closes or the partner is gone.
///
/// With `acks` ([`Obligations::Acks`]), each stored frame is also acked to its author
/// through `acks`, this socket's own writer: a weak handle, so that the writer still
/// ends when the partner's reader does.
pub(crate) async fn forward_appended<S, A>(
    source: &mut S,
    partner: &Tx,
    acks: Option<&tokio::sync::mpsc::WeakSender<Message>>,
    journal: &A,
    key: &str,
) -> anyhow::Result<()>
where
    S: Stream<Item = Result<Message, WsError>> + Unpin,
    A: Append,
{
    let mut batch: Vec<Message> = Vec::with_capacity(BATCH);
    loop {
        let end = read_batch(source, &mut batch).await;
        if batch.is_empty() {
            return end.unwrap_or(Ok(()));
        }
        match journal.append(key, &batch).await {
            Ok(()) => {
                let own = acks.and_then(|acks| acks.upgrade());
                for frame in batch.drain(..) {
                    if let Some(own) = &own {
                        // Our own writer gone means our socket is closing: no ack to give.
                        let _ = own.send(sequenced::ack_of(&frame)?).await;
                    }
                    if partner.send(frame).await.is_err() {
                        // The partner is gone: nobody to forward to.
                        return Ok(());
                    }
                }
            }
            Err(err) => {
                debug!(cause = %format!("{err:#}"), frames = batch.len(), "append failed; frames dropped");
                batch.clear();
            }
        }
        if let Some(result) = end {
            return result;
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::stream;
    use tokio::sync::{mpsc, oneshot};

    use super::*;

    type Call = (Vec<String>, oneshot::Sender<bool>);

    /// A store the test answers by hand: each append hands over its frames and waits for
    /// the test's verdict (true: stored).
    struct Gated {
        calls: mpsc::UnboundedSender<Call>,
    }

    impl Append for Gated {
        async fn append(&self, _key: &str, frames: &[Message]) -> anyhow::Result<()> {
            let texts = frames
                .iter()
                .map(|f| f.to_text().map(str::to_string))
                .collect::<Result<Vec<_>, _>>()?;
            let (answer, verdict) = oneshot::channel();
            self.calls.send((texts, answer))?;
            if verdict.await? {
                Ok(())
            } else {
                anyhow::bail!("refused")
            }
        }
    }

    fn text(t: &str) -> Result<Message, WsError> {
        Ok(Message::Text(t.to_string().into()))
    }

    async fn within<T>(what: &str, future: impl Future<Output = Option<T>>) -> T {
        tokio::time::timeout(Duration::from_secs(5), future)
            .await
            .unwrap_or_else(|_| panic!("no {what} within 5 s"))
            .unwrap_or_else(|| panic!("{what}: channel closed"))
    }

    // A current-thread runtime: the loop runs only while the test awaits, so the frames
    // fed between two awaits are all ready when it next reads.
    #[tokio::test]
    async fn frames_are_forwarded_only_once_stored_and_in_the_order_read() {
        let (calls_tx, mut calls) = mpsc::unbounded_channel::<Call>();
        let (feed, frames) = mpsc::unbounded_channel::<Result<Message, WsError>>();
        let (partner, mut forwarded) = mpsc::channel::<Message>(64);
        let relay = tokio::spawn(async move {
            let journal = Gated { calls: calls_tx };
            let mut source = Box::pin(stream::unfold(frames, |mut rx| async move {
                rx.recv().await.map(|m| (m, rx))
            }));
            forward_appended(&mut source, &partner, None, &journal, "k").await
        });
        let feed_all = |texts: &[&str]| {
            for t in texts {
                feed.send(text(t)).expect("the loop reads");
            }
        };
        let forwarded_text = |m: Message| m.to_text().expect("text").to_string();

        feed_all(&["m0"]);
        let (batch, answer) = within("append", calls.recv()).await;
        assert_eq!(batch, ["m0"]);
        // While Redis has not answered, the next frames wait and nothing is forwarded.
        feed_all(&["m1", "m2", "m3"]);
        tokio::task::yield_now().await;
        assert!(forwarded.try_recv().is_err(), "forwarded before stored");
        answer.send(true).expect("the append waits");
        assert_eq!(forwarded_text(within("m0", forwarded.recv()).await), "m0");
        // The frames that gathered meanwhile go as one pipeline, in order.
        let (batch, answer) = within("append", calls.recv()).await;
        assert_eq!(batch, ["m1", "m2", "m3"]);
        answer.send(true).expect("the append waits");
        for expected in ["m1", "m2", "m3"] {
            assert_eq!(
                forwarded_text(within(expected, forwarded.recv()).await),
                expected
            );
        }
        // A failed append: its frames are dropped, never forwarded; control frames are
        // not appended.
        feed_all(&["fail"]);
        feed.send(Ok(Message::Ping(Vec::new().into())))
            .expect("feed");
        feed_all(&["m4"]);
        let (batch, answer) = within("append", calls.recv()).await;
        assert_eq!(batch, ["fail", "m4"]);
        answer.send(false).expect("the append waits");
        // A close ends the batch and the loop; nothing after it is read.
        feed_all(&["m5"]);
        feed.send(Ok(Message::Close(None))).expect("feed");
        feed_all(&["after close"]);
        let (batch, answer) = within("append", calls.recv()).await;
        assert_eq!(batch, ["m5"]);
        answer.send(true).expect("the append waits");
        assert_eq!(forwarded_text(within("m5", forwarded.recv()).await), "m5");
        relay
            .await
            .expect("the loop does not panic")
            .expect("the loop ends cleanly at the close");
        assert!(forwarded.recv().await.is_none(), "nothing else forwarded");
    }
}
