//! Closed-form queueing results the simulator is validated against.
//!
//! Each formula states its model and assumptions. Notation: arrival rate `lambda`, service rate per
//! server `mu` (mean service time `1/mu`), `c` servers, offered load `a = lambda / mu` (in Erlangs),
//! utilisation `rho = a / c`. Times are in whatever unit the rates use (rates per second give
//! times in seconds).
//!
//! - Erlang B ([`erlang_b`]): blocking probability of M/M/c/c (no queue; insensitive to the service
//!   distribution, so it holds for M/G/c/c too).
//! - Erlang C ([`erlang_c`], [`Mmc`]): M/M/c with an infinite FIFO queue: P(wait), mean wait, mean
//!   queue length, waiting-time and sojourn-time tails; M/M/1 is `c = 1` ([`Mmc::mm1`]).
//! - Pollaczek-Khinchine ([`Mg1`]): M/G/1 FIFO mean wait from the service time's first two moments
//!   ([`ServiceMoments`] for deterministic, exponential, gamma and lognormal service).
//! - Little's law ([`littles_law`]): `L = lambda W`, for any stable system.
//!
//! Not here: simulation or comparison logic (the rest of `validate`), heavy-traffic approximations
//! for G/G/c, or anything with priorities, abandonment or retries. Every function returns an error
//! rather than panicking on invalid parameters or an unstable system (`rho >= 1`).

use std::fmt;

/// Why a closed form cannot be evaluated.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TheoryError {
    /// A parameter is NaN, infinite, negative, or otherwise out of its domain.
    #[error("invalid {name} = {value}: expected {expected}")]
    InvalidParameter {
        /// Parameter name as in the formula (e.g. "lambda").
        name: &'static str,
        /// The value given.
        value: f64,
        /// What would have been valid.
        expected: &'static str,
    },
    /// The queue has no steady state: utilisation `rho = lambda / (c mu) >= 1`.
    #[error(
        "unstable queue: utilisation rho = {rho:.4} >= 1 (the queue grows without bound); \
         lower the arrival rate or add capacity"
    )]
    Unstable {
        /// The offending utilisation.
        rho: f64,
    },
}

fn positive(name: &'static str, value: f64) -> Result<f64, TheoryError> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(TheoryError::InvalidParameter { name, value, expected: "a finite number > 0" })
    }
}

fn non_negative(name: &'static str, value: f64) -> Result<f64, TheoryError> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(TheoryError::InvalidParameter { name, value, expected: "a finite number >= 0" })
    }
}

fn probability_level(name: &'static str, value: f64) -> Result<f64, TheoryError> {
    if (0.0..1.0).contains(&value) {
        Ok(value)
    } else {
        Err(TheoryError::InvalidParameter { name, value, expected: "a probability in [0, 1)" })
    }
}

// ===== Erlang B and C =====

/// Erlang B: the probability that an arrival finds all `c` servers busy and is lost, in an
/// M/M/c/c system with offered load `a = lambda / mu` Erlangs.
///
/// `B(c, a) = (a^c / c!) / sum_{k=0..c} a^k / k!`, evaluated with the stable recurrence
/// `B(0) = 1`, `B(k) = a B(k-1) / (k + a B(k-1))` (no factorials, no overflow; O(c)). Holds for
/// any service distribution with mean `1/mu` (insensitivity). `c = 0` gives 1 (every arrival lost).
///
/// # Errors
/// [`TheoryError::InvalidParameter`] if `a` is negative or not finite.
pub fn erlang_b(c: u32, a: f64) -> Result<f64, TheoryError> {
    let a = non_negative("offered load a", a)?;
    let mut b = 1.0;
    for k in 1..=c {
        b = a * b / (f64::from(k) + a * b);
    }
    Ok(b)
}

