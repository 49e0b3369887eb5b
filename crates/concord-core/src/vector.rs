//! Unit-length embedding vectors.

use std::fmt;

/// An L2-normalized, finite, non-empty vector: cosine similarity is a dot product.
#[derive(Clone, PartialEq)]
pub struct UnitVector(Box<[f32]>);

/// Why a raw vector cannot become a [`UnitVector`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VectorError {
    #[error("vector is empty")]
    Empty,
    #[error("vector has a non-finite component at {0}")]
    NonFinite(usize),
    #[error("vector has zero length")]
    Zero,
}

impl UnitVector {
    /// Normalizes `raw` to unit length.
    pub fn normalize(mut raw: Vec<f32>) -> Result<Self, VectorError> {
        if raw.is_empty() {
            return Err(VectorError::Empty);
        }
        if let Some(i) = raw.iter().position(|x| !x.is_finite()) {
            return Err(VectorError::NonFinite(i));
        }
        let norm = raw
            .iter()
            .map(|x| f64::from(*x) * f64::from(*x))
            .sum::<f64>()
            .sqrt();
        if norm < 1e-12 || !norm.is_finite() {
            return Err(VectorError::Zero);
        }
        let inv = (1.0 / norm) as f32;
        raw.iter_mut().for_each(|x| *x *= inv);
        Ok(Self(raw.into_boxed_slice()))
    }

    pub fn as_slice(&self) -> &[f32] {
        &self.0
    }

    pub fn dim(&self) -> usize {
        self.0.len()
    }

    /// Cosine similarity with another unit vector (0 when dimensions differ).
    pub fn cosine(&self, other: &Self) -> f32 {
        if self.0.len() != other.0.len() {
            return 0.0;
        }
        self.0.iter().zip(other.0.iter()).map(|(a, b)| a * b).sum()
    }
}

/// What the models make of one article: the sentence model's vector of its prepared
/// text, and the headline model's vector of its title where that model is configured.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding {
    pub vector: UnitVector,
    /// The headline model's vector of the title (`[headline_model]`); `None` when
    /// that model is off, or for a vector stored before it was on.
    pub headline: Option<UnitVector>,
}

impl Embedding {
    /// The sentence model's vector alone.
    pub fn text_only(vector: UnitVector) -> Self {
        Self {
            vector,
            headline: None,
        }
    }
}

impl fmt::Debug for UnitVector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UnitVector(dim={})", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_degenerate_vectors() {
        assert_eq!(UnitVector::normalize(vec![]), Err(VectorError::Empty));
        assert_eq!(
            UnitVector::normalize(vec![0.0, 0.0]),
            Err(VectorError::Zero)
        );
        assert_eq!(
            UnitVector::normalize(vec![1.0, f32::NAN]),
            Err(VectorError::NonFinite(1))
        );
    }

    #[test]
    fn cosine_of_orthogonal_and_parallel() {
        let a = UnitVector::normalize(vec![3.0, 0.0]).unwrap();
        let b = UnitVector::normalize(vec![0.0, 2.0]).unwrap();
        let c = UnitVector::normalize(vec![5.0, 0.0]).unwrap();
        assert!(a.cosine(&b).abs() < 1e-6);
        assert!((a.cosine(&c) - 1.0).abs() < 1e-6);
    }

    proptest! {
        #[test]
        fn normalized_vectors_have_unit_length(raw in proptest::collection::vec(-1e3f32..1e3, 1..64)) {
            if let Ok(v) = UnitVector::normalize(raw) {
                let n: f32 = v.as_slice().iter().map(|x| x * x).sum();
                prop_assert!((n - 1.0).abs() < 1e-4);
            }
        }
    }
}
