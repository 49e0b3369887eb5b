//! Dump and reload.
//!
//! A dump directory belongs to one index and looks like this:
//!
//! ```text
//! <dir>/CURRENT                     "gen-<hex>\n": the generation to load
//! <dir>/gen-<hex>/index.meta        our sidecar (below)
//! <dir>/gen-<hex>/vectors.f32       every slot's vector, slot order
//! <dir>/gen-<hex>/graph.hnsw.graph  hnsw_rs file_dump: the graph
//! <dir>/gen-<hex>/graph.hnsw.data   hnsw_rs file_dump: each point's slot reference
//! ```
//!
//! A dump writes a new generation directory, syncs it, then replaces
//! `CURRENT` by rename, so a crash leaves either the old or the new dump,
//! never a mix; older generations are deleted afterwards. The graph files
//! are absent when no slot is in the graph yet. The graph holds the first
//! `slot count / graph_batch * graph_batch` slots; the rest are pending
//! (their vectors are in `vectors.f32` like all others) and stay pending
//! after the reload.
//!
//! `index.meta`, little-endian:
//!
//! ```text
//! magic "CONCIDX\0" | format version u32
//! dim, m, ef_construction, ef_search, exact_scan_below, max_elements_hint, graph_batch: u64
//! rebuild_tombstone_ratio f64 | watermark u64 | has_max_id u8, max_id u64
//! slot count u64 | live count u64
//! graph basename: len u32, utf-8 bytes
//! graph file, data file, vectors file: len u64, checksum u64 each
//! per slot: article id u64, published secs i64, live u8
//! checksum u64 of everything above
//! ```
//!
//! `vectors.f32` is `dim` little-endian `f32`s per slot, tombstones
//! included. `hnsw_rs`'s loader asserts and unwraps on malformed input, so
//! both graph files are checked against the sidecar's lengths and checksums
//! before it sees them; its dump files use native endianness and `usize`,
//! so a dump only moves between machines of the same architecture.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use concord_core::ArticleId;
use hnsw_rs::prelude::{AnnT, HnswIo};

use crate::checksum::{Checksum, file_checksum};
use crate::distance::SlotDot;
use crate::error::IndexError;
use crate::index::{Graph, IndexParams, Slot, VectorIndex, new_graph};
use crate::vectors::{Rows, ref_slot};

/// Version of the dump layout written by [`VectorIndex::dump`]. Version 2:
/// the vectors are our own file and the graph's points hold slot
/// references; version 1 kept the vectors in the graph's data file.
pub const FORMAT_VERSION: u32 = 2;

const MAGIC: &[u8; 8] = b"CONCIDX\0";
const CURRENT: &str = "CURRENT";
const META: &str = "index.meta";
const VECTORS: &str = "vectors.f32";
const BASENAME: &str = "graph";
const SLOT_BYTES: usize = 8 + 8 + 1;

fn graph_file(dir: &Path, basename: &str) -> PathBuf {
    dir.join(format!("{basename}.hnsw.graph"))
}

fn data_file(dir: &Path, basename: &str) -> PathBuf {
    dir.join(format!("{basename}.hnsw.data"))
}

fn sync_path(path: &Path) -> Result<(), IndexError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| IndexError::io(path, e))
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "panic".to_owned())
}

