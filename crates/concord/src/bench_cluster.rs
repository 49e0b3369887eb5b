//! `concord bench cluster`: the store + index + clusterer path on synthetic
//! vectors, so it measures clustering, not the model.

use std::{
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use anyhow::Context;
use clap::Args;
use concord_cluster::{ClusterInput, Clusterer};
use concord_core::{Lang, UnitVector};
use concord_index::{IndexParams, VectorIndex};
use concord_store::{NewArticle, Store, Synchronous, content_hash};
use figment::Figment;
use jiff::{SignedDuration, Timestamp};

use crate::{bench::current_rss_mib, config};

#[derive(Debug, Args)]
pub struct ClusterBenchArgs {
    /// Stream sizes to measure, each from an empty store.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    sizes: Vec<usize>,
    /// Articles per day in the synthetic stream (OG2021's busiest days: ~900).
    #[arg(long, default_value_t = 1000)]
    per_day: usize,
    /// Articles per synthetic event, on average.
    #[arg(long, default_value_t = 8)]
    event_size: usize,
    #[arg(long, default_value_t = 512)]
    dim: usize,
}

/// A small deterministic generator (xorshift), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
}

pub fn run(figment: Figment, args: &ClusterBenchArgs) -> anyhow::Result<()> {
    let config = config::load(figment, &[])?;
    println!(
        "| articles | articles/s | assign p50 ms | assign p99 ms | index MiB | index B/article | clusterer B/article | clusters | RSS MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for &n in &args.sizes {
        let dir = tempfile::tempdir()?;
        let store = Store::open(dir.path(), Synchronous::Normal)?;
        let mut params = IndexParams::new(args.dim);
        params.max_elements_hint = n;
        params.m = config.index.m;
        params.ef_construction = config.index.ef_construction;
        params.ef_search = config.index.ef_search;
        params.exact_scan_below = config.index.exact_scan_below;
        let index = Arc::new(RwLock::new(VectorIndex::new(params)?));
        let mut clusterer = Clusterer::open(
            config.cluster.rule.clone(),
            args.dim,
            store.connect()?,
            Arc::clone(&index),
        )?;
        let mut ingest = store.connect()?;
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let langs: Vec<Lang> = ["en", "fr", "es", "pt", "de", "ar", "ru"]
            .iter()
            .filter_map(|l| Lang::parse(l).ok())
            .collect();
        // Events are local in time, as news is: article i reports one of the ~20 events
        // that started most recently. Centres are generated as events start.
        let mut centres: Vec<Vec<f32>> = Vec::new();
        let start: Timestamp = "2024-01-01T00:00:00Z".parse()?;
        let step = 86_400.0 / args.per_day as f64;
        let mut latencies = Vec::with_capacity(n);
        let started = Instant::now();
        for i in 0..n {
            let newest = i / args.event_size.max(1);
            while centres.len() <= newest {
                centres.push((0..args.dim).map(|_| rng.unit()).collect());
            }
            let event = newest.saturating_sub((rng.next() as usize) % 20);
            let centre = &centres[event];
            let raw: Vec<f32> = centre.iter().map(|c| c + 0.8 * rng.unit()).collect();
            let vector = UnitVector::normalize(raw).context("synthetic vector")?;
            let at = start + SignedDuration::from_secs((i as f64 * step) as i64);
            let title = format!("event{event} report{i} {}", rng.next() % 1000);
            let lang = langs[(rng.next() as usize) % langs.len()];
            let hash = content_hash(&title, "", None, at, Some(lang));
            let id = ingest
                .upsert_article(
                    &NewArticle {
                        external_id: format!("bench-{i}"),
                        source: None,
                        url: None,
                        lang: Some(lang),
                        lang_source: "given",
                        model_supports_lang: true,
                        published_at: at,
                        title: title.clone(),
                        content_hash: hash.clone(),
                        prepared_text: title.clone(),
                        truncated: false,
                    },
                    Timestamp::now(),
                )?
                .id();
            let t = Instant::now();
            clusterer.assign(&ClusterInput {
                id,
                content_hash: hash,
                published_at: at,
                lang: Some(lang),
                title,
                vector,
                model: "synthetic".into(),
            })?;
            latencies.push(t.elapsed());
            if (i + 1) % 10_000 == 0 {
                eprintln!(
                    "  {n}: {} articles, {:.0}/s",
                    i + 1,
                    (i + 1) as f64 / started.elapsed().as_secs_f64()
                );
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        latencies.sort();
        let pct = |p: f64| -> f64 {
            let idx =
                ((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1));
            latencies
                .get(idx)
                .copied()
                .unwrap_or(Duration::ZERO)
                .as_secs_f64()
                * 1000.0
        };
        let index_bytes = index
            .read()
            .map_err(|_| anyhow::anyhow!("index lock poisoned"))?
            .memory_bytes();
        println!(
            "| {n} | {:.0} | {:.2} | {:.2} | {:.0} | {:.0} | {:.0} | {} | {:.0} |",
            n as f64 / elapsed,
            pct(0.50),
            pct(0.99),
            index_bytes as f64 / 1048576.0,
            index_bytes as f64 / n as f64,
            clusterer.memory_bytes() as f64 / n as f64,
            clusterer.cluster_count(),
            current_rss_mib()
        );
    }
    println!(
        "\nassign = decide + one SQLite transaction + index insert; synthetic stream of {} articles/day, ~{} per event (each among the 20 newest events), dim {}; the vectors themselves are {} B/article (twice in the index: ours and the graph's)",
        args.per_day,
        args.event_size,
        args.dim,
        args.dim * 4
    );
    Ok(())
}
