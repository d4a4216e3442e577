//! Expiry of what a finished chat leaves in Redis: once its ticket is stored, a
//! conversation is retired (marked flushed, its keys set to expire together but its
//! events, which are the ticket's transcript and expire with the ticket), its
//! visitor's open slot is freed and it leaves the open index. Ticket expiry lives with
//! the ticket script (`tickets.rs`).
//!
//! Must not decide durations: the caller passes them from `[retention]`.

use std::sync::LazyLock;

use redis::Script;

use super::{keys, ConversationRecord, Store, StoreResult};

/// KEYS: conversation hash, events stream, client_msg_id hash, routing decisions,
/// listening nodes.
/// ARGV: time to keep (ms); time to keep the events (ms, `0`: for ever), never less than
/// the first: they are the ticket's transcript (`ticket_form`).
/// Returns 0 when the conversation is gone (already expired), 1 otherwise.
///
/// `flushed` and the expiry are set in one script, so a conversation marked flushed
/// always has its TTL: recovery, which only finishes flushed conversations, never
/// leaves one without. A deadline already set is kept (a repeated flush, a late rating
/// that flushes again) so retrying never extends a conversation's life. The state hash
/// is expired first, so its deadline is never later than the others': every append
/// checks the hash first, and while it exists the stream does too, so no append can
/// recreate the stream without a TTL.
static RETIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local keep = redis.call('PTTL', KEYS[1])
if keep < 0 then keep = ARGV[1] end
redis.call('HSET', KEYS[1], 'flushed', '1')
for i = 1, 5 do
  if i ~= 2 then redis.call('PEXPIRE', KEYS[i], keep) end
end
if ARGV[2] ~= '0' and redis.call('PTTL', KEYS[2]) < 0 then
  redis.call('PEXPIRE', KEYS[2], math.max(tonumber(ARGV[2]), tonumber(keep)))
end
return 1
"#,
    )
});

impl Store {
    /// Retires a conversation whose ticket is stored: its keys expire after `keep_ms`
    /// (or keep the deadline they already have), except its events, which are the
    /// ticket's transcript and live as long as the ticket: `ticket_ms` (`None`: for
    /// ever), or `keep_ms` if that is longer. The visitor's sticky-routing hint expires
    /// after `ticket_ms` too, the visitor may start again and the conversation leaves
    /// the open index. Safe to repeat.
    ///
    /// This is `finish_conversation` with the expiry: its plain `HSET flushed` would, on
    /// a conversation that just expired, recreate the hash with no TTL.
    pub async fn retire_conversation(
        &self,
        record: &ConversationRecord,
        keep_ms: u64,
        ticket_ms: Option<u64>,
    ) -> StoreResult<()> {
        let id = record.id.clone();
        let mut invocation = RETIRE.key(keys::conversation(&id));
        invocation
            .key(keys::events(&id))
            .key(keys::client_msg_ids(&id))
            .key(keys::decisions(&id))
            .key(keys::listeners(&id))
            .arg(keep_ms.max(1))
            .arg(ticket_ms.map_or(0, |ms| ms.max(1)));
        let mut conn = self.conn();
        self.run("retire_conversation", async move {
            invocation.invoke_async::<i64>(&mut conn).await.map(|_| ())
        })
        .await?;
        if let Some(ttl) = ticket_ms {
            // The visitor's own hash tag: a separate command. Each join rewrites the hint
            // with an expiry of its own; the flush re-arms it from the chat's end.
            let mut conn = self.conn();
            let key = keys::visitor_last_agent(&record.visitor_id);
            self.run("expire_last_agent", async move {
                redis::cmd("PEXPIRE")
                    .arg(key)
                    .arg(ttl.max(1))
                    .query_async::<i64>(&mut conn)
                    .await
                    .map(|_| ())
            })
            .await?;
        }
        self.release_visitor_slot(&record.visitor_id, &record.id)
            .await?;
        self.forget_open(&record.id).await
    }
}
