//! One seeded pseudo-random generator for every test and benchmark that makes data:
//! SplitMix64, whose output is fixed by its seed on every machine and in every version.
//!
//! `rand`'s `StdRng` is not value-stable across `rand` releases, and fixtures recorded from
//! generated data (the synthetic GGUF models checked against llama.cpp) must stay valid, so
//! the generator is written out here. Every method's output is part of the contract: changing
//! one changes the data that fixtures were recorded from.

/// SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators",
/// 2014; the constants of Vigna's `splitmix64.c`). Not for cryptography.
///
/// ```
/// use llmkit_testkit::rng::SplitMix64;
/// let mut rng = SplitMix64::new(0);
/// assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose sequence is fixed by `seed`.
    pub const fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n`, as `next_u64() % n` (the modulo bias, under 2^-40 for the small
    /// `n` tests use, is kept because fixtures depend on these exact values).
    ///
    /// # Panics
    /// When `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A value in `lo..=hi`.
    ///
    /// # Panics
    /// When `hi < lo`, or when the range is all of `u64`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// One element of `items`, chosen with [`below`](Self::below).
    ///
    /// # Panics
    /// When `items` is empty.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// A uniform `f64` in `[0, 1)` from the top 53 bits.
    pub fn unit_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `true` with probability `p` (as `unit_f64() <= p`).
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit_f64() <= p
    }

    /// A uniform `f32` in `[-scale, scale)` from the top 24 bits.
    pub fn signed_f32(&mut self, scale: f32) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
    }
}
