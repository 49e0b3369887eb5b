//! `concord eval`: replay a labelled dataset through the service's own
//! pipeline and print clustering quality beside the plain baseline.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};
use clap::Args;
use concord_core::{Config, config::RuleKind};
use concord_embed::Model;
use concord_eval::{Dataset, Item, Scores, replay::replay, score};
use concord_pipeline::Pipeline;
use figment::Figment;
use indicatif::{ProgressBar, ProgressStyle};
use jiff::civil::Date;
use serde::Serialize;

use crate::config;

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The OG2021 CSV file, or a folder of seed articles with labels.jsonl.
    dataset: PathBuf,
    /// Only articles published on or after this date (UTC).
    #[arg(long)]
    from: Option<Date>,
    /// Only articles published before this date (UTC).
    #[arg(long)]
    until: Option<Date>,
    /// Also score the parts before and from this date, each replayed alone
    /// (the tuning half and the held-out half), and the full replay's clustering
    /// of the articles from this date (the held-out half as a running service,
    /// with the earlier days behind it, would have clustered it).
    #[arg(long)]
    split: Option<Date>,
    /// Which rules to run: the configured one (`concord`), the baseline (`plain`), or both.
    #[arg(long, value_delimiter = ',', default_value = "plain,concord")]
    rules: Vec<String>,
    /// Print one JSON document instead of tables.
    #[arg(long)]
    json: bool,
    /// Print per-language-pair recall for each run.
    #[arg(long)]
    lang_pairs: bool,
    /// Write every run's predicted clustering to this CSV file (rule, part, key, lang,
    /// cluster), for error analysis beside the gold labels.
    #[arg(long)]
    assignments: Option<PathBuf>,
    /// Keep each run's data directory (store, index) under this folder as
    /// `<rule>-<part>`, instead of a throw-away one, for inspection.
    #[arg(long)]
    keep: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Run {
    rule: String,
    part: String,
    articles: usize,
    refused: usize,
    seconds: f64,
    articles_per_second: f64,
    scores: Scores,
}

fn read(path: &Path) -> anyhow::Result<Dataset> {
    if path.is_dir() {
        Ok(concord_eval::seeds::read(path)?)
    } else {
        Ok(concord_eval::og2021::read(path)?)
    }
}

pub fn run(figment: Figment, args: &EvalArgs) -> anyhow::Result<()> {
    let base = config::load(figment, &[])?;
    config::init_tracing_quiet(&base);
    let dataset =
        read(&args.dataset).with_context(|| format!("cannot read {}", args.dataset.display()))?;
    let dataset = dataset.filter_dates(args.from, args.until);
    if dataset.is_empty() {
        bail!("no articles in the chosen dates");
    }
    let mut parts: Vec<(String, Dataset)> = Vec::new();
    if let Some(split) = args.split {
        parts.push((
            format!("before {split}"),
            dataset.filter_dates(None, Some(split)),
        ));
        parts.push((
            format!("from {split}"),
            dataset.filter_dates(Some(split), None),
        ));
    }
    parts.push(("all".to_owned(), dataset));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut runs = Vec::new();
    let mut assignments = match &args.assignments {
        Some(path) => {
            let mut w = std::io::BufWriter::new(
                std::fs::File::create(path)
                    .with_context(|| format!("cannot create {}", path.display()))?,
            );
            writeln!(w, "rule,part,key,lang,cluster")?;
            Some(w)
        }
        None => None,
    };
    for rule in &args.rules {
        let kind = match rule.as_str() {
            "concord" => RuleKind::Concord,
            "plain" => RuleKind::Plain,
            other => bail!("unknown rule {other:?}: expected concord or plain"),
        };
        for (part, data) in &parts {
            let mut config = base.clone();
            config.cluster.rule.kind = kind;
            let (run, predicted) = runtime.block_on(replay_once(
                &config,
                data,
                rule,
                part,
                args.json,
                args.keep.as_deref(),
            ))?;
            if let Some(w) = assignments.as_mut() {
                for (item, cluster) in data.items.iter().zip(&predicted) {
                    writeln!(w, "{rule},{part},{},{},{}", item.key, item.lang, cluster)?;
                }
            }
            if !args.json {
                print_run(&run, args.lang_pairs);
            }
            let warm = match args.split {
                Some(split) if part == "all" => Some(later_part(&run, data, &predicted, split)),
                _ => None,
            };
            runs.push(run);
            if let Some(warm) = warm {
                if !args.json {
                    print_run(&warm, args.lang_pairs);
                }
                runs.push(warm);
            }
        }
    }
    if let Some(mut w) = assignments {
        w.flush()?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&runs)?);
    } else {
        print_summary(&runs, &base);
    }
    Ok(())
}

