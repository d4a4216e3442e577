//! Appending events to a conversation: one Lua script call per batch of a
//! conversation's queued events, or, for events that need nothing of the state hash,
//! the plain append: two plain commands in one round trip, the events in one stream
//! entry ([`Store::append_plain`], [`Store::append_plain_batch`]). The seq comes from
//! the stream entry's explicit id (`<first seq>-0`, `entries`), so it is gapless and
//! strictly increasing whatever node or restart stores the event. The script publishes
//! the batch in the same call to the other nodes that listen to the conversation (none
//! when the node is alone); a plain append hands its caller the publication to send once
//! it has delivered.
//!
//! The caller says up to which seq it has seen the stream (`expected`). If another writer
//! (another node's task of the same conversation) stored something after that, the script
//! stores nothing and answers [`Appended::Behind`]: the caller reads what it missed and
//! tries again. So a writer only ever appends on top of a stream it has read whole, which
//! is what lets the conversation task answer a repeated `client_msg_id` from memory
//! (`conversation::seen`) instead of the script writing a hash field per message.
//!
//! The fence is the stream's own last id: entry ids are `<first seq>-0` and `XADD`
//! refuses an explicit id at or below the last one, so the batch's first `XADD` is the
//! check (on top of whole entries only, `entries`), and nothing else records how far the
//! stream goes (an `HMGET` and an `HSET` of a `last_seq` field did, ≈ 5 µs of Redis per
//! batch; `Store::conversation` reads the stream's top entry instead).

use std::sync::LazyLock;

use redis::Script;

use super::{
    keys,
    records::{decode_append, push_append_args, AppendItem, AppendOutcome},
    Store, StoreError, StoreResult,
};

/// Appends a batch of events to one conversation, each as if alone, in order.
/// KEYS: conversation hash, events stream, listening nodes.
/// ARGV: the publish command (`PUBLISH`, `SPUBLISH` or "" for none), the live channels'
/// prefix, the storing node, `expected` (the highest seq the caller has seen; it has
/// read every event up to it), then for each event: event JSON, requirement, a note published with the event (an ack
/// for a connection on another node) or "", the number of field/value pairs to set, then
/// those pairs.
/// Returns `{-1}` when there is no such conversation, `{-3, last}` when the stream
/// holds events after `expected`, up to seq `last` (nothing stored), else
/// `{1, r1, r2, …}` with per event its seq, or -2 when it was not in the required state.
///
/// New seqs continue above `expected` even when Redis holds less (an asynchronous
/// replica promoted in a failover lost the last appends): no client ever sees one seq
/// twice with different events.
///
/// The stored events go out as one message on the live channel of each listening node
/// but the storing one: per event `<seq> <note length> <event length> <note><event
/// JSON>`, concatenated (read by `feed::LiveEvent::batch`). One script call and one
/// publish per listener per batch rather than per event: the per-call cost in Redis
/// (argument handling, Lua entry, reply, the pub/sub fan-out) was most of the cost of a
/// chat message. Nothing is published when no other node listens (one node alone): the
/// storing node delivers its own batch, and a publish it would only hear itself cost
/// Redis ≈ 3.5 µs per batch and the node a read and a parse.
static APPEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local state = redis.call('HGET', KEYS[1], 'state')
-- A conversation always has a state, so a missing one means no conversation.
if not state then return {-1} end
local publish, prefix, node = ARGV[1], ARGV[2], ARGV[3]
local expected = tonumber(ARGV[4]) or 0
local last = expected
-- The other nodes that listen: only for them is the batch published.
local others = {}
if publish ~= '' then
  for _, listener in ipairs(redis.call('SMEMBERS', KEYS[3])) do
    if listener ~= node then others[#others + 1] = listener end
  end
end
local out = {1}
local hint = {}
local i = 5
while i <= #ARGV do
  local json, need, note = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local pairs = tonumber(ARGV[i + 3])
  local first, final = i + 4, i + 3 + 2 * pairs
  i = final + 1
  local ok, rates = true, false
  if need == 'open' and state == 'closed' then
    ok = false
  elseif string.sub(need, 1, 6) == 'owned:' then
    -- Read here, not once per batch: an earlier event of this batch may have set it.
    local owner = redis.call('HGET', KEYS[1], 'agent') or ''
    ok = state ~= 'closed' and 'owned:' .. owner == need
  elseif need == 'closed_unrated' then
    ok = state == 'closed' and redis.call('HEXISTS', KEYS[1], 'rated') == 0
    rates = ok
  end
  if ok then
    last = last + 1
    -- Integer formatting: Lua's own number-to-string goes through printf's float path.
    local seq_text = string.format('%d', last)
    if last == expected + 1 then
      -- The fence, before anything is written: an explicit id at or below the stream's
      -- last id is refused, so the batch goes in only on top of what the caller has read.
      local added = redis.pcall('XADD', KEYS[2], seq_text .. '-0', 'e', json)
      if type(added) == 'table' and added.err then
        local top = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)[1]
        -- The top entry's last seq: its first, plus one per event after the first.
        local top_seq = top and (tonumber(string.match(top[1], '^%d+')) + #top[2] / 2 - 1) or 0
        if top_seq > expected then return {-3, top_seq} end
        return redis.error_reply(added.err)
      end
    else
      redis.call('XADD', KEYS[2], seq_text .. '-0', 'e', json)
    end
    if rates then redis.call('HSET', KEYS[1], 'rated', '1') end
    if #others > 0 then
      hint[#hint + 1] = seq_text .. ' ' .. #note .. ' ' .. #json .. ' ' .. note .. json
    end
    if pairs > 0 then
      redis.call('HSET', KEYS[1], unpack(ARGV, first, final))
      for f = first, final, 2 do
        if ARGV[f] == 'state' then state = ARGV[f + 1] end
      end
    end
    out[#out + 1] = last
  else
    out[#out + 1] = -2
  end
end
if #others > 0 and last > expected then
  local message = table.concat(hint)
  for _, other in ipairs(others) do redis.call(publish, prefix .. other, message) end
end
return out
"#,
    )
});

/// What Redis did with a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Each event's outcome, in order.
    Done(Vec<AppendOutcome>),
    /// The stream holds events after the caller's `expected`, up to `last`: nothing was
    /// stored. Read them, then try again.
    Behind { last: u64 },
}

