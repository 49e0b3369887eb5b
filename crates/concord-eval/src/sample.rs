//! Seeded random subsets that match Python's `random` module exactly.
//!
//! A [`Sample`] keeps each row, in file order, when `random.Random(seed).random() <
//! fraction`: the subsets quoted in issues and notes were drawn that way in Python, and a
//! replay here must see the very same rows. [`PyRandom`] is CPython's generator: MT19937
//! seeded by `init_by_array` with the 32-bit little-endian words of the seed (`[0]` for
//! 0), and `random()` built from two outputs as `((a >> 5) · 2^26 + (b >> 6)) / 2^53`.

use serde::Serialize;

const N: usize = 624;
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// CPython's `random.Random(seed)` for a non-negative integer seed.
#[derive(Clone)]
pub struct PyRandom {
    state: [u32; N],
    index: usize,
}

impl std::fmt::Debug for PyRandom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PyRandom")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl PyRandom {
    /// `random.Random(seed)`: `init_by_array` with the seed's 32-bit words, least
    /// significant first (`abs(seed)` in Python; a negative seed there is the same as its
    /// absolute value here).
    pub fn new(seed: u64) -> Self {
        // Low word first; a high word of zero is dropped, as CPython drops leading zeros.
        let low = (seed & 0xffff_ffff) as u32;
        let high = (seed >> 32) as u32;
        let key: &[u32] = if high == 0 { &[low] } else { &[low, high] };
        Self::from_key(key)
    }

    /// MT19937's `init_by_array`.
    fn from_key(key: &[u32]) -> Self {
        let mut mt = Self::from_u32(19_650_218);
        let state = &mut mt.state;
        let mut i = 1usize;
        let mut j = 0usize;
        for _ in 0..N.max(key.len()) {
            let prev = state[i - 1];
            state[i] = (state[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_664_525))
                .wrapping_add(key[j])
                .wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                state[0] = state[N - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..N - 1 {
            let prev = state[i - 1];
            state[i] = (state[i] ^ (prev ^ (prev >> 30)).wrapping_mul(1_566_083_941))
                .wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                state[0] = state[N - 1];
                i = 1;
            }
        }
        state[0] = UPPER_MASK;
        mt
    }

    /// MT19937's `init_genrand`.
    fn from_u32(seed: u32) -> Self {
        let mut state = [0u32; N];
        state[0] = seed;
        for i in 1..N {
            let prev = state[i - 1];
            state[i] = 1_812_433_253u32
                .wrapping_mul(prev ^ (prev >> 30))
                .wrapping_add(i as u32);
        }
        Self { state, index: N }
    }

    /// The next 32-bit output (`genrand_uint32`).
    pub fn next_u32(&mut self) -> u32 {
        if self.index >= N {
            self.twist();
        }
        let mut y = self.state[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    fn twist(&mut self) {
        let mag = |y: u32| if y & 1 == 0 { 0 } else { MATRIX_A };
        for k in 0..N {
            let y = (self.state[k] & UPPER_MASK) | (self.state[(k + 1) % N] & LOWER_MASK);
            self.state[k] = self.state[(k + M) % N] ^ (y >> 1) ^ mag(y);
        }
        self.index = 0;
    }

    /// `random.random()`: a float in `[0, 1)` with 53 random bits.
    pub fn random(&mut self) -> f64 {
        let a = self.next_u32() >> 5;
        let b = self.next_u32() >> 6;
        (f64::from(a) * 67_108_864.0 + f64::from(b)) * (1.0 / 9_007_199_254_740_992.0)
    }
}

/// A seeded random subset: keep each row when the next `random()` is below `fraction`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    pub fraction: f64,
    pub seed: u64,
}

impl Sample {
    /// The rows of `rows` kept, in their order: one draw per row, as Python's
    /// `[row for row in rows if r.random() < fraction]` with `r = random.Random(seed)`.
    pub fn apply<T>(&self, rows: Vec<T>) -> Vec<T> {
        let mut random = PyRandom::new(self.seed);
        rows.into_iter()
            .filter(|_| random.random() < self.fraction)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(seed: u64, n: usize) -> Vec<f64> {
        let mut r = PyRandom::new(seed);
        (0..n).map(|_| r.random()).collect()
    }

    // From `python3 -c 'import random; r=random.Random(S); print([r.random() for _ in
    // range(5)])'` (CPython 3.11); the values are exact, so they compare with `==`.
    #[test]
    fn matches_cpython_for_small_seeds() {
        assert_eq!(
            first(1, 5),
            [
                0.13436424411240122,
                0.8474337369372327,
                0.763774618976614,
                0.2550690257394217,
                0.49543508709194095
            ]
        );
        assert_eq!(
            first(2, 5),
            [
                0.9560342718892494,
                0.9478274870593494,
                0.05655136772680869,
                0.08487199515892163,
                0.8354988781294496
            ]
        );
        assert_eq!(
            first(12345, 5),
            [
                0.41661987254534116,
                0.010169169457068361,
                0.8252065092537432,
                0.2986398551995928,
                0.3684116894884757
            ]
        );
    }

    #[test]
    fn matches_cpython_for_zero_and_two_word_seeds() {
        // random.Random(0): the key is [0], not empty.
        assert_eq!(first(0, 2), [0.8444218515250481, 0.7579544029403025]);
        // 2**40 + 7: two key words, low first.
        assert_eq!(
            first((1 << 40) + 7, 3),
            [0.6137037779936511, 0.8149162973309487, 0.9450115087592873]
        );
    }

    #[test]
    fn matches_cpython_after_several_twists() {
        // The 1001st value: 2,000 outputs in, past three regenerations of the state.
        let mut r = PyRandom::new(1);
        for _ in 0..1000 {
            r.random();
        }
        assert_eq!(r.random(), 0.4116430517162146);
    }
}
