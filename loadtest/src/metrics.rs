//! Measurements of one load run: HDR latency histograms (overall and per second of the
//! run), counters, and errors by code. Simulators record into one shared [`Metrics`];
//! reports read summaries out of it. It owns the bookkeeping, not the load.
//!
//! The histograms sit behind a std `Mutex`: each record is a few nanoseconds of work, the
//! lock is never held across an `.await`, and on a two-core machine contention is low; a
//! channel to an owner task would cost more than it saves here.
//!
//! Memory does not grow with the messages of a run: a histogram has a fixed size, and a
//! second's histogram is reduced to the figures the series shows once the second is a few
//! seconds old (its histogram is then reused), so an hour-long soak keeps a few live
//! histograms, not 3600 of 21 KB each.

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicI64, AtomicU64, Ordering},
        Mutex, MutexGuard,
    },
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Microseconds since the start of the run, shared by every simulated client of the
/// process, so a send time written into a text can be compared on the receiving side.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch: Instant,
}

impl Clock {
    pub fn new() -> Clock {
        Clock {
            epoch: Instant::now(),
        }
    }

    pub fn now_us(&self) -> u64 {
        self.us_at(Instant::now())
    }

    pub fn us_at(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_micros()).unwrap_or(u64::MAX)
    }

    pub fn instant_at(&self, us: u64) -> Instant {
        self.epoch + Duration::from_micros(us)
    }

    /// Microseconds from `sent_us` to now (0 if the clock reads earlier).
    pub fn since(&self, sent_us: u64) -> u64 {
        self.now_us().saturating_sub(sent_us)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

/// What a latency sample measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lat {
    /// Customer send → the agent reads the message event.
    CustomerToAgent,
    /// Agent send → the customer reads the message event.
    AgentToCustomer,
    /// Request sent → its `ack` read (messages only).
    Ack,
    /// Customer's `start` sent → the first `offer` for it read by an agent.
    FirstOffer,
    /// Customer's `start` sent → the customer reads the `joined` event (queue wait).
    Joined,
}

/// Counters of a run. Plain atomics; read by the progress line and the report.
#[derive(Debug, Default)]
pub struct Counters {
    pub connections_open: AtomicI64,
    pub connections_peak: AtomicI64,
    pub connects: AtomicU64,
    pub messages_sent: AtomicU64,
    pub messages_acked: AtomicU64,
    /// Message events read live by the other side (the throughput figure).
    pub messages_delivered: AtomicU64,
    pub conversations_started: AtomicU64,
    pub conversations_joined: AtomicU64,
    pub conversations_closed: AtomicU64,
    /// Conversations no agent joined before the customer gave up.
    pub conversations_unassigned: AtomicU64,
    pub offers: AtomicU64,
    pub reconnects: AtomicU64,
    pub transfers_requested: AtomicU64,
    pub transfers_failed: AtomicU64,
    pub resends: AtomicU64,
    /// Customer messages that got no reply within the reply timeout.
    pub replies_missing: AtomicU64,
}

const MAX_US: u64 = 120_000_000;

fn new_histogram(sigfig: u8) -> Histogram<u64> {
    // Constant bounds (1 µs .. 120 s) and precision (2 or 3) that hdrhistogram always
    // accepts; nothing from the network reaches this call.
    Histogram::new_with_bounds(1, MAX_US, sigfig).expect("valid constant histogram bounds")
}

/// How many of the latest seconds keep their histogram, for samples taken just before a
/// second ended and recorded just after. A sample later than that (a thread stalled for
/// seconds between reading the clock and recording) still counts in the overall figures
/// and in the second's deliveries, not in the second's latency.
const LIVE_SECONDS: usize = 5;

/// One second of the run.
#[derive(Debug, Clone, Default)]
pub struct SecondBucket {
    pub sent: u64,
    pub delivered: u64,
    /// Message latency (both directions) of deliveries in this second.
    latency: SecondLatency,
}

/// What the series shows of a second's latency: p50, p99 and max, in microseconds.
type Figures = (u64, u64, u64);