/// Erlang C: the probability that an arrival has to wait (finds all `c` servers busy) in an M/M/c
/// queue with an infinite FIFO buffer and offered load `a = lambda / mu < c`.
///
/// Computed from Erlang B: `C(c, a) = c B / (c - a (1 - B))`.
///
/// # Errors
/// [`TheoryError::InvalidParameter`] if `c == 0` or `a` is negative / not finite;
/// [`TheoryError::Unstable`] if `a >= c`.
pub fn erlang_c(c: u32, a: f64) -> Result<f64, TheoryError> {
    if c == 0 {
        return Err(TheoryError::InvalidParameter { name: "servers c", value: 0.0, expected: "at least 1 server" });
    }
    let a = non_negative("offered load a", a)?;
    let cf = f64::from(c);
    if a >= cf {
        return Err(TheoryError::Unstable { rho: a / cf });
    }
    let b = erlang_b(c, a)?;
    Ok(cf * b / (cf - a * (1.0 - b)))
}

// ===== M/M/c =====

/// A stable M/M/c queue: Poisson arrivals at rate `lambda`, `c` identical servers each with
/// exponential service at rate `mu`, one infinite FIFO queue, `rho = lambda / (c mu) < 1`.
///
/// All results are steady-state (long-run) values. `Wq` is the time from arrival to start of
/// service, `W = Wq + 1/mu` the time in system (sojourn); `Lq`, `L` the matching mean numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mmc {
    lambda: f64,
    mu: f64,
    c: u32,
    p_wait: f64,
}

// ===== impl Mmc =====

impl Mmc {
    /// An M/M/c queue with arrival rate `lambda`, per-server service rate `mu` and `c` servers.
    ///
    /// # Errors
    /// [`TheoryError::InvalidParameter`] unless `lambda >= 0`, `mu > 0` (both finite) and
    /// `c >= 1`; [`TheoryError::Unstable`] if `lambda >= c mu`.
    pub fn new(lambda: f64, mu: f64, c: u32) -> Result<Self, TheoryError> {
        let lambda = non_negative("arrival rate lambda", lambda)?;
        let mu = positive("service rate mu", mu)?;
        let p_wait = erlang_c(c, lambda / mu)?;
        Ok(Mmc { lambda, mu, c, p_wait })
    }

    /// The M/M/1 queue (`c = 1`): `P(wait) = rho`, `Wq = rho / (mu - lambda)`,
    /// `W = 1 / (mu - lambda)`, and the sojourn time is exponential with rate `mu - lambda`.
    ///
    /// # Errors
    /// As [`Mmc::new`].
    pub fn mm1(lambda: f64, mu: f64) -> Result<Self, TheoryError> {
        Self::new(lambda, mu, 1)
    }

    /// Number of servers `c`.
    pub fn servers(&self) -> u32 {
        self.c
    }

    /// Offered load `a = lambda / mu` in Erlangs (mean number of busy servers).
    pub fn offered_load(&self) -> f64 {
        self.lambda / self.mu
    }

    /// Utilisation of each server, `rho = lambda / (c mu)`.
    pub fn utilization(&self) -> f64 {
        self.offered_load() / f64::from(self.c)
    }

    /// Probability an arrival waits, `C(c, a)` (Erlang C).
    pub fn p_wait(&self) -> f64 {
        self.p_wait
    }

    /// Decay rate of the waiting-time tail, `c mu - lambda`.
    fn drain_rate(&self) -> f64 {
        f64::from(self.c) * self.mu - self.lambda
    }

    /// Mean wait in queue, `Wq = C / (c mu - lambda)`.
    pub fn mean_wait(&self) -> f64 {
        self.p_wait / self.drain_rate()
    }

    /// Mean time in system, `W = Wq + 1/mu`.
    pub fn mean_sojourn(&self) -> f64 {
        self.mean_wait() + 1.0 / self.mu
    }

    /// Mean number waiting, `Lq = lambda Wq = C rho / (1 - rho)`.
    pub fn mean_queue_length(&self) -> f64 {
        self.lambda * self.mean_wait()
    }

    /// Mean number in system, `L = lambda W = Lq + a`.
    pub fn mean_in_system(&self) -> f64 {
        self.lambda * self.mean_sojourn()
    }

