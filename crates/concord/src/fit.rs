//! `concord fit-join`: fit the calibrated join model's weights on the training
//! rows `concord eval --features` wrote, and print them as the
//! `[cluster.rule.join_weights]` table of `config/default.toml` (or the merge
//! score's, `--merge`), or fit the boosted trees for headline decisions and write
//! them as a trees file (`--trees`, shipped as `config/join-trees.json`).

use std::{
    collections::{BTreeMap, HashMap},
    path::PathBuf,
};

use anyhow::{Context, bail};
use clap::Args;
use concord_cluster::trees::{JoinTrees, LANGUAGE_INPUT, NodeFile, TREES_FORMAT, TreesFile};
use concord_cluster::{
    JoinFeatures, MERGE_FEATURE_NAMES,
    rule::{LOGISTIC_INPUTS, reads_report_language},
};
use concord_eval::{
    boost::{self, BoostParams, TreeNode},
    intercepts::{LanguageIntercepts, RowLanguage},
    logistic,
};

#[derive(Debug, Args)]
pub struct FitArgs {
    /// Training CSV files written by `concord eval --features` (tuning data only).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Fit the merge score (`eval --merge-features` rows) instead of the join model,
    /// and print `[cluster.rule.merge_weights]`.
    #[arg(long)]
    merge: bool,
    /// Inverse regularisation strength (scikit-learn's C): smaller shrinks the weights.
    #[arg(long, default_value_t = 10.0)]
    c: f64,
    /// A language gets its own intercept (for headlines, and apart for two
    /// article-length texts) when at least this many rows pair two texts in it;
    /// rarer languages share the model's bias.
    #[arg(long, default_value_t = 20)]
    min_language_rows: usize,
    /// Fit boosted trees for headline decisions (rows where not both texts are
    /// article-length) instead, and write them to this file (`join_trees`, shipped
    /// as config/join-trees.json) rather than print a table.
    #[arg(long, value_name = "OUT.json", conflicts_with = "merge")]
    trees: Option<PathBuf>,
    /// With `--trees`: leave out the headline model's input (`headline_cosine`): the
    /// first trees (`join_trees`), which decide before the headline model is asked. Without
    /// it the trees read it (`headline_trees`, the second look) and are fitted on the rows
    /// that have it.
    #[arg(long, requires = "trees")]
    without_headline: bool,
    /// Trees: rounds (one tree each).
    #[arg(long, default_value_t = 400)]
    iterations: usize,
    /// Trees: splits from the root to a leaf.
    #[arg(long, default_value_t = 2)]
    depth: usize,
    /// Trees: each tree's leaves are multiplied by this.
    #[arg(long, default_value_t = 0.05)]
    learning_rate: f64,
    /// Trees: L2 penalty on leaf values.
    #[arg(long, default_value_t = 1.0)]
    l2: f64,
    /// Trees: rows each leaf must hold.
    #[arg(long, default_value_t = 20)]
    min_leaf_rows: usize,
}

/// The trees' monotone inputs: more similar (best member, centroid, the titles'
/// character 4-grams) or more shared names never lowers the odds, days further
/// apart or a more crowded neighbourhood (the article's or its best member's)
/// never raises them.
/// Without these, trees learn the tuning days' accidents (a cosine band).
const MONOTONE: [(&str, i8); 10] = [
    ("best_cosine", 1),
    ("headline_cosine", 1),
    ("centroid_cosine", 1),
    ("shared_idf", 1),
    ("gram_cosine", 1),
    ("gram_max", 1),
    ("days_to_best", -1),
    ("mean_days_beyond_recent", -1),
    ("crowding", -1),
    ("member_crowding", -1),
];

