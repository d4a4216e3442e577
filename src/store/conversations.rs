//! Conversations and their events: a hash of state per conversation and a stream of
//! events (its layout in `entries`, appended by `append` and `plain_append`). Older
//! versions also kept a hash of `client_msg_id → seq`; it is still deleted with the
//! conversation.

use std::{collections::HashMap, sync::LazyLock};

use redis::Script;

use super::{
    entries::{self, PageEnd, StoredEntry, StreamRange},
    keys,
    records::{ConversationRecord, NewConversation},
    Store, StoreResult,
};
use crate::protocol::{ConversationState, Event, StoredEvent};

/// KEYS: conversation hash, events stream, listening nodes. ARGV: first event JSON, the
/// creating node (its first listener), then field/value pairs.
static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('XADD', KEYS[2], '1-0', 'e', ARGV[1])
redis.call('SADD', KEYS[3], ARGV[2])
return 1
"#,
    )
});

/// Deletes KEYS[1] only while it still holds ARGV[1].
static DELETE_IF: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#,
    )
});

impl Store {
    /// Claims the visitor's single open-conversation slot. Returns the conversation that
    /// already holds it, if any.
    pub async fn claim_visitor_slot(
        &self,
        visitor_id: &str,
        conversation_id: &str,
    ) -> StoreResult<Option<String>> {
        let mut conn = self.conn();
        let key = keys::visitor_open(visitor_id);
        let id = conversation_id.to_string();
        self.run("claim_visitor_slot", async move {
            let set: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(&id)
                .arg("NX")
                .query_async(&mut conn)
                .await?;
            if set.is_some() {
                return Ok(None);
            }
            redis::cmd("GET").arg(&key).query_async(&mut conn).await
        })
        .await
    }

    /// Frees the visitor's slot if `conversation_id` still holds it.
    pub async fn release_visitor_slot(
        &self,
        visitor_id: &str,
        conversation_id: &str,
    ) -> StoreResult<()> {
        let mut conn = self.conn();
        let key = keys::visitor_open(visitor_id);
        let id = conversation_id.to_string();
        self.run("release_visitor_slot", async move {
            DELETE_IF
                .key(key)
                .arg(id)
                .invoke_async::<i64>(&mut conn)
                .await
                .map(|_| ())
        })
        .await
    }

    pub async fn visitor_open_conversation(&self, visitor_id: &str) -> StoreResult<Option<String>> {
        let mut conn = self.conn();
        let key = keys::visitor_open(visitor_id);
        self.run("visitor_open", async move {
            redis::cmd("GET").arg(key).query_async(&mut conn).await
        })
        .await
    }

    /// Stores a new conversation with its first message as seq 1, `node` as its first
    /// listener (see `append`). The open index is written first, so a crash in between
    /// leaves an index entry that recovery drops rather than a conversation nobody knows
    /// about.
    pub async fn create_conversation(
        &self,
        new: &NewConversation,
        node: &str,
    ) -> StoreResult<bool> {
        let first = StoredEvent::json(new.created_at, &new.first_message)?;
        let metadata = serde_json::to_string(&new.metadata)?;
        let fields: Vec<(&str, String)> = vec![
            ("id", new.id.clone()),
            ("visitor_id", new.visitor_id.clone()),
            ("topic", new.topic.clone()),
            ("priority", new.priority.to_string()),
            (
                "customer_name",
                new.customer_name.clone().unwrap_or_default(),
            ),
            (
                "customer_email",
                new.customer_email.clone().unwrap_or_default(),
            ),
            ("verified", if new.verified { "1" } else { "0" }.into()),
            ("metadata", metadata),
            ("created_at", new.created_at.to_string()),
            ("waiting_since", new.created_at.to_string()),
            ("state", ConversationState::Queued.as_str().into()),
            ("agent", String::new()),
            ("preview", new.preview.clone()),
        ];
        let mut conn = self.conn();
        let id = new.id.clone();
        let node = node.to_string();
        let created_at = new.created_at;
        self.run("create_conversation", async move {
            redis::cmd("ZADD")
                .arg(keys::open_conversations())
                .arg(created_at)
                .arg(&id)
                .query_async::<i64>(&mut conn)
                .await?;
            let mut invocation = CREATE.key(keys::conversation(&id));
            invocation
                .key(keys::events(&id))
                .key(keys::listeners(&id))
                .arg(first)
                .arg(node);
            for (field, value) in &fields {
                invocation.arg(*field).arg(value);
            }
            invocation
                .invoke_async::<i64>(&mut conn)
                .await
                .map(|created| created == 1)
        })
        .await
    }

