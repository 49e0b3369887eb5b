use std::collections::BTreeMap;

use concord_core::{ClusterId, Lang};
use concord_eval::{PairStats, Prf, Scores, score};
use proptest::prelude::*;

const EPS: f64 = 1e-12;

fn close(actual: Option<f64>, expected: f64) -> bool {
    actual.is_some_and(|a| (a - expected).abs() < EPS)
}

#[track_caller]
fn assert_prf(actual: Prf, precision: Option<f64>, recall: Option<f64>, f1: Option<f64>) {
    let same = |a: Option<f64>, e: Option<f64>| match (a, e) {
        (Some(a), Some(e)) => (a - e).abs() < EPS,
        (None, None) => true,
        _ => false,
    };
    assert!(
        same(actual.precision, precision) && same(actual.recall, recall) && same(actual.f1, f1),
        "got {actual:?}, expected P {precision:?} R {recall:?} F1 {f1:?}"
    );
}

#[track_caller]
fn assert_counts(stats: &PairStats, gold: u64, predicted: u64, correct: u64) {
    assert_eq!(
        (stats.gold_pairs, stats.predicted_pairs, stats.true_pairs),
        (gold, predicted, correct),
        "{stats:?}"
    );
}

/// Six articles, two gold events, three predicted clusters:
///
/// ```text
/// article  1   2   3   4   5   6
/// gold     A   A   A   B   B   B
/// pred     1   1   2   2   2   3
/// lang     en  en  fr  fr  en  de
/// ```
///
/// Cells (gold, pred): (A,1)=2, (A,2)=1, (B,2)=2, (B,3)=1; |A|=|B|=3, |1|=2, |2|=3, |3|=1.
///
/// BCubed precision per article: 2/2, 2/2, 1/3, 2/3, 2/3, 1/1 → sum 14/3, mean 7/9.
/// BCubed recall per article:    2/3, 2/3, 1/3, 2/3, 2/3, 1/3 → sum 10/3, mean 5/9.
/// F1 = 2·(7/9)(5/9) / (12/9) = 35/54.
///
/// Pairs: gold C(3,2)+C(3,2) = 6; predicted C(2,2)+C(3,2) = 4; true C(2,2)+C(2,2) = 2
/// ({1,2}, {4,5}) → P 1/2, R 1/3, F1 2/5.
///
/// Cross-lingual: gold A has en·fr = 2·1 = 2, B has 3 (all differ) → 5; predicted cluster 2
/// holds fr,fr,en → 2; true: {4,5} (fr,en) → 1. P 1/2, R 1/5, F1 2/7.
///
/// Per language pair (gold / predicted / true): de-de 0/0/0, de-en 1/0/0, de-fr 1/0/0,
/// en-en 1/1/1 ({1,2}), en-fr 3/2/1, fr-fr 0/1/0 ({3,4}).
fn six() -> Vec<(&'static str, u64, Lang)> {
    vec![
        ("A", 1, Lang::EN),
        ("A", 1, Lang::EN),
        ("A", 2, Lang::FR),
        ("B", 2, Lang::FR),
        ("B", 2, Lang::EN),
        ("B", 3, Lang::DE),
    ]
}

#[test]
fn six_articles_by_hand() {
    let s = score(&six());
    assert_eq!(
        (s.articles, s.gold_clusters, s.predicted_clusters),
        (6, 2, 3)
    );
    assert_prf(
        s.bcubed,
        Some(7.0 / 9.0),
        Some(5.0 / 9.0),
        Some(35.0 / 54.0),
    );
    assert_counts(&s.pairwise, 6, 4, 2);
    assert_prf(s.pairwise.scores, Some(0.5), Some(1.0 / 3.0), Some(0.4));
    assert_counts(&s.cross_lingual, 5, 2, 1);
    assert_prf(
        s.cross_lingual.scores,
        Some(0.5),
        Some(0.2),
        Some(2.0 / 7.0),
    );
}

/// Cross-lingual recall per article: 1, 2 (A, en) have partner 3 (fr) elsewhere → 0; 3
/// has 1, 2 elsewhere → 0; 4 (B, fr) has 5, 6 and shares a cluster with 5 → 1/2; 5 the
/// same → 1/2; 6 (de) has 4, 5 elsewhere → 0. Mean 1/6.
#[test]
fn six_articles_cross_lingual_per_article() {
    let s = score(&six());
    assert!(close(s.cross_lingual_bcubed_recall, 1.0 / 6.0), "{s:?}");
}

