//! The webhook outbox: a Redis stream read through a consumer group, so a delivery
//! stays pending until acknowledged, survives restarts and moves to another node when
//! its node is gone (taken over at once by heartbeat, or after a long idle time).

use std::collections::HashMap;

use redis::Value;

use super::{keys, Store, StoreError, StoreResult};

/// One pending webhook delivery read from the outbox stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    pub entry_id: String,
    pub ticket_id: String,
    /// When the entry was added (ms since the epoch, from its stream id).
    pub added_ms: u64,
}

fn outbox_entry(entry_id: String, map: &HashMap<String, Value>) -> StoreResult<OutboxEntry> {
    let ticket_id = field(map, "ticket_id")?;
    let added_ms = entry_id
        .split('-')
        .next()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(0);
    Ok(OutboxEntry {
        entry_id,
        ticket_id,
        added_ms,
    })
}

pub(super) fn field(map: &HashMap<String, Value>, name: &str) -> StoreResult<String> {
    map.get(name)
        .map(redis::from_redis_value_ref::<String>)
        .transpose()
        .map_err(|err| StoreError::Corrupt(err.to_string()))?
        .ok_or_else(|| StoreError::Corrupt(format!("stream entry without {name}")))
}

impl Store {
    /// Makes sure the outbox consumer group exists (idempotent).
    pub async fn ensure_outbox_group(&self, group: &str) -> StoreResult<()> {
        let mut conn = self.conn();
        let group = group.to_string();
        self.run("outbox_group", async move {
            let created: redis::RedisResult<()> = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(keys::webhook_outbox())
                .arg(&group)
                .arg("0")
                .arg("MKSTREAM")
                .query_async(&mut conn)
                .await;
            match created {
                Err(err) if err.to_string().contains("BUSYGROUP") => Ok(()),
                other => other,
            }
        })
        .await
    }

