//! Provider models fitted to a log (`routesim fit`): per endpoint, the time to first token and the time per
//! output token by maximum likelihood (lognormal, gamma, exponential; the best by AIC), with the KS
//! statistic and a quantile table; error rates by status class; peak request and token rates (and the
//! 429 ceiling they suggest); prices from the logged spend. The result is a list of [`EndpointSpec`]s
//! that a scenario loads with `include_endpoints = ["providers.toml"]`.
//!
//! When the log has no TTFT, end-to-end latency is regressed on output tokens (least squares): the slope
//! is the time per output token (a constant) and the intercept part of each latency, `latency - slope x
//! (output - 1)`, is fitted as the TTFT. Samples are kept by reservoir sampling (at most
//! [`RESERVOIR`] per quantity and endpoint), so memory is bounded however long the log.
//!
//! When the log has a `quality` column, the accuracy of each endpoint per task class is estimated from the
//! rows that did not fail and carry a quality: the mean score, with Wilson's 95% interval for 0/1 outcomes and
//! Student's t for scores ([`super::quality`]). `default` is the estimate over all of the endpoint's rows
//! (every class pooled), the accuracy a scenario applies to classes it lists no accuracy for. No estimate
//! rests on fewer than [`MIN_QUALITY_ROWS`] rows: a class with fewer is reported and left out.

use super::quality::{QualityEstimate, ScoreTally};
use super::read::{LogError, LogReader, LogRow, Outcome, RowErrors, Vocabulary};
use rand::RngExt;
use router_core::{Duration, ErrorClass, Limits, Price};
use routesim_schema::{DistConfig, EndpointConfig as EndpointSpec, ErrorRates, round_sig};
use statrs::distribution::{ContinuousCDF, Exp, Gamma, LogNormal};
use std::collections::HashMap;

/// Samples kept per quantity and endpoint.
pub const RESERVOIR: usize = 200_000;

/// Fewest scored rows an accuracy estimate may rest on (per endpoint and task class): below it the 95%
/// interval of a 0/1 rate is wider than about +-0.17 at an accuracy of 0.5, too wide to state an accuracy.
pub const MIN_QUALITY_ROWS: u64 = 30;

/// A fitted distribution of a positive quantity (seconds).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Family {
    /// `ln X ~ N(mu, sigma^2)`.
    Lognormal {
        /// Mean of `ln X`.
        mu: f64,
        /// Standard deviation of `ln X`.
        sigma: f64,
    },
    /// Gamma with shape `k` and scale `theta` (mean `k theta`).
    Gamma {
        /// Shape.
        shape: f64,
        /// Scale.
        scale: f64,
    },
    /// Exponential with this mean.
    Exponential {
        /// Mean.
        mean: f64,
    },
}

impl Family {
    /// Name as in scenario files.
    pub fn name(&self) -> &'static str {
        match self {
            Family::Lognormal { .. } => "lognormal",
            Family::Gamma { .. } => "gamma",
            Family::Exponential { .. } => "exponential",
        }
    }

    fn params(&self) -> usize {
        match self {
            Family::Exponential { .. } => 1,
            _ => 2,
        }
    }

    /// CDF at `x`.
    pub fn cdf(&self, x: f64) -> f64 {
        match *self {
            Family::Lognormal { mu, sigma } => LogNormal::new(mu, sigma).map_or(f64::NAN, |d| d.cdf(x)),
            Family::Gamma { shape, scale } => Gamma::new(shape, 1.0 / scale).map_or(f64::NAN, |d| d.cdf(x)),
            Family::Exponential { mean } => Exp::new(1.0 / mean).map_or(f64::NAN, |d| d.cdf(x)),
        }
    }

    /// Quantile at probability `p`.
    pub fn quantile(&self, p: f64) -> f64 {
        match *self {
            Family::Lognormal { mu, sigma } => LogNormal::new(mu, sigma).map_or(f64::NAN, |d| d.inverse_cdf(p)),
            Family::Gamma { shape, scale } => Gamma::new(shape, 1.0 / scale).map_or(f64::NAN, |d| d.inverse_cdf(p)),
            Family::Exponential { mean } => -mean * (1.0 - p).ln(),
        }
    }

    /// Log-likelihood of the samples.
    pub fn log_likelihood(&self, xs: &[f64]) -> f64 {
        use statrs::function::gamma::ln_gamma;
        match *self {
            Family::Lognormal { mu, sigma } => xs
                .iter()
                .map(|&x| {
                    let z = (x.ln() - mu) / sigma;
                    -x.ln() - sigma.ln() - 0.5 * (2.0 * std::f64::consts::PI).ln() - 0.5 * z * z
                })
                .sum(),
            Family::Gamma { shape, scale } => {
                xs.iter().map(|&x| (shape - 1.0) * x.ln() - x / scale - ln_gamma(shape) - shape * scale.ln()).sum()
            }
            Family::Exponential { mean } => xs.iter().map(|&x| -mean.ln() - x / mean).sum(),
        }
    }

    /// As a scenario distribution of durations.
    pub fn to_config(&self) -> DistConfig<Duration> {
        // Microsecond resolution keeps the written durations readable.
        let d = |s: f64| Duration::from_secs_f64(((s * 1e6).round() / 1e6).max(1e-6));
        match *self {
            Family::Lognormal { mu, sigma } => DistConfig::Lognormal { median: d(mu.exp()), sigma: round_sig(sigma) },
            Family::Gamma { shape, scale } => DistConfig::Gamma { mean: d(shape * scale), shape: round_sig(shape) },
            Family::Exponential { mean } => DistConfig::Exponential { mean: d(mean) },
        }
    }
}

