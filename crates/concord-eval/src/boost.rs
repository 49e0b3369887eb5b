//! Gradient-boosted regression trees for a yes/no label (log-loss), histogram
//! based, with monotone constraints: the fit behind `concord fit-join --trees`
//! (the clusterer's `join_rule = "boosted"` scores with what it writes).
//!
//! The algorithm is scikit-learn's `HistGradientBoostingClassifier`'s, written
//! out for a few dozen inputs and some 10⁵ rows: each input binned once at up to
//! `max_bins` thresholds (midpoints between distinct values, or quantiles when
//! there are more); each round fits a depth-limited tree to the gradient and
//! hessian of the weighted log-loss, leaves `-G / (H + l2)` shrunk by the
//! learning rate. A monotone input (+1: the log-odds may only rise with it; -1:
//! only fall) keeps only splits whose left leaf is on the right side of its right
//! one, and passes the midpoint of the two down as a bound on every leaf below,
//! so the whole sum stays monotone in it. Deterministic: no subsampling, ties go
//! to the first input and the lowest threshold.

use crate::logistic::{FitError, check_rows};

/// How to grow the trees.
#[derive(Debug, Clone, PartialEq)]
pub struct BoostParams {
    /// Rounds: one tree each.
    pub iterations: usize,
    /// Splits from the root to a leaf (2: at most four leaves).
    pub max_depth: usize,
    /// Each tree's leaves are multiplied by this.
    pub learning_rate: f64,
    /// L2 penalty on leaf values (`-G / (H + l2)`).
    pub l2: f64,
    /// Rows (not weights) each leaf must hold.
    pub min_leaf_rows: usize,
    /// Thresholds per input, at most 255.
    pub max_bins: usize,
    /// Per input: +1, -1 or 0 (unconstrained). Shorter than the inputs: the rest 0.
    pub monotone: Vec<i8>,
}

impl Default for BoostParams {
    fn default() -> Self {
        Self {
            iterations: 200,
            max_depth: 2,
            learning_rate: 0.05,
            l2: 1.0,
            min_leaf_rows: 20,
            max_bins: 255,
            monotone: Vec::new(),
        }
    }
}

/// One node: `x[input] <= at` goes to `left`. Children come after their parent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TreeNode {
    Split {
        input: usize,
        at: f64,
        left: usize,
        right: usize,
    },
    Leaf(f64),
}

/// A fitted model: log-odds = `base` + each tree's leaf.
#[derive(Debug, Clone, PartialEq)]
pub struct Boosted {
    pub base: f64,
    pub trees: Vec<Vec<TreeNode>>,
}

impl Boosted {
    pub fn logit(&self, x: &[f64]) -> f64 {
        let mut sum = self.base;
        for tree in &self.trees {
            let mut at = 0;
            loop {
                match tree[at] {
                    TreeNode::Leaf(v) => {
                        sum += v;
                        break;
                    }
                    TreeNode::Split {
                        input,
                        at: threshold,
                        left,
                        right,
                    } => at = if x[input] <= threshold { left } else { right },
                }
            }
        }
        sum
    }

    pub fn probability(&self, x: &[f64]) -> f64 {
        1.0 / (1.0 + (-self.logit(x)).exp())
    }
}

/// The weighted mean log-loss of `model` on `rows` (features, label, weight).
pub fn log_loss(rows: &[(Vec<f64>, bool, f64)], logit: impl Fn(&[f64]) -> f64) -> f64 {
    let (mut sum, mut total) = (0.0, 0.0);
    for (x, y, w) in rows {
        let z = logit(x);
        // log(1 + e^-z) for a positive, log(1 + e^z) for a negative, stably.
        let m = if *y { -z } else { z };
        sum += w * (m.max(0.0) + (-m.abs()).exp().ln_1p());
        total += w;
    }
    if total > 0.0 { sum / total } else { 0.0 }
}

