//! The index proper: graph, slot maps, time index, tombstones, search.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use concord_core::{ArticleId, UnitVector};
use hnsw_rs::prelude::Hnsw;
use jiff::Timestamp;

use crate::distance::{SlotDot, dot};
use crate::error::IndexError;
use crate::vectors::{MAX_SLOT, Rows, Sealed, ref_len, slot_ref};

/// The graph type: owns its points (no mmap), so `'static`. A point's data
/// is a slot reference; [`SlotDot`] reads the vector from [`Sealed`].
pub(crate) type Graph = Hnsw<'static, f32, SlotDot>;

/// Graph layers: `hnsw_rs`'s maximum, which its dump insists on. (It gives
/// every point, besides its own neighbour lists, one entry in each layer
/// above its own up to the highest in use, about 96 bytes each that no
/// search reads: fewer layers would save memory, but cannot be dumped.)
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
    /// fraction of the slots.
    pub rebuild_tombstone_ratio: f64,
    /// New entries wait, searchable by exact scan, until this many have
    /// arrived; then they are inserted into the graph together, on all cores.
    /// Larger batches make fewer but longer pauses of the writer.
    pub graph_batch: usize,
}

impl IndexParams {
    /// Defaults that suit news-article embeddings (`m` 10, `ef_construction`
    /// 200, `ef_search` 256, exact scans below 16384 entries, rebuild above
    /// 20% tombstones, graph insertion in batches of 256). At dimension 512 an
    /// exact scan of 16k entries costs about what one graph search does at
    /// 100k entries, and is exact. With `hnsw_rs` the graph costs about
    /// 2.2 KiB per entry at `m` 10 (2.4 KiB at 12, 2.8 KiB at 16); a wider
    /// `ef_search` buys back the recall the smaller `m` costs (see `concord
    /// bench cluster`).
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            max_elements_hint: 100_000,
            m: 10,
            ef_construction: 200,
            ef_search: 256,
            exact_scan_below: 16_384,
            rebuild_tombstone_ratio: 0.2,
            graph_batch: 256,
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
        if self.graph_batch == 0 || self.graph_batch.saturating_mul(self.dim) > 1 << 28 {
            return bad("graph_batch must be at least 1 and hold at most 2^28 floats");
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

/// What the index knows about one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slot {
    pub(crate) id: ArticleId,
    /// Publication time, whole seconds since the Unix epoch.
    pub(crate) secs: i64,
    pub(crate) live: bool,
}

/// Estimated resident heap bytes of a [`VectorIndex`], by part; see
/// [`VectorIndex::memory`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexMemory {
    /// The vectors: one copy, `dim` floats per slot, tombstones included.
    pub vectors: usize,
    /// The HNSW graph: per point its bookkeeping, its slot reference and its
    /// neighbour lists.
    pub graph: usize,
    /// The slot table, the id map and the time index.
    pub maps: usize,
}

impl IndexMemory {
    pub fn total(&self) -> usize {
        self.vectors + self.graph + self.maps
    }
}

/// Approximate nearest-neighbour index over unit vectors, with time windows
/// and tombstones. Single writer (`&mut self`), many readers (`&self`).
///
/// Slots are dense `usize`s: slot `s` is the graph's data id, row `s` of the
/// vector storage and entry `s` of the slot table. A removed article keeps
/// its slot as a tombstone until [`rebuild`](Self::rebuild) compacts them
/// away. Slots reach the graph in batches of `graph_batch`: the newest
/// (fewer than `graph_batch`) are pending, and every search scans them
/// exactly.
pub struct VectorIndex {
    pub(crate) params: IndexParams,
    /// Holds slots `0..in_graph`; its distance reads their vectors from
    /// `rows`.
    pub(crate) graph: Graph,
    /// Every slot's vector, the only copy.
    pub(crate) rows: Rows,
    /// Slots searches take from the graph. Between calls it equals
    /// `rows.sealed_len`, except between [`push`](Self::push) returning `true`
    /// and [`commit_backlog`](Self::commit_backlog).
    pub(crate) in_graph: usize,
    /// Slots inserted into the graph (at least `in_graph`; more while a
    /// [`build_backlog`](Self::build_backlog) awaits its commit). The mutex
    /// also makes concurrent builders take turns.
    pub(crate) built: Mutex<usize>,
    /// Bumped by every [`rebuild`](Self::rebuild) (a new graph): a backlog
    /// built for the old graph is not committed to the new one.
    pub(crate) generation: u64,
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
            .field("pending", &self.pending_len())
            .field("max_id", &self.max_id)
            .finish_non_exhaustive()
    }
}

