//! The node's live feed from Redis: one RESP3 connection (a cluster connection on a
//! Redis Cluster, where conversation channels are sharded) carrying every subscription
//! of this node, and the list of those subscriptions, kept here.
//!
//! Messages are hints, never the record: whoever reads them delivers an event only when
//! its seq is the next one, and reads the stream otherwise. What this module promises is
//! that a broken feed is noticed and repaired:
//! - the connection reports its own drop (`Disconnection`), and a probe published to a
//!   channel of the node's own every second must come back within [`PROBE_LOST`], which
//!   also catches a feed that looks connected but hears nothing;
//! - on either, the node is not ready (`/readyz` 503) until a *new* connection has
//!   subscribed every channel again, one `SUBSCRIBE`/`SSUBSCRIBE` per channel (the redis
//!   crate's own resubscription sends all sharded channels of a node in one command,
//!   which a cluster refuses with CROSSSLOT when they span slots);
//! - then [`FeedMessage::Resubscribed`] tells the node to catch every conversation up
//!   from its stream, so nothing published while the feed was down is skipped.

use std::{
    collections::HashSet,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use redis::{aio::AsyncPushSender, PushInfo, PushKind, Value};
use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};
use tokio_util::sync::CancellationToken;

use super::{keys, Store, StoreError, StoreResult};
use crate::protocol::{Event, StoredEvent};

/// How often the probe is published.
const PROBE_EVERY: Duration = Duration::from_millis(1000);
/// A probe not back within this long means the feed is lost.
const PROBE_LOST: Duration = Duration::from_millis(3000);
/// Wait between attempts to reconnect.
const RECONNECT_AFTER: Duration = Duration::from_millis(250);

/// What the feed tells its owner.
#[derive(Debug)]
pub enum FeedMessage {
    /// A message on a subscribed channel.
    Message { channel: String, payload: String },
    /// The feed was down and is back: anything may have been missed.
    Resubscribed,
}

enum FeedCommand {
    /// Subscribe; `done` hears when the subscription is in place (or remembered for
    /// the next connection while the feed is down).
    Subscribe(String, Option<oneshot::Sender<()>>),
    Unsubscribe(String),
}

/// Handle to the feed task; cheap to clone.
#[derive(Clone)]
pub struct Feed {
    commands: mpsc::UnboundedSender<FeedCommand>,
    ready: Arc<AtomicBool>,
}

/// Whoever acts on what the feed brings. It runs on the subscribing connection's own
/// task, as each message is read, so it must not wait: a message goes from the socket
/// to its conversation task with no task of the feed's between them (two wake-ups per
/// message fewer across nodes, `docs/performance.md`, eighth stop).
pub type FeedHandler = Arc<dyn Fn(FeedMessage) + Send + Sync>;

/// The feed's task, not yet started: its handler may need the [`Feed`] handle first.
pub struct FeedStarter {
    task: FeedTask,
    commands: mpsc::UnboundedReceiver<FeedCommand>,
}

impl Feed {
    /// The feed's handle, and its task for [`FeedStarter::start`]. Subscriptions asked
    /// for before then are made on the first connection.
    pub fn new(store: Store, redis_url: &str, node_id: &str) -> (Feed, FeedStarter) {
        let (commands, rx) = mpsc::unbounded_channel();
        let feed = Feed {
            commands,
            ready: Arc::new(AtomicBool::new(false)),
        };
        let task = FeedTask {
            store,
            seeds: redis_url.split(',').map(|s| s.trim().to_string()).collect(),
            probe_channel: keys::probe_channel(node_id),
            subscribed: HashSet::new(),
            ready: Arc::clone(&feed.ready),
        };
        (feed, FeedStarter { task, commands: rx })
    }

    /// Adds `channel` to this node's subscriptions (kept across reconnects).
    pub fn subscribe(&self, channel: String, done: Option<oneshot::Sender<()>>) {
        let _stopped = self.commands.send(FeedCommand::Subscribe(channel, done));
    }

    pub fn unsubscribe(&self, channel: String) {
        let _stopped = self.commands.send(FeedCommand::Unsubscribe(channel));
    }