/// Bin edges of one input: midpoints between its distinct values, or, with more
/// than `max_bins + 1` of them, values at evenly spaced ranks.
fn thresholds(values: &mut [f64], max_bins: usize) -> Vec<f64> {
    values.sort_by(f64::total_cmp);
    let mut distinct: Vec<f64> = Vec::new();
    for &v in values.iter() {
        if distinct.last() != Some(&v) {
            distinct.push(v);
        }
    }
    if distinct.len() <= max_bins + 1 {
        return distinct.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect();
    }
    let n = values.len();
    let mut out: Vec<f64> = (1..=max_bins)
        .map(|k| values[(k * n / (max_bins + 1)).min(n - 1)])
        .collect();
    out.dedup();
    // The largest value is no threshold (nothing would go right of it).
    if out.last() == distinct.last() {
        out.pop();
    }
    out
}

/// A leaf's loss term for gradient `g`, hessian `h` at value `v`: `g·v + (h+l2)·v²/2`.
fn loss(g: f64, h: f64, l2: f64, v: f64) -> f64 {
    g * v + 0.5 * (h + l2) * v * v
}

struct Grower<'a> {
    params: &'a BoostParams,
    /// Per input, each row's bin.
    bins: Vec<Vec<u8>>,
    edges: Vec<Vec<f64>>,
    grad: Vec<f64>,
    hess: Vec<f64>,
}

struct Best {
    gain: f64,
    input: usize,
    bin: usize,
    left: f64,
    right: f64,
}

impl Grower<'_> {
    fn value(&self, g: f64, h: f64, lo: f64, hi: f64) -> f64 {
        (-g / (h + self.params.l2)).clamp(lo, hi)
    }

    /// Grows the node for `rows` at `depth` within leaf bounds `[lo, hi]`, pushes
    /// it (and its subtree) to `nodes`, and adds its leaves to `scores`.
    fn grow(
        &self,
        rows: &[u32],
        depth: usize,
        (lo, hi): (f64, f64),
        nodes: &mut Vec<TreeNode>,
        scores: &mut [f64],
    ) {
        let (g, h) = rows.iter().fold((0.0, 0.0), |(g, h), &r| {
            (g + self.grad[r as usize], h + self.hess[r as usize])
        });
        let value = self.value(g, h, lo, hi);
        let at = nodes.len();
        let best = if depth < self.params.max_depth && rows.len() >= 2 * self.params.min_leaf_rows {
            self.best_split(rows, g, h, value, (lo, hi))
        } else {
            None
        };
        let Some(best) = best else {
            let leaf = self.params.learning_rate * value;
            nodes.push(TreeNode::Leaf(leaf));
            for &r in rows {
                scores[r as usize] += leaf;
            }
            return;
        };
        let (left_rows, right_rows): (Vec<u32>, Vec<u32>) = rows
            .iter()
            .partition(|&&r| usize::from(self.bins[best.input][r as usize]) <= best.bin);
        let mid = (best.left + best.right) / 2.0;
        let (left_bounds, right_bounds) = match self.monotone(best.input) {
            1 => ((lo, mid), (mid, hi)),
            -1 => ((mid, hi), (lo, mid)),
            _ => ((lo, hi), (lo, hi)),
        };
        nodes.push(TreeNode::Leaf(0.0));
        let left = nodes.len();
        self.grow(&left_rows, depth + 1, left_bounds, nodes, scores);
        let right = nodes.len();
        self.grow(&right_rows, depth + 1, right_bounds, nodes, scores);
        nodes[at] = TreeNode::Split {
            input: best.input,
            at: self.edges[best.input][best.bin],
            left,
            right,
        };
    }

    fn monotone(&self, input: usize) -> i8 {
        self.params.monotone.get(input).copied().unwrap_or(0)
    }

    fn best_split(
        &self,
        rows: &[u32],
        g: f64,
        h: f64,
        value: f64,
        (lo, hi): (f64, f64),
    ) -> Option<Best> {
        let l2 = self.params.l2;
        let min_rows = self.params.min_leaf_rows;
        let parent = loss(g, h, l2, value);
        let mut best: Option<Best> = None;
        for (input, edges) in self.edges.iter().enumerate() {
            if edges.is_empty() {
                continue;
            }
            let nb = edges.len() + 1;
            let mut hist = vec![(0.0f64, 0.0f64, 0usize); nb];
            let bins = &self.bins[input];
            for &r in rows {
                let b = &mut hist[usize::from(bins[r as usize])];
                b.0 += self.grad[r as usize];
                b.1 += self.hess[r as usize];
                b.2 += 1;
            }
            let (mut gl, mut hl, mut nl) = (0.0, 0.0, 0usize);
            for (bin, &(bg, bh, bn)) in hist.iter().enumerate().take(nb - 1) {
                gl += bg;
                hl += bh;
                nl += bn;
                let nr = rows.len() - nl;
                if nl < min_rows || bn == 0 {
                    continue;
                }
                if nr < min_rows {
                    break;
                }
                let (gr, hr) = (g - gl, h - hl);
                if hl < 1e-3 || hr < 1e-3 {
                    continue;
                }
                let (vl, vr) = (self.value(gl, hl, lo, hi), self.value(gr, hr, lo, hi));
                match self.monotone(input) {
                    1 if vl > vr => continue,
                    -1 if vl < vr => continue,
                    _ => {}
                }
                let gain = parent - loss(gl, hl, l2, vl) - loss(gr, hr, l2, vr);
                if gain > 1e-12 && best.as_ref().is_none_or(|b| gain > b.gain) {
                    best = Some(Best {
                        gain,
                        input,
                        bin,
                        left: vl,
                        right: vr,
                    });
                }
            }
        }
        best
    }
}

