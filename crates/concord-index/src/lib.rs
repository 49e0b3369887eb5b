//! The approximate nearest-neighbour index over article vectors.
//!
//! Owns: an HNSW graph ([`hnsw_rs`]) over [`UnitVector`]s, the vectors
//! themselves (one copy), the map between [`ArticleId`]s and dense slots,
//! time-window filtering (a time-sorted secondary index, with an exact scan
//! when a window is small), tombstones and the rebuild that drops them, and
//! dump/reload of all of it to a directory.
//! Must not: decide clusters, touch SQL, or hold anything the store cannot
//! rebuild. The index is a cache of the store: a missing, stale or corrupt
//! dump is a typed [`IndexError`], and the caller rebuilds from the store.
//!
//! Similarity is cosine, i.e. the dot product of unit vectors; hits are
//! sorted by similarity, highest first.
//!
//! Search paths: a candidate set (the time window's entries, or the whole
//! index) smaller than `exact_scan_below` is scanned exactly, in time order.
//! Otherwise the graph is searched unfiltered for enough neighbours that `k`
//! should survive the window and tombstone filter, and the pending entries
//! (below) are scanned exactly beside it; if too few graph hits survive, the
//! candidates are scanned exactly. `hnsw_rs`'s own filtered search is not
//! used: it never stops early and was 100x slower than an exact scan for a
//! 48 h window at 100k entries.
//!
//! Graph insertion is batched: an insert only appends the vector and the
//! maps. New slots stay pending (searchable, by exact scan) until
//! `graph_batch` of them have arrived; the insert that completes the batch
//! seals their vectors into an immutable chunk and inserts them into the
//! graph together, on all cores. So the writer pauses once a batch instead
//! of paying an HNSW insert per article, and a dump stores the pending
//! entries like any other (they are pending again after the reload).
//!
//! Memory: the vectors are stored once, in slot order: sealed chunks
//! (shared, lock-free, with the graph) and the pending rows. The graph's
//! points hold only a slot reference; its distance reads the vector from the
//! sealed chunks. `hnsw_rs` still spends about 600 bytes of bookkeeping per
//! point besides its neighbour lists (about 60 bytes a link), which is why
//! the default `m` is 10 (with `ef_search` 256 for recall);
//! [`VectorIndex::memory`] estimates each part.
//!
//! [`UnitVector`]: concord_core::UnitVector
//! [`ArticleId`]: concord_core::ArticleId

mod access;
mod checksum;
mod distance;
mod dump;
mod error;
mod index;
mod vectors;

pub use distance::{UnitDot, dot};
pub use dump::FORMAT_VERSION;
pub use error::IndexError;
pub use index::{Backlog, Compaction, Hit, IndexMemory, IndexParams, TimeWindow, VectorIndex};
