//! Clustering-quality metrics: BCubed, pairwise and cross-lingual pair scores, and a
//! per-article cross-lingual recall.
//!
//! Everything is computed from contingency counts (how many articles each (gold,
//! predicted, language) combination holds), never by visiting article pairs, so a
//! 499-article event costs no more than a small one.
//!
//! **Undefined ratios are `None`**, never 0 and never a division by zero: precision is
//! `None` when no pair was predicted, recall when the gold has no pair (BCubed is `None`
//! only for an empty input). F1 is the harmonic mean when precision and recall are both
//! defined (0 when both are 0); when one is undefined, F1 is 0 if the other is 0 (the
//! harmonic mean with a 0 is 0 whatever the other value) and `None` otherwise. So
//! all-singletons scores pairwise precision `None`, recall 0, F1 0, and a perfect
//! prediction scores 1 wherever a value is defined.

use std::{collections::HashMap, fmt, hash::Hash};

use concord_core::Lang;
use serde::Serialize;

/// Precision, recall and their F1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Prf {
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f1: Option<f64>,
}

impl Prf {
    /// F1 of `precision` and `recall`, by the rules in the [module docs](self).
    pub fn new(precision: Option<f64>, recall: Option<f64>) -> Self {
        let f1 = match (precision, recall) {
            (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
            (Some(_), Some(_)) => Some(0.0),
            (Some(x), None) | (None, Some(x)) if x == 0.0 => Some(0.0),
            _ => None,
        };
        Self {
            precision,
            recall,
            f1,
        }
    }
}

/// Scores over unordered article pairs that share a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PairStats {
    /// Pairs in the same gold event.
    pub gold_pairs: u64,
    /// Pairs in the same predicted cluster.
    pub predicted_pairs: u64,
    /// Pairs in the same gold event and the same predicted cluster.
    pub true_pairs: u64,
    /// `true_pairs / predicted_pairs`, `true_pairs / gold_pairs`, and F1.
    #[serde(flatten)]
    pub scores: Prf,
}

impl PairStats {
    pub fn from_counts(gold_pairs: u64, predicted_pairs: u64, true_pairs: u64) -> Self {
        Self {
            gold_pairs,
            predicted_pairs,
            true_pairs,
            scores: Prf::new(
                ratio(true_pairs, predicted_pairs),
                ratio(true_pairs, gold_pairs),
            ),
        }
    }
}

/// [`PairStats`] restricted to pairs whose two articles have languages `a` and `b`
/// (`a <= b`; `a == b` for monolingual pairs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LangPairStats {
    pub a: Lang,
    pub b: Lang,
    #[serde(flatten)]
    pub stats: PairStats,
}

/// How well a predicted clustering matches the gold events.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scores {
    pub articles: usize,
    pub gold_clusters: usize,
    pub predicted_clusters: usize,
    /// Per-article BCubed precision and recall, averaged over articles; F1 of the averages.
    pub bcubed: Prf,
    /// Over all unordered same-cluster pairs ("standard" F1 of Miranda et al. 2018).
    pub pairwise: PairStats,
    /// Over the pairs whose two articles differ in language; `recall` is the share of
    /// cross-lingual gold pairs the prediction put together.
    pub cross_lingual: PairStats,
    /// Cross-lingual recall per article, BCubed style: for each article with gold
    /// partners in other languages, the share of them its predicted cluster holds,
    /// averaged over those articles (`None` when no article has one). Unlike the pair
    /// recall above, one huge event cannot dominate it (OG2021's largest event holds over
    /// half of all cross-lingual gold pairs).
    pub cross_lingual_bcubed_recall: Option<f64>,
    /// One entry for every unordered pair of languages present in the input (same-language
    /// pairs included), sorted by `(a, b)`.
    pub lang_pairs: Vec<LangPairStats>,
}

impl Scores {
    /// The entry for languages `a` and `b`, in either order.
    pub fn lang_pair(&self, a: Lang, b: Lang) -> Option<&LangPairStats> {
        let (a, b) = if a <= b { (a, b) } else { (b, a) };
        self.lang_pairs.iter().find(|p| p.a == a && p.b == b)
    }
}

