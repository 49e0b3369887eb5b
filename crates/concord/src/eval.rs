//! `concord eval`: replay a labelled dataset through the service's own
//! pipeline and print clustering quality beside the plain baseline.
//!
//! Three kinds of dataset, by the path: a folder is the seed articles, a `.jsonl` file
//! the rated article pairs (each pair alone: same-event pairs together, different-event
//! pairs apart), anything else the OG2021 CSV (which alone takes `--sample`).

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};
use clap::Args;
use concord_core::{Config, config::RuleKind};
use concord_embed::Encoders;
use concord_eval::{
    Dataset, Item, Scores,
    pairs::{self, PairScores, ScoredPair},
    replay::replay,
    sample::Sample,
    score,
};
use concord_pipeline::Pipeline;
use figment::Figment;
use indicatif::{ProgressBar, ProgressStyle};
use jiff::civil::Date;
use serde::Serialize;

use crate::config;

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The OG2021 CSV file, a folder of seed articles with labels.jsonl, or a pairs
    /// file (`.jsonl`, as ../shared/data/semeval-pairs/dev.jsonl).
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
    /// OG2021 only: replay a seeded random subset, each CSV row kept (in file order)
    /// when Python's `random.Random(SEED).random()` is below FRACTION. Drawn before the
    /// date filters, so every part and both rules see the same rows.
    #[arg(long, value_name = "FRACTION", requires = "sample_seed", value_parser = fraction)]
    sample: Option<f64>,
    /// The seed of `--sample`.
    #[arg(long, value_name = "SEED", requires = "sample")]
    sample_seed: Option<u64>,
    /// OG2021 only: replay the stream FACTOR times faster (each article's time moved
    /// toward the first one's: FACTOR days of news in one), after the sample and the date
    /// filters. The same events, FACTOR times the articles per window: the denser replays
    /// `scripts/fit_join.sh` fits the join model on. Not with `--split`.
    #[arg(long, value_name = "FACTOR", value_parser = time_scale)]
    time_scale: Option<f64>,
    /// OG2021 only: replay in the order a feed that delivers each article up to HOURS
    /// late would bring them (each one's delay drawn uniformly from [0, HOURS) by
    /// Python's `random.Random(--arrival-seed)`, one draw per article in publication
    /// order), after the sample, the date filters and `--time-scale`. Publication times
    /// are kept: how well the clustering holds when reports arrive out of order.
    #[arg(long, value_name = "HOURS", value_parser = arrival_delay)]
    arrival_delay: Option<f64>,
    /// The seed of `--arrival-delay`.
    #[arg(
        long,
        value_name = "SEED",
        default_value_t = 1,
        requires = "arrival_delay"
    )]
    arrival_seed: u64,
    /// Append, for every decision of the `concord` rule, its recorded candidates to this
    /// CSV file (run, articles, key, label, score, the join model's features): the
    /// training rows of `concord fit-join`. The label (same gold event as the
    /// candidate's best-linked member) is joined here, after the replay; the
    /// clusterer never sees it.
    #[arg(long, value_name = "CSV")]
    features: Option<PathBuf>,
    /// Append, likewise, every merge candidate the `concord` rule weighed (label: the
    /// arriving article's gold event is that of the candidate cluster's representative
    /// member): the training rows of `concord fit-join --merge`.
    #[arg(long, value_name = "CSV")]
    merge_features: Option<PathBuf>,
}

/// A number `ok` accepts, or the error clap prints: "expected EXPECTED, got S".
fn number_in(s: &str, ok: impl Fn(f64) -> bool, expected: &str) -> Result<f64, String> {
    let x: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if ok(x) {
        Ok(x)
    } else {
        Err(format!("expected {expected}, got {s}"))
    }
}

fn fraction(s: &str) -> Result<f64, String> {
    number_in(s, |x| x > 0.0 && x <= 1.0, "a fraction in (0, 1]")
}

fn time_scale(s: &str) -> Result<f64, String> {
    number_in(
        s,
        |x| (1.0..=100.0).contains(&x),
        "a factor between 1 and 100",
    )
}

fn arrival_delay(s: &str) -> Result<f64, String> {
    number_in(
        s,
        |x| x > 0.0 && x <= 24.0 * 30.0,
        "hours above 0 and at most 720",
    )
}

