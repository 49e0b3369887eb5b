//! `concord eval --features/--merge-features` then `concord fit-join`: the refit
//! path of the calibrated join model, and `concord eval`'s replay of late arrivals,
//! on the real binary and model, with small invented files (the evaluation data
//! never enters the repository).

use std::{
    ffi::OsStr,
    path::Path,
    process::{Command, Output},
};

use super::{binary, workspace_root};

/// `concord eval` of the invented pairs file with the concord rule (JSON),
/// with more arguments and with `CONCORD_CLUSTER__RULE__JOIN_TREES` pointing at
/// `trees` (and the boosted rule) when given.
fn eval_pairs(more: &[&OsStr], trees: Option<&Path>) -> Output {
    let pairs = workspace_root().join("crates/concord-eval/tests/fixtures/pairs.jsonl");
    let mut eval = Command::new(binary());
    // Every title through the headline model, as scripts/fit_join.sh's replays: the
    // second look's trees are fitted on rows that carry its cosine.
    eval.current_dir(workspace_root())
        .env("CONCORD_HEADLINE_MODEL__EMBED", "every")
        .arg("eval")
        .arg(&pairs)
        .args(["--rules", "concord", "--json"])
        .args(more);
    if let Some(trees) = trees {
        eval.env("CONCORD_CLUSTER__RULE__JOIN_RULE", "boosted")
            .env("CONCORD_CLUSTER__RULE__JOIN_TREES", trees);
    }
    eval.output().unwrap()
}

/// `concord fit-join` with these arguments, which must succeed.
fn fit_join(args: &[&OsStr]) -> String {
    let fit = Command::new(binary())
        .arg("fit-join")
        .args(args)
        .output()
        .unwrap();
    assert!(
        fit.status.success(),
        "{}",
        String::from_utf8_lossy(&fit.stderr)
    );
    String::from_utf8(fit.stdout).unwrap()
}

#[test]
fn eval_writes_labelled_candidate_rows_and_fit_join_prints_the_weight_table() {
    let dir = tempfile::tempdir().unwrap();
    let rows = dir.path().join("join.csv");
    let merges = dir.path().join("merge.csv");
    let eval = eval_pairs(
        &[
            "--features".as_ref(),
            rows.as_ref(),
            "--merge-features".as_ref(),
            merges.as_ref(),
        ],
        None,
    );
    assert!(
        eval.status.success(),
        "{}",
        String::from_utf8_lossy(&eval.stderr)
    );
    let csv = std::fs::read_to_string(&rows).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(&header[..5], ["run", "articles", "key", "label", "score"]);
    let n = concord_cluster::JoinFeatures::NAMES.len();
    assert_eq!(&header[5..5 + n], concord_cluster::JoinFeatures::NAMES);
    assert_eq!(&header[5 + n..], ["same_language"]);
    let body: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    // Each scored pair's second article saw the first as its one candidate.
    assert!(!body.is_empty(), "{csv}");
    for row in &body {
        assert_eq!(row.len(), header.len(), "{row:?}");
        assert!(row[3] == "0" || row[3] == "1", "{row:?}");
    }
    // The language column: the pair's language for a same-language pair, empty across.
    let same_language = |key: &str| {
        body.iter()
            .find(|r| r[2].starts_with(key))
            .map(|r| r[header.len() - 1])
    };
    assert_eq!(same_language("p-en-1#"), Some("en"), "{csv}");
    assert_eq!(same_language("p-de-en-2#"), Some(""), "{csv}");
    // The fixture holds pairs of both kinds, and the labels say which.
    assert!(body.iter().any(|r| r[3] == "1") && body.iter().any(|r| r[3] == "0"));
    // Pairs never build clusters of two before a merge could be weighed: no merge rows.
    assert!(
        std::fs::read_to_string(&merges)
            .unwrap_or_default()
            .lines()
            .count()
            <= 1
    );

    let out = fit_join(&[rows.as_ref()]);
    assert!(out.contains("[cluster.rule.join_weights]"), "{out}");
    // The per-language intercept tables follow (empty here: one language is no contrast).
    assert!(
        out.contains("[cluster.rule.join_weights.language]"),
        "{out}"
    );
    assert!(
        out.contains("[cluster.rule.join_weights.report_language]"),
        "{out}"
    );
    let logistic = &concord_cluster::JoinFeatures::NAMES[..concord_cluster::rule::LOGISTIC_INPUTS];
    for name in logistic.iter().chain(&["bias"]) {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{name} = ")))
            .unwrap_or_else(|| panic!("no {name} in {out}"));
        let value: f64 = line.split(" = ").nth(1).unwrap().parse().unwrap();
        assert!(value.is_finite(), "{line}");
    }
    // The titles' 4-gram cosines are the trees' alone: the logistic prints no weight.
    for name in &concord_cluster::JoinFeatures::NAMES[concord_cluster::rule::LOGISTIC_INPUTS..] {
        assert!(!out.contains(&format!("{name} = ")), "{name} in {out}");
    }
    // The boosted trees from the same rows: a file the clusterer reads back, and
    // `join_trees` pointing at it drives a replay.
    let trees = dir.path().join("trees.json");
    fit_join(&[
        "--iterations".as_ref(),
        "5".as_ref(),
        "--min-leaf-rows".as_ref(),
        "1".as_ref(),
        "--trees".as_ref(),
        trees.as_ref(),
        rows.as_ref(),
    ]);
    let text = std::fs::read_to_string(&trees).unwrap();
    let file: concord_cluster::trees::TreesFile = serde_json::from_str(&text).unwrap();
    assert_eq!(file.trees.len(), 5);
    assert_eq!(file.inputs[0], "best_cosine");
    // Constant on headline rows: not an input.
    assert!(!file.inputs.iter().any(|i| i == "both_long"), "{text}");
    // The second look's trees read the headline model's cosine; the first trees do not.
    assert!(file.inputs.iter().any(|i| i == "headline_cosine"), "{text}");
    let first = dir.path().join("first-trees.json");
    fit_join(&[
        "--iterations".as_ref(),
        "5".as_ref(),
        "--min-leaf-rows".as_ref(),
        "1".as_ref(),
        "--trees".as_ref(),
        first.as_ref(),
        "--without-headline".as_ref(),
        rows.as_ref(),
    ]);
    let first_text = std::fs::read_to_string(&first).unwrap();
    let first_file: concord_cluster::trees::TreesFile = serde_json::from_str(&first_text).unwrap();
    assert!(
        !first_file.inputs.iter().any(|i| i == "headline_cosine"),
        "{first_text}"
    );
    concord_cluster::trees::JoinTrees::parse(&text).unwrap();
    let replay = eval_pairs(&[], Some(&trees));
    assert!(
        replay.status.success(),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    // A trees file that is not one stops the replay with the setting's name.
    std::fs::write(&trees, "{}").unwrap();
    let broken = eval_pairs(&[], Some(&trees));
    assert!(!broken.status.success());
    assert!(
        String::from_utf8_lossy(&broken.stderr).contains("join_trees"),
        "{}",
        String::from_utf8_lossy(&broken.stderr)
    );
    // Nothing to fit is an error, not an empty table.
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "run,articles,key,label,score\n").unwrap();
    let none = Command::new(binary())
        .arg("fit-join")
        .arg(&empty)
        .output()
        .unwrap();
    assert!(!none.status.success());
}

