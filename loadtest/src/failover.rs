//! Killing one hub mid-run (`--kill-node-after S --kill-pid PID`) and timing how its
//! clients come back. The run sends SIGKILL to the pid `S` seconds after the first
//! customer starts; every client that loses its connection after that without having
//! asked to (a planned reconnect does not count) is *moving*: the time from the kill to
//! its next `welcome` (on whichever hub answered) is its reconnect time, and the time to
//! its first chat traffic on the new connection — an ack of one of its messages, or a
//! live message event from the other side — is its traffic-resumed time.
//!
//! It owns those timings; whether nothing was lost is [`crate::verify`]'s to say.

use std::{
    fmt::Write as _,
    sync::{
        atomic::{AtomicU64, Ordering},
        Mutex, MutexGuard, PoisonError,
    },
    time::Duration,
};

use anyhow::bail;
use serde::Serialize;

use crate::metrics::Clock;

/// Which hub process to kill, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KillPlan {
    /// From the moment the first customer starts.
    pub after: Duration,
    pub pid: u32,
}

impl KillPlan {
    /// Refuses pids that would not name one other process (0 and negative pids signal
    /// process groups; 1 is init; the harness must not kill itself).
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.pid <= 1 || i32::try_from(self.pid).is_err() {
            bail!("--kill-pid {} does not name one hub process", self.pid);
        }
        if self.pid == std::process::id() {
            bail!("--kill-pid {} is the harness itself", self.pid);
        }
        Ok(())
    }

    /// Sends SIGKILL to the pid.
    pub fn kill(&self) -> Result<(), String> {
        let pid = i32::try_from(self.pid).map_err(|_| format!("pid {} out of range", self.pid))?;
        // SAFETY: kill(2) has no memory effects on this process; `validate` made sure
        // the pid names a single process other than ours.
        let rc = unsafe { libc::kill(pid, libc::SIGKILL) };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error().to_string())
        }
    }
}

/// One client's part in a failover: it lost its connection after the kill.
#[derive(Debug, Default)]
pub struct Moving {
    reconnected: bool,
}

#[derive(Debug, Default)]
struct Samples {
    reconnect_us: Vec<u64>,
    resumed_us: Vec<u64>,
    kill_error: Option<String>,
}

/// The run's failover timings, shared by every client.
#[derive(Debug)]
pub struct Failover {
    clock: Clock,
    /// µs on the run's clock when SIGKILL went out, plus one (0: not yet).
    killed_at: AtomicU64,
    moved: AtomicU64,
    /// Never held across `.await`: each use is a push or a copy.
    samples: Mutex<Samples>,
}

impl Failover {
    pub fn new(clock: Clock) -> Failover {
        Failover {
            clock,
            killed_at: AtomicU64::new(0),
            moved: AtomicU64::new(0),
            samples: Mutex::new(Samples::default()),
        }
    }

    fn samples(&self) -> MutexGuard<'_, Samples> {
        // A panicking client cannot leave a push half done: the data stays usable.
        self.samples.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Kills the planned pid now. The kill time is noted first, so that no client can
    /// see its connection drop before the kill is known.
    pub fn kill(&self, plan: &KillPlan) {
        let at = self.clock.now_us().saturating_add(1);
        self.killed_at.store(at, Ordering::Release);
        if let Err(err) = plan.kill() {
            self.samples().kill_error = Some(err);
        }
    }

    fn killed_at(&self) -> Option<u64> {
        match self.killed_at.load(Ordering::Acquire) {
            0 => None,
            at => Some(at - 1),
        }
    }