fn figures(h: &Histogram<u64>) -> Figures {
    (h.value_at_quantile(0.5), h.value_at_quantile(0.99), h.max())
}

#[derive(Debug, Clone, Default)]
enum SecondLatency {
    /// No delivery in this second.
    #[default]
    Empty,
    /// Recent: samples may still come in (2 significant digits).
    Live(Histogram<u64>),
    /// Long over.
    Done(Figures),
}

impl SecondLatency {
    fn figures(&self) -> Option<Figures> {
        match self {
            SecondLatency::Empty => None,
            SecondLatency::Live(h) => Some(figures(h)),
            SecondLatency::Done(f) => Some(*f),
        }
    }
}

fn second_index(now_us: u64) -> usize {
    let index = usize::try_from(now_us / 1_000_000).unwrap_or(usize::MAX);
    // A run is hours at most; cap the index so a clock oddity cannot allocate wildly.
    index.min(24 * 3600)
}

#[derive(Debug)]
struct Inner {
    c2a: Histogram<u64>,
    a2c: Histogram<u64>,
    message: Histogram<u64>,
    ack: Histogram<u64>,
    first_offer: Histogram<u64>,
    joined: Histogram<u64>,
    seconds: Vec<SecondBucket>,
    /// Seconds before this one hold no live histogram.
    live_from: usize,
    /// Histograms of seconds reduced to their figures, cleared, for the next seconds.
    spare: Vec<Histogram<u64>>,
    errors: BTreeMap<String, u64>,
}

impl Inner {
    fn second(&mut self, now_us: u64) -> &mut SecondBucket {
        let index = second_index(now_us);
        self.reach(index);
        &mut self.seconds[index]
    }

    /// Makes room up to second `index`; the seconds now out of the live window settle.
    fn reach(&mut self, index: usize) {
        if self.seconds.len() <= index {
            self.seconds.resize_with(index + 1, SecondBucket::default);
            self.settle_before(index.saturating_sub(LIVE_SECONDS));
        }
    }

    /// Reduces the histograms of the seconds before `end` to their figures.
    fn settle_before(&mut self, end: usize) {
        if end <= self.live_from {
            return;
        }
        for bucket in &mut self.seconds[self.live_from..end] {
            if let SecondLatency::Live(mut h) = std::mem::take(&mut bucket.latency) {
                bucket.latency = SecondLatency::Done(figures(&h));
                h.reset();
                self.spare.push(h);
            }
        }
        self.live_from = end;
    }

    /// Counts a delivery of latency `us` in its second.
    fn record_second(&mut self, now_us: u64, us: u64) {
        let index = second_index(now_us);
        self.reach(index);
        let bucket = &mut self.seconds[index];
        bucket.delivered += 1;
        match &mut bucket.latency {
            SecondLatency::Live(h) => h.saturating_record(us),
            SecondLatency::Done(_) => {}
            empty @ SecondLatency::Empty => {
                let mut h = self.spare.pop().unwrap_or_else(|| new_histogram(2));
                h.saturating_record(us);
                *empty = SecondLatency::Live(h);
            }
        }
    }
}

/// The measurements of one run (hub or floor).
#[derive(Debug)]
pub struct Metrics {
    pub clock: Clock,
    pub counters: Counters,
    inner: Mutex<Inner>,
    first_send_us: AtomicU64,
    last_delivery_us: AtomicU64,
}