    /// Waiting-time (in queue) tail, `P(Wq > t) = C exp(-(c mu - lambda) t)` for `t >= 0`.
    ///
    /// This is the wait before service starts, not the sojourn; see [`Mmc::sojourn_exceeds`].
    ///
    /// # Errors
    /// [`TheoryError::InvalidParameter`] if `t` is negative or not finite.
    pub fn wait_exceeds(&self, t: f64) -> Result<f64, TheoryError> {
        let t = non_negative("time t", t)?;
        Ok(self.p_wait * (-self.drain_rate() * t).exp())
    }

    /// The `p` quantile of the wait in queue: `0` if `p <= 1 - C`, else
    /// `ln(C / (1 - p)) / (c mu - lambda)` (e.g. `p = 0.95` for the p95 wait).
    ///
    /// # Errors
    /// [`TheoryError::InvalidParameter`] unless `0 <= p < 1`.
    pub fn wait_quantile(&self, p: f64) -> Result<f64, TheoryError> {
        let p = probability_level("quantile p", p)?;
        if p <= 1.0 - self.p_wait {
            return Ok(0.0);
        }
        Ok((self.p_wait / (1.0 - p)).ln() / self.drain_rate())
    }

    /// Sojourn-time tail `P(W > t)`, `W = Wq + S` with `S ~ Exp(mu)` independent of `Wq`.
    ///
    /// With `theta = c mu - lambda`:
    /// `P(W > t) = (1 - C) e^{-mu t} + C (theta e^{-mu t} - mu e^{-theta t}) / (theta - mu)`,
    /// and for `theta == mu` the last factor is `e^{-mu t} (1 + mu t)`. For M/M/1 this reduces to
    /// `e^{-(mu - lambda) t}`.
    ///
    /// # Errors
    /// [`TheoryError::InvalidParameter`] if `t` is negative or not finite.
    pub fn sojourn_exceeds(&self, t: f64) -> Result<f64, TheoryError> {
        let t = non_negative("time t", t)?;
        let (mu, theta, c) = (self.mu, self.drain_rate(), self.p_wait);
        let service_tail = (-mu * t).exp();
        // Relative closeness: the hypoexponential formula cancels catastrophically as theta -> mu.
        let waited_tail = if (theta - mu).abs() <= 1e-9 * mu {
            service_tail * (1.0 + mu * t)
        } else {
            (theta * service_tail - mu * (-theta * t).exp()) / (theta - mu)
        };
        Ok(((1.0 - c) * service_tail + c * waited_tail).clamp(0.0, 1.0))
    }
}

// ===== M/G/1 =====

/// The first two raw moments of a service-time distribution, `E[S]` and `E[S^2]`.
///
/// Constructors cover the distributions the provider models use. The squared coefficient of
/// variation `cs^2 = Var[S] / E[S]^2` is 0 for deterministic, 1 for exponential, `1/k` for
/// gamma with shape `k`, and `exp(sigma^2) - 1` for lognormal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ServiceMoments {
    mean: f64,
    second_moment: f64,
}

// ===== impl ServiceMoments =====

impl ServiceMoments {
    /// From raw moments. Requires `mean > 0` and `second_moment >= mean^2` (variance >= 0), up to
    /// a relative rounding tolerance of 1e-12.
    ///
    /// # Errors
    /// [`TheoryError::InvalidParameter`] otherwise.
    pub fn new(mean: f64, second_moment: f64) -> Result<Self, TheoryError> {
        let mean = positive("service mean E[S]", mean)?;
        let second_moment = positive("service second moment E[S^2]", second_moment)?;
        if second_moment < mean * mean * (1.0 - 1e-12) {
            return Err(TheoryError::InvalidParameter {
                name: "service second moment E[S^2]",
                value: second_moment,
                expected: "a value >= E[S]^2 (variance cannot be negative)",
            });
        }
        Ok(ServiceMoments { mean, second_moment: second_moment.max(mean * mean) })
    }

