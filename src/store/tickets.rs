//! Tickets and the webhook outbox. A ticket is written with `SET NX` in the same script
//! that appends it to the ticket log and the outbox, so flushing twice (a retry after a
//! crash, two nodes racing) stores and delivers it once. The same script gives the ticket
//! its TTL and trims log entries older than that, so neither grows forever.

use std::sync::LazyLock;

use redis::{
    streams::{StreamId, StreamRangeReply},
    Script,
};

use super::{keys, outbox::field, Store, StoreResult};

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

    /// The cursor as an exclusive `XRANGE`/`XREVRANGE` bound.
    pub(super) fn exclusive(&self) -> String {
        format!("({}-{}", self.ms, self.seq)
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

/// Which way a stream is paged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StreamOrder {
    /// Oldest first (`XRANGE`), from after the cursor.
    Oldest,
    /// Newest first (`XREVRANGE`), from before the cursor.
    Newest,
}

pub struct TicketPage {
    pub tickets: Vec<String>,
    pub next: Option<String>,
}

impl Store {
    /// A page of a stream's entries past the cursor in `order`, at most `limit`, with
    /// the cursor of the next page when there is one; `None` when nothing can follow
    /// the cursor.
    pub(super) async fn stream_page(
        &self,
        op: &'static str,
        key: String,
        order: StreamOrder,
        cursor: Option<&StreamCursor>,
        limit: usize,
    ) -> StoreResult<Option<(Vec<StreamId>, Option<String>)>> {
        let (command, start, end) = match order {
            StreamOrder::Oldest => {
                let Some(start) = StreamCursor::range_start(cursor) else {
                    return Ok(None);
                };
                ("XRANGE", start, "+")
            }
            StreamOrder::Newest => (
                "XREVRANGE",
                cursor.map_or_else(|| "+".to_string(), StreamCursor::exclusive),
                "-",
            ),
        };
        let mut conn = self.conn();
        let reply: StreamRangeReply = self
            .run(op, async move {
                redis::cmd(command)
                    .arg(key)
                    .arg(start)
                    .arg(end)
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

    /// A ticket's JSON, transcript included (`ticket_form`).
    pub async fn ticket(&self, ticket_id: &str) -> StoreResult<Option<String>> {
        match self.stored_ticket(ticket_id).await? {
            Some(stored) => self.whole_ticket(stored).await.map(Some),
            None => Ok(None),
        }
    }

    /// A ticket as stored: its transcript may be a reference to its conversation's
    /// events (`ticket_form`).
    pub async fn stored_ticket(&self, ticket_id: &str) -> StoreResult<Option<String>> {
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
        self.ticket_log_page(StreamOrder::Oldest, after, limit)
            .await
    }

    /// Tickets in reverse flush order (newest first) before the cursor, at most
    /// `limit`; like [`Store::tickets`], expired entries are skipped.
    pub async fn tickets_newest(
        &self,
        before: Option<&StreamCursor>,
        limit: usize,
    ) -> StoreResult<TicketPage> {
        self.ticket_log_page(StreamOrder::Newest, before, limit)
            .await
    }

    /// A page of the ticket log in `order`, read as the tickets it names (one `MGET`).
    async fn ticket_log_page(
        &self,
        order: StreamOrder,
        cursor: Option<&StreamCursor>,
        limit: usize,
    ) -> StoreResult<TicketPage> {
        let Some((page, next)) = self
            .stream_page("ticket_log", keys::ticket_log(), order, cursor, limit)
            .await?
        else {
            return Ok(TicketPage {
                tickets: Vec::new(),
                next: None,
            });
        };
        let ids = page
            .iter()
            .map(|entry| field(&entry.map, "ticket_id"))
            .collect::<StoreResult<Vec<_>>>()?;
        let found = self.tickets_by_id(ids.iter().map(String::as_str)).await?;
        Ok(TicketPage {
            tickets: found.into_iter().flatten().collect(),
            next,
        })
    }
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
