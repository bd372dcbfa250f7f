//! Non-overlapping batch means: a confidence interval from one long, autocorrelated run.

use super::{Interval, RunningStats, mean_ci95};

/// Mean of a single long run with a 95% batch-means confidence interval.
///
/// Consecutive observations of a queue (waits of successive customers, per-interval queue lengths)
/// are positively correlated, so the naive `s / sqrt(n)` interval is far too narrow. Batch means
/// splits the (post-warm-up) series into `batches` contiguous, equal-size batches, takes each
/// batch's mean, and treats those means as approximately independent and normal: the interval is
/// the Student-t interval over the batch means, with `batches - 1` degrees of freedom. This holds
/// when each batch is much longer than the correlation time; 10 to 30 batches is the usual choice
/// (check with [`lag1_autocorrelation`] of the batch means, which should be near zero).
///
/// Details:
/// - Non-finite observations are excluded first and counted in [`Interval::non_finite`].
/// - With `len` finite observations, the batch size is `len / batches` (floor) and the
///   `len % batches` *earliest* observations are dropped, since they are the ones closest to the
///   warm-up transient.
/// - If there are fewer observations than `batches`, each observation becomes its own batch;
///   `Interval::n` is always the number of batches actually used (0 for an empty series, giving an
///   empty interval; 1 giving no half-width).
pub fn batch_means_ci(series: &[f64], batches: usize) -> Interval {
    let finite: Vec<f64> = series.iter().copied().filter(|x| x.is_finite()).collect();
    let non_finite = series.len() - finite.len();
    let k = batches.min(finite.len());
    if k == 0 {
        return Interval { non_finite, ..Interval::empty() };
    }
    let size = finite.len() / k;
    let skip = finite.len() - k * size;
    let means: Vec<f64> = finite[skip..]
        .chunks_exact(size)
        .map(|chunk| RunningStats::from_slice(chunk).mean().unwrap_or(f64::NAN))
        .collect();
    Interval { non_finite, ..mean_ci95(&means) }
}

/// Lag-1 sample autocorrelation `sum (x_t - m)(x_{t+1} - m) / sum (x_t - m)^2` of the finite
/// values of `xs` (non-finite values are skipped). `None` with fewer than three finite values or
/// zero variance. Near zero for independent data; close to 1 for a slowly varying series.
pub fn lag1_autocorrelation(xs: &[f64]) -> Option<f64> {
    let finite: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if finite.len() < 3 {
        return None;
    }
    let mean = RunningStats::from_slice(&finite).mean()?;
    let denom: f64 = finite.iter().map(|x| (x - mean) * (x - mean)).sum();
    if denom <= 0.0 {
        return None;
    }
    let num: f64 = finite.windows(2).map(|w| (w[0] - mean) * (w[1] - mean)).sum();
    Some(num / denom)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, StandardNormal};
    use rand_xoshiro::Xoshiro256PlusPlus;

    fn ar1(phi: f64, mean: f64, n: usize, seed: u64) -> Vec<f64> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let mut x = 0.0;
        (0..n)
            .map(|_| {
                let e: f64 = StandardNormal.sample(&mut rng);
                x = phi * x + e;
                mean + x
            })
            .collect()
    }

    #[test]
    fn batches_are_contiguous_and_leading_remainder_is_dropped() {
        // 11 values, 5 batches of 2: the first value (100) is dropped.
        let xs = [100.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0, 5.0, 5.0];
        let ci = batch_means_ci(&xs, 5);
        assert_eq!(ci.n, 5);
        assert!((ci.mean - 3.0).abs() < 1e-12);
        // Same interval as the t interval over the batch means 1..=5.
        let by_hand = mean_ci95(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(ci.half_width, by_hand.half_width);
    }

    #[test]
    fn degenerate_inputs_do_not_panic() {
        assert_eq!(batch_means_ci(&[], 10).n, 0);
        assert_eq!(batch_means_ci(&[1.0, 2.0], 0).n, 0);
        let few = batch_means_ci(&[1.0, 2.0, 3.0], 10);
        assert_eq!(few.n, 3);
        let with_nan = batch_means_ci(&[f64::NAN, 1.0, 2.0, 3.0, 4.0], 2);
        assert_eq!((with_nan.n, with_nan.non_finite), (2, 1));
        assert!((with_nan.mean - 2.5).abs() < 1e-12);
    }

    #[test]
    fn batch_means_interval_is_wider_than_naive_for_correlated_data_and_covers_truth() {
        // AR(1) with phi = 0.9: variance of the mean is ~ (1+phi)/(1-phi) = 19 times the naive one.
        let xs = ar1(0.9, 5.0, 100_000, 7);
        let naive = mean_ci95(&xs).half_width.unwrap();
        let bm = batch_means_ci(&xs, 20);
        let hw = bm.half_width.unwrap();
        assert!(hw > 2.5 * naive, "batch means {hw} vs naive {naive}");
        assert!(bm.contains(5.0), "{bm}");
    }

    #[test]
    fn lag1_autocorrelation_separates_iid_from_ar1() {
        let iid = ar1(0.0, 0.0, 20_000, 1);
        let cor = ar1(0.8, 0.0, 20_000, 1);
        assert!(lag1_autocorrelation(&iid).unwrap().abs() < 0.03);
        assert!((lag1_autocorrelation(&cor).unwrap() - 0.8).abs() < 0.03);
        assert_eq!(lag1_autocorrelation(&[1.0, 1.0, 1.0]), None);
        assert_eq!(lag1_autocorrelation(&[1.0, 2.0]), None);
    }
}
