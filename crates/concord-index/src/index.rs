//! The index proper: graph, slot maps, time index, tombstones, search.

use std::collections::HashMap;
use std::fmt;

use concord_core::{ArticleId, UnitVector};
use hnsw_rs::prelude::{Hnsw, Neighbour};
use jiff::Timestamp;

use crate::distance::{UnitDot, dot};
use crate::error::IndexError;

/// The graph type: owns its points (no mmap), so `'static`.
pub(crate) type Graph = Hnsw<'static, f32, UnitDot>;

/// `hnsw_rs` caps the layer count at 16 and silently clamps larger values.
const MAX_LAYERS: usize = 16;

/// A graph search asks for at most this many neighbours (or `ef_search`)
/// to find `k` that pass its window and tombstone filter; beyond that it
/// scans its candidates exactly.
const OVERFETCH_MAX: usize = 256;

/// Tuning of a [`VectorIndex`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IndexParams {
    /// Vector dimension; every insert and query must match it.
    pub dim: usize,
    /// Expected number of entries, used to size the graph's tables.
    pub max_elements_hint: usize,
    /// HNSW `M`: links per node and layer (twice that on layer 0), 2..=255.
    pub m: usize,
    /// Candidate list size while building the graph.
    pub ef_construction: usize,
    /// Candidate list size while searching (raised to `k + 1` when smaller).
    pub ef_search: usize,
    /// A search whose candidate set (the whole index, or the entries in the
    /// time window, tombstones included) is smaller than this is answered by
    /// an exact scan instead of the graph.
    pub exact_scan_below: usize,
    /// [`VectorIndex::needs_rebuild`] turns true when tombstones exceed this
    /// fraction of the graph's entries.
    pub rebuild_tombstone_ratio: f64,
}

impl IndexParams {
    /// Defaults that suit news-article embeddings (`m` 16, `ef_construction`
    /// 200, `ef_search` 64, exact scans below 16384 entries, rebuild above 20%
    /// tombstones). At dimension 512 an exact scan of 16k entries costs about
    /// what one graph search does at 100k entries, and is exact.
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            max_elements_hint: 100_000,
            m: 16,
            ef_construction: 200,
            ef_search: 64,
            exact_scan_below: 16_384,
            rebuild_tombstone_ratio: 0.2,
        }
    }

    /// Checks the ranges `hnsw_rs` needs (it calls `process::exit` on
    /// `m > 256` and divides by `ln(m)`).
    pub fn validate(&self) -> Result<(), IndexError> {
        let bad = |why: &str| Err(IndexError::InvalidParams(why.to_owned()));
        if self.dim == 0 {
            return bad("dim must be at least 1");
        }
        if !(2..=255).contains(&self.m) {
            return bad("m must be between 2 and 255");
        }
        if self.ef_construction == 0 || self.ef_search == 0 {
            return bad("ef_construction and ef_search must be at least 1");
        }
        if !(self.rebuild_tombstone_ratio > 0.0 && self.rebuild_tombstone_ratio <= 1.0) {
            return bad("rebuild_tombstone_ratio must be in (0, 1]");
        }
        Ok(())
    }
}

/// An inclusive publication-time range, at one-second precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    pub from: Timestamp,
    pub to: Timestamp,
}

impl TimeWindow {
    pub fn new(from: Timestamp, to: Timestamp) -> Self {
        Self { from, to }
    }

    /// Whether `t` falls in the window, at the index's one-second precision.
    pub fn contains(&self, t: Timestamp) -> bool {
        let s = t.as_second();
        self.from.as_second() <= s && s <= self.to.as_second()
    }
}

/// One search result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub id: ArticleId,
    /// Cosine similarity with the query, in `[-1, 1]`.
    pub similarity: f32,
}

/// What the index knows about one graph slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    pub(crate) id: ArticleId,
    /// Publication time, whole seconds since the Unix epoch.
    pub(crate) secs: i64,
    pub(crate) live: bool,
}

