//! Per-interval time series: throughput, p95 latency, error rate, cost, queue length and per-endpoint share.
//!
//! It shows what aggregates hide: herding onto one endpoint, traffic shifting as a quota fills, failover during
//! an outage. One row per interval of simulated time. Memory is bounded: when a run has produced
//! [`MAX_ROWS`] intervals, adjacent pairs are merged and the interval width doubles, so a very long run
//! keeps between `MAX_ROWS / 2` and `MAX_ROWS` rows of coarser intervals (the p95 of a merged interval is
//! the completion-weighted mean of the two, an approximation; every count and cost stays exact).

use super::LatencyHistogram;
use router_core::Nanos;

/// Most rows a series keeps before it halves its resolution.
pub const MAX_ROWS: usize = 2048;

/// Most latencies of one interval kept as a list (8 bytes each) before they are counted in a histogram.
const BUFFERED: usize = 1 << 16;

/// One interval of the time series.
#[derive(Clone, Debug, PartialEq)]
pub struct Interval {
    /// Start of the interval (simulated ns since the start of the run).
    pub start: Nanos,
    /// Its length in ns (the last interval of a run is usually shorter).
    pub width: Nanos,
    /// Requests that completed successfully in the interval.
    pub completed: u64,
    /// Requests that failed in the interval.
    pub failed: u64,
    /// 95th percentile latency of the requests that completed in it, in seconds (NaN if none).
    pub p95_s: f64,
    /// Cost of the attempts that ended in it, in USD.
    pub cost_usd: f64,
    /// Attempts sent to each endpoint in it.
    pub attempts: Vec<u64>,
    /// Attempts waiting in provider queues at the end of the interval.
    pub queue_len: u64,
    /// The interval reaches past the run's last arrival: only requests already in flight finish in it, so
    /// its latency shows the drain of the queues, not steady service. Set by [`TimeSeries::finish`].
    pub drain: bool,
}

impl Interval {
    /// An interval starting at `start` with nothing in it yet.
    fn empty(start: Nanos, endpoints: usize) -> Self {
        Interval {
            start,
            width: 0,
            completed: 0,
            failed: 0,
            p95_s: f64::NAN,
            cost_usd: 0.0,
            attempts: vec![0; endpoints],
            queue_len: 0,
            drain: false,
        }
    }
}

/// The time series of one run.
#[derive(Clone, Debug)]
pub struct TimeSeries {
    width: Nanos,
    current: Interval,
    /// End of the open interval (`current.start + width`, saturated), kept with them: the engine compares
    /// every event's time with it.
    boundary: Nanos,
    /// The per-interval latency histogram's configuration; it holds counts only once `latencies` is full.
    hist: LatencyHistogram,
    /// Latencies (as `hist` counts them) of the requests completed in the open interval, up to
    /// [`BUFFERED`]: its p95 is then found by selection, which is cheaper than counting every completion
    /// into a histogram that must be scanned and cleared at every interval.
    latencies: Vec<u64>,
    /// `latencies` overflowed in the open interval: `hist` holds its counts.
    spilled: bool,
    /// Time of the latest arrival.
    last_arrival: Nanos,
    /// Closed intervals, in time order.
    pub rows: Vec<Interval>,
}

impl TimeSeries {
    /// An empty series of `width`-long intervals over `endpoints` endpoints.
    pub fn new(width: Nanos, endpoints: usize) -> Self {
        TimeSeries {
            width: width.max(1),
            current: Interval::empty(0, endpoints),
            boundary: width.max(1),
            hist: LatencyHistogram::coarse(),
            latencies: Vec::new(),
            spilled: false,
            last_arrival: 0,
            rows: Vec::new(),
        }
    }

    /// Interval width in ns.
    pub fn width(&self) -> Nanos {
        self.width
    }

    /// End of the open interval: the engine calls [`TimeSeries::close`] before handling any event at or after it.
    #[inline]
    pub fn boundary(&self) -> Nanos {
        debug_assert_eq!(self.boundary, self.current.start.saturating_add(self.width));
        self.boundary
    }