    /// Deterministic service `d`: `E[S] = d`, `E[S^2] = d^2`.
    ///
    /// # Errors
    /// [`TheoryError::InvalidParameter`] unless `d > 0` and finite.
    pub fn deterministic(d: f64) -> Result<Self, TheoryError> {
        let d = positive("service time d", d)?;
        Self::new(d, d * d)
    }

    /// Exponential service with mean `m` (rate `1/m`): `E[S^2] = 2 m^2`.
    ///
    /// # Errors
    /// [`TheoryError::InvalidParameter`] unless `m > 0` and finite.
    pub fn exponential(m: f64) -> Result<Self, TheoryError> {
        let m = positive("service mean", m)?;
        Self::new(m, 2.0 * m * m)
    }

    /// Gamma service with shape `k` and scale `theta`: `E[S] = k theta`,
    /// `E[S^2] = k (k + 1) theta^2`.
    ///
    /// # Errors
    /// [`TheoryError::InvalidParameter`] unless both are > 0 and finite.
    pub fn gamma(shape: f64, scale: f64) -> Result<Self, TheoryError> {
        let k = positive("gamma shape k", shape)?;
        let theta = positive("gamma scale theta", scale)?;
        Self::new(k * theta, k * (k + 1.0) * theta * theta)
    }

    /// Lognormal service `S = exp(mu + sigma Z)` given its median `exp(mu)` and `sigma`:
    /// `E[S^k] = exp(k mu + k^2 sigma^2 / 2)` (see [`lognormal_moment`]).
    ///
    /// # Errors
    /// [`TheoryError::InvalidParameter`] unless `median > 0`, `sigma >= 0`, both finite, and the
    /// moments are finite.
    pub fn lognormal(median: f64, sigma: f64) -> Result<Self, TheoryError> {
        Self::new(lognormal_moment(median, sigma, 1)?, lognormal_moment(median, sigma, 2)?)
    }

    /// `E[S]`.
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// `E[S^2]`.
    pub fn second_moment(&self) -> f64 {
        self.second_moment
    }

    /// `Var[S] = E[S^2] - E[S]^2` (never negative).
    pub fn variance(&self) -> f64 {
        (self.second_moment - self.mean * self.mean).max(0.0)
    }

    /// Squared coefficient of variation `Var[S] / E[S]^2`.
    pub fn scv(&self) -> f64 {
        self.variance() / (self.mean * self.mean)
    }
}

/// The `k`-th raw moment of a lognormal distribution given its median `exp(mu)` and log-scale
/// `sigma`: `E[S^k] = exp(k mu + k^2 sigma^2 / 2)`.
///
/// # Errors
/// [`TheoryError::InvalidParameter`] unless `median > 0`, `sigma >= 0` (both finite) and the
/// result is finite.
pub fn lognormal_moment(median: f64, sigma: f64, k: u32) -> Result<f64, TheoryError> {
    let median = positive("lognormal median", median)?;
    let sigma = non_negative("lognormal sigma", sigma)?;
    let kf = f64::from(k);
    let m = (kf * median.ln() + kf * kf * sigma * sigma / 2.0).exp();
    if m.is_finite() {
        Ok(m)
    } else {
        Err(TheoryError::InvalidParameter {
            name: "lognormal sigma",
            value: sigma,
            expected: "a value small enough for the moment to be finite",
        })
    }
}

/// A stable M/G/1 FIFO queue: Poisson arrivals at rate `lambda`, one server, i.i.d. service times
/// with moments `E[S]`, `E[S^2]`, and `rho = lambda E[S] < 1`.
///
/// The Pollaczek-Khinchine mean-value formula gives `Wq = lambda E[S^2] / (2 (1 - rho))`
/// (equivalently `rho / (1 - rho) * (1 + cs^2) / 2 * E[S]`). Only means are closed-form here;
/// the wait's distribution depends on the whole service distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mg1 {
    lambda: f64,
    service: ServiceMoments,
}

// ===== impl Mg1 =====