/// Maximum-likelihood fits of every family to positive samples.
pub fn fit_all(xs: &[f64]) -> Vec<Family> {
    let xs: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite() && *x > 0.0).collect();
    if xs.len() < 2 {
        return Vec::new();
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let logs: Vec<f64> = xs.iter().map(|x| x.ln()).collect();
    let mu = logs.iter().sum::<f64>() / n;
    let sigma = (logs.iter().map(|l| (l - mu).powi(2)).sum::<f64>() / n).sqrt();
    let mut out = vec![Family::Exponential { mean }];
    if sigma > 0.0 {
        out.push(Family::Lognormal { mu, sigma });
    }
    // Gamma shape: Minka's closed-form start, then Newton steps on ln k - digamma(k) = s.
    let s = mean.ln() - mu;
    if s > 0.0 {
        let mut k = (3.0 - s + ((s - 3.0).powi(2) + 24.0 * s).sqrt()) / (12.0 * s);
        for _ in 0..20 {
            let f = k.ln() - statrs::function::gamma::digamma(k) - s;
            let h = 1e-6 * k;
            let df = ((k + h).ln() - statrs::function::gamma::digamma(k + h) - (k - h).ln()
                + statrs::function::gamma::digamma(k - h))
                / (2.0 * h);
            if df == 0.0 || !df.is_finite() {
                break;
            }
            let next = (k - f / df).max(k / 10.0);
            if (next - k).abs() < 1e-10 * k {
                k = next;
                break;
            }
            k = next;
        }
        if k.is_finite() && k > 0.0 {
            out.push(Family::Gamma { shape: k, scale: mean / k });
        }
    }
    out
}

/// The fit with the lowest AIC, with its KS statistic.
pub fn fit_best(xs: &[f64]) -> Option<Fit> {
    let mut sorted: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite() && *x > 0.0).collect();
    sorted.sort_by(f64::total_cmp);
    let best = fit_all(&sorted).into_iter().min_by(|a, b| {
        let aic = |f: &Family| 2.0 * f.params() as f64 - 2.0 * f.log_likelihood(&sorted);
        aic(a).total_cmp(&aic(b))
    })?;
    Some(Fit { family: best, ks: ks_statistic(&sorted, &best), n: sorted.len(), sorted })
}

/// A fitted quantity with the samples it was fitted to (sorted).
#[derive(Clone, Debug)]
pub struct Fit {
    /// The chosen family and parameters.
    pub family: Family,
    /// Kolmogorov-Smirnov statistic `sup |F_n - F|`.
    pub ks: f64,
    /// Samples.
    pub n: usize,
    /// The samples, sorted.
    pub sorted: Vec<f64>,
}

impl Fit {
    /// `(observed, fitted)` quantiles at `p`.
    pub fn quantiles(&self, p: f64) -> (f64, f64) {
        let i = ((p * self.n as f64).ceil() as usize).clamp(1, self.n) - 1;
        (self.sorted[i], self.family.quantile(p))
    }