impl Metrics {
    pub fn new(clock: Clock) -> Metrics {
        Metrics {
            clock,
            counters: Counters::default(),
            inner: Mutex::new(Inner {
                c2a: new_histogram(3),
                a2c: new_histogram(3),
                message: new_histogram(3),
                ack: new_histogram(3),
                first_offer: new_histogram(3),
                joined: new_histogram(3),
                seconds: Vec::new(),
                live_from: 0,
                spare: Vec::new(),
                errors: BTreeMap::new(),
            }),
            first_send_us: AtomicU64::new(u64::MAX),
            last_delivery_us: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain numbers behind: keep using them.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records a latency sample of `us` microseconds, measured now.
    pub fn record(&self, kind: Lat, us: u64) {
        let now = self.clock.now_us();
        self.record_at(kind, us, now);
    }

    /// Records a sample as measured at `now_us` on the run's clock (tests pass their own).
    pub fn record_at(&self, kind: Lat, us: u64, now_us: u64) {
        let us = us.clamp(1, MAX_US);
        let mut inner = self.lock();
        match kind {
            Lat::CustomerToAgent | Lat::AgentToCustomer => {
                if kind == Lat::CustomerToAgent {
                    inner.c2a.saturating_record(us);
                } else {
                    inner.a2c.saturating_record(us);
                }
                inner.message.saturating_record(us);
                inner.record_second(now_us, us);
                drop(inner);
                self.counters
                    .messages_delivered
                    .fetch_add(1, Ordering::Relaxed);
                self.last_delivery_us.fetch_max(now_us, Ordering::Relaxed);
            }
            Lat::Ack => inner.ack.saturating_record(us),
            Lat::FirstOffer => inner.first_offer.saturating_record(us),
            Lat::Joined => inner.joined.saturating_record(us),
        }
    }

    /// Counts one message sent now.
    pub fn sent(&self) {
        let now = self.clock.now_us();
        self.sent_at(now);
    }

    pub fn sent_at(&self, now_us: u64) {
        self.counters.messages_sent.fetch_add(1, Ordering::Relaxed);
        self.first_send_us.fetch_min(now_us, Ordering::Relaxed);
        self.lock().second(now_us).sent += 1;
    }

    /// Counts an error by its protocol code (or a harness-side cause like `ws_closed_1013`).
    pub fn error(&self, code: &str) {
        *self.lock().errors.entry(code.to_string()).or_default() += 1;
    }

    pub fn connection_opened(&self) {
        self.counters.connects.fetch_add(1, Ordering::Relaxed);
        let open = self
            .counters
            .connections_open
            .fetch_add(1, Ordering::Relaxed)
            + 1;
        self.counters
            .connections_peak
            .fetch_max(open, Ordering::Relaxed);
    }

    pub fn connection_closed(&self) {
        self.counters
            .connections_open
            .fetch_sub(1, Ordering::Relaxed);
    }

    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn errors(&self) -> BTreeMap<String, u64> {
        self.lock().errors.clone()
    }

    pub fn error_total(&self) -> u64 {
        self.lock().errors.values().sum()
    }

    /// Percentiles of one kind of sample.
    pub fn percentiles(&self, kind: Lat) -> Percentiles {
        let inner = self.lock();
        let histogram = match kind {
            Lat::CustomerToAgent => &inner.c2a,
            Lat::AgentToCustomer => &inner.a2c,
            Lat::Ack => &inner.ack,
            Lat::FirstOffer => &inner.first_offer,
            Lat::Joined => &inner.joined,
        };
        Percentiles::of(histogram)
    }

    /// Percentiles of message latency, both directions together.
    pub fn message_percentiles(&self) -> Percentiles {
        Percentiles::of(&self.lock().message)
    }

    /// Message latency against percentile, for the percentile plot.
    pub fn message_curve(&self) -> Vec<CurvePoint> {
        const POINTS: [f64; 15] = [
            0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 99.995,
            99.999, 100.0,
        ];
        let inner = self.lock();
        if inner.message.is_empty() {
            return Vec::new();
        }
        POINTS
            .iter()
            .map(|&p| CurvePoint {
                percentile: p,
                ms: us_to_ms(inner.message.value_at_quantile(p / 100.0)),
            })
            .collect()
    }

    /// One point per second of the run.
    pub fn series(&self) -> Vec<SeriesPoint> {
        self.lock()
            .seconds
            .iter()
            .enumerate()
            .map(|(t, b)| SeriesPoint::of(t as f64, b))
            .collect()
    }

    /// The last fully elapsed second, for the live progress line.
    pub fn last_second(&self) -> Option<SeriesPoint> {
        let now_s = usize::try_from(self.clock.now_us() / 1_000_000).unwrap_or(0);
        let inner = self.lock();
        let index = now_s.checked_sub(1)?;
        inner
            .seconds
            .get(index)
            .map(|b| SeriesPoint::of(index as f64, b))
    }

    /// Delivered messages per second between the first send and the last delivery.
    pub fn delivered_per_sec(&self) -> f64 {
        let first = self.first_send_us.load(Ordering::Relaxed);
        let last = self.last_delivery_us.load(Ordering::Relaxed);
        let delivered = self.counters.messages_delivered.load(Ordering::Relaxed);
        if first == u64::MAX || last <= first {
            return 0.0;
        }
        delivered as f64 / ((last - first) as f64 / 1e6)
    }

    /// The median of the per-second delivery rate over the seconds with traffic (steadier
    /// than the whole-run mean when ramp-up and drain are long).
    pub fn median_second_rate(&self) -> f64 {
        let mut rates: Vec<u64> = self
            .lock()
            .seconds
            .iter()
            .map(|b| b.delivered)
            .filter(|&d| d > 0)
            .collect();
        if rates.is_empty() {
            return 0.0;
        }
        rates.sort_unstable();
        rates[rates.len() / 2] as f64
    }
}

pub fn us_to_ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// A latency summary in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: h.len(),
            mean_ms: h.mean() / 1000.0,
            p50_ms: us_to_ms(h.value_at_quantile(0.50)),
            p90_ms: us_to_ms(h.value_at_quantile(0.90)),
            p99_ms: us_to_ms(h.value_at_quantile(0.99)),
            p999_ms: us_to_ms(h.value_at_quantile(0.999)),
            max_ms: us_to_ms(h.max()),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct CurvePoint {
    pub percentile: f64,
    pub ms: f64,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct SeriesPoint {
    pub t_s: f64,
    pub sent: u64,
    pub delivered: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl SeriesPoint {
    fn of(t_s: f64, b: &SecondBucket) -> SeriesPoint {
        let (p50, p99, max) = b
            .latency
            .figures()
            .map_or((0.0, 0.0, 0.0), |(p50, p99, max)| {
                (us_to_ms(p50), us_to_ms(p99), us_to_ms(max))
            });
        SeriesPoint {
            t_s,
            sent: b.sent,
            delivered: b.delivered,
            p50_ms: p50,
            p99_ms: p99,
            max_ms: max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= b.abs() * 0.002 + 0.002
    }

    #[test]
    fn percentiles_of_known_samples() {
        let metrics = Metrics::new(Clock::new());
        // 1..=1000 ms, one sample each, customer→agent.
        for ms in 1..=1000u64 {
            metrics.record_at(Lat::CustomerToAgent, ms * 1000, 500_000);
        }
        let p = metrics.percentiles(Lat::CustomerToAgent);
        assert_eq!(p.count, 1000);
        assert!(close(p.p50_ms, 500.0), "p50 {}", p.p50_ms);
        assert!(close(p.p90_ms, 900.0), "p90 {}", p.p90_ms);
        assert!(close(p.p99_ms, 990.0), "p99 {}", p.p99_ms);
        assert!(close(p.p999_ms, 999.0), "p999 {}", p.p999_ms);
        assert!(close(p.max_ms, 1000.0), "max {}", p.max_ms);
        assert!(close(p.mean_ms, 500.5), "mean {}", p.mean_ms);
        // The other direction is untouched; the combined one has them all.
        assert_eq!(metrics.percentiles(Lat::AgentToCustomer).count, 0);
        assert_eq!(metrics.message_percentiles().count, 1000);
        assert_eq!(
            metrics.counters.messages_delivered.load(Ordering::Relaxed),
            1000
        );
    }

    #[test]
    fn per_second_buckets_follow_the_clock() {
        let metrics = Metrics::new(Clock::new());
        metrics.sent_at(100);
        metrics.sent_at(2_500_000);
        metrics.record_at(Lat::AgentToCustomer, 2_000, 900_000);
        metrics.record_at(Lat::AgentToCustomer, 4_000, 2_100_000);
        metrics.record_at(Lat::AgentToCustomer, 8_000, 2_200_000);
        metrics.record_at(Lat::Ack, 1_000, 2_200_000);
        let series = metrics.series();
        assert_eq!(series.len(), 3);
        assert_eq!((series[0].sent, series[0].delivered), (1, 1));
        assert_eq!((series[1].sent, series[1].delivered), (0, 0));
        assert_eq!((series[2].sent, series[2].delivered), (1, 2));
        // Per-second histograms keep 2 significant digits.
        assert!((series[2].max_ms - 8.0).abs() < 0.1, "{:?}", series[2]);
        assert!((series[0].p50_ms - 2.0).abs() < 0.03, "{:?}", series[0]);
        // Acks are not deliveries.
        assert_eq!(metrics.percentiles(Lat::Ack).count, 1);
        // 3 deliveries between t=0.0001 s and t=2.2 s.
        let rate = metrics.delivered_per_sec();
        assert!(close(rate, 3.0 / 2.1999), "rate {rate}");
        assert!(close(metrics.median_second_rate(), 2.0));
    }

    #[test]
    fn latency_from_an_embedded_stamp() {
        let clock = Clock::new();
        let sent = clock.now_us();
        let text = crate::payload::encode(sent, "c0.0.1", crate::payload::FLAG_PLAIN, 32);
        std::thread::sleep(Duration::from_millis(5));
        let stamp = crate::payload::decode(&text).expect("stamp");
        let us = clock.since(stamp.sent_us);
        assert!((5_000..1_000_000).contains(&us), "{us} µs");
        // A stamp from the future (another clock) reads as zero, not as a huge number.
        assert_eq!(clock.since(u64::MAX / 2), 0);
    }

    #[test]
    fn out_of_range_samples_are_clamped_and_errors_counted() {
        let metrics = Metrics::new(Clock::new());
        metrics.record_at(Lat::Joined, 0, 0);
        metrics.record_at(Lat::Joined, u64::MAX, 0);
        let p = metrics.percentiles(Lat::Joined);
        assert_eq!(p.count, 2);
        assert!(p.max_ms <= 121_000.0, "{p:?}");
        metrics.error("rate_limited");
        metrics.error("rate_limited");
        metrics.error("ws_closed_1013");
        assert_eq!(metrics.errors().get("rate_limited"), Some(&2));
        assert_eq!(metrics.error_total(), 3);
        let curve = metrics.message_curve();
        assert!(curve.is_empty());
    }

    #[test]
    fn old_seconds_keep_their_figures_without_a_histogram() {
        let metrics = Metrics::new(Clock::new());
        // 100 seconds, second t with samples of (t + 1) ms and 2 × (t + 1) ms; 40 and 41 idle.
        for t in (0..100u64).filter(|t| !(40..=41).contains(t)) {
            let at = t * 1_000_000 + 500_000;
            metrics.record_at(Lat::CustomerToAgent, (t + 1) * 1000, at);
            metrics.record_at(Lat::AgentToCustomer, 2 * (t + 1) * 1000, at + 1);
        }
        let series = metrics.series();
        assert_eq!(series.len(), 100);
        for (t, point) in series.iter().enumerate() {
            if (40..=41).contains(&t) {
                assert_eq!((point.delivered, point.max_ms), (0, 0.0), "{point:?}");
                continue;
            }
            let ms = (t + 1) as f64;
            assert_eq!(point.delivered, 2, "{point:?}");
            assert!((point.p50_ms - ms).abs() <= ms * 0.01, "{point:?}");
            assert!((point.max_ms - 2.0 * ms).abs() <= ms * 0.02, "{point:?}");
        }
        let inner = metrics.lock();
        let live = inner
            .seconds
            .iter()
            .filter(|b| matches!(b.latency, SecondLatency::Live(_)))
            .count();
        assert!(live <= LIVE_SECONDS + 1, "{live} live histograms");
        assert!(inner.spare.len() <= 1, "histograms are reused");
    }
}