    /// Whether the feed is connected with every subscription in place.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}

impl FeedStarter {
    /// Starts the feed task, handing every message to `handler`; it runs until
    /// `shutdown`.
    pub fn start(
        self,
        handler: FeedHandler,
        shutdown: CancellationToken,
        tracker: &tokio_util::task::TaskTracker,
    ) {
        tracker.spawn(self.task.run(handler, self.commands, shutdown));
    }
}

/// The subscribing connection of either kind.
enum SubConnection {
    Single(redis::aio::MultiplexedConnection),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl SubConnection {
    async fn subscribe(&mut self, channel: &str) -> redis::RedisResult<()> {
        match self {
            SubConnection::Single(conn) => conn.subscribe(channel).await,
            SubConnection::Cluster(conn) => conn.ssubscribe(channel).await,
        }
    }

    async fn unsubscribe(&mut self, channel: &str) -> redis::RedisResult<()> {
        match self {
            SubConnection::Single(conn) => conn.unsubscribe(channel).await,
            SubConnection::Cluster(conn) => conn.sunsubscribe(channel).await,
        }
    }
}

struct FeedTask {
    store: Store,
    seeds: Vec<String>,
    probe_channel: String,
    /// Every channel this node wants, whether or not the connection has it now.
    subscribed: HashSet<String>,
    ready: Arc<AtomicBool>,
}

/// Why a connection's life ended.
enum Ended {
    Shutdown,
    Lost(String),
}

impl FeedTask {
    async fn run(
        mut self,
        handler: FeedHandler,
        mut commands: mpsc::UnboundedReceiver<FeedCommand>,
        shutdown: CancellationToken,
    ) {
        loop {
            let (control_tx, control_rx) = mpsc::unbounded_channel::<PushInfo>();
            let push = self.push_sender(&handler, control_tx);
            let ended = match self.connect(push).await {
                Ok(conn) => {
                    self.serve(conn, &handler, control_rx, &mut commands, &shutdown)
                        .await
                }
                Err(err) => Ended::Lost(err.to_string()),
            };
            self.ready.store(false, Ordering::Relaxed);
            match ended {
                Ended::Shutdown => return,
                Ended::Lost(cause) => {
                    tracing::warn!(%cause, "live feed from redis lost; reconnecting");
                }
            }
            // Requests made meanwhile still count: they are in `subscribed` for the next
            // connection.
            while let Ok(command) = commands.try_recv() {
                self.remember(command);
            }
            tokio::select! {
                _ = tokio::time::sleep(RECONNECT_AFTER) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    fn remember(&mut self, command: FeedCommand) {
        match command {
            FeedCommand::Subscribe(channel, done) => {
                self.subscribed.insert(channel);
                if let Some(done) = done {
                    let _caller_gone = done.send(());
                }
            }
            FeedCommand::Unsubscribe(channel) => {
                self.subscribed.remove(&channel);
            }
        }
    }

    /// What the connection does with each push it reads: a message on a subscribed
    /// channel goes to `handler` at once; the probe and the connection's own news
    /// (dropped, unsubscribed) go to [`Self::serve`] by `control`.
    fn push_sender(
        &self,
        handler: &FeedHandler,
        control: mpsc::UnboundedSender<PushInfo>,
    ) -> impl Fn(PushInfo) -> Result<(), mpsc::error::SendError<PushInfo>> + Send + Sync + 'static
    {
        let handler = Arc::clone(handler);
        let probe = self.probe_channel.clone();
        move |info: PushInfo| {
            let is_message = matches!(info.kind, PushKind::Message | PushKind::SMessage);
            let is_probe = info
                .data
                .first()
                .is_some_and(|channel| is_text(channel, &probe));
            if !is_message || is_probe {
                return control.send(info);
            }
            if let Some((channel, payload)) = message_parts(info.data) {
                handler(FeedMessage::Message { channel, payload });
            }
            Ok(())
        }
    }

    async fn connect(&self, push: impl AsyncPushSender) -> StoreResult<SubConnection> {
        let timeout = Duration::from_secs(3);
        let connect = async {
            if self.store.is_cluster() {
                let client = redis::cluster::ClusterClientBuilder::new(self.seeds.clone())
                    .use_protocol(redis::ProtocolVersion::RESP3)
                    .push_sender(push)
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .retries(1)
                    .build()?;
                Ok::<_, redis::RedisError>(SubConnection::Cluster(
                    client.get_async_connection().await?,
                ))
            } else {
                let url = self.seeds.first().cloned().unwrap_or_default();
                let separator = if url.contains('?') { '&' } else { '?' };
                let client = redis::Client::open(format!("{url}{separator}protocol=resp3"))?;
                let config = redis::AsyncConnectionConfig::new()
                    .set_push_sender(push)
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout));
                Ok(SubConnection::Single(
                    client
                        .get_multiplexed_async_connection_with_config(&config)
                        .await?,
                ))
            }
        };
        let mut conn = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| StoreError::Unavailable("live feed: connect timed out".into()))??;
        // One command per channel: see the module head.
        conn.subscribe(&self.probe_channel).await?;
        for channel in &self.subscribed {
            conn.subscribe(channel).await?;
        }
        Ok(conn)
    }

