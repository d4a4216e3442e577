//! What the nodes of one deployment share to act as one service: the routing lease and
//! its epoch (the fencing token), the assignment ledger that every routing write is
//! checked against, agent statuses, and node heartbeats. All of it lives under the
//! `{router}` hash tag, so on a Redis Cluster each script stays in one slot.
//!
//! Every script here is safe to run twice (the cluster client retries after MOVED/ASK
//! and dropped connections): a second run finds its own write and answers the same.

use std::{collections::HashMap, sync::LazyLock};

use redis::Script;

use super::{keys, Store, StoreResult};

/// Takes the lease when nobody holds it: a new epoch, one more than any before.
/// KEYS: lease, epoch. ARGV: node id, ttl ms. Returns the epoch, or 0 when held.
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local held = redis.call('GET', KEYS[1])
if held then
  local node, epoch = string.match(held, '^(.*)|(%d+)$')
  if node == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return tonumber(epoch)
  end
  return 0
end
local epoch = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. epoch, 'PX', ARGV[2])
return epoch
"#,
    )
});

/// Extends the lease only while this node still holds it with this epoch.
/// KEYS: lease. ARGV: node id|epoch, ttl ms. Returns 1 when renewed.
static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"#,
    )
});

/// Gives the lease up (a node shutting down), only if still its own.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#,
    )
});

/// Records that a conversation is served by an agent, if the caller routes with the
/// latest epoch and the agent has room. A second run with the same arguments finds the
/// entry and answers "reserved" again.
/// KEYS: epoch, ledger, load. ARGV: epoch, conversation, agent, capacity.
/// Returns 1 reserved, -1 stale epoch, -2 the agent is full.
static RESERVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if tonumber(redis.call('GET', KEYS[1]) or '0') ~= tonumber(ARGV[1]) then return -1 end
local current = redis.call('HGET', KEYS[2], ARGV[2])
if current == ARGV[3] then return 1 end
local load = tonumber(redis.call('HGET', KEYS[3], ARGV[3]) or '0')
if load >= tonumber(ARGV[4]) then return -2 end
if current then
  local left = redis.call('HINCRBY', KEYS[3], current, -1)
  if left <= 0 then redis.call('HDEL', KEYS[3], current) end
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('HINCRBY', KEYS[3], ARGV[3], 1)
return 1
"#,
    )
});

/// Forgets a conversation's entry (closed, or back in the queue): the agent's load
/// drops by one. Running it twice finds no entry the second time.
/// KEYS: ledger, load. ARGV: conversation. Returns 1 when there was an entry.
static FREE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local agent = redis.call('HGET', KEYS[1], ARGV[1])
if not agent then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
local left = redis.call('HINCRBY', KEYS[2], agent, -1)
if left <= 0 then redis.call('HDEL', KEYS[2], agent) end
return 1
"#,
    )
});

/// Makes the ledger say what the conversations' records say, at a takeover: a routing
/// node that died between a reservation and the `joined` it fenced left the ledger ahead
/// of the record (the new agent counted, the old one not). Checked against the epoch.
/// KEYS: epoch, ledger, load. ARGV: epoch, then conversation, agent pairs.
/// Returns 1, or -1 when a later epoch routes.
static REWRITE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if tonumber(redis.call('GET', KEYS[1]) or '0') ~= tonumber(ARGV[1]) then return -1 end
redis.call('DEL', KEYS[2], KEYS[3])
for i = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  redis.call('HINCRBY', KEYS[3], ARGV[i + 1], 1)
end
return 1
"#,
    )
});

/// Why a reservation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    Reserved,
    /// Another node routes now, with a later epoch: this node must stop.
    Stale,
    /// The agent holds its capacity already (in Redis, whatever this node believed).
    Full,
}

