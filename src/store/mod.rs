//! Everything that talks to Redis, the system of record.
//!
//! Keys of one conversation share the hash tag `{c_…}` so a Redis Cluster keeps them in
//! one slot and the Lua scripts that touch them stay atomic; global indexes live under
//! their own tags (`{tickets}`, `{agents}`). The layout is in `docs/architecture.md`.
//! Finished chats expire (`retention`) so Redis does not grow forever.
//! Every call is bounded by the store timeout, so a dead Redis answers `unavailable`
//! quickly instead of hanging a client.

mod agents;
mod conversations;
pub mod keys;
mod retention;
mod tickets;

use std::{future::Future, time::Duration};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

pub use agents::{AgentRecord, AgentUpdate};
pub use conversations::{
    AppendItem, AppendOutcome, ConversationRecord, NewConversation, Requirement,
};
pub use tickets::{OutboxEntry, TicketPage};

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

/// A handle to Redis; cheap to clone. Requests from every task share one multiplexed
/// connection, so concurrent writes are pipelined rather than sent one by one.
#[derive(Clone)]
pub struct Store {
    conn: ConnectionManager,
    timeout: Duration,
    metrics: Option<crate::metrics::Metrics>,
}

impl Store {
    /// Connects, failing at once (with the reason) when Redis cannot be reached.
    pub async fn connect(url: &str, timeout: Duration) -> StoreResult<Store> {
        let client = redis::Client::open(url)
            .map_err(|err| StoreError::Unavailable(format!("bad redis url {url:?}: {err}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let connect = ConnectionManager::new_with_config(client, config);
        let conn = tokio::time::timeout(timeout, connect).await.map_err(|_| {
            StoreError::Unavailable(format!("no answer from {url} in {timeout:?}"))
        })??;
        let store = Store {
            conn,
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

    pub(crate) fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Runs one Redis exchange under the store timeout and records its latency.
    pub(crate) async fn run<T, F>(&self, op: &'static str, fut: F) -> StoreResult<T>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        let started = std::time::Instant::now();
        let outcome = match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(StoreError::from(err)),
            Err(_) => Err(StoreError::Unavailable(format!("{op}: timed out"))),
        };
        if let Some(metrics) = &self.metrics {
            metrics
                .store_seconds
                .with_label_values(&[op])
                .observe(started.elapsed().as_secs_f64());
        }
        outcome
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
