//! Everything that talks to Redis, the system of record.
//!
//! Keys of one conversation share the hash tag `{c_…}` so a Redis Cluster keeps them in
//! one slot and the Lua scripts that touch them stay atomic; global indexes live under
//! their own tags (`{tickets}`, `{agents}`, `{canned}`). The layout is in `docs/architecture.md`; no
//! script, transaction or pipeline spans two tags (section "Redis Cluster: slots and
//! hot keys"). `connection.rs` tells one server from a cluster.
//! Finished chats expire (`retention`) so Redis does not grow forever.
//! Every call is bounded by the store timeout, so a dead Redis answers `unavailable`
//! quickly instead of hanging a client.

mod agents;
mod append;
mod attachments;
mod canned;
#[cfg(test)]
pub(crate) mod cluster_tests;
mod connection;
mod conversations;
mod coordination;
mod decisions;
mod entries;
mod feed;
mod inbox;
pub mod keys;
mod limits;
mod numbering;
mod outbox;
mod plain_append;
mod privacy;
mod records;
mod reports;
mod retention;
pub mod ticket_form;
mod ticket_index;
mod tickets;

use std::{future::Future, sync::Arc, time::Duration};

use tokio::sync::Semaphore;

pub(crate) use connection::RedisConn;
use connection::Topology;

pub use agents::{AgentRecord, AgentUpdate};
pub use append::Appended;
pub use attachments::{Added, NOT_DUE};
pub use canned::{CannedRecord, CannedWrite};
pub use coordination::Reservation;
pub use entries::StoredEntry;
pub use feed::LiveEvent;
pub use feed::{Feed, FeedHandler, FeedMessage, FeedStarter};
pub use inbox::{InboxEntry, InboxState, Marked};
pub use limits::{FloodKind, FloodSubject};
pub use outbox::OutboxEntry;
pub use plain_append::{PlainAppended, PlainEvent, Publication};
pub use records::{AppendItem, AppendOutcome, Requirement};
pub use records::{ConversationRecord, NewConversation, Update};
pub use reports::{BucketKey, Counted, HourSpan, StateRecord};
pub use ticket_index::{IndexCursor, IndexEntry, IndexRange};
pub use tickets::{StreamCursor, TicketPage};

pub use privacy::{AuditEntry, AuditPage, CustomerData, Erased, HeldConversation};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis unavailable: {0}")]
    Unavailable(String),
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

impl From<redis::RedisError> for StoreError {
    fn from(err: redis::RedisError) -> Self {
        StoreError::Unavailable(err.to_string())
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(err: serde_json::Error) -> Self {
        StoreError::Corrupt(err.to_string())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// History pages read from Redis at once. When hundreds of clients reconnect together
/// and each asks for a page of up to 1,000 events, reading them all at once queues each
/// behind the others' replies until the store timeout fails them; a few at a time, each
/// read is quick and the rest wait their turn outside the timeout.
const BULK_READS_AT_ONCE: usize = 4;

/// A handle to Redis; cheap to clone. Requests from every task share one multiplexed
/// connection, so concurrent writes are pipelined rather than sent one by one. Client
/// history pages (large replies) go over a second connection, so a burst of them never
/// holds up the appends that chats are waiting on. Either may be a Redis Cluster
/// connection (`connection.rs`): every script and multi-key command keeps to one slot.
#[derive(Clone)]
pub struct Store {
    conn: RedisConn,
    bulk: RedisConn,
    topology: Topology,
    bulk_permits: Arc<Semaphore>,
    timeout: Duration,
    metrics: Option<crate::metrics::Metrics>,
}

impl Store {
    /// Connects, failing at once (with the reason) when Redis cannot be reached. `url`
    /// is one Redis URL, or a comma-separated list of a Redis Cluster's seed nodes; a
    /// single URL of a cluster node is recognised too (`INFO cluster`).
    pub async fn connect(url: &str, timeout: Duration) -> StoreResult<Store> {
        let connected = connection::connect(url, timeout).await?;
        let store = Store {
            conn: connected.conn,
            bulk: connected.bulk,
            topology: connected.topology,
            bulk_permits: Arc::new(Semaphore::new(BULK_READS_AT_ONCE)),
            timeout,
            metrics: None,
        };
        store.ping().await?;
        Ok(store)
    }

    pub fn with_metrics(mut self, metrics: crate::metrics::Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub(crate) fn conn(&self) -> RedisConn {
        self.conn.clone()
    }

    pub(crate) fn bulk_conn(&self) -> RedisConn {
        self.bulk.clone()
    }

    /// Waits for a turn to read a large reply (see [`BULK_READS_AT_ONCE`]), at most the
    /// store timeout: while Redis is down every turn lasts that long, and a queue of
    /// readers must still hear `unavailable` soon rather than one after another.
    pub(crate) async fn bulk_turn(&self) -> StoreResult<tokio::sync::SemaphorePermit<'_>> {
        match tokio::time::timeout(self.timeout, self.bulk_permits.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_closed)) => Err(StoreError::Unavailable("the store is shutting down".into())),
            Err(_) => Err(StoreError::Unavailable(
                "history reads: no turn in time".into(),
            )),
        }
    }

    /// Like [`Store::run`] for a read, which is safe to send twice: when the connection
    /// turns out to be broken (Redis restarted while this connection sat unused), the
    /// connection manager reconnects and the read is tried once more, instead of failing
    /// the first client to ask after a restart.
    pub(crate) async fn run_read<T, F, Fut>(&self, op: &'static str, mut read: F) -> StoreResult<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let broken = |err: &redis::RedisError| {
            err.is_io_error() || err.is_connection_dropped() || err.is_connection_refusal()
        };
        match self.timed(op, read()).await {
            Ok(Err(err)) if broken(&err) => {
                tracing::debug!(op, cause = %err, "read on a broken connection: once more");
                self.run(op, read()).await
            }
            first => Self::settle(op, first),
        }
    }

