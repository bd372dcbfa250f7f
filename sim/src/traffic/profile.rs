//! Rate profiles: how the arrival rate varies over (simulated) time of day, plus spikes.

use router_core::{Duration, Nanos};
use serde::{Deserialize, Serialize};

const DAY: f64 = 86_400.0;

/// How far inside a flat piece of a profile a [`Profile::flat_span`] stays from its ends, in seconds.
pub const FLAT_MARGIN_S: f64 = 1e-3;

/// The shape of the arrival rate over a day; the rate at time t is `traffic.rate x factor(t)`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Profile {
    /// Factor 1 all the time.
    #[default]
    Constant,
    /// Office hours: factor 1 between `open` and `close` (time of day), `off_hours` outside, with linear
    /// ramps of length `ramp` centred on `open` and `close`.
    BusinessHours {
        /// Opening time of day (default 9h).
        #[serde(default = "nine")]
        open: Duration,
        /// Closing time of day (default 17h).
        #[serde(default = "seventeen")]
        close: Duration,
        /// Factor outside office hours (default 0.15).
        #[serde(default = "off_hours")]
        off_hours: f64,
        /// Ramp length (default 1h).
        #[serde(default = "one_hour")]
        ramp: Duration,
    },
    /// A smooth daily wave: `1 - amplitude x (1 - cos(2 pi (t - peak) / 24h)) / 2`, so 1 at `peak` and
    /// `1 - amplitude` twelve hours later.
    Diurnal {
        /// Depth of the trough, 0..=1.
        amplitude: f64,
        /// Time of day of the peak (default 14h).
        #[serde(default = "fourteen")]
        peak: Duration,
    },
    /// Piecewise-linear factor through `[time, factor]` points (times since the start of the run); before
    /// the first point and after the last the factor is held.
    Points {
        /// The points, times increasing.
        points: Vec<(Duration, f64)>,
    },
}

fn nine() -> Duration {
    Duration::from_secs(9 * 3600)
}
fn seventeen() -> Duration {
    Duration::from_secs(17 * 3600)
}
fn fourteen() -> Duration {
    Duration::from_secs(14 * 3600)
}
fn one_hour() -> Duration {
    Duration::from_secs(3600)
}
fn off_hours() -> f64 {
    0.15
}

/// A temporary multiplication of the rate (a launch, a batch job, a retry storm upstream).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spike {
    /// Start, since the start of the run.
    pub at: Duration,
    /// Length.
    pub duration: Duration,
    /// Rate multiplier while it lasts.
    pub factor: f64,
}

