//! Tickets and the webhook outbox. A ticket is written with `SET NX` in the same script
//! that appends it to the ticket log and the outbox, so flushing twice (a retry after a
//! crash, two nodes racing) stores and delivers it once. The same script gives the ticket
//! its TTL and trims log entries older than that, so neither grows forever.

use std::{collections::HashMap, sync::LazyLock};

use redis::{
    streams::{StreamId, StreamRangeReply},
    Script, Value,
};

use super::{keys, Store, StoreError, StoreResult};

/// KEYS: ticket, log, outbox. ARGV: ticket id, ticket JSON, with_webhook ("1"/"0"),
/// time to keep in ms ("0": forever).
///
/// The log's entry ids are Redis's clock in ms, so the new entry's id tells the script
/// "now" and `MINID now - keep` drops exactly the entries whose tickets have expired
/// (approximately, `~`: whole stream nodes at a time, which is far cheaper; a page
/// skips an entry whose ticket is gone, so a straggler costs nothing).
static STORE_TICKET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local keep = tonumber(ARGV[4])
local stored
if keep > 0 then
  stored = redis.call('SET', KEYS[1], ARGV[2], 'NX', 'PX', keep)
else
  stored = redis.call('SET', KEYS[1], ARGV[2], 'NX')
end
if not stored then return 0 end
local entry = redis.call('XADD', KEYS[2], '*', 'ticket_id', ARGV[1])
local now = tonumber(string.match(entry, '^%d+'))
if keep > 0 and now > keep then
  redis.call('XTRIM', KEYS[2], 'MINID', '~', string.format('%.0f', now - keep))
end
if ARGV[3] == '1' then redis.call('XADD', KEYS[3], '*', 'ticket_id', ARGV[1]) end
return 1
"#,
    )
});

/// A paging cursor into a stream (the ticket log, the audit log): the id of the last
/// entry of the previous page, `<ms>-<seq>`. Parsed strictly (digits only), so what
/// reaches Redis is always a well-formed id and a bad cursor is the client's mistake,
/// never "storage unavailable".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamCursor {
    ms: u64,
    seq: u64,
}

impl StreamCursor {
    /// `None` when `text` is not a stream id.
    pub fn parse(text: &str) -> Option<StreamCursor> {
        let digits = |part: &str| -> Option<u64> {
            if part.is_empty() || part.len() > 20 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            part.parse().ok()
        };
        let (ms, seq) = text.split_once('-')?;
        let cursor = StreamCursor {
            ms: digits(ms)?,
            seq: digits(seq)?,
        };
        // Nothing can follow the largest id: no page ever ends there.
        ((cursor.ms, cursor.seq) != (u64::MAX, u64::MAX)).then_some(cursor)
    }

    /// The first id after the cursor, as an `XRANGE` start (`-` without a cursor).
    pub(super) fn range_start(cursor: Option<&StreamCursor>) -> Option<String> {
        match cursor {
            None => Some("-".into()),
            Some(c) if c.seq < u64::MAX => Some(format!("{}-{}", c.ms, c.seq + 1)),
            Some(c) if c.ms < u64::MAX => Some(format!("{}-0", c.ms + 1)),
            Some(_) => None, // refused by `parse`; an empty page all the same
        }
    }
}

pub struct TicketPage {
    pub tickets: Vec<String>,
    pub next: Option<String>,
}

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

fn field(map: &HashMap<String, Value>, name: &str) -> StoreResult<String> {
    map.get(name)
        .map(redis::from_redis_value_ref::<String>)
        .transpose()
        .map_err(|err| StoreError::Corrupt(err.to_string()))?
        .ok_or_else(|| StoreError::Corrupt(format!("stream entry without {name}")))
}

