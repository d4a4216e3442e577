//! The figures of each attack's window: the legitimate chat's latency, the probes' outcomes
//! and the hub's peak RSS and descriptors, recorded into the window of the attack running
//! now and into the whole run's; and the task that samples the hub from `/proc`. It owns
//! the bookkeeping, not the traffic.
//!
//! Behind std `Mutex`es: a record is a few nanoseconds, a lock is never held across an
//! `.await`, and the legitimate chat records a few samples a second.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::Duration,
};

use hdrhistogram::Histogram;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::report::{LegitWindow, Tally};
use crate::{metrics::Percentiles, procfs};

/// No attack running: samples go to the whole run's figures only.
const NONE: usize = usize::MAX;

#[derive(Debug, Clone)]
struct Data {
    latency: Histogram<u64>,
    probes: Tally,
    rss_peak_kb: Option<u64>,
    fds_peak: Option<u64>,
}

impl Data {
    fn new() -> Data {
        Data {
            // Constant bounds (1 µs .. 120 s, 3 digits) that hdrhistogram always accepts.
            latency: Histogram::new_with_bounds(1, 120_000_000, 3)
                .expect("valid constant histogram bounds"),
            probes: Tally::default(),
            rss_peak_kb: None,
            fds_peak: None,
        }
    }

    fn figures(&self) -> LegitWindow {
        LegitWindow {
            latency: Percentiles::of(&self.latency),
            probes: self.probes.clone(),
            rss_peak_mb: self.rss_peak_kb.map(|kb| kb as f64 / 1024.0),
            fds_peak: self.fds_peak,
        }
    }
}

/// One window per attack plus the whole run.
#[derive(Debug)]
pub struct Windows {
    current: AtomicUsize,
    windows: Mutex<Vec<Data>>,
    overall: Mutex<Data>,
}

fn lock(data: &Mutex<Data>) -> MutexGuard<'_, Data> {
    // A panic elsewhere while recording leaves figures that are still usable.
    data.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Windows {
    pub fn new(count: usize) -> Arc<Windows> {
        Arc::new(Windows {
            current: AtomicUsize::new(NONE),
            windows: Mutex::new(vec![Data::new(); count]),
            overall: Mutex::new(Data::new()),
        })
    }

    /// From now on, samples also go to window `i` (`None`: to no attack's).
    pub fn enter(&self, i: Option<usize>) {
        self.current.store(i.unwrap_or(NONE), Ordering::Relaxed);
    }

    fn record(&self, f: impl Fn(&mut Data)) {
        f(&mut lock(&self.overall));
        let i = self.current.load(Ordering::Relaxed);
        let mut windows = self
            .windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(window) = windows.get_mut(i) {
            f(window);
        }
    }

    /// A legitimate message's customer → agent latency.
    pub fn latency(&self, us: u64) {
        self.record(|d| {
            d.latency.saturating_record(us.max(1));
        });
    }

    /// A probe's outcome: `ok` or what failed.
    pub fn probe(&self, outcome: &str) {
        self.record(|d| d.probes.add(outcome));
    }

    /// One reading of the hub.
    pub fn sample(&self, rss_kb: u64, fds: u64) {
        self.record(|d| {
            d.rss_peak_kb = Some(d.rss_peak_kb.unwrap_or(0).max(rss_kb));
            d.fds_peak = Some(d.fds_peak.unwrap_or(0).max(fds));
        });
    }

    pub fn window(&self, i: usize) -> LegitWindow {
        let windows = self
            .windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        windows.get(i).map(Data::figures).unwrap_or_default()
    }

    pub fn overall(&self) -> LegitWindow {
        lock(&self.overall).figures()
    }
}

/// Samples the hub's RSS and descriptors every `every` until `stop`; a failed read (the
/// hub exited) is logged once and ends the sampling.
pub fn watch_hub(
    pid: u32,
    windows: Arc<Windows>,
    every: Duration,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            match (procfs::rss_kb(pid), procfs::open_fds(pid)) {
                (Ok(rss), Ok(fds)) => windows.sample(rss, fds),
                (Err(err), _) | (_, Err(err)) => {
                    warn!(pid, cause = %err, "cannot read the hub from /proc; no more samples");
                    return;
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_go_to_the_current_window_and_the_whole_run() {
        let windows = Windows::new(2);
        windows.latency(1_000);
        windows.enter(Some(0));
        windows.latency(2_000);
        windows.sample(10 * 1024, 50);
        windows.probe("ok");
        windows.enter(Some(1));
        windows.sample(5 * 1024, 70);
        windows.probe("healthz: timed out");
        windows.enter(None);
        windows.sample(1024, 10);

        let first = windows.window(0);
        assert_eq!(first.latency.count, 1);
        assert_eq!(first.rss_peak_mb, Some(10.0));
        assert_eq!(first.fds_peak, Some(50));
        assert_eq!(first.probe_failures(), 0);
        let second = windows.window(1);
        assert_eq!(second.latency.count, 0);
        assert_eq!(second.fds_peak, Some(70));
        assert_eq!(second.probe_failures(), 1);
        let all = windows.overall();
        assert_eq!(all.latency.count, 2);
        assert_eq!(all.rss_peak_mb, Some(10.0));
        assert_eq!(all.fds_peak, Some(70));
        assert_eq!(windows.window(7), LegitWindow::default());
    }
}
