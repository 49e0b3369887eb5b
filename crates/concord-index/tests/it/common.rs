use concord_core::{ArticleId, UnitVector};
use concord_index::{IndexParams, VectorIndex};
use jiff::Timestamp;

/// splitmix64: deterministic, dependency-free test randomness.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    pub fn unit_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    pub fn vector(&mut self, dim: usize) -> UnitVector {
        loop {
            let raw: Vec<f32> = (0..dim).map(|_| self.unit_f32()).collect();
            if let Ok(v) = UnitVector::normalize(raw) {
                return v;
            }
        }
    }
}

/// Small graph batches, so most entries of a test index are in the graph
/// and some are still pending.
pub fn params(dim: usize) -> IndexParams {
    IndexParams {
        max_elements_hint: 1000,
        ef_construction: 100,
        graph_batch: 64,
        ..IndexParams::new(dim)
    }
}

pub fn ts(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).expect("valid test timestamp")
}

/// One article per hour from `start`, ids 0..n.
pub fn build(params: IndexParams, n: usize, seed: u64) -> (VectorIndex, Vec<UnitVector>) {
    let mut rng = Rng::new(seed);
    let vectors: Vec<UnitVector> = (0..n).map(|_| rng.vector(params.dim)).collect();
    let mut index = VectorIndex::new(params).expect("valid params");
    let items: Vec<_> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| (ArticleId(i as u64), ts(1_700_000_000 + 3600 * i as i64), v))
        .collect();
    index.insert_batch(&items).expect("fresh ids");
    (index, vectors)
}

pub fn published(i: u64) -> i64 {
    1_700_000_000 + 3600 * i as i64
}
