//! A scenario reshaped for a live run (`routesim mock`, `load`, `live`): checked bounds, no warm-up (both
//! sides count every request), and the command line's request count, duration, rate scale, clock and seed.

use router_core::Duration;
use sim::failure::Failure;
use sim::scenario::{Compiled, Scenario};
use std::path::PathBuf;

/// What bounds and reshapes a scenario for a live run.
#[derive(Debug, Clone)]
pub struct LiveScenario {
    /// The scenario file (TOML).
    pub file: PathBuf,
    /// Scenario seconds per real second: every duration on the live side is divided by it.
    pub time_scale: f64,
    /// At most this many requests (with `duration`, whichever comes first).
    pub requests: Option<u64>,
    /// Only arrivals in the first D of scenario time.
    pub duration: Option<Duration>,
    /// Multiplies the scenario's traffic rate (both sides).
    pub rate_scale: Option<f64>,
    /// The traffic profile's time of day at the start of the run.
    pub clock: Option<Duration>,
    /// Master seed, replacing the scenario's.
    pub seed: Option<u64>,
    /// The simulator's replication whose traffic and provider luck are used.
    pub replication: u32,
}

impl LiveScenario {
    /// Checks the time scale, the rate scale and the request count (as `--time-scale`, `--rate-scale`,
    /// `--requests` in the messages).
    pub fn check(&self) -> Result<(), Failure> {
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            return Err(Failure::Invalid(format!(
                "--time-scale: expected a positive number, found {}",
                self.time_scale
            )));
        }
        if let Some(f) = self.rate_scale
            && !(f.is_finite() && f > 0.0)
        {
            return Err(Failure::Invalid(format!("--rate-scale: expected a positive number, found {f}")));
        }
        if self.requests == Some(0) {
            return Err(Failure::Invalid("--requests: expected at least 1".into()));
        }
        Ok(())
    }

    /// The scenario, reshaped: no warm-up (both sides count every request), the bounds, rate and clock.
    pub fn load(&self) -> Result<Compiled, Failure> {
        self.check()?;
        let file = &self.file;
        let mut s = Scenario::load(file)?;
        if let Some(seed) = self.seed {
            s.seed = seed;
        }
        s.warmup = None;
        s.warmup_requests = None;
        if let Some(n) = self.requests {
            s.requests = Some(n);
        }
        if let Some(d) = self.duration {
            s.duration = Some(d);
        }
        if let Some(f) = self.rate_scale {
            s.traffic.rate *= f;
        }
        if let Some(c) = self.clock {
            s.traffic.clock = c;
        }
        Ok(s.compile(file)?)
    }

    /// The scenario as written (no reshaping), after [`LiveScenario::check`]: what `routesim mock` serves.
    pub fn load_unbounded(&self) -> Result<Compiled, Failure> {
        self.check()?;
        Ok(Scenario::load(&self.file)?.compile(&self.file)?)
    }
}