impl Store {
    /// Takes or keeps the routing lease: `Some(epoch)` while this node holds it.
    pub async fn acquire_lease(&self, node: &str, ttl_ms: u64) -> StoreResult<Option<u64>> {
        let mut conn = self.conn();
        let mut invocation = ACQUIRE.key(keys::router_lease());
        invocation.key(keys::router_epoch()).arg(node).arg(ttl_ms);
        let epoch: u64 = self
            .run("acquire_lease", async move {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
        Ok((epoch > 0).then_some(epoch))
    }

    pub async fn renew_lease(&self, node: &str, epoch: u64, ttl_ms: u64) -> StoreResult<bool> {
        let mut conn = self.conn();
        let mut invocation = RENEW.key(keys::router_lease());
        invocation.arg(format!("{node}|{epoch}")).arg(ttl_ms);
        let renewed: i64 = self
            .run("renew_lease", async move {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
        Ok(renewed == 1)
    }

    pub async fn release_lease(&self, node: &str, epoch: u64) -> StoreResult<()> {
        let mut conn = self.conn();
        let mut invocation = RELEASE.key(keys::router_lease());
        invocation.arg(format!("{node}|{epoch}"));
        self.run("release_lease", async move {
            invocation.invoke_async::<i64>(&mut conn).await
        })
        .await?;
        Ok(())
    }

    /// The node holding the routing lease now, with its epoch.
    pub async fn lease_holder(&self) -> StoreResult<Option<(String, u64)>> {
        let conn = self.conn();
        let held: Option<String> = self
            .run_read("lease_holder", || {
                let mut conn = conn.clone();
                async move {
                    redis::cmd("GET")
                        .arg(keys::router_lease())
                        .query_async(&mut conn)
                        .await
                }
            })
            .await?;
        Ok(held.and_then(|held| {
            let (node, epoch) = held.rsplit_once('|')?;
            Some((node.to_string(), epoch.parse().ok()?))
        }))
    }

    /// Records `conversation` as served by `agent`, checked against the epoch and the
    /// agent's capacity by Redis itself.
    pub async fn reserve(
        &self,
        epoch: u64,
        conversation: &str,
        agent: &str,
        capacity: u32,
    ) -> StoreResult<Reservation> {
        let mut conn = self.conn();
        let mut invocation = RESERVE.key(keys::router_epoch());
        invocation
            .key(keys::router_ledger())
            .key(keys::router_load())
            .arg(epoch)
            .arg(conversation)
            .arg(agent)
            .arg(capacity);
        let answer: i64 = self
            .run("reserve", async move {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
        Ok(match answer {
            1 => Reservation::Reserved,
            -1 => Reservation::Stale,
            _ => Reservation::Full,
        })
    }

    /// Rewrites the ledger (and the loads counted from it) as `assignments`
    /// (conversation, agent) of the open conversations: `false` when a later epoch routes.
    pub async fn rewrite_ledger(
        &self,
        epoch: u64,
        assignments: &[(String, String)],
    ) -> StoreResult<bool> {
        let mut conn = self.conn();
        let mut invocation = REWRITE.key(keys::router_epoch());
        invocation
            .key(keys::router_ledger())
            .key(keys::router_load())
            .arg(epoch);
        for (conversation, agent) in assignments {
            invocation.arg(conversation).arg(agent);
        }
        let answer: i64 = self
            .run("rewrite_ledger", async move {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
        Ok(answer == 1)
    }

    /// Drops a conversation's ledger entry (closed or queued again).
    pub async fn free_reservation(&self, conversation: &str) -> StoreResult<()> {
        let mut conn = self.conn();
        let mut invocation = FREE.key(keys::router_ledger());
        invocation.key(keys::router_load()).arg(conversation);
        self.run("free_reservation", async move {
            invocation.invoke_async::<i64>(&mut conn).await
        })
        .await?;
        Ok(())
    }

    /// The whole ledger: conversation → agent.
    pub async fn ledger(&self) -> StoreResult<HashMap<String, String>> {
        self.whole_hash("ledger", keys::router_ledger()).await
    }

    /// Every field of a (small, shared) hash.
    async fn whole_hash(
        &self,
        op: &'static str,
        key: String,
    ) -> StoreResult<HashMap<String, String>> {
        let conn = self.conn();
        self.run_read(op, || {
            let (mut conn, key) = (conn.clone(), key.clone());
            async move { redis::cmd("HGETALL").arg(key).query_async(&mut conn).await }
        })
        .await
    }

    /// The conversations the ledger has `agent` serving.
    pub async fn conversations_of(&self, agent: &str) -> StoreResult<Vec<String>> {
        let mut held: Vec<String> = self
            .ledger()
            .await?
            .into_iter()
            .filter(|(_, serving)| serving == agent)
            .map(|(conversation, _)| conversation)
            .collect();
        held.sort();
        Ok(held)
    }

    /// Remembers an agent's chosen status, so a node that takes routing over keeps it.
    pub async fn save_status(&self, agent: &str, status: &str) -> StoreResult<()> {
        let mut conn = self.conn();
        let (agent, status) = (agent.to_string(), status.to_string());
        self.run("save_status", async move {
            redis::cmd("HSET")
                .arg(keys::router_statuses())
                .arg(agent)
                .arg(status)
                .query_async::<i64>(&mut conn)
                .await
        })
        .await?;
        Ok(())
    }

    pub async fn statuses(&self) -> StoreResult<HashMap<String, String>> {
        self.whole_hash("statuses", keys::router_statuses()).await
    }

    /// Announces this node for `ttl_ms` more: `record` is what `GET /v1/nodes` shows
    /// and the router reads (its agents' tabs).
    pub async fn heartbeat(&self, node: &str, record: &str, ttl_ms: u64) -> StoreResult<()> {
        let mut conn = self.conn();
        let (node, record) = (node.to_string(), record.to_string());
        self.run("heartbeat", async move {
            redis::pipe()
                .cmd("SET")
                .arg(keys::node(&node))
                .arg(record)
                .arg("PX")
                .arg(ttl_ms)
                .ignore()
                .cmd("SADD")
                .arg(keys::nodes())
                .arg(&node)
                .ignore()
                .query_async::<()>(&mut conn)
                .await
        })
        .await
    }

    /// A node leaving on purpose: gone at once rather than when its heartbeat expires.
    pub async fn forget_node(&self, node: &str) -> StoreResult<()> {
        let mut conn = self.conn();
        let node = node.to_string();
        self.run("forget_node", async move {
            redis::pipe()
                .cmd("DEL")
                .arg(keys::node(&node))
                .ignore()
                .cmd("SREM")
                .arg(keys::nodes())
                .arg(&node)
                .ignore()
                .query_async::<()>(&mut conn)
                .await
        })
        .await
    }

    /// The records of the live nodes (heartbeat not expired), by node id. Ids whose
    /// heartbeat expired are dropped from the set on the way.
    pub async fn live_nodes(&self) -> StoreResult<Vec<(String, String)>> {
        let conn = self.conn();
        let ids: Vec<String> = self
            .run_read("nodes", || {
                let mut conn = conn.clone();
                async move {
                    redis::cmd("SMEMBERS")
                        .arg(keys::nodes())
                        .query_async(&mut conn)
                        .await
                }
            })
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // One MGET for all records: every key is in the `{router}` slot.
        let mut conn = self.conn();
        let record_keys: Vec<String> = ids.iter().map(|id| keys::node(id)).collect();
        let records: Vec<Option<String>> = self
            .run("nodes", async move {
                redis::cmd("MGET")
                    .arg(record_keys)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        let mut live = Vec::with_capacity(ids.len());
        let mut gone = Vec::new();
        for (id, record) in ids.into_iter().zip(records) {
            match record {
                Some(record) => live.push((id, record)),
                None => gone.push(id),
            }
        }
        if !gone.is_empty() {
            let mut conn = self.conn();
            self.run("forget_nodes", async move {
                redis::cmd("SREM")
                    .arg(keys::nodes())
                    .arg(gone)
                    .query_async::<i64>(&mut conn)
                    .await
            })
            .await?;
        }
        Ok(live)
    }

    /// Publishes `message` on a channel (sharded on a cluster, so it stays in the slot
    /// of the channel's hash tag).
    pub async fn publish(&self, channel: &str, message: &str) -> StoreResult<()> {
        let mut conn = self.conn();
        let command = self.publish_command();
        let (channel, message) = (channel.to_string(), message.to_string());
        self.run("publish", async move {
            redis::cmd(command)
                .arg(channel)
                .arg(message)
                .query_async::<i64>(&mut conn)
                .await
        })
        .await?;
        Ok(())
    }

    /// `SPUBLISH` on a Redis Cluster (the message stays on the shard of its channel),
    /// `PUBLISH` on a single Redis.
    pub fn publish_command(&self) -> &'static str {
        if self.is_cluster() {
            "SPUBLISH"
        } else {
            "PUBLISH"
        }
    }
}
