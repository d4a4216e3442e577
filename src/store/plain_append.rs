//! The plain append: events that need nothing of the conversation's state hash (no
//! field to set, no requirement for Redis to check) go without the append script. A lone
//! event or a batch is two plain commands in one round trip: one `XADD` of one entry
//! (`entries`), which is the fence as for the script (see `append`), and the read of the
//! listeners. The other listening nodes hear of the events by a [`Publication`] the
//! caller sends once it has delivered them itself, or, when the caller knows that other
//! nodes listen, from a lean script of the same commands that publishes once stored:
//! one round trip instead of two.

use std::sync::LazyLock;

use redis::Script;

use super::{entries, keys, Store, StoreError, StoreResult};

/// What Redis did with a plain append ([`Store::append_plain`],
/// [`Store::append_plain_batch`]).
#[derive(Debug)]
pub enum PlainAppended {
    /// Stored as `seq` (a batch's first event; the others follow it one by one). The
    /// other listening nodes hear of it by `publication`, which the caller sends once it
    /// has delivered the events itself.
    Stored { seq: u64, publication: Publication },
    /// No such conversation (its stream is gone).
    NotFound,
    /// As [`Appended::Behind`]: nothing stored.
    Behind { last: u64 },
}

/// A stored event on its way to the other nodes that listen to its conversation.
#[derive(Debug)]
#[must_use = "the other nodes hear of the event only once it is published"]
pub struct Publication {
    channels: Vec<String>,
    message: String,
    others_listen: bool,
}

impl Publication {
    /// What is left of a publication the append sent itself: nothing, and whether
    /// `others_listen`.
    fn sent(others_listen: bool) -> Publication {
        Publication {
            channels: Vec::new(),
            message: String::new(),
            others_listen,
        }
    }

    /// Nothing to send: no other node listens, or the append published already.
    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }

    /// Whether another node listened when the events were stored. The conversation's
    /// next plain append had best publish in its own call
    /// ([`Store::append_plain_batch`]'s `others_listen`).
    pub fn others_listen(&self) -> bool {
        self.others_listen
    }
}

impl Store {
    /// Appends events that need nothing of the conversation's state hash: no field to
    /// set and no requirement for Redis to check (the caller checked an open
    /// conversation against what it has read, which the fence makes the whole stream).
    /// Two plain commands in one round trip instead of a script: one `XADD` of one entry
    /// holding every event (`entries`), with the explicit id `<expected+1>-0`, which is
    /// the fence (refused unless the caller has read the whole stream), `NOMKSTREAM` so
    /// a conversation that is gone stays gone; then `SMEMBERS` of the listeners, run
    /// after it, so a node that lists itself later reads the events from the record
    /// instead. A script's Lua call cost Redis about as much as the commands it ran
    /// (`docs/performance.md`).
    pub async fn append_plain(
        &self,
        conversation_id: &str,
        node: &str,
        expected: u64,
        events: &[PlainEvent<'_>],
    ) -> StoreResult<PlainAppended> {
        if events.is_empty() {
            return Err(StoreError::Corrupt("an empty plain append".into()));
        }
        let seq = expected + 1;
        let mut pipe = redis::pipe();
        pipe.ignore_errors()
            .cmd("XADD")
            .arg(keys::events(conversation_id))
            .arg("NOMKSTREAM")
            .arg(entries::entry_id(seq));
        for (offset, event) in events.iter().enumerate() {
            pipe.arg(entries::field_name(offset).as_ref())
                .arg(event.stored);
        }
        pipe.cmd("SMEMBERS").arg(keys::listeners(conversation_id));
        let mut conn = self.conn();
        let (added, listeners): (
            redis::RedisResult<Option<String>>,
            redis::RedisResult<Vec<String>>,
        ) = self
            .run(
                "append_plain",
                async move { pipe.query_async(&mut conn).await },
            )
            .await?;
        match added {
            Ok(Some(_)) => {}
            Ok(None) => return Ok(PlainAppended::NotFound),
            Err(err) => return self.refused(conversation_id, expected, err).await,
        }
        // Stored: a failed read of the listeners only costs them the live hint (they
        // find the events by the reconcile), not the caller its ack.
        let listeners = listeners.unwrap_or_else(|err| {
            tracing::warn!(conversation_id, cause = %err, "listeners unread; no live hint");
            Vec::new()
        });
        Ok(PlainAppended::Stored {
            seq,
            publication: publication(conversation_id, node, &listeners, seq, events),
        })
    }

    /// Sends a plain append's event to the other nodes that listen, one round trip.
    pub async fn publish_live(&self, publication: Publication) -> StoreResult<()> {
        if publication.is_empty() {
            return Ok(());
        }
        let command = self.publish_command();
        let mut pipe = redis::pipe();
        for channel in &publication.channels {
            pipe.cmd(command)
                .arg(channel)
                .arg(&publication.message)
                .ignore();
        }
        let mut conn = self.conn();
        self.run("publish_live", async move {
            pipe.query_async::<()>(&mut conn).await
        })
        .await
    }

    /// What a refused append means: `Behind` when the fence refused it, the stream
    /// already holding `expected + 1` (read back rather than told from the error's
    /// wording), else the error itself.
    async fn refused(
        &self,
        conversation_id: &str,
        expected: u64,
        err: redis::RedisError,
    ) -> StoreResult<PlainAppended> {
        let last = self.last_seq(conversation_id).await?;
        if last > expected {
            Ok(PlainAppended::Behind { last })
        } else {
            Err(StoreError::from(err))
        }
    }

    /// The seq of the stream's last event (0 when it is empty or gone).
    async fn last_seq(&self, conversation_id: &str) -> StoreResult<u64> {
        let mut conn = self.conn();
        let events = keys::events(conversation_id);
        let top: entries::StreamRange = self
            .run("last_seq", async move {
                entries::top_entry(&events).query_async(&mut conn).await
            })
            .await?;
        top.first_last_seq()
    }
}

/// Appends plain events as [`Store::append_plain`] does (one `XADD` of one entry, the
/// fence), then publishes the caller's ready-made hint to every listener but the storing
/// node, once the events are in: the fence has made their seqs the ones the hint names.
/// Redis has no conditional `PUBLISH`, so this one takes a script; the caller sends it
/// only when other nodes listened at its last append.
/// KEYS: events stream, listening nodes. ARGV: the fence's entry id (`<expected+1>-0`),
/// the publish command (`PUBLISH` or `SPUBLISH`), the live channels' prefix, the storing
/// node, the hint, then each event's JSON. Returns how many other nodes it published to,
/// or -1 when the stream does not exist; a refused fence fails the script with `XADD`'s
/// error, before anything was written.
/// Kept lean because Redis runs it for every message that crosses nodes: a lone event
/// (the usual case) goes without building a table, the id comes formatted, and the
/// answer is a number rather than the listeners. That took its cost in Redis from about
/// 7 to 5 µs a call, of which 2 µs are any script call's (`docs/performance.md`,
/// fourteenth stop).
static APPEND_PLAIN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local added
if #ARGV == 6 then
  added = redis.call('XADD', KEYS[1], 'NOMKSTREAM', ARGV[1], 'e', ARGV[6])
else
  local entry = {'XADD', KEYS[1], 'NOMKSTREAM', ARGV[1], 'e', ARGV[6]}
  for i = 7, #ARGV do
    entry[#entry + 1] = 'e' .. (i - 6)
    entry[#entry + 1] = ARGV[i]
  end
  added = redis.call(unpack(entry))
end
if not added then return -1 end
local others, node = 0, ARGV[4]
for _, listener in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if listener ~= node then
    redis.call(ARGV[2], ARGV[3] .. listener, ARGV[5])
    others = others + 1
  end
end
return others
"#,
    )
});