#[test]
fn cross_lingual_per_article_is_undefined_without_other_languages_and_whole_when_perfect() {
    let mono = vec![("A", 1, Lang::EN), ("A", 2, Lang::EN), ("B", 3, Lang::EN)];
    assert_eq!(score(&mono).cross_lingual_bcubed_recall, None);
    let perfect: Vec<(&str, &str, Lang)> = six().iter().map(|(g, _, l)| (*g, *g, *l)).collect();
    assert!(close(score(&perfect).cross_lingual_bcubed_recall, 1.0));
    let singletons: Vec<(&str, usize, Lang)> = six()
        .iter()
        .enumerate()
        .map(|(i, (g, _, l))| (*g, i, *l))
        .collect();
    assert!(close(score(&singletons).cross_lingual_bcubed_recall, 0.0));
}

#[test]
fn six_articles_per_language_pair() {
    let s = score(&six());
    let got: Vec<(&str, &str, u64, u64, u64)> = s
        .lang_pairs
        .iter()
        .map(|p| {
            let c = &p.stats;
            (
                p.a.as_str(),
                p.b.as_str(),
                c.gold_pairs,
                c.predicted_pairs,
                c.true_pairs,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("de", "de", 0, 0, 0),
            ("de", "en", 1, 0, 0),
            ("de", "fr", 1, 0, 0),
            ("en", "en", 1, 1, 1),
            ("en", "fr", 3, 2, 1),
            ("fr", "fr", 0, 1, 0),
        ]
    );
    let pair = |a, b| s.lang_pair(a, b).map(|p| p.stats.scores);
    assert_prf(
        pair(Lang::FR, Lang::EN).unwrap(),
        Some(0.5),
        Some(1.0 / 3.0),
        Some(0.4),
    );
    assert_prf(
        pair(Lang::EN, Lang::EN).unwrap(),
        Some(1.0),
        Some(1.0),
        Some(1.0),
    );
    // Nothing predicted, one gold pair missed: precision undefined, recall and F1 0.
    assert_prf(
        pair(Lang::EN, Lang::DE).unwrap(),
        None,
        Some(0.0),
        Some(0.0),
    );
    // One wrong pair predicted, no gold pair: recall undefined, precision and F1 0.
    assert_prf(
        pair(Lang::FR, Lang::FR).unwrap(),
        Some(0.0),
        None,
        Some(0.0),
    );
    // No pair on either side: nothing is defined.
    assert_prf(pair(Lang::DE, Lang::DE).unwrap(), None, None, None);
    assert!(
        pair(Lang::EN, Lang::AR).is_none(),
        "Arabic is not in the input"
    );
}

/// Gold events of sizes 3, 2 and 1 (n = 6).
fn three_two_one() -> Vec<(&'static str, Lang)> {
    vec![
        ("A", Lang::EN),
        ("A", Lang::FR),
        ("A", Lang::EN),
        ("B", Lang::DE),
        ("B", Lang::DE),
        ("C", Lang::EN),
    ]
}

#[test]
fn all_singletons() {
    let items: Vec<_> = three_two_one()
        .into_iter()
        .enumerate()
        .map(|(i, (g, l))| (g, i, l))
        .collect();
    let s = score(&items);
    assert_eq!((s.gold_clusters, s.predicted_clusters), (3, 6));
    // Precision 1 for every article; recall 1/|gold|: 3·(1/3) + 2·(1/2) + 1 = 3, mean 1/2.
    assert_prf(s.bcubed, Some(1.0), Some(0.5), Some(2.0 / 3.0));
    // Gold pairs C(3,2) + C(2,2) = 4, none predicted.
    assert_counts(&s.pairwise, 4, 0, 0);
    assert_prf(s.pairwise.scores, None, Some(0.0), Some(0.0));
    // Cross-lingual gold pairs: A has en·en·fr → 2.
    assert_counts(&s.cross_lingual, 2, 0, 0);
}

#[test]
fn all_in_one() {
    let items: Vec<_> = three_two_one()
        .into_iter()
        .map(|(g, l)| (g, ClusterId(7), l))
        .collect();
    let s = score(&items);
    assert_eq!((s.gold_clusters, s.predicted_clusters), (3, 1));
    // Precision |gold|/6 per article: (3·3 + 2·2 + 1·1)/36 = 7/18; recall 1.
    // F1 = 2·(7/18) / (25/18) = 14/25.
    assert_prf(s.bcubed, Some(7.0 / 18.0), Some(1.0), Some(14.0 / 25.0));
    // Predicted pairs C(6,2) = 15, of which the 4 gold pairs are true.
    assert_counts(&s.pairwise, 4, 15, 4);
    assert_prf(
        s.pairwise.scores,
        Some(4.0 / 15.0),
        Some(1.0),
        Some(8.0 / 19.0),
    );
    // Cross-lingual: 15 - C(3 en,2) - C(2 de,2) - C(1 fr,2) = 15 - 3 - 1 = 11 predicted.
    assert_counts(&s.cross_lingual, 2, 11, 2);
    assert_prf(
        s.cross_lingual.scores,
        Some(2.0 / 11.0),
        Some(1.0),
        Some(4.0 / 13.0),
    );
}

#[test]
fn empty_input_is_undefined_not_nan() {
    let s = score::<u64>(&[]);
    assert_eq!(
        (s.articles, s.gold_clusters, s.predicted_clusters),
        (0, 0, 0)
    );
    assert_prf(s.bcubed, None, None, None);
    assert_prf(s.pairwise.scores, None, None, None);
    assert!(s.lang_pairs.is_empty());
}

#[test]
fn json_and_table_render() {
    let s = score(&six());
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["pairwise"]["gold_pairs"], 6);
    assert_eq!(json["pairwise"]["precision"], 0.5);
    assert_eq!(json["lang_pairs"][0]["a"], "de");
    assert_eq!(json["lang_pairs"][0]["precision"], serde_json::Value::Null);
    let table = s.to_string();
    assert!(
        table.contains("| BCubed | 0.7778 | 0.5556 | 0.6481 |"),
        "{table}"
    );
    assert!(
        table.contains("| pairwise | 0.5000 | 0.3333 | 0.4000 | 6 | 4 | 2 |"),
        "{table}"
    );
    assert!(
        table.contains("| de-de | n/a | n/a | n/a | 0 | 0 | 0 |"),
        "{table}"
    );
}