/// What [`VectorIndex::build_backlog`] built, for
/// [`VectorIndex::commit_backlog`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "searches use the built slots only once the backlog is committed"]
pub struct Backlog {
    built: usize,
    generation: u64,
}

/// A copy of an index's live entries, from [`VectorIndex::compaction`].
#[derive(Debug, Clone)]
pub struct Compaction {
    params: IndexParams,
    /// `(id, published_at seconds, vector)`, in time order.
    entries: Vec<(ArticleId, i64, Vec<f32>)>,
    /// The source's highest id ever inserted (removals do not lower it).
    max_id: Option<ArticleId>,
}

impl Compaction {
    /// Entries the compacted index will hold.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Builds the compacted index (no tombstones; the graph on all cores).
    /// Bring it up to date with what changed meanwhile, then swap it in.
    pub fn build(self) -> Result<VectorIndex, IndexError> {
        let max_id = self.max_id;
        let mut index = VectorIndex::new(self.params)?;
        let mut items = Vec::with_capacity(self.entries.len());
        for (id, secs, v) in self.entries {
            let t = Timestamp::from_second(secs)
                .map_err(|e| IndexError::Graph(format!("timestamp of {id}: {e}")))?;
            let v = UnitVector::normalize(v)
                .map_err(|e| IndexError::Graph(format!("vector of {id}: {e}")))?;
            items.push((id, t, v));
        }
        let refs: Vec<(ArticleId, Timestamp, &UnitVector)> =
            items.iter().map(|(id, t, v)| (*id, *t, v)).collect();
        index.insert_batch(&refs)?;
        index.max_id = index.max_id.max(max_id);
        Ok(index)
    }
}

/// An empty graph whose distance reads `sealed`.
pub(crate) fn new_graph(params: &IndexParams, capacity: usize, sealed: &Arc<Sealed>) -> Graph {
    Hnsw::new(
        params.m,
        capacity.max(1),
        MAX_LAYERS,
        params.ef_construction,
        SlotDot::new(Arc::clone(sealed)),
    )
}

