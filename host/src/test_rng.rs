//! A small seeded generator for the unit tests' random loops, so a failing case can be replayed
//! from its printed seed (never for values anyone must not guess: that is `random`).

/// xorshift64*: small, seedable, good enough to pick shapes and damage bytes.
pub struct Rng(u64);

impl Rng {
    /// A generator started from `seed` (any value; zero is made odd).
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True `percent` times in a hundred.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}