// ---- properties ----

const LANGS: [Lang; 4] = [Lang::EN, Lang::FR, Lang::DE, Lang::AR];

/// Up to 40 articles as (gold, predicted, language) small integers.
fn articles() -> impl Strategy<Value = Vec<(u8, u8, Lang)>> {
    prop::collection::vec(
        (0u8..6, 0u8..6, prop::sample::select(LANGS.to_vec())),
        0..40,
    )
}

fn gold_labels(articles: &[(u8, u8, Lang)]) -> Vec<String> {
    articles.iter().map(|(g, _, _)| format!("g{g}")).collect()
}

fn scored(articles: &[(u8, u8, Lang)], labels: &[String]) -> Scores {
    let items: Vec<_> = articles
        .iter()
        .zip(labels)
        .map(|(&(_, p, l), g)| (g.as_str(), p, l))
        .collect();
    score(&items)
}

fn all_prf(s: &Scores) -> Vec<Prf> {
    let mut all = vec![s.bcubed, s.pairwise.scores, s.cross_lingual.scores];
    all.extend(s.lang_pairs.iter().map(|p| p.stats.scores));
    all
}

/// O(n²) reference: per language pair, (gold, predicted, true) pair counts, and the
/// BCubed precision and recall sums.
#[allow(clippy::type_complexity)]
fn brute_force(articles: &[(u8, u8, Lang)]) -> (BTreeMap<(Lang, Lang), (u64, u64, u64)>, f64, f64) {
    let mut pairs = BTreeMap::new();
    for (i, &(gi, pi, li)) in articles.iter().enumerate() {
        for &(gj, pj, lj) in &articles[i + 1..] {
            let key = if li <= lj { (li, lj) } else { (lj, li) };
            let entry: &mut (u64, u64, u64) = pairs.entry(key).or_default();
            entry.0 += u64::from(gi == gj);
            entry.1 += u64::from(pi == pj);
            entry.2 += u64::from(gi == gj && pi == pj);
        }
    }
    let (mut precision, mut recall) = (0.0, 0.0);
    for &(g, p, _) in articles {
        let both = articles.iter().filter(|a| a.0 == g && a.1 == p).count() as f64;
        precision += both / articles.iter().filter(|a| a.1 == p).count() as f64;
        recall += both / articles.iter().filter(|a| a.0 == g).count() as f64;
    }
    (pairs, precision, recall)
}