impl Mg1 {
    /// An M/G/1 queue with arrival rate `lambda` and the given service moments.
    ///
    /// # Errors
    /// [`TheoryError::InvalidParameter`] if `lambda` is negative or not finite;
    /// [`TheoryError::Unstable`] if `lambda E[S] >= 1`.
    pub fn new(lambda: f64, service: ServiceMoments) -> Result<Self, TheoryError> {
        let lambda = non_negative("arrival rate lambda", lambda)?;
        let rho = lambda * service.mean();
        if rho >= 1.0 {
            return Err(TheoryError::Unstable { rho });
        }
        Ok(Mg1 { lambda, service })
    }

    /// Utilisation `rho = lambda E[S]`.
    pub fn utilization(&self) -> f64 {
        self.lambda * self.service.mean()
    }

    /// Pollaczek-Khinchine mean wait in queue, `Wq = lambda E[S^2] / (2 (1 - rho))`.
    pub fn mean_wait(&self) -> f64 {
        self.lambda * self.service.second_moment() / (2.0 * (1.0 - self.utilization()))
    }

    /// Mean time in system, `W = Wq + E[S]`.
    pub fn mean_sojourn(&self) -> f64 {
        self.mean_wait() + self.service.mean()
    }

    /// Mean number waiting, `Lq = lambda Wq`.
    pub fn mean_queue_length(&self) -> f64 {
        self.lambda * self.mean_wait()
    }

    /// Mean number in system, `L = lambda W`.
    pub fn mean_in_system(&self) -> f64 {
        self.lambda * self.mean_sojourn()
    }
}

// ===== Little's law =====

/// Little's law `L = lambda W`: the long-run mean number in a system equals the arrival (=
/// throughput) rate times the mean time spent in it. Holds for any stable system and any
/// discipline, as long as `L`, `lambda` and `W` are measured over the same boundary and period.
///
/// # Errors
/// [`TheoryError::InvalidParameter`] if either argument is negative or not finite.
pub fn littles_law(lambda: f64, mean_time: f64) -> Result<f64, TheoryError> {
    let lambda = non_negative("arrival rate lambda", lambda)?;
    let w = non_negative("mean time W", mean_time)?;
    Ok(lambda * w)
}

impl fmt::Display for Mmc {
    /// `M/M/c(lambda, mu, c): rho, P(wait), Wq, W`, for validator logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "M/M/{} (lambda = {}, mu = {}): rho = {:.4}, P(wait) = {:.4}, Wq = {:.4}, W = {:.4}",
            self.c,
            self.lambda,
            self.mu,
            self.utilization(),
            self.p_wait,
            self.mean_wait(),
            self.mean_sojourn()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn erlang_b_textbook_values() {
        assert!(close(erlang_b(10, 5.0).unwrap(), 0.018_385, 1e-6));
        assert!(close(erlang_b(1, 1.0).unwrap(), 0.5, 1e-15));
        // B(2, 1) = (1/2) / (1 + 1 + 1/2) = 0.2
        assert!(close(erlang_b(2, 1.0).unwrap(), 0.2, 1e-15));
        assert_eq!(erlang_b(0, 3.0).unwrap(), 1.0);
        assert_eq!(erlang_b(5, 0.0).unwrap(), 0.0);
    }

    #[test]
    fn erlang_b_is_stable_for_large_systems() {
        // 1000 servers at 950 Erlangs: factorial form overflows, the recurrence does not.
        let b = erlang_b(1000, 950.0).unwrap();
        assert!(b.is_finite() && b > 0.0 && b < 0.02, "{b}");
        // Monotone: more servers, less blocking.
        assert!(erlang_b(1001, 950.0).unwrap() < b);
    }

    #[test]
    fn erlang_c_matches_peer_baseline() {
        // The Erlang C closed form for M/M/10, lambda 9, mu 1 (as tabulated, and as a SimPy M/M/c peer
        // measures it): P_wait = Wq = 0.6687, W = 1.6687.
        let c = erlang_c(10, 9.0).unwrap();
        assert!(close(c, 0.6687, 5e-5), "{c}");
        let q = Mmc::new(9.0, 1.0, 10).unwrap();
        assert!(close(q.mean_wait(), 0.6687, 5e-5));
        assert!(close(q.mean_sojourn(), 1.6687, 5e-5));
        assert!(close(q.utilization(), 0.9, 1e-12));
        // Little: Lq = lambda Wq, L = Lq + a.
        assert!(close(q.mean_queue_length(), 9.0 * q.mean_wait(), 1e-12));
        assert!(close(q.mean_in_system(), q.mean_queue_length() + 9.0, 1e-9));
    }

