//! The defaults plugin configs share: serde's `default = "…"` wants a
//! function, and every plugin with a ten-second timeout wants the same one.

use vane_core::{ByteSize, Duration};

pub fn yes() -> bool {
    true
}

pub fn one() -> u32 {
    1
}

/// Connections a listener serves at once.
pub fn max_connections() -> usize {
    256
}

pub fn one_second() -> Duration {
    Duration::from_secs(1)
}

pub fn five_seconds() -> Duration {
    Duration::from_secs(5)
}

pub fn ten_seconds() -> Duration {
    Duration::from_secs(10)
}

pub fn thirty_seconds() -> Duration {
    Duration::from_secs(30)
}

#[cfg(feature = "http")]
pub fn five_minutes() -> Duration {
    Duration::from_secs(300)
}

pub fn ten_minutes() -> Duration {
    Duration::from_secs(600)
}

pub fn sixty_four_kib() -> ByteSize {
    ByteSize(64 << 10)
}

#[cfg(feature = "http")]
pub fn thirty_two_mib() -> ByteSize {
    ByteSize(32 << 20)
}

pub fn one_mib() -> ByteSize {
    ByteSize(1 << 20)
}