    /// Closes the open interval with the queue length observed at its end and opens the next one.
    pub fn close(&mut self, queue_len: u64) {
        self.close_with_width(queue_len, self.width);
    }

    /// Closes the open interval, which lasted `width` (the full width, or less for the last one of a run).
    fn close_with_width(&mut self, queue_len: u64, width: Nanos) {
        let next_start = self.boundary();
        let endpoints = self.current.attempts.len();
        let mut row = std::mem::replace(&mut self.current, Interval::empty(next_start, endpoints));
        self.boundary = next_start.saturating_add(self.width);
        row.p95_s = self.take_p95();
        row.queue_len = queue_len;
        row.width = width;
        self.rows.push(row);
        if self.rows.len() >= MAX_ROWS && self.rows.len().is_multiple_of(2) {
            self.coarsen();
        }
    }

    /// Merges adjacent pairs of rows and doubles the interval width.
    fn coarsen(&mut self) {
        let rows = std::mem::take(&mut self.rows);
        let mut it = rows.into_iter();
        while let (Some(mut a), Some(b)) = (it.next(), it.next()) {
            let p95 = match (a.p95_s.is_finite(), b.p95_s.is_finite()) {
                (true, true) => {
                    let (wa, wb) = (a.completed as f64, b.completed as f64);
                    if wa + wb > 0.0 { (a.p95_s * wa + b.p95_s * wb) / (wa + wb) } else { a.p95_s.max(b.p95_s) }
                }
                (true, false) => a.p95_s,
                _ => b.p95_s,
            };
            a.completed += b.completed;
            a.width += b.width;
            a.failed += b.failed;
            a.cost_usd += b.cost_usd;
            a.p95_s = p95;
            a.queue_len = b.queue_len;
            for (x, y) in a.attempts.iter_mut().zip(&b.attempts) {
                *x += y;
            }
            self.rows.push(a);
        }
        // The open interval started at the old boundary, which is a boundary of the coarser grid too: it now
        // covers twice the time.
        self.width *= 2;
        self.boundary = self.current.start.saturating_add(self.width);
    }

    /// A request completed successfully with `latency`.
    #[inline(always)]
    pub fn completed(&mut self, latency: Nanos) {
        self.current.completed += 1;
        let us = self.hist.to_us(latency);
        if !self.spilled && self.latencies.len() < BUFFERED {
            self.latencies.push(us);
        } else {
            self.completed_busy(us);
        }
    }

    /// [`TimeSeries::completed`] in an interval with [`BUFFERED`] completions or more: they are counted in the
    /// histogram (memory stays bounded). Out of line: most intervals never get there.
    #[cold]
    #[inline(never)]
    fn completed_busy(&mut self, us: u64) {
        if !self.spilled {
            for &v in &self.latencies {
                self.hist.record_us(v);
            }
            self.latencies.clear();
            self.spilled = true;
        }
        self.hist.record_us(us);
    }

    /// The p95 latency of the open interval in seconds (NaN if nothing completed), forgetting its latencies.
    fn take_p95(&mut self) -> f64 {
        if !self.spilled {
            let p95 = self.hist.quantile_of_s(&mut self.latencies, 0.95);
            self.latencies.clear();
            return p95;
        }
        let p95 = self.hist.quantile_s(0.95);
        self.hist.reset();
        self.spilled = false;
        p95
    }

    /// A request failed.
    /// Notes a request's arrival at `t` (arrivals come in time order).
    #[inline]
    pub fn arrival(&mut self, t: Nanos) {
        self.last_arrival = t;
    }

    #[inline]
    pub fn failed(&mut self) {
        self.current.failed += 1;
    }

    /// An attempt was sent to `endpoint`.
    #[inline]
    pub fn attempt(&mut self, endpoint: usize) {
        self.current.attempts[endpoint] += 1;
    }

    /// An attempt cost `usd`.
    #[inline]
    pub fn cost(&mut self, usd: f64) {
        self.current.cost_usd += usd;
    }

