//! Ticket indexes for customer history (issue 18): sorted sets of tickets per visitor,
//! agent, topic, tag and rating, plus every ticket by close time, read newest or oldest
//! first with a cursor that is a position (close time + ticket id), so tickets flushed
//! meanwhile never shift the pages already read.
//!
//! Every member is `<closed_at, 16 digits>:<ticket id>` with score 0: a lex range is
//! then exactly "after this ticket" and `from`/`to` are lex bounds too. Each index key
//! is written by its own `MULTI` (one key, one slot), safe to repeat: `ZADD` of the same
//! member changes nothing. An entry whose ticket expired (or was erased) is skipped when
//! read and removed then; entries older than the caller's horizon are pruned at each
//! write, and the key itself expires with its newest ticket.
//!
//! Must not decide durations or parse tickets: callers pass horizons and read the JSON.

use super::{keys, Store, StoreResult};

/// Digits of the close time in a member: fixed width, so lex order is time order.
const WIDTH: usize = 16;

/// A position in an index: the close time and id of the last ticket of a page. On the
/// wire `<closed_at>-<ticket id>`, e.g. `1796290375755-t_42`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexCursor {
    pub closed_at: u64,
    pub ticket_id: String,
}

impl IndexCursor {
    /// `None` unless `text` is `<digits>-t_<id chars>`; what reaches Redis is then
    /// always a well-formed bound.
    pub fn parse(text: &str) -> Option<IndexCursor> {
        let (ms, id) = text.split_once('-')?;
        if ms.is_empty() || ms.len() > WIDTH || !ms.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let id_ok = id.starts_with("t_")
            && id.len() <= 64
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        id_ok.then(|| IndexCursor {
            closed_at: ms.parse().unwrap_or(u64::MAX),
            ticket_id: id.to_string(),
        })
    }

    /// The wire form, as `parse` takes it.
    pub fn text(&self) -> String {
        format!("{}-{}", self.closed_at, self.ticket_id)
    }

    fn member(&self) -> String {
        member(self.closed_at, &self.ticket_id)
    }

    fn from_member(member: &str) -> Option<IndexCursor> {
        let (ms, id) = member.split_once(':')?;
        Some(IndexCursor {
            closed_at: ms.parse().ok()?,
            ticket_id: id.to_string(),
        })
    }
}

fn member(closed_at: u64, ticket_id: &str) -> String {
    format!("{closed_at:0WIDTH$}:{ticket_id}")
}

fn time_bound(ms: u64) -> String {
    format!("{ms:0WIDTH$}")
}

/// Which part of an index to read: `from` (inclusive) and `to` (exclusive) close times,
/// and the direction.
#[derive(Debug, Clone, Copy, Default)]
pub struct IndexRange {
    pub from: Option<u64>,
    pub to: Option<u64>,
    pub newest_first: bool,
}

impl IndexRange {
    /// The `ZRANGE … BYLEX` bounds after `after`, in reading order (start, stop).
    fn bounds(&self, after: Option<&IndexCursor>) -> (String, String) {
        let low_from = self.from.map(|f| format!("[{}", time_bound(f)));
        let high_to = self.to.map(|t| format!("({}", time_bound(t)));
        let at = after.map(|c| format!("({}", c.member()));
        // Of two lower (upper) bounds the larger (smaller) wins; "[0…" and "(0…" compare
        // by what follows the bracket.
        let pick = |a: Option<String>, b: Option<String>, larger: bool| match (a, b) {
            (Some(a), Some(b)) => {
                if (a[1..] > b[1..]) == larger {
                    Some(a)
                } else {
                    Some(b)
                }
            }
            (a, b) => a.or(b),
        };
        if self.newest_first {
            let start = pick(at, high_to, false).unwrap_or_else(|| "+".into());
            (start, low_from.unwrap_or_else(|| "-".into()))
        } else {
            let start = pick(at, low_from, true).unwrap_or_else(|| "-".into());
            (start, high_to.unwrap_or_else(|| "+".into()))
        }
    }
}

