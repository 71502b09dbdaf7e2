//! Figures from raw samples: latency percentiles, sustained rates, RSS summaries.

use serde::{Deserialize, Serialize};

/// Latency percentiles in milliseconds (nearest rank).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Events measured.
    pub count: u64,
    /// Median.
    pub p50_ms: i64,
    /// 95th percentile.
    pub p95_ms: i64,
    /// 99th percentile.
    pub p99_ms: i64,
    /// Largest.
    pub max_ms: i64,
    /// Mean.
    pub mean_ms: f64,
}

/// The `q`-quantile (0–1) of sorted values, nearest rank; 0 when empty.
pub fn quantile(sorted: &[i64], q: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Latency {
    /// Percentiles of `values` (sorted here).
    pub fn of(mut values: Vec<i64>) -> Latency {
        values.sort_unstable();
        let count = values.len() as u64;
        let mean_ms = if values.is_empty() {
            0.0
        } else {
            values.iter().map(|v| *v as f64).sum::<f64>() / values.len() as f64
        };
        Latency {
            count,
            p50_ms: quantile(&values, 0.50),
            p95_ms: quantile(&values, 0.95),
            p99_ms: quantile(&values, 0.99),
            max_ms: values.last().copied().unwrap_or(0),
            mean_ms,
        }
    }
}

/// A sustained rate: events between two quantiles of their completion times over the time
/// between them, so start-up (group joins, the indicator table catch-up) and the tail do not
/// count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    /// Events completed in all.
    pub events: u64,
    /// Events per second between the 10 % and the 90 % completion times.
    pub sustained_per_s: f64,
    /// Events per second from the first to the last completion.
    pub overall_per_s: f64,
    /// Seconds from the first to the last completion.
    pub span_s: f64,
}

impl Rate {
    /// The rate of completions at `times_ms` (any order).
    pub fn of(mut times_ms: Vec<i64>) -> Rate {
        times_ms.sort_unstable();
        let events = times_ms.len() as u64;
        if times_ms.len() < 2 {
            return Rate {
                events,
                ..Rate::default()
            };
        }
        let first = times_ms[0];
        let last = times_ms[times_ms.len() - 1];
        let lo_i = times_ms.len() / 10;
        let hi_i = (times_ms.len() * 9 / 10)
            .max(lo_i + 1)
            .min(times_ms.len() - 1);
        let window_ms = (times_ms[hi_i] - times_ms[lo_i]).max(1);
        let span_ms = (last - first).max(1);
        Rate {
            events,
            sustained_per_s: (hi_i - lo_i) as f64 * 1000.0 / window_ms as f64,
            overall_per_s: (times_ms.len() - 1) as f64 * 1000.0 / span_ms as f64,
            span_s: (last - first) as f64 / 1000.0,
        }
    }
}

/// Summary of one process's resident set over a period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RssSummary {
    /// Samples taken.
    pub samples: u64,
    /// First sample, MiB.
    pub first_mb: f64,
    /// Smallest, MiB.
    pub min_mb: f64,
    /// Largest, MiB.
    pub max_mb: f64,
    /// Last sample, MiB.
    pub last_mb: f64,
    /// Mean, MiB.
    pub mean_mb: f64,
    /// Least-squares slope, MiB per minute (flat ≈ 0).
    pub slope_mb_per_min: f64,
}

impl RssSummary {
    /// From `(seconds, MiB)` samples in time order.
    pub fn of(samples: &[(f64, f64)]) -> RssSummary {
        if samples.is_empty() {
            return RssSummary::default();
        }
        let n = samples.len() as f64;
        let mean_t = samples.iter().map(|s| s.0).sum::<f64>() / n;
        let mean_mb = samples.iter().map(|s| s.1).sum::<f64>() / n;
        let (mut num, mut den) = (0.0, 0.0);
        for (t, mb) in samples {
            num += (t - mean_t) * (mb - mean_mb);
            den += (t - mean_t) * (t - mean_t);
        }
        let slope = if den > 0.0 { num / den * 60.0 } else { 0.0 };
        RssSummary {
            samples: samples.len() as u64,
            first_mb: samples[0].1,
            min_mb: samples.iter().map(|s| s.1).fold(f64::INFINITY, f64::min),
            max_mb: samples.iter().map(|s| s.1).fold(0.0, f64::max),
            last_mb: samples[samples.len() - 1].1,
            mean_mb,
            slope_mb_per_min: slope,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_nearest_rank() {
        let l = Latency::of((1..=100).rev().collect());
        assert_eq!((l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms), (50, 95, 99, 100));
        assert_eq!(l.count, 100);
        assert_eq!(Latency::of(vec![]).p99_ms, 0);
        assert_eq!(quantile(&[7], 0.99), 7);
    }

    #[test]
    fn sustained_rate_ignores_ramp_and_tail() {
        // 1,000 events/s for 10 s, after a 5 s silence and one early straggler.
        let mut t: Vec<i64> = vec![0];
        t.extend((0..10_000).map(|i| 5_000 + i));
        let r = Rate::of(t);
        assert!((r.sustained_per_s - 1000.0).abs() < 1.0, "{r:?}");
        assert!(r.overall_per_s < 700.0, "{r:?}");
        assert_eq!(r.events, 10_001);
    }

    #[test]
    fn rss_slope() {
        let flat: Vec<(f64, f64)> = (0..60).map(|s| (s as f64, 100.0)).collect();
        assert_eq!(RssSummary::of(&flat).slope_mb_per_min, 0.0);
        let growing: Vec<(f64, f64)> = (0..60).map(|s| (s as f64, 100.0 + s as f64)).collect();
        let g = RssSummary::of(&growing);
        assert!((g.slope_mb_per_min - 60.0).abs() < 1e-6);
        assert_eq!((g.min_mb, g.max_mb, g.last_mb), (100.0, 159.0, 159.0));
    }
}
