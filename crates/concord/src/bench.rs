//! `concord bench embed`: model throughput and peak memory, beside the model
//! package's own reference encoder measured in the same run.

use std::{
    collections::BTreeMap,
    io::Write,
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use concord_embed::{HeadlineModel, Model, TokenizerBudget};
use figment::Figment;

use crate::{config, serve::split_title};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Embedding throughput (texts/s) and peak RSS at several batch sizes.
    Embed(EmbedBenchArgs),
    /// Clustering throughput, assignment latency and memory on synthetic vectors (no model).
    Cluster(crate::bench_cluster::ClusterBenchArgs),
}

#[derive(Debug, Args)]
pub struct EmbedBenchArgs {
    /// CSV with a `title` column (title-length texts).
    #[arg(
        long,
        default_value = "../shared/data/og2021/og2021_titles_clusters.csv"
    )]
    titles: PathBuf,
    /// How many titles to embed per batch size.
    #[arg(long, default_value_t = 2048)]
    n_titles: usize,
    /// Folder of article files (article-length texts): title line, then body.
    #[arg(long, default_value = "../shared/data/seeds")]
    articles: PathBuf,
    /// How many article-length texts to embed per batch size (variants of the files).
    #[arg(long, default_value_t = 128)]
    n_articles: usize,
    /// Batch sizes to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    batch_sizes: Vec<usize>,
    /// Embed exactly these texts instead (one JSON string per line; kind `given`): the
    /// raw-model baseline for a load run of the same texts (`scripts/load_mixed.py`).
    #[arg(long)]
    texts: Option<PathBuf>,
    /// Python of the environment `models/install.sh` made, for the reference encoder;
    /// `none` skips it.
    #[arg(long, default_value = "models/.venv/bin/python")]
    reference_python: String,
}

pub fn run(figment: Figment, command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Embed(args) => embed(figment, &args),
        BenchCommand::Cluster(args) => crate::bench_cluster::run(figment, &args),
    }
}

fn embed(figment: Figment, args: &EmbedBenchArgs) -> anyhow::Result<()> {
    let config = config::load(figment, &[])?;
    if args.batch_sizes.contains(&0) {
        bail!("batch sizes must be at least 1");
    }
    let rss_before = peak_rss_mib();
    let started = Instant::now();
    let mut model = Model::load(&config.model).context("cannot load the model")?;
    let load_secs = started.elapsed().as_secs_f64();
    let budget = TokenizerBudget::load(&config.model.dir, config.model.max_tokens)?;
    println!(
        "model {} dim {} loaded in {:.2}s, rss {:.0} MiB -> {:.0} MiB",
        model.name(),
        model.dim(),
        load_secs,
        rss_before,
        current_rss_mib()
    );

    if let Some(path) = &args.texts {
        let texts = read_given(path)?;
        println!("texts: {} given", texts.len());
        println!("\n| texts | batch | concord texts/s | peak RSS MiB |\n|---|---|---|---|");
        for &batch in &args.batch_sizes {
            let (rate, rss) = measure(&mut model, &texts, batch)?;
            println!("| given | {batch} | {rate:.0} | {rss:.0} |");
        }
        return Ok(());
    }
    let titles = read_titles(&args.titles, args.n_titles)?;
    let articles = article_texts(&args.articles, args.n_articles, &config, &budget)?;
    let mean_tokens = |texts: &[String]| {
        texts
            .iter()
            .map(|t| concord_text::TokenBudget::count(&budget, t))
            .sum::<usize>() as f64
            / texts.len().max(1) as f64
    };
    println!(
        "texts: {} titles (mean {:.1} tokens), {} articles (mean {:.1} tokens, budget {})",
        titles.len(),
        mean_tokens(&titles),
        articles.len(),
        mean_tokens(&articles),
        config.model.max_tokens
    );

    let mut ours: BTreeMap<(&str, usize), (f64, f64)> = BTreeMap::new();
    for (kind, texts) in [("title", &titles), ("article", &articles)] {
        for &batch in &args.batch_sizes {
            ours.insert((kind, batch), measure(&mut model, texts, batch)?);
        }
    }

    let reference = if args.reference_python == "none" {
        None
    } else {
        Some((
            reference(&args.reference_python, &titles, &args.batch_sizes)?,
            reference(&args.reference_python, &articles, &args.batch_sizes)?,
        ))
    };

    println!("\n| texts | batch | concord texts/s | peak RSS MiB | reference texts/s | ratio |");
    println!("|---|---|---|---|---|---|");
    for ((kind, batch), (rate, rss)) in &ours {
        let reference_rate = reference.as_ref().and_then(|(titles, articles)| {
            let table = if *kind == "title" { titles } else { articles };
            table.rates.get(&batch.to_string()).copied()
        });
        match reference_rate {
            Some(r) => println!(
                "| {kind} | {batch} | {rate:.0} | {rss:.0} | {r:.0} | {:.2} |",
                rate / r
            ),
            None => println!("| {kind} | {batch} | {rate:.0} | {rss:.0} | - | - |"),
        }
    }
    if let Some((titles, articles)) = reference {
        println!(
            "reference encoder peak RSS: titles {:.0} MiB, articles {:.0} MiB",
            titles.peak_rss_mib, articles.peak_rss_mib
        );
    }
    // The headline model reads every article's title once more.
    if let Some(mut headline) = HeadlineModel::load(&config.model, &config.headline_model)
        .context("cannot load the headline model")?
    {
        println!(
            "\nheadline model {} dim {} (prefix {:?}, budget {} tokens), rss {:.0} MiB",
            headline.name(),
            headline.dim(),
            config.headline_model.prefix,
            config.headline_model.max_tokens,
            current_rss_mib()
        );
        println!("\n| texts | batch | headline model texts/s | peak RSS MiB |\n|---|---|---|---|");
        for &batch in &args.batch_sizes {
            let (rate, rss) =
                measure_with(&titles, batch, |chunk| headline.embed(chunk).map(drop))?;
            println!("| title | {batch} | {rate:.0} | {rss:.0} |");
        }
    }
    Ok(())
}

