//! The layout of a conversation's event stream, and reading it in seq order.
//!
//! An entry holds one event or a batch of consecutive ones. Its id is `<first seq>-0`,
//! and its fields are `e` (the event at the first seq), then `e1`, `e2`, … (the events
//! after it). A batch of plain messages goes in as one entry, by one `XADD`
//! (`plain_append`). One command is one fence, so the batch is stored whole or not at
//! all, and Redis does one command's work for the batch instead of a script's and one
//! per event (`docs/performance.md`, issue 19, tenth stop).
//!
//! The fence (an explicit id at or below the stream's top is refused) compares an
//! append's first seq with the top entry's *first* seq. So an append is safe only on
//! top of whole entries: a writer's `expected` must be the last seq of an entry. The
//! conversation task keeps to that: its own appends end entries, its reads
//! ([`Store::history_in_order`]) never end inside one, and a read that stops short of
//! an entry's end leaves it to read the stream again before its next append.

use std::{borrow::Cow, sync::LazyLock};

use redis::{Cmd, FromRedisValue, ParsingError, Value};

use super::{StoreError, StoreResult};

/// The id of the entry whose first event is `seq`: `<seq>-0`.
pub(super) fn entry_id(seq: u64) -> String {
    format!("{seq}-0")
}

/// The seq of an entry's first event, from its id (`<seq>-0`).
pub(super) fn entry_seq(entry_id: &str) -> StoreResult<u64> {
    entry_id
        .split('-')
        .next()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("event id {entry_id:?}")))
}

/// A stream entry as a range reply (`XRANGE`, `XREVRANGE`) brings it: its id and its
/// fields in order, the values still Redis's. Read straight from the reply: the redis
/// crate's `StreamRangeReply` builds two maps per entry and copies every value, which
/// was a tenth of the hub's CPU while tickets were flushed (`docs/performance.md`, issue
/// 19, eleventh stop).
#[derive(Debug)]
pub(super) struct StreamEntry {
    id: String,
    fields: Vec<(String, Value)>,
}

impl StreamEntry {
    /// The seq of the entry's last event: its first plus one per field after `e`.
    pub(super) fn last_seq(&self) -> StoreResult<u64> {
        let first = entry_seq(&self.id)?;
        Ok(first + self.fields.len().saturating_sub(1) as u64)
    }
}

/// The entries of a range reply, in the reply's order.
#[derive(Debug, Default)]
pub(super) struct StreamRange(pub Vec<StreamEntry>);

impl StreamRange {
    /// The seq of the first entry's last event (0 for an empty reply): with
    /// `XREVRANGE key + - COUNT 1`, the stream's last seq.
    pub(super) fn first_last_seq(&self) -> StoreResult<u64> {
        self.0.first().map_or(Ok(0), StreamEntry::last_seq)
    }
}

impl FromRedisValue for StreamRange {
    fn from_redis_value(value: Value) -> Result<Self, ParsingError> {
        let Value::Array(entries) = value else {
            return Err(format!("a stream range reply, not {value:?}").into());
        };
        entries
            .into_iter()
            .map(|entry| {
                let Value::Array(parts) = entry else {
                    return Err(format!("a stream entry, not {entry:?}").into());
                };
                let [id, fields] = <[Value; 2]>::try_from(parts)
                    .map_err(|parts| format!("a stream entry of {} parts", parts.len()))?;
                let pairs: Vec<(Value, Value)> = match fields {
                    Value::Map(pairs) => pairs,
                    Value::Array(flat) => {
                        let mut flat = flat.into_iter();
                        let mut pairs = Vec::with_capacity(flat.len() / 2);
                        while let Some(name) = flat.next() {
                            let value = flat.next().ok_or("a field without a value")?;
                            pairs.push((name, value));
                        }
                        pairs
                    }
                    other => return Err(format!("stream entry fields, not {other:?}").into()),
                };
                let fields = pairs
                    .into_iter()
                    .map(|(name, value)| Ok((String::from_redis_value(name)?, value)))
                    .collect::<Result<_, ParsingError>>()?;
                Ok(StreamEntry {
                    id: String::from_redis_value(id)?,
                    fields,
                })
            })
            .collect::<Result<_, _>>()
            .map(StreamRange)
    }
}

/// Field names a batch of up to this many events takes from [`FIELD_NAMES`].
const NAMED_FIELDS: usize = 64;

/// `e`, `e1`, … `e63`, made once: a batch's append names its fields without allocating.
static FIELD_NAMES: LazyLock<Vec<String>> = LazyLock::new(|| {
    (0..NAMED_FIELDS)
        .map(|offset| match offset {
            0 => "e".to_string(),
            _ => format!("e{offset}"),
        })
        .collect()
});

/// The field of the event `offset` places after an entry's first (`e`, `e1`, `e2`, …),
/// borrowed for the batches the conversation task makes.
pub(super) fn field_name(offset: usize) -> Cow<'static, str> {
    match FIELD_NAMES.get(offset) {
        Some(name) => Cow::Borrowed(name.as_str()),
        None => Cow::Owned(format!("e{offset}")),
    }
}

/// `XREVRANGE <stream> + - COUNT 1`: the stream's top entry, whose last seq is the
/// conversation's (see [`StreamRange::first_last_seq`]).
pub(super) fn top_entry(stream: &str) -> Cmd {
    let mut cmd = redis::cmd("XREVRANGE");
    cmd.arg(stream).arg("+").arg("-").arg("COUNT").arg(1);
    cmd
}

/// A stored event as Redis holds it: its seq and its stored form (`StoredEvent`'s JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    pub seq: u64,
    pub json: String,
}

