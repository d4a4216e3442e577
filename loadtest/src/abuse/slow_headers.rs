//! Slow headers: connections from the attacker addresses that send the first half of a
//! WebSocket upgrade request (no blank line, so the header never ends) and stall. A hub
//! with a header read timeout closes them after it; one without holds them as long as
//! the attacker likes. Counts how each ended and how long the hub took; the hold (8 s
//! short, 30 s full) outlasts any sensible header timeout, so none should be left.

use std::time::Duration;

use super::{
    client::Target,
    conn_flood::{hold_raw, RawEnd},
    report::AttackReport,
};

/// Half a request: the header is never finished.
const HALF_REQUEST: &[u8] = b"GET /v1/customer/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n";

pub async fn run(target: &Target, connections: usize, hold: Duration) -> AttackReport {
    let held = hold_raw(target, connections, Some(HALF_REQUEST), hold).await;
    let still_open = held.answers.get(&RawEnd::HeldOpen.kind());
    let mut notes = vec![format!(
        "{} of {connections} connected; held up to {:.0} s after the last attempt",
        held.connected,
        hold.as_secs_f64()
    )];
    notes.extend(held.close_note());
    AttackReport {
        name: "slow headers".into(),
        sent: format!(
            "{connections} connections from {} addresses, each sending {} bytes of an upgrade request's header and stalling",
            target.addrs.attacker_count(),
            HALF_REQUEST.len()
        ),
        answers: held.answers,
        notes,
        seconds: held.seconds,
        slow_held: Some(still_open),
        ..AttackReport::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_never_ends() {
        let text = std::str::from_utf8(HALF_REQUEST).expect("ascii");
        assert!(text.starts_with("GET /v1/customer/ws HTTP/1.1\r\n"));
        assert!(!text.contains("\r\n\r\n"));
    }
}