impl VectorIndex {
    /// Writes the index to `dir` (created if needed) with the caller's
    /// `watermark` (for instance the store's highest article id or change
    /// sequence it covers); [`load`](Self::load) gives it back so the caller
    /// can re-index what came after. Atomic: a crash leaves the previous
    /// dump loadable. `dir` must belong to this index alone.
    pub fn dump(&self, dir: &Path, watermark: u64) -> Result<(), IndexError> {
        if self.has_backlog() {
            // The dump's graph must hold exactly the whole batches.
            return Err(IndexError::Graph(
                "a graph batch is being built; dump after it is committed".into(),
            ));
        }
        fs::create_dir_all(dir).map_err(|e| IndexError::io(dir, e))?;
        let gen_name = fresh_generation(dir);
        let gen_dir = dir.join(&gen_name);
        fs::create_dir(&gen_dir).map_err(|e| IndexError::io(&gen_dir, e))?;
        let written = self.write_generation(&gen_dir, watermark);
        if let Err(e) = written {
            let _ = fs::remove_dir_all(&gen_dir);
            return Err(e);
        }
        // switch CURRENT by rename: the commit point
        let tmp = dir.join("CURRENT.tmp");
        let current = dir.join(CURRENT);
        (|| -> io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(format!("{gen_name}\n").as_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp, &current)
        })()
        .map_err(|e| IndexError::io(&current, e))?;
        sync_path(dir)?;
        remove_other_generations(dir, &gen_name);
        Ok(())
    }

    fn write_generation(&self, gen_dir: &Path, watermark: u64) -> Result<(), IndexError> {
        let mut basename = String::new();
        let mut files = [(0u64, 0u64); 3];
        if self.in_graph > 0 {
            // DumpInit panics when it cannot create its files
            let dumped = catch_unwind(AssertUnwindSafe(|| self.graph.file_dump(gen_dir, BASENAME)))
                .map_err(|p| IndexError::Graph(format!("dump panicked: {}", panic_message(&*p))))?;
            basename = dumped.map_err(|e| IndexError::Graph(format!("dump failed: {e:#}")))?;
            for (i, path) in [
                graph_file(gen_dir, &basename),
                data_file(gen_dir, &basename),
            ]
            .iter()
            .enumerate()
            {
                sync_path(path)?;
                files[i] = file_checksum(path).map_err(|e| IndexError::io(path, e))?;
            }
        }
        files[2] = self.write_vectors(&gen_dir.join(VECTORS))?;
        let meta = self.encode_meta(watermark, &basename, files);
        let path = gen_dir.join(META);
        (|| -> io::Result<()> {
            let mut f = File::create(&path)?;
            f.write_all(&meta)?;
            f.sync_all()
        })()
        .map_err(|e| IndexError::io(&path, e))?;
        sync_path(gen_dir)
    }

    /// Writes every slot's vector; returns the file's length and checksum.
    fn write_vectors(&self, path: &Path) -> Result<(u64, u64), IndexError> {
        let mut sum = Checksum::new();
        let mut len = 0u64;
        (|| -> io::Result<()> {
            let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
            let mut bytes = Vec::with_capacity(self.params.dim * 4);
            for slot in 0..self.slots.len() {
                bytes.clear();
                for x in self.rows.row(slot) {
                    bytes.extend_from_slice(&x.to_le_bytes());
                }
                out.write_all(&bytes)?;
                sum.update(&bytes);
                len += bytes.len() as u64;
            }
            out.into_inner()
                .map_err(io::IntoInnerError::into_error)?
                .sync_all()
        })()
        .map_err(|e| IndexError::io(path, e))?;
        Ok((len, sum.finish()))
    }

    fn encode_meta(&self, watermark: u64, basename: &str, files: [(u64, u64); 3]) -> Vec<u8> {
        let p = &self.params;
        let mut b = Vec::with_capacity(160 + basename.len() + self.slots.len() * SLOT_BYTES);
        let u64s = |b: &mut Vec<u8>, xs: &[u64]| {
            xs.iter()
                .for_each(|x| b.extend_from_slice(&x.to_le_bytes()))
        };
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        u64s(
            &mut b,
            &[
                p.dim as u64,
                p.m as u64,
                p.ef_construction as u64,
                p.ef_search as u64,
                p.exact_scan_below as u64,
                p.max_elements_hint as u64,
                p.graph_batch as u64,
                p.rebuild_tombstone_ratio.to_bits(),
                watermark,
            ],
        );
        b.push(u8::from(self.max_id.is_some()));
        u64s(
            &mut b,
            &[
                self.max_id.map_or(0, |id| id.0),
                self.slots.len() as u64,
                self.len() as u64,
            ],
        );
        b.extend_from_slice(&(basename.len() as u32).to_le_bytes());
        b.extend_from_slice(basename.as_bytes());
        for (len, sum) in files {
            u64s(&mut b, &[len, sum]);
        }
        for s in &self.slots {
            b.extend_from_slice(&s.id.0.to_le_bytes());
            b.extend_from_slice(&s.secs.to_le_bytes());
            b.push(u8::from(s.live));
        }
        let sum = Checksum::of(&b);
        b.extend_from_slice(&sum.to_le_bytes());
        b
    }

    /// Loads the dump in `dir` and the watermark it was written with.
    ///
    /// A missing dump is [`IndexError::DumpMissing`]; a damaged or
    /// inconsistent one [`IndexError::DumpCorrupt`] (never a panic); a dump
    /// from another format version [`IndexError::DumpVersion`]. In every such
    /// case the caller rebuilds from the store.
    pub fn load(dir: &Path) -> Result<(Self, u64), IndexError> {
        let current = dir.join(CURRENT);
        let gen_name = match fs::read_to_string(&current) {
            Ok(s) => s.trim().to_owned(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(IndexError::DumpMissing(dir.to_path_buf()));
            }
            Err(e) => return Err(IndexError::io(&current, e)),
        };
        let valid_name = gen_name.strip_prefix("gen-").is_some_and(|rest| {
            !rest.is_empty() && rest.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
        });
        if !valid_name {
            return Err(IndexError::corrupt(
                &current,
                "CURRENT does not name a generation",
            ));
        }
        let gen_dir = dir.join(&gen_name);
        let meta_path = gen_dir.join(META);
        let bytes = match fs::read(&meta_path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(IndexError::corrupt(&meta_path, "sidecar missing"));
            }
            Err(e) => return Err(IndexError::io(&meta_path, e)),
        };
        let meta = Meta::decode(&bytes, &meta_path)?;
        let rows = load_rows(&gen_dir.join(VECTORS), &meta)?;
        let graph = load_graph(&gen_dir, &meta, &rows)?;
        meta.into_index(graph, rows, &gen_dir)
    }
}