proptest! {
    #[test]
    fn scores_are_within_zero_and_one(articles in articles()) {
        let s = scored(&articles, &gold_labels(&articles));
        for prf in all_prf(&s) {
            for x in [prf.precision, prf.recall, prf.f1].into_iter().flatten() {
                prop_assert!((0.0..=1.0).contains(&x), "{x} in {s:?}");
            }
        }
        prop_assert!(s.pairwise.true_pairs <= s.pairwise.gold_pairs.min(s.pairwise.predicted_pairs));
        if let Some(x) = s.cross_lingual_bcubed_recall {
            prop_assert!((0.0..=1.0).contains(&x), "{x} in {s:?}");
        }
        prop_assert_eq!(s.cross_lingual_bcubed_recall.is_some(), s.cross_lingual.gold_pairs > 0);
        prop_assert!(s.gold_clusters <= s.articles && s.predicted_clusters <= s.articles);
    }

    #[test]
    fn perfect_prediction_scores_one_under_any_relabelling(
        articles in articles(),
        relabel in Just((0u64..6).collect::<Vec<_>>()).prop_shuffle(),
    ) {
        let labels = gold_labels(&articles);
        let items: Vec<_> = articles
            .iter()
            .zip(&labels)
            .map(|(&(g, _, l), label)| (label.as_str(), ClusterId(relabel[usize::from(g)] * 1000), l))
            .collect();
        let s = score(&items);
        prop_assert_eq!(s.gold_clusters, s.predicted_clusters);
        for prf in all_prf(&s) {
            for x in [prf.precision, prf.recall, prf.f1].into_iter().flatten() {
                prop_assert!((x - 1.0).abs() < EPS, "{x} in {s:?}");
            }
        }
        if !articles.is_empty() {
            prop_assert!(close(s.bcubed.f1, 1.0));
        }
        if let Some(x) = s.cross_lingual_bcubed_recall {
            prop_assert!((x - 1.0).abs() < EPS, "{x} in {s:?}");
        }
        // Undefined only where there is nothing to count.
        let p = &s.pairwise;
        prop_assert_eq!(p.scores.f1.is_none(), p.gold_pairs == 0);
    }

    #[test]
    fn contingency_counts_match_brute_force(articles in articles()) {
        let s = scored(&articles, &gold_labels(&articles));
        let (pairs, precision, recall) = brute_force(&articles);

        let sum = |f: fn(&(u64, u64, u64)) -> u64| pairs.values().map(f).sum::<u64>();
        prop_assert_eq!(s.pairwise.gold_pairs, sum(|c| c.0));
        prop_assert_eq!(s.pairwise.predicted_pairs, sum(|c| c.1));
        prop_assert_eq!(s.pairwise.true_pairs, sum(|c| c.2));
        let cross = |f: fn(&(u64, u64, u64)) -> u64| {
            pairs.iter().filter(|((a, b), _)| a != b).map(|(_, c)| f(c)).sum::<u64>()
        };
        prop_assert_eq!(s.cross_lingual.gold_pairs, cross(|c| c.0));
        prop_assert_eq!(s.cross_lingual.predicted_pairs, cross(|c| c.1));
        prop_assert_eq!(s.cross_lingual.true_pairs, cross(|c| c.2));
        for p in &s.lang_pairs {
            let c = pairs.get(&(p.a, p.b)).copied().unwrap_or_default();
            prop_assert_eq!((p.stats.gold_pairs, p.stats.predicted_pairs, p.stats.true_pairs), c);
        }
        // Every language pair with a pair of articles is reported.
        for key in pairs.keys() {
            prop_assert!(s.lang_pair(key.0, key.1).is_some());
        }
        if !articles.is_empty() {
            let n = articles.len() as f64;
            prop_assert!(close(s.bcubed.precision, precision / n));
            prop_assert!(close(s.bcubed.recall, recall / n));
        }
    }

    #[test]
    fn swapping_gold_and_prediction_swaps_precision_and_recall(articles in articles()) {
        let s = scored(&articles, &gold_labels(&articles));
        let preds: Vec<String> = articles.iter().map(|(_, p, _)| format!("p{p}")).collect();
        let swapped: Vec<_> =
            articles.iter().zip(&preds).map(|(&(g, _, l), p)| (p.as_str(), g, l)).collect();
        let t = score(&swapped);
        let approx = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => (a - b).abs() < EPS,
            (a, b) => a.is_none() && b.is_none(),
        };
        for (x, y) in all_prf(&s).into_iter().zip(all_prf(&t)) {
            prop_assert!(approx(x.precision, y.recall) && approx(x.recall, y.precision) && approx(x.f1, y.f1));
        }
    }
}
