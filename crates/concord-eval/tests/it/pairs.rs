//! The pairs reader and pair scoring, on a small invented fixture (tests/fixtures).

use std::path::{Path, PathBuf};

use concord_core::Lang;
use concord_eval::{
    EvalError,
    pairs::{self, PairCounts, PairsData},
};

use crate::{data::shared_data, readers::assert_malformed};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pairs.jsonl")
}

fn read_fixture() -> PairsData {
    pairs::read(fixture()).unwrap_or_else(|e| panic!("{e}"))
}

fn parse(text: &str) -> Result<PairsData, EvalError> {
    pairs::from_reader(text.as_bytes(), Path::new("test.jsonl"))
}

/// One JSON line with the given pair id, languages and label; the other fields valid.
fn line(id: &str, lang1: &str, lang2: &str, same_event: &str) -> String {
    format!(
        r#"{{"pair_id":"{id}","lang1":"{lang1}","lang2":"{lang2}","title1":"T1","text1":"x","title2":null,"text2":"y","date1":null,"date2":null,"score":1.0,"same_event":{same_event}}}"#
    )
}

#[test]
fn scored_pairs_become_two_items_each_and_null_pairs_are_skipped() {
    let data = read_fixture();
    assert_eq!(data.unscored, 1);
    let ids: Vec<&str> = data.pairs.iter().map(|p| p.pair_id.as_str()).collect();
    assert_eq!(ids, ["p-en-1", "p-de-en-2", "p-en-de-4", "p-fr-5"]);
    let keys: Vec<&str> = data.dataset.items.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "p-en-1#1",
            "p-en-1#2",
            "p-de-en-2#1",
            "p-de-en-2#2",
            "p-en-de-4#1",
            "p-en-de-4#2",
            "p-fr-5#1",
            "p-fr-5#2"
        ]
    );
    for pair in &data.pairs {
        let items = &data.dataset.items;
        assert_eq!(items[pair.first].key, format!("{}#1", pair.pair_id));
        assert_eq!(items[pair.second].key, format!("{}#2", pair.pair_id));
    }
}

#[test]
fn each_scored_pair_is_thirty_days_after_the_last() {
    let data = read_fixture();
    let times: Vec<String> = data
        .dataset
        .items
        .iter()
        .map(|i| i.published_at.to_string())
        .collect();
    // The null pair on line 4 takes no slot: the pair after it is the third, not the fourth.
    assert_eq!(
        times,
        [
            "2000-01-01T00:00:00Z",
            "2000-01-01T00:00:00Z",
            "2000-01-31T00:00:00Z",
            "2000-01-31T00:00:00Z",
            "2000-03-01T00:00:00Z",
            "2000-03-01T00:00:00Z",
            "2000-03-31T00:00:00Z",
            "2000-03-31T00:00:00Z"
        ]
    );
}

#[test]
fn gold_labels_join_same_event_pairs_only() {
    let data = read_fixture();
    let gold: Vec<&str> = data.dataset.items.iter().map(|i| i.gold.as_str()).collect();
    assert_eq!(
        gold,
        [
            "p-en-1",
            "p-en-1",
            "p-de-en-2#1",
            "p-de-en-2#2",
            "p-en-de-4",
            "p-en-de-4",
            "p-fr-5",
            "p-fr-5"
        ]
    );
    assert_eq!(data.dataset.gold_clusters(), 5);
    assert!(data.dataset.items.iter().all(|i| i.reference.is_none()));
}

#[test]
fn a_missing_title_leaves_the_whole_text_as_the_body() {
    let data = read_fixture();
    let items = &data.dataset.items;
    // title1 null: the text, which starts with the headline, is the body, untouched.
    assert_eq!(items[2].title, "");
    assert_eq!(
        items[2].body,
        "Bahnstreik legt Fernverkehr lahm. Die Gewerkschaft hat für Mittwoch zum Streik aufgerufen."
    );
    // A blank title counts as none.
    assert_eq!(items[7].title, "");
    assert!(items[7].body.starts_with("French air traffic"));
    // A title with an empty text is a title-only article.
    assert_eq!(
        (items[5].title.as_str(), items[5].body.as_str()),
        ("Hochwasserwarnung am Rhein", "")
    );
    // And a normal pair keeps both.
    assert_eq!(items[0].title, "Storm closes harbour in Portsmouth");
    assert!(items[0].body.starts_with("A storm closed"));
}

#[test]
fn languages_parse_and_pairs_name_them_sorted() {
    let data = read_fixture();
    let langs: Vec<Lang> = data.dataset.items.iter().map(|i| i.lang).collect();
    assert_eq!(
        langs,
        [
            Lang::EN,
            Lang::EN,
            Lang::DE,
            Lang::EN,
            Lang::EN,
            Lang::DE,
            Lang::FR,
            Lang::EN
        ]
    );
    let names: Vec<String> = data.pairs.iter().map(|p| p.lang_pair()).collect();
    assert_eq!(names, ["en-en", "de-en", "de-en", "en-fr"]);
    let p = &data.pairs[2];
    assert_eq!((p.lang1, p.lang2, p.same_event), (Lang::EN, Lang::DE, true));
}

