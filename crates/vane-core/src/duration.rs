//! Human durations in configs: `500ms`, `10s`, `1m30s`, `1.5h`, `14d`.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

/// A duration read from a config; always written with a unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Deserialize)]
#[serde(try_from = "String")]
pub struct Duration(pub std::time::Duration);

impl Duration {
    pub const fn from_secs(s: u64) -> Duration {
        Duration(std::time::Duration::from_secs(s))
    }

    pub const fn from_millis(ms: u64) -> Duration {
        Duration(std::time::Duration::from_millis(ms))
    }

    pub fn get(self) -> std::time::Duration {
        self.0
    }
}

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        d.0
    }
}

const UNITS: &[(&str, f64)] = &[
    ("ns", 1e-9),
    ("us", 1e-6),
    ("µs", 1e-6),
    ("ms", 1e-3),
    ("s", 1.0),
    ("m", 60.0),
    ("h", 3600.0),
    ("d", 86400.0),
    ("w", 604800.0),
];

impl FromStr for Duration {
    type Err = crate::invalid::Invalid;

    fn from_str(s: &str) -> Result<Duration, crate::invalid::Invalid> {
        Duration::parse_text(s).map_err(crate::invalid::Invalid)
    }
}

impl Duration {
    fn parse_text(s: &str) -> Result<Duration, String> {
        let bad = |why: &str| format!("invalid duration {s:?}: {why}");
        let t = s.trim();
        if t.is_empty() {
            return Err(bad("empty"));
        }
        let mut rest = t;
        let mut total = 0f64;
        while !rest.is_empty() {
            let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
            if num_len == 0 {
                return Err(bad("expected a number, like 500ms, 10s, 1m or 1h30m"));
            }
            let n: f64 = rest[..num_len].parse().map_err(|_| bad("expected a number"))?;
            rest = &rest[num_len..];
            let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
            let unit = &rest[..unit_len];
            if unit.is_empty() {
                return Err(bad("a duration needs a unit, like 500ms, 10s, 1m or 1h"));
            }
            let factor = UNITS
                .iter()
                .find(|(u, _)| *u == unit)
                .map(|(_, f)| *f)
                .ok_or_else(|| bad(&format!("unknown unit {unit:?} (use ns, us, ms, s, m, h, d or w)")))?;
            total += n * factor;
            rest = &rest[unit_len..];
        }
        if !total.is_finite() || total > 1e12 {
            return Err(bad("too large"));
        }
        Ok(Duration(std::time::Duration::from_secs_f64(total)))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0.as_nanos();
        let units: [(u128, &str); 7] = [
            (86_400_000_000_000, "d"),
            (3_600_000_000_000, "h"),
            (60_000_000_000, "m"),
            (1_000_000_000, "s"),
            (1_000_000, "ms"),
            (1_000, "us"),
            (1, "ns"),
        ];
        if ns == 0 {
            return f.write_str("0s");
        }
        for (n, u) in units {
            if ns.is_multiple_of(n) {
                return write!(f, "{}{u}", ns / n);
            }
        }
        unreachable!("every duration is a whole number of nanoseconds")
    }
}

crate::invalid::read_from_text!(Duration);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_compounds() {
        let ms = |s: &str| s.parse::<Duration>().unwrap().0.as_millis();
        assert_eq!(ms("500ms"), 500);
        assert_eq!(ms("10s"), 10_000);
        assert_eq!(ms("1m30s"), 90_000);
        assert_eq!(ms("1.5h"), 5_400_000);
        assert_eq!(ms("14d"), 14 * 86_400_000);
    }

    #[test]
    fn rejects_missing_or_unknown_units() {
        assert!("10".parse::<Duration>().unwrap_err().contains("needs a unit"));
        assert!("10x".parse::<Duration>().unwrap_err().contains("unknown unit"));
        assert!("s".parse::<Duration>().is_err());
    }

    #[test]
    fn displays_in_the_largest_exact_unit() {
        assert_eq!(Duration::from_secs(60).to_string(), "1m");
        assert_eq!(Duration::from_millis(1500).to_string(), "1500ms");
    }
}
