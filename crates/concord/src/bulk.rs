//! `concord ingest` and `concord export`: wiring of concord-bulk to the command line.

use std::{
    fs::File,
    io::{self, IsTerminal, Read, Write},
    path::PathBuf,
    time::Duration,
};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use concord_bulk::{export, ingest, source};
use concord_core::config::StoreBackend;
use figment::Figment;
use indicatif::{ProgressBar, ProgressStyle};
use jiff::{Timestamp, civil::Date, tz::TimeZone};

use crate::config;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum InputFormat {
    Jsonl,
    Csv,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// JSONL (one article per line, in the shape `POST /v1/articles` takes) or CSV (a
    /// header of those field names: external_id, title, body, lang, published_at, url,
    /// source); `-` reads standard input.
    file: PathBuf,
    /// The input's format; by default `.csv` files are CSV and anything else JSONL.
    #[arg(long, value_enum)]
    format: Option<InputFormat>,
    /// The running service; by default the configured `server.listen` address.
    #[arg(long)]
    url: Option<String>,
    /// An API key with the ingest (or admin) role. Taken from the environment so it
    /// stays out of shell history and process listings.
    #[arg(long, env = "CONCORD_API_KEY", hide_env_values = true)]
    key: String,
    /// Articles per request (at most 500, the API's batch limit).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=500))]
    batch: u16,
    /// Attempts per request while the service is busy (429/503) or unreachable.
    #[arg(long, default_value_t = 20)]
    attempts: u32,
}

/// Exit status when the whole input was read but some lines were refused.
pub const SOME_REFUSED: i32 = 2;

/// Loads a file into a running service; `Ok(false)` when some lines were refused.
pub fn ingest(figment: Figment, args: &IngestArgs) -> anyhow::Result<bool> {
    let base = config::load(figment, &[])?;
    config::init_tracing_quiet(&base);
    let url = match &args.url {
        Some(url) => url.clone(),
        None => format!("http://{}/", base.server.listen),
    };
    let url: ingest::Url = url
        .parse()
        .with_context(|| format!("--url {url:?} is not a URL"))?;
    let format = match args.format {
        Some(InputFormat::Jsonl) => source::Format::Jsonl,
        Some(InputFormat::Csv) => source::Format::Csv,
        None => source::Format::of_path(&args.file),
    };
    let (input, size): (Box<dyn Read>, Option<u64>) = if args.file.as_os_str() == "-" {
        (Box::new(io::stdin().lock()), None)
    } else {
        let file = File::open(&args.file)
            .with_context(|| format!("cannot open {}", args.file.display()))?;
        let size = file.metadata().ok().map(|m| m.len());
        (Box::new(file), size)
    };
    let records = source::Records::new(input, format)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let client = ingest::Client::new(ingest::Options {
        url: url.clone(),
        key: args.key.clone(),
        batch: usize::from(args.batch),
        attempts: args.attempts,
        max_wait: Duration::from_secs(30),
    })?;
    let bar = progress(size);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let tally = runtime.block_on(client.load(
        records,
        |refusal| bar.suspend(|| eprintln!("refused: {refusal}")),
        |tally, bytes| {
            if size.is_some() {
                bar.set_position(bytes);
            }
            bar.set_message(format!(
                "{} queued, {} unchanged, {} refused",
                tally.queued, tally.unchanged, tally.refused
            ));
        },
    ));
    bar.finish_and_clear();
    let tally = tally.with_context(|| format!("ingest into {url} stopped"))?;
    println!(
        "read {} records: {} accepted ({} queued, {} unchanged), {} refused",
        tally.read,
        tally.accepted(),
        tally.queued,
        tally.unchanged,
        tally.refused
    );
    Ok(tally.refused == 0)
}

/// A bar over the file's bytes, or a spinner for standard input; drawn on stderr
/// only when it is a terminal.
fn progress(size: Option<u64>) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    match size {
        Some(size) => ProgressBar::new(size).with_style(
            ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {msg} ({eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner(),
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OutputFormat {
    Ndjson,
    Csv,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The data directory to read (the service may keep running); by default the
    /// configured `data.dir`.
    #[arg(long, conflicts_with = "url")]
    data_dir: Option<String>,
    /// Read from a running service's API instead (e.g. http://127.0.0.1:8080), with the
    /// key in CONCORD_API_KEY (any role).
    #[arg(long)]
    url: Option<String>,
    /// The API key for --url.
    #[arg(long, env = "CONCORD_API_KEY", hide_env_values = true)]
    key: Option<String>,
    /// NDJSON: one cluster per line with its members; CSV: one member per row.
    #[arg(long, value_enum, default_value = "ndjson")]
    format: OutputFormat,
    /// Only clusters with a member published on or after this date (UTC) or time (RFC 3339).
    #[arg(long, value_parser = instant)]
    from: Option<Timestamp>,
    /// Only clusters with a member published before this date (UTC) or time.
    #[arg(long, value_parser = instant)]
    until: Option<Timestamp>,
    /// Write here instead of standard output.
    #[arg(long, short)]
    out: Option<PathBuf>,
}

/// A date (its midnight UTC) or an RFC 3339 time.
fn instant(s: &str) -> Result<Timestamp, String> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    let date: Date = s
        .parse()
        .map_err(|e| format!("expected a date (2021-07-23) or an RFC 3339 time: {e}"))?;
    TimeZone::UTC
        .to_timestamp(date.to_datetime(jiff::civil::Time::midnight()))
        .map_err(|e| e.to_string())
}

pub fn export(figment: Figment, args: &ExportArgs) -> anyhow::Result<()> {
    let config = config::load(figment, &[("data.dir", args.data_dir.clone())])?;
    config::init_tracing_quiet(&config);
    if let (Some(from), Some(until)) = (args.from, args.until)
        && until <= from
    {
        bail!("--until ({until}) must be after --from ({from})");
    }
    let format = match args.format {
        OutputFormat::Ndjson => export::Format::Ndjson,
        OutputFormat::Csv => export::Format::Csv,
    };
    let out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        ),
        None => Box::new(io::stdout().lock()),
    };
    let mut writer = export::Writer::new(io::BufWriter::new(out), format)?;
    match &args.url {
        Some(url) => {
            let key = args
                .key
                .clone()
                .context("--url needs an API key in CONCORD_API_KEY (or --key)")?;
            let parsed: ingest::Url = url
                .parse()
                .with_context(|| format!("--url {url:?} is not a URL"))?;
            let client = ingest::Client::new(ingest::Options {
                url: parsed,
                key,
                batch: 1,
                attempts: 20,
                max_wait: Duration::from_secs(30),
            })?;
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?
                .block_on(export::from_api(
                    &client,
                    args.from,
                    args.until,
                    &mut writer,
                ))
                .with_context(|| format!("cannot export from {url}"))?;
        }
        None => match config.store.backend {
            StoreBackend::Sqlite => {
                export::from_data_dir(&config.data.dir, args.from, args.until, &mut writer)
                    .with_context(|| format!("cannot export from {}", config.data.dir.display()))?
            }
            StoreBackend::Postgres => {
                let store = concord_pipeline::open_store(&config)
                    .context("cannot open the PostgreSQL store (store.postgres_url)")?;
                export::from_store(&store, args.from, args.until, &mut writer)
                    .context("cannot export from the PostgreSQL store")?
            }
        },
    }
    let written = writer.finish()?;
    eprintln!(
        "exported {} clusters, {} articles",
        written.clusters, written.articles
    );
    Ok(())
}