    /// Runs one Redis exchange under the store timeout and records its latency.
    pub(crate) async fn run<T, F>(&self, op: &'static str, fut: F) -> StoreResult<T>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        Self::settle(op, self.timed(op, fut).await)
    }

    /// Runs `fut` under the store timeout, recording its latency.
    async fn timed<T, F>(
        &self,
        op: &'static str,
        fut: F,
    ) -> Result<redis::RedisResult<T>, tokio::time::error::Elapsed>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        let started = std::time::Instant::now();
        let outcome = tokio::time::timeout(self.timeout, fut).await;
        if let Some(metrics) = &self.metrics {
            metrics
                .store_seconds
                .with_label_values(&[op])
                .observe(started.elapsed().as_secs_f64());
        }
        outcome
    }

    fn settle<T>(
        op: &'static str,
        outcome: Result<redis::RedisResult<T>, tokio::time::error::Elapsed>,
    ) -> StoreResult<T> {
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(StoreError::from(err)),
            Err(_) => Err(StoreError::Unavailable(format!("{op}: timed out"))),
        }
    }

    pub async fn ping(&self) -> StoreResult<()> {
        let mut conn = self.conn();
        let pong: String = self
            .run("ping", async move {
                redis::cmd("PING").query_async(&mut conn).await
            })
            .await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(StoreError::Corrupt(format!("PING answered {pong:?}")))
        }
    }

    /// The secret that signs visitor sessions: made once per deployment and kept in
    /// Redis, so every node and every restart accepts the same sessions.
    pub async fn session_secret(&self) -> StoreResult<String> {
        let candidate = crate::auth::random_token(32);
        let mut conn = self.conn();
        let key = keys::session_secret();
        let secret: String = self
            .run("session_secret", async move {
                let _: bool = redis::cmd("SET")
                    .arg(&key)
                    .arg(&candidate)
                    .arg("NX")
                    .query_async::<Option<String>>(&mut conn)
                    .await
                    .map(|reply| reply.is_some())?;
                redis::cmd("GET").arg(&key).query_async(&mut conn).await
            })
            .await?;
        Ok(secret)
    }

    /// A fresh short id from a Redis counter (tickets are numbered in order).
    pub async fn next_id(&self, counter: &str) -> StoreResult<u64> {
        let mut conn = self.conn();
        let key = counter.to_string();
        self.run("incr", async move {
            redis::cmd("INCR").arg(key).query_async(&mut conn).await
        })
        .await
    }
}
