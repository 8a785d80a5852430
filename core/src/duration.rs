//! Human durations for the policy and the CLI: `90s`, `10m`, `1h30m`, `2d`.

use std::fmt;

/// A whole number of seconds, written and read as `1h30m`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(u64);

pub const SECOND: Duration = Duration(1);
pub const DAY: Duration = Duration(86_400);

impl Duration {
    pub const fn from_secs(secs: u64) -> Self {
        Duration(secs)
    }

    pub const fn as_secs(self) -> u64 {
        self.0
    }

    /// Seconds as the signed type timestamps use; saturates, which no bounded
    /// duration reaches.
    pub fn as_secs_i64(self) -> i64 {
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }

    /// Parses `<number><unit>` pairs, units `d`, `h`, `m`, `s`, each at most once,
    /// largest first. Zero is refused: no setting here means "nothing".
    pub fn parse(text: &str) -> Result<Self, DurationError> {
        let text = text.trim();
        let bad = |why| DurationError {
            text: text.to_string(),
            why,
        };
        if text.is_empty() {
            return Err(bad(Unparsable::Empty));
        }
        let mut total: u64 = 0;
        let mut digits = String::new();
        let mut last_unit_rank = usize::MAX;
        for ch in text.chars() {
            if ch.is_ascii_digit() {
                digits.push(ch);
                continue;
            }
            let (rank, unit_secs) = match ch {
                'd' => (3, 86_400),
                'h' => (2, 3_600),
                'm' => (1, 60),
                's' => (0, 1),
                _ => return Err(bad(Unparsable::Unexpected(ch))),
            };
            if digits.is_empty() || rank >= last_unit_rank {
                return Err(bad(Unparsable::Order));
            }
            last_unit_rank = rank;
            let count: u64 = digits
                .parse()
                .map_err(|_| bad(Unparsable::NumberTooLarge))?;
            digits.clear();
            total = count
                .checked_mul(unit_secs)
                .and_then(|secs| total.checked_add(secs))
                .ok_or_else(|| bad(Unparsable::TooLarge))?;
        }
        if !digits.is_empty() {
            return Err(bad(Unparsable::NoUnit));
        }
        if total == 0 {
            return Err(bad(Unparsable::Zero));
        }
        Ok(Duration(total))
    }
}

/// Text that is not a duration, and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DurationError {
    /// As given, trimmed.
    pub text: String,
    pub why: Unparsable,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unparsable {
    Empty,
    /// A character that is neither a digit nor a unit.
    Unexpected(char),
    /// A unit without a number, or units out of order or repeated.
    Order,
    NumberTooLarge,
    TooLarge,
    /// Digits at the end with no unit after them.
    NoUnit,
    Zero,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const EXPECTED: &str =
            "expected a duration such as 90s, 10m, 1h30m or 2d (units d, h, m, s)";
        let text = &self.text;
        match self.why {
            Unparsable::Empty => write!(f, "empty duration: {EXPECTED}"),
            Unparsable::Unexpected(ch) => write!(f, "{text:?}: unexpected {ch:?}; {EXPECTED}"),
            Unparsable::Order => write!(f, "{text:?}: {EXPECTED}"),
            Unparsable::NumberTooLarge => write!(f, "{text:?}: number too large"),
            Unparsable::TooLarge => write!(f, "{text:?}: duration too large"),
            Unparsable::NoUnit => write!(f, "{text:?}: number without a unit; {EXPECTED}"),
            Unparsable::Zero => write!(f, "{text:?}: a duration must be longer than zero"),
        }
    }
}

impl std::error::Error for DurationError {}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("0s");
        }
        let mut rest = self.0;
        for (unit, secs) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
            if rest >= secs {
                write!(f, "{}{unit}", rest / secs)?;
                rest %= secs;
            }
        }
        Ok(())
    }
}

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        std::time::Duration::from_secs(d.0)
    }
}

impl<'de> serde::Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let text = String::deserialize(de)?;
        Duration::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        ser.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_human_forms() {
        assert_eq!(Duration::parse("90s"), Ok(Duration(90)));
        assert_eq!(Duration::parse("10m"), Ok(Duration(600)));
        assert_eq!(Duration::parse("1h30m"), Ok(Duration(5_400)));
        assert_eq!(Duration::parse("30d"), Ok(Duration(2_592_000)));
        assert_eq!(Duration::parse(" 1d2h3m4s "), Ok(Duration(93_784)));
    }

    #[test]
    fn refuses_malformed() {
        for bad in [
            "",
            "10",
            "m",
            "1x",
            "1m1h",
            "1h1h",
            "0s",
            "-5m",
            "1.5h",
            "99999999999999999999d",
            "1h 30m",
        ] {
            assert!(Duration::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn displays_canonically() {
        assert_eq!(Duration(5_400).to_string(), "1h30m");
        assert_eq!(Duration(86_401).to_string(), "1d1s");
        assert_eq!(Duration(45).to_string(), "45s");
    }
}
