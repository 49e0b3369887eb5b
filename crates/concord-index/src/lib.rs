//! The approximate nearest-neighbour index over article vectors.
//!
//! Owns: an HNSW graph ([`hnsw_rs`]) over [`UnitVector`]s, the map between
//! [`ArticleId`]s and the graph's dense slots, time-window filtering (a
//! time-sorted secondary index, with an exact scan when a window is small),
//! tombstones and the rebuild that drops them, and dump/reload of all of it
//! to a directory.
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
//! should survive the window and tombstone filter; if they do not, the
//! candidates are scanned exactly. `hnsw_rs`'s own filtered search is not
//! used: it never stops early and was 100x slower than an exact scan for a
//! 48 h window at 100k entries.
//!
//! Memory: the index keeps its own contiguous copy of every vector (slot
//! order) next to the copy inside the graph. Exact scans need fast access by
//! slot and rebuilds need the live vectors; `hnsw_rs` offers neither, so the
//! copy is the price. The dump does not store vectors twice: the reload takes
//! them back out of the graph's data file.
//!
//! [`UnitVector`]: concord_core::UnitVector
//! [`ArticleId`]: concord_core::ArticleId

mod access;
mod checksum;
mod distance;
mod dump;
mod error;
mod index;

pub use distance::{UnitDot, dot};
pub use dump::FORMAT_VERSION;
pub use error::IndexError;
pub use index::{Hit, IndexParams, TimeWindow, VectorIndex};
