use std::fs;
use std::path::{Path, PathBuf};

use concord_core::ArticleId;
use concord_index::{FORMAT_VERSION, IndexError, IndexParams, TimeWindow, VectorIndex};

use crate::common::{Rng, build, params, published, ts};

fn generation(dir: &Path) -> PathBuf {
    dir.join(fs::read_to_string(dir.join("CURRENT")).unwrap().trim())
}

fn small_dump(dir: &Path) -> VectorIndex {
    let p = IndexParams {
        exact_scan_below: 0,
        ..params(16)
    };
    let (mut index, _) = build(p, 300, 11);
    index.remove(ArticleId(7));
    index.dump(dir, 3).unwrap();
    index
}

#[test]
fn round_trip_keeps_results_and_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let p = IndexParams {
        exact_scan_below: 0,
        ..params(32)
    };
    let (mut index, vectors) = build(p, 800, 12);
    for i in (0..800).step_by(10) {
        index.remove(ArticleId(i));
    }
    // 768 in the graph, 32 pending (one of them removed)
    assert_eq!(index.pending_len(), 32);
    index.dump(dir.path(), 42).unwrap();
    // a second dump replaces the first and removes its generation
    index.dump(dir.path(), 43).unwrap();
    let gens = fs::read_dir(dir.path()).unwrap().filter(|e| {
        e.as_ref()
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("gen-")
    });
    assert_eq!(gens.count(), 1);

    let (loaded, watermark) = VectorIndex::load(dir.path()).unwrap();
    assert_eq!(watermark, 43);
    assert_eq!(loaded.params(), index.params());
    assert_eq!(
        (loaded.len(), loaded.tombstones()),
        (index.len(), index.tombstones())
    );
    assert_eq!(loaded.max_article_id(), Some(ArticleId(799)));
    assert_eq!(loaded.pending_len(), 32);
    for i in [1u64, 767, 768, 799] {
        assert_eq!(
            loaded.vector(ArticleId(i)),
            Some(vectors[i as usize].as_slice())
        );
        assert_eq!(
            loaded.search(&vectors[i as usize], 1, None).unwrap()[0].id,
            ArticleId(i)
        );
    }
    let window = TimeWindow::new(ts(published(100)), ts(published(600)));
    let mut rng = Rng::new(13);
    for _ in 0..50 {
        let q = rng.vector(32);
        assert_eq!(
            loaded.search(&q, 10, None).unwrap(),
            index.search(&q, 10, None).unwrap()
        );
        assert_eq!(
            loaded.search(&q, 10, Some(window)).unwrap(),
            index.search(&q, 10, Some(window)).unwrap()
        );
        assert_eq!(
            loaded.search_exact(&q, 10, None).unwrap(),
            index.search_exact(&q, 10, None).unwrap()
        );
    }
    // a loaded index keeps working
    let mut loaded = loaded;
    loaded
        .insert(ArticleId(5000), ts(published(5000)), &rng.vector(32))
        .unwrap();
    loaded.rebuild();
    assert_eq!(loaded.len(), index.len() + 1);
}

#[test]
fn an_index_with_only_pending_entries_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let (index, vectors) = build(params(8), 10, 16);
    assert_eq!(index.pending_len(), 10);
    index.dump(dir.path(), 1).unwrap();
    let gen_dir = generation(dir.path());
    assert!(!gen_dir.join("graph.hnsw.graph").exists());
    let (mut loaded, _) = VectorIndex::load(dir.path()).unwrap();
    assert_eq!((loaded.len(), loaded.pending_len()), (10, 10));
    assert_eq!(
        loaded.search(&vectors[3], 1, None).unwrap()[0].id,
        ArticleId(3)
    );
    // the loaded index fills its first batch and moves it into the graph
    let mut rng = Rng::new(17);
    for i in 10..64u64 {
        loaded
            .insert(ArticleId(i), ts(published(i)), &rng.vector(8))
            .unwrap();
    }
    assert_eq!(loaded.pending_len(), 0);
}

