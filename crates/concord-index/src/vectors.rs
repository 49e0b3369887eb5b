//! The one copy of the vectors, shared by exact scans and the graph.
//!
//! [`Rows`] keeps every slot's row: slots `0..sealed_len` in [`Sealed`]
//! chunks of `graph_batch` rows each, immutable once written and readable
//! without a lock, so the graph's distance ([`SlotDot`]) can look a point's
//! vector up by slot while the index's owner keeps appending; newer slots in
//! a pending buffer until they fill a chunk. The graph's points hold only a
//! slot reference ([`slot_ref`]), not a second copy of the vector; the index
//! inserts a chunk's slots into the graph right after sealing it.
//!
//! [`SlotDot`]: crate::distance::SlotDot

use std::sync::{Arc, OnceLock};

/// One directory level per bit of a chunk number: level `l` holds chunks
/// `2^l - 1 .. 2^(l+1) - 1`, allocated when the first of them is sealed.
const LEVELS: usize = usize::BITS as usize;

/// One sealed chunk: `chunk_rows` rows, set once.
type Chunk = OnceLock<Box<[f32]>>;

/// Append-only chunks of rows, each written once and then only read.
pub(crate) struct Sealed {
    dim: usize,
    chunk_rows: usize,
    levels: [OnceLock<Box<[Chunk]>>; LEVELS],
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealed")
            .field("dim", &self.dim)
            .field("chunk_rows", &self.chunk_rows)
            .finish_non_exhaustive()
    }
}

/// Directory level and position in it of chunk `chunk`.
fn locate(chunk: usize) -> (usize, usize) {
    let n = chunk.saturating_add(1);
    let level = n.ilog2() as usize;
    (level, n - (1usize << level))
}

impl Sealed {
    /// Empty storage for rows of `dim` floats, `chunk_rows` rows a chunk
    /// (both at least 1).
    pub(crate) fn new(dim: usize, chunk_rows: usize) -> Self {
        Self {
            dim: dim.max(1),
            chunk_rows: chunk_rows.max(1),
            levels: std::array::from_fn(|_| OnceLock::new()),
        }
    }

    pub(crate) fn dim(&self) -> usize {
        self.dim
    }

    fn chunk(&self, chunk: usize) -> Option<&[f32]> {
        let (level, at) = locate(chunk);
        self.levels.get(level)?.get()?.get(at)?.get().map(|b| &**b)
    }

    /// The row of `slot`, if its chunk is sealed.
    pub(crate) fn row(&self, slot: usize) -> Option<&[f32]> {
        let chunk = self.chunk(slot / self.chunk_rows)?;
        let at = (slot % self.chunk_rows) * self.dim;
        chunk.get(at..at + self.dim)
    }

    /// Seals chunk number `chunk` with `rows` (exactly `chunk_rows` rows).
    /// Gives the rows back, changing nothing, when the chunk was sealed
    /// already or `rows` has the wrong length.
    pub(crate) fn seal(&self, chunk: usize, rows: Box<[f32]>) -> Result<(), Box<[f32]>> {
        if rows.len() != self.chunk_rows * self.dim {
            return Err(rows);
        }
        let (level, at) = locate(chunk);
        let Some(cells) = self.levels.get(level) else {
            return Err(rows);
        };
        let cells = cells.get_or_init(|| (0..1usize << level).map(|_| OnceLock::new()).collect());
        match cells.get(at) {
            Some(cell) => cell.set(rows),
            None => Err(rows),
        }
    }
}

/// Every slot's row: sealed chunks, then the pending rows of the chunk
/// being filled.
#[derive(Debug)]
pub(crate) struct Rows {
    pub(crate) sealed: Arc<Sealed>,
    /// Slots `0..sealed_len` are sealed: a multiple of the chunk size.
    pub(crate) sealed_len: usize,
    /// Row-major rows of slots `sealed_len..`, fewer than a chunk's worth.
    pending: Vec<f32>,
}

impl Rows {
    pub(crate) fn new(dim: usize, chunk_rows: usize) -> Self {
        Self {
            sealed: Arc::new(Sealed::new(dim, chunk_rows)),
            sealed_len: 0,
            pending: Vec::new(),
        }
    }

    fn dim(&self) -> usize {
        self.sealed.dim
    }

    /// Rows stored.
    pub(crate) fn len(&self) -> usize {
        self.sealed_len + self.pending.len() / self.dim()
    }

    /// The row of `slot`; empty when there is no such slot.
    pub(crate) fn row(&self, slot: usize) -> &[f32] {
        if slot < self.sealed_len {
            return self.sealed.row(slot).unwrap_or(&[]);
        }
        let d = self.dim();
        let at = (slot - self.sealed_len) * d;
        self.pending.get(at..at + d).unwrap_or(&[])
    }

