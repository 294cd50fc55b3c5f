//! A small, fast, non-cryptographic sequence of numbers (xorshift64) for
//! what only needs them well spread: a backoff's jitter, a timer's sample.
//! Never for anything an attacker must not guess.

/// xorshift64: each number from the one before.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A sequence from `seed` (any value; zero is made odd).
    pub fn new(seed: u64) -> XorShift {
        XorShift(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_spread_over_the_range() {
        let mut r = super::XorShift::new(0);
        let mut buckets = [0u32; 8];
        for _ in 0..8000 {
            buckets[(r.next_u64() % 8) as usize] += 1;
        }
        assert!(buckets.iter().all(|&b| (800..1200).contains(&b)), "{buckets:?}");
    }
}