impl Profile {
    /// Checks the parameters; `Err((field, message))`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        match self {
            Profile::Constant => Ok(()),
            Profile::BusinessHours { open, close, off_hours, ramp } => {
                if open.as_secs_f64() >= DAY || close.as_secs_f64() > DAY || close <= open {
                    return Err((
                        "close".into(),
                        format!("expected 0 <= open < close <= 24h, found open {open}, close {close}"),
                    ));
                }
                if !(0.0..=1.0).contains(off_hours) {
                    return Err(("off_hours".into(), format!("expected a factor in 0..=1, found {off_hours}")));
                }
                if ramp.as_secs_f64() > close.as_secs_f64() - open.as_secs_f64() {
                    return Err((
                        "ramp".into(),
                        format!("expected a ramp no longer than the office hours, found {ramp}"),
                    ));
                }
                Ok(())
            }
            Profile::Diurnal { amplitude, peak } => {
                if !(0.0..=1.0).contains(amplitude) {
                    return Err(("amplitude".into(), format!("expected 0..=1, found {amplitude}")));
                }
                if peak.as_secs_f64() >= DAY {
                    return Err(("peak".into(), format!("expected a time of day below 24h, found {peak}")));
                }
                Ok(())
            }
            Profile::Points { points } => {
                if points.is_empty() {
                    return Err(("points".into(), "expected at least one [time, factor] point".into()));
                }
                for (i, (t, f)) in points.iter().enumerate() {
                    if !(f.is_finite() && *f >= 0.0) {
                        return Err((format!("points[{i}]"), format!("expected a factor >= 0, found {f}")));
                    }
                    if i > 0 && *t <= points[i - 1].0 {
                        return Err((format!("points[{i}]"), "expected increasing times".into()));
                    }
                }
                if points.iter().all(|(_, f)| *f == 0.0) {
                    return Err((
                        "points".into(),
                        "expected some factor above 0 (no traffic would ever arrive)".into(),
                    ));
                }
                Ok(())
            }
        }
    }

    /// The factor at `t` seconds since the start; `clock` is the time of day at the start, in seconds.
    pub fn factor(&self, t: f64, clock: f64) -> f64 {
        match self {
            Profile::Constant => 1.0,
            Profile::BusinessHours { open, close, off_hours, ramp } => {
                let tod = (t + clock).rem_euclid(DAY);
                let (o, c, r) = (open.as_secs_f64(), close.as_secs_f64(), ramp.as_secs_f64());
                // Fraction "open" in 0..=1: ramps centred on open and close.
                let up = if r > 0.0 { ((tod - (o - r / 2.0)) / r).clamp(0.0, 1.0) } else { (tod >= o) as u8 as f64 };
                let down = if r > 0.0 { (((c + r / 2.0) - tod) / r).clamp(0.0, 1.0) } else { (tod < c) as u8 as f64 };
                off_hours + (1.0 - off_hours) * up.min(down)
            }
            Profile::Diurnal { amplitude, peak } => {
                let phase = 2.0 * std::f64::consts::PI * (t + clock - peak.as_secs_f64()) / DAY;
                1.0 - amplitude * (1.0 - phase.cos()) / 2.0
            }
            Profile::Points { points } => {
                let i = points.partition_point(|(pt, _)| pt.as_secs_f64() <= t);
                if i == 0 {
                    return points[0].1;
                }
                if i == points.len() {
                    return points[i - 1].1;
                }
                let ((t0, f0), (t1, f1)) = (points[i - 1], points[i]);
                let (t0, t1) = (t0.as_secs_f64(), t1.as_secs_f64());
                f0 + (f1 - f0) * (t - t0) / (t1 - t0)
            }
        }
    }

    /// The times around `t` (seconds since the start, `clock` as for [`factor`](Self::factor)) over which the
    /// factor is flat: `Some((lo, hi))` with `lo <= t <= hi` when `factor(t', clock)` is bit for bit
    /// `factor(t, clock)` for every `t'` in `[lo, hi]`, `None` on a ramp or a wave. The span keeps
    /// [`FLAT_MARGIN_S`] away from the ends of the flat piece, far more than the rounding of any time the
    /// engine can represent (an arrival caches the rate over the span instead of recomputing it).
    pub fn flat_span(&self, t: f64, clock: f64) -> Option<(f64, f64)> {
        let m = FLAT_MARGIN_S;
        // The flat piece `[lo, hi]` of an axis that `x` lies in, if `x` is inside it by more than the margin.
        let inside = |x: f64, lo: f64, hi: f64| (x > lo + m && x < hi - m).then_some((lo + m - x, hi - m - x));
        match self {
            Profile::Constant => Some((f64::NEG_INFINITY, f64::INFINITY)),
            Profile::BusinessHours { open, close, ramp, .. } => {
                let tod = (t + clock).rem_euclid(DAY);
                let (o, c, r) = (open.as_secs_f64(), close.as_secs_f64(), ramp.as_secs_f64());
                // Closed before the morning ramp, open between the ramps, closed after the evening ramp: the
                // ramps' clamps are saturated there. Each day is a piece of its own (no span crosses midnight).
                let pieces = [(0.0, o - r / 2.0), (o + r / 2.0, c - r / 2.0), (c + r / 2.0, DAY)];
                let (before, after) = pieces.iter().find_map(|&(lo, hi)| inside(tod, lo, hi))?;
                Some((t + before, t + after))
            }
            Profile::Diurnal { .. } => None,
            Profile::Points { points } => {
                let i = points.partition_point(|(pt, _)| pt.as_secs_f64() <= t);
                let lo = if i == 0 { f64::NEG_INFINITY } else { points[i - 1].0.as_secs_f64() };
                let hi = points.get(i).map_or(f64::INFINITY, |p| p.0.as_secs_f64());
                // Held before the first point and after the last; between two equal factors, `f0 + 0 x` is f0.
                let flat = i == 0 || i == points.len() || points[i - 1].1 == points[i].1;
                if !flat {
                    return None;
                }
                let (before, after) = inside(t, lo, hi)?;
                Some((t + before, t + after))
            }
        }
    }

    /// An upper bound of [`factor`](Self::factor) over all times.
    pub fn max_factor(&self) -> f64 {
        match self {
            Profile::Points { points } => points.iter().map(|p| p.1).fold(0.0, f64::max),
            _ => 1.0,
        }
    }
}

