//! The distance the graph is built with.

use hnsw_rs::prelude::Distance;

/// Dot product of two equally long slices (the shorter length wins).
///
/// Eight independent accumulators let the compiler vectorize the loop; a
/// plain `fold` cannot be reordered and stays scalar.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 8;
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let mut ca = a.chunks_exact(LANES);
    let mut cb = b.chunks_exact(LANES);
    for (x, y) in ca.by_ref().zip(cb.by_ref()) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    acc.iter().sum::<f32>() + tail
}

/// `1 - dot(a, b)`, clamped at zero: cosine distance for unit vectors.
///
/// `hnsw_rs`'s own `DistDot` asserts `1 - dot >= 0`, which rounding breaks
/// when a query equals a stored vector (dot = 1.0000001): it panics. Its
/// `DistCosine` is safe but recomputes both norms in `f64` on every call.
/// The graph never needs negative distances, so clamping loses nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct UnitDot;

impl Distance<f32> for UnitDot {
    fn eval(&self, va: &[f32], vb: &[f32]) -> f32 {
        (1.0 - dot(va, vb)).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_naive_sum_for_odd_lengths() {
        for n in [0usize, 1, 7, 8, 9, 31, 64, 67] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - naive).abs() < 1e-4, "n={n}");
        }
    }

    #[test]
    fn distance_never_negative() {
        let v = [1.0000001f32, 0.0];
        assert_eq!(UnitDot.eval(&v, &v), 0.0);
    }
}
