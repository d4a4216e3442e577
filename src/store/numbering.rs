//! Ticket numbers, taken only for a close that can succeed and reserved on the
//! conversation, so a close that is refused (already closed, not a member) uses none
//! and a close retried after an unknown outcome reuses its number.
//!
//! The counter (`{tickets}`) and the conversation (`{c_…}`) are in different slots, so
//! this is two steps: take a number, then reserve it on the conversation with `HSETNX`.
//! Only two nodes closing the same conversation at the same instant can lose a number
//! (the loser's); on one node the conversation task serializes closes.

use std::sync::LazyLock;

use redis::Script;

use super::{keys, Store, StoreError, StoreResult};

/// The conversation hash field holding the reserved ticket number.
const FIELD: &str = "ticket_reserved";

/// KEYS: conversation hash. ARGV: field, candidate number. Returns the reserved number
/// (the candidate or an earlier one), or nil when the conversation is gone.
static RESERVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
return redis.call('HGET', KEYS[1], ARGV[1])
"#,
    )
});

impl Store {
    /// The ticket number of a conversation's close: the one reserved earlier, or a new
    /// one from the counter, reserved now.
    pub async fn reserve_ticket_number(&self, conversation_id: &str) -> StoreResult<u64> {
        let key = keys::conversation(conversation_id);
        let conn = self.conn();
        let earlier: Option<u64> = self
            .run_read("ticket_reserved", || {
                let mut conn = conn.clone();
                let mut cmd = redis::cmd("HGET");
                cmd.arg(&key).arg(FIELD);
                async move { cmd.query_async(&mut conn).await }
            })
            .await?;
        if let Some(number) = earlier {
            return Ok(number);
        }
        let candidate = self.next_id(&keys::ticket_counter()).await?;
        let mut invocation = RESERVE.key(key);
        invocation.arg(FIELD).arg(candidate);
        let mut conn = self.conn();
        let reserved: Option<u64> = self
            .run("reserve_ticket", async move {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
        match reserved {
            Some(number) => {
                if number != candidate {
                    tracing::warn!(
                        conversation_id,
                        candidate,
                        number,
                        "ticket number lost to a concurrent close"
                    );
                }
                Ok(number)
            }
            None => Err(StoreError::Corrupt(format!(
                "conversation {conversation_id} vanished while closing"
            ))),
        }
    }
}