impl VectorIndex {
    /// An empty index.
    pub fn new(params: IndexParams) -> Result<Self, IndexError> {
        params.validate()?;
        let rows = Rows::new(params.dim, params.graph_batch);
        Ok(Self {
            graph: new_graph(&params, params.max_elements_hint, &rows.sealed),
            params,
            rows,
            in_graph: 0,
            built: Mutex::new(0),
            generation: 0,
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

    /// Removed entries still taking a slot.
    pub fn tombstones(&self) -> usize {
        self.tombstones
    }

    /// Slots taken: live entries plus tombstones, in the graph or pending.
    pub fn graph_len(&self) -> usize {
        self.slots.len()
    }

    /// Slots not in the graph yet (fewer than `graph_batch`); searches scan
    /// them exactly.
    pub fn pending_len(&self) -> usize {
        self.slots.len() - self.in_graph
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
        self.by_id.get(&id).map(|&slot| self.rows.row(slot))
    }

    /// Highest article id ever inserted (removals and rebuilds keep it), so a
    /// caller can re-index what the store has beyond it.
    pub fn max_article_id(&self) -> Option<ArticleId> {
        self.max_id
    }

    /// True once tombstones exceed `rebuild_tombstone_ratio` of the slots.
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

    /// Whether `more` slots still fit (the graph's slot references end at
    /// [`MAX_SLOT`]).
    fn check_room(&self, more: usize) -> Result<(), IndexError> {
        if self.slots.len().saturating_add(more) <= MAX_SLOT + 1 {
            Ok(())
        } else {
            Err(IndexError::Full(MAX_SLOT + 1))
        }
    }

    /// Records a slot everywhere except the graph; returns the slot.
    fn push_slot(&mut self, id: ArticleId, published_at: Timestamp, v: &[f32]) -> usize {
        let slot = self.slots.len();
        let secs = published_at.as_second();
        self.rows.push(v);
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

    /// Inserts the sealed slots the graph lacks, on all cores (rayon's
    /// global pool). A no-op unless a batch just filled up.
    fn catch_up_graph(&mut self) {
        let built = self.build_backlog();
        self.commit_backlog(built);
    }

    /// Inserts into the graph the sealed slots it lacks (a whole batch, once
    /// [`push`](Self::push) said so), on all cores, under `&self`: behind a
    /// read lock, searches go on meanwhile and keep scanning those slots
    /// exactly until [`commit_backlog`](Self::commit_backlog) hands them to
    /// the graph. Builders take turns; a slot is never inserted twice.
    pub fn build_backlog(&self) -> Backlog {
        let mut built = self.built.lock().unwrap_or_else(PoisonError::into_inner);
        let (from, to) = ((*built).max(self.in_graph), self.rows.sealed_len);
        if from < to {
            let refs: Vec<[f32; 2]> = (from..to).map(slot_ref).collect();
            let len = ref_len(self.params.dim);
            let data: Vec<(&[f32], usize)> = refs.iter().map(|r| &r[..len]).zip(from..to).collect();
            self.graph.parallel_insert_slice(&data);
            *built = to;
        }
        Backlog {
            built: (*built).max(self.in_graph),
            generation: self.generation,
        }
    }

    /// Lets searches use what [`build_backlog`](Self::build_backlog) built.
    /// A backlog built before a [`rebuild`](Self::rebuild) is ignored.
    pub fn commit_backlog(&mut self, backlog: Backlog) {
        let built = *self.built.get_mut().unwrap_or_else(PoisonError::into_inner);
        if backlog.generation == self.generation {
            self.in_graph = self.in_graph.max(backlog.built.min(built));
        }
    }

    /// Whether sealed slots wait for [`build_backlog`](Self::build_backlog)
    /// or [`commit_backlog`](Self::commit_backlog).
    pub fn has_backlog(&self) -> bool {
        self.in_graph < self.rows.sealed_len
            || *self.built.lock().unwrap_or_else(PoisonError::into_inner) != self.in_graph
    }

    /// Adds a new article like [`insert`](Self::insert), but leaves the
    /// graph alone: returns whether a batch is now complete and waits for
    /// [`build_backlog`](Self::build_backlog) +
    /// [`commit_backlog`](Self::commit_backlog) (until then searches scan
    /// it exactly, so results are the same, only slower).
    pub fn push(
        &mut self,
        id: ArticleId,
        published_at: Timestamp,
        v: &UnitVector,
    ) -> Result<bool, IndexError> {
        self.check_dim(v)?;
        if self.by_id.contains_key(&id) {
            return Err(IndexError::DuplicateId(id));
        }
        self.check_room(1)?;
        self.push_slot(id, published_at, v.as_slice());
        Ok(self.has_backlog())
    }

    /// Adds a new article. A live duplicate id is an error (use
    /// [`upsert`](Self::upsert) to replace); an id removed earlier may come
    /// back. Usually only appends; the insert that completes a batch of
    /// `graph_batch` pending entries also inserts them into the graph.
    pub fn insert(
        &mut self,
        id: ArticleId,
        published_at: Timestamp,
        v: &UnitVector,
    ) -> Result<(), IndexError> {
        self.push(id, published_at, v)?;
        self.catch_up_graph();
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
        self.check_room(1)?;
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
        self.check_room(items.len())?;
        for (id, t, v) in items {
            self.push_slot(*id, *t, v.as_slice());
        }
        self.catch_up_graph();
        Ok(())
    }

    /// Tombstones `id`; searches stop returning it at once. Returns whether
    /// it was live.
    pub fn remove(&mut self, id: ArticleId) -> bool {
        let Some(slot) = self.by_id.remove(&id) else {
            return false;
        };
        if let Some(s) = self.slots.get_mut(slot) {
            s.live = false;
        }
        self.tombstones += 1;
        true
    }

    /// Builds fresh storage and a fresh graph from the live entries only,
    /// dropping tombstones. Slots are renumbered; time order is kept. Holds
    /// both copies in memory while it runs and uses all cores.
    pub fn rebuild(&mut self) {
        let live = self.len();
        let mut renumber = vec![usize::MAX; self.slots.len()];
        let mut rows = Rows::new(self.params.dim, self.params.graph_batch);
        let mut slots = Vec::with_capacity(live);
        for (old, s) in self.slots.iter().enumerate().filter(|(_, s)| s.live) {
            renumber[old] = slots.len();
            slots.push(*s);
            rows.push(self.rows.row(old));
        }
        let by_time = self
            .by_time
            .iter()
            .filter(|&&(_, old)| renumber[old] != usize::MAX)
            .map(|&(secs, old)| (secs, renumber[old]))
            .collect();
        let by_id = slots.iter().enumerate().map(|(s, e)| (e.id, s)).collect();
        self.graph = new_graph(
            &self.params,
            live.max(self.params.max_elements_hint),
            &rows.sealed,
        );
        self.rows = rows;
        self.in_graph = 0;
        *self.built.get_mut().unwrap_or_else(PoisonError::into_inner) = 0;
        self.generation += 1;
        self.slots = slots;
        self.by_id = by_id;
        self.by_time = by_time;
        self.tombstones = 0;
        self.catch_up_graph();
    }

    /// The live entries, in time order, to build a compacted copy from
    /// without holding any lock ([`Compaction::build`]): the way to drop
    /// tombstones while this index keeps serving. Copies every live vector.
    pub fn compaction(&self) -> Compaction {
        let entries = self
            .by_time
            .iter()
            .filter(|&&(_, slot)| self.slots[slot].live)
            .map(|&(secs, slot)| (self.slots[slot].id, secs, self.rows.row(slot).to_vec()))
            .collect();
        Compaction {
            params: self.params,
            entries,
            max_id: self.max_id,
        }
    }

    /// The `k` live entries most similar to `query`, optionally only those
    /// published inside `window`, most similar first.
    ///
    /// Small candidate sets (fewer than `exact_scan_below` entries in the
    /// window, or in the index without a window) are scanned exactly. Larger
    /// ones go through the graph, asking for more neighbours than `k` when a
    /// window or tombstones filter some out, and the pending entries (not in
    /// the graph yet) are scanned exactly beside it; when the graph cannot
    /// supply `k` that pass, the candidates are scanned exactly. Similarities
    /// are always exact dot products.
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
        let scored = candidates
            .filter(|&s| self.slots[s].live)
            .map(|s| (dot(q, self.rows.row(s)), s))
            .collect();
        self.best(scored, k)
    }

    /// The `k` best of `scored` (similarity, distinct slots), most similar
    /// first, ties by article id.
    fn best(&self, mut scored: Vec<(f32, usize)>, k: usize) -> Vec<Hit> {
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

    /// Graph search over the slots in the graph plus an exact scan of the
    /// pending ones; `window` carries the number of entries (tombstones
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
        if self.in_graph > 0 && want <= OVERFETCH_MAX.max(self.params.ef_search) {
            let found = self.graph.search(q, want, self.params.ef_search.max(want));
            let mut ids: Vec<usize> = found
                .iter()
                .map(|n| n.d_id)
                .filter(|&s| s < self.in_graph && passes(s))
                .collect();
            ids.sort_unstable();
            ids.dedup();
            let mut scored: Vec<(f32, usize)> = ids
                .into_iter()
                .map(|s| (dot(q, self.rows.row(s)), s))
                .collect();
            // fewer than asked means the graph had no more to give
            if scored.len() >= k || found.len() < want {
                scored.extend(
                    (self.in_graph..self.slots.len())
                        .filter(|&s| passes(s))
                        .map(|s| (dot(q, self.rows.row(s)), s)),
                );
                return self.best(scored, k);
            }
        }
        // Too few pass: an exact scan of the candidates is bounded and exact.
        match window {
            None => self.exact(q, k, 0..self.slots.len()),
            Some((w, _)) => self.exact(q, k, self.time_range(w).map(|i| self.by_time[i].1)),
        }
    }

    /// Estimated resident heap bytes, by part: the vectors (one copy), the
    /// graph and the maps. The graph part walks every point's neighbour
    /// lists (time linear in the entries, allocating as it goes; under the
    /// graph's read locks) and models the allocations `hnsw_rs` 0.3 makes:
    /// the `Arc<Point>`, the slot reference, the neighbour table (16 layer
    /// lists behind an `Arc<RwLock>`), each neighbour list's buffer and one
    /// 32-byte `Arc` allocation per neighbour, each rounded up as glibc's
    /// malloc does.
    pub fn memory(&self) -> IndexMemory {
        use std::mem::size_of;
        // glibc: 8 bytes of header, 16-byte granules, 32 bytes at least
        let chunk = |bytes: usize| {
            if bytes == 0 {
                0
            } else {
                (bytes + 8).div_ceil(16).max(2) * 16
            }
        };
        let point = chunk(2 * size_of::<usize>() + size_of::<hnsw_rs::hnsw::Point<'static, f32>>());
        let data = chunk(ref_len(self.params.dim) * size_of::<f32>());
        // Arc counts + parking_lot RwLock + Vec header, then 16 Vec headers
        let table = chunk(2 * size_of::<usize>() + size_of::<usize>() + size_of::<Vec<u8>>())
            + chunk(16 * size_of::<Vec<u8>>());
        // Arc<PointWithOrder>: counts, Arc<Point>, f32 (padded)
        let edge = chunk(2 * size_of::<usize>() + size_of::<usize>() + size_of::<usize>());
        let mut graph = 0;
        if self.in_graph > 0 {
            for p in self.graph.get_point_indexation() {
                // one pointer in its layer's table
                graph += point + data + table + size_of::<usize>();
                for layer in p.get_neighborhood_id() {
                    let n = layer.len();
                    // a list grows by doubling past its first exact fill:
                    // on average about 1.5 times its length
                    graph += chunk(n * 3 / 2 * size_of::<usize>()) + n * edge;
                }
            }
        }
        let buckets = |cap: usize| {
            if cap == 0 {
                0
            } else {
                (cap * 8 / 7 + 1).next_power_of_two()
            }
        };
        let maps = self.slots.capacity() * size_of::<Slot>()
            + self.by_time.capacity() * size_of::<(i64, usize)>()
            // hashbrown: key + value + 1 control byte per bucket
            + buckets(self.by_id.capacity()) * (size_of::<(ArticleId, usize)>() + 1);
        IndexMemory {
            vectors: self.rows.bytes(),
            graph,
            maps,
        }
    }

    /// [`memory`](Self::memory), summed.
    pub fn memory_bytes(&self) -> usize {
        self.memory().total()
    }
}

impl TimeWindow {
    fn contains_secs(&self, s: i64) -> bool {
        self.from.as_second() <= s && s <= self.to.as_second()
    }
}
