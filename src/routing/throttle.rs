//! At most one run of something per interval, and always one more after the last change.
//!
//! The routing task publishes its queue gauges this way. Computing them walks every
//! conversation and agent, so doing it after each routing event made the router's cost
//! grow with the number of open chats times the event rate.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub struct Throttle {
    interval: Duration,
    last: Option<Instant>,
    pending: bool,
}

impl Throttle {
    pub fn new(interval: Duration) -> Self {
        Throttle {
            interval,
            last: None,
            pending: false,
        }
    }

    /// Something changed at `now`. True when the caller should act now. Otherwise the
    /// change waits for [`Throttle::due`].
    pub fn changed(&mut self, now: Instant) -> bool {
        match self.last {
            Some(last) if now < last + self.interval => {
                self.pending = true;
                false
            }
            _ => {
                self.last = Some(now);
                self.pending = false;
                true
            }
        }
    }

    /// When a change still waiting should be acted on (call [`Throttle::changed`] then).
    pub fn due(&self) -> Option<Instant> {
        match (self.pending, self.last) {
            (true, Some(last)) => Some(last + self.interval),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acts_at_most_once_per_interval_and_after_the_last_change() {
        let mut throttle = Throttle::new(Duration::from_millis(100));
        let t0 = Instant::now();
        assert!(throttle.changed(t0), "the first change acts at once");
        assert_eq!(throttle.due(), None);
        assert!(!throttle.changed(t0 + Duration::from_millis(10)));
        assert!(!throttle.changed(t0 + Duration::from_millis(99)));
        assert_eq!(throttle.due(), Some(t0 + Duration::from_millis(100)));
        assert!(throttle.changed(t0 + Duration::from_millis(100)));
        assert_eq!(throttle.due(), None, "nothing is left waiting");
        // Quiet for a while: the next change acts at once again.
        assert!(throttle.changed(t0 + Duration::from_secs(5)));
    }
}