/// Approximate nearest-neighbour index over unit vectors, with time windows
/// and tombstones. Single writer (`&mut self`), many readers (`&self`).
///
/// Slots are dense `usize`s: slot `s` is the graph's data id, row `s` of the
/// vector copy and entry `s` of the slot table. A removed article keeps its
/// slot as a tombstone until [`rebuild`](Self::rebuild) compacts them away.
pub struct VectorIndex {
    pub(crate) params: IndexParams,
    pub(crate) graph: Graph,
    /// Row-major copy of every slot's vector, `params.dim` floats per slot.
    pub(crate) vectors: Vec<f32>,
    pub(crate) slots: Vec<Slot>,
    /// Live articles only.
    pub(crate) by_id: HashMap<ArticleId, usize>,
    /// `(secs, slot)` for every slot, tombstones included, sorted.
    pub(crate) by_time: Vec<(i64, usize)>,
    pub(crate) tombstones: usize,
    /// Highest id ever inserted; removals and rebuilds do not lower it.
    pub(crate) max_id: Option<ArticleId>,
}

impl fmt::Debug for VectorIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VectorIndex")
            .field("params", &self.params)
            .field("len", &self.len())
            .field("tombstones", &self.tombstones)
            .field("max_id", &self.max_id)
            .finish_non_exhaustive()
    }
}

pub(crate) fn new_graph(params: &IndexParams, capacity: usize) -> Graph {
    Hnsw::new(
        params.m,
        capacity.max(1),
        MAX_LAYERS,
        params.ef_construction,
        UnitDot,
    )
}

impl VectorIndex {
    /// An empty index.
    pub fn new(params: IndexParams) -> Result<Self, IndexError> {
        params.validate()?;
        Ok(Self {
            graph: new_graph(&params, params.max_elements_hint),
            params,
            vectors: Vec::new(),
            slots: Vec::new(),
            by_id: HashMap::new(),
            by_time: Vec::new(),
            tombstones: 0,
            max_id: None,
        })
    }

    pub fn params(&self) -> &IndexParams {
        &self.params
    }

    /// Live (searchable) entries.
    pub fn len(&self) -> usize {
        self.slots.len() - self.tombstones
    }

    /// True when no live entry is left.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removed entries still taking a slot in the graph.
    pub fn tombstones(&self) -> usize {
        self.tombstones
    }

    /// Entries in the graph: live ones plus tombstones.
    pub fn graph_len(&self) -> usize {
        self.slots.len()
    }

    /// Whether `id` is indexed and live.
    pub fn contains(&self, id: ArticleId) -> bool {
        self.by_id.contains_key(&id)
    }