fn fresh_generation(dir: &Path) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut name = format!("gen-{nanos:x}");
    let mut n = 0u32;
    while dir.join(&name).exists() {
        n += 1;
        name = format!("gen-{nanos:x}-{n}");
    }
    name
}

fn remove_other_generations(dir: &Path, keep: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("gen-")
            && name != keep
            && let Err(error) = fs::remove_dir_all(entry.path())
        {
            tracing::warn!(%error, path = %entry.path().display(), "could not remove old index dump");
        }
    }
}

/// The decoded sidecar.
struct Meta {
    params: IndexParams,
    watermark: u64,
    max_id: Option<ArticleId>,
    live: usize,
    basename: String,
    files: [(u64, u64); 3],
    slots: Vec<Slot>,
}

/// Bounds-checked little-endian reader; every short read is a corrupt dump.
struct Reader<'a> {
    buf: &'a [u8],
    path: &'a Path,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], IndexError> {
        if self.buf.len() < n {
            return Err(IndexError::corrupt(self.path, "sidecar truncated"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], IndexError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, IndexError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, IndexError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, IndexError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn usize(&mut self) -> Result<usize, IndexError> {
        usize::try_from(self.u64()?)
            .map_err(|_| IndexError::corrupt(self.path, "count out of range"))
    }
}

impl Meta {
    fn decode(bytes: &[u8], path: &Path) -> Result<Self, IndexError> {
        let corrupt = |why: &str| IndexError::corrupt(path, why);
        let mut r = Reader { buf: bytes, path };
        if r.take(MAGIC.len())? != MAGIC {
            return Err(corrupt("not an index sidecar"));
        }
        let version = r.u32()?;
        if version != FORMAT_VERSION {
            return Err(IndexError::DumpVersion {
                found: version,
                expected: FORMAT_VERSION,
            });
        }
        let body_len = bytes
            .len()
            .checked_sub(8)
            .ok_or_else(|| corrupt("sidecar truncated"))?;
        let (body, sum) = bytes.split_at(body_len);
        let mut sum_bytes = [0u8; 8];
        sum_bytes.copy_from_slice(sum);
        if Checksum::of(body) != u64::from_le_bytes(sum_bytes) {
            return Err(corrupt("sidecar checksum mismatch"));
        }
        let mut r = Reader {
            buf: &body[MAGIC.len() + 4..],
            path,
        };
        let params = IndexParams {
            dim: r.usize()?,
            m: r.usize()?,
            ef_construction: r.usize()?,
            ef_search: r.usize()?,
            exact_scan_below: r.usize()?,
            max_elements_hint: r.usize()?,
            graph_batch: r.usize()?,
            rebuild_tombstone_ratio: f64::from_bits(r.u64()?),
        };
        params
            .validate()
            .map_err(|e| corrupt(&format!("bad parameters: {e}")))?;
        let watermark = r.u64()?;
        let has_max = r.u8()?;
        let max_raw = r.u64()?;
        let max_id = (has_max != 0).then_some(ArticleId(max_raw));
        let n = r.usize()?;
        let live = r.usize()?;
        let name_len = r.u32()? as usize;
        let basename = std::str::from_utf8(r.take(name_len)?)
            .map_err(|_| corrupt("graph basename is not utf-8"))?
            .to_owned();
        let files = [
            (r.u64()?, r.u64()?),
            (r.u64()?, r.u64()?),
            (r.u64()?, r.u64()?),
        ];
        if r.buf.len() != n.saturating_mul(SLOT_BYTES) {
            return Err(corrupt("slot table length does not match slot count"));
        }
        let mut slots = Vec::with_capacity(n);
        for _ in 0..n {
            let id = ArticleId(r.u64()?);
            let secs = i64::from_le_bytes(r.array()?);
            let live = match r.u8()? {
                0 => false,
                1 => true,
                _ => return Err(corrupt("bad live flag")),
            };
            slots.push(Slot { id, secs, live });
        }
        if slots.iter().filter(|s| s.live).count() != live {
            return Err(corrupt("live count does not match slots"));
        }
        let in_graph = n / params.graph_batch * params.graph_batch;
        if (in_graph == 0) != basename.is_empty() || basename.contains(['/', '\\']) {
            return Err(corrupt("graph basename does not match slot count"));
        }
        Ok(Self {
            params,
            watermark,
            max_id,
            live,
            basename,
            files,
            slots,
        })
    }

    /// Slots the graph holds: every whole batch.
    fn in_graph(&self) -> usize {
        self.slots.len() / self.params.graph_batch * self.params.graph_batch
    }

    fn into_index(
        self,
        graph: Graph,
        rows: Rows,
        gen_dir: &Path,
    ) -> Result<(VectorIndex, u64), IndexError> {
        let corrupt = |why: &str| IndexError::corrupt(gen_dir, why);
        let n = self.slots.len();
        let in_graph = self.in_graph();
        if rows.len() != n || rows.sealed_len != in_graph {
            return Err(corrupt("vector count does not match slot count"));
        }
        if in_graph > 0 {
            if graph.get_nb_point() != in_graph {
                return Err(corrupt("graph point count does not match slot count"));
            }
            let dim = self.params.dim;
            // iterating an hnsw_rs graph panics when it is empty or broken
            let consistent = catch_unwind(AssertUnwindSafe(|| {
                let mut seen = vec![false; in_graph];
                for p in graph.get_point_indexation() {
                    let slot = p.get_origin_id();
                    if slot >= in_graph || seen[slot] || ref_slot(p.get_v(), dim) != Some(slot) {
                        return false;
                    }
                    seen[slot] = true;
                }
                seen.iter().all(|&s| s)
            }));
            if !matches!(consistent, Ok(true)) {
                return Err(corrupt("graph points do not match the slot table"));
            }
        }
        let mut by_id = HashMap::with_capacity(self.live);
        for (slot, s) in self.slots.iter().enumerate().filter(|(_, s)| s.live) {
            if by_id.insert(s.id, slot).is_some() {
                return Err(corrupt("an article id is live in two slots"));
            }
        }
        let mut by_time: Vec<(i64, usize)> = self
            .slots
            .iter()
            .enumerate()
            .map(|(slot, s)| (s.secs, slot))
            .collect();
        by_time.sort_unstable();
        let index = VectorIndex {
            params: self.params,
            graph,
            rows,
            in_graph,
            built: std::sync::Mutex::new(in_graph),
            generation: 0,
            tombstones: n - self.live,
            slots: self.slots,
            by_id,
            by_time,
            max_id: self.max_id,
        };
        Ok((index, self.watermark))
    }
}

/// Reads `vectors.f32`, checking its length and checksum against the
/// sidecar, into storage that seals whole batches as the index does.
fn load_rows(path: &Path, meta: &Meta) -> Result<Rows, IndexError> {
    let dim = meta.params.dim;
    let (want_len, want_sum) = meta.files[2];
    let row_bytes = dim * 4;
    if (meta.slots.len() as u64).checked_mul(row_bytes as u64) != Some(want_len) {
        return Err(IndexError::corrupt(
            path,
            "vector file length does not match slot count",
        ));
    }
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(IndexError::corrupt(path, "vector file missing"));
        }
        Err(e) => return Err(IndexError::io(path, e)),
    };
    let found_len = file.metadata().map_err(|e| IndexError::io(path, e))?.len();
    if found_len != want_len {
        return Err(IndexError::corrupt(
            path,
            "vector file length does not match",
        ));
    }
    let mut rows = Rows::new(dim, meta.params.graph_batch);
    let mut sum = Checksum::new();
    let per_read = (1 << 20) / row_bytes.max(1) + 1;
    let mut buf = vec![0u8; per_read * row_bytes];
    let mut row = vec![0.0f32; dim];
    let mut left = meta.slots.len();
    while left > 0 {
        let take = left.min(per_read);
        let bytes = &mut buf[..take * row_bytes];
        file.read_exact(bytes).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => IndexError::corrupt(path, "vector file truncated"),
            _ => IndexError::io(path, e),
        })?;
        sum.update(bytes);
        for r in bytes.chunks_exact(row_bytes) {
            for (x, b) in row.iter_mut().zip(r.chunks_exact(4)) {
                *x = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
            rows.push(&row);
        }
        left -= take;
    }
    if sum.finish() != want_sum {
        return Err(IndexError::corrupt(path, "vector file checksum mismatch"));
    }
    Ok(rows)
}

