//! Flood-control counters and visitor revocations, kept in Redis so they hold across
//! reconnects (and, later, across several hub nodes).
//!
//! A counter is a fixed window opened by its first hit: one small script increments it
//! and sets its expiry on the first hit, so a counter never outlives its window. Each
//! counter key carries its subject (an address or a visitor id) as its hash tag, so
//! every script runs on one Redis Cluster slot. Must not decide limits: the caller
//! passes the limit and the window from `[flood]`.

use std::sync::LazyLock;

use redis::Script;

use super::{keys, Store, StoreResult};

/// KEYS: the counter. ARGV: limit, window (ms). Returns 1 when this hit is within the
/// limit, 0 when it is over (the hit is counted either way, so hammering a closed door
/// keeps it closed for the window it was opened in, not longer: the expiry is set once).
static HIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if n > tonumber(ARGV[1]) then return 0 end
return 1
"#,
    )
});

/// What a flood counter counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloodKind {
    /// Hellos without a session (new visitors).
    NewVisitor,
    /// `start` (new chats).
    Start,
    /// `message` frames.
    Message,
}

impl FloodKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FloodKind::NewVisitor => "new_visitor",
            FloodKind::Start => "start",
            FloodKind::Message => "message",
        }
    }
}

/// Whose counter it is.
#[derive(Debug, Clone, Copy)]
pub enum FloodSubject<'a> {
    Address(std::net::IpAddr),
    Visitor(&'a str),
}

impl Store {
    /// Counts one hit of `kind` by `subject` in a fixed window of `window_ms` opened by
    /// its first hit; `true` while the window holds at most `limit` hits.
    pub async fn flood_hit(
        &self,
        kind: FloodKind,
        subject: FloodSubject<'_>,
        limit: u32,
        window_ms: u64,
    ) -> StoreResult<bool> {
        let key = match subject {
            FloodSubject::Address(ip) => keys::flood_address(&ip.to_string(), kind.as_str()),
            FloodSubject::Visitor(id) => keys::flood_visitor(id, kind.as_str()),
        };
        let mut invocation = HIT.key(key);
        invocation.arg(limit).arg(window_ms.max(1));
        let mut conn = self.conn();
        let allowed: i64 = self
            .run("flood_hit", async move {
                invocation.invoke_async(&mut conn).await
            })
            .await?;
        Ok(allowed == 1)
    }

    /// Revokes every session of a visitor issued at or before `at_ms` (unix ms); the
    /// mark lives as long as the longest session could.
    pub async fn revoke_visitor(
        &self,
        visitor_id: &str,
        at_ms: u64,
        keep_s: u64,
    ) -> StoreResult<()> {
        let key = keys::visitor_revoked(visitor_id);
        let mut conn = self.conn();
        self.run("revoke_visitor", async move {
            redis::cmd("SET")
                .arg(key)
                .arg(at_ms)
                .arg("EX")
                .arg(keep_s.max(1))
                .query_async::<()>(&mut conn)
                .await
        })
        .await
    }

    /// When the visitor's sessions were last revoked (unix ms), if ever.
    pub async fn visitor_revoked_at(&self, visitor_id: &str) -> StoreResult<Option<u64>> {
        let key = keys::visitor_revoked(visitor_id);
        let conn = self.conn();
        self.run_read("visitor_revoked_at", || {
            let mut conn = conn.clone();
            let mut cmd = redis::cmd("GET");
            cmd.arg(&key);
            async move { cmd.query_async::<Option<u64>>(&mut conn).await }
        })
        .await
    }
}