    /// Live article ids, in no particular order.
    pub fn ids(&self) -> impl Iterator<Item = ArticleId> + '_ {
        self.by_id.keys().copied()
    }

    /// The stored vector of a live article.
    pub fn vector(&self, id: ArticleId) -> Option<&[f32]> {
        self.by_id.get(&id).map(|&slot| self.row(slot))
    }

    /// Highest article id ever inserted (removals and rebuilds keep it), so a
    /// caller can re-index what the store has beyond it.
    pub fn max_article_id(&self) -> Option<ArticleId> {
        self.max_id
    }

    /// True once tombstones exceed `rebuild_tombstone_ratio` of the graph.
    pub fn needs_rebuild(&self) -> bool {
        self.tombstones > 0
            && self.tombstones as f64
                > self.params.rebuild_tombstone_ratio * self.slots.len() as f64
    }

    fn check_dim(&self, v: &UnitVector) -> Result<(), IndexError> {
        if v.dim() == self.params.dim {
            Ok(())
        } else {
            Err(IndexError::DimensionMismatch {
                expected: self.params.dim,
                got: v.dim(),
            })
        }
    }

    fn row(&self, slot: usize) -> &[f32] {
        let d = self.params.dim;
        &self.vectors[slot * d..(slot + 1) * d]
    }

    /// Records a slot in every map except the graph; returns the slot.
    fn push_slot(&mut self, id: ArticleId, published_at: Timestamp, v: &[f32]) -> usize {
        let slot = self.slots.len();
        let secs = published_at.as_second();
        self.vectors.extend_from_slice(v);
        self.slots.push(Slot {
            id,
            secs,
            live: true,
        });
        self.by_id.insert(id, slot);
        // articles mostly arrive in time order: append; otherwise shift
        if self.by_time.last().is_none_or(|&last| last <= (secs, slot)) {
            self.by_time.push((secs, slot));
        } else {
            let at = self.by_time.partition_point(|&e| e < (secs, slot));
            self.by_time.insert(at, (secs, slot));
        }
        self.max_id = self.max_id.max(Some(id));
        slot
    }

    /// Adds a new article. A live duplicate id is an error (use
    /// [`upsert`](Self::upsert) to replace); an id removed earlier may come
    /// back.
    pub fn insert(
        &mut self,
        id: ArticleId,
        published_at: Timestamp,
        v: &UnitVector,
    ) -> Result<(), IndexError> {
        self.check_dim(v)?;
        if self.by_id.contains_key(&id) {
            return Err(IndexError::DuplicateId(id));
        }
        let slot = self.push_slot(id, published_at, v.as_slice());
        self.graph.insert_slice((v.as_slice(), slot));
        Ok(())
    }

    /// Inserts, or replaces a live entry with the same id (the old slot
    /// becomes a tombstone). Returns whether an entry was replaced.
    pub fn upsert(
        &mut self,
        id: ArticleId,
        published_at: Timestamp,
        v: &UnitVector,
    ) -> Result<bool, IndexError> {
        self.check_dim(v)?;
        let replaced = self.remove(id);
        self.insert(id, published_at, v)?;
        Ok(replaced)
    }

    /// Adds many new articles at once, building the graph on all cores
    /// (rayon's global pool). All-or-nothing: any dimension mismatch or
    /// duplicate id (in the index or within the batch) rejects the batch
    /// before anything changes. For bulk loads and re-indexing at start-up.
    pub fn insert_batch(
        &mut self,
        items: &[(ArticleId, Timestamp, &UnitVector)],
    ) -> Result<(), IndexError> {
        let mut seen = std::collections::HashSet::with_capacity(items.len());
        for (id, _, v) in items {
            self.check_dim(v)?;
            if self.by_id.contains_key(id) || !seen.insert(*id) {
                return Err(IndexError::DuplicateId(*id));
            }
        }
        let first = self.slots.len();
        self.vectors.reserve(items.len() * self.params.dim);
        for (id, t, v) in items {
            self.push_slot(*id, *t, v.as_slice());
        }
        let d = self.params.dim;
        let data: Vec<(&[f32], usize)> = (first..self.slots.len())
            .map(|s| (&self.vectors[s * d..(s + 1) * d], s))
            .collect();
        self.graph.parallel_insert_slice(&data);
        Ok(())
    }

    /// Tombstones `id`; searches stop returning it at once. Returns whether
    /// it was live.
    pub fn remove(&mut self, id: ArticleId) -> bool {
        let Some(slot) = self.by_id.remove(&id) else {
            return false;
        };
        self.slots[slot].live = false;
        self.tombstones += 1;
        true
    }

    /// Builds a fresh graph from the live entries only, dropping tombstones.
    /// Slots are renumbered; time order is kept. Holds both graphs in memory
    /// while it runs and uses all cores.
    pub fn rebuild(&mut self) {
        let d = self.params.dim;
        let live = self.len();
        let mut renumber = vec![usize::MAX; self.slots.len()];
        let mut vectors = Vec::with_capacity(live * d);
        let mut slots = Vec::with_capacity(live);
        for (old, s) in self.slots.iter().enumerate().filter(|(_, s)| s.live) {
            renumber[old] = slots.len();
            slots.push(*s);
            vectors.extend_from_slice(&self.vectors[old * d..(old + 1) * d]);
        }
        let by_time = self
            .by_time
            .iter()
            .filter(|(_, old)| self.slots[*old].live)
            .map(|&(secs, old)| (secs, renumber[old]))
            .collect();
        let by_id = slots.iter().enumerate().map(|(s, e)| (e.id, s)).collect();
        let graph = new_graph(&self.params, live.max(self.params.max_elements_hint));
        {
            let data: Vec<(&[f32], usize)> = (0..live)
                .map(|s| (&vectors[s * d..(s + 1) * d], s))
                .collect();
            graph.parallel_insert_slice(&data);
        }
        self.graph = graph;
        self.vectors = vectors;
        self.slots = slots;
        self.by_id = by_id;
        self.by_time = by_time;
        self.tombstones = 0;
    }

    /// The `k` live entries most similar to `query`, optionally only those
    /// published inside `window`, most similar first.
    ///
    /// Small candidate sets (fewer than `exact_scan_below` entries in the
    /// window, or in the index without a window) are scanned exactly. Larger
    /// ones go through the graph, asking for more neighbours than `k` when a
    /// window or tombstones filter some out; when the graph cannot supply
    /// `k` that pass, the candidates are scanned exactly. Similarities are
    /// always exact dot products.
    pub fn search(
        &self,
        query: &UnitVector,
        k: usize,
        window: Option<TimeWindow>,
    ) -> Result<Vec<Hit>, IndexError> {
        self.check_dim(query)?;
        if k == 0 || self.is_empty() {
            return Ok(Vec::new());
        }
        let q = query.as_slice();
        match window {
            None if self.slots.len() < self.params.exact_scan_below => {
                Ok(self.exact(q, k, 0..self.slots.len()))
            }
            None => Ok(self.graph_search(q, k, None)),
            Some(w) => {
                let range = self.time_range(&w);
                if range.is_empty() {
                    Ok(Vec::new())
                } else if range.len() < self.params.exact_scan_below {
                    Ok(self.exact(q, k, range.map(|i| self.by_time[i].1)))
                } else {
                    Ok(self.graph_search(q, k, Some((&w, range.len()))))
                }
            }
        }
    }

    /// Exact brute-force answer to the same question as [`search`](Self::search),
    /// whatever the sizes: the reference for recall measurements.
    pub fn search_exact(
        &self,
        query: &UnitVector,
        k: usize,
        window: Option<TimeWindow>,
    ) -> Result<Vec<Hit>, IndexError> {
        self.check_dim(query)?;
        if k == 0 {
            return Ok(Vec::new());
        }
        let q = query.as_slice();
        Ok(match window {
            None => self.exact(q, k, 0..self.slots.len()),
            Some(w) => self.exact(q, k, self.time_range(&w).map(|i| self.by_time[i].1)),
        })
    }

    /// Positions in `by_time` inside the window.
    fn time_range(&self, w: &TimeWindow) -> std::ops::Range<usize> {
        let (from, to) = (w.from.as_second(), w.to.as_second());
        if from > to {
            return 0..0;
        }
        let lo = self.by_time.partition_point(|&(s, _)| s < from);
        let hi = self.by_time.partition_point(|&(s, _)| s <= to);
        lo..hi.max(lo)
    }

    fn exact(&self, q: &[f32], k: usize, candidates: impl Iterator<Item = usize>) -> Vec<Hit> {
        let mut scored: Vec<(f32, usize)> = candidates
            .filter(|&s| self.slots[s].live)
            .map(|s| (dot(q, self.row(s)), s))
            .collect();
        let by_rank = |a: &(f32, usize), b: &(f32, usize)| {
            b.0.total_cmp(&a.0)
                .then_with(|| self.slots[a.1].id.cmp(&self.slots[b.1].id))
        };
        if scored.len() > k {
            scored.select_nth_unstable_by(k - 1, by_rank);
            scored.truncate(k);
        }
        scored.sort_unstable_by(by_rank);
        scored
            .into_iter()
            .map(|(similarity, s)| Hit {
                id: self.slots[s].id,
                similarity,
            })
            .collect()
    }

    /// Graph search; `window` carries the number of entries (tombstones
    /// included) in the window.
    fn graph_search(&self, q: &[f32], k: usize, window: Option<(&TimeWindow, usize)>) -> Vec<Hit> {
        let passes = |s: usize| {
            self.slots
                .get(s)
                .is_some_and(|e| e.live && window.is_none_or(|(w, _)| w.contains_secs(e.secs)))
        };
        // Estimated share of entries passing (window and tombstones; the
        // tombstones assumed spread evenly).
        let slots = self.slots.len() as f64;
        let pass = self.len() as f64 / slots * window.map_or(1.0, |(_, n)| n as f64 / slots);
        // hnsw_rs's `search_filter` never stops early: it explores until no
        // candidate beats its worst result, which took 70 ms for a 6.6%
        // window at 100k entries. Instead ask the plain search for enough
        // neighbours that about 1.5 k of them should pass, and filter.
        let want = if pass >= 1.0 {
            k
        } else {
            (k as f64 / pass * 1.5).ceil() as usize + 2
        };
        if want <= OVERFETCH_MAX.max(self.params.ef_search) {
            let found = self.graph.search(q, want, self.params.ef_search.max(want));
            let hits = self.collect(q, k, &found, passes);
            // fewer than asked means the graph had no more to give
            if hits.len() >= k || found.len() < want {
                return hits;
            }
        }
        // Too few pass: an exact scan of the candidates is bounded and exact.
        match window {
            None => self.exact(q, k, 0..self.slots.len()),
            Some((w, _)) => self.exact(q, k, self.time_range(w).map(|i| self.by_time[i].1)),
        }
    }

    /// The `k` best of `found` that pass, with exact similarities.
    fn collect(
        &self,
        q: &[f32],
        k: usize,
        found: &[Neighbour],
        passes: impl Fn(usize) -> bool,
    ) -> Vec<Hit> {
        let mut hits: Vec<(f32, usize)> = found
            .iter()
            .map(|n| n.d_id)
            .filter(|&s| passes(s))
            .map(|s| (dot(q, self.row(s)), s))
            .collect();
        hits.sort_unstable_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then_with(|| self.slots[a.1].id.cmp(&self.slots[b.1].id))
        });
        hits.dedup_by_key(|h| h.1);
        hits.truncate(k);
        hits.into_iter()
            .map(|(similarity, s)| Hit {
                id: self.slots[s].id,
                similarity,
            })
            .collect()
    }

    /// Estimated resident heap bytes: the vector copy, the slot, id and time
    /// maps, and the graph (its own vector copy, per-point bookkeeping and
    /// neighbour lists at their `2m`/`m` caps). Within 10% of the measured
    /// RSS growth at 100k entries of dimension 512 (about 6.6 KiB each, of
    /// which 2 KiB is our copy of the vector).
    pub fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        let n = self.slots.len();
        // the vector buffer's spare capacity is left out: its pages are never
        // touched, so never resident
        let ours = self.vectors.len() * size_of::<f32>()
            + self.slots.capacity() * size_of::<Slot>()
            + self.by_time.capacity() * size_of::<(i64, usize)>()
            // hashbrown: key + value + 1 control byte per bucket
            + self.by_id.capacity() * (size_of::<(ArticleId, usize)>() + 1);
        // per graph point: Arc<Point> (~96 B with its header), the vector,
        // the neighbour table (16 empty Vecs behind an Arc<RwLock>, ~440 B),
        // layer-0 neighbours (up to 2m), each an 8 B pointer to a 48 B
        // Arc<PointWithOrder> allocation; upper layers add ~1/m of that
        let per_point = 96 + self.params.dim * size_of::<f32>() + 440 + 2 * self.params.m * 56;
        ours + n * per_point * (self.params.m + 1) / self.params.m
    }
}

impl TimeWindow {
    fn contains_secs(&self, s: i64) -> bool {
        self.from.as_second() <= s && s <= self.to.as_second()
    }
}
