//! Human-readable durations in configuration files: `"250ms"`, `"1.5s"`, `"5m"`, `"1h"`, `"2h30m"`.
//!
//! A bare number means seconds. The value is kept as integer nanoseconds ([`Nanos`]), the unit of time
//! everywhere in router-core and the simulator.

use crate::model::{NANOS_PER_SEC, Nanos};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use std::fmt;

/// A non-negative span of time, written in configs as `"250ms"`, `"1.5s"`, `"5m"`, `"1h"` or a number of seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub Nanos);

const UNITS: [(&str, u64); 7] = [
    ("ns", 1),
    ("us", 1_000),
    ("ms", 1_000_000),
    ("s", NANOS_PER_SEC),
    ("m", 60 * NANOS_PER_SEC),
    ("h", 3_600 * NANOS_PER_SEC),
    ("d", 86_400 * NANOS_PER_SEC),
];

impl Duration {
    /// Zero.
    pub const ZERO: Duration = Duration(0);

    /// From whole seconds.
    pub const fn from_secs(s: u64) -> Self {
        Duration(s * NANOS_PER_SEC)
    }

    /// From milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        Duration(ms * 1_000_000)
    }

    /// From fractional seconds (negative or NaN become zero).
    pub fn from_secs_f64(s: f64) -> Self {
        Duration(crate::model::secs_to_nanos(s))
    }

    /// The span in nanoseconds.
    #[inline]
    pub const fn nanos(self) -> Nanos {
        self.0
    }

    /// The span in seconds.
    #[inline]
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_SEC as f64
    }

    /// Parses `"250ms"`, `"1.5s"`, `"5m"`, `"2h30m"`, `"100us"` or a bare number of seconds.
    pub fn parse(text: &str) -> Result<Self, String> {
        let expected = || format!("expected a duration like \"250ms\", \"5m\" or \"1h\", found {text:?}");
        let s = text.trim();
        if s.is_empty() {
            return Err(expected());
        }
        if let Ok(secs) = s.parse::<f64>() {
            return Self::from_f64_secs_checked(secs).ok_or_else(expected);
        }
        let mut total: f64 = 0.0;
        let mut rest = s;
        while !rest.is_empty() {
            let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
            if num_len == 0 {
                return Err(expected());
            }
            let value: f64 = rest[..num_len].parse().map_err(|_| expected())?;
            rest = rest[num_len..].trim_start();
            let unit_len = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
            let unit = &rest[..unit_len];
            let scale = UNITS.iter().find(|(u, _)| *u == unit).map(|(_, n)| *n).ok_or_else(expected)?;
            total += value * scale as f64;
            rest = rest[unit_len..].trim_start();
        }
        if !total.is_finite() || total > u64::MAX as f64 {
            return Err(expected());
        }
        Ok(Duration(total.round() as u64))
    }

    fn from_f64_secs_checked(secs: f64) -> Option<Self> {
        (secs.is_finite() && secs >= 0.0 && secs * 1e9 < u64::MAX as f64)
            .then(|| Duration((secs * NANOS_PER_SEC as f64).round() as u64))
    }
}

impl fmt::Display for Duration {
    /// Canonical form: the largest unit that divides the span exactly (`"5m"`, `"250ms"`), else seconds
    /// with up to 9 decimals.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return write!(f, "0s");
        }
        for (unit, scale) in UNITS.iter().rev() {
            if self.0.is_multiple_of(*scale) {
                return write!(f, "{}{}", self.0 / scale, unit);
            }
        }
        write!(f, "{}ns", self.0)
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration like \"250ms\", \"5m\" or \"1h\", or a number of seconds")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                Duration::parse(v).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                v.checked_mul(NANOS_PER_SEC).map(Duration).ok_or_else(|| E::custom("duration too large"))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
                u64::try_from(v)
                    .map_err(|_| E::custom(format!("expected a non-negative duration, found {v}")))
                    .and_then(|v| self.visit_u64(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
                Duration::from_f64_secs_checked(v)
                    .ok_or_else(|| E::custom(format!("expected a non-negative duration in seconds, found {v}")))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_compounds() {
        assert_eq!(Duration::parse("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(Duration::parse("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(Duration::parse("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(Duration::parse("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(Duration::parse("2h30m").unwrap(), Duration::from_secs(9000));
        assert_eq!(Duration::parse("100us").unwrap(), Duration(100_000));
        assert_eq!(Duration::parse("12").unwrap(), Duration::from_secs(12));
        assert_eq!(Duration::parse("0.45s").unwrap(), Duration(450_000_000));
    }

    #[test]
    fn rejects_garbage_with_an_actionable_message() {
        for bad in ["", "5 minutes", "-3s", "s", "1x", "nan", "1.2.3s"] {
            let err = Duration::parse(bad).unwrap_err();
            assert!(err.contains("expected a duration"), "{bad}: {err}");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in ["250ms", "5m", "1h", "90s", "1d", "7ns", "0s"] {
            assert_eq!(Duration::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(Duration::parse("1.5s").unwrap().to_string(), "1500ms");
    }

    #[test]
    fn deserializes_from_strings_and_numbers() {
        #[derive(Deserialize)]
        struct T {
            a: Duration,
            b: Duration,
            c: Duration,
        }
        let t: T = serde_json::from_str(r#"{"a":"5m","b":2,"c":0.5}"#).unwrap();
        assert_eq!((t.a.0, t.b.0, t.c.0), (300 * NANOS_PER_SEC, 2 * NANOS_PER_SEC, NANOS_PER_SEC / 2));
        assert!(serde_json::from_str::<T>(r#"{"a":-1,"b":2,"c":0.5}"#).is_err());
    }
}
