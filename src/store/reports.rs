//! Report aggregates (issue 17): hourly hashes of counters, each written exactly once
//! per ticket (and per rating) by one script that checks a done set with `SADD` and
//! applies the `HINCRBY`s in the same step, so a repeated flush counts nothing twice.
//! A topic's hour is one slot (`{rep:<hour>}`), an agent's hours another
//! (`{repa:<agent>}`); no script or pipeline spans two. Agent state time is advanced by
//! compare-and-set on the agent's state record, so a sample sent twice counts once.
//!
//! What the fields mean is `reports/counters.rs`'s business; this only stores them.

use std::{collections::HashMap, sync::LazyLock};

use futures_util::StreamExt;
use redis::Script;
use serde::{Deserialize, Serialize};

use super::{keys, Store, StoreResult};
use crate::protocol::AgentStatus;

/// KEYS: done set, then hashes. ARGV: member, expire-at (unix ms), then per hash: the
/// number of field/increment pairs, then the pairs. Returns 1 when applied, 0 when the
/// member was already in the done set (nothing written).
static APPLY_ONCE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
local a = 3
for k = 2, #KEYS do
  local n = tonumber(ARGV[a]); a = a + 1
  for i = 1, n do
    redis.call('HINCRBY', KEYS[k], ARGV[a], ARGV[a + 1]); a = a + 2
  end
  if n > 0 then redis.call('PEXPIREAT', KEYS[k], ARGV[2]) end
end
return 1
"#,
    )
});

/// KEYS: the agent's state record, then hour hashes. ARGV: the record expected now (""
/// for none), the new record, its time to keep (ms), then per hash: expire-at (unix ms),
/// the number of field/increment pairs, the pairs. Applies only when the record is
/// still the expected one (1), else changes nothing (0).
static ADVANCE_STATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local now = redis.call('GET', KEYS[1])
if (now or '') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
local a = 4
for k = 2, #KEYS do
  local at = ARGV[a]
  local n = tonumber(ARGV[a + 1]); a = a + 2
  for i = 1, n do
    redis.call('HINCRBY', KEYS[k], ARGV[a], ARGV[a + 1]); a = a + 2
  end
  if n > 0 then redis.call('PEXPIREAT', KEYS[k], at) end
end
return 1
"#,
    )
});

/// One hour hash to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BucketKey {
    Topic { hour: u64, topic: String },
    Agent { agent: String, hour: u64 },
}

impl BucketKey {
    fn key(&self) -> String {
        match self {
            BucketKey::Topic { hour, topic } => keys::report_topic(*hour, topic),
            BucketKey::Agent { agent, hour } => keys::report_agent(agent, *hour),
        }
    }

    /// What shares a slot: a topic hash with the other topics of its hour, an agent's
    /// with its other hours.
    fn slot_group(&self) -> String {
        match self {
            BucketKey::Topic { hour, .. } => format!("h{hour}"),
            BucketKey::Agent { agent, .. } => format!("a{agent}"),
        }
    }
}

/// What of a ticket is counted once: its facts, or its rating (each has its done set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    Ticket,
    Rating,
}

/// An agent's current state sample, as stored (the status spelled as the protocol does).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateRecord {
    pub status: AgentStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub busy: bool,
    /// Since when (unix ms).
    pub since: u64,
}

/// Time an agent spent in one hour: what it adds to that hour's hash, and when the
/// hash expires (unix ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourSpan {
    pub hour: u64,
    pub increments: Vec<(String, i64)>,
    pub expire_at: u64,
}

/// Commands per pipeline on one server (on a cluster: one pipeline per slot group).
const READ_CHUNK: usize = 1_000;
/// Pipelines in flight at once.
const READS_AT_ONCE: usize = 4;

impl Store {
    /// Adds `increments` to the hash of `bucket` once per ticket and `what` (its facts,
    /// its rating), by the done set of that hash's slot; false when already counted.
    pub async fn report_once(
        &self,
        bucket: &BucketKey,
        what: Counted,
        ticket_id: &str,
        increments: &[(String, i64)],
        expire_at_ms: u64,
    ) -> StoreResult<bool> {
        let (op, done) = match (bucket, what) {
            (BucketKey::Topic { hour, .. }, Counted::Ticket) => {
                ("report_ticket", keys::report_done(*hour))
            }
            (BucketKey::Topic { hour, .. }, Counted::Rating) => {
                ("report_rating", keys::report_rated(*hour))
            }
            (BucketKey::Agent { agent, hour }, Counted::Ticket) => {
                ("report_ticket_agent", keys::report_agent_done(agent, *hour))
            }
            (BucketKey::Agent { agent, hour }, Counted::Rating) => (
                "report_rating_agent",
                keys::report_agent_rated(agent, *hour),
            ),
        };
        self.apply_once(
            op,
            done,
            ticket_id,
            expire_at_ms,
            &[(bucket.key(), increments)],
        )
        .await
    }