    async fn serve(
        &mut self,
        mut conn: SubConnection,
        handler: &FeedHandler,
        mut control: mpsc::UnboundedReceiver<PushInfo>,
        commands: &mut mpsc::UnboundedReceiver<FeedCommand>,
        shutdown: &CancellationToken,
    ) -> Ended {
        self.ready.store(true, Ordering::Relaxed);
        handler(FeedMessage::Resubscribed);
        let mut probe = tokio::time::interval(PROBE_EVERY);
        let mut last_heard = Instant::now();
        loop {
            tokio::select! {
                command = commands.recv() => {
                    let Some(command) = command else { return Ended::Shutdown };
                    let outcome = match &command {
                        FeedCommand::Subscribe(channel, _) if !self.subscribed.contains(channel) => {
                            conn.subscribe(channel).await
                        }
                        FeedCommand::Unsubscribe(channel) if self.subscribed.contains(channel) => {
                            conn.unsubscribe(channel).await
                        }
                        _ => Ok(()),
                    };
                    self.remember(command);
                    if let Err(err) = outcome {
                        return Ended::Lost(err.to_string());
                    }
                }
                info = control.recv() => {
                    let Some(info) = info else {
                        return Ended::Lost("push channel closed".into());
                    };
                    match info.kind {
                        // Only the probe comes this way (see `push_sender`).
                        PushKind::Message | PushKind::SMessage => last_heard = Instant::now(),
                        PushKind::Disconnection => {
                            return Ended::Lost("connection dropped".into());
                        }
                        // The server dropped a sharded subscription (its slot moved).
                        PushKind::SUnsubscribe => {
                            let channel = info.data.first().and_then(text);
                            if channel.is_some_and(|c| self.subscribed.contains(&c)) {
                                return Ended::Lost("a shard dropped our subscription".into());
                            }
                        }
                        _ => {}
                    }
                }
                _ = probe.tick() => {
                    if last_heard.elapsed() > PROBE_LOST {
                        return Ended::Lost("the probe did not come back".into());
                    }
                    let store = self.store.clone();
                    let channel = self.probe_channel.clone();
                    tokio::spawn(async move {
                        if let Err(err) = store.publish(&channel, "probe").await {
                            tracing::debug!(cause = %err, "feed probe not published");
                        }
                    });
                }
                _ = shutdown.cancelled() => return Ended::Shutdown,
            }
        }
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// Whether `value` is the text `expected`, read in place.
fn is_text(value: &Value, expected: &str) -> bool {
    match value {
        Value::BulkString(bytes) => bytes == expected.as_bytes(),
        Value::SimpleString(s) => s == expected,
        _ => false,
    }
}

/// `[channel, payload]` of a message push.
fn message_parts(data: Vec<Value>) -> Option<(String, String)> {
    let mut data = data.into_iter();
    let channel = text(&data.next()?)?;
    let payload = match data.next()? {
        Value::BulkString(bytes) => String::from_utf8(bytes).ok()?,
        Value::SimpleString(s) => s,
        _ => return None,
    };
    Some((channel, payload))
}

/// One event of a batch published on its conversation's live channel by the append
/// script (`append`): `<seq> <note length> <event length> <note><event JSON>`, repeated.
#[derive(Debug, PartialEq, Eq)]
pub struct LiveEvent<'a> {
    pub seq: u64,
    /// An ack owed to a connection on some node (`conversation::RemoteAck`), or empty.
    pub note: &'a str,
    json: &'a str,
}

impl<'a> LiveEvent<'a> {
    /// One event as [`Self::batch`] reads it; the append script writes the same.
    pub(super) fn encode(seq: u64, note: &str, json: &str) -> String {
        format!("{seq} {} {} {note}{json}", note.len(), json.len())
    }