/// The dataset kinds, told apart by the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Og2021,
    Seeds,
    Pairs,
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::Og2021 => "the OG2021 CSV",
            Kind::Seeds => "a folder of seed articles",
            Kind::Pairs => "a pairs file",
        }
    }

    fn of(path: &Path) -> Self {
        if path.is_dir() {
            Kind::Seeds
        } else if path.extension().is_some_and(|e| e == "jsonl") {
            Kind::Pairs
        } else {
            Kind::Og2021
        }
    }
}

/// What `--json` prints: the whole evaluation, every run.
#[derive(Debug, Serialize)]
struct Report<'a> {
    dataset: &'a Path,
    kind: Kind,
    /// The sample replayed (OG2021 `--sample`), with how many rows it kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    sample: Option<SampleReport>,
    /// The arrival delay replayed (OG2021 `--arrival-delay`).
    #[serde(skip_serializing_if = "Option::is_none")]
    arrival_delay: Option<ArrivalDelay>,
    /// Pairs only: how many were scored and how many left out (no label).
    #[serde(skip_serializing_if = "Option::is_none")]
    pairs: Option<PairTotals>,
    runs: &'a [Run],
}

#[derive(Debug, Serialize)]
struct SampleReport {
    #[serde(flatten)]
    sample: Sample,
    kept: usize,
}

#[derive(Debug, Clone, Copy, Serialize)]
struct ArrivalDelay {
    max_hours: f64,
    seed: u64,
}

#[derive(Debug, Clone, Copy, Serialize)]
struct PairTotals {
    scored: usize,
    unscored: usize,
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
    /// Pairs only: same-event pairs together, different-event pairs apart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pairs: Option<PairScores>,
}

/// A dataset read for replay, with the pairs to score when it is a pairs file.
struct Loaded {
    dataset: Dataset,
    pairs: Option<(Vec<ScoredPair>, PairTotals)>,
}

fn read(path: &Path, kind: Kind, sample: Option<&Sample>) -> anyhow::Result<Loaded> {
    Ok(match kind {
        Kind::Seeds => Loaded {
            dataset: concord_eval::seeds::read(path)?,
            pairs: None,
        },
        Kind::Og2021 => Loaded {
            dataset: concord_eval::og2021::read_sampled(path, sample)?,
            pairs: None,
        },
        Kind::Pairs => {
            let data = pairs::read(path)?;
            let counts = PairTotals {
                scored: data.pairs.len(),
                unscored: data.unscored,
            };
            Loaded {
                dataset: data.dataset,
                pairs: Some((data.pairs, counts)),
            }
        }
    })
}

