//! Prints insert throughput, search latency, recall, memory and dump/load
//! times for a synthetic index. Not a test: numbers, never assertions.
//!
//! ```text
//! cargo run --release -p concord-index --example index_bench -- \
//!     [--n 100000] [--dim 512] [--m 10] [--efc 200] [--efs 256] [--uniform] [--seq] \
//!     [--rebuild] [--cache DIR]
//! ```
//!
//! `--cache DIR` reuses a dump of an index built with the same parameters
//! (and writes one when there is none); `--rebuild` times `rebuild()`.
//!
//! The first 90% are bulk-loaded with `insert_batch` (all cores), the last
//! 10% inserted one by one, as the clusterer does (`--seq`: all one by one).
//! Data: unit vectors around `n / 50` random centres (cosine to the centre
//! about 0.7, like near-duplicate news), or uniform with `--uniform` (the
//! worst case for HNSW). One article every 26 s, so 100k span 30 days: a 12 h
//! window holds about 1.7k entries, 48 h 6.6k (exact scans by default) and
//! 7 days 23k (graph). Queries are perturbed copies of indexed vectors.

use std::collections::HashSet;
use std::error::Error;
use std::time::{Duration, Instant};

use concord_core::{ArticleId, UnitVector};
use concord_index::{Hit, IndexParams, TimeWindow, VectorIndex};
use jiff::Timestamp;

struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    fn raw(&mut self, dim: usize) -> Vec<f32> {
        let v: Vec<f32> = (0..dim).map(|_| self.f32()).collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / n).collect()
    }

    fn near(&mut self, centre: &[f32], spread: f32) -> Result<UnitVector, Box<dyn Error>> {
        let noise = self.raw(centre.len());
        let v = centre
            .iter()
            .zip(noise)
            .map(|(c, e)| c + spread * e)
            .collect();
        Ok(UnitVector::normalize(v)?)
    }
}

struct Args {
    n: usize,
    dim: usize,
    m: usize,
    efc: usize,
    efs: usize,
    uniform: bool,
    seq: bool,
    rebuild: bool,
    cache: Option<std::path::PathBuf>,
}