/// Scores `items`, one `(gold label, predicted cluster, language)` per article. The
/// predicted cluster may be any label type (`ClusterId`, `u64`, `&str`); only which
/// articles share a label matters, on either side.
pub fn score<P: Eq + Hash>(items: &[(&str, P, Lang)]) -> Scores {
    // Dense ids for gold labels, predicted labels and languages.
    let mut gold_ids: HashMap<&str, usize> = HashMap::new();
    let mut pred_ids: HashMap<&P, usize> = HashMap::new();
    let mut langs: Vec<Lang> = items.iter().map(|(_, _, lang)| *lang).collect();
    langs.sort_unstable();
    langs.dedup();
    let lang_index: HashMap<Lang, usize> = langs.iter().enumerate().map(|(i, l)| (*l, i)).collect();

    // (gold, predicted, language) of every article, as dense ids.
    let mut rows = Vec::with_capacity(items.len());
    for (gold, predicted, lang) in items {
        let next = gold_ids.len();
        let g = *gold_ids.entry(gold).or_insert(next);
        let next = pred_ids.len();
        let p = *pred_ids.entry(predicted).or_insert(next);
        rows.push((g, p, lang_index[lang]));
    }

    let gold_pairs = PairMatrix::count(langs.len(), rows.iter().map(|&(g, _, l)| (g, l)));
    let pred_pairs = PairMatrix::count(langs.len(), rows.iter().map(|&(_, p, l)| (p, l)));
    let true_pairs = PairMatrix::count(langs.len(), rows.iter().map(|&(g, p, l)| ((g, p), l)));

    let mut lang_pairs = Vec::new();
    for a in 0..langs.len() {
        for b in a..langs.len() {
            lang_pairs.push(LangPairStats {
                a: langs[a],
                b: langs[b],
                stats: PairStats::from_counts(
                    gold_pairs.get(a, b),
                    pred_pairs.get(a, b),
                    true_pairs.get(a, b),
                ),
            });
        }
    }

    Scores {
        articles: items.len(),
        gold_clusters: gold_ids.len(),
        predicted_clusters: pred_ids.len(),
        bcubed: bcubed(&rows, gold_ids.len(), pred_ids.len()),
        pairwise: PairStats::from_counts(
            gold_pairs.total(),
            pred_pairs.total(),
            true_pairs.total(),
        ),
        cross_lingual: PairStats::from_counts(
            gold_pairs.cross(),
            pred_pairs.cross(),
            true_pairs.cross(),
        ),
        cross_lingual_bcubed_recall: cross_lingual_bcubed_recall(&rows),
        lang_pairs,
    }
}

/// An article in cell (g, p, l) has `|g| − |g ∩ l|` gold partners in other languages, and
/// `|g ∩ p| − |g ∩ p ∩ l|` of them share its predicted cluster. Summed per cell in key
/// order, so the result does not depend on hash order.
fn cross_lingual_bcubed_recall(rows: &[(usize, usize, usize)]) -> Option<f64> {
    use std::collections::BTreeMap;
    let mut gpl: BTreeMap<(usize, usize, usize), u64> = BTreeMap::new();
    let mut gp: HashMap<(usize, usize), u64> = HashMap::new();
    let mut gl: HashMap<(usize, usize), u64> = HashMap::new();
    let mut g_size: HashMap<usize, u64> = HashMap::new();
    for &(g, p, l) in rows {
        *gpl.entry((g, p, l)).or_insert(0) += 1;
        *gp.entry((g, p)).or_insert(0) += 1;
        *gl.entry((g, l)).or_insert(0) += 1;
        *g_size.entry(g).or_insert(0) += 1;
    }
    let mut sum = 0.0;
    let mut articles = 0u64;
    for (&(g, p, l), &n) in &gpl {
        let partners = g_size[&g] - gl[&(g, l)];
        if partners == 0 {
            continue;
        }
        let together = gp[&(g, p)] - n;
        sum += n as f64 * together as f64 / partners as f64;
        articles += n;
    }
    (articles > 0).then(|| sum / articles as f64)
}

