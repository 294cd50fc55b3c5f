//! Byte sizes in configs: `512`, `64KiB`, `10MB`, `1GiB`.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

/// A size in bytes; decimal (`KB`, `MB`, `GB`, `TB`) and binary (`KiB` …) units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default, Deserialize)]
#[serde(try_from = "String")]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = crate::invalid::Invalid;

    fn from_str(s: &str) -> Result<ByteSize, crate::invalid::Invalid> {
        ByteSize::parse_text(s).map_err(crate::invalid::Invalid)
    }
}

impl ByteSize {
    fn parse_text(s: &str) -> Result<ByteSize, String> {
        let t = s.trim();
        let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: f64 =
            num.parse().map_err(|_| format!("invalid size {s:?}: expected a number, like 512, 64KiB or 1GiB"))?;
        let f: u64 = match unit.trim() {
            "" | "B" => 1,
            "KB" | "kB" => 1000,
            "MB" => 1000u64.pow(2),
            "GB" => 1000u64.pow(3),
            "TB" => 1000u64.pow(4),
            "KiB" | "K" => 1 << 10,
            "MiB" | "M" => 1 << 20,
            "GiB" | "G" => 1 << 30,
            "TiB" | "T" => 1 << 40,
            u => {
                return Err(format!(
                    "invalid size {s:?}: unknown unit {u:?} (use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)"
                ));
            }
        };
        Ok(ByteSize((n * f as f64) as u64))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}B", self.0)
    }
}

crate::invalid::read_from_text!(ByteSize);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!("512".parse::<ByteSize>().unwrap().0, 512);
        assert_eq!("64KiB".parse::<ByteSize>().unwrap().0, 65536);
        assert_eq!("10MB".parse::<ByteSize>().unwrap().0, 10_000_000);
        assert_eq!("1GiB".parse::<ByteSize>().unwrap().0, 1 << 30);
        assert!("1XB".parse::<ByteSize>().unwrap_err().contains("unknown unit"));
    }
}
