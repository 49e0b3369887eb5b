//! `concord fit-join`: fit the calibrated join model's weights on the training
//! rows `concord eval --features` wrote, and print them as the
//! `[cluster.rule.join_weights]` table of `config/default.toml`.

use std::{collections::HashMap, path::PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use concord_cluster::{JoinFeatures, MERGE_FEATURE_NAMES};
use concord_eval::logistic;

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
}

pub fn run(args: &FitArgs) -> anyhow::Result<()> {
    let (names, table): (&[&str], &str) = if args.merge {
        (&MERGE_FEATURE_NAMES, "merge_weights")
    } else {
        (&JoinFeatures::NAMES, "join_weights")
    };
    let mut rows: Vec<(Vec<f64>, bool, f64)> = Vec::new();
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
    Ok(())
}