impl StoredEntry {
    /// Every event of one stream entry, in seq order; the values are taken, not copied.
    pub(super) fn decode_all(entry: StreamEntry) -> StoreResult<Vec<StoredEntry>> {
        let StreamEntry {
            id: entry_id,
            fields,
        } = entry;
        let first = entry_seq(&entry_id)?;
        let mut events: Vec<Option<String>> = vec![None; fields.len()];
        for (name, raw) in fields {
            let offset = match name.strip_prefix('e') {
                Some("") => Some(0),
                Some(digits) => digits.parse::<usize>().ok().filter(|&n| n > 0),
                None => None,
            };
            let slot = offset
                .and_then(|offset| events.get_mut(offset))
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("event {entry_id} has a field {name:?}"))
                })?;
            let json = String::from_redis_value(raw)
                .map_err(|err| StoreError::Corrupt(format!("event {entry_id}: {err}")))?;
            *slot = Some(json);
        }
        if events.is_empty() {
            return Err(StoreError::Corrupt(format!("event {entry_id} has no body")));
        }
        (first..)
            .zip(events)
            .map(|(seq, json)| {
                json.map(|json| StoredEntry { seq, json })
                    .ok_or_else(|| StoreError::Corrupt(format!("event {entry_id} has no body")))
            })
            .collect()
    }

    /// The event, parsed.
    pub fn event(&self, conversation_id: &str) -> StoreResult<crate::protocol::Event> {
        let stored: crate::protocol::StoredEvent = serde_json::from_str(&self.json)?;
        Ok(stored.into_event(conversation_id, self.seq))
    }
}

/// Where a page of events may end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PageEnd {
    /// At `limit` events, inside an entry if need be: a client's page.
    AtLimit,
    /// At the end of an entry, past `limit` if need be: the conversation task's reads,
    /// so that what it has read always ends an entry (the fence's rule, above).
    WholeEntries,
}

/// What one round trip of a page read brought: `before`, the entry at or before
/// `after_seq` (it may hold events after it); `range`, the entries whose first seq is in
/// `after_seq + 1 ..= after_seq + limit` (entry ids are first seqs, so the range is by
/// id and fetches nothing a page cannot hold but the last entry's tail); `top`, the
/// stream's top entry, which says whether more follow.
pub(super) struct PageRead {
    pub before: StreamRange,
    pub range: StreamRange,
    pub top: StreamRange,
}

impl PageRead {
    /// At most `limit` events after `after_seq` ([`PageEnd::WholeEntries`]: to the end of
    /// the last entry read, past `limit` if need be) and whether the stream holds more.
    /// Empty while the stream holds more only after a gap of at least `limit` seqs (lost
    /// in a failover): the caller reads on from the next entry.
    pub(super) fn page(
        self,
        after_seq: u64,
        limit: usize,
        end: PageEnd,
    ) -> StoreResult<(Vec<StoredEntry>, bool)> {
        let stream_last = self.top.first_last_seq()?;
        let mut events = Vec::new();
        // `before` holds at most the one entry at or before `after_seq`.
        for entry in self.before.0.into_iter().take(1).chain(self.range.0) {
            let decoded = StoredEntry::decode_all(entry)?;
            events.extend(decoded.into_iter().filter(|event| event.seq > after_seq));
        }
        if end == PageEnd::AtLimit {
            events.truncate(limit);
        }
        let read_to = events.last().map_or(after_seq, |event| event.seq);
        Ok((events, stream_last > read_to))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    #[test]
    fn a_range_reply_is_read_in_field_order_in_either_protocol() {
        let flat = Value::Array(vec![Value::Array(vec![
            bulk("7-0"),
            Value::Array(vec![
                bulk("e"),
                bulk("{\"a\":7}"),
                bulk("e1"),
                bulk("{\"a\":8}"),
            ]),
        ])]);
        let map = Value::Array(vec![Value::Array(vec![
            bulk("7-0"),
            Value::Map(vec![
                (bulk("e"), bulk("{\"a\":7}")),
                (bulk("e1"), bulk("{\"a\":8}")),
            ]),
        ])]);
        for reply in [flat, map] {
            let range = StreamRange::from_redis_value(reply).expect("a range");
            assert_eq!(range.first_last_seq().expect("an id"), 8);
            let entry = range.0.into_iter().next().expect("one entry");
            let events = StoredEntry::decode_all(entry).expect("decodes");
            let seqs: Vec<(u64, &str)> = events.iter().map(|e| (e.seq, e.json.as_str())).collect();
            assert_eq!(seqs, [(7, "{\"a\":7}"), (8, "{\"a\":8}")]);
        }
        let empty = StreamRange::from_redis_value(Value::Array(vec![])).expect("empty");
        assert_eq!(empty.first_last_seq().expect("none"), 0);
    }

    #[test]
    fn a_malformed_range_reply_is_refused() {
        for reply in [
            Value::Int(1),
            Value::Array(vec![Value::Array(vec![bulk("7-0")])]),
            Value::Array(vec![Value::Array(vec![
                bulk("7-0"),
                Value::Array(vec![bulk("e")]),
            ])]),
            Value::Array(vec![Value::Array(vec![bulk("7-0"), Value::Int(3)])]),
        ] {
            assert!(StreamRange::from_redis_value(reply).is_err());
        }
        // Well formed for Redis, not for the layout: refused when decoded.
        let odd = Value::Array(vec![Value::Array(vec![
            bulk("7-0"),
            Value::Array(vec![bulk("x"), bulk("{}")]),
        ])]);
        let entry = StreamRange::from_redis_value(odd)
            .expect("a range")
            .0
            .remove(0);
        assert!(matches!(
            StoredEntry::decode_all(entry),
            Err(StoreError::Corrupt(_))
        ));
    }
}