/// Texts/s embedding `texts` in batches of `batch`, and the peak RSS (MiB) meanwhile.
fn measure(model: &mut Model, texts: &[String], batch: usize) -> anyhow::Result<(f64, f64)> {
    measure_with(texts, batch, |chunk| model.embed(chunk).map(drop))
}

/// [`measure`] for any model call `embed`.
fn measure_with(
    texts: &[String],
    batch: usize,
    mut embed: impl FnMut(&[String]) -> Result<(), concord_embed::EmbedError>,
) -> anyhow::Result<(f64, f64)> {
    // Warm up this shape once, then measure from a fresh peak.
    embed(&texts[..batch.min(texts.len())])?;
    reset_peak_rss();
    let t = Instant::now();
    for chunk in texts.chunks(batch) {
        embed(chunk)?;
    }
    Ok((
        texts.len() as f64 / t.elapsed().as_secs_f64(),
        peak_rss_mib(),
    ))
}

/// One JSON string per line.
fn read_given(path: &Path) -> anyhow::Result<Vec<String>> {
    let raw =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let texts = raw
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str::<String>(line)
                .with_context(|| format!("{} line {}: not a JSON string", path.display(), i + 1))
        })
        .collect::<anyhow::Result<Vec<String>>>()?;
    if texts.is_empty() {
        bail!("{} holds no texts", path.display());
    }
    Ok(texts)
}

fn read_titles(path: &Path, n: usize) -> anyhow::Result<Vec<String>> {
    let mut reader = csv::Reader::from_path(path)
        .with_context(|| format!("cannot read titles from {}", path.display()))?;
    let headers = reader.headers()?.clone();
    let column = headers
        .iter()
        .position(|h| h == "title")
        .with_context(|| format!("{} has no `title` column", path.display()))?;
    let mut titles = Vec::with_capacity(n);
    for record in reader.records() {
        let record = record?;
        if let Some(title) = record.get(column) {
            titles.push(title.to_owned());
        }
        if titles.len() == n {
            break;
        }
    }
    if titles.is_empty() {
        bail!("no titles in {}", path.display());
    }
    Ok(titles)
}

