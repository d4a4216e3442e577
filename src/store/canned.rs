//! Canned responses (issue 18): one hash of records by id, and one index of
//! `<topic>/<shortcut>` → id that keeps a shortcut unique per scope. Both keys and the
//! seed marker share the tag `{canned}`, so every script here runs in one slot.
//!
//! Changes are optimistic: a caller reads the record, decides, and the script applies
//! the change only if the record still holds the JSON that was read
//! ([`CannedWrite::Changed`] otherwise; the caller reads again). This module checks
//! nothing about fields or permissions (`crate::canned`, `http/canned.rs` do).

use std::{collections::HashMap, sync::LazyLock};

use redis::Script;
use serde::{Deserialize, Serialize};

use super::{keys, Store, StoreResult};

/// One canned response as stored and served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CannedRecord {
    pub id: String,
    pub shortcut: String,
    pub text: String,
    /// `None`: global (every topic).
    pub topic: Option<String>,
    /// Unix ms of the creation or last change.
    pub updated_at: u64,
}

impl CannedRecord {
    /// The field of the shortcut index: `<topic>/<shortcut>`, `/<shortcut>` when global
    /// (shortcuts hold no `/`, so the last `/` splits it unambiguously).
    pub fn scope_key(&self) -> String {
        format!("{}/{}", self.topic.as_deref().unwrap_or(""), self.shortcut)
    }
}

/// What a create, update or delete came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CannedWrite {
    Done,
    /// Another response has that shortcut in that scope.
    Duplicate,
    /// The store holds the maximum number of responses already.
    Full,
    /// No response with that id (any more).
    Missing,
    /// The record changed since it was read: read again and retry.
    Changed,
}

impl CannedWrite {
    fn from_reply(reply: &str) -> StoreResult<CannedWrite> {
        Ok(match reply {
            "ok" => CannedWrite::Done,
            "dup" => CannedWrite::Duplicate,
            "full" => CannedWrite::Full,
            "missing" => CannedWrite::Missing,
            "changed" => CannedWrite::Changed,
            other => {
                return Err(super::StoreError::Corrupt(format!(
                    "canned script answered {other:?}"
                )))
            }
        })
    }
}

/// KEYS: items, shortcuts. ARGV: id, scope key, JSON, maximum count.
static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[4]) then return 'full' end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 1 then return 'dup' end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 'dup' end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 'ok'
"#,
    )
});

/// KEYS: items, shortcuts. ARGV: id, JSON read, its scope key, new JSON, new scope key.
static UPDATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then return 'missing' end
if current ~= ARGV[2] then return 'changed' end
if ARGV[3] ~= ARGV[5] then
  if redis.call('HEXISTS', KEYS[2], ARGV[5]) == 1 then return 'dup' end
  redis.call('HDEL', KEYS[2], ARGV[3])
  redis.call('HSET', KEYS[2], ARGV[5], ARGV[1])
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[4])
return 'ok'
"#,
    )
});

/// KEYS: items, shortcuts. ARGV: id, JSON read, its scope key.
static DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then return 'missing' end
if current ~= ARGV[2] then return 'changed' end
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('HGET', KEYS[2], ARGV[3]) == ARGV[1] then redis.call('HDEL', KEYS[2], ARGV[3]) end
return 'ok'
"#,
    )
});

/// KEYS: items, shortcuts, seeded marker. ARGV: triples of id, scope key, JSON.
/// Stores them only when the marker is absent and no response exists; sets the marker
/// either way. Returns how many were stored.
static SEED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('SET', KEYS[3], '1', 'NX') == false then return 0 end
if redis.call('HLEN', KEYS[1]) > 0 then return 0 end
local stored = 0
for i = 1, #ARGV, 3 do
  if redis.call('HSETNX', KEYS[2], ARGV[i + 1], ARGV[i]) == 1 then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
    stored = stored + 1
  end
end
return stored
"#,
    )
});