#[test]
fn malformed_lines_are_named() {
    let ok = line("a", "en", "en", "true");
    // Line numbers count blank lines.
    assert_malformed(parse(&format!("{ok}\n\n{{\"pair_id\":")), 3, "EOF");
    assert_malformed(
        parse(&format!("{ok}\n{}", line("b", "en", "xx", "false"))),
        2,
        "`lang2`",
    );
    assert_malformed(parse(&line("b", "klingon", "en", "true")), 1, "`lang1`");
    assert_malformed(
        parse(&format!("{ok}\n{}", line("a", "en", "en", "false"))),
        2,
        "first on line 1",
    );
    assert_malformed(parse(&line(" ", "en", "en", "true")), 1, "pair_id");
    assert_malformed(parse(&line("b", "en", "en", "\"yes\"")), 1, "boolean");
    assert_malformed(
        parse(r#"{"pair_id":"a","lang1":"en","lang2":"en"}"#),
        1,
        "text1",
    );
    let empty = line("b", "en", "en", "true")
        .replace(r#""title1":"T1""#, r#""title1":null"#)
        .replace(r#""text1":"x""#, r#""text1":"  ""#);
    assert_malformed(parse(&empty), 1, "article 1 has neither title nor text");
    assert!(matches!(
        pairs::read("/nonexistent/pairs.jsonl"),
        Err(EvalError::Io { .. })
    ));
}

#[test]
fn a_null_pair_is_not_checked_beyond_its_json_and_id() {
    let data = parse(&format!(
        "{}\n{}",
        line("a", "xx", "en", "null"),
        line("b", "en", "fr", "false")
    ))
    .unwrap();
    assert_eq!((data.unscored, data.pairs.len()), (1, 1));
    // Still one id space: a scored pair may not reuse a null pair's id.
    assert_malformed(
        parse(&format!(
            "{}\n{}",
            line("a", "xx", "en", "null"),
            line("a", "en", "fr", "false")
        )),
        2,
        "duplicate",
    );
}

fn counts(
    same: u64,
    same_together: u64,
    different: u64,
    different_apart: u64,
) -> (u64, u64, u64, u64) {
    (same, same_together, different, different_apart)
}

fn tuple(c: &PairCounts) -> (u64, u64, u64, u64) {
    (c.same, c.same_together, c.different, c.different_apart)
}

#[test]
fn pair_scores_count_same_together_and_different_apart() {
    let data = read_fixture();
    // Everything in one cluster: every same pair together, the different pair not apart.
    let all_one = pairs::score(&data.pairs, &[7u32; 8]);
    assert_eq!(tuple(&all_one.all), counts(3, 3, 1, 0));
    assert_eq!(all_one.all.same_together_rate, Some(1.0));
    assert_eq!(all_one.all.different_apart_rate, Some(0.0));
    assert_eq!(all_one.all.accuracy, Some(0.75));

    // All singletons: the reverse.
    let singletons = pairs::score(&data.pairs, &[0, 1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(tuple(&singletons.all), counts(3, 0, 1, 1));
    assert_eq!(singletons.all.accuracy, Some(0.25));

    // Pair by pair: p-en-1 together (right), p-de-en-2 apart (right), p-en-de-4 apart
    // (wrong), p-fr-5 together (right).
    let mixed = pairs::score(&data.pairs, &["a", "a", "b", "c", "d", "e", "f", "f"]);
    assert_eq!(tuple(&mixed.all), counts(3, 2, 1, 1));
    assert_eq!(mixed.all.accuracy, Some(0.75));
    let keys: Vec<&str> = mixed.lang_pairs.keys().map(String::as_str).collect();
    assert_eq!(keys, ["de-en", "en-en", "en-fr"]);
    assert_eq!(tuple(&mixed.lang_pairs["de-en"]), counts(1, 0, 1, 1));
    assert_eq!(mixed.lang_pairs["de-en"].same_together_rate, Some(0.0));
    assert_eq!(mixed.lang_pairs["de-en"].accuracy, Some(0.5));
    assert_eq!(tuple(&mixed.lang_pairs["en-en"]), counts(1, 1, 0, 0));
    assert_eq!(mixed.lang_pairs["en-en"].different_apart_rate, None);
    assert_eq!(tuple(&mixed.lang_pairs["en-fr"]), counts(1, 1, 0, 0));
}

#[test]
fn pair_scores_treat_a_missing_prediction_as_alone_and_serialize() {
    let data = read_fixture();
    // Only the first pair's items have a prediction; the rest count as singletons.
    let short = pairs::score(&data.pairs, &[1, 1]);
    assert_eq!(tuple(&short.all), counts(3, 1, 1, 1));
    let empty = pairs::score(&[], &[0u8; 0]);
    assert_eq!(tuple(&empty.all), counts(0, 0, 0, 0));
    assert_eq!(empty.all.accuracy, None);

    let json = serde_json::to_value(&short).unwrap();
    assert_eq!(json["same_together"], 1);
    assert_eq!(json["different_apart"], 1);
    assert_eq!(json["accuracy"], 0.5);
    assert_eq!(json["lang_pairs"]["de-en"]["same"], 1);
}

#[test]
fn the_dev_file_has_the_readme_counts() {
    let data =
        pairs::read(shared_data("semeval-pairs/dev.jsonl")).unwrap_or_else(|e| panic!("{e}"));
    // README: 509 pairs, 107 true, 205 false, 197 null.
    assert_eq!((data.pairs.len(), data.unscored), (312, 197));
    assert_eq!(data.pairs.iter().filter(|p| p.same_event).count(), 107);
    assert_eq!(data.dataset.len(), 624);
    assert_eq!(data.dataset.gold_clusters(), 107 + 2 * 205);
    // The last scored pair is 311 × 30 days after 2000-01-01.
    let last = &data.dataset.items[623];
    assert_eq!(last.published_at.to_string(), "2025-07-18T00:00:00Z");
}