/// One scanned index entry: its position and its ticket as stored (`None`: expired),
/// which may refer to its conversation for its transcript: a filter reads its other
/// fields, and [`Store::whole_ticket`] makes a ticket that goes out whole.
pub struct IndexEntry {
    pub cursor: IndexCursor,
    pub json: Option<String>,
}

impl Store {
    /// Puts a ticket in each index of `index_keys` (each its own call: they may live in
    /// different slots). Safe to repeat. `keep_ms` is the tickets' lifetime (`None`:
    /// forever): the key expires that long after this write; entries closed before
    /// `prune_before` are dropped.
    pub async fn index_ticket(
        &self,
        index_keys: &[String],
        closed_at: u64,
        ticket_id: &str,
        keep_ms: Option<u64>,
        prune_before: Option<u64>,
    ) -> StoreResult<()> {
        let member = member(closed_at, ticket_id);
        let writes = index_keys.iter().map(|key| {
            let mut pipe = redis::pipe();
            pipe.atomic();
            pipe.cmd("ZADD").arg(key).arg(0).arg(&member).ignore();
            if let Some(before) = prune_before {
                pipe.cmd("ZREMRANGEBYLEX")
                    .arg(key)
                    .arg("-")
                    .arg(format!("({}", time_bound(before)))
                    .ignore();
            }
            match keep_ms {
                Some(ms) => pipe.cmd("PEXPIRE").arg(key).arg(ms.max(1)).ignore(),
                None => pipe.cmd("PERSIST").arg(key).ignore(),
            };
            let mut conn = self.conn();
            self.run("index_ticket", async move {
                pipe.query_async::<()>(&mut conn).await
            })
        });
        for result in futures_util::future::join_all(writes).await {
            result?;
        }
        Ok(())
    }

    /// Records the agents who served a visitor (the agents' permission rule); kept as
    /// long as the visitor's newest ticket. Safe to repeat.
    pub async fn note_served(
        &self,
        visitor_id: &str,
        agents: &[String],
        keep_ms: Option<u64>,
    ) -> StoreResult<()> {
        if agents.is_empty() {
            return Ok(());
        }
        let key = keys::visitor_served(visitor_id);
        let mut pipe = redis::pipe();
        pipe.atomic();
        pipe.cmd("SADD").arg(&key).arg(agents).ignore();
        match keep_ms {
            Some(ms) => pipe.cmd("PEXPIRE").arg(&key).arg(ms.max(1)).ignore(),
            None => pipe.cmd("PERSIST").arg(&key).ignore(),
        };
        let mut conn = self.conn();
        self.run("note_served", async move {
            pipe.query_async::<()>(&mut conn).await
        })
        .await
    }

    /// Whether `agent` served the visitor in a ticket still kept.
    pub async fn served(&self, visitor_id: &str, agent: &str) -> StoreResult<bool> {
        let mut conn = self.conn();
        let key = keys::visitor_served(visitor_id);
        let agent = agent.to_string();
        self.run("served", async move {
            redis::cmd("SISMEMBER")
                .arg(key)
                .arg(agent)
                .query_async(&mut conn)
                .await
        })
        .await
    }

