//! Simulator against live: the same metrics computed from the simulator's per-request records and from what
//! the load generator and the gateway saw, side by side with the error and a pass or fail per metric.
//!
//! Both sides count every request of the run (no warm-up) and measure in scenario time: latency and TTFT of
//! successful requests from the (scheduled) arrival, TTFT of streamed requests only (a client sees no
//! first token of a non-streamed one), cost per 1000 requests, each endpoint's share of the requests (by the
//! endpoint of their last attempt), 429 answers from providers, retries and fallbacks.

use router_core::{ErrorClass, Nanos};
use sim::engine::{RequestRecord, RunResult};
use sim::stats::{Interval, mean_ci95};
use std::io::Write;
use std::path::Path;

/// Number of time buckets of the shares-over-time series.
pub const SHARE_BUCKETS: usize = 20;

/// One side's figures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SideStats {
    /// Requests.
    pub requests: u64,
    /// Successful requests.
    pub ok: u64,
    /// Latencies of successful requests, seconds, sorted.
    pub latency_s: Vec<f64>,
    /// TTFT of successful streamed requests, seconds, sorted.
    pub ttft_s: Vec<f64>,
    /// Total cost, USD.
    pub cost_usd: f64,
    /// Requests per endpoint (by the endpoint of the last attempt).
    pub per_endpoint: Vec<u64>,
    /// 429 answers from providers (attempts).
    pub rate_limited: u64,
    /// Retries (attempts after the first).
    pub retries: u64,
    /// Retries on another endpoint.
    pub fallbacks: u64,
    /// Per time bucket (scenario time, equal widths up to the last arrival): requests per endpoint.
    pub share_series: Vec<Vec<u64>>,
}

/// A request as one side saw it, for [`SideStats::from_requests`].
#[derive(Clone, Debug, PartialEq)]
pub struct RequestView {
    /// Arrival (scenario nanoseconds).
    pub at: Nanos,
    /// Succeeded.
    pub ok: bool,
    /// Latency, seconds (successes).
    pub latency_s: f64,
    /// TTFT, seconds (successful streams).
    pub ttft_s: Option<f64>,
    /// Endpoint of the last attempt.
    pub endpoint: Option<usize>,
    /// Cost, USD.
    pub cost_usd: f64,
}

/// Counters that come from the router's or the gateway's bookkeeping rather than per request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AttemptCounts {
    /// 429 attempts.
    pub rate_limited: u64,
    /// Retries.
    pub retries: u64,
    /// Fallbacks.
    pub fallbacks: u64,
}

/// Quantile `q` of an ascending sample by nearest rank, as HDR histograms report it (NaN when empty).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    // Nearest rank, as HDR histograms report.
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

impl SideStats {
    /// Builds one side from its requests, `endpoints` endpoints and the attempt counters; the share series
    /// covers `[0, span)` of scenario time.
    pub fn from_requests(reqs: &[RequestView], endpoints: usize, counts: AttemptCounts, span: Nanos) -> SideStats {
        let mut s = SideStats {
            requests: reqs.len() as u64,
            per_endpoint: vec![0; endpoints],
            rate_limited: counts.rate_limited,
            retries: counts.retries,
            fallbacks: counts.fallbacks,
            share_series: vec![vec![0; endpoints]; SHARE_BUCKETS],
            ..SideStats::default()
        };
        let width = (span / SHARE_BUCKETS as u64).max(1);
        for r in reqs {
            s.cost_usd += r.cost_usd;
            if r.ok {
                s.ok += 1;
                s.latency_s.push(r.latency_s);
                if let Some(t) = r.ttft_s {
                    s.ttft_s.push(t);
                }
            }
            if let Some(e) = r.endpoint.filter(|&e| e < endpoints) {
                s.per_endpoint[e] += 1;
                let b = ((r.at / width) as usize).min(SHARE_BUCKETS - 1);
                s.share_series[b][e] += 1;
            }
        }
        s.latency_s.sort_by(f64::total_cmp);
        s.ttft_s.sort_by(f64::total_cmp);
        s
    }