    #[test]
    fn mm1_closed_forms() {
        let q = Mmc::mm1(0.9, 1.0).unwrap();
        assert!(close(q.p_wait(), 0.9, 1e-12));
        assert!(close(q.mean_wait(), 9.0, 1e-9));
        assert!(close(q.mean_sojourn(), 10.0, 1e-9));
        assert!(close(q.mean_queue_length(), 8.1, 1e-9));
        // Sojourn ~ Exp(mu - lambda) = Exp(0.1).
        for t in [0.0, 1.0, 10.0, 30.0] {
            let p = q.sojourn_exceeds(t).unwrap();
            assert!(close(p, (-0.1 * t).exp(), 1e-12), "t {t}: {p}");
        }
        // Wait tail and its quantile are inverse: P(Wq > q95) = 0.05.
        let q95 = q.wait_quantile(0.95).unwrap();
        assert!(close(q.wait_exceeds(q95).unwrap(), 0.05, 1e-12));
        assert!(close(q95, 10.0 * 18.0_f64.ln(), 1e-9));
        // Most arrivals at rho 0.5 do not wait: the median wait is 0.
        assert_eq!(Mmc::mm1(0.5, 1.0).unwrap().wait_quantile(0.5).unwrap(), 0.0);
    }

    #[test]
    fn mmc_sojourn_tail_is_consistent() {
        let q = Mmc::new(9.0, 1.0, 10).unwrap();
        assert!(close(q.sojourn_exceeds(0.0).unwrap(), 1.0, 1e-12));
        // theta = c mu - lambda = 1 = mu: the equal-rates branch; compare with a nearby theta.
        let near = Mmc::new(9.000_001, 1.0, 10).unwrap();
        for t in [0.5, 2.0, 5.0] {
            let a = q.sojourn_exceeds(t).unwrap();
            let b = near.sojourn_exceeds(t).unwrap();
            assert!(close(a, b, 1e-5), "t {t}: {a} vs {b}");
        }
        // Integral of the tail is the mean sojourn (trapezoid on a fine grid).
        let q = Mmc::new(3.0, 1.0, 4).unwrap();
        let dt = 1e-3;
        let integral: f64 = (0..60_000)
            .map(|i| {
                let t = i as f64 * dt;
                0.5 * (q.sojourn_exceeds(t).unwrap() + q.sojourn_exceeds(t + dt).unwrap()) * dt
            })
            .sum();
        assert!(close(integral, q.mean_sojourn(), 1e-5), "{integral}");
    }

    #[test]
    fn unstable_and_invalid_inputs_are_errors() {
        assert_eq!(erlang_c(10, 10.0), Err(TheoryError::Unstable { rho: 1.0 }));
        assert!(matches!(erlang_c(0, 0.5), Err(TheoryError::InvalidParameter { .. })));
        assert!(matches!(erlang_b(3, -1.0), Err(TheoryError::InvalidParameter { .. })));
        assert!(matches!(erlang_b(3, f64::NAN), Err(TheoryError::InvalidParameter { .. })));
        assert!(matches!(Mmc::mm1(1.0, 1.0), Err(TheoryError::Unstable { .. })));
        assert!(matches!(Mmc::new(1.0, 0.0, 2), Err(TheoryError::InvalidParameter { .. })));
        let q = Mmc::mm1(0.5, 1.0).unwrap();
        assert!(q.wait_exceeds(-1.0).is_err());
        assert!(q.wait_quantile(1.0).is_err());
        let s = ServiceMoments::exponential(1.0).unwrap();
        assert!(matches!(Mg1::new(1.0, s), Err(TheoryError::Unstable { .. })));
        assert!(ServiceMoments::new(2.0, 3.0).is_err(), "E[S^2] < E[S]^2");
        assert!(ServiceMoments::lognormal(1.0, 100.0).is_err(), "infinite moment");
        assert!(littles_law(-1.0, 2.0).is_err());
        let msg = erlang_c(2, 3.0).unwrap_err().to_string();
        assert!(msg.contains("rho = 1.5000"), "{msg}");
    }

