//! `concord fit-join`: fit the calibrated join model's weights on the training
//! rows `concord eval --features` wrote, and print them as the
//! `[cluster.rule.join_weights]` table of `config/default.toml`.

use std::{collections::HashMap, path::PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use concord_cluster::{JoinFeatures, MERGE_FEATURE_NAMES, rule::reads_report_language};
use concord_eval::{
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
}

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