impl Store {
    /// A page of a stream's entries after `after`, at most `limit`, with the cursor of
    /// the next page when there is one; `None` when nothing can follow the cursor.
    pub(super) async fn stream_page(
        &self,
        op: &'static str,
        key: String,
        after: Option<&StreamCursor>,
        limit: usize,
    ) -> StoreResult<Option<(Vec<StreamId>, Option<String>)>> {
        let Some(start) = StreamCursor::range_start(after) else {
            return Ok(None);
        };
        let mut conn = self.conn();
        let reply: StreamRangeReply = self
            .run(op, async move {
                redis::cmd("XRANGE")
                    .arg(key)
                    .arg(start)
                    .arg("+")
                    .arg("COUNT")
                    .arg(limit.saturating_add(1))
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        let more = reply.ids.len() > limit;
        let mut page = reply.ids;
        page.truncate(limit);
        let next = more
            .then(|| page.last().map(|entry| entry.id.clone()))
            .flatten();
        Ok(Some((page, next)))
    }

    /// Stores a ticket once, kept for `keep_ms` (`None`: forever); false when it
    /// already existed (its TTL is then the one it was stored with).
    pub async fn store_ticket(
        &self,
        ticket_id: &str,
        json: &str,
        with_webhook: bool,
        keep_ms: Option<u64>,
    ) -> StoreResult<bool> {
        let mut invocation = STORE_TICKET.key(keys::ticket(ticket_id));
        invocation
            .key(keys::ticket_log())
            .key(keys::webhook_outbox())
            .arg(ticket_id)
            .arg(json)
            .arg(if with_webhook { "1" } else { "0" })
            .arg(keep_ms.map_or(0, |ms| ms.max(1)));
        let mut conn = self.conn();
        self.run("store_ticket", async move {
            invocation
                .invoke_async::<i64>(&mut conn)
                .await
                .map(|n| n == 1)
        })
        .await
    }

    /// Replaces a stored ticket (to attach a rating); false when there is none (not yet
    /// stored, or expired). The ticket keeps its expiry: a plain `SET` would drop it and
    /// keep every rated ticket forever.
    pub async fn replace_ticket(&self, ticket_id: &str, json: &str) -> StoreResult<bool> {
        let mut conn = self.conn();
        let key = keys::ticket(ticket_id);
        let json = json.to_string();
        self.run("replace_ticket", async move {
            let set: Option<String> = redis::cmd("SET")
                .arg(key)
                .arg(json)
                .arg("XX")
                .arg("KEEPTTL")
                .query_async(&mut conn)
                .await?;
            Ok(set.is_some())
        })
        .await
    }

    pub async fn ticket(&self, ticket_id: &str) -> StoreResult<Option<String>> {
        let mut conn = self.conn();
        let key = keys::ticket(ticket_id);
        self.run("ticket", async move {
            redis::cmd("GET").arg(key).query_async(&mut conn).await
        })
        .await
    }

    /// Tickets in flush order after the cursor (a log entry id), at most `limit`. A log
    /// entry whose ticket has expired (the log is trimmed lazily) is skipped, so a page
    /// may hold fewer tickets than `limit` while `next` still moves on.
    pub async fn tickets(
        &self,
        after: Option<&StreamCursor>,
        limit: usize,
    ) -> StoreResult<TicketPage> {
        let Some((page, next)) = self
            .stream_page("ticket_log", keys::ticket_log(), after, limit)
            .await?
        else {
            return Ok(TicketPage {
                tickets: Vec::new(),
                next: None,
            });
        };
        let keys = page
            .iter()
            .map(|entry| field(&entry.map, "ticket_id").map(|id| keys::ticket(&id)))
            .collect::<StoreResult<Vec<_>>>()?;
        if keys.is_empty() {
            return Ok(TicketPage {
                tickets: Vec::new(),
                next,
            });
        }
        // One round trip for the page; every ticket key shares the `{tickets}` tag.
        let mut conn = self.conn();
        let found: Vec<Option<String>> = self
            .run("tickets", async move {
                redis::cmd("MGET").arg(keys).query_async(&mut conn).await
            })
            .await?;
        let tickets = found.into_iter().flatten().collect();
        Ok(TicketPage { tickets, next })
    }

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

#[cfg(test)]
mod tests {
    use super::StreamCursor;

    #[test]
    fn cursors_are_stream_ids_only() {
        for good in ["0-0", "1796290375755-0", "1-18446744073709551615"] {
            assert!(StreamCursor::parse(good).is_some(), "{good}");
        }
        for bad in [
            "",
            "-",
            "5",
            "+1-0",
            "1-+0",
            "-1-0",
            "1-0-0",
            "a-0",
            " 1-0",
            "18446744073709551616-0",
            "18446744073709551615-18446744073709551615",
        ] {
            assert!(StreamCursor::parse(bad).is_none(), "{bad}");
        }
        let start = |c: &str| StreamCursor::range_start(StreamCursor::parse(c).as_ref());
        assert_eq!(start("5-3").as_deref(), Some("5-4"));
        assert_eq!(start("5-18446744073709551615").as_deref(), Some("6-0"));
        assert_eq!(StreamCursor::range_start(None).as_deref(), Some("-"));
    }
}
