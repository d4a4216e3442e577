//! When a simulated sender may send its next message: at most one per `interval` (open
//! loop) and never more than `window` messages awaiting their reply. A zero interval with
//! a window of one is a closed loop: the next message goes as soon as the reply is in.
//! Shared by the hub's customers and the floor's pairs so both see the same load shape.
//! [`rearm`] keeps one timer per client loop for such times, not a new one per frame.

use std::{pin::Pin, time::Duration};

use tokio::time::{Instant, Sleep};

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

/// Points `timer` at `at`, when given, unless it points there already. A client loop
/// that `select!`s on one pinned timer this way, only while it has an `at`, waits as if
/// it made a new `sleep_until(at)` each time round (a timer that fired stays ready, as a
/// new one for a time past is), without registering and dropping a timer per frame read.
pub fn rearm(timer: Pin<&mut Sleep>, at: Option<Instant>) {
    if let Some(at) = at {
        if timer.deadline() != at {
            timer.reset(at);
        }
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

    #[tokio::test(start_paused = true)]
    async fn a_rearmed_timer_waits_like_a_new_one() {
        use std::{future::Future, task::Poll};

        /// Whether the timer is ready when polled once now.
        fn ready(timer: Pin<&mut Sleep>) -> bool {
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            matches!(timer.poll(&mut cx), Poll::Ready(()))
        }

        let t0 = Instant::now();
        let timer = tokio::time::sleep_until(t0 + Duration::from_secs(3600));
        tokio::pin!(timer);
        rearm(timer.as_mut(), Some(t0 + Duration::from_millis(100)));
        assert!(!ready(timer.as_mut()));
        tokio::time::advance(Duration::from_millis(100)).await;
        assert!(ready(timer.as_mut()));
        // The same time again (the pacer did not move): still ready, not waiting anew.
        rearm(timer.as_mut(), Some(t0 + Duration::from_millis(100)));
        assert!(ready(timer.as_mut()));
        // No time: left as it is.
        rearm(timer.as_mut(), None);
        assert!(ready(timer.as_mut()));
        // A later time waits for it; a time already past is ready at once.
        rearm(timer.as_mut(), Some(t0 + Duration::from_millis(150)));
        assert!(!ready(timer.as_mut()));
        tokio::time::advance(Duration::from_millis(50)).await;
        assert!(ready(timer.as_mut()));
        rearm(timer.as_mut(), Some(t0 + Duration::from_millis(120)));
        assert!(ready(timer.as_mut()));
    }
}