    /// Up to `count` entries of an index after `after`, in `range`'s order, each with
    /// its ticket's JSON. Entries whose ticket is gone are removed from the index (a
    /// failure to remove them is only logged) and come back with `json: None`.
    pub async fn scan_ticket_index(
        &self,
        key: &str,
        range: IndexRange,
        after: Option<&IndexCursor>,
        count: usize,
    ) -> StoreResult<Vec<IndexEntry>> {
        let (start, stop) = range.bounds(after);
        let mut conn = self.conn();
        let index = key.to_string();
        let members: Vec<String> = self
            .run("ticket_index", async move {
                let mut cmd = redis::cmd("ZRANGE");
                cmd.arg(index).arg(start).arg(stop).arg("BYLEX");
                if range.newest_first {
                    cmd.arg("REV");
                }
                cmd.arg("LIMIT")
                    .arg(0)
                    .arg(count)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        let cursors: Vec<IndexCursor> = members
            .iter()
            .filter_map(|m| IndexCursor::from_member(m))
            .collect();
        let found = self
            .stored_tickets_by_id(cursors.iter().map(|c| c.ticket_id.as_str()))
            .await?;
        let gone: Vec<String> = cursors
            .iter()
            .zip(&found)
            .filter(|(_, json)| json.is_none())
            .map(|(c, _)| c.member())
            .collect();
        if !gone.is_empty() {
            let mut conn = self.conn();
            let index = key.to_string();
            let pruned = self
                .run("prune_ticket_index", async move {
                    redis::cmd("ZREM")
                        .arg(index)
                        .arg(gone)
                        .query_async::<i64>(&mut conn)
                        .await
                })
                .await;
            if let Err(err) = pruned {
                tracing::warn!(index = %key, cause = %err, "expired index entries not removed");
            }
        }
        Ok(cursors
            .into_iter()
            .zip(found)
            .map(|(cursor, json)| IndexEntry { cursor, json })
            .collect())
    }

    /// Tickets by id, made whole, in order (`None`: gone): [`Self::stored_tickets_by_id`],
    /// then [`Store::whole_tickets`].
    pub(super) async fn tickets_by_id<'a>(
        &self,
        ids: impl Iterator<Item = &'a str>,
    ) -> StoreResult<Vec<Option<String>>> {
        let stored = self.stored_tickets_by_id(ids).await?;
        self.whole_tickets(stored).await
    }

    /// Tickets as stored, by id, in order (`None`: gone); one `MGET` (one `{tickets}`
    /// tag). A ticket may refer to its conversation for its transcript
    /// ([`Store::whole_tickets`]).
    pub(super) async fn stored_tickets_by_id<'a>(
        &self,
        ids: impl Iterator<Item = &'a str>,
    ) -> StoreResult<Vec<Option<String>>> {
        let ticket_keys: Vec<String> = ids.map(keys::ticket).collect();
        if ticket_keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn();
        self.run("tickets", async move {
            redis::cmd("MGET")
                .arg(ticket_keys)
                .query_async(&mut conn)
                .await
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::{IndexCursor, IndexRange};

    #[test]
    fn cursors_are_a_close_time_and_a_ticket_id() {
        let c = IndexCursor::parse("1796290375755-t_42").expect("cursor");
        assert_eq!((c.closed_at, c.ticket_id.as_str()), (1796290375755, "t_42"));
        assert_eq!(c.text(), "1796290375755-t_42");
        assert_eq!(c.member(), "0001796290375755:t_42");
        for bad in [
            "",
            "5",
            "5-",
            "5-0",
            "-t_1",
            "a-t_1",
            "5-t_1 ",
            "5-t_1-2",
            "12345678901234567-t_1",
        ] {
            assert!(IndexCursor::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn bounds_take_the_tighter_of_cursor_and_time() {
        let after = IndexCursor::parse("20-t_1");
        let range = IndexRange {
            from: Some(10),
            to: Some(30),
            newest_first: false,
        };
        let (start, stop) = range.bounds(after.as_ref());
        assert_eq!(start, "(0000000000000020:t_1");
        assert_eq!(stop, "(0000000000000030");
        let (start, _) = range.bounds(IndexCursor::parse("5-t_1").as_ref());
        assert_eq!(start, "[0000000000000010");
        let newest = IndexRange {
            newest_first: true,
            ..range
        };
        assert_eq!(
            newest.bounds(after.as_ref()),
            ("(0000000000000020:t_1".into(), "[0000000000000010".into())
        );
        assert_eq!(
            newest.bounds(None),
            ("(0000000000000030".into(), "[0000000000000010".into())
        );
    }
}