    /// Outbox entries for `consumer`: its own pending ones (`pending`: after a restart)
    /// or new ones never handed out.
    pub async fn read_outbox(
        &self,
        group: &str,
        consumer: &str,
        pending: bool,
        count: usize,
    ) -> StoreResult<Vec<OutboxEntry>> {
        let mut conn = self.conn();
        let (group, consumer) = (group.to_string(), consumer.to_string());
        let reply: Option<redis::streams::StreamReadReply> = self
            .run("outbox_read", async move {
                redis::cmd("XREADGROUP")
                    .arg("GROUP")
                    .arg(&group)
                    .arg(&consumer)
                    .arg("COUNT")
                    .arg(count)
                    .arg("STREAMS")
                    .arg(keys::webhook_outbox())
                    .arg(if pending { "0" } else { ">" })
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        let mut entries = Vec::new();
        for key in reply.map(|r| r.keys).unwrap_or_default() {
            for id in key.ids {
                if id.map.is_empty() {
                    continue; // deleted while pending
                }
                entries.push(outbox_entry(id.id, &id.map)?);
            }
        }
        Ok(entries)
    }

    /// Takes over entries another consumer (a node that died) left pending longer
    /// than `min_idle_ms`.
    pub async fn adopt_outbox(
        &self,
        group: &str,
        consumer: &str,
        min_idle_ms: u64,
        count: usize,
    ) -> StoreResult<Vec<OutboxEntry>> {
        let mut conn = self.conn();
        let (group, consumer) = (group.to_string(), consumer.to_string());
        let reply: Value = self
            .run("outbox_adopt", async move {
                redis::cmd("XAUTOCLAIM")
                    .arg(keys::webhook_outbox())
                    .arg(&group)
                    .arg(&consumer)
                    .arg(min_idle_ms)
                    .arg("0-0")
                    .arg("COUNT")
                    .arg(count)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        parse_autoclaim(reply)
            .into_iter()
            .map(|(id, map)| outbox_entry(id, &map))
            .collect()
    }

    /// Consumers of the outbox group with entries pending, and how many each.
    pub async fn outbox_consumers(&self, group: &str) -> StoreResult<Vec<(String, u64)>> {
        let mut conn = self.conn();
        let group = group.to_string();
        let reply: Value = self
            .run("outbox_consumers", async move {
                redis::cmd("XPENDING")
                    .arg(keys::webhook_outbox())
                    .arg(&group)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        // XPENDING summary → [count, first id, last id, [[consumer, count], ...]]
        let Value::Array(parts) = reply else {
            return Ok(Vec::new());
        };
        let Some(Value::Array(consumers)) = parts.into_iter().nth(3) else {
            return Ok(Vec::new());
        };
        Ok(consumers
            .into_iter()
            .filter_map(|pair| {
                let (name, count): (String, String) = redis::from_redis_value(pair).ok()?;
                Some((name, count.parse().ok()?))
            })
            .collect())
    }

    /// Takes every entry pending at consumer `from` (a node that is gone) for `to`.
    pub async fn claim_outbox_of(
        &self,
        group: &str,
        from: &str,
        to: &str,
        count: usize,
    ) -> StoreResult<Vec<OutboxEntry>> {
        let mut conn = self.conn();
        let (group, from, to) = (group.to_string(), from.to_string(), to.to_string());
        let reply: Value = self
            .run("outbox_claim", async move {
                let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
                    .arg(keys::webhook_outbox())
                    .arg(&group)
                    .arg("-")
                    .arg("+")
                    .arg(count)
                    .arg(&from)
                    .query_async(&mut conn)
                    .await?;
                if pending.is_empty() {
                    return Ok(Value::Array(Vec::new()));
                }
                let mut claim = redis::cmd("XCLAIM");
                claim
                    .arg(keys::webhook_outbox())
                    .arg(&group)
                    .arg(&to)
                    .arg(0);
                for (id, ..) in &pending {
                    claim.arg(id);
                }
                claim.query_async(&mut conn).await
            })
            .await?;
        // XCLAIM answers the entries as XRANGE does: wrap it as XAUTOCLAIM's middle part.
        parse_autoclaim(Value::Array(vec![Value::Nil, reply]))
            .into_iter()
            .map(|(id, map)| outbox_entry(id, &map))
            .collect()
    }

    /// Attempts so far and the earliest next attempt (ms) of a delivery.
    pub async fn outbox_retry(&self, entry_id: &str) -> StoreResult<(u32, u64)> {
        let mut conn = self.conn();
        let id = entry_id.to_string();
        let value: Option<String> = self
            .run("outbox_retry", async move {
                redis::cmd("HGET")
                    .arg(keys::webhook_retries())
                    .arg(id)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        Ok(value
            .and_then(|v| {
                let (attempts, next) = v.split_once(':')?;
                Some((attempts.parse().ok()?, next.parse().ok()?))
            })
            .unwrap_or((0, 0)))
    }

    pub async fn set_outbox_retry(
        &self,
        entry_id: &str,
        attempts: u32,
        next_at_ms: u64,
    ) -> StoreResult<()> {
        let mut conn = self.conn();
        let id = entry_id.to_string();
        self.run("outbox_retry_set", async move {
            redis::cmd("HSET")
                .arg(keys::webhook_retries())
                .arg(id)
                .arg(format!("{attempts}:{next_at_ms}"))
                .query_async::<i64>(&mut conn)
                .await
                .map(|_| ())
        })
        .await
    }

    /// Marks a delivery done (or dead-lettered) so it is never handed out again.
    pub async fn ack_outbox(
        &self,
        group: &str,
        entry_id: &str,
        dead_letter: Option<&str>,
    ) -> StoreResult<()> {
        let mut conn = self.conn();
        let (group, id) = (group.to_string(), entry_id.to_string());
        let dead = dead_letter.map(str::to_string);
        self.run("outbox_ack", async move {
            let mut pipe = redis::pipe();
            pipe.atomic();
            if let Some(ticket_id) = dead {
                pipe.cmd("RPUSH")
                    .arg(keys::webhook_dead_letters())
                    .arg(ticket_id)
                    .ignore();
            }
            pipe.cmd("XACK")
                .arg(keys::webhook_outbox())
                .arg(&group)
                .arg(&id)
                .ignore();
            pipe.cmd("XDEL")
                .arg(keys::webhook_outbox())
                .arg(&id)
                .ignore();
            pipe.cmd("HDEL")
                .arg(keys::webhook_retries())
                .arg(&id)
                .ignore();
            pipe.query_async::<()>(&mut conn).await
        })
        .await
    }

    pub async fn dead_letters(&self) -> StoreResult<Vec<String>> {
        let mut conn = self.conn();
        self.run("dead_letters", async move {
            redis::cmd("LRANGE")
                .arg(keys::webhook_dead_letters())
                .arg(0)
                .arg(-1)
                .query_async(&mut conn)
                .await
        })
        .await
    }

    pub async fn outbox_pending(&self) -> StoreResult<u64> {
        let mut conn = self.conn();
        self.run("outbox_len", async move {
            redis::cmd("XLEN")
                .arg(keys::webhook_outbox())
                .query_async(&mut conn)
                .await
        })
        .await
    }
}

impl StoreError {
    /// The outbox stream or its consumer group is gone (the key was deleted, Redis was
    /// flushed): the group must be created again before the outbox can be read.
    pub fn is_missing_group(&self) -> bool {
        matches!(self, StoreError::Unavailable(cause) if cause.contains("NOGROUP"))
    }
}

fn parse_autoclaim(reply: Value) -> Vec<(String, HashMap<String, Value>)> {
    // XAUTOCLAIM → [next_cursor, [[id, [field, value, ...]], ...], [deleted ids]]
    let mut out = Vec::new();
    let Value::Array(parts) = reply else {
        return out;
    };
    let Some(Value::Array(entries)) = parts.into_iter().nth(1) else {
        return out;
    };
    for entry in entries {
        let Value::Array(pair) = entry else { continue };
        let mut pair = pair.into_iter();
        let (Some(id), Some(Value::Array(fields))) = (pair.next(), pair.next()) else {
            continue;
        };
        let Ok(id) = redis::from_redis_value::<String>(id) else {
            continue;
        };
        let mut map = HashMap::new();
        let mut fields = fields.into_iter();
        while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
            if let Ok(name) = redis::from_redis_value::<String>(name) {
                map.insert(name, value);
            }
        }
        out.push((id, map));
    }
    out
}
