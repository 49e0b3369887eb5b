//! The distance the graph is built with: [`SlotDot`], the clamped cosine
//! distance of [`UnitDot`] over slot references.

use std::sync::Arc;

use hnsw_rs::prelude::Distance;

use crate::vectors::{Sealed, ref_slot};

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

/// [`UnitDot`] over slot references: the graph's points hold a slot
/// reference instead of a copy of their vector, and this distance reads the
/// vector from the index's sealed storage. A query (a slice of the index's
/// dimension) is used as it is. A reference to a slot that is not sealed
/// (never the case for a graph point) reads as an empty vector: distance 1.
#[derive(Debug, Clone)]
pub(crate) struct SlotDot {
    sealed: Arc<Sealed>,
}

impl SlotDot {
    pub(crate) fn new(sealed: Arc<Sealed>) -> Self {
        Self { sealed }
    }

    fn resolve<'a>(&'a self, data: &'a [f32]) -> &'a [f32] {
        let dim = self.sealed.dim();
        if data.len() == dim {
            return data;
        }
        ref_slot(data, dim)
            .and_then(|slot| self.sealed.row(slot))
            .unwrap_or(&[])
    }
}

impl Distance<f32> for SlotDot {
    fn eval(&self, va: &[f32], vb: &[f32]) -> f32 {
        (1.0 - dot(self.resolve(va), self.resolve(vb))).max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vectors::slot_ref;

    #[test]
    fn slot_dot_reads_references_from_sealed_storage() {
        let sealed = Arc::new(Sealed::new(2, 2));
        assert!(
            sealed
                .seal(0, vec![1.0, 0.0, 0.0, 1.0].into_boxed_slice())
                .is_ok()
        );
        let d = SlotDot::new(Arc::clone(&sealed));
        let (r0, r1, r9) = (slot_ref(0), slot_ref(1), slot_ref(9));
        assert_eq!(d.eval(&r0[..1], &r1[..1]), 1.0);
        assert_eq!(d.eval(&[0.0, 1.0], &r1[..1]), 0.0);
        assert_eq!(d.eval(&r0[..1], &[0.6, 0.8]), 1.0 - 0.6);
        assert_eq!(d.eval(&r9[..1], &[1.0, 0.0]), 1.0, "unsealed slot");
    }

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