    /// The simulator's side from its per-request records and run result; `streaming[class]` tells which
    /// classes stream.
    pub fn from_sim(records: &[RequestRecord], run: &RunResult, streaming: &[bool], span: Nanos) -> SideStats {
        let views: Vec<RequestView> = records
            .iter()
            .map(|r| {
                let ok = r.error.is_none() && !r.rejected;
                RequestView {
                    at: r.arrival_ns,
                    ok,
                    latency_s: r.latency_s,
                    ttft_s: (ok && streaming.get(r.class as usize).copied().unwrap_or(false) && !r.cache_hit)
                        .then_some(r.ttft_s),
                    endpoint: r.endpoint.map(|e| e as usize),
                    cost_usd: r.cost_usd,
                }
            })
            .collect();
        let c = &run.metrics.counts;
        let counts = AttemptCounts {
            rate_limited: c.attempt_errors[ErrorClass::RateLimited.index()],
            retries: c.retries,
            fallbacks: c.fallbacks,
        };
        SideStats::from_requests(&views, run.metrics.endpoint_attempts.len(), counts, span)
    }

    /// Pools `other` (another replication of the same side) into `self`: requests, latencies and counts
    /// add up; the share series adds bucket by bucket.
    pub fn merge(&mut self, other: &SideStats) {
        self.requests += other.requests;
        self.ok += other.ok;
        self.latency_s.extend_from_slice(&other.latency_s);
        self.latency_s.sort_by(f64::total_cmp);
        self.ttft_s.extend_from_slice(&other.ttft_s);
        self.ttft_s.sort_by(f64::total_cmp);
        self.cost_usd += other.cost_usd;
        if self.per_endpoint.len() < other.per_endpoint.len() {
            self.per_endpoint.resize(other.per_endpoint.len(), 0);
        }
        for (a, b) in self.per_endpoint.iter_mut().zip(&other.per_endpoint) {
            *a += b;
        }
        self.rate_limited += other.rate_limited;
        self.retries += other.retries;
        self.fallbacks += other.fallbacks;
        if self.share_series.is_empty() {
            self.share_series = other.share_series.clone();
        } else {
            for (a, b) in self.share_series.iter_mut().zip(&other.share_series) {
                for (x, y) in a.iter_mut().zip(b) {
                    *x += y;
                }
            }
        }
    }

    /// Success rate in percent.
    pub fn success_pct(&self) -> f64 {
        100.0 * self.ok as f64 / self.requests.max(1) as f64
    }

    /// Latency quantile, seconds.
    pub fn latency(&self, q: f64) -> f64 {
        quantile(&self.latency_s, q)
    }

    /// TTFT quantile, seconds.
    pub fn ttft(&self, q: f64) -> f64 {
        quantile(&self.ttft_s, q)
    }

    /// Cost per 1000 requests, USD.
    pub fn cost_per_1k(&self) -> f64 {
        1000.0 * self.cost_usd / self.requests.max(1) as f64
    }

    /// Endpoint `e`'s share of the requests, percent.
    pub fn share_pct(&self, e: usize) -> f64 {
        100.0 * self.per_endpoint[e] as f64 / self.requests.max(1) as f64
    }
}

/// Both sides pooled over replications (`runs[r]` = (sim, live) of replication `r`).
pub fn pooled(runs: &[(SideStats, SideStats)]) -> (SideStats, SideStats) {
    let mut sim = SideStats::default();
    let mut live = SideStats::default();
    for (s, l) in runs {
        sim.merge(s);
        live.merge(l);
    }
    (sim, live)
}

/// How far live may be from the simulator.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Tolerance {
    /// Relative to the simulated value (0.05 = 5%).
    Relative(f64),
    /// Absolute, in percentage points.
    Points(f64),
    /// A count: within 10% of the simulated count or three Poisson standard deviations, whichever is larger.
    Count,
}

impl Tolerance {
    fn check(self, sim: f64, live: f64) -> bool {
        if !(sim.is_finite() && live.is_finite()) {
            return sim.is_nan() && live.is_nan();
        }
        let d = (live - sim).abs();
        match self {
            Tolerance::Relative(r) => d <= r * sim.abs() + 1e-12,
            Tolerance::Points(p) => d <= p,
            Tolerance::Count => d <= (0.1 * sim).max(3.0 * sim.max(1.0).sqrt()),
        }
    }