    /// A client lost its connection without asking to. After the kill, it is moving.
    pub fn lost(&self, moving: &mut Option<Moving>) {
        if moving.is_none() && self.killed_at().is_some() {
            *moving = Some(Moving::default());
            self.moved.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A client got its `welcome` on a new connection.
    pub fn reconnected(&self, moving: &mut Option<Moving>) {
        let (Some(m), Some(at)) = (moving.as_mut(), self.killed_at()) else {
            return;
        };
        if !m.reconnected {
            m.reconnected = true;
            let us = self.clock.since(at);
            self.samples().reconnect_us.push(us);
        }
    }

    /// A client's chat traffic flows again (an ack of its message, a live message).
    #[inline]
    pub fn traffic(&self, moving: &mut Option<Moving>) {
        if moving.as_ref().is_some_and(|m| m.reconnected) {
            *moving = None;
            if let Some(at) = self.killed_at() {
                let us = self.clock.since(at);
                self.samples().resumed_us.push(us);
            }
        }
    }

    /// The figures for the report (`None` without a kill plan).
    pub fn figures(&self, plan: Option<&KillPlan>) -> Option<FailoverFigures> {
        let plan = plan?;
        let samples = self.samples();
        let killed_at = self.killed_at();
        Some(FailoverFigures {
            pid: plan.pid,
            after_s: plan.after.as_secs_f64(),
            killed: killed_at.is_some() && samples.kill_error.is_none(),
            killed_at_s: killed_at.map(|us| us as f64 / 1e6),
            kill_error: samples.kill_error.clone(),
            clients_moved: self.moved.load(Ordering::Relaxed),
            reconnected: samples.reconnect_us.len() as u64,
            traffic_resumed: samples.resumed_us.len() as u64,
            reconnect_ms: Spread::of(&samples.reconnect_us),
            traffic_resumed_ms: Spread::of(&samples.resumed_us),
        })
    }
}

/// First, median and last of some times after the kill, in ms.
#[derive(Debug, Clone, Serialize)]
pub struct Spread {
    pub first: f64,
    pub median: f64,
    pub last: f64,
}

impl Spread {
    fn of(us: &[u64]) -> Option<Spread> {
        let mut sorted = us.to_vec();
        sorted.sort_unstable();
        let ms = |v: u64| v as f64 / 1000.0;
        Some(Spread {
            first: ms(*sorted.first()?),
            median: ms(sorted[sorted.len() / 2]),
            last: ms(*sorted.last()?),
        })
    }
}

/// What the kill did to the run.
#[derive(Debug, Clone, Serialize)]
pub struct FailoverFigures {
    pub pid: u32,
    /// When the kill was planned, from the first customer's start.
    pub after_s: f64,
    /// Whether SIGKILL was sent (the load may end before `after_s`).
    pub killed: bool,
    /// When it was sent, on the run's clock.
    pub killed_at_s: Option<f64>,
    pub kill_error: Option<String>,
    /// Clients that lost their connection after the kill without asking to.
    pub clients_moved: u64,
    /// Of those, how many got a `welcome` again (from any hub).
    pub reconnected: u64,
    /// Of those, how many had chat traffic again (a client with no chat going has none).
    pub traffic_resumed: u64,
    /// From the kill to each moved client's new `welcome`.
    pub reconnect_ms: Option<Spread>,
    /// From the kill to each moved client's first ack or live message afterwards.
    pub traffic_resumed_ms: Option<Spread>,
}

impl FailoverFigures {
    /// The lines of the terminal summary.
    pub fn text(&self) -> String {
        let mut out = String::new();
        if !self.killed {
            let why = self
                .kill_error
                .as_deref()
                .unwrap_or("the load ended before the kill was due");
            let _ = writeln!(
                out,
                "kill: pid {} planned at {:.1} s was not killed: {why}",
                self.pid, self.after_s
            );
            return out;
        }
        let spread = |s: &Option<Spread>| {
            s.as_ref().map_or("n/a".to_string(), |s| {
                format!(
                    "first {:.0} ms, median {:.0} ms, last {:.0} ms",
                    s.first, s.median, s.last
                )
            })
        };
        let _ = writeln!(
            out,
            "kill: pid {} killed at {:.1} s; {} clients moved, {} reconnected ({}), {} had traffic again ({})",
            self.pid,
            self.killed_at_s.unwrap_or(self.after_s),
            self.clients_moved,
            self.reconnected,
            spread(&self.reconnect_ms),
            self.traffic_resumed,
            spread(&self.traffic_resumed_ms),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_losses_after_the_kill_move_a_client() {
        let failover = Failover::new(Clock::new());
        let mut before = None;
        failover.lost(&mut before);
        assert!(before.is_none());
        failover.killed_at.store(1, Ordering::Release);
        let mut moving = None;
        failover.lost(&mut moving);
        failover.traffic(&mut moving); // nothing counts before the new welcome
        assert!(moving.is_some());
        failover.reconnected(&mut moving);
        failover.reconnected(&mut moving);
        failover.traffic(&mut moving);
        assert!(moving.is_none());
        let plan = KillPlan {
            after: Duration::from_secs(2),
            pid: 4242,
        };
        let figures = failover.figures(Some(&plan)).expect("a plan");
        assert_eq!(
            (
                figures.clients_moved,
                figures.reconnected,
                figures.traffic_resumed
            ),
            (1, 1, 1)
        );
        assert!(figures.killed);
        assert!(figures.text().contains("1 clients moved"));
        assert!(failover.figures(None).is_none());
    }

    #[test]
    fn pids_that_are_not_one_other_process_are_refused() {
        let plan = |pid| KillPlan {
            after: Duration::ZERO,
            pid,
        };
        assert!(plan(0).validate().is_err());
        assert!(plan(1).validate().is_err());
        assert!(plan(u32::MAX).validate().is_err());
        assert!(plan(std::process::id()).validate().is_err());
        // Any other pid will do; a fixed one was this test's own on a fresh machine.
        let other = if std::process::id() == 4242 {
            4243
        } else {
            4242
        };
        assert!(plan(other).validate().is_ok());
    }

    #[test]
    fn spreads_are_in_ms() {
        let s = Spread::of(&[3000, 1000, 2000]).expect("three");
        assert_eq!((s.first, s.median, s.last), (1.0, 2.0, 3.0));
        assert!(Spread::of(&[]).is_none());
    }
}
