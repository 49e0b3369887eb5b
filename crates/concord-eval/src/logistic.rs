//! L2-regularised logistic regression by Newton's method, for fitting the
//! clusterer's calibrated join model on replays of tuning data
//! (`concord fit-join`). Small dense problems only (a dozen features).

/// A fitted model: `p = 1 / (1 + exp(-(bias + Σ weights·x)))`.
#[derive(Debug, Clone, PartialEq)]
pub struct Logistic {
    pub weights: Vec<f64>,
    pub bias: f64,
}

/// Why a fit failed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FitError {
    #[error("no rows to fit")]
    Empty,
    #[error("row {row} has {got} features, expected {expected}")]
    Ragged {
        row: usize,
        got: usize,
        expected: usize,
    },
    #[error("feature values and weights must be finite, weights not negative (row {row})")]
    NotFinite { row: usize },
    #[error("the system is singular: a feature is constant or duplicated")]
    Singular,
    #[error("{0}")]
    Params(&'static str),
}

impl Logistic {
    pub fn probability(&self, x: &[f64]) -> f64 {
        let z = self.bias + self.weights.iter().zip(x).map(|(w, v)| w * v).sum::<f64>();
        1.0 / (1.0 + (-z).exp())
    }
}

/// Checks training rows (features, label, sample weight): some, all as long as
/// the first, every number finite, no weight negative. Returns the row length.
pub fn check_rows(rows: &[(Vec<f64>, bool, f64)]) -> Result<usize, FitError> {
    let dim = rows.first().ok_or(FitError::Empty)?.0.len();
    for (row, (x, _, w)) in rows.iter().enumerate() {
        if x.len() != dim {
            return Err(FitError::Ragged {
                row,
                got: x.len(),
                expected: dim,
            });
        }
        if !x.iter().chain([w]).all(|v| v.is_finite()) || *w < 0.0 {
            return Err(FitError::NotFinite { row });
        }
    }
    Ok(dim)
}

// Dense matrix code: the index arithmetic reads closer to the maths than iterators.
#[allow(clippy::needless_range_loop)]
/// Fits `rows` (features, label, sample weight), minimising
/// `Σ weight·log-loss + ||w||² / (2c)` (the bias is not penalised), like
/// scikit-learn's `LogisticRegression(C=c)`.
pub fn fit(rows: &[(Vec<f64>, bool, f64)], c: f64) -> Result<Logistic, FitError> {
    let dim = check_rows(rows)?;
    // Parameters: the dim weights, then the bias.
    let n = dim + 1;
    let mut theta = vec![0.0f64; n];
    for _ in 0..100 {
        let mut grad = vec![0.0f64; n];
        let mut hess = vec![vec![0.0f64; n]; n];
        for (x, y, w) in rows {
            let z = theta[dim] + theta[..dim].iter().zip(x).map(|(t, v)| t * v).sum::<f64>();
            let p = 1.0 / (1.0 + (-z).exp());
            let r = w * (p - if *y { 1.0 } else { 0.0 });
            let s = w * p * (1.0 - p);
            let xi = |i: usize| if i < dim { x[i] } else { 1.0 };
            for i in 0..n {
                grad[i] += r * xi(i);
                for j in 0..=i {
                    hess[i][j] += s * xi(i) * xi(j);
                }
            }
        }
        for i in 0..n {
            for j in 0..i {
                hess[j][i] = hess[i][j];
            }
        }
        for i in 0..dim {
            grad[i] += theta[i] / c;
            hess[i][i] += 1.0 / c;
        }
        let step = solve(hess, grad).ok_or(FitError::Singular)?;
        let mut largest = 0.0f64;
        for (t, s) in theta.iter_mut().zip(&step) {
            *t -= s;
            largest = largest.max(s.abs());
        }
        if largest < 1e-9 {
            break;
        }
    }
    let bias = theta[dim];
    theta.truncate(dim);
    Ok(Logistic {
        weights: theta,
        bias,
    })
}

/// Solves `a·x = b` by Gaussian elimination with partial pivoting.
#[allow(clippy::needless_range_loop)]
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        for row in col + 1..n {
            let f = a[row][col] / a[col][col];
            if f != 0.0 {
                for k in col..n {
                    a[row][k] -= f * a[col][k];
                }
                b[row] -= f * b[col];
            }
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random stream in [0, 1) (no dependency).
    fn lcg(seed: &mut u64) -> f64 {
        *seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (*seed >> 11) as f64 / (1u64 << 53) as f64
    }

    #[test]
    fn recovers_the_weights_that_generated_the_labels() {
        let (w, b) = ([2.0, -1.5], 0.5);
        let mut seed = 7;
        let rows: Vec<(Vec<f64>, bool, f64)> = (0..20_000)
            .map(|_| {
                let x = vec![lcg(&mut seed) * 4.0 - 2.0, lcg(&mut seed) * 4.0 - 2.0];
                let z = b + w[0] * x[0] + w[1] * x[1];
                let y = lcg(&mut seed) < 1.0 / (1.0 + (-z as f64).exp());
                (x, y, 1.0)
            })
            .collect();
        let m = fit(&rows, 1e6).unwrap_or_else(|e| panic!("{e}"));
        assert!((m.weights[0] - 2.0).abs() < 0.15, "{m:?}");
        assert!((m.weights[1] + 1.5).abs() < 0.15, "{m:?}");
        assert!((m.bias - 0.5).abs() < 0.15, "{m:?}");
        assert!(m.probability(&[2.0, -2.0]) > 0.99);
    }

    #[test]
    fn regularisation_shrinks_and_weights_count() {
        let rows = vec![
            (vec![1.0], true, 1.0),
            (vec![-1.0], false, 1.0),
            (vec![0.5], false, 1.0),
            (vec![-0.5], true, 1.0),
        ];
        let loose = fit(&rows, 1e3).unwrap_or_else(|e| panic!("{e}"));
        let tight = fit(&rows, 1e-2).unwrap_or_else(|e| panic!("{e}"));
        assert!(tight.weights[0].abs() < loose.weights[0].abs());
        // Weighting one row up pulls the fit towards it.
        let mut heavy = rows.clone();
        heavy[2].2 = 10.0;
        let pulled = fit(&heavy, 1e3).unwrap_or_else(|e| panic!("{e}"));
        assert!(pulled.probability(&[0.5]) < loose.probability(&[0.5]));
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        assert_eq!(fit(&[], 1.0), Err(FitError::Empty));
        let ragged = vec![(vec![1.0], true, 1.0), (vec![1.0, 2.0], false, 1.0)];
        assert!(matches!(
            fit(&ragged, 1.0),
            Err(FitError::Ragged { row: 1, .. })
        ));
        let nan = vec![(vec![f64::NAN], true, 1.0)];
        assert_eq!(fit(&nan, 1.0), Err(FitError::NotFinite { row: 0 }));
        let constant = vec![(vec![1.0, 1.0], true, 1.0), (vec![1.0, 1.0], false, 1.0)];
        // Duplicated features are held by the ridge term; only a huge c lets them go singular.
        assert!(fit(&constant, 1.0).is_ok());
    }
}