pub fn run(args: &FitArgs) -> anyhow::Result<()> {
    let (names, table): (&[&str], &str) = if args.merge {
        (&MERGE_FEATURE_NAMES, "merge_weights")
    } else {
        (&JoinFeatures::NAMES, "join_weights")
    };
    let mut rows: Vec<(Vec<f64>, bool, f64)> = Vec::new();
    // Per row: whether both texts are article-length and the language they share
    // (merge rows: none).
    let mut languages: Vec<RowLanguage> = Vec::new();
    let long = JoinFeatures::NAMES
        .iter()
        .position(|n| *n == "both_long")
        .context("no both_long feature")?;
    let mut runs: HashMap<String, usize> = HashMap::new();
    let mut row_runs: Vec<String> = Vec::new();
    for path in &args.files {
        let mut csv = csv::Reader::from_path(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let headers = csv.headers()?.clone();
        let column = |name: &str| -> anyhow::Result<usize> {
            headers
                .iter()
                .position(|h| h == name)
                .with_context(|| format!("{}: no column `{name}`", path.display()))
        };
        let (run, articles, label) = (column("run")?, column("articles")?, column("label")?);
        let features: Vec<usize> = names
            .iter()
            .map(|n| column(n))
            .collect::<anyhow::Result<_>>()?;
        let language = if args.merge {
            None
        } else {
            Some(column("same_language")?)
        };
        for (line, record) in (2u64..).zip(csv.records()) {
            let record = record.with_context(|| format!("{}:{line}", path.display()))?;
            let field = |i: usize| record.get(i).unwrap_or("");
            let number = |i: usize| -> anyhow::Result<f64> {
                field(i)
                    .parse::<f64>()
                    .with_context(|| format!("{}:{line}: not a number", path.display()))
            };
            let _: usize = field(articles)
                .parse()
                .with_context(|| format!("{}:{line}: `articles`", path.display()))?;
            *runs.entry(field(run).to_owned()).or_default() += 1;
            let x = features
                .iter()
                .map(|&i| number(i))
                .collect::<anyhow::Result<Vec<f64>>>()?;
            let lang = language.map(field).filter(|l| !l.is_empty());
            let report = x
                .get(long)
                .is_some_and(|v| reads_report_language(*v as f32));
            languages.push(lang.map(|l| (report, l.to_owned())));
            rows.push((x, field(label) == "1", 0.0));
            row_runs.push(field(run).to_owned());
        }
    }
    if rows.is_empty() {
        bail!("no training rows in the given files");
    }
    // Each replay weighs the same in all, whatever its size: a 10% sample's decisions,
    // or the rated pairs' 312, count as much as the full stream's thousands.
    for (row, run) in rows.iter_mut().zip(&row_runs) {
        row.2 = 1000.0 / runs.get(run).copied().unwrap_or(1).max(1) as f64;
    }
    if let Some(out) = &args.trees {
        return fit_trees(args, out, &rows, &languages, long);
    }
    // The logistic reads the first LOGISTIC_INPUTS features; the titles' 4-gram
    // cosines after them are the trees' alone.
    let names = if args.merge {
        names
    } else {
        for row in &mut rows {
            row.0.truncate(LOGISTIC_INPUTS);
        }
        &names[..LOGISTIC_INPUTS]
    };
    // Per-language intercepts, for headlines and reports apart, in effect coding
    // (`concord_eval::intercepts`: why not one indicator column per language).
    let coding = if args.merge {
        LanguageIntercepts::default()
    } else {
        LanguageIntercepts::new(
            languages.iter().zip(rows.iter().map(|r| r.2)),
            args.min_language_rows,
        )
    };
    for (row, lang) in rows.iter_mut().zip(&languages) {
        row.0.extend(coding.columns(lang));
    }
    let positives = rows.iter().filter(|r| r.1).count();
    let model = logistic::fit(&rows, args.c)?;
    let mut sources: Vec<_> = runs.into_iter().collect();
    sources.sort();
    println!(
        "# Fitted by `concord fit-join` (C = {}) on {} candidate rows ({} positive) from:",
        args.c,
        rows.len(),
        positives
    );
    for (source, n) in sources {
        println!("#   {source}: {n} rows");
    }
    println!("[cluster.rule.{table}]");
    for (name, w) in names.iter().zip(&model.weights) {
        println!("{name} = {w:.3}");
    }
    println!("bias = {:.3}", model.bias);
    if !args.merge {
        let intercepts = coding.intercepts(&model.weights[names.len()..]);
        for (report, table) in [(false, "language"), (true, "report_language")] {
            println!("[cluster.rule.join_weights.{table}]");
            for ((kind, lang), w) in &intercepts {
                if *kind == report {
                    println!("{lang} = {w:.3}");
                }
            }
        }
    }
    Ok(())
}

/// `fit-join --trees`: the headline rows (`both_long`, column `long`, says not two
/// reports) whose every input is present, the features (less the two that are constant
/// on headlines, and `headline_cosine` with `--without-headline`) and a 0/1 input per
/// shared language with `--min-language-rows` rows, boosted trees fitted and written as
/// a trees file.
fn fit_trees(
    args: &FitArgs,
    out: &std::path::Path,
    rows: &[(Vec<f64>, bool, f64)],
    languages: &[RowLanguage],
    long: usize,
) -> anyhow::Result<()> {
    let names = &JoinFeatures::NAMES;
    let headline = |x: &[f64]| !reads_report_language(x[long] as f32);
    let kept: Vec<usize> = (0..names.len())
        .filter(|&i| !matches!(names[i], "both_long" | "long_cosine"))
        .filter(|&i| !(args.without_headline && names[i] == "headline_cosine"))
        .collect();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    // A shared language's row is in the headline group (`false`) by the same test.
    for lang in languages.iter().flatten() {
        if let (false, lang) = lang {
            *counts.entry(lang.as_str()).or_default() += 1;
        }
    }
    let langs: Vec<&str> = counts
        .into_iter()
        .filter(|(_, n)| *n >= args.min_language_rows)
        .map(|(l, _)| l)
        .collect();
    let mut inputs: Vec<String> = kept.iter().map(|&i| names[i].to_owned()).collect();
    inputs.extend(langs.iter().map(|l| format!("{LANGUAGE_INPUT}{l}")));
    let monotone: Vec<i8> = inputs
        .iter()
        .map(|name| {
            MONOTONE
                .iter()
                .find(|(n, _)| n == name)
                .map_or(0, |(_, m)| *m)
        })
        .collect();
    let train: Vec<(Vec<f64>, bool, f64)> = rows
        .iter()
        .zip(languages)
        .filter(|((x, _, _), _)| headline(x) && kept.iter().all(|&i| x[i].is_finite()))
        .map(|((x, y, w), lang)| {
            let shared = lang.as_ref().map(|(_, l)| l.as_str());
            let mut v: Vec<f64> = kept.iter().map(|&i| x[i]).collect();
            v.extend(
                langs
                    .iter()
                    .map(|l| f64::from(u8::from(shared == Some(*l)))),
            );
            (v, *y, *w)
        })
        .collect();
    let params = BoostParams {
        iterations: args.iterations,
        max_depth: args.depth,
        learning_rate: args.learning_rate,
        l2: args.l2,
        min_leaf_rows: args.min_leaf_rows,
        monotone,
        ..BoostParams::default()
    };
    if train.is_empty() {
        bail!(
            "no headline rows with every input present: the trees read {}; a replay with \
             [headline_model] embed = \"every\" (scripts/fit_join.sh) gives every row the \
             headline cosine, or pass --without-headline",
            inputs.join(", ")
        );
    }
    let model = boost::fit(&train, &params)?;
    let positives = train.iter().filter(|r| r.1).count();
    let before = boost::log_loss(&train, |_| model.base);
    let after = boost::log_loss(&train, |x| model.logit(x));
    let fitted: BTreeMap<String, serde_json::Value> = [
        ("by", serde_json::json!("concord fit-join --trees")),
        ("rows", serde_json::json!(train.len())),
        ("positive_rows", serde_json::json!(positives)),
        ("iterations", serde_json::json!(params.iterations)),
        ("max_depth", serde_json::json!(params.max_depth)),
        ("learning_rate", serde_json::json!(params.learning_rate)),
        ("l2", serde_json::json!(params.l2)),
        ("min_leaf_rows", serde_json::json!(params.min_leaf_rows)),
        (
            "monotone",
            serde_json::json!(
                MONOTONE
                    .iter()
                    .map(|(n, m)| (n.to_string(), *m))
                    .collect::<BTreeMap<_, _>>()
            ),
        ),
        (
            "training_log_loss",
            serde_json::json!(format!("{before:.4} -> {after:.4}")),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let file = TreesFile {
        format: TREES_FORMAT.to_owned(),
        inputs,
        base: model.base as f32,
        fitted,
        trees: model
            .trees
            .iter()
            .map(|tree| {
                tree.iter()
                    .map(|node| match *node {
                        TreeNode::Split {
                            input,
                            at,
                            left,
                            right,
                        } => NodeFile::Split {
                            input,
                            at: at as f32,
                            left,
                            right,
                        },
                        TreeNode::Leaf(v) => NodeFile::Leaf { leaf: v as f32 },
                    })
                    .collect()
            })
            .collect(),
    };
    // What the clusterer will read must parse as it will read it.
    JoinTrees::from_file(&file)?;
    std::fs::write(out, trees_json(&file)?)
        .with_context(|| format!("cannot write {}", out.display()))?;
    println!(
        "# Fitted {} trees (depth {}, learning rate {}, l2 {}) on {} headline rows ({} positive); \
         weighted log-loss {before:.4} -> {after:.4}; wrote {}",
        params.iterations,
        params.max_depth,
        params.learning_rate,
        params.l2,
        train.len(),
        positives,
        out.display()
    );
    Ok(())
}

/// The file with one tree per line: readable, and a refit's diff stays a diff.
fn trees_json(file: &TreesFile) -> anyhow::Result<String> {
    let mut s = String::from("{\n");
    s += &format!("  \"format\": {},\n", serde_json::to_string(&file.format)?);
    s += &format!("  \"inputs\": {},\n", serde_json::to_string(&file.inputs)?);
    s += &format!("  \"base\": {},\n", serde_json::to_string(&file.base)?);
    s += &format!("  \"fitted\": {},\n", serde_json::to_string(&file.fitted)?);
    s += "  \"trees\": [\n";
    for (i, tree) in file.trees.iter().enumerate() {
        let sep = if i + 1 < file.trees.len() { "," } else { "" };
        s += &format!("    {}{sep}\n", serde_json::to_string(tree)?);
    }
    s += "  ]\n}\n";
    Ok(s)
}