/// Prepared article texts; more than there are files by rotating paragraphs,
/// so every text differs but keeps an article's length and vocabulary.
fn article_texts(
    dir: &Path,
    n: usize,
    config: &concord_core::Config,
    budget: &TokenizerBudget,
) -> anyhow::Result<Vec<String>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    let mut bases = Vec::new();
    for file in &files {
        let raw = std::fs::read_to_string(file)?;
        let (title, body) = split_title(&raw);
        let paragraphs: Vec<&str> = body
            .split("\n\n")
            .filter(|p| !p.trim().is_empty())
            .collect();
        bases.push((
            title.to_owned(),
            paragraphs
                .iter()
                .map(|p| (*p).to_owned())
                .collect::<Vec<_>>(),
        ));
    }
    if bases.is_empty() {
        bail!("no .txt articles in {}", dir.display());
    }
    let mut texts = Vec::with_capacity(n);
    for i in 0..n {
        let (title, paragraphs) = &bases[i % bases.len()];
        let rotation = (i / bases.len()) % paragraphs.len().max(1);
        let mut body: Vec<&str> = paragraphs.iter().map(String::as_str).collect();
        body.rotate_left(rotation);
        let body = body.join("\n\n");
        let prepared = concord_text::prepare(
            &concord_text::ArticleInput {
                title,
                body: &body,
                lang: None,
            },
            &config.model.languages,
            budget,
        )?;
        texts.push(prepared.text);
    }
    Ok(texts)
}

/// What `models/reference_bench.py --json` prints: `{"1": texts/s, "8": …, "peak_rss_mib": …}`.
#[derive(Debug)]
struct ReferenceResult {
    rates: BTreeMap<String, f64>,
    peak_rss_mib: f64,
}

impl ReferenceResult {
    fn parse(line: &str) -> anyhow::Result<Self> {
        let map: BTreeMap<String, serde_json::Value> = serde_json::from_str(line)?;
        let rates = map
            .iter()
            .filter(|(k, _)| k.parse::<usize>().is_ok())
            .filter_map(|(k, v)| v.as_f64().map(|r| (k.clone(), r)))
            .collect();
        let peak_rss_mib = map
            .get("peak_rss_mib")
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(0.0);
        Ok(Self {
            rates,
            peak_rss_mib,
        })
    }
}

fn reference(
    python: &str,
    texts: &[String],
    batch_sizes: &[usize],
) -> anyhow::Result<ReferenceResult> {
    let mut file = tempfile_in_target()?;
    for text in texts {
        serde_json::to_writer(&mut file.1, &serde_json::json!({ "text": text }))?;
        file.1.write_all(b"\n")?;
    }
    file.1.flush()?;
    let sizes = batch_sizes
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let output = Command::new(python)
        .arg("models/reference_bench.py")
        .arg("--texts")
        .arg(&file.0)
        .arg("--batch-sizes")
        .arg(&sizes)
        .arg("--json")
        .output()
        .with_context(|| {
            format!("cannot run the reference encoder with {python} (run models/install.sh)")
        })?;
    let _ = std::fs::remove_file(&file.0);
    if !output.status.success() {
        bail!(
            "reference encoder failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .unwrap_or("");
    ReferenceResult::parse(line).with_context(|| format!("unexpected reference output: {stdout}"))
}

fn tempfile_in_target() -> anyhow::Result<(PathBuf, std::io::BufWriter<std::fs::File>)> {
    let path = std::env::temp_dir().join(format!("concord-bench-{}.jsonl", std::process::id()));
    let file = std::fs::File::create(&path)?;
    Ok((path, std::io::BufWriter::new(file)))
}

fn status_kib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
}

pub(crate) fn peak_rss_mib() -> f64 {
    status_kib("VmHWM:") / 1024.0
}

pub(crate) fn current_rss_mib() -> f64 {
    status_kib("VmRSS:") / 1024.0
}

/// Resets the kernel's peak-RSS mark (Linux ≥ 4.0), so each measurement has its own peak.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}
