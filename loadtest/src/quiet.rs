//! Waiting for a local hub and Redis to settle between the hub's load and the floor's. The two
//! loads are compared as a ratio, so the floor must not start while the hub (or Redis) is
//! still busy with the end of the hub run: when every chat of a saturation run closes at
//! once, the hub flushes their tickets for ten seconds or more, and a floor measured
//! alongside that work comes out slower than it is, which flatters the hub's ratio.

use std::time::Duration;

use tokio::time::Instant;
use tracing::{info, warn};

use crate::procfs::{cpu_pct, cpu_ticks, ticks_per_second};

/// A process counts as settled below this share of one core.
const SETTLED_CPU_PCT: f64 = 10.0;
/// How long each look at the processes' CPU lasts.
const WINDOW: Duration = Duration::from_secs(1);

/// Waits until each of `pids` uses less than [`SETTLED_CPU_PCT`] of a core over a
/// one-second window, or until `limit` has passed. A process that cannot be read (gone,
/// or not on this machine) does not hold the wait up. Returns how long it waited.
pub async fn wait_until_settled(pids: &[(&str, u32)], limit: Duration) -> Duration {
    let started = Instant::now();
    if pids.is_empty() {
        return Duration::ZERO;
    }
    let tick = ticks_per_second();
    loop {
        let before: Vec<Option<u64>> = pids.iter().map(|(_, pid)| cpu_ticks(*pid).ok()).collect();
        let at = Instant::now();
        tokio::time::sleep(WINDOW).await;
        let elapsed = at.elapsed();
        let busy: Vec<(&str, f64)> = pids
            .iter()
            .zip(&before)
            .filter_map(|((name, pid), before)| {
                let pct = cpu_pct((*before)?, cpu_ticks(*pid).ok()?, tick, elapsed);
                (pct >= SETTLED_CPU_PCT).then_some((*name, pct))
            })
            .collect();
        let waited = started.elapsed();
        if busy.is_empty() {
            if waited > 2 * WINDOW {
                info!(
                    waited_s = waited.as_secs_f64(),
                    "hub and Redis settled; floor starts"
                );
            }
            return waited;
        }
        if waited >= limit {
            warn!(
                still_busy = ?busy,
                waited_s = waited.as_secs_f64(),
                "the hub did not settle; the floor starts anyway and may measure low"
            );
            return waited;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A child process, killed when dropped; watched instead of the test process, whose
    /// CPU depends on whatever other tests run beside it.
    struct Child(std::process::Child);

    impl Child {
        fn shell(script: &str) -> Child {
            let child = std::process::Command::new("sh")
                .args(["-c", script])
                .spawn()
                .expect("sh runs");
            Child(child)
        }
        fn pid(&self) -> u32 {
            self.0.id()
        }
    }

    impl Drop for Child {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[tokio::test]
    async fn an_idle_process_lets_the_floor_start_after_one_window() {
        let sleeper = Child::shell("exec sleep 60");
        let waited =
            wait_until_settled(&[("sleeper", sleeper.pid())], Duration::from_secs(30)).await;
        assert!(waited >= WINDOW && waited < 5 * WINDOW, "waited {waited:?}");
    }

    #[tokio::test]
    async fn a_busy_process_holds_the_floor_back_until_the_limit() {
        let spinner = Child::shell("while :; do :; done");
        let limit = Duration::from_millis(2500);
        let waited = wait_until_settled(&[("spinner", spinner.pid())], limit).await;
        assert!(waited >= limit, "waited {waited:?}");
    }

    #[tokio::test]
    async fn a_process_that_is_gone_does_not_hold_the_floor_back() {
        let mut gone = Child::shell("exit 0");
        let pid = gone.pid();
        let _ = gone.0.wait();
        let waited = wait_until_settled(&[("gone", pid)], Duration::from_secs(30)).await;
        assert!(waited < 5 * WINDOW, "waited {waited:?}");
    }

    #[tokio::test]
    async fn nothing_to_watch_means_no_wait() {
        assert_eq!(
            wait_until_settled(&[], Duration::from_secs(5)).await,
            Duration::ZERO
        );
    }
}