impl Spike {
    /// Checks the parameters; `Err((field, message))`.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if !(self.factor.is_finite() && self.factor >= 0.0) {
            return Err(("factor".into(), format!("expected a multiplier >= 0, found {}", self.factor)));
        }
        if self.duration.nanos() == 0 {
            return Err(("duration".into(), "expected a positive duration".into()));
        }
        Ok(())
    }

    /// The multiplier at `t` (nanoseconds since the start).
    #[inline]
    pub fn factor_at(&self, t: Nanos) -> f64 {
        let start = self.at.nanos();
        if t >= start && t < start.saturating_add(self.duration.nanos()) { self.factor } else { 1.0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn business_hours_are_open_by_day_and_quiet_at_night() {
        let p = Profile::BusinessHours { open: nine(), close: seventeen(), off_hours: 0.2, ramp: one_hour() };
        assert_eq!(p.factor(12.0 * 3600.0, 0.0), 1.0);
        assert!((p.factor(3.0 * 3600.0, 0.0) - 0.2).abs() < 1e-12);
        // Middle of the morning ramp: half way.
        assert!((p.factor(9.0 * 3600.0, 0.0) - 0.6).abs() < 1e-12);
        // The clock offset shifts the day: t = 0 at 12:00 is open.
        assert_eq!(p.factor(0.0, 12.0 * 3600.0), 1.0);
        // The next day repeats.
        assert_eq!(p.factor(36.0 * 3600.0, 0.0), 1.0);
    }

    #[test]
    fn diurnal_peaks_at_peak_and_bottoms_twelve_hours_later() {
        let p = Profile::Diurnal { amplitude: 0.6, peak: fourteen() };
        assert!((p.factor(14.0 * 3600.0, 0.0) - 1.0).abs() < 1e-12);
        assert!((p.factor(2.0 * 3600.0, 0.0) - 0.4).abs() < 1e-12);
    }

    #[test]
    fn points_interpolate_and_hold() {
        let p = Profile::Points { points: vec![(Duration::from_secs(10), 1.0), (Duration::from_secs(20), 3.0)] };
        assert_eq!(p.factor(0.0, 0.0), 1.0);
        assert_eq!(p.factor(15.0, 0.0), 2.0);
        assert_eq!(p.factor(99.0, 0.0), 3.0);
        assert_eq!(p.max_factor(), 3.0);
    }

    #[test]
    fn invalid_profiles_name_the_field() {
        let p = Profile::BusinessHours { open: seventeen(), close: nine(), off_hours: 0.2, ramp: one_hour() };
        assert_eq!(p.validate().expect_err("close before open").0, "close");
        let p = Profile::Diurnal { amplitude: 1.5, peak: fourteen() };
        assert_eq!(p.validate().expect_err("amplitude").0, "amplitude");
        let p = Profile::Points { points: vec![(Duration::from_secs(1), 0.0)] };
        assert_eq!(p.validate().expect_err("all zero").0, "points");
    }
}