    #[test]
    fn service_moments_of_named_distributions() {
        let d = ServiceMoments::deterministic(2.0).unwrap();
        assert_eq!((d.mean(), d.second_moment(), d.scv()), (2.0, 4.0, 0.0));
        let e = ServiceMoments::exponential(2.0).unwrap();
        assert_eq!((e.second_moment(), e.scv()), (8.0, 1.0));
        let g = ServiceMoments::gamma(4.0, 0.5).unwrap();
        assert!(close(g.mean(), 2.0, 1e-12) && close(g.second_moment(), 5.0, 1e-12));
        assert!(close(g.scv(), 0.25, 1e-12));
        // Lognormal median 1, sigma 1: E[S] = e^{1/2}, E[S^2] = e^2, scv = e - 1.
        let l = ServiceMoments::lognormal(1.0, 1.0).unwrap();
        assert!(close(l.mean(), 0.5_f64.exp(), 1e-12));
        assert!(close(l.second_moment(), 2.0_f64.exp(), 1e-12));
        assert!(close(l.scv(), 1.0_f64.exp() - 1.0, 1e-12));
        // Median 2 scales moments by 2^k: E[S^2] = 4 exp(4 * 0.25 / 2).
        assert!(close(lognormal_moment(2.0, 0.5, 2).unwrap(), 4.0 * 0.5_f64.exp(), 1e-12));
        assert!(close(lognormal_moment(3.0, 0.0, 3).unwrap(), 27.0, 1e-9));
    }

    #[test]
    fn pollaczek_khinchine_reduces_to_known_cases() {
        // Exponential service: M/G/1 = M/M/1, Wq = 9 at rho 0.9.
        let mg1 = Mg1::new(0.9, ServiceMoments::exponential(1.0).unwrap()).unwrap();
        assert!(close(mg1.mean_wait(), 9.0, 1e-9));
        assert!(close(mg1.mean_sojourn(), Mmc::mm1(0.9, 1.0).unwrap().mean_sojourn(), 1e-9));
        // Deterministic service (M/D/1) waits half as long: Wq = rho / (2 mu (1 - rho)) = 4.5.
        let md1 = Mg1::new(0.9, ServiceMoments::deterministic(1.0).unwrap()).unwrap();
        assert!(close(md1.mean_wait(), 4.5, 1e-9));
        assert!(close(md1.mean_queue_length(), 0.9 * 4.5, 1e-9));
        assert!(close(md1.mean_in_system(), 0.9 * 5.5, 1e-9));
        // Lognormal: matches lambda E[S^2] / (2 (1 - rho)) computed by hand.
        let s = ServiceMoments::lognormal(1.0, 0.5).unwrap();
        let lambda = 0.5;
        let rho = lambda * 0.125_f64.exp();
        let q = Mg1::new(lambda, s).unwrap();
        assert!(close(q.utilization(), rho, 1e-12));
        assert!(close(q.mean_wait(), lambda * 0.5_f64.exp() / (2.0 * (1.0 - rho)), 1e-12));
    }

    #[test]
    fn littles_law_multiplies() {
        assert_eq!(littles_law(9.0, 1.6687).unwrap(), 9.0 * 1.6687);
        assert_eq!(littles_law(0.0, 5.0).unwrap(), 0.0);
    }

    #[test]
    fn display_summarises_queue() {
        let s = Mmc::new(9.0, 1.0, 10).unwrap().to_string();
        assert!(s.starts_with("M/M/10") && s.contains("P(wait) = 0.6687"), "{s}");
    }
}