#[test]
fn empty_index_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    VectorIndex::new(params(8))
        .unwrap()
        .dump(dir.path(), 0)
        .unwrap();
    let (loaded, watermark) = VectorIndex::load(dir.path()).unwrap();
    assert_eq!(
        (loaded.len(), watermark, loaded.max_article_id()),
        (0, 0, None)
    );
}

#[test]
fn missing_dump_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        VectorIndex::load(&dir.path().join("nope")),
        Err(IndexError::DumpMissing(_))
    ));
}

fn flip_byte(path: &Path, at: impl Fn(usize) -> usize) {
    let mut bytes = fs::read(path).unwrap();
    let i = at(bytes.len());
    bytes[i] ^= 0x40;
    fs::write(path, bytes).unwrap();
}

fn assert_corrupt(dir: &Path) {
    match VectorIndex::load(dir) {
        Err(e @ IndexError::DumpCorrupt { .. }) => assert!(e.is_unusable_dump()),
        other => panic!("expected a corrupt dump, got {other:?}"),
    }
}

#[test]
fn corrupt_dumps_give_errors_not_panics() {
    type Damage = Box<dyn Fn(&Path)>;
    let cases: Vec<(&str, Damage)> = vec![
        (
            "sidecar byte",
            Box::new(|g| flip_byte(&g.join("index.meta"), |n| n / 2)),
        ),
        (
            "sidecar truncated",
            Box::new(|g| {
                let b = fs::read(g.join("index.meta")).unwrap();
                fs::write(g.join("index.meta"), &b[..b.len() - 9]).unwrap();
            }),
        ),
        (
            "sidecar missing",
            Box::new(|g| fs::remove_file(g.join("index.meta")).unwrap()),
        ),
        (
            "graph header",
            Box::new(|g| flip_byte(&g.join("graph.hnsw.graph"), |_| 0)),
        ),
        (
            "graph middle",
            Box::new(|g| flip_byte(&g.join("graph.hnsw.graph"), |n| n / 2)),
        ),
        (
            "data truncated",
            Box::new(|g| {
                let b = fs::read(g.join("graph.hnsw.data")).unwrap();
                fs::write(g.join("graph.hnsw.data"), &b[..b.len() / 2]).unwrap();
            }),
        ),
        (
            "data missing",
            Box::new(|g| fs::remove_file(g.join("graph.hnsw.data")).unwrap()),
        ),
        (
            "vectors byte",
            Box::new(|g| flip_byte(&g.join("vectors.f32"), |n| n - 3)),
        ),
        (
            "vectors truncated",
            Box::new(|g| {
                let b = fs::read(g.join("vectors.f32")).unwrap();
                fs::write(g.join("vectors.f32"), &b[..b.len() - 4]).unwrap();
            }),
        ),
        (
            "vectors missing",
            Box::new(|g| fs::remove_file(g.join("vectors.f32")).unwrap()),
        ),
    ];
    for (name, damage) in cases {
        let dir = tempfile::tempdir().unwrap();
        small_dump(dir.path());
        damage(&generation(dir.path()));
        eprintln!("case: {name}");
        assert_corrupt(dir.path());
    }

    let dir = tempfile::tempdir().unwrap();
    small_dump(dir.path());
    fs::write(dir.path().join("CURRENT"), "../../etc\n").unwrap();
    assert_corrupt(dir.path());
}

#[test]
fn other_format_versions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    small_dump(dir.path());
    let meta = generation(dir.path()).join("index.meta");
    let mut bytes = fs::read(&meta).unwrap();
    bytes[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
    fs::write(&meta, bytes).unwrap();
    assert!(matches!(
        VectorIndex::load(dir.path()),
        Err(IndexError::DumpVersion { found, expected }) if found == FORMAT_VERSION + 1 && expected == FORMAT_VERSION
    ));
}