impl Store {
    /// Every canned response, sorted by shortcut, then topic (global first).
    pub async fn canned_all(&self) -> StoreResult<Vec<CannedRecord>> {
        let conn = self.conn();
        let all: HashMap<String, String> = self
            .run_read("canned_all", || {
                let mut conn = conn.clone();
                async move {
                    redis::cmd("HGETALL")
                        .arg(keys::canned_items())
                        .query_async(&mut conn)
                        .await
                }
            })
            .await?;
        let mut records = all
            .values()
            .map(|text| serde_json::from_str::<CannedRecord>(text))
            .collect::<Result<Vec<_>, _>>()?;
        records.sort_by(|a, b| {
            (a.shortcut.as_str(), a.topic.as_deref())
                .cmp(&(b.shortcut.as_str(), b.topic.as_deref()))
        });
        Ok(records)
    }

    /// One response and the exact JSON it is stored as (for [`Store::update_canned`] and
    /// [`Store::delete_canned`]).
    pub async fn canned(&self, id: &str) -> StoreResult<Option<(CannedRecord, String)>> {
        let conn = self.conn();
        let json: Option<String> = self
            .run_read("canned", || {
                let mut conn = conn.clone();
                let mut cmd = redis::cmd("HGET");
                cmd.arg(keys::canned_items()).arg(id);
                async move { cmd.query_async(&mut conn).await }
            })
            .await?;
        match json {
            Some(text) => Ok(Some((serde_json::from_str(&text)?, text))),
            None => Ok(None),
        }
    }

    /// Stores a new response unless its shortcut is taken in its scope or `max` exist.
    pub async fn create_canned(
        &self,
        record: &CannedRecord,
        max: usize,
    ) -> StoreResult<CannedWrite> {
        let mut invocation = CREATE.key(keys::canned_items());
        invocation
            .key(keys::canned_shortcuts())
            .arg(&record.id)
            .arg(record.scope_key())
            .arg(serde_json::to_string(record)?)
            .arg(max);
        self.canned_script("create_canned", invocation).await
    }

    /// Replaces `old` (as read, with its JSON `old_json`) by `new` (same id).
    pub async fn update_canned(
        &self,
        old: &CannedRecord,
        old_json: &str,
        new: &CannedRecord,
    ) -> StoreResult<CannedWrite> {
        let mut invocation = UPDATE.key(keys::canned_items());
        invocation
            .key(keys::canned_shortcuts())
            .arg(&old.id)
            .arg(old_json)
            .arg(old.scope_key())
            .arg(serde_json::to_string(new)?)
            .arg(new.scope_key());
        self.canned_script("update_canned", invocation).await
    }

    /// Deletes `old` (as read, with its JSON `old_json`).
    pub async fn delete_canned(
        &self,
        old: &CannedRecord,
        old_json: &str,
    ) -> StoreResult<CannedWrite> {
        let mut invocation = DELETE.key(keys::canned_items());
        invocation
            .key(keys::canned_shortcuts())
            .arg(&old.id)
            .arg(old_json)
            .arg(old.scope_key());
        self.canned_script("delete_canned", invocation).await
    }

    /// Offers the config's responses to Redis once per deployment: stored only when
    /// nothing was seeded before and Redis holds none. Returns how many were stored.
    pub async fn seed_canned(&self, records: &[CannedRecord]) -> StoreResult<u64> {
        let mut invocation = SEED.key(keys::canned_items());
        invocation
            .key(keys::canned_shortcuts())
            .key(keys::canned_seeded());
        for record in records {
            invocation
                .arg(&record.id)
                .arg(record.scope_key())
                .arg(serde_json::to_string(record)?);
        }
        let mut conn = self.conn();
        self.run("seed_canned", async move {
            invocation.invoke_async(&mut conn).await
        })
        .await
    }

    async fn canned_script(
        &self,
        op: &'static str,
        invocation: redis::ScriptInvocation<'static>,
    ) -> StoreResult<CannedWrite> {
        let mut conn = self.conn();
        let reply: String = self
            .run(op, async move { invocation.invoke_async(&mut conn).await })
            .await?;
        CannedWrite::from_reply(&reply)
    }
}