    /// Appends a row (`dim` floats), sealing the pending rows into a chunk
    /// when they fill one.
    pub(crate) fn push(&mut self, v: &[f32]) {
        let chunk = self.sealed.chunk_rows * self.dim();
        if self.pending.capacity() < chunk {
            // exactly one chunk, so sealing it needs no reallocation
            self.pending.reserve_exact(chunk - self.pending.len());
        }
        self.pending.extend_from_slice(v);
        if self.pending.len() >= chunk {
            let full = std::mem::take(&mut self.pending);
            let rows = full.into_boxed_slice();
            let number = self.sealed_len / self.sealed.chunk_rows;
            match self.sealed.seal(number, rows) {
                Ok(()) => self.sealed_len += self.sealed.chunk_rows,
                // unreachable: chunk numbers only grow, and the length is
                // right; the rows stay pending (still searchable) if it were
                Err(rows) => self.pending = rows.into_vec(),
            }
        }
    }

    /// Heap bytes of the rows themselves (unused capacity is left out: its
    /// pages are never touched, so never resident).
    pub(crate) fn bytes(&self) -> usize {
        self.len() * self.dim() * std::mem::size_of::<f32>()
    }
}

/// Length of a slot reference: 1, or 2 when the vectors themselves have
/// dimension 1, so that a reference never looks like a vector.
pub(crate) fn ref_len(dim: usize) -> usize {
    if dim == 1 { 2 } else { 1 }
}

/// Highest slot a reference can name: below the bit patterns of infinities
/// and NaNs, so no platform's float handling can touch it.
pub(crate) const MAX_SLOT: usize = 0x7F7F_FFFF;

/// The graph's stand-in for the vector of `slot` (at most [`MAX_SLOT`]): its
/// bits in an `f32`, padded to [`ref_len`]. Never used in arithmetic.
pub(crate) fn slot_ref(slot: usize) -> [f32; 2] {
    [f32::from_bits(slot.min(MAX_SLOT) as u32), 0.0]
}

/// The slot a reference names, if it is one.
pub(crate) fn ref_slot(data: &[f32], dim: usize) -> Option<usize> {
    if data.len() != ref_len(dim) {
        return None;
    }
    let bits = data.first()?.to_bits() as usize;
    (bits <= MAX_SLOT).then_some(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_land_where_rows_are_looked_up() {
        let s = Sealed::new(2, 3);
        for chunk in 0..40usize {
            let rows: Vec<f32> = (0..6).map(|i| (chunk * 6 + i) as f32).collect();
            assert!(s.row(chunk * 3).is_none());
            assert!(s.seal(chunk, rows.into_boxed_slice()).is_ok());
        }
        for slot in 0..120usize {
            assert_eq!(
                s.row(slot),
                Some(&[(slot * 2) as f32, (slot * 2 + 1) as f32][..])
            );
        }
        assert!(s.row(120).is_none());
        assert!(
            s.seal(5, vec![0.0; 6].into_boxed_slice()).is_err(),
            "sealed twice"
        );
        assert!(
            s.seal(40, vec![0.0; 5].into_boxed_slice()).is_err(),
            "short chunk"
        );
        assert_eq!(
            s.row(4),
            Some(&[8.0, 9.0][..]),
            "a refused seal changes nothing"
        );
    }

    #[test]
    fn rows_seal_whole_chunks_and_keep_the_rest_pending() {
        let mut rows = Rows::new(3, 4);
        for i in 0..10 {
            rows.push(&[i as f32, 0.0, -(i as f32)]);
            assert_eq!(rows.len(), i + 1);
            assert_eq!(rows.sealed_len, (i + 1) / 4 * 4);
        }
        for i in 0..10 {
            assert_eq!(rows.row(i), &[i as f32, 0.0, -(i as f32)]);
        }
        assert!(rows.row(10).is_empty());
        assert_eq!(rows.bytes(), 10 * 3 * 4);
    }

    #[test]
    fn references_round_trip_and_never_look_like_vectors() {
        for dim in [1usize, 2, 8] {
            for slot in [0usize, 1, 77, 1 << 24, MAX_SLOT] {
                let r = slot_ref(slot);
                let data = &r[..ref_len(dim)];
                assert_ne!(data.len(), dim);
                assert_eq!(ref_slot(data, dim), Some(slot));
            }
            assert_eq!(ref_slot(&vec![0.5; dim], dim), None);
        }
    }
}