    /// QQ points: `(fitted quantile, observed quantile)` at `k` evenly spaced probabilities.
    pub fn qq(&self, k: usize) -> Vec<(f64, f64)> {
        (0..k)
            .map(|i| {
                let p = (i as f64 + 0.5) / k as f64;
                let (obs, fit) = self.quantiles(p);
                (fit, obs)
            })
            .collect()
    }
}

/// `sup |F_n(x) - F(x)|` over sorted samples.
pub fn ks_statistic(sorted: &[f64], f: &Family) -> f64 {
    let n = sorted.len() as f64;
    sorted
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let c = f.cdf(x);
            (c - i as f64 / n).abs().max(((i + 1) as f64 / n - c).abs())
        })
        .fold(0.0, f64::max)
}

/// Reservoir sampling with a fixed seed (deterministic).
struct Reservoir<T> {
    seen: u64,
    items: Vec<T>,
}

impl<T> Reservoir<T> {
    fn new() -> Self {
        Reservoir { seen: 0, items: Vec::new() }
    }

    fn push(&mut self, x: T, rng: &mut impl rand::Rng) {
        self.seen += 1;
        if self.items.len() < RESERVOIR {
            self.items.push(x);
        } else {
            let j = rng.random_range(0..self.seen);
            if (j as usize) < RESERVOIR {
                self.items[j as usize] = x;
            }
        }
    }
}

/// Everything gathered about one endpoint.
struct Gathered {
    requests: u64,
    outcomes: [u64; 4],
    known: u64,
    ttft: Reservoir<f64>,
    tpot: Reservoir<f64>,
    /// `(output tokens - 1, latency)` when there is no TTFT.
    pairs: Reservoir<(f64, f64)>,
    /// Per minute: requests, tokens, whether a 429 was seen, and the summed latency (s).
    per_minute: HashMap<i64, (u64, u64, bool, f64)>,
    // Normal equations of cost = a x input + b x output.
    sii: f64,
    soo: f64,
    sio: f64,
    sic: f64,
    soc: f64,
    costed: u64,
    max_tokens: u32,
    /// Logged quality per task class (index in the log's classes).
    quality: HashMap<u16, ScoreTally>,
}

impl Gathered {
    fn new() -> Self {
        Gathered {
            requests: 0,
            outcomes: [0; 4],
            known: 0,
            ttft: Reservoir::new(),
            tpot: Reservoir::new(),
            pairs: Reservoir::new(),
            per_minute: HashMap::new(),
            sii: 0.0,
            soo: 0.0,
            sio: 0.0,
            sic: 0.0,
            soc: 0.0,
            costed: 0,
            max_tokens: 0,
            quality: HashMap::new(),
        }
    }
}

/// The fit of one endpoint.
#[derive(Clone, Debug)]
pub struct EndpointFit {
    /// Endpoint name in the log.
    pub name: String,
    /// Requests logged.
    pub requests: u64,
    /// Time to first token (or the latency intercept when the log has no TTFT).
    pub ttft: Option<Fit>,
    /// Time per output token; `None` with a regression slope instead.
    pub tpot: Option<Fit>,
    /// Regression slope (seconds per output token) when the log has no TTFT.
    pub slope: Option<f64>,
    /// Failed fraction per class among requests with a known outcome.
    pub errors: ErrorRates,
    /// Peak requests in a minute.
    pub peak_rpm: u64,
    /// Peak tokens in a minute.
    pub peak_tpm: u64,
    /// Median requests per minute over the minutes that saw a 429: the ceiling the 429s suggest.
    pub rpm_ceiling: Option<u64>,
    /// Prices per million tokens fitted to the logged spend.
    pub price: Option<Price>,
    /// Fields of `spec` that the log could not inform and hold placeholders (say so before using them).
    pub placeholders: Vec<&'static str>,
    /// Accuracy estimates from the log's `quality` column: `default` (all classes pooled) first, then each
    /// class by name; empty when the log has no quality. Those resting on at least [`MIN_QUALITY_ROWS`] rows
    /// are in `spec.quality`.
    pub quality: Vec<ClassQuality>,
    /// The endpoint as a scenario declares it.
    pub spec: EndpointSpec,
}

