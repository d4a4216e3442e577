//! When a simulated sender may send its next message: at most one per `interval` (open
//! loop) and never more than `window` messages awaiting their reply. A zero interval with
//! a window of one is a closed loop: the next message goes as soon as the reply is in.
//! Shared by the hub's customers and the floor's pairs so both see the same load shape.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct Pacer {
    interval: Duration,
    window: u32,
    next: Instant,
    outstanding: u32,
}

impl Pacer {
    pub fn new(interval: Duration, window: u32, start: Instant) -> Pacer {
        Pacer {
            interval,
            window: window.max(1),
            next: start,
            outstanding: 0,
        }
    }

    /// When the next message may go, or `None` while the window is full.
    pub fn next_send(&self) -> Option<Instant> {
        (self.outstanding < self.window).then_some(self.next)
    }

    pub fn on_sent(&mut self, now: Instant) {
        self.outstanding += 1;
        // Keep the schedule; after a stall (full window) send at once rather than in a
        // burst: the window bounds what can go out back to back.
        self.next = (self.next + self.interval).max(now);
    }

    pub fn on_reply(&mut self) {
        self.outstanding = self.outstanding.saturating_sub(1);
    }

    pub fn outstanding(&self) -> u32 {
        self.outstanding
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_loop_keeps_the_rate_and_the_window() {
        let t0 = Instant::now();
        let mut p = Pacer::new(Duration::from_millis(100), 2, t0);
        assert_eq!(p.next_send(), Some(t0));
        p.on_sent(t0);
        assert_eq!(p.next_send(), Some(t0 + Duration::from_millis(100)));
        p.on_sent(t0 + Duration::from_millis(100));
        assert_eq!(p.next_send(), None, "window of 2 is full");
        p.on_reply();
        assert_eq!(p.next_send(), Some(t0 + Duration::from_millis(200)));
        // Late by a second: the next one is due now, not in the past.
        let late = t0 + Duration::from_secs(1);
        p.on_sent(late);
        p.on_reply();
        assert_eq!(p.next_send(), Some(late));
    }

    #[test]
    fn closed_loop_waits_for_each_reply() {
        let t0 = Instant::now();
        let mut p = Pacer::new(Duration::ZERO, 1, t0);
        p.on_sent(t0);
        assert_eq!(p.next_send(), None);
        p.on_reply();
        assert_eq!(p.next_send(), Some(t0));
        p.on_reply();
        assert_eq!(p.outstanding(), 0, "extra replies never go negative");
    }
}