    /// As the table shows it.
    pub fn text(self) -> String {
        match self {
            Tolerance::Relative(r) => format!("{:.0}%", r * 100.0),
            Tolerance::Points(p) => format!("{p} pt"),
            Tolerance::Count => "10% / 3 sd".into(),
        }
    }
}

/// One compared metric.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Metric name (`p50_s`, `share_pct[gpt-4o-mini]`, ...).
    pub metric: String,
    /// Simulated value.
    pub sim: f64,
    /// Live value.
    pub live: f64,
    /// The tolerance.
    pub tolerance: Tolerance,
    /// Whether live is within it.
    pub pass: bool,
    /// Over several replications: the mean of the per-replication errors (live minus sim, in the units of
    /// [`Row::error`]) with its 95% interval. A difference whose interval excludes zero is systematic; one
    /// whose interval covers zero is within what chance gives a run of this length.
    pub paired: Option<Interval>,
}

impl Row {
    fn new(metric: impl Into<String>, sim: f64, live: f64, tolerance: Tolerance) -> Row {
        Row { metric: metric.into(), sim, live, tolerance, pass: tolerance.check(sim, live), paired: None }
    }

    /// The error as the tolerance measures it: relative (fraction) or absolute (points, counts).
    pub fn error(&self) -> f64 {
        match self.tolerance {
            Tolerance::Relative(_) => (self.live - self.sim) / self.sim.abs().max(1e-12),
            _ => self.live - self.sim,
        }
    }

    /// A per-replication interval in the units of [`Row::error_text`].
    fn interval_text(&self, i: &Interval) -> String {
        let Some(h) = i.half_width.filter(|h| h.is_finite() && i.mean.is_finite()) else {
            return "-".into();
        };
        match self.tolerance {
            Tolerance::Relative(_) => format!("{:+.1}% ± {:.1}%", i.mean * 100.0, h * 100.0),
            Tolerance::Points(_) => format!("{:+.2} ± {:.2} pt", i.mean, h),
            Tolerance::Count => format!("{:+.1} ± {:.1}", i.mean, h),
        }
    }

    /// The error as the table shows it.
    pub fn error_text(&self) -> String {
        let e = self.error();
        if !e.is_finite() {
            return "-".into();
        }
        match self.tolerance {
            Tolerance::Relative(_) => format!("{:+.1}%", e * 100.0),
            Tolerance::Points(_) => format!("{e:+.2} pt"),
            Tolerance::Count => format!("{e:+.0}"),
        }
    }
}

/// The whole comparison.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// Every metric.
    pub rows: Vec<Row>,
}

impl Comparison {
    /// Compares the two sides (`endpoints` names the endpoints in index order).
    pub fn new(sim: &SideStats, live: &SideStats, endpoints: &[String]) -> Comparison {
        let mut rows = vec![
            Row::new("requests", sim.requests as f64, live.requests as f64, Tolerance::Relative(0.0)),
            Row::new("success_pct", sim.success_pct(), live.success_pct(), Tolerance::Points(0.5)),
            Row::new("p50_s", sim.latency(0.5), live.latency(0.5), Tolerance::Relative(0.05)),
            Row::new("p95_s", sim.latency(0.95), live.latency(0.95), Tolerance::Relative(0.05)),
            Row::new("p99_s", sim.latency(0.99), live.latency(0.99), Tolerance::Relative(0.10)),
            Row::new("ttft_p50_s", sim.ttft(0.5), live.ttft(0.5), Tolerance::Relative(0.05)),
            Row::new("cost_per_1k_usd", sim.cost_per_1k(), live.cost_per_1k(), Tolerance::Relative(0.02)),
        ];
        for (e, id) in endpoints.iter().enumerate() {
            rows.push(Row::new(
                format!("share_pct[{id}]"),
                sim.share_pct(e),
                live.share_pct(e),
                Tolerance::Points(3.0),
            ));
        }
        rows.push(Row::new("provider_429s", sim.rate_limited as f64, live.rate_limited as f64, Tolerance::Count));
        rows.push(Row::new("retries", sim.retries as f64, live.retries as f64, Tolerance::Count));
        rows.push(Row::new("fallbacks", sim.fallbacks as f64, live.fallbacks as f64, Tolerance::Count));
        Comparison { rows }
    }