    /// Closes the last, partial interval at the end of the run (`end`), if it saw anything; its width is the
    /// part that elapsed, so rates computed from it are not understated.
    pub fn finish(&mut self, queue_len: u64, end: Nanos) {
        let c = &self.current;
        if c.completed + c.failed > 0 || c.attempts.iter().any(|&a| a > 0) {
            let elapsed = end.saturating_sub(c.start).clamp(1, self.width);
            self.close_with_width(queue_len, elapsed);
        }
        let last = self.last_arrival;
        for row in self.rows.iter_mut().rev() {
            if row.start.saturating_add(row.width) <= last {
                break;
            }
            row.drain = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_past_the_last_arrival_are_marked_as_the_drain() {
        let mut ts = TimeSeries::new(10, 1);
        let step = |ts: &mut TimeSeries, t: Nanos| {
            while t >= ts.boundary() {
                ts.close(0);
            }
        };
        for t in [1, 12, 25] {
            step(&mut ts, t);
            ts.arrival(t);
            ts.attempt(0);
        }
        for t in [14, 28, 35] {
            step(&mut ts, t);
            ts.completed(1_000);
        }
        ts.finish(0, 35);
        let drain: Vec<(Nanos, bool)> = ts.rows.iter().map(|r| (r.start, r.drain)).collect();
        // [20, 30) holds the last arrival and time after it; [30, 35) is all drain.
        assert_eq!(drain, [(0, false), (10, false), (20, true), (30, true)]);
    }

    #[test]
    fn long_runs_coarsen_instead_of_growing() {
        let mut ts = TimeSeries::new(10, 1);
        let mut total = 0u64;
        for i in 0..(3 * MAX_ROWS as u64) {
            while i * 10 >= ts.boundary() {
                ts.close(0);
            }
            ts.attempt(0);
            ts.completed(1_000_000);
            total += 1;
        }
        ts.finish(0, u64::MAX);
        assert!(ts.rows.len() <= MAX_ROWS && ts.rows.len() >= MAX_ROWS / 4, "{}", ts.rows.len());
        assert_eq!(ts.width(), 40);
        assert_eq!(ts.rows.iter().map(|r| r.completed).sum::<u64>(), total);
        assert_eq!(ts.rows.iter().map(|r| r.attempts[0]).sum::<u64>(), total);
        assert!(ts.rows.windows(2).all(|w| w[1].start > w[0].start));
    }

    #[test]
    fn a_busy_interval_counts_its_latencies_in_the_histogram_with_the_same_p95() {
        let latency = |i: u64| (i * 7_919 % 10_007 + 1) * 1_000_000;
        let mut ts = TimeSeries::new(10, 1);
        let mut hist = LatencyHistogram::coarse();
        for i in 0..(BUFFERED as u64 + 1000) {
            ts.completed(latency(i));
            hist.record(latency(i));
        }
        // The next interval is a quiet one again: the list, not the histogram, holds it.
        ts.close(0);
        ts.completed(2_000_000);
        ts.finish(0, 15);
        assert_eq!(ts.rows[0].p95_s.to_bits(), hist.quantile_s(0.95).to_bits());
        assert!((ts.rows[1].p95_s - 0.002).abs() <= 0.002 * 0.01, "{}", ts.rows[1].p95_s);
    }

    #[test]
    fn intervals_close_in_order_with_their_own_p95() {
        let mut ts = TimeSeries::new(10, 2);
        for l in 1..=100u64 {
            ts.completed(l * 1_000_000);
        }
        ts.attempt(1);
        ts.close(3);
        ts.completed(5_000_000_000);
        ts.finish(0, u64::MAX);
        assert_eq!(ts.rows.len(), 2);
        assert_eq!(ts.rows[0].start, 0);
        assert_eq!(ts.rows[1].start, 10);
        // The per-interval histogram keeps 2 significant digits (1%).
        assert!((ts.rows[0].p95_s - 0.095).abs() <= 0.095 * 0.01, "{}", ts.rows[0].p95_s);
        assert_eq!(ts.rows[0].queue_len, 3);
        assert_eq!(ts.rows[0].attempts, vec![0, 1]);
        assert!((ts.rows[1].p95_s - 5.0).abs() <= 5.0 * 0.01, "{}", ts.rows[1].p95_s);
    }
}