    /// A conversation's record, its `last_seq` read from the stream's top entry (the
    /// append's fence: nothing else records it; see `append`).
    pub async fn conversation(&self, id: &str) -> StoreResult<Option<ConversationRecord>> {
        let mut conn = self.conn();
        let (key, events) = (keys::conversation(id), keys::events(id));
        let (top, hash): (StreamRange, HashMap<String, String>) = self
            .run("conversation", async move {
                // Both keys are in the conversation's slot: one round trip on a cluster too.
                // The stream's top first: another client's append may run in between, so
                // the hash is as new as the top or newer, never older. A closed state
                // read with an older top is then the truth (a close is final and its
                // event is read next), where the other order could report open with a
                // top that already holds the `closed` (a plain append, checked by its
                // task against this state, would then go in on a closed chat).
                redis::pipe()
                    .add_command(entries::top_entry(&events))
                    .cmd("HGETALL")
                    .arg(key)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        if hash.is_empty() {
            return Ok(None);
        }
        let mut record = ConversationRecord::from_hash(id, hash)?;
        // Conversations stored before the fence moved to the stream kept a `last_seq`
        // field, equal to the top then and never ahead of it since.
        record.last_seq = record.last_seq.max(top.first_last_seq()?);
        Ok(Some(record))
    }

    /// Sets plain fields of a conversation's state hash (no event).
    pub async fn update_conversation(
        &self,
        id: &str,
        updates: &[(&str, String)],
    ) -> StoreResult<()> {
        if updates.is_empty() {
            return Ok(());
        }
        let mut cmd = redis::cmd("HSET");
        cmd.arg(keys::conversation(id));
        for (field, value) in updates {
            cmd.arg(*field).arg(value);
        }
        let mut conn = self.conn();
        self.run("update_conversation", async move {
            cmd.query_async::<i64>(&mut conn).await.map(|_| ())
        })
        .await
    }

    /// Events after `after_seq`, oldest first, at most `limit`; `more` when there are more.
    /// A page of a conversation's events for a client, read over the bulk connection a
    /// few pages at a time.
    pub async fn history(
        &self,
        conversation_id: &str,
        after_seq: u64,
        limit: usize,
    ) -> StoreResult<(Vec<Event>, bool)> {
        let (entries, more) = self
            .stored_history(conversation_id, after_seq, limit)
            .await?;
        Ok((parsed(conversation_id, &entries)?, more))
    }

    /// A page of events read over the connection the appends use, so it sees every
    /// append sent before it, even one whose reply timed out: the conversation task
    /// repairs gaps with this. The page ends at an entry's end, past `limit` if need be
    /// (the fence's rule, `entries`).
    pub async fn history_in_order(
        &self,
        conversation_id: &str,
        after_seq: u64,
        limit: usize,
    ) -> StoreResult<(Vec<Event>, bool)> {
        let (entries, more) = self
            .stored_history_on(
                self.conn(),
                conversation_id,
                after_seq,
                limit,
                PageEnd::WholeEntries,
            )
            .await?;
        Ok((parsed(conversation_id, &entries)?, more))
    }

    /// [`Self::history`] in the stored form, unparsed: for a client's page, which is
    /// spliced from it (`protocol::HistoryPage`).
    pub async fn stored_history(
        &self,
        conversation_id: &str,
        after_seq: u64,
        limit: usize,
    ) -> StoreResult<(Vec<StoredEntry>, bool)> {
        let _turn = self.bulk_turn().await?;
        self.stored_history_on(
            self.bulk_conn(),
            conversation_id,
            after_seq,
            limit,
            PageEnd::AtLimit,
        )
        .await
    }

    async fn stored_history_on(
        &self,
        conn: super::RedisConn,
        conversation_id: &str,
        after_seq: u64,
        limit: usize,
        end: PageEnd,
    ) -> StoreResult<(Vec<StoredEntry>, bool)> {
        let key = keys::events(conversation_id);
        let start = entries::entry_id(after_seq.saturating_add(1));
        let stop = entries::entry_id(after_seq.saturating_add(limit as u64));
        // The entry at or before `after_seq` may hold a batch running past it (none
        // before the start); the range is by id, the top says whether more follow.
        let before = (after_seq > 0).then(|| entries::entry_id(after_seq));
        let (before, range, top) = self
            .read_page(&conn, &key, before.as_deref(), &start, Some(&stop))
            .await?;
        let read = entries::PageRead { before, range, top };
        let (events, more) = read.page(after_seq, limit, end)?;
        if !events.is_empty() || !more {
            return Ok((events, more));
        }
        // A gap of `limit` seqs or more (lost in a failover): on from the next entry.
        let (_, range, top) = self.read_page(&conn, &key, None, &start, None).await?;
        let read = entries::PageRead {
            before: StreamRange::default(),
            range,
            top,
        };
        read.page(after_seq, limit, end)
    }

    /// One round trip of a page: the entry at or before `before` (if given), the entries
    /// from `start` to `stop` (or the first one from `start`), the stream's top entry.
    async fn read_page(
        &self,
        conn: &super::RedisConn,
        key: &str,
        before: Option<&str>,
        start: &str,
        stop: Option<&str>,
    ) -> StoreResult<(StreamRange, StreamRange, StreamRange)> {
        self.run_read("history", || {
            let mut conn = conn.clone();
            let mut pipe = redis::pipe();
            match before {
                Some(before) => pipe
                    .cmd("XREVRANGE")
                    .arg(key)
                    .arg(before)
                    .arg("-")
                    .arg("COUNT")
                    .arg(1),
                // An empty range, so the reply's shape does not change.
                None => pipe.cmd("XRANGE").arg(key).arg("+").arg("-"),
            };
            match stop {
                Some(stop) => pipe.cmd("XRANGE").arg(key).arg(start).arg(stop),
                None => pipe
                    .cmd("XRANGE")
                    .arg(key)
                    .arg(start)
                    .arg("+")
                    .arg("COUNT")
                    .arg(1),
            };
            pipe.add_command(entries::top_entry(key));
            async move { pipe.query_async(&mut conn).await }
        })
        .await
    }

    /// Every event of a conversation, parsed (for a customer's data export).
    pub async fn all_events(&self, conversation_id: &str) -> StoreResult<Vec<Event>> {
        let stored = self.all_stored_events(conversation_id).await?;
        parsed(conversation_id, &stored)
    }

    /// Every event of a conversation in the stored form (for tickets, which splice their
    /// transcript from it), read in pages over the connection for large reads.
    pub async fn all_stored_events(&self, conversation_id: &str) -> StoreResult<Vec<StoredEntry>> {
        let mut all: Vec<StoredEntry> = Vec::new();
        loop {
            let after = all.last().map_or(0, |entry| entry.seq);
            let (page, more) = self.stored_history(conversation_id, after, 1000).await?;
            all.extend(page);
            if !more {
                return Ok(all);
            }
        }
    }

    /// Ids of conversations not yet flushed to a ticket, oldest first.
    pub async fn open_conversation_ids(&self) -> StoreResult<Vec<String>> {
        let mut conn = self.conn();
        self.run("open_conversations", async move {
            redis::cmd("ZRANGE")
                .arg(keys::open_conversations())
                .arg(0)
                .arg(-1)
                .query_async(&mut conn)
                .await
        })
        .await
    }

    /// The conversation is flushed: drop it from the open index and free the visitor.
    pub async fn finish_conversation(&self, record: &ConversationRecord) -> StoreResult<()> {
        self.update_conversation(&record.id, &[("flushed", "1".into())])
            .await?;
        self.release_visitor_slot(&record.visitor_id, &record.id)
            .await?;
        self.forget_open(&record.id).await
    }

    /// Drops an id from the open index (also for index entries whose create never ran).
    pub async fn forget_open(&self, id: &str) -> StoreResult<()> {
        let mut conn = self.conn();
        let id = id.to_string();
        self.run("forget_open", async move {
            redis::cmd("ZREM")
                .arg(keys::open_conversations())
                .arg(id)
                .query_async::<i64>(&mut conn)
                .await
                .map(|_| ())
        })
        .await
    }

    /// Remembers who served a visitor, for `ttl_ms` (`None`: kept). The flush sets the
    /// expiry again when the chat ends; this one covers a hint written after that.
    pub async fn set_last_agent(
        &self,
        visitor_id: &str,
        agent_id: &str,
        ttl_ms: Option<u64>,
    ) -> StoreResult<()> {
        let mut conn = self.conn();
        let mut cmd = redis::cmd("SET");
        cmd.arg(keys::visitor_last_agent(visitor_id)).arg(agent_id);
        if let Some(ttl_ms) = ttl_ms {
            cmd.arg("PX").arg(ttl_ms.max(1));
        }
        self.run("set_last_agent", async move {
            cmd.query_async::<()>(&mut conn).await
        })
        .await
    }

    pub async fn last_agent(&self, visitor_id: &str) -> StoreResult<Option<String>> {
        let mut conn = self.conn();
        let key = keys::visitor_last_agent(visitor_id);
        self.run("last_agent", async move {
            redis::cmd("GET").arg(key).query_async(&mut conn).await
        })
        .await
    }
}

/// The events of `entries`, parsed.
fn parsed(conversation_id: &str, entries: &[StoredEntry]) -> StoreResult<Vec<Event>> {
    entries
        .iter()
        .map(|entry| entry.event(conversation_id))
        .collect()
}