    async fn apply_once(
        &self,
        op: &'static str,
        done: String,
        member: &str,
        expire_at_ms: u64,
        hashes: &[(String, &[(String, i64)])],
    ) -> StoreResult<bool> {
        let mut invocation = APPLY_ONCE.key(done);
        invocation.arg(member).arg(expire_at_ms);
        for (key, increments) in hashes {
            invocation.key(key).arg(increments.len());
            for (field, n) in *increments {
                invocation.arg(field).arg(*n);
            }
        }
        let mut conn = self.conn();
        self.run(op, async move {
            invocation
                .invoke_async::<i64>(&mut conn)
                .await
                .map(|n| n == 1)
        })
        .await
    }

    /// The agent's state record: its raw text (what [`Store::report_advance_state`]
    /// expects back) and its parsed form.
    pub async fn report_agent_state(
        &self,
        agent: &str,
    ) -> StoreResult<Option<(String, StateRecord)>> {
        let conn = self.conn();
        let key = keys::report_agent_state(agent);
        let raw: Option<String> = self
            .run_read("report_agent_state", || {
                let (key, mut conn) = (key.clone(), conn.clone());
                async move { redis::cmd("GET").arg(key).query_async(&mut conn).await }
            })
            .await?;
        match raw {
            None => Ok(None),
            Some(raw) => {
                let record = serde_json::from_str(&raw)?;
                Ok(Some((raw, record)))
            }
        }
    }

    /// Replaces the agent's state record with `new` and adds `spans` to its hour hashes, only if the record is still `expected` (raw text,
    /// `None`: no record); false when another writer came first (nothing written).
    pub async fn report_advance_state(
        &self,
        agent: &str,
        expected: Option<&str>,
        new: &StateRecord,
        keep_ms: u64,
        spans: &[HourSpan],
    ) -> StoreResult<bool> {
        let json = serde_json::to_string(new)?;
        let mut invocation = ADVANCE_STATE.key(keys::report_agent_state(agent));
        invocation
            .arg(expected.unwrap_or(""))
            .arg(json)
            .arg(keep_ms.max(1));
        for span in spans {
            invocation
                .key(keys::report_agent(agent, span.hour))
                .arg(span.expire_at)
                .arg(span.increments.len());
            for (field, n) in &span.increments {
                invocation.arg(field).arg(*n);
            }
        }
        let mut conn = self.conn();
        self.run("report_agent_state", async move {
            invocation
                .invoke_async::<i64>(&mut conn)
                .await
                .map(|n| n == 1)
        })
        .await
    }

    /// Every hash of `buckets`, in order (empty for a missing one): pipelined `HGETALL`s,
    /// one pipeline per slot group on a cluster, chunks of [`READ_CHUNK`] on one server.
    pub async fn report_buckets(
        &self,
        buckets: &[BucketKey],
    ) -> StoreResult<Vec<HashMap<String, i64>>> {
        // Batches of (position in `buckets`, key).
        let mut batches: Vec<Vec<(usize, String)>> = Vec::new();
        if self.topology.is_cluster() {
            let mut by_group: HashMap<String, usize> = HashMap::new();
            for (at, bucket) in buckets.iter().enumerate() {
                let batch = *by_group.entry(bucket.slot_group()).or_insert_with(|| {
                    batches.push(Vec::new());
                    batches.len() - 1
                });
                batches[batch].push((at, bucket.key()));
            }
        } else {
            let keyed: Vec<(usize, String)> = buckets
                .iter()
                .enumerate()
                .map(|(at, b)| (at, b.key()))
                .collect();
            batches = keyed.chunks(READ_CHUNK).map(<[_]>::to_vec).collect();
        }
        let replies = futures_util::stream::iter(batches)
            .map(|batch| self.read_batch(batch))
            .buffered(READS_AT_ONCE)
            .collect::<Vec<_>>()
            .await;
        let mut out = vec![HashMap::new(); buckets.len()];
        for reply in replies {
            for (at, fields) in reply? {
                out[at] = fields;
            }
        }
        Ok(out)
    }

    async fn read_batch(
        &self,
        batch: Vec<(usize, String)>,
    ) -> StoreResult<Vec<(usize, HashMap<String, i64>)>> {
        // A turn on the large-read connection, like history pages: a long report takes
        // its turns among them rather than crowding them out.
        let _turn = self.bulk_turn().await?;
        let mut pipe = redis::pipe();
        for (_, key) in &batch {
            pipe.cmd("HGETALL").arg(key);
        }
        let conn = self.bulk_conn();
        let hashes: Vec<HashMap<String, i64>> = self
            .run_read("report_read", || {
                let (pipe, mut conn) = (pipe.clone(), conn.clone());
                async move { pipe.query_async(&mut conn).await }
            })
            .await?;
        Ok(batch.into_iter().map(|(at, _)| at).zip(hashes).collect())
    }
}
