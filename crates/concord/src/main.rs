//! `concord`: the command line. Wiring only: parse flags, load config, call crates.

mod backup;
mod bench;
mod bench_cluster;
mod bulk;
mod config;
mod eval;
mod fit;
mod roles;
mod serve;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// jemalloc, not glibc malloc: under churn (index compactions, batch buffers on many
/// threads) glibc kept freed memory in per-thread arenas and a 30-minute soak's RSS
/// crept up by a third; jemalloc returns it (see the issue 6 note).
#[cfg(all(target_os = "linux", not(target_env = "msvc")))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Debug, Parser)]
#[command(
    name = "concord",
    version,
    about = "Cross-lingual news event clustering"
)]
struct Cli {
    /// Extra configuration file layered over config/default.toml.
    #[arg(long, global = true, env = "CONCORD_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP service.
    Serve(serve::ServeArgs),
    /// Print the prepared text (cleaned, truncated, language) of an article file.
    Prepare(serve::PrepareArgs),
    /// Replay a labelled dataset through the pipeline and print clustering quality.
    Eval(eval::EvalArgs),
    /// Fit the join model on `eval --features` rows: print the logistic's weights (or
    /// the merge score's), or write the boosted trees (`--trees`).
    FitJoin(fit::FitArgs),
    /// Copy the store, online and consistent, into a new data directory (restore: start
    /// `serve` on that directory; the index is rebuilt from the store).
    Backup(backup::BackupArgs),
    /// Print the OpenAPI 3.1 spec (what `docs/openapi.json` holds and `/openapi.json` serves).
    Openapi,
    /// Load a JSONL or CSV file of articles into a running service through its API, in
    /// batches (exit 0: all accepted; 2: some lines refused, each reported; 1: stopped).
    /// Re-running the same file changes nothing (external ids).
    Ingest(bulk::IngestArgs),
    /// Write the clusters and their members as NDJSON or CSV, from a data directory.
    Export(bulk::ExportArgs),
    /// Benchmarks that print numbers.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let figment = config::figment(cli.config.as_deref());
    match cli.command {
        Command::Serve(args) => serve::serve(figment, args),
        Command::Prepare(args) => serve::prepare(figment, &args),
        Command::Eval(args) => eval::run(figment, &args),
        Command::FitJoin(args) => fit::run(&args),
        Command::Backup(args) => backup::run(figment, &args),
        Command::Openapi => {
            print!("{}", concord_server::spec_json());
            Ok(())
        }
        Command::Ingest(args) => {
            if !bulk::ingest(figment, &args)? {
                std::process::exit(bulk::SOME_REFUSED);
            }
            Ok(())
        }
        Command::Export(args) => bulk::export(figment, &args),
        Command::Bench(bench) => bench::run(figment, bench),
    }
}