impl Store {
    /// Appends several events of one conversation in one round trip, in order, on top of
    /// a stream the caller has read up to `expected` (see the module head). The script
    /// either ran whole or not at all, so a retry after `NOSCRIPT` (a restarted Redis)
    /// cannot store anything twice.
    pub async fn append_batch(
        &self,
        conversation_id: &str,
        node: &str,
        expected: u64,
        items: &[AppendItem<'_>],
    ) -> StoreResult<Appended> {
        if items.is_empty() {
            return Ok(Appended::Done(Vec::new()));
        }
        let mut invocation = APPEND.key(keys::conversation(conversation_id));
        invocation
            .key(keys::events(conversation_id))
            .key(keys::listeners(conversation_id))
            .arg(self.publish_command())
            .arg(keys::live_prefix(conversation_id))
            .arg(node)
            .arg(expected);
        for item in items {
            push_append_args(&mut invocation, item);
        }
        let mut conn = self.conn();
        let replies: Vec<i64> = self
            .run("append_batch", async move {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
        decode_batch(&replies, items.len())
    }
}

/// Adds a node to a conversation's listeners, unless the conversation is gone; a
/// retired conversation's deadline is copied, so the set never outlives it.
/// KEYS: conversation hash, listening nodes. ARGV: node id. Returns 1 if listed.
static LISTEN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SADD', KEYS[2], ARGV[1])
local keep = redis.call('PTTL', KEYS[1])
if keep > 0 then redis.call('PEXPIRE', KEYS[2], keep) end
return 1
"#,
    )
});

impl Store {
    /// Lists `node` among the conversation's listeners: from now on every batch another
    /// node stores is published on `keys::live(conversation_id, node)`. Call it once that
    /// subscription is in place and before reading the stream, so every event is either
    /// read or heard; and again after the feed came back (Redis may have lost the set).
    /// A node is never taken off: a publish nobody hears costs Redis about a microsecond,
    /// and taking it off could race with the same node listening again.
    pub async fn listen(&self, conversation_id: &str, node: &str) -> StoreResult<bool> {
        let mut invocation = LISTEN.key(keys::conversation(conversation_id));
        invocation.key(keys::listeners(conversation_id)).arg(node);
        let mut conn = self.conn();
        let listed: i64 = self
            .run(
                "listen",
                async move { invocation.invoke_async(&mut conn).await },
            )
            .await?;
        Ok(listed == 1)
    }
}

fn decode_batch(replies: &[i64], events: usize) -> StoreResult<Appended> {
    match replies {
        [-1] => Ok(Appended::Done(vec![AppendOutcome::NotFound; events])),
        [-3, last] => Ok(Appended::Behind {
            last: u64::try_from(*last)
                .map_err(|_| StoreError::Corrupt(format!("last_seq {last}")))?,
        }),
        [1, outcomes @ ..] if outcomes.len() == events => outcomes
            .iter()
            .map(|&answer| decode_append(answer))
            .collect::<StoreResult<Vec<_>>>()
            .map(Appended::Done),
        other => Err(StoreError::Corrupt(format!(
            "append batch of {events} answered {other:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_decode_per_event() {
        assert_eq!(
            decode_batch(&[1, 5, -2, 6], 3).expect("decodes"),
            Appended::Done(vec![
                AppendOutcome::Stored(5),
                AppendOutcome::WrongState,
                AppendOutcome::Stored(6)
            ])
        );
        assert_eq!(
            decode_batch(&[-1], 2).expect("decodes"),
            Appended::Done(vec![AppendOutcome::NotFound; 2])
        );
        assert_eq!(
            decode_batch(&[-3, 9], 2).expect("decodes"),
            Appended::Behind { last: 9 }
        );
        assert!(decode_batch(&[1, 5], 2).is_err(), "one answer short");
        assert!(decode_batch(&[-3, -1], 1).is_err(), "negative last_seq");
    }
}
