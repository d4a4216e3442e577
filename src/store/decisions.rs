//! The routing audit's storage: each conversation's routing decisions, as the router
//! core explained them, in a capped list beside its other keys (same hash tag). It
//! expires with the conversation: an append to a retired conversation takes its
//! deadline, and retiring sets the list's (`retention.rs`).

use std::sync::LazyLock;

use redis::Script;

use super::{keys, Store, StoreResult};

/// The most decisions kept per conversation (the oldest give way).
pub const MAX_DECISIONS: i64 = 200;

/// KEYS: conversation hash, decision list. ARGV: decision JSON, cap.
/// Returns 0 when the conversation is gone (nothing stored), 1 otherwise.
static APPEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
local keep = redis.call('PTTL', KEYS[1])
if keep > 0 then redis.call('PEXPIRE', KEYS[2], keep) end
return 1
"#,
    )
});

impl Store {
    /// Appends one routing decision (JSON) of a conversation that still exists.
    pub async fn append_decision(&self, conversation: &str, json: String) -> StoreResult<bool> {
        let mut invocation = APPEND.key(keys::conversation(conversation));
        invocation
            .key(keys::decisions(conversation))
            .arg(json)
            .arg(MAX_DECISIONS);
        let mut conn = self.conn();
        self.run("append_decision", async move {
            invocation
                .invoke_async::<i64>(&mut conn)
                .await
                .map(|stored| stored == 1)
        })
        .await
    }

    /// A conversation's routing decisions, oldest first (JSON texts).
    pub async fn decisions(&self, conversation: &str) -> StoreResult<Vec<String>> {
        let key = keys::decisions(conversation);
        let mut conn = self.conn();
        self.run("decisions", async move {
            redis::cmd("LRANGE")
                .arg(key)
                .arg(0)
                .arg(-1)
                .query_async(&mut conn)
                .await
        })
        .await
    }
}
