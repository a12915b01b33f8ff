//! Latency samples turned into the figures a benchmark reports: nearest-rank percentiles,
//! minimum, mean and maximum, in microseconds.

use std::time::Duration;

/// The nearest-rank `percent`-th percentile of `sorted` (ascending): the smallest sample
/// such that at least `percent` per cent of the samples are at or below it, that is the
/// sample of rank ⌈percent/100 × n⌉ counting from 1 (rank 1 for `percent` 0).
///
/// Always one of the samples, never an interpolation. `None` for no samples or a
/// `percent` outside 0..=100.
pub fn nearest_rank<T: Copy>(sorted: &[T], percent: f64) -> Option<T> {
    if sorted.is_empty() || !(0.0..=100.0).contains(&percent) {
        return None;
    }
    let count = sorted.len();
    // The rank is computed in integers where it can be, so that 99 % of 100 samples is
    // rank 99 exactly, not 99.00000000000001 rounded up to 100.
    let scaled = percent * count as f64;
    let rank = if scaled.fract() == 0.0 {
        (scaled as usize).div_ceil(100)
    } else {
        (scaled / 100.0).ceil() as usize
    };
    Some(sorted[rank.clamp(1, count) - 1])
}

/// Round-trip times of the measured exchanges, in microseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LatencySummary {
    /// How many round trips the figures summarise.
    pub samples: usize,
    pub min_us: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub mean_us: f64,
    pub max_us: f64,
}

impl LatencySummary {
    /// Summarises `samples` (in any order); `None` for none.
    pub fn from_samples(samples: &[Duration]) -> Option<Self> {
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        // From nanoseconds, so that whole microseconds stay whole.
        let microseconds = |duration: Duration| duration.as_nanos() as f64 / 1000.0;
        let total: Duration = sorted.iter().sum();
        Some(LatencySummary {
            samples: sorted.len(),
            min_us: microseconds(*sorted.first()?),
            p50_us: microseconds(nearest_rank(&sorted, 50.0)?),
            p99_us: microseconds(nearest_rank(&sorted, 99.0)?),
            mean_us: microseconds(total) / sorted.len() as f64,
            max_us: microseconds(*sorted.last()?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_picks_a_sample_by_its_rank() {
        let hundred: Vec<u32> = (1..=100).collect();
        assert_eq!(nearest_rank(&hundred, 50.0), Some(50));
        assert_eq!(nearest_rank(&hundred, 99.0), Some(99));
        assert_eq!(nearest_rank(&hundred, 100.0), Some(100));
        assert_eq!(nearest_rank(&hundred, 0.0), Some(1));
        assert_eq!(nearest_rank(&hundred, 0.5), Some(1));
        assert_eq!(nearest_rank(&hundred, 99.5), Some(100));

        // The textbook case: 5 samples, the 30th percentile has rank ⌈1.5⌉ = 2.
        let five = [15, 20, 35, 40, 50];
        assert_eq!(nearest_rank(&five, 30.0), Some(20));
        assert_eq!(nearest_rank(&five, 40.0), Some(20));
        assert_eq!(nearest_rank(&five, 50.0), Some(35));
        assert_eq!(nearest_rank(&five, 99.0), Some(50));

        assert_eq!(nearest_rank(&[7], 99.0), Some(7));
        assert_eq!(nearest_rank::<u32>(&[], 50.0), None);
        assert_eq!(nearest_rank(&five, 100.5), None);
        assert_eq!(nearest_rank(&five, f64::NAN), None);
    }

    #[test]
    fn a_summary_sorts_its_samples_first() {
        let samples: Vec<Duration> = [4, 1, 3, 2].map(Duration::from_micros).to_vec();
        let summary = LatencySummary::from_samples(&samples).unwrap();
        assert_eq!(summary.samples, 4);
        assert_eq!(summary.min_us, 1.0);
        assert_eq!(summary.p50_us, 2.0);
        assert_eq!(summary.p99_us, 4.0);
        assert_eq!(summary.mean_us, 2.5);
        assert_eq!(summary.max_us, 4.0);
        assert_eq!(LatencySummary::from_samples(&[]), None);
    }
}