    /// The events of one published batch, in order, without reading them: most are
    /// dropped on their seq alone (the storing node hears its own). `None` when any part
    /// is unreadable.
    pub fn batch(mut payload: &'a str) -> Option<Vec<LiveEvent<'a>>> {
        let mut events = Vec::with_capacity(1);
        while !payload.is_empty() {
            let (seq, rest) = payload.split_once(' ')?;
            let (note_len, rest) = rest.split_once(' ')?;
            let (json_len, rest) = rest.split_once(' ')?;
            let note_len: usize = note_len.parse().ok()?;
            let json_len: usize = json_len.parse().ok()?;
            let note = rest.get(..note_len)?;
            let json = rest.get(note_len..note_len.checked_add(json_len)?)?;
            payload = rest.get(note_len + json_len..)?;
            events.push(LiveEvent {
                seq: seq.parse().ok()?,
                note,
                json,
            });
        }
        Some(events)
    }

    /// The event's `event` frame, spliced from its stored form as a local append's is.
    pub fn frame(&self, conversation_id: &str) -> Option<crate::protocol::FrameText> {
        StoredEvent::event_frame(conversation_id, self.seq, self.json)
    }

    /// The event itself; `None` when it does not parse.
    pub fn event(&self, conversation_id: &str) -> Option<Event> {
        let stored: StoredEvent = serde_json::from_str(self.json).ok()?;
        Some(stored.into_event(conversation_id, self.seq))
    }
}

#[cfg(test)]
mod tests {
    use super::LiveEvent;

    #[test]
    fn a_published_batch_reads_back_event_by_event() {
        let first = r#"{"type":"message","text":"héllo"}"#;
        let second = r#"{"type":"message","text":"x y"}"#;
        let note = r#"{"node":"n1"}"#;
        let payload = format!(
            "7 0 {} {first}8 {} {} {note}{second}",
            first.len(),
            note.len(),
            second.len()
        );
        let events = LiveEvent::batch(&payload).expect("readable");
        assert_eq!(events.len(), 2);
        assert_eq!((events[0].seq, events[0].note), (7, ""));
        assert_eq!((events[1].seq, events[1].note), (8, note));
        assert_eq!(events[1].json, second);
        assert!(
            LiveEvent::batch("7 0 99 {}").is_none(),
            "length past the end"
        );
        assert!(LiveEvent::batch("x 0 2 {}").is_none(), "seq not a number");
        // A length that would cut a character in two is refused, not a panic.
        assert!(LiveEvent::batch("1 0 1 é").is_none());
    }

    #[test]
    fn an_encoded_event_reads_back() {
        let json = r#"{"type":"message","text":"né 1 2"}"#;
        let note = r#"{"req":"r 1"}"#;
        let payload = LiveEvent::encode(12, note, json) + &LiveEvent::encode(13, "", json);
        let events = LiveEvent::batch(&payload).expect("readable");
        assert_eq!(events.len(), 2);
        assert_eq!(
            (events[0].seq, events[0].note, events[0].json),
            (12, note, json)
        );
        assert_eq!(
            (events[1].seq, events[1].note, events[1].json),
            (13, "", json)
        );
    }

    #[test]
    fn a_heard_event_is_framed_as_a_local_one() {
        use crate::protocol::{EventBody, Party, Role, StoredEvent};
        let body = EventBody::Message {
            from: Party {
                role: Role::Customer,
                id: "v_1".into(),
                name: Some("Ann \"A\"".into()),
            },
            text: "héllo\n".into(),
            client_msg_id: Some("m-1".into()),
            attachment: None,
        };
        let stored = StoredEvent::json(1_700_000_000_123, &body).expect("stored form");
        let payload = LiveEvent::encode(7, "", &stored);
        let events = LiveEvent::batch(&payload).expect("readable");
        let frame = events[0].frame("c_1").expect("spliced");
        let event = events[0].event("c_1").expect("parses");
        assert_eq!(frame.as_str(), event.frame_text().as_str());
    }
}