/// One event of a plain batch: its stored JSON and the note published with it.
#[derive(Debug, Clone, Copy)]
pub struct PlainEvent<'a> {
    pub stored: &'a str,
    pub note: &'a str,
}

impl Store {
    /// Appends `events` (at least one) as seqs `expected + 1`, `expected + 2`, … in one
    /// entry and one round trip: [`Store::append_plain`]. Nothing is published: the
    /// caller sends the publication once it has delivered the events itself. With
    /// `others_listen` (the last append found other listening nodes), [`APPEND_PLAIN`]
    /// stores them the same way and publishes them itself, saving the caller and Redis
    /// the publish's round trip; the publication left is empty.
    pub async fn append_plain_batch(
        &self,
        conversation_id: &str,
        node: &str,
        expected: u64,
        events: &[PlainEvent<'_>],
        others_listen: bool,
    ) -> StoreResult<PlainAppended> {
        if !others_listen || events.is_empty() {
            return self
                .append_plain(conversation_id, node, expected, events)
                .await;
        }
        let mut invocation = APPEND_PLAIN.key(keys::events(conversation_id));
        invocation
            .key(keys::listeners(conversation_id))
            .arg(entries::entry_id(expected + 1))
            .arg(self.publish_command())
            .arg(keys::live_prefix(conversation_id))
            .arg(node)
            .arg(hint(expected + 1, events));
        for event in events {
            invocation.arg(event.stored);
        }
        let mut conn = self.conn();
        let answer: redis::RedisResult<i64> = self
            .run("append_plain_batch", async move {
                Ok(invocation.invoke_async(&mut conn).await)
            })
            .await?;
        let others = match answer {
            Ok(others) => others,
            Err(err) if matches!(err.kind(), redis::ErrorKind::Server(_)) => {
                return self.refused(conversation_id, expected, err).await
            }
            Err(err) => return Err(StoreError::from(err)),
        };
        if others < 0 {
            return Ok(PlainAppended::NotFound);
        }
        Ok(PlainAppended::Stored {
            seq: expected + 1,
            publication: Publication::sent(others > 0),
        })
    }
}

/// The live hint of `events`, the first at `seq`: what each other listening node hears.
fn hint(seq: u64, events: &[PlainEvent<'_>]) -> String {
    (seq..)
        .zip(events)
        .map(|(seq, event)| super::feed::LiveEvent::encode(seq, event.note, event.stored))
        .collect()
}

/// The live hint of stored `events` (the first at `seq`) for every listener but `node`.
fn publication(
    conversation_id: &str,
    node: &str,
    listeners: &[String],
    seq: u64,
    events: &[PlainEvent<'_>],
) -> Publication {
    let channels: Vec<String> = listeners
        .iter()
        .filter(|listener| *listener != node)
        .map(|listener| keys::live(conversation_id, listener))
        .collect();
    let message = if channels.is_empty() {
        String::new()
    } else {
        hint(seq, events)
    };
    Publication {
        others_listen: !channels.is_empty(),
        channels,
        message,
    }
}