async fn replay_once(
    config: &Config,
    data: &Dataset,
    rule: &str,
    part: &str,
    quiet: bool,
    keep: Option<&Path>,
) -> anyhow::Result<(Run, Vec<concord_core::ClusterId>)> {
    // A fresh, throw-away data directory: the same store, index and clusterer as the service.
    let dir = tempfile::tempdir().context("cannot create a scratch data directory")?;
    let mut config = config.clone();
    config.data.dir = match keep {
        Some(root) => {
            let slug: String = format!("{rule}-{part}")
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let kept = root.join(slug);
            if kept.exists() {
                std::fs::remove_dir_all(&kept)
                    .with_context(|| format!("cannot clear {}", kept.display()))?;
            }
            std::fs::create_dir_all(&kept)
                .with_context(|| format!("cannot create {}", kept.display()))?;
            kept
        }
        None => dir.path().to_path_buf(),
    };
    config.index.dump_every_inserts = 0;
    let model = Model::load(&config.model).context("cannot load the model")?;
    let pipeline = Pipeline::start(&config, model)?;
    let bar = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(data.len() as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("{rule} / {part}"));
    let replayed = replay(&pipeline, data, |n| bar.set_position(n as u64)).await?;
    bar.finish_and_clear();
    let scores = score_predicted(data.items.iter().zip(&replayed.predicted));
    let run = Run {
        rule: rule.to_owned(),
        part: part.to_owned(),
        articles: data.len(),
        refused: replayed.refused.len(),
        seconds: replayed.seconds,
        articles_per_second: replayed.articles_per_second(),
        scores,
    };
    tokio::task::spawn_blocking(move || pipeline.shutdown()).await?;
    Ok((run, replayed.predicted))
}

/// The full replay's clustering scored on the articles from `split` only.
fn later_part(
    all: &Run,
    data: &Dataset,
    predicted: &[concord_core::ClusterId],
    split: Date,
) -> Run {
    let later: Vec<_> = data
        .items
        .iter()
        .zip(predicted)
        .filter(|(item, _)| item.published_date() >= split)
        .collect();
    Run {
        rule: all.rule.clone(),
        part: format!("from {split}, in the full replay"),
        articles: later.len(),
        refused: 0,
        seconds: all.seconds,
        articles_per_second: all.articles_per_second,
        scores: score_predicted(later.into_iter()),
    }
}

/// Scores labelled items against their predicted clusters.
fn score_predicted<'a>(
    predicted: impl Iterator<Item = (&'a Item, &'a concord_core::ClusterId)>,
) -> Scores {
    let items: Vec<(&str, concord_core::ClusterId, concord_core::Lang)> = predicted
        .map(|(item, cluster)| (item.gold.as_str(), *cluster, item.lang))
        .collect();
    score(&items)
}

fn f(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.3}"))
}

fn print_run(run: &Run, lang_pairs: bool) {
    if lang_pairs {
        println!("## {} / {}\n\n{}", run.rule, run.part, run.scores);
    }
}

fn print_summary(runs: &[Run], config: &Config) {
    println!(
        "| rule | part | articles | BCubed P | BCubed R | BCubed F1 | pairwise P | pairwise R | pairwise F1 | cross-lingual R | cross-lingual R per article | clusters | articles/s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in runs {
        let s = &r.scores;
        println!(
            "| {} | {} | {} | {} | {} | **{}** | {} | {} | {} | **{}** | {} | {} | {:.0} |",
            r.rule,
            r.part,
            r.articles,
            f(s.bcubed.precision),
            f(s.bcubed.recall),
            f(s.bcubed.f1),
            f(s.pairwise.scores.precision),
            f(s.pairwise.scores.recall),
            f(s.pairwise.scores.f1),
            f(s.cross_lingual.scores.recall),
            f(s.cross_lingual_bcubed_recall),
            s.predicted_clusters,
            r.articles_per_second
        );
        if r.refused > 0 {
            println!(
                "  ({} articles refused by text preparation, scored as singletons)",
                r.refused
            );
        }
    }
    let rule = &config.cluster.rule;
    println!(
        "\nknobs: window_hours={} k={} drift={}/day after {}h centering={:?} shrink={} lag={}h (after {}) balance={} link_weight={} threshold={} density_slope={} density_ref={} cross_lang_bonus={} token_weight={} token_cap={} title_affix_min={} (model {}) merge={:?} (weights {:?}; threshold rule {}/{}; min size {}); plain: cosine>={} within {}h",
        rule.window_hours,
        rule.k,
        rule.drift_per_day,
        rule.drift_grace_hours,
        rule.centering,
        rule.centering_shrink,
        rule.centering_lag_hours,
        rule.centering_lag_min,
        rule.centering_balance,
        rule.link_weight,
        rule.threshold,
        rule.density_slope,
        rule.density_ref,
        rule.cross_lang_bonus,
        rule.token_weight,
        rule.token_cap,
        rule.title_affix_min,
        config.model.title_affix_min,
        rule.merge_rule,
        rule.merge_weights,
        rule.merge_threshold,
        rule.merge_threshold_cross_lang,
        rule.merge_min_size,
        rule.plain_threshold,
        rule.plain_window_hours
    );
}