/// Fits `rows` (features, label, sample weight).
pub fn fit(rows: &[(Vec<f64>, bool, f64)], params: &BoostParams) -> Result<Boosted, FitError> {
    let dim = check_rows(rows)?;
    if !(1..=255).contains(&params.max_bins) || params.min_leaf_rows == 0 {
        return Err(FitError::Params(
            "max_bins must be 1 to 255 and min_leaf_rows at least 1",
        ));
    }
    if !(params.learning_rate > 0.0 && params.l2 >= 0.0) {
        return Err(FitError::Params(
            "the learning rate must be positive and l2 not negative",
        ));
    }
    let mut edges = Vec::with_capacity(dim);
    let mut bins = Vec::with_capacity(dim);
    for input in 0..dim {
        let mut values: Vec<f64> = rows.iter().map(|r| r.0[input]).collect();
        let e = thresholds(&mut values, params.max_bins);
        bins.push(
            rows.iter()
                .map(|r| e.partition_point(|t| *t < r.0[input]) as u8)
                .collect(),
        );
        edges.push(e);
    }
    let (pos, total) = rows.iter().fold((0.0, 0.0), |(p, t), (_, y, w)| {
        (p + if *y { *w } else { 0.0 }, t + w)
    });
    if pos <= 0.0 || pos >= total {
        return Err(FitError::Params("both labels must occur"));
    }
    let base = (pos / (total - pos)).ln();
    let mut scores = vec![base; rows.len()];
    let mut grower = Grower {
        params,
        bins,
        edges,
        grad: vec![0.0; rows.len()],
        hess: vec![0.0; rows.len()],
    };
    let all: Vec<u32> = (0..rows.len() as u32).collect();
    let mut trees = Vec::with_capacity(params.iterations);
    for _ in 0..params.iterations {
        for (i, (_, y, w)) in rows.iter().enumerate() {
            let p = 1.0 / (1.0 + (-scores[i]).exp());
            grower.grad[i] = w * (p - if *y { 1.0 } else { 0.0 });
            grower.hess[i] = w * p * (1.0 - p);
        }
        let mut nodes = Vec::new();
        grower.grow(
            &all,
            0,
            (f64::NEG_INFINITY, f64::INFINITY),
            &mut nodes,
            &mut scores,
        );
        trees.push(nodes);
    }
    Ok(Boosted { base, trees })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn params(monotone: Vec<i8>) -> BoostParams {
        BoostParams {
            iterations: 50,
            learning_rate: 0.2,
            min_leaf_rows: 5,
            monotone,
            ..BoostParams::default()
        }
    }

    /// y = 1 when x0 is in the middle band: a shape no monotone or linear model fits.
    fn band(n: usize) -> Vec<(Vec<f64>, bool, f64)> {
        (0..n)
            .map(|i| {
                let x = i as f64 / n as f64;
                (vec![x, (i % 7) as f64], (0.3..0.7).contains(&x), 1.0)
            })
            .collect()
    }

    #[test]
    fn trees_learn_a_band_a_line_cannot() {
        let rows = band(400);
        let model = fit(&rows, &params(vec![])).unwrap();
        assert!(model.probability(&[0.5, 0.0]) > 0.9);
        assert!(model.probability(&[0.1, 0.0]) < 0.1);
        assert!(model.probability(&[0.9, 0.0]) < 0.1);
        let fitted = log_loss(&rows, |x| model.logit(x));
        let constant = log_loss(&rows, |_| model.base);
        assert!(fitted < constant / 4.0, "{fitted} vs {constant}");
    }

    #[test]
    fn a_monotone_input_never_lowers_the_log_odds() {
        let rows = band(400);
        let model = fit(&rows, &params(vec![1])).unwrap();
        let mut last = f64::NEG_INFINITY;
        for i in 0..=100 {
            let z = model.logit(&[i as f64 / 100.0, 3.0]);
            assert!(z >= last - 1e-12, "log-odds fell at {i}: {last} -> {z}");
            last = z;
        }
        // Still learns the rising half of the band.
        assert!(model.logit(&[0.5, 3.0]) > model.logit(&[0.1, 3.0]) + 1.0);
    }

    #[test]
    fn bad_rows_and_parameters_are_refused() {
        assert_eq!(fit(&[], &params(vec![])), Err(FitError::Empty));
        let ragged = vec![(vec![0.0], true, 1.0), (vec![0.0, 1.0], false, 1.0)];
        assert!(matches!(
            fit(&ragged, &params(vec![])),
            Err(FitError::Ragged { row: 1, .. })
        ));
        let one_label = vec![(vec![0.0], true, 1.0), (vec![1.0], true, 1.0)];
        assert!(matches!(
            fit(&one_label, &params(vec![])),
            Err(FitError::Params(_))
        ));
        let bins = BoostParams {
            max_bins: 256,
            ..params(vec![])
        };
        assert!(matches!(fit(&band(50), &bins), Err(FitError::Params(_))));
    }

    #[test]
    fn many_distinct_values_get_at_most_max_bins_thresholds() {
        let mut values: Vec<f64> = (0..10_000).map(|i| (i as f64).sqrt()).collect();
        let t = thresholds(&mut values, 255);
        assert!(t.len() <= 255 && t.len() > 200);
        assert!(t.windows(2).all(|w| w[0] < w[1]));
        let mut few = vec![3.0, 1.0, 2.0, 2.0];
        assert_eq!(thresholds(&mut few, 255), vec![1.5, 2.5]);
    }

    proptest! {
        /// Whatever the data, each tree is well formed and monotone inputs stay so.
        #[test]
        fn trees_are_well_formed_and_monotone(
            data in prop::collection::vec((0.0f64..1.0, 0.0f64..1.0, any::<bool>(), 0.1f64..2.0), 20..120),
        ) {
            let rows: Vec<(Vec<f64>, bool, f64)> =
                data.iter().map(|(a, b, y, w)| (vec![*a, *b], *y, *w)).collect();
            prop_assume!(rows.iter().any(|r| r.1) && rows.iter().any(|r| !r.1));
            let model = fit(&rows, &BoostParams {
                iterations: 10,
                min_leaf_rows: 3,
                monotone: vec![-1, 0],
                ..BoostParams::default()
            }).unwrap();
            for tree in &model.trees {
                for (i, node) in tree.iter().enumerate() {
                    if let TreeNode::Split { left, right, input, .. } = node {
                        prop_assert!(*left > i && *right > i && *left < tree.len() && *right < tree.len());
                        prop_assert!(*input < 2);
                    }
                }
            }
            for b in [0.0, 0.5, 1.0] {
                let mut last = f64::INFINITY;
                for i in 0..=20 {
                    let z = model.logit(&[i as f64 / 20.0, b]);
                    prop_assert!(z <= last + 1e-9);
                    last = z;
                }
            }
        }
    }
}
