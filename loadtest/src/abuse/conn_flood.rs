//! Connection flood: N raw TCP connections from the attacker addresses that never send a
//! byte, held for a while. Counts how each ended: still open, closed or refused by the
//! hub (and after how long), or never connected. Also the raw-connection machinery that
//! the slow-headers attack shares ([`hold_raw`]). Nothing here speaks WebSocket.

use std::{sync::Arc, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    sync::{mpsc, Semaphore},
    task::JoinSet,
    time::{timeout, Instant},
};
use tokio_util::sync::CancellationToken;

use super::{
    client::Target,
    net::{http_status, io_kind, tcp_from},
    report::{AttackReport, Tally},
};

/// Connection attempts in flight at once.
const CONNECTING: usize = 256;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How one raw connection ended.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum RawEnd {
    NotConnected(String),
    /// Still open when the hold ended.
    HeldOpen,
    /// The hub answered (an HTTP status, if the bytes were one) or closed, after `after`.
    ClosedByHub {
        status: Option<u16>,
        reset: bool,
        after: Duration,
    },
}

impl RawEnd {
    pub(super) fn kind(&self) -> String {
        match self {
            RawEnd::NotConnected(kind) => format!("connect: {kind}"),
            RawEnd::HeldOpen => "held open to the end".into(),
            RawEnd::ClosedByHub {
                status: Some(status),
                ..
            } => format!("answered HTTP {status}, closed"),
            RawEnd::ClosedByHub { reset: true, .. } => "reset by the hub".into(),
            RawEnd::ClosedByHub { .. } => "closed by the hub".into(),
        }
    }
}

/// What [`hold_raw`] found.
pub(super) struct Held {
    pub answers: Tally,
    /// Connected at some point.
    pub connected: usize,
    /// How long the hub took to close the ones it closed, sorted.
    pub close_after: Vec<Duration>,
    pub seconds: f64,
}

impl Held {
    /// `closed after p50 5.0 s, max 5.1 s`, if any were.
    pub(super) fn close_note(&self) -> Option<String> {
        let p50 = self.close_after.get(self.close_after.len() / 2)?;
        let max = self.close_after.last()?;
        Some(format!(
            "the hub closed {} of them after p50 {:.1} s, max {:.1} s",
            self.close_after.len(),
            p50.as_secs_f64(),
            max.as_secs_f64()
        ))
    }
}

/// Opens `n` connections from the attacker addresses, writes `first_bytes` on each (if
/// any), then holds them all for `hold` after the last attempt, watching for the hub to
/// close them.
pub(super) async fn hold_raw(
    target: &Target,
    n: usize,
    first_bytes: Option<&'static [u8]>,
    hold: Duration,
) -> Held {
    let started = Instant::now();
    let gate = Arc::new(Semaphore::new(CONNECTING));
    let stop = CancellationToken::new();
    let (attempted, mut attempts) = mpsc::unbounded_channel::<()>();
    let mut tasks = JoinSet::new();
    for i in 0..n {
        let (gate, stop, attempted) = (Arc::clone(&gate), stop.clone(), attempted.clone());
        let (local, hub) = (target.addrs.attacker(i), target.hub);
        tasks.spawn(async move {
            let connected = {
                let Ok(_permit) = gate.acquire().await else {
                    return RawEnd::NotConnected("cancelled".into());
                };
                timeout(CONNECT_TIMEOUT, tcp_from(local, hub, Some(4096))).await
            };
            // The orchestrator waits for every attempt; it outlives this send.
            let _ = attempted.send(());
            let mut stream = match connected {
                Err(_) => return RawEnd::NotConnected("timed out".into()),
                Ok(Err(err)) => return RawEnd::NotConnected(io_kind(&err)),
                Ok(Ok(stream)) => stream,
            };
            let opened = Instant::now();
            if let Some(bytes) = first_bytes {
                if let Err(err) = stream.write_all(bytes).await {
                    return RawEnd::ClosedByHub {
                        status: None,
                        reset: err.kind() == std::io::ErrorKind::ConnectionReset,
                        after: opened.elapsed(),
                    };
                }
            }
            let mut buf = [0u8; 128];
            tokio::select! {
                _ = stop.cancelled() => RawEnd::HeldOpen,
                read = stream.read(&mut buf) => RawEnd::ClosedByHub {
                    status: match read {
                        Ok(n) => http_status(&buf[..n]),
                        Err(_) => None,
                    },
                    reset: read.is_err(),
                    after: opened.elapsed(),
                },
            }
        });
    }
    drop(attempted);
    for _ in 0..n {
        if attempts.recv().await.is_none() {
            break;
        }
    }
    tokio::time::sleep(hold).await;
    stop.cancel();
    let mut answers = Tally::default();
    let mut connected = 0;
    let mut close_after = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let end = joined.unwrap_or_else(|err| RawEnd::NotConnected(format!("task failed: {err}")));
        if !matches!(end, RawEnd::NotConnected(_)) {
            connected += 1;
        }
        if let RawEnd::ClosedByHub { after, .. } = end {
            close_after.push(after);
        }
        answers.add(end.kind());
    }
    close_after.sort_unstable();
    Held {
        answers,
        connected,
        close_after,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// The attack.
pub async fn run(target: &Target, connections: usize, hold: Duration) -> AttackReport {
    let held = hold_raw(target, connections, None, hold).await;
    let mut notes = vec![format!(
        "{} of {connections} connected; held {:.0} s after the last attempt",
        held.connected,
        hold.as_secs_f64()
    )];
    notes.extend(held.close_note());
    AttackReport {
        name: "connection flood".into(),
        sent: format!(
            "{connections} TCP connections from {} addresses that never send a byte",
            target.addrs.attacker_count()
        ),
        answers: held.answers,
        notes,
        seconds: held.seconds,
        ..AttackReport::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_are_named_for_the_report() {
        let closed = |status, reset| RawEnd::ClosedByHub {
            status,
            reset,
            after: Duration::from_secs(1),
        };
        assert_eq!(closed(Some(503), false).kind(), "answered HTTP 503, closed");
        assert_eq!(closed(None, true).kind(), "reset by the hub");
        assert_eq!(closed(None, false).kind(), "closed by the hub");
        assert_eq!(RawEnd::HeldOpen.kind(), "held open to the end");
        assert_eq!(
            RawEnd::NotConnected("timed out".into()).kind(),
            "connect: timed out"
        );
    }

    #[test]
    fn close_times_summarised() {
        let held = Held {
            answers: Tally::default(),
            connected: 3,
            close_after: vec![
                Duration::from_millis(4_900),
                Duration::from_millis(5_000),
                Duration::from_millis(5_100),
            ],
            seconds: 6.0,
        };
        assert_eq!(
            held.close_note().as_deref(),
            Some("the hub closed 3 of them after p50 5.0 s, max 5.1 s")
        );
        let none = Held {
            close_after: vec![],
            ..held
        };
        assert_eq!(none.close_note(), None);
    }
}