/// The estimated accuracy of one endpoint on one task class.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassQuality {
    /// The class (`default`: every class pooled).
    pub class: String,
    /// The mean score with its 95% interval and the rows it rests on.
    pub estimate: QualityEstimate,
}

impl ClassQuality {
    /// Whether it rests on enough rows to be stated ([`MIN_QUALITY_ROWS`]).
    pub fn stated(&self) -> bool {
        self.estimate.n >= MIN_QUALITY_ROWS
    }
}

/// Fits every endpoint of a log. Rows without an endpoint are fitted as `default`.
pub fn fit_log(reader: &LogReader, strict: bool) -> Result<(Vec<EndpointFit>, RowErrors, u64), LogError> {
    let mut vocab = Vocabulary::default();
    let mut errors = RowErrors::default();
    let mut gathered: Vec<Gathered> = Vec::new();
    let mut rng = crate::rng::sequential(crate::rng::key(0, 0, crate::rng::Stream::LogSample, 1, 0));
    let read = reader.for_each(strict, &mut vocab, &mut errors, |r: LogRow| {
        let e = r.endpoint.map_or(0, |e| e as usize + 1);
        while gathered.len() <= e {
            gathered.push(Gathered::new());
        }
        let g = &mut gathered[e];
        g.requests += 1;
        g.max_tokens = g.max_tokens.max(r.input_tokens.saturating_add(r.output_tokens));
        let minute = r.arrival.div_euclid(60_000_000_000);
        let m = g.per_minute.entry(minute).or_default();
        m.0 += 1;
        m.1 += r.input_tokens as u64 + r.output_tokens as u64;
        m.3 += r.latency.map_or(0.0, |l| l as f64 * 1e-9);
        // A row without a status counts as a success for the latency and price samples (as in "as logged"),
        // but not in the error rates.
        if r.outcome == Outcome::Ok {
            g.known += 1;
        }
        match r.outcome {
            Outcome::Ok | Outcome::Unknown => {
                if let Some(q) = r.quality {
                    g.quality.entry(r.class).or_default().push(q);
                }
                if let Some(t) = r.ttft {
                    let t = t as f64 * 1e-9;
                    g.ttft.push(t, &mut rng);
                    if let Some(l) = r.latency
                        && r.output_tokens > 1
                    {
                        let per = (l as f64 * 1e-9 - t) / (r.output_tokens - 1) as f64;
                        if per > 0.0 {
                            g.tpot.push(per, &mut rng);
                        }
                    }
                } else if let Some(l) = r.latency {
                    g.pairs.push((r.output_tokens.saturating_sub(1) as f64, l as f64 * 1e-9), &mut rng);
                }
                if let Some(c) = r.cost {
                    let (i, o) = (r.input_tokens as f64, r.output_tokens as f64);
                    g.sii += i * i;
                    g.soo += o * o;
                    g.sio += i * o;
                    g.sic += i * c;
                    g.soc += o * c;
                    g.costed += 1;
                }
            }
            Outcome::Failed(c) => {
                // A failed request has no answer, so no quality.
                g.known += 1;
                g.outcomes[c.index()] += 1;
                if c == ErrorClass::RateLimited {
                    m.2 = true;
                }
            }
        }
    })?;
    let names: Vec<String> = std::iter::once("default".to_string()).chain(vocab.endpoints.iter().cloned()).collect();
    let fits = gathered
        .into_iter()
        .enumerate()
        .filter(|(_, g)| g.requests > 0)
        .map(|(i, g)| finish(&names[i], g, &vocab.classes))
        .collect();
    Ok((fits, errors, read))
}

/// The accuracy estimates of one endpoint: every class pooled as `default`, then each other class by name.
fn class_quality(tallies: &HashMap<u16, ScoreTally>, classes: &[String]) -> Vec<ClassQuality> {
    if tallies.is_empty() {
        return Vec::new();
    }
    let mut pooled = ScoreTally::default();
    let mut named: Vec<ClassQuality> = Vec::new();
    for (&c, tally) in tallies {
        pooled.merge(tally);
        let class = classes.get(c as usize).cloned().unwrap_or_default();
        if class != router_core::quality::DEFAULT_CLASS {
            named.push(ClassQuality { class, estimate: tally.mean_score() });
        }
    }
    named.sort_by(|a, b| a.class.cmp(&b.class));
    let default =
        ClassQuality { class: router_core::quality::DEFAULT_CLASS.to_string(), estimate: pooled.mean_score() };
    std::iter::once(default).chain(named).collect()
}

