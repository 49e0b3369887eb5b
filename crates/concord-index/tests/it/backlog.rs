//! Building a completed batch into the graph behind a read lock: `push`,
//! `build_backlog` (`&self`), `commit_backlog`.

use std::sync::RwLock;

use concord_core::ArticleId;
use concord_index::{IndexParams, VectorIndex};

use crate::common::{Rng, params, ts};

fn graph_params() -> IndexParams {
    // Every search goes through the graph, so a slot the graph holds but
    // searches must not take from it yet would show up as a duplicate.
    IndexParams {
        exact_scan_below: 0,
        ..params(16)
    }
}

#[test]
fn push_leaves_a_full_batch_to_the_builder_and_searches_stay_exact_meanwhile() {
    let p = graph_params();
    let mut index = VectorIndex::new(p).unwrap();
    let mut rng = Rng::new(7);
    let vectors: Vec<_> = (0..p.graph_batch * 2).map(|_| rng.vector(p.dim)).collect();
    let mut completed = Vec::new();
    for (i, v) in vectors.iter().enumerate() {
        if index.push(ArticleId(i as u64), ts(i as i64), v).unwrap() {
            completed.push(i);
            // Backlog waiting: everything is pending and still found.
            assert_eq!(index.pending_len(), i + 1);
            let built = index.build_backlog();
            // Built but not committed: the graph holds the batch, searches
            // still scan it exactly, nothing comes back twice.
            assert!(index.has_backlog());
            for q in vectors.iter().take(5) {
                let hits = index.search(q, 10, None).unwrap();
                let mut ids: Vec<_> = hits.iter().map(|h| h.id).collect();
                ids.sort();
                ids.dedup();
                assert_eq!(ids.len(), hits.len(), "duplicates in {hits:?}");
                assert_eq!(hits, index.search_exact(q, 10, None).unwrap());
            }
            index.commit_backlog(built);
            assert!(!index.has_backlog());
            assert_eq!(index.pending_len(), 0);
            break;
        }
    }
    assert_eq!(completed, [p.graph_batch - 1]);
}

#[test]
fn the_batch_is_built_behind_a_read_lock_while_other_readers_search() {
    let p = graph_params();
    let index = RwLock::new(VectorIndex::new(p).unwrap());
    let mut rng = Rng::new(8);
    let vectors: Vec<_> = (0..p.graph_batch * 3).map(|_| rng.vector(p.dim)).collect();
    for (i, v) in vectors.iter().enumerate() {
        let backlog = index
            .write()
            .unwrap()
            .push(ArticleId(i as u64), ts(i as i64), v)
            .unwrap();
        if backlog {
            std::thread::scope(|s| {
                let guard = index.read().unwrap();
                // A second reader searches while the builder holds its read lock.
                let searcher = s.spawn(|| {
                    let r = index.read().unwrap();
                    r.search(&vectors[0], 5, None).unwrap()
                });
                let built = guard.build_backlog();
                let hits = searcher.join().unwrap();
                assert_eq!(hits[0].id, ArticleId(0));
                drop(guard);
                index.write().unwrap().commit_backlog(built);
            });
        }
    }
    let index = index.into_inner().unwrap();
    assert_eq!(index.pending_len(), 0);
    for (i, v) in vectors.iter().enumerate().step_by(17) {
        assert_eq!(index.search(v, 1, None).unwrap()[0].id, ArticleId(i as u64));
    }
}

#[test]
fn building_twice_inserts_once_and_a_rebuild_voids_an_old_backlog() {
    let p = graph_params();
    let mut index = VectorIndex::new(p).unwrap();
    let mut rng = Rng::new(9);
    for i in 0..p.graph_batch {
        let _ = index
            .push(ArticleId(i as u64), ts(i as i64), &rng.vector(p.dim))
            .unwrap();
    }
    let first = index.build_backlog();
    let second = index.build_backlog();
    assert_eq!(first, second);
    // A dump now would write a graph its metadata does not describe.
    let dir = tempfile::tempdir().unwrap();
    assert!(index.dump(dir.path(), 0).is_err());
    for i in 0..10 {
        assert!(index.remove(ArticleId(i)));
    }
    // Fewer than a batch left: the rebuilt graph is empty, all are pending, and
    // the old backlog must not hand slots to it.
    index.rebuild();
    assert_eq!(index.pending_len(), p.graph_batch - 10);
    index.commit_backlog(first);
    assert_eq!(index.pending_len(), p.graph_batch - 10);
    assert!(!index.has_backlog());
    index.dump(dir.path(), 0).unwrap();
    let (loaded, _) = VectorIndex::load(dir.path()).unwrap();
    assert_eq!(loaded.len(), p.graph_batch - 10);
}
