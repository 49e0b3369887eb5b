//! `concord backup`: an online, consistent copy of the store into a new data directory.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use concord_core::config::StoreBackend;
use figment::Figment;

use crate::config;

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// An empty (or new) directory to write the copy into; it is a complete data directory.
    #[arg(long)]
    to: PathBuf,
    /// The data directory to copy (overrides data.dir).
    #[arg(long)]
    data_dir: Option<String>,
}

pub fn run(figment: Figment, args: &BackupArgs) -> anyhow::Result<()> {
    let config = config::load(figment, &[("data.dir", args.data_dir.clone())])?;
    if config.store.backend == StoreBackend::Postgres {
        bail!(
            "store.backend is postgres: back the database up with PostgreSQL's own tools \
             (pg_dump, or the provider's snapshots); concord backup copies the SQLite store"
        );
    }
    let store = concord_store::Store::open(&config.data.dir, concord_store::Synchronous::Normal)
        .with_context(|| format!("cannot open the store in {}", config.data.dir.display()))?;
    let started = std::time::Instant::now();
    let target = store
        .backup_to(&args.to)
        .with_context(|| format!("cannot back up into {}", args.to.display()))?;
    let bytes = std::fs::metadata(&target).map(|m| m.len()).unwrap_or(0);
    println!(
        "backed up {} to {} ({bytes} bytes, {} ms)",
        store.path().unwrap_or(&config.data.dir).display(),
        target.display(),
        started.elapsed().as_millis()
    );
    Ok(())
}