/// An accuracy as written into `providers.toml`: three decimals.
pub fn rounded_accuracy(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn finish(name: &str, g: Gathered, classes: &[String]) -> EndpointFit {
    let quality = class_quality(&g.quality, classes);
    let accuracy = router_core::quality::Accuracy(
        quality.iter().filter(|q| q.stated()).map(|q| (q.class.clone(), rounded_accuracy(q.estimate.value))).collect(),
    );
    let (ttft, tpot, slope) = if !g.ttft.items.is_empty() {
        (fit_best(&g.ttft.items), fit_best(&g.tpot.items), None)
    } else if g.pairs.items.len() >= 2 {
        // latency = a + b x (output - 1), least squares.
        let pairs = &g.pairs.items;
        let n = pairs.len() as f64;
        let (mx, my) = pairs.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
        let sxx: f64 = pairs.iter().map(|(x, _)| (x - mx).powi(2)).sum();
        let sxy: f64 = pairs.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
        let b = if sxx > 0.0 { (sxy / sxx).max(0.0) } else { 0.0 };
        let intercepts: Vec<f64> = pairs.iter().map(|(x, y)| y - b * x).collect();
        (fit_best(&intercepts), None, Some(b))
    } else {
        (None, None, None)
    };
    let known = g.known.max(1) as f64;
    let errors = ErrorRates {
        rate_limited: g.outcomes[ErrorClass::RateLimited.index()] as f64 / known,
        server: g.outcomes[ErrorClass::Server.index()] as f64 / known,
        // 4xx other than 429 are the client's doing, not the provider's: not modelled.
        unavailable: 0.0,
        timeout: g.outcomes[ErrorClass::Timeout.index()] as f64 / known,
    };
    let peak_rpm = g.per_minute.values().map(|m| m.0).max().unwrap_or(0);
    let peak_tpm = g.per_minute.values().map(|m| m.1).max().unwrap_or(0);
    let mut limited: Vec<u64> = g.per_minute.values().filter(|m| m.2).map(|m| m.0).collect();
    limited.sort_unstable();
    let rpm_ceiling = (!limited.is_empty()).then(|| limited[limited.len() / 2]);
    let price = (g.costed >= 2).then(|| {
        let det = g.sii * g.soo - g.sio * g.sio;
        let (a, b) = if det.abs() > 1e-12 * g.sii.max(1.0) * g.soo.max(1.0) {
            ((g.sic * g.soo - g.soc * g.sio) / det, (g.soc * g.sii - g.sic * g.sio) / det)
        } else {
            // Input and output in fixed proportion: one blended price per token.
            let t = (g.sic + g.soc) / (g.sii + g.soo + 2.0 * g.sio).max(1e-12);
            (t, t)
        };
        Price { input_per_mtok: round_sig(a.max(0.0) * 1e6), output_per_mtok: round_sig(b.max(0.0) * 1e6) }
    });
    let mut placeholders = Vec::new();
    if ttft.is_none() {
        placeholders.push("ttft (500ms)");
    }
    if tpot.is_none() && slope.is_none() {
        placeholders.push("tpot (10ms)");
    }
    if price.is_none() {
        placeholders.push("price (0)");
    }
    let ttft_cfg =
        ttft.as_ref().map_or(DistConfig::Constant { value: Duration::from_millis(500) }, |f| f.family.to_config());
    let tpot_cfg = match (&tpot, slope) {
        (Some(f), _) => f.family.to_config(),
        (None, Some(b)) => DistConfig::Constant { value: Duration::from_secs_f64((b * 1e6).round() / 1e6) },
        (None, None) => DistConfig::Constant { value: Duration::from_millis(10) },
    };
    // Little's law per minute: the mean number in flight is the summed latency over 60 s. A log does not
    // show the provider's capacity unless it was saturated, so the busiest minute's load doubled is a guess.
    let peak_in_flight = g.per_minute.values().map(|m| m.3 / 60.0).fold(0.0, f64::max);
    let slots = (peak_in_flight * 2.0).ceil().max(1.0) as u32;
    let spec = EndpointSpec {
        id: sanitize(name),
        provider: String::new(),
        model: name.to_string(),
        tier: 0,
        price: price.unwrap_or_default(),
        limits: Limits { rpm: rpm_ceiling.map(|r| r as u32), tpm: None, concurrency: None, context_window: None },
        quota_aware: rpm_ceiling.is_none(),
        tags: Vec::new(),
        capabilities: Vec::new(),
        weight: 1.0,
        batch: false,
        quality: accuracy,
        slots,
        queue_capacity: None,
        ttft: ttft_cfg,
        tpot: tpot_cfg,
        slowdown: Vec::new(),
        errors: if rpm_ceiling.is_some() { ErrorRates { rate_limited: 0.0, ..errors } } else { errors },
        fail_after: 0.5,
        hang: Duration::from_secs(600),
        retry_after: Duration::from_secs(2),
        reject_latency: Duration::from_millis(50),
        bill_failed_input: false,
        batch_turnaround: None,
        upstream: None,
    };
    EndpointFit {
        name: name.to_string(),
        requests: g.requests,
        ttft,
        tpot,
        slope,
        errors,
        peak_rpm,
        peak_tpm,
        rpm_ceiling,
        price,
        placeholders,
        quality,
        spec,
    }
}

/// An endpoint id from a log name: letters, digits, `-`, `_` and `.` kept, the rest `-`.
fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '-' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr::{Distribution, Gamma as GammaD, LogNormal as LogNormalD};

    #[test]
    fn lognormal_parameters_are_recovered_and_chosen() {
        let mut rng = crate::rng::sequential(7);
        let d = LogNormalD::new(0.35f64.ln(), 0.4).unwrap();
        let xs: Vec<f64> = (0..20_000).map(|_| d.sample(&mut rng)).collect();
        let f = fit_best(&xs).unwrap();
        let Family::Lognormal { mu, sigma } = f.family else { panic!("{:?}", f.family) };
        assert!((mu.exp() / 0.35 - 1.0).abs() < 0.01, "median {}", mu.exp());
        assert!((sigma / 0.4 - 1.0).abs() < 0.02, "sigma {sigma}");
        assert!(f.ks < 0.015, "KS {}", f.ks);
    }

    #[test]
    fn gamma_parameters_are_recovered_and_chosen() {
        let mut rng = crate::rng::sequential(8);
        let d = GammaD::new(4.0, 0.25 / 4.0).unwrap();
        let xs: Vec<f64> = (0..20_000).map(|_| d.sample(&mut rng)).collect();
        let f = fit_best(&xs).unwrap();
        let Family::Gamma { shape, scale } = f.family else { panic!("{:?}", f.family) };
        assert!((shape / 4.0 - 1.0).abs() < 0.05, "shape {shape}");
        assert!((shape * scale / 0.25 - 1.0).abs() < 0.01, "mean {}", shape * scale);
    }

    #[test]
    fn exponential_wins_on_exponential_data() {
        let mut rng = crate::rng::sequential(9);
        let xs: Vec<f64> = (0..20_000).map(|_| -0.5 * (1.0 - rng.random::<f64>()).ln()).collect();
        let f = fit_best(&xs).unwrap();
        // Gamma with shape ~1 is the same law; either is right, and the mean must match.
        let mean = match f.family {
            Family::Exponential { mean } => mean,
            Family::Gamma { shape, scale } => {
                assert!((shape - 1.0).abs() < 0.05);
                shape * scale
            }
            other => panic!("{other:?}"),
        };
        assert!((mean / 0.5 - 1.0).abs() < 0.02);
    }

    #[test]
    fn ks_statistic_of_a_perfect_fit_is_small_and_of_a_wrong_one_large() {
        let f = Family::Exponential { mean: 1.0 };
        let sorted: Vec<f64> = (0..1000).map(|i| f.quantile((i as f64 + 0.5) / 1000.0)).collect();
        assert!(ks_statistic(&sorted, &f) <= 0.0006);
        assert!(ks_statistic(&sorted, &Family::Exponential { mean: 3.0 }) > 0.3);
    }
}
