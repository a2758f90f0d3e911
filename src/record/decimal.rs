//! Exact decimal values for Withings measures: `value × 10^exponent` (the
//! exponent is the field Withings calls `unit`, facts sheet §2) kept as
//! integer and exponent, so 65750 × 10^-3 prints as 65.75 and never as
//! 65.75000000000001.

use serde::{Serialize, Serializer};
use std::fmt;

/// Beyond this many zeros a plain rendering gets silly; JSON's exponent
/// notation stays exact and valid.
const MAX_PLAIN_DIGITS: i64 = 24;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decimal {
    pub mantissa: i64,
    pub exponent: i64,
}

impl Decimal {
    pub fn new(mantissa: i64, exponent: i64) -> Decimal {
        Decimal { mantissa, exponent }
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.mantissa < 0 { "-" } else { "" };
        let digits = self.mantissa.unsigned_abs().to_string();
        if self.mantissa == 0 {
            return f.write_str("0");
        }
        // Range checks on the i64 first: only then is the exponent known to
        // fit a usize. Casting first wraps on 32-bit targets, where
        // -(2^32 + 3) would become 3 and print 5 × 10^-(2^32+3) as 0.005.
        if !(-MAX_PLAIN_DIGITS..=MAX_PLAIN_DIGITS).contains(&self.exponent) {
            return write!(f, "{sign}{digits}e{}", self.exponent);
        }
        let places = usize::try_from(self.exponent.unsigned_abs()).map_err(|_| fmt::Error)?;
        if self.exponent >= 0 {
            let zeros = "0".repeat(places);
            return write!(f, "{sign}{digits}{zeros}");
        }
        let frac_len = places;
        let padded = if digits.len() <= frac_len {
            format!("{}{digits}", "0".repeat(frac_len + 1 - digits.len()))
        } else {
            digits
        };
        let (int_part, frac_part) = padded.split_at(padded.len() - frac_len);
        let frac_part = frac_part.trim_end_matches('0');
        if frac_part.is_empty() {
            write!(f, "{sign}{int_part}")
        } else {
            write!(f, "{sign}{int_part}.{frac_part}")
        }
    }
}

impl Serialize for Decimal {
    /// Emitted as the JSON number text itself, so no float ever touches it.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw = serde_json::value::RawValue::from_string(self.to_string())
            .map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::Decimal;

    fn show(m: i64, e: i64) -> String {
        Decimal::new(m, e).to_string()
    }

    #[test]
    fn withings_examples_from_the_facts_sheet() {
        assert_eq!(show(65750, -3), "65.75");
        assert_eq!(show(8200, -2), "82");
        assert_eq!(show(72500, -3), "72.5");
    }

    #[test]
    fn small_fractions_keep_leading_zeros() {
        assert_eq!(show(5, -3), "0.005");
        assert_eq!(show(-5, -1), "-0.5");
        assert_eq!(show(123, -3), "0.123");
    }

    #[test]
    fn positive_exponents_and_zero() {
        assert_eq!(show(12, 2), "1200");
        assert_eq!(show(0, -3), "0");
        assert_eq!(show(-7, 0), "-7");
    }

    #[test]
    fn extreme_exponents_use_exact_exponent_notation() {
        assert_eq!(show(1, 100), "1e100");
        assert_eq!(show(1, -100), "1e-100");
        assert_eq!(show(i64::MIN, -2), "-92233720368547758.08");
    }

    #[test]
    fn exponents_beyond_32_bits_are_not_wrapped() {
        // 2^32 + 3: a cast to a 32-bit usize before the range check made it 3.
        let e = (1i64 << 32) + 3;
        assert_eq!(show(5, -e), "5e-4294967299");
        assert_eq!(show(5, e), "5e4294967299");
        assert_eq!(show(5, -(1i64 << 32)), "5e-4294967296");
        assert_eq!(show(7, i64::MIN), format!("7e{}", i64::MIN));
        assert_eq!(show(7, i64::MAX), format!("7e{}", i64::MAX));
    }

    #[test]
    fn the_plain_rendering_ends_exactly_at_its_limit() {
        assert_eq!(show(1, -24), format!("0.{}1", "0".repeat(23)));
        assert_eq!(show(1, -25), "1e-25");
        assert_eq!(show(1, 24), format!("1{}", "0".repeat(24)));
        assert_eq!(show(1, 25), "1e25");
    }

    #[test]
    fn every_rendering_is_a_json_number_with_the_exact_value() {
        for (m, e) in [(65750, -3), (1, 100), (i64::MIN, -30), (999, -1), (5, 7)] {
            let json = serde_json::to_string(&Decimal::new(m, e)).unwrap();
            let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
            assert!(parsed.is_number(), "{json} is not a JSON number");
        }
        assert_eq!(
            serde_json::to_string(&Decimal::new(72500, -3)).unwrap(),
            "72.5"
        );
    }
}