/// `concord eval` of an invented OG2021-format file, concord rule, writing its
/// assignments (in replay order) to `assignments`.
fn eval_titles(csv: &Path, assignments: &Path, more: &[&str]) -> Output {
    Command::new(binary())
        .current_dir(workspace_root())
        .arg("eval")
        .arg(csv)
        .args(["--rules", "concord", "--json", "--assignments"])
        .arg(assignments)
        .args(more)
        .output()
        .unwrap()
}

/// The JSON report of an eval that must have succeeded.
fn succeeded(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn eval_replays_late_arrivals_in_arrival_order_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("titles.csv");
    std::fs::write(
        &csv,
        "id,uri,lang,published_at,cluster_id,orig_cluster_id,er_event_uri,title\n\
         0,a,eng,2021-07-01 00:00:00,e1,x,,Storm floods the harbour district overnight\n\
         1,b,fra,2021-07-01 00:30:00,e1,x,,Une tempête inonde le quartier du port\n\
         2,c,eng,2021-07-01 01:00:00,e2,x,,City council approves the new tram line\n",
    )
    .unwrap();
    let order = |assignments: &Path| -> Vec<String> {
        std::fs::read_to_string(assignments)
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(2).unwrap().to_owned())
            .collect()
    };
    let on_time = dir.path().join("on-time.csv");
    let report = succeeded(&eval_titles(&csv, &on_time, &[]));
    assert_eq!(order(&on_time), ["a", "b", "c"]);
    assert!(report.get("arrival_delay").is_none(), "{report}");

    // Seed 2 delays a by 1 h 55, b by 1 h 54 and c by 7 min (Python's
    // random.Random(2)): c arrives first. Every article is still scored.
    let late = dir.path().join("late.csv");
    let report = succeeded(&eval_titles(
        &csv,
        &late,
        &["--arrival-delay", "2", "--arrival-seed", "2"],
    ));
    assert_eq!(order(&late), ["c", "a", "b"]);
    assert_eq!(
        report["arrival_delay"],
        serde_json::json!({"max_hours": 2.0, "seed": 2})
    );
    assert_eq!(report["runs"][0]["scores"]["articles"], 3);

    // Other datasets' times are not a feed's: refused, naming the option.
    let out = eval_titles(dir.path(), &late, &["--arrival-delay", "2"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--arrival-delay is for the OG2021 CSV only"),
        "{err}"
    );
    let out = eval_titles(&csv, &late, &["--arrival-delay", "0"]);
    assert!(!out.status.success());
}
