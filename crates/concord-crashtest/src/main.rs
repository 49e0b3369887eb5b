//! `concord-crashtest`: SIGKILL the real `concord serve` at random points while
//! ingesting, restart it, and check that nothing acknowledged was lost.

use std::{path::PathBuf, time::Duration};

use anyhow::Context;
use clap::Parser;
use concord_crashtest::{Options, run};

#[derive(Debug, Parser)]
#[command(
    name = "concord-crashtest",
    about = "Crash harness for `concord serve`"
)]
struct Cli {
    /// SIGKILLs before the clean restarts.
    #[arg(long, default_value_t = 25)]
    kills: usize,
    /// Seed of the article stream, the kill points and the index damage.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Articles sent per second.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Distinct articles in the stream.
    #[arg(long, default_value_t = 400)]
    articles: usize,
    /// The `concord` binary (build it with `cargo build --release -p concord`).
    #[arg(long, env = "CONCORD_BINARY")]
    binary: PathBuf,
    /// Working directory of the service: `config/default.toml`'s model paths resolve
    /// from here (the repository root after `models/install.sh`).
    #[arg(long, default_value = ".")]
    workdir: PathBuf,
    /// Keep the data directory and logs here (default: a temporary directory, removed
    /// when the run passes).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Concurrent client threads.
    #[arg(long, default_value_t = 3)]
    writers: usize,
    /// `index.dump_every_inserts` for the service.
    #[arg(long, default_value_t = 10)]
    dump_every: u64,
    /// Chance of damaging the index dump before a restart.
    #[arg(long, default_value_t = 0.25)]
    damage_chance: f64,
    /// Seconds to wait for every article to be acknowledged and clustered at the end.
    #[arg(long, default_value_t = 180)]
    settle_secs: u64,
    /// No per-start progress lines.
    #[arg(long)]
    quiet: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let binary = std::fs::canonicalize(&cli.binary)
        .with_context(|| format!("no binary at {}", cli.binary.display()))?;
    let workdir = std::fs::canonicalize(&cli.workdir)
        .with_context(|| format!("no directory {}", cli.workdir.display()))?;
    let temp = match &cli.work_dir {
        Some(_) => None,
        None => Some(
            tempfile::Builder::new()
                .prefix("concord-crashtest-")
                .tempdir()?,
        ),
    };
    let work_dir = match (&cli.work_dir, &temp) {
        (Some(dir), _) => dir.clone(),
        (None, Some(t)) => t.path().to_path_buf(),
        (None, None) => anyhow::bail!("no work directory"),
    };
    let mut opts = Options::new(binary, workdir, work_dir.clone());
    opts.kills = cli.kills;
    opts.seed = cli.seed;
    opts.rate = cli.rate;
    opts.articles = cli.articles;
    opts.writers = cli.writers;
    opts.dump_every = cli.dump_every;
    opts.damage_chance = cli.damage_chance;
    opts.settle_timeout = Duration::from_secs(cli.settle_secs);
    opts.verbose = !cli.quiet;

    let report = run(&opts).context("the harness could not complete the run")?;
    eprint!("{}", report.details());
    println!("{}", report.summary_line());
    if !report.passed() {
        // keep the evidence
        if let Some(t) = temp {
            let kept = t.keep();
            eprintln!("data and logs kept in {}", kept.display());
        }
        anyhow::bail!("invariants broken (see above)");
    }
    Ok(())
}