    /// Compares the pooled sides of several replications (`runs[r]` = (sim, live) of replication `r`): the
    /// values and the pass or fail are those of the pooled requests; each row also carries the mean
    /// per-replication error with its 95% interval (with two or more replications).
    pub fn paired(runs: &[(SideStats, SideStats)], endpoints: &[String]) -> Comparison {
        let (sim, live) = pooled(runs);
        let mut pooled = Comparison::new(&sim, &live, endpoints);
        if runs.len() >= 2 {
            let each: Vec<Comparison> = runs.iter().map(|(s, l)| Comparison::new(s, l, endpoints)).collect();
            for (i, row) in pooled.rows.iter_mut().enumerate() {
                let errors: Vec<f64> = each.iter().map(|c| c.rows[i].error()).collect();
                row.paired = Some(mean_ci95(&errors));
            }
        }
        pooled
    }

    /// The row of `metric`.
    pub fn row(&self, metric: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.metric == metric)
    }

    /// Whether every metric passed.
    pub fn all_pass(&self) -> bool {
        self.rows.iter().all(|r| r.pass)
    }

    /// The side-by-side table (with a column of paired intervals over replications when there are some).
    pub fn render(&self) -> String {
        let w = self.rows.iter().map(|r| r.metric.len()).max().unwrap_or(6).max(6);
        let paired = self.rows.iter().any(|r| r.paired.is_some());
        let mut out = format!("{:<w$}  {:>12}  {:>12}  {:>10}", "metric", "sim", "live", "error");
        if paired {
            out.push_str(&format!("  {:>22}", "per replication (95%)"));
        }
        out.push_str(&format!("  {:>10}  result\n", "tolerance"));
        for r in &self.rows {
            out.push_str(&format!(
                "{:<w$}  {:>12}  {:>12}  {:>10}",
                r.metric,
                fmt_value(r.sim),
                fmt_value(r.live),
                r.error_text()
            ));
            if paired {
                out.push_str(&format!("  {:>22}", r.paired.as_ref().map_or("-".into(), |i| r.interval_text(i))));
            }
            out.push_str(&format!("  {:>10}  {}\n", r.tolerance.text(), if r.pass { "pass" } else { "FAIL" }));
        }
        out
    }

    /// Writes the comparison as CSV: `metric,sim,live,error,tolerance,pass,paired_error,paired_ci95,
    /// replications` (the last three empty for a single replication).
    pub fn write_csv(&self, path: &Path) -> anyhow::Result<()> {
        let mut w = csv::Writer::from_path(path)?;
        w.write_record([
            "metric",
            "sim",
            "live",
            "error",
            "tolerance",
            "pass",
            "paired_error",
            "paired_ci95",
            "replications",
        ])?;
        for r in &self.rows {
            let p = r.paired.as_ref();
            w.write_record([
                r.metric.clone(),
                r.sim.to_string(),
                r.live.to_string(),
                r.error().to_string(),
                r.tolerance.text(),
                r.pass.to_string(),
                p.map_or(String::new(), |i| i.mean.to_string()),
                p.and_then(|i| i.half_width).map_or(String::new(), |h| h.to_string()),
                p.map_or(String::new(), |i| i.n.to_string()),
            ])?;
        }
        w.flush()?;
        Ok(())
    }
}

fn fmt_value(x: f64) -> String {
    if !x.is_finite() {
        "-".into()
    } else if x == x.trunc() && x.abs() < 1e9 {
        format!("{x:.0}")
    } else if x.abs() >= 100.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.4}")
    }
}

/// Writes the latency CDFs of both sides as CSV: `side,latency_s,fraction` (at most 500 points a side).
pub fn write_cdf_csv(sim: &SideStats, live: &SideStats, path: &Path) -> anyhow::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(f, "side,latency_s,fraction")?;
    for (name, s) in [("sim", sim), ("live", live)] {
        for (x, y) in cdf_points(&s.latency_s, 500) {
            writeln!(f, "{name},{x},{y}")?;
        }
    }
    Ok(())
}

