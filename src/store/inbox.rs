//! The inbox of offline messages (issue 18): the tickets left through the widget's
//! offline form, open until an agent marks them handled. Two sorted sets by the time
//! each message was left, and a hash of who handled what; all under the `{tickets}`
//! tag, so each move is one atomic script. Entries whose ticket has expired are dropped
//! when read, and trimmed by age when a message is added.

use std::sync::LazyLock;

use redis::Script;

use super::{keys, Store, StoreResult};

/// Which list of the inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboxState {
    Open,
    Done,
}

/// One entry read back: the ticket's JSON, when it was left, and (handled ones) the
/// `{"by","at"}` JSON of its handling.
#[derive(Debug, Clone)]
pub struct InboxEntry {
    pub ticket_id: String,
    pub left_at: u64,
    pub ticket: String,
    pub handled: Option<String>,
}

/// KEYS: open, done, handled. ARGV: ticket id, "1" to mark handled / "0" to reopen,
/// handling JSON. Returns 1 when moved, 0 when already there, -1 when in neither list.
static MARK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local from, to = KEYS[1], KEYS[2]
if ARGV[2] == '0' then from, to = KEYS[2], KEYS[1] end
local left = redis.call('ZSCORE', from, ARGV[1])
if not left then
  if redis.call('ZSCORE', to, ARGV[1]) then return 0 end
  return -1
end
redis.call('ZREM', from, ARGV[1])
redis.call('ZADD', to, left, ARGV[1])
if ARGV[2] == '1' then
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
else
  redis.call('HDEL', KEYS[3], ARGV[1])
end
return 1
"#,
    )
});

/// What marking a message can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marked {
    Moved,
    Already,
    NotInInbox,
}

impl Store {
    /// Puts a new offline message in the open list; entries older than `keep_ms` (their
    /// tickets have expired) leave both lists.
    pub async fn inbox_add(
        &self,
        ticket_id: &str,
        left_at: u64,
        keep_ms: Option<u64>,
    ) -> StoreResult<()> {
        let ticket_id = ticket_id.to_string();
        let mut conn = self.conn();
        self.run("inbox_add", async move {
            let mut pipe = redis::pipe();
            pipe.cmd("ZADD")
                .arg(keys::inbox_open())
                .arg("NX")
                .arg(left_at)
                .arg(&ticket_id)
                .ignore();
            if let Some(keep) = keep_ms {
                let oldest = format!("({}", left_at.saturating_sub(keep));
                for key in [keys::inbox_open(), keys::inbox_done()] {
                    pipe.cmd("ZREMRANGEBYSCORE")
                        .arg(key)
                        .arg("-inf")
                        .arg(&oldest)
                        .ignore();
                }
            }
            pipe.query_async::<()>(&mut conn).await
        })
        .await
    }

    /// The newest `limit` entries of one list, and how many the open list holds.
    pub async fn inbox_page(
        &self,
        state: InboxState,
        limit: usize,
    ) -> StoreResult<(Vec<InboxEntry>, u64)> {
        let key = match state {
            InboxState::Open => keys::inbox_open(),
            InboxState::Done => keys::inbox_done(),
        };
        let (listed, open): (Vec<(String, f64)>, u64) = {
            let mut conn = self.conn();
            let key = key.clone();
            self.run("inbox_page", async move {
                redis::pipe()
                    .cmd("ZREVRANGE")
                    .arg(key)
                    .arg(0)
                    .arg(limit.saturating_sub(1))
                    .arg("WITHSCORES")
                    .cmd("ZCARD")
                    .arg(keys::inbox_open())
                    .query_async(&mut conn)
                    .await
            })
            .await?
        };
        let tickets = self
            .tickets_by_id(listed.iter().map(|(id, _)| id.as_str()))
            .await?;
        let handled: Vec<Option<String>> = if state == InboxState::Done && !listed.is_empty() {
            let ids: Vec<String> = listed.iter().map(|(id, _)| id.clone()).collect();
            let mut conn = self.conn();
            self.run("inbox_handled", async move {
                redis::cmd("HMGET")
                    .arg(keys::inbox_handled())
                    .arg(ids)
                    .query_async(&mut conn)
                    .await
            })
            .await?
        } else {
            vec![None; listed.len()]
        };
        let mut entries = Vec::new();
        let mut gone = Vec::new();
        for (((ticket_id, left_at), ticket), handled) in
            listed.into_iter().zip(tickets).zip(handled)
        {
            match ticket {
                Some(ticket) => entries.push(InboxEntry {
                    ticket_id,
                    left_at: left_at as u64,
                    ticket,
                    handled,
                }),
                None => gone.push(ticket_id),
            }
        }
        if !gone.is_empty() {
            // Expired or erased tickets: their entries go now.
            let mut conn = self.conn();
            self.run("inbox_forget", async move {
                redis::pipe()
                    .cmd("ZREM")
                    .arg(key)
                    .arg(&gone)
                    .ignore()
                    .cmd("HDEL")
                    .arg(keys::inbox_handled())
                    .arg(&gone)
                    .ignore()
                    .query_async::<()>(&mut conn)
                    .await
            })
            .await?;
        }
        Ok((entries, open))
    }

    /// Moves a message to the handled list (with `handling`, JSON) or back to the open one.
    pub async fn inbox_mark(
        &self,
        ticket_id: &str,
        handled: bool,
        handling: String,
    ) -> StoreResult<Marked> {
        let mut invocation = MARK.key(keys::inbox_open());
        invocation
            .key(keys::inbox_done())
            .key(keys::inbox_handled())
            .arg(ticket_id)
            .arg(if handled { "1" } else { "0" })
            .arg(handling);
        let mut conn = self.conn();
        self.run("inbox_mark", async move {
            invocation
                .invoke_async::<i64>(&mut conn)
                .await
                .map(|answer| match answer {
                    1 => Marked::Moved,
                    0 => Marked::Already,
                    _ => Marked::NotInInbox,
                })
        })
        .await
    }
}