/// BCubed from the contingency table: an article in cell (g, p) has precision
/// `n_gp / |p|` and recall `n_gp / |g|`, so the cell's `n_gp` articles contribute
/// `n_gp² / |p|` and `n_gp² / |g|`. The squares are summed exactly per cluster first and
/// the clusters in id order, so the result does not depend on hash order.
fn bcubed(rows: &[(usize, usize, usize)], n_gold: usize, n_pred: usize) -> Prf {
    if rows.is_empty() {
        return Prf::new(None, None);
    }
    let mut cells: HashMap<(usize, usize), u64> = HashMap::new();
    for &(g, p, _) in rows {
        *cells.entry((g, p)).or_insert(0) += 1;
    }
    // (size, Σ n²) per gold and per predicted cluster.
    let mut gold = vec![(0u64, 0u64); n_gold];
    let mut pred = vec![(0u64, 0u64); n_pred];
    for (&(g, p), &n) in &cells {
        for cluster in [&mut gold[g], &mut pred[p]] {
            cluster.0 += n;
            cluster.1 += n * n;
        }
    }
    let mean = |clusters: &[(u64, u64)]| {
        let sum: f64 = clusters
            .iter()
            .map(|&(size, squares)| squares as f64 / size as f64)
            .sum();
        sum / rows.len() as f64
    };
    Prf::new(Some(mean(&pred)), Some(mean(&gold)))
}

/// Unordered same-group article pairs, counted per unordered language pair.
struct PairMatrix {
    langs: usize,
    /// Row-major `langs × langs`; only `[a][b]` with `a <= b` is used.
    counts: Vec<u64>,
}

impl PairMatrix {
    /// Counts from `(group, language)` per article: a group with `n_l` articles in
    /// language `l` holds `C(n_l, 2)` pairs in `(l, l)` and `n_l · n_m` in `(l, m)`.
    fn count<K: Eq + Hash>(langs: usize, articles: impl Iterator<Item = (K, usize)>) -> Self {
        let mut per_group: HashMap<K, Vec<u64>> = HashMap::new();
        for (group, lang) in articles {
            per_group.entry(group).or_insert_with(|| vec![0; langs])[lang] += 1;
        }
        let mut counts = vec![0u64; langs * langs];
        for sizes in per_group.values() {
            let present: Vec<(usize, u64)> = sizes
                .iter()
                .copied()
                .enumerate()
                .filter(|&(_, n)| n > 0)
                .collect();
            for (i, &(a, na)) in present.iter().enumerate() {
                counts[a * langs + a] += na * (na - 1) / 2;
                for &(b, nb) in &present[i + 1..] {
                    counts[a * langs + b] += na * nb;
                }
            }
        }
        Self { langs, counts }
    }

    fn get(&self, a: usize, b: usize) -> u64 {
        let (a, b) = if a <= b { (a, b) } else { (b, a) };
        self.counts[a * self.langs + b]
    }

    fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    fn cross(&self) -> u64 {
        self.total() - (0..self.langs).map(|a| self.get(a, a)).sum::<u64>()
    }
}

fn ratio(numerator: u64, denominator: u64) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

/// A markdown table for humans: the summary scores, then one row per language pair.
impl fmt::Display for Scores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} articles, {} gold clusters, {} predicted clusters",
            self.articles, self.gold_clusters, self.predicted_clusters
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "| metric | precision | recall | F1 | gold pairs | predicted pairs | true pairs |"
        )?;
        writeln!(f, "|---|---:|---:|---:|---:|---:|---:|")?;
        let b = &self.bcubed;
        writeln!(
            f,
            "| BCubed | {} | {} | {} | | | |",
            Num(b.precision),
            Num(b.recall),
            Num(b.f1)
        )?;
        pair_row(f, "pairwise", &self.pairwise)?;
        pair_row(f, "cross-lingual pairs", &self.cross_lingual)?;
        writeln!(
            f,
            "| cross-lingual per article (BCubed) | | {} | | | | |",
            Num(self.cross_lingual_bcubed_recall)
        )?;
        if !self.lang_pairs.is_empty() {
            writeln!(f)?;
            writeln!(
                f,
                "| languages | precision | recall | F1 | gold pairs | predicted pairs | true pairs |"
            )?;
            writeln!(f, "|---|---:|---:|---:|---:|---:|---:|")?;
            for pair in &self.lang_pairs {
                pair_row(f, &format!("{}-{}", pair.a, pair.b), &pair.stats)?;
            }
        }
        Ok(())
    }
}

fn pair_row(f: &mut fmt::Formatter<'_>, name: &str, stats: &PairStats) -> fmt::Result {
    let s = &stats.scores;
    writeln!(
        f,
        "| {name} | {} | {} | {} | {} | {} | {} |",
        Num(s.precision),
        Num(s.recall),
        Num(s.f1),
        stats.gold_pairs,
        stats.predicted_pairs,
        stats.true_pairs
    )
}

/// A score to 4 decimals, or `n/a` when undefined.
struct Num(Option<f64>);

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(x) => write!(f, "{x:.4}"),
            None => f.write_str("n/a"),
        }
    }
}
