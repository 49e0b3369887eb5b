//! `concord bench cluster`: the store + index + clusterer path on synthetic
//! vectors, so it measures clustering, not the model.

use std::{
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use anyhow::Context;
use clap::Args;
use concord_cluster::{ClusterInput, Clusterer};
use concord_core::{ArticleId, Embedding, Lang, UnitVector};
use concord_index::{IndexParams, VectorIndex};
use concord_store::{NewArticle, Store, Synchronous, content_hash};
use cpu_time::ThreadTime;
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
    /// Entries per batch of graph insertions (default: the index's, 256).
    #[arg(long)]
    graph_batch: Option<usize>,
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

/// Queries for the recall measurement.
const RECALL_QUERIES: usize = 200;

/// Articles between the progress snapshots (latency and memory so far).
const SNAPSHOT_EVERY: usize = 100_000;

pub fn run(figment: Figment, args: &ClusterBenchArgs) -> anyhow::Result<()> {
    let config = config::load(figment, &[])?;
    println!(
        "| articles | articles/s | assign p50 ms | p99 ms | p99.9 ms | max ms | CPU p99 ms | vectors B/art | graph B/art | maps B/art | clusterer B/art | state B/art | graph recall@10 / of sim ≥ threshold | clusters | RSS MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for &n in &args.sizes {
        let dir = tempfile::tempdir()?;
        let store = Store::open(dir.path(), Synchronous::Normal)?;
        let mut params = IndexParams::new(args.dim);
        params.max_elements_hint = n;
        params.m = config.index.m;
        params.ef_construction = config.index.ef_construction;
        params.ef_search = config.index.ef_search;
        params.exact_scan_below = config.index.exact_scan_below;
        if let Some(batch) = args.graph_batch {
            params.graph_batch = batch;
        }
        let index = Arc::new(RwLock::new(VectorIndex::new(params)?));
        let mut clusterer = Clusterer::open(
            config.cluster.rule.clone(),
            args.dim,
            store.connect()?.without_auto_checkpoint()?,
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
        // CPU time of the assigning thread: what the latency would be with
        // the cores to itself (the graph batches run on rayon's threads, so
        // only their wall time shows)
        let mut cpu = Vec::with_capacity(n);
        let mut ids = Vec::with_capacity(n);
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
            ids.push(id);
            let t = Instant::now();
            let c = ThreadTime::try_now().ok();
            clusterer.assign(&ClusterInput {
                id,
                content_hash: hash,
                published_at: at,
                lang: Some(lang),
                text: String::new(),
                title,
                embedding: Embedding::text_only(vector),
                model: "synthetic".into(),
            })?;
            latencies.push(t.elapsed());
            cpu.push(c.and_then(|c| c.try_elapsed().ok()).unwrap_or_default());
            if (i + 1) % 10_000 == 0 {
                eprintln!(
                    "  {n}: {} articles, {:.0}/s",
                    i + 1,
                    (i + 1) as f64 / started.elapsed().as_secs_f64()
                );
            }
            if (i + 1) % SNAPSHOT_EVERY == 0 && i + 1 < n {
                // a long run cut short still leaves figures behind
                let from = latencies.len() - SNAPSHOT_EVERY;
                let last = sorted(&latencies[from..]);
                let last_cpu = sorted(&cpu[from..]);
                let memory = index
                    .read()
                    .map_err(|_| anyhow::anyhow!("index lock poisoned"))?
                    .memory();
                let state = memory.graph + memory.maps + clusterer.memory_bytes();
                eprintln!(
                    "  {n}: at {} articles, the last {SNAPSHOT_EVERY}: p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.0} ms, CPU p99 {:.2} ms; state {:.0} B/article (graph {:.0}, maps {:.0}); RSS {:.0} MiB",
                    i + 1,
                    ms(&last, 0.5),
                    ms(&last, 0.99),
                    ms(&last, 0.999),
                    ms(&last, 1.0),
                    ms(&last_cpu, 0.99),
                    state as f64 / (i + 1) as f64,
                    memory.graph as f64 / (i + 1) as f64,
                    memory.maps as f64 / (i + 1) as f64,
                    current_rss_mib()
                );
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        let (latencies, cpu) = (sorted(&latencies), sorted(&cpu));
        let index = index
            .read()
            .map_err(|_| anyhow::anyhow!("index lock poisoned"))?;
        let memory = index.memory();
        let recall = graph_recall(&index, &ids, config.cluster.rule.threshold, &mut rng)?;
        let per = |bytes: usize| bytes as f64 / n as f64;
        let clusterer_bytes = clusterer.memory_bytes();
        println!(
            "| {n} | {:.0} | {:.2} | {:.2} | {:.2} | {:.0} | {:.2} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {} | {} | {:.0} |",
            n as f64 / elapsed,
            ms(&latencies, 0.50),
            ms(&latencies, 0.99),
            ms(&latencies, 0.999),
            ms(&latencies, 1.0),
            ms(&cpu, 0.99),
            per(memory.vectors),
            per(memory.graph),
            per(memory.maps),
            per(clusterer_bytes),
            per(memory.graph + memory.maps + clusterer_bytes),
            recall.map_or("exact".to_owned(), |(all, rel)| format!(
                "{all:.3} / {rel:.3}"
            )),
            clusterer.cluster_count(),
            current_rss_mib()
        );
    }
    println!(
        "\nassign = decide + one SQLite transaction + index append (the assignment that completes a batch of {} also inserts the batch into the graph, on rayon's threads); CPU = the assigning thread's CPU time, i.e. the latency without other processes on the cores; synthetic stream of {} articles/day, ~{} per event (each among the 20 newest events), dim {}. Memory per article: vectors = the one copy ({} B), graph = hnsw_rs points and neighbour lists, maps = slot, id and time maps, clusterer = Clusterer::memory_bytes; state = graph + maps + clusterer, i.e. everything but the vectors. Graph recall: graph search (no window) against an exact scan, {} perturbed copies of indexed vectors, of the exact top 10 and of those at or above the join threshold ({}); \"exact\" when the index is below exact_scan_below and search is exact anyway.",
        args.graph_batch
            .unwrap_or(IndexParams::new(args.dim).graph_batch),
        args.per_day,
        args.event_size,
        args.dim,
        args.dim * 4,
        RECALL_QUERIES,
        config.cluster.rule.threshold,
    );
    Ok(())
}

fn sorted(durations: &[Duration]) -> Vec<Duration> {
    let mut v = durations.to_vec();
    v.sort_unstable();
    v
}

/// Percentile `p` (0 to 1, 1 = max) of `sorted`, in milliseconds.
fn ms(sorted: &[Duration], p: f64) -> f64 {
    let at = ((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(at).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// Recall of [`VectorIndex::search`] without a window against
/// [`VectorIndex::search_exact`]: of the exact top 10, and of those exact
/// hits at least as similar as `relevant` (the neighbours that can decide a
/// join). `None` when the index is small enough that `search` scans exactly.
fn graph_recall(
    index: &VectorIndex,
    ids: &[ArticleId],
    relevant: f32,
    rng: &mut Rng,
) -> anyhow::Result<Option<(f64, f64)>> {
    if ids.is_empty() || index.graph_len() < index.params().exact_scan_below {
        return Ok(None);
    }
    let (mut found, mut wanted) = (0usize, 0usize);
    let (mut found_rel, mut wanted_rel) = (0usize, 0usize);
    for _ in 0..RECALL_QUERIES {
        let id = ids[(rng.next() as usize) % ids.len()];
        let Some(v) = index.vector(id) else {
            continue;
        };
        let raw: Vec<f32> = v.iter().map(|x| x + 0.05 * rng.unit()).collect();
        let q = UnitVector::normalize(raw).context("recall query")?;
        let approx = index.search(&q, 10, None)?;
        for e in index.search_exact(&q, 10, None)? {
            let hit = approx.iter().any(|h| h.id == e.id);
            found += usize::from(hit);
            wanted += 1;
            if e.similarity >= relevant {
                found_rel += usize::from(hit);
                wanted_rel += 1;
            }
        }
    }
    let ratio = |f: usize, w: usize| if w == 0 { 1.0 } else { f as f64 / w as f64 };
    Ok((wanted > 0).then(|| (ratio(found, wanted), ratio(found_rel, wanted_rel))))
}
