//! Wall-clock time in the unit of every `ts` on the wire. Timers that must survive tests
//! with paused time use tokio's clock instead (the routing task's `Clock`).

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
