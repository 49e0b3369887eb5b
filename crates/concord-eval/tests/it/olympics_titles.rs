//! The real OG2021 file, checked against the numbers in its README.

use std::collections::{BTreeMap, HashMap, HashSet};

use concord_core::Lang;
use concord_eval::{OG2021_TUNE_UNTIL, Scores, score};
use jiff::civil::date;

use crate::data::og2021;

#[track_caller]
fn assert_near(actual: Option<f64>, expected: f64, tolerance: f64) {
    let actual = actual.unwrap_or(f64::NAN);
    assert!(
        (actual - expected).abs() <= tolerance,
        "{actual} is not {expected} ± {tolerance}"
    );
}

fn score_with<P: Eq + std::hash::Hash>(predict: impl Fn(&concord_eval::Item) -> P) -> Scores {
    let items: Vec<_> = og2021()
        .items
        .iter()
        .map(|i| (i.gold.as_str(), predict(i), i.lang))
        .collect();
    score(&items)
}

#[test]
fn counts_match_the_readme() {
    let data = og2021();
    assert_eq!(data.len(), 10_940);
    assert_eq!(data.gold_clusters(), 1_350);
    let counts: BTreeMap<&str, usize> = data
        .lang_counts()
        .into_iter()
        .map(|(l, n)| (l.iso639_3(), n))
        .collect();
    let expected = [
        ("eng", 4009),
        ("por", 2410),
        ("spa", 2049),
        ("fra", 845),
        ("rus", 553),
        ("deu", 516),
        ("slv", 331),
        ("ara", 218),
        ("zho", 9),
    ];
    assert_eq!(counts, expected.into_iter().collect());
    let missing_reference = data.items.iter().filter(|i| i.reference.is_none()).count();
    assert_eq!(missing_reference, 2_408);
    let keys: HashSet<&str> = data.items.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(keys.len(), data.len());
    assert!(
        data.items
            .iter()
            .all(|i| !i.title.is_empty() && i.body.is_empty())
    );
}

#[test]
fn multilingual_events_match_the_readme() {
    let mut langs: HashMap<&str, HashSet<Lang>> = HashMap::new();
    for item in &og2021().items {
        langs
            .entry(item.gold.as_str())
            .or_default()
            .insert(item.lang);
    }
    assert_eq!(langs.values().filter(|l| l.len() > 1).count(), 375);
    // 61.8% of same-event pairs are cross-lingual; the largest event has 499 articles.
    let perfect = score_with(|i| i.gold.clone());
    let share = perfect.cross_lingual.gold_pairs as f64 / perfect.pairwise.gold_pairs as f64;
    assert!((share - 0.618).abs() < 0.0005, "{share}");
    let mut sizes: HashMap<&str, usize> = HashMap::new();
    for item in &og2021().items {
        *sizes.entry(item.gold.as_str()).or_default() += 1;
    }
    assert_eq!(sizes.values().max(), Some(&499));
}

#[test]
fn items_are_in_replay_order() {
    let data = og2021();
    assert!(
        data.items
            .windows(2)
            .all(|w| w[0].published_at <= w[1].published_at)
    );
    let first = &data.items[0];
    assert_eq!(first.key, "6628239427");
    assert_eq!(first.published_at.to_string(), "2021-07-01T08:01:00Z");
    assert_eq!(first.lang, Lang::EN);
    assert_eq!(
        data.date_range(),
        Some((date(2021, 7, 1), date(2021, 8, 14)))
    );
}

#[test]
fn tune_split_is_the_midpoint_and_partitions_the_data() {
    let data = og2021();
    assert_eq!(OG2021_TUNE_UNTIL, date(2021, 7, 23));
    assert_eq!(data.split_date(), Some(OG2021_TUNE_UNTIL));
    let tune = data.filter_dates(None, Some(OG2021_TUNE_UNTIL));
    let test = data.filter_dates(Some(OG2021_TUNE_UNTIL), None);
    assert_eq!(tune.len() + test.len(), data.len());
    assert!(
        tune.items
            .iter()
            .all(|i| i.published_date() < OG2021_TUNE_UNTIL)
    );
    assert!(
        test.items
            .iter()
            .all(|i| i.published_date() >= OG2021_TUNE_UNTIL)
    );
    assert!(!tune.is_empty() && !test.is_empty());
}

#[test]
fn all_singletons_matches_the_readme() {
    let s = score_with(|i| i.key.clone());
    assert_eq!(s.predicted_clusters, 10_940);
    assert_near(s.bcubed.f1, 0.220, 0.0005);
    assert_near(s.bcubed.precision, 1.0, 0.0);
}

#[test]
fn event_registry_reference_matches_the_readme() {
    // A missing `er_event_uri` is a singleton: key it by the article instead.
    let s = score_with(|i| match &i.reference {
        Some(event) => (Some(event.clone()), None),
        None => (None, Some(i.key.clone())),
    });
    assert_near(s.bcubed.f1, 0.546, 0.002);
    assert_near(s.pairwise.scores.f1, 0.220, 0.002);
}

#[test]
fn monolingual_oracle_matches_the_readme() {
    let s = score_with(|i| format!("{}|{}", i.gold, i.lang));
    assert_near(s.bcubed.f1, 0.818, 0.0005);
    assert_near(s.bcubed.precision, 1.0, 0.0);
    assert_near(s.pairwise.scores.precision, 1.0, 0.0);
    assert_eq!(s.cross_lingual.true_pairs, 0);
    assert_near(s.cross_lingual.scores.recall, 0.0, 0.0);
    assert!(
        s.lang_pairs
            .iter()
            .all(|p| p.a != p.b || p.stats.scores.recall.is_none_or(|r| r == 1.0))
    );
}