fn args() -> Result<Args, Box<dyn Error>> {
    let mut a = Args {
        n: 100_000,
        dim: 512,
        m: 10,
        efc: 200,
        efs: 256,
        uniform: false,
        seq: false,
        rebuild: false,
        cache: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if ["--uniform", "--seq", "--rebuild"].contains(&flag.as_str()) {
            a.uniform |= flag == "--uniform";
            a.seq |= flag == "--seq";
            a.rebuild |= flag == "--rebuild";
            continue;
        }
        if flag == "--cache" {
            a.cache = Some(it.next().ok_or("missing value")?.into());
            continue;
        }
        let value: usize = it.next().ok_or("missing value")?.parse()?;
        match flag.as_str() {
            "--n" => a.n = value,
            "--dim" => a.dim = value,
            "--m" => a.m = value,
            "--efc" => a.efc = value,
            "--efs" => a.efs = value,
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    Ok(a)
}

fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<usize>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn mib(b: usize) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

fn summary(label: &str, mut times: Vec<Duration>, recall: Option<(f64, f64)>) {
    times.sort();
    let pct =
        |p: f64| times.get(((times.len() as f64 * p) as usize).min(times.len().saturating_sub(1)));
    let us = |d: Option<&Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1e6);
    let mean = times.iter().sum::<Duration>().as_secs_f64() * 1e6 / times.len().max(1) as f64;
    let recall = recall.map_or(String::new(), |(r, rel)| {
        format!("  recall@10 {r:.3}, of sim>={RELEVANT} {rel:.3}")
    });
    println!(
        "{label:<34} mean {mean:>8.0} us  p50 {:>8.0}  p90 {:>8.0}  p99 {:>8.0}{recall}",
        us(pct(0.5)),
        us(pct(0.9)),
        us(pct(0.99)),
    );
}

fn recall(approx: &[Hit], exact: &[Hit]) -> f64 {
    let truth: HashSet<ArticleId> = exact.iter().map(|h| h.id).collect();
    approx.iter().filter(|h| truth.contains(&h.id)).count() as f64 / exact.len().max(1) as f64
}

/// Similarity above which a neighbour matters to clustering.
const RELEVANT: f32 = 0.5;

/// (found, total) exact hits at or above [`RELEVANT`].
fn relevant(approx: &[Hit], exact: &[Hit]) -> (usize, usize) {
    let found: HashSet<ArticleId> = approx.iter().map(|h| h.id).collect();
    let wanted: Vec<&Hit> = exact.iter().filter(|h| h.similarity >= RELEVANT).collect();
    (
        wanted.iter().filter(|h| found.contains(&h.id)).count(),
        wanted.len(),
    )
}

fn run_queries(
    label: &str,
    index: &VectorIndex,
    queries: &[(UnitVector, Timestamp)],
    window: Option<Duration>,
) -> Result<(), Box<dyn Error>> {
    let win = |t: Timestamp| -> Result<Option<TimeWindow>, Box<dyn Error>> {
        Ok(match window {
            None => None,
            Some(w) => {
                let half = jiff::SignedDuration::try_from(w / 2)?;
                Some(TimeWindow::new(t.checked_sub(half)?, t.checked_add(half)?))
            }
        })
    };
    let mut times = Vec::with_capacity(queries.len());
    for (q, t) in queries {
        let w = win(*t)?;
        let start = Instant::now();
        let hits = index.search(q, 10, w)?;
        times.push(start.elapsed());
        std::hint::black_box(hits);
    }
    let mut total = 0.0;
    let (mut rel_found, mut rel_total) = (0, 0);
    let checked = queries.len().min(200);
    for (q, t) in &queries[..checked] {
        let w = win(*t)?;
        let (approx, exact) = (index.search(q, 10, w)?, index.search_exact(q, 10, w)?);
        total += recall(&approx, &exact);
        let (f, n) = relevant(&approx, &exact);
        rel_found += f;
        rel_total += n;
    }
    let rel = rel_found as f64 / rel_total.max(1) as f64;
    summary(label, times, Some((total / checked.max(1) as f64, rel)));
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let a = args()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "n {} dim {} m {} ef_construction {} ef_search {} data {} cores {cores}",
        a.n,
        a.dim,
        a.m,
        a.efc,
        a.efs,
        if a.uniform { "uniform" } else { "clustered" }
    );
    let mut rng = Rng(42);
    let centres: Vec<Vec<f32>> = (0..(a.n / 50).max(1)).map(|_| rng.raw(a.dim)).collect();
    let t0 = Timestamp::from_second(1_700_000_000)?;
    let at = |i: usize| t0.checked_add(jiff::SignedDuration::from_secs(26 * i as i64));
    let mut data = Vec::with_capacity(a.n);
    for _ in 0..a.n {
        let v = if a.uniform {
            UnitVector::normalize(rng.raw(a.dim))?
        } else {
            let c = &centres[(rng.next_u64() % centres.len() as u64) as usize];
            rng.near(c, 1.0)?
        };
        data.push(v);
    }
    let mut queries = Vec::new();
    for _ in 0..1000 {
        let i = (rng.next_u64() % a.n as u64) as usize;
        queries.push((rng.near(data[i].as_slice(), 0.5)?, at(i)?));
    }

    let params = IndexParams {
        max_elements_hint: a.n,
        m: a.m,
        ef_construction: a.efc,
        ef_search: a.efs,
        ..IndexParams::new(a.dim)
    };
    let rss0 = rss_bytes();
    let cached = a.cache.as_ref().and_then(|dir| {
        VectorIndex::load(dir)
            .ok()
            .filter(|(index, mark)| *index.params() == params && *mark == a.n as u64 + a.seq as u64)
    });
    let mut index = match cached {
        Some((index, _)) => {
            println!("loaded the index from the cache (insert timings skipped)");
            index
        }
        None => build(&a, params, &data, &at, cores)?,
    };
    let memory = index.memory();
    println!(
        "memory: memory() {:.0} MiB (vectors {:.0}, graph {:.0}, maps {:.0}; graph {:.0} B/entry), rss growth {:.0} MiB",
        mib(memory.total()),
        mib(memory.vectors),
        mib(memory.graph),
        mib(memory.maps),
        memory.graph as f64 / a.n as f64,
        mib(rss_bytes().saturating_sub(rss0)),
    );
    if let Some(dir) = &a.cache {
        index.dump(dir, a.n as u64 + a.seq as u64)?;
    }
    run_queries("search, no window", &index, &queries, None)?;
    run_queries(
        "search, 48 h window",
        &index,
        &queries,
        Some(Duration::from_secs(48 * 3600)),
    )?;
    run_queries(
        "search, 7 day window",
        &index,
        &queries,
        Some(Duration::from_secs(7 * 24 * 3600)),
    )?;
    run_queries(
        "search, 12 h window",
        &index,
        &queries,
        Some(Duration::from_secs(12 * 3600)),
    )?;

    let mut removed = 0;
    for i in (0..a.n).step_by(20) {
        removed += usize::from(index.remove(ArticleId(i as u64)));
    }
    println!(
        "removed {removed} (tombstones {}, needs_rebuild {})",
        index.tombstones(),
        index.needs_rebuild()
    );
    run_queries("search, 5% tombstones, no window", &index, &queries, None)?;
    run_queries(
        "search, 5% tombstones, 48 h",
        &index,
        &queries,
        Some(Duration::from_secs(48 * 3600)),
    )?;

    if a.rebuild {
        let start = Instant::now();
        index.rebuild();
        let took = start.elapsed().as_secs_f64();
        println!(
            "rebuild (parallel insert of {}): {took:.1} s, {:.0} vectors/s",
            index.len(),
            index.len() as f64 / took
        );
        run_queries("search after rebuild, no window", &index, &queries, None)?;
    }

    let dir = std::env::temp_dir().join(format!("concord-index-bench-{}", std::process::id()));
    let start = Instant::now();
    index.dump(&dir, 7)?;
    let dump_s = start.elapsed().as_secs_f64();
    let size: u64 = walk_size(&dir);
    let start = Instant::now();
    let (loaded, watermark) = VectorIndex::load(&dir)?;
    let load_s = start.elapsed().as_secs_f64();
    let same = queries[..50]
        .iter()
        .map(|(q, _)| Ok(loaded.search(q, 10, None)? == index.search(q, 10, None)?))
        .collect::<Result<Vec<bool>, Box<dyn Error>>>()?
        .iter()
        .all(|s| *s);
    println!(
        "dump {dump_s:.2} s ({:.0} MiB on disk), load {load_s:.2} s, watermark {watermark}, identical results {same}",
        mib(size as usize)
    );
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn build(
    a: &Args,
    params: IndexParams,
    data: &[UnitVector],
    at: &dyn Fn(usize) -> Result<Timestamp, jiff::Error>,
    cores: usize,
) -> Result<VectorIndex, Box<dyn Error>> {
    let mut index = VectorIndex::new(params)?;
    // the first n - tail in parallel (bulk load), the tail one by one (the
    // clusterer's online path, at the index's final size)
    let tail = if a.seq { a.n } else { (a.n / 10).max(1) };
    let bulk = a.n - tail;
    let stamps = (0..a.n).map(at).collect::<Result<Vec<_>, _>>()?;
    if bulk > 0 {
        let items: Vec<_> = (0..bulk)
            .map(|i| (ArticleId(i as u64), stamps[i], &data[i]))
            .collect();
        let start = Instant::now();
        index.insert_batch(&items)?;
        let took = start.elapsed().as_secs_f64();
        println!(
            "insert_batch ({cores} threads): {:.0} vectors/s ({bulk} in {took:.1} s)",
            bulk as f64 / took
        );
    }
    let start = Instant::now();
    for i in bulk..a.n {
        index.insert(ArticleId(i as u64), stamps[i], &data[i])?;
    }
    let took = start.elapsed().as_secs_f64();
    println!(
        "insert, one by one, entries {bulk}..{}: {:.0} vectors/s ({took:.1} s)",
        a.n,
        tail as f64 / took
    );
    Ok(index)
}

fn walk_size(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => walk_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