/// Up to `n` points `(value, fraction at or below)` of a sorted sample.
pub fn cdf_points(sorted: &[f64], n: usize) -> Vec<(f64, f64)> {
    if sorted.is_empty() {
        return Vec::new();
    }
    let len = sorted.len();
    let step = (len / n.max(1)).max(1);
    let mut pts: Vec<(f64, f64)> = (0..len).step_by(step).map(|i| (sorted[i], (i + 1) as f64 / len as f64)).collect();
    pts.push((sorted[len - 1], 1.0));
    pts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerances_are_relative_in_points_or_counts() {
        assert!(Tolerance::Relative(0.05).check(2.0, 2.09));
        assert!(!Tolerance::Relative(0.05).check(2.0, 2.11));
        assert!(Tolerance::Points(0.5).check(99.0, 98.6));
        assert!(!Tolerance::Points(0.5).check(99.0, 98.4));
        // 100 +- max(10, 30); 10000 +- max(1000, 300).
        assert!(Tolerance::Count.check(100.0, 129.0) && !Tolerance::Count.check(100.0, 131.0));
        assert!(Tolerance::Count.check(10_000.0, 10_999.0) && !Tolerance::Count.check(10_000.0, 11_001.0));
        assert!(Tolerance::Relative(0.05).check(f64::NAN, f64::NAN) && !Tolerance::Relative(0.05).check(1.0, f64::NAN));
    }

    #[test]
    fn both_sides_measure_the_same_way() {
        let view = |at: u64, ok: bool, lat: f64, ep: Option<usize>| RequestView {
            at,
            ok,
            latency_s: lat,
            ttft_s: ok.then_some(lat / 2.0),
            endpoint: ep,
            cost_usd: 0.5,
        };
        let reqs: Vec<RequestView> =
            (0..100).map(|i| view(i * 10, i % 10 != 0, (100 - i) as f64, Some((i % 4 == 0) as usize))).collect();
        let s = SideStats::from_requests(&reqs, 2, AttemptCounts::default(), 1000);
        assert_eq!(s.success_pct(), 90.0);
        assert_eq!(s.cost_per_1k(), 500.0);
        assert_eq!(s.share_pct(1), 25.0);
        // Nearest rank over the 90 successes (latencies 1..=100 except multiples of 10 from 100 down).
        assert_eq!(s.latency(0.5), s.latency_s[44]);
        assert_eq!(s.latency(1.0), 99.0);
        assert_eq!(s.share_series.iter().map(|b| b.iter().sum::<u64>()).sum::<u64>(), 100);
        let c = Comparison::new(&s, &s, &["a".into(), "b".into()]);
        assert!(c.all_pass(), "{}", c.render());
    }

    #[test]
    fn replications_pool_their_requests_and_pair_their_errors() {
        let side = |cost: f64, ep: usize| {
            let reqs: Vec<RequestView> = (0..10)
                .map(|i| RequestView {
                    at: i,
                    ok: true,
                    latency_s: 1.0 + i as f64,
                    ttft_s: None,
                    endpoint: Some(ep),
                    cost_usd: cost,
                })
                .collect();
            SideStats::from_requests(&reqs, 2, AttemptCounts { rate_limited: 1, retries: 2, fallbacks: 0 }, 10)
        };
        // Live costs 10% more in replication 0 and 30% more in replication 1.
        let runs = vec![(side(1.0, 0), side(1.1, 0)), (side(1.0, 1), side(1.3, 1))];
        let c = Comparison::paired(&runs, &["a".into(), "b".into()]);
        let cost = c.row("cost_per_1k_usd").unwrap();
        assert_eq!((cost.sim, cost.live), (1000.0, 1200.0), "pooled: 20 requests a side");
        let p = cost.paired.expect("two replications give an interval");
        assert_eq!(p.n, 2);
        assert!((p.mean - 0.2).abs() < 1e-12, "mean of +10% and +30%: {}", p.mean);
        // t(0.975, 1) = 12.706; s = 0.1414; half-width = 12.706 * 0.1414 / sqrt(2) = 1.2706.
        assert!((p.half_width.unwrap() - 1.2706).abs() < 1e-3, "{:?}", p.half_width);
        assert_eq!(c.row("share_pct[a]").unwrap().live, 50.0);
        assert_eq!(c.row("provider_429s").unwrap().live, 2.0, "counts add up");
        assert!(c.render().contains("+20.0% ± 127.1%"), "{}", c.render());
        assert!(Comparison::paired(&runs[..1], &["a".into(), "b".into()]).rows.iter().all(|r| r.paired.is_none()));
    }
}
