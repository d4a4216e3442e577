//! What Redis knows of uploaded files: each conversation's files (a hash beside its other
//! keys, same hash tag) and when each conversation's files are to be deleted (one sorted
//! set). The bytes live in the object store (`attachments/`); the description here is
//! written only once the bytes are stored, so a file is either whole or unknown.

use std::sync::LazyLock;

use redis::Script;

use super::{keys, Store, StoreResult};

/// Score of a conversation whose retention has not started (still open): far enough
/// that no sweep takes it, low enough to stay an exact double.
pub const NOT_DUE: u64 = 1 << 52;

/// What adding a file's description can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    Stored,
    /// The conversation is gone or closed.
    NotOpen,
    /// It holds `max_per_conversation` files already.
    Full,
}

/// KEYS: conversation hash, files hash. ARGV: attachment id, description JSON, cap.
/// Returns 1 stored, 0 conversation gone or closed, -1 full.
static ADD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'closed' then return 0 end
if redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[3]) then return -1 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
"#,
    )
});

impl Store {
    /// Marks a conversation as holding files, to be deleted no earlier than its
    /// retention says (`NOT_DUE` until its ticket is stored). Done before the bytes go
    /// to the object store, so no stored byte is ever unknown to the sweep.
    pub async fn note_attachments(&self, conversation: &str) -> StoreResult<()> {
        let (key, member) = (keys::attachments_due(), conversation.to_string());
        let mut conn = self.conn();
        self.run("note_attachments", async move {
            redis::cmd("ZADD")
                .arg(key)
                .arg("NX")
                .arg(NOT_DUE)
                .arg(member)
                .query_async::<i64>(&mut conn)
                .await
                .map(|_| ())
        })
        .await
    }

    /// Adds a stored file's description to an open conversation, within the cap.
    pub async fn add_attachment(
        &self,
        conversation: &str,
        attachment_id: &str,
        json: String,
        max_per_conversation: u32,
    ) -> StoreResult<Added> {
        let mut invocation = ADD.key(keys::conversation(conversation));
        invocation
            .key(keys::attachments(conversation))
            .arg(attachment_id)
            .arg(json)
            .arg(max_per_conversation);
        let mut conn = self.conn();
        self.run("add_attachment", async move {
            invocation
                .invoke_async::<i64>(&mut conn)
                .await
                .map(|answer| match answer {
                    1 => Added::Stored,
                    -1 => Added::Full,
                    _ => Added::NotOpen,
                })
        })
        .await
    }

    /// One file's description (JSON), if the conversation holds it.
    pub async fn attachment(
        &self,
        conversation: &str,
        attachment_id: &str,
    ) -> StoreResult<Option<String>> {
        let (key, field) = (keys::attachments(conversation), attachment_id.to_string());
        let mut conn = self.conn();
        self.run("attachment", async move {
            redis::cmd("HGET")
                .arg(key)
                .arg(field)
                .query_async(&mut conn)
                .await
        })
        .await
    }

    /// Sets when a conversation's files are deleted (Unix ms). Only a conversation
    /// holding files is touched. Safe to repeat. Tickets kept for ever keep their files:
    /// the caller then leaves the conversation at `NOT_DUE`.
    pub async fn schedule_attachments(&self, conversation: &str, at_ms: u64) -> StoreResult<()> {
        let (key, member) = (keys::attachments_due(), conversation.to_string());
        let mut conn = self.conn();
        self.run("schedule_attachments", async move {
            redis::cmd("ZADD")
                .arg(key)
                .arg("XX")
                .arg(at_ms.min(NOT_DUE - 1))
                .arg(member)
                .query_async::<i64>(&mut conn)
                .await
                .map(|_| ())
        })
        .await
    }

    /// Conversations whose files are due for deletion at `now_ms`, at most `limit`.
    pub async fn due_attachments(&self, now_ms: u64, limit: usize) -> StoreResult<Vec<String>> {
        let key = keys::attachments_due();
        let mut conn = self.conn();
        self.run("due_attachments", async move {
            redis::cmd("ZRANGEBYSCORE")
                .arg(key)
                .arg("-inf")
                .arg(now_ms)
                .arg("LIMIT")
                .arg(0)
                .arg(limit)
                .query_async(&mut conn)
                .await
        })
        .await
    }

    /// Forgets a conversation's files once their bytes are deleted: its files hash, then
    /// its place in the schedule (last, so a failure in between is retried).
    pub async fn forget_attachments(&self, conversation: &str) -> StoreResult<()> {
        let files = keys::attachments(conversation);
        let mut conn = self.conn();
        self.run("forget_attachments", async move {
            redis::cmd("DEL")
                .arg(files)
                .query_async::<i64>(&mut conn)
                .await
                .map(|_| ())
        })
        .await?;
        let (key, member) = (keys::attachments_due(), conversation.to_string());
        let mut conn = self.conn();
        self.run("unschedule_attachments", async move {
            redis::cmd("ZREM")
                .arg(key)
                .arg(member)
                .query_async::<i64>(&mut conn)
                .await
                .map(|_| ())
        })
        .await
    }
}
