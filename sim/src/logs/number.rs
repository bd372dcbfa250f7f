//! Numbers of a log's cells, parsed faster than `str::parse` and to the same bits.
//!
//! A `gen-log` CSV (and most gateway exports) writes plain decimals: digits, at most one point, no sign and
//! no exponent. [`parse_f64`] hands those to `fast-float2` (correctly rounded, as `str::parse::<f64>` is, so
//! both give the nearest `f64`: the same bits) and anything else to `str::parse`, so that what is accepted
//! and what is rejected stays exactly `str::parse`'s. [`parse_token_count`] reads a short run of digits as
//! an integer, which is what parsing it as an `f64` and checking it is whole gives.

/// Whether `s` is a plain decimal: one or more digits, optionally followed by a point and one or more
/// digits.
#[inline]
fn is_plain_decimal(s: &[u8]) -> bool {
    let int = s.iter().take_while(|b| b.is_ascii_digit()).count();
    match s.get(int) {
        None => int > 0,
        Some(b'.') => int > 0 && s.len() > int + 1 && s[int + 1..].iter().all(u8::is_ascii_digit),
        Some(_) => false,
    }
}

/// `s.parse::<f64>()`, bit for bit and error for error (the error is `str::parse`'s own).
#[inline]
pub fn parse_f64(s: &str) -> Result<f64, std::num::ParseFloatError> {
    if is_plain_decimal(s.as_bytes())
        && let Ok(v) = fast_float2::parse::<f64, _>(s)
    {
        return Ok(v);
    }
    s.parse::<f64>()
}

/// Digits read as an integer when there are at most this many (so the value fits a `u32` and is exact as
/// an `f64`).
const SHORT: usize = 9;

/// A plain run of at most nine digits as its value; `None` for anything else (which the caller parses as a
/// number in full).
#[inline]
pub fn short_integer(s: &str) -> Option<u32> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > SHORT || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0u32, |v, &d| v * 10 + (d - b'0') as u32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The same outcome as `str::parse::<f64>`: the same bits, or an error both ways.
    fn same_as_std(s: &str) -> Result<(), TestCaseError> {
        match (parse_f64(s), s.parse::<f64>()) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a.to_bits(), b.to_bits(), "{:?}", s),
            (Err(_), Err(_)) => {}
            (a, b) => prop_assert!(false, "{:?}: {:?} against {:?}", s, a, b),
        }
        Ok(())
    }

    #[test]
    fn edge_cases_parse_as_std_does() {
        for s in [
            "0",
            "0.0",
            "1.",
            ".5",
            "+1",
            "-1",
            "1e5",
            "1E-5",
            "inf",
            "NaN",
            "",
            ".",
            "00001.5000",
            "0.00009465000000000001",
            "9007199254740993",
            "179769313486231570000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000.0",
            "2.4703282292062327e-324",
            "0.000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000024703282292062328",
            "1.5 ",
            " 1.5",
            "1,5",
            "١",
        ] {
            same_as_std(s).expect("as std");
        }
        assert_eq!(short_integer("000123"), Some(123));
        assert_eq!(short_integer("999999999"), Some(999_999_999));
        assert_eq!(short_integer("1000000000"), None);
        assert_eq!(short_integer(""), None);
        assert_eq!(short_integer("12.0"), None);
        assert_eq!(short_integer("+1"), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        /// Every `f64`, as `Display` and `Debug` write it (what `gen-log` writes), parses to its own bits.
        #[test]
        fn written_floats_parse_to_the_same_bits(bits in any::<u64>()) {
            let v = f64::from_bits(bits).abs();
            same_as_std(&format!("{v}"))?;
            same_as_std(&format!("{v:?}"))?;
            same_as_std(&format!("{v:e}"))?;
            same_as_std(&format!("{v:.3}"))?;
        }

        /// Decimals of any length (long mantissas round, halfway cases included) and near-misses of the
        /// plain form parse as `str::parse` parses them.
        #[test]
        fn decimal_text_parses_as_std_does(
            int in "[0-9]{0,25}",
            frac in "[0-9]{0,40}",
            point in any::<bool>(),
            tail in "(|[eE][+-]?[0-9]{1,3}|x|\\.|[+-])",
        ) {
            let s = format!("{int}{}{frac}{tail}", if point { "." } else { "" });
            same_as_std(&s)?;
        }

        /// A short run of digits reads as parsing it as an `f64` does.
        #[test]
        fn short_integers_are_their_f64_value(s in "[0-9]{1,9}") {
            let v: f64 = s.parse().expect("digits");
            prop_assert_eq!(short_integer(&s), Some(v as u32));
        }
    }
}