pub fn run(figment: Figment, args: &EvalArgs) -> anyhow::Result<()> {
    let base = config::load(figment, &[])?;
    config::init_tracing_quiet(&base);
    let kind = Kind::of(&args.dataset);
    let sample = match (args.sample, args.sample_seed) {
        (Some(fraction), Some(seed)) => Some(Sample { fraction, seed }),
        _ => None,
    };
    for (option, given) in [
        ("--sample", sample.is_some()),
        ("--arrival-delay", args.arrival_delay.is_some()),
    ] {
        if given && kind != Kind::Og2021 {
            bail!(
                "{option} is for the OG2021 CSV only, not {}",
                kind.describe()
            );
        }
    }
    if args.time_scale.is_some() && (kind != Kind::Og2021 || args.split.is_some()) {
        bail!("--time-scale is for the OG2021 CSV only, without --split");
    }
    let arrival_delay = args.arrival_delay.map(|max_hours| ArrivalDelay {
        max_hours,
        seed: args.arrival_seed,
    });
    if kind == Kind::Pairs && (args.from.is_some() || args.until.is_some() || args.split.is_some())
    {
        bail!("--from, --until and --split do not apply to pairs: their times are made up");
    }
    let loaded = read(&args.dataset, kind, sample.as_ref())
        .with_context(|| format!("cannot read {}", args.dataset.display()))?;
    let sample = sample.map(|sample| SampleReport {
        sample,
        kept: loaded.dataset.len(),
    });
    let (scored_pairs, pair_counts) = match loaded.pairs {
        Some((pairs, counts)) => (Some(pairs), Some(counts)),
        None => (None, None),
    };
    let mut dataset = loaded.dataset.filter_dates(args.from, args.until);
    if let Some(factor) = args.time_scale {
        dataset = dataset.compress_time(factor);
    }
    if let Some(delay) = arrival_delay {
        dataset = dataset.delay_arrivals(delay.max_hours, delay.seed);
    }
    if dataset.is_empty() {
        bail!("no articles in the chosen dates");
    }
    if let Some(s) = &sample
        && !args.json
    {
        println!(
            "sample: {} rows kept (fraction {}, seed {})\n",
            s.kept, s.sample.fraction, s.sample.seed
        );
    }
    if let Some(d) = &arrival_delay
        && !args.json
    {
        println!(
            "arrivals: each up to {} h late (seed {}), replayed in arrival order\n",
            d.max_hours, d.seed
        );
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
            let record = (args.features.is_some() || args.merge_features.is_some())
                && kind == RuleKind::Concord;
            let (mut run, predicted, whys) = runtime.block_on(replay_once(
                &config,
                data,
                rule,
                part,
                args.json,
                args.keep.as_deref(),
                record,
            ))?;
            if record {
                let mut name = match &sample {
                    Some(s) => format!(
                        "{}:{part}:sample {} seed {}",
                        args.dataset.display(),
                        s.sample.fraction,
                        s.sample.seed
                    ),
                    None => format!("{}:{part}", args.dataset.display()),
                };
                if let Some(factor) = args.time_scale {
                    name.push_str(&format!(":time scale {factor}"));
                }
                if let Some(delay) = arrival_delay {
                    name.push_str(&format!(
                        ":arrivals up to {} h late seed {}",
                        delay.max_hours, delay.seed
                    ));
                }
                if let Some(path) = args.features.as_deref() {
                    append_features(path, &name, data, &whys, Rows::Join)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                }
                if let Some(path) = args.merge_features.as_deref() {
                    append_features(path, &name, data, &whys, Rows::Merge)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                }
            }
            run.pairs = scored_pairs
                .as_deref()
                .map(|scored| pairs::score(scored, &predicted));
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
        let report = Report {
            dataset: &args.dataset,
            kind,
            sample,
            arrival_delay,
            pairs: pair_counts,
            runs: &runs,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        if let Some(counts) = pair_counts {
            print_pairs(&runs, counts);
        } else {
            print_summary(&runs);
        }
        print_knobs(&base);
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
    record: bool,
) -> anyhow::Result<(Run, Vec<concord_core::ClusterId>, Vec<Why>)> {
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
    let models =
        Encoders::load(&config.model, &config.headline_model).context("cannot load the models")?;
    let pipeline = Pipeline::start(&config, models)?;
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
        pairs: None,
    };
    let mut whys = Vec::new();
    if record {
        let db = pipeline.store().connect_read_only()?;
        db.whys(|id, key, why| {
            whys.push(Why {
                id,
                key: key.to_owned(),
                why,
            });
            Ok(())
        })?;
    }
    tokio::task::spawn_blocking(move || pipeline.shutdown()).await?;
    Ok((run, replayed.predicted, whys))
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
        pairs: None,
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

/// `n/N (rate)`, or `-` when there is no such pair.
fn n_of(n: u64, total: u64, rate: Option<f64>) -> String {
    match rate {
        Some(rate) => format!("{n}/{total} ({rate:.3})"),
        None => "-".to_owned(),
    }
}

fn print_pairs(runs: &[Run], counts: PairTotals) {
    println!(
        "{} pairs scored, each replayed alone ({} without a label left out)\n",
        counts.scored, counts.unscored
    );
    println!("| rule | same together | different apart | accuracy | articles/s |");
    println!("|---|---|---|---|---|");
    for r in runs {
        let Some(p) = &r.pairs else { continue };
        let a = &p.all;
        println!(
            "| {} | {} | {} | **{}** | {:.0} |",
            r.rule,
            n_of(a.same_together, a.same, a.same_together_rate),
            n_of(a.different_apart, a.different, a.different_apart_rate),
            f(a.accuracy),
            r.articles_per_second
        );
        if r.refused > 0 {
            println!(
                "  ({} articles refused by text preparation, scored as singletons)",
                r.refused
            );
        }
    }
    println!("\n| languages | rule | same together | different apart | accuracy |");
    println!("|---|---|---|---|---|");
    let mut names: Vec<&String> = runs
        .iter()
        .filter_map(|r| r.pairs.as_ref())
        .flat_map(|p| p.lang_pairs.keys())
        .collect();
    names.sort();
    names.dedup();
    for name in names {
        for r in runs {
            let Some(c) = r.pairs.as_ref().and_then(|p| p.lang_pairs.get(name)) else {
                continue;
            };
            println!(
                "| {name} | {} | {} | {} | {} |",
                r.rule,
                n_of(c.same_together, c.same, c.same_together_rate),
                n_of(c.different_apart, c.different, c.different_apart_rate),
                f(c.accuracy)
            );
        }
    }
}

fn print_summary(runs: &[Run]) {
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
}

fn print_knobs(config: &Config) {
    let rule = &config.cluster.rule;
    println!(
        "\nknobs: window_hours={} k={} drift={}/day after {}h centering={:?} shrink={} lag={}h (after {}) balance={} link_weight={} threshold={} density_slope={} density_ref={} cross_lang_bonus={} token_weight={} token_cap={} title_affix_min={} (model {}) join={:?} at p>={} (trees: {}; second look in [{}, {}), quiet at <={} articles: from {}, titles join at p>={}) merge={:?} (weights {:?}; threshold rule {}/{}; min size {}); plain: cosine>={} within {}h",
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
        rule.join_rule,
        rule.join_probability,
        if rule.join_trees.is_empty() {
            "embedded"
        } else {
            rule.join_trees.as_str()
        },
        rule.headline_doubt_low,
        rule.headline_doubt_high,
        rule.quiet_volume,
        rule.quiet_doubt_low,
        rule.quiet_join_probability,
        rule.merge_rule,
        rule.merge_weights,
        rule.merge_threshold,
        rule.merge_threshold_cross_lang,
        rule.merge_min_size,
        rule.plain_threshold,
        rule.plain_window_hours
    );
}

/// One article's decision record, as the clusterer stored it.
struct Why {
    id: concord_core::ArticleId,
    key: String,
    why: serde_json::Value,
}

/// Which decision's candidates a training file holds.
#[derive(Debug, Clone, Copy)]
enum Rows {
    /// Join candidates; label: same event as the candidate's best-linked member.
    Join,
    /// Merge candidates; label: the arriving article's event is that of the
    /// candidate cluster's representative member.
    Merge,
}

/// Appends the candidates of every recorded decision, labelled by gold, to the
/// training CSV at `path`.
fn append_features(
    path: &Path,
    run: &str,
    data: &Dataset,
    whys: &[Why],
    rows: Rows,
) -> anyhow::Result<()> {
    let (names, list, member): (&[&str], &str, &str) = match rows {
        Rows::Join => (
            &concord_cluster::JoinFeatures::NAMES,
            "candidates",
            "best_member",
        ),
        Rows::Merge => (
            &concord_cluster::MERGE_FEATURE_NAMES,
            "merge_candidates",
            "representative",
        ),
    };
    let gold: std::collections::HashMap<&str, &str> = data
        .items
        .iter()
        .map(|i| (i.key.as_str(), i.gold.as_str()))
        .collect();
    let key_of: std::collections::HashMap<String, &str> = whys
        .iter()
        .map(|w| (w.id.to_string(), w.key.as_str()))
        .collect();
    let fresh = !path.exists() || std::fs::metadata(path)?.len() == 0;
    let mut w = std::io::BufWriter::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?,
    );
    // Join rows also carry the language both texts share (empty when none): the
    // model's per-language intercepts are fitted from it.
    let language = matches!(rows, Rows::Join);
    if fresh {
        let extra = if language { ",same_language" } else { "" };
        writeln!(w, "run,articles,key,label,score,{}{extra}", names.join(","))?;
    }
    let run = run.replace([',', '"', '\n'], "_");
    for Why { key, why, .. } in whys {
        let Some(own) = gold.get(key.as_str()) else {
            continue;
        };
        let Some(candidates) = why[list].as_array() else {
            continue;
        };
        for c in candidates {
            let member = c[member].as_str().and_then(|m| key_of.get(m));
            let Some(other) = member.and_then(|k| gold.get(k)) else {
                continue;
            };
            // An absent input (`headline_cosine` without a headline vector) is
            // null in the record and NaN in the file.
            let values: Option<Vec<f64>> = names
                .iter()
                .map(|n| match &c["features"][*n] {
                    serde_json::Value::Null => Some(f64::NAN),
                    v => v.as_f64(),
                })
                .collect();
            let Some(values) = values else {
                continue;
            };
            let mut values: Vec<String> = values.iter().map(|v| format!("{v:.6}")).collect();
            if language {
                let lang = c["features"]["same_language"].as_str().unwrap_or("");
                values.push(lang.replace([',', '"', '\n'], "_"));
            }
            writeln!(
                w,
                "{run},{},{},{},{:.6},{}",
                data.len(),
                key.replace(',', "_"),
                u8::from(own == other),
                c["score"].as_f64().unwrap_or(f64::NAN),
                values.join(",")
            )?;
        }
    }
    w.flush()?;
    Ok(())
}