fn load_graph(gen_dir: &Path, meta: &Meta, rows: &Rows) -> Result<Graph, IndexError> {
    if meta.in_graph() == 0 {
        return Ok(new_graph(
            &meta.params,
            meta.params.max_elements_hint,
            &rows.sealed,
        ));
    }
    let paths = [
        graph_file(gen_dir, &meta.basename),
        data_file(gen_dir, &meta.basename),
    ];
    for (path, expected) in paths.iter().zip(meta.files) {
        match file_checksum(path) {
            Ok(found) if found == expected => {}
            Ok(_) => return Err(IndexError::corrupt(path, "graph file checksum mismatch")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(IndexError::corrupt(path, "graph file missing"));
            }
            Err(e) => return Err(IndexError::io(path, e)),
        }
    }
    // hnsw_rs ties the graph's lifetime to its loader (which may hold an
    // mmap); we never mmap, and leaking the small loader makes the graph
    // 'static
    let loader: &'static HnswIo = Box::leak(Box::new(HnswIo::new(gen_dir, &meta.basename)));
    let distance = SlotDot::new(std::sync::Arc::clone(&rows.sealed));
    let loaded = catch_unwind(AssertUnwindSafe(move || {
        loader.load_hnsw_with_dist::<f32, SlotDot>(distance)
    }))
    .map_err(|p| {
        IndexError::corrupt(
            gen_dir,
            format!("graph reload panicked: {}", panic_message(&*p)),
        )
    })?;
    let mut graph =
        loaded.map_err(|e| IndexError::corrupt(gen_dir, format!("graph reload failed: {e:#}")))?;
    // a reloaded graph has extend_candidates on, a fresh one off
    graph.set_extend_candidates(false);
    Ok(graph)
}
