//! Durations as log-scaled histograms: counts per bin (merged by adding), plus an exact
//! sum and count for the mean. Below [`LINEAR_UNTIL_MS`] a bin is 1 ms wide, so a
//! percentile there is exact; above it, bin `k` covers
//! `[100 · 1.05^k, 100 · 1.05^(k+1))` ms and a percentile is reported as the middle of
//! its bin, within [`RELATIVE_PRECISION`] (2.5 %) of the true value.
//!
//! Owns only the arithmetic: where bins are stored (hash fields `h:<metric>:<bin>`) is
//! `store/reports.rs`'s business.

use std::collections::BTreeMap;

/// Durations below this many ms have a bin of their own (1 ms wide).
pub const LINEAR_UNTIL_MS: u64 = 100;
/// Width of a bin above [`LINEAR_UNTIL_MS`]: each is 5 % wider than its lower bound.
const GROWTH: f64 = 1.05;
/// The largest relative error of a percentile: half a bin (`(1.05 - 1) / 2`).
pub const RELATIVE_PRECISION: f64 = 0.025;

/// The bin of a duration in ms.
pub fn bin_of(ms: u64) -> u32 {
    if ms < LINEAR_UNTIL_MS {
        return ms as u32;
    }
    let ratio = ms as f64 / LINEAR_UNTIL_MS as f64;
    let mut k = (ratio.ln() / GROWTH.ln()).floor().max(0.0) as u32;
    // Floating point may land one bin off at an edge: settle on the bin whose bounds hold
    // `ms`, so the precision stated above is a guarantee.
    while k > 0 && lower_bound(k) > ms as f64 {
        k -= 1;
    }
    while lower_bound(k + 1) <= ms as f64 {
        k += 1;
    }
    LINEAR_UNTIL_MS as u32 + k
}

/// The lower bound (ms) of log bin `k` (counted from the first log bin).
fn lower_bound(k: u32) -> f64 {
    LINEAR_UNTIL_MS as f64 * GROWTH.powi(k as i32)
}

/// The value a percentile falling in `bin` is reported as (ms).
pub fn representative(bin: u32) -> f64 {
    if u64::from(bin) < LINEAR_UNTIL_MS {
        return f64::from(bin);
    }
    let k = bin - LINEAR_UNTIL_MS as u32;
    (lower_bound(k) + lower_bound(k + 1)) / 2.0
}

/// One metric's merged histogram.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Count per bin.
    pub bins: BTreeMap<u32, u64>,
    /// Number of values (what the bins add up to, kept separately so the mean is exact).
    pub count: u64,
    /// Sum of the values in ms.
    pub sum: u64,
}

impl Histogram {
    pub fn record(&mut self, ms: u64) {
        *self.bins.entry(bin_of(ms)).or_default() += 1;
        self.count += 1;
        self.sum = self.sum.saturating_add(ms);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (bin, n) in &other.bins {
            *self.bins.entry(*bin).or_default() += n;
        }
        self.count += other.count;
        self.sum = self.sum.saturating_add(other.sum);
    }

    /// The `p`-th percentile (0 < p ≤ 1) by nearest rank: the value of rank
    /// `ceil(p · n)` in sorted order, as its bin's representative. `None` when empty.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        let total: u64 = self.bins.values().sum();
        if total == 0 {
            return None;
        }
        let rank = ((p * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (bin, n) in &self.bins {
            seen += n;
            if seen >= rank {
                return Some(representative(*bin));
            }
        }
        None
    }

    /// The exact mean, `None` when empty.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum as f64 / self.count as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_durations_are_exact() {
        for ms in 0..LINEAR_UNTIL_MS {
            assert_eq!(representative(bin_of(ms)), ms as f64);
        }
    }

    #[test]
    fn every_value_is_within_the_stated_precision() {
        let mut ms = LINEAR_UNTIL_MS;
        while ms < 40_000_000_000 {
            let shown = representative(bin_of(ms));
            let error = (shown - ms as f64).abs() / ms as f64;
            assert!(
                error <= RELATIVE_PRECISION + 1e-12,
                "{ms} ms shown as {shown}"
            );
            ms = ms + 1 + ms / 997;
        }
    }

    #[test]
    fn bins_grow_with_the_value() {
        let mut last = 0;
        for ms in (0..200_000).step_by(7) {
            let bin = bin_of(ms);
            assert!(bin >= last, "{ms}");
            last = bin;
        }
    }

    #[test]
    fn percentiles_by_nearest_rank_and_exact_mean() {
        let mut h = Histogram::default();
        for ms in 1..=100u64 {
            h.record(ms * 1_000);
        }
        let p50 = h.percentile(0.5).unwrap();
        let p90 = h.percentile(0.9).unwrap();
        assert!(
            (p50 - 50_000.0).abs() / 50_000.0 <= RELATIVE_PRECISION,
            "{p50}"
        );
        assert!(
            (p90 - 90_000.0).abs() / 90_000.0 <= RELATIVE_PRECISION,
            "{p90}"
        );
        assert_eq!(h.mean(), Some(50_500.0));
        let mut other = Histogram::default();
        other.record(7);
        h.merge(&other);
        assert_eq!(h.count, 101);
        assert_eq!(h.percentile(0.001), Some(7.0));
        assert_eq!(Histogram::default().percentile(0.5), None);
        assert_eq!(Histogram::default().mean(), None);
    }
}
