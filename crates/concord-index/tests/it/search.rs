use std::collections::HashSet;

use concord_core::{ArticleId, UnitVector};
use concord_index::{IndexError, IndexParams, TimeWindow, VectorIndex};

use crate::common::{Rng, build, params, published, ts};

fn recall(approx: &[concord_index::Hit], exact: &[concord_index::Hit]) -> f64 {
    let truth: HashSet<ArticleId> = exact.iter().map(|h| h.id).collect();
    approx.iter().filter(|h| truth.contains(&h.id)).count() as f64 / exact.len().max(1) as f64
}

#[test]
fn graph_search_agrees_with_exact_scan() {
    // uniform random vectors are the worst case for HNSW (no structure to
    // exploit): ef_search 64 gives about 0.95 here, 128 about 0.985
    let p = IndexParams {
        exact_scan_below: 0,
        ef_search: 128,
        ..params(64)
    };
    let (index, _) = build(p, 5000, 1);
    let mut rng = Rng::new(99);
    let queries = 100;
    let mut total = 0.0;
    for _ in 0..queries {
        let q = rng.vector(64);
        let approx = index.search(&q, 10, None).unwrap();
        let exact = index.search_exact(&q, 10, None).unwrap();
        assert_eq!(exact.len(), 10);
        assert!(
            approx
                .windows(2)
                .all(|w| w[0].similarity >= w[1].similarity)
        );
        total += recall(&approx, &exact);
    }
    let r = total / queries as f64;
    assert!(r >= 0.95, "recall@10 = {r}");
}

#[test]
fn pending_entries_are_scanned_exactly_beside_the_graph() {
    // batches of 64: 1000 entries put 960 in the graph and leave 40 pending,
    // which the graph cannot find
    let p = IndexParams {
        exact_scan_below: 0,
        ..params(32)
    };
    let (mut index, vectors) = build(p, 1000, 21);
    assert_eq!((index.pending_len(), index.graph_len()), (40, 1000));
    let tail = TimeWindow::new(ts(published(900)), ts(published(999)));
    for (i, v) in vectors.iter().enumerate().skip(960) {
        let id = ArticleId(i as u64);
        assert_eq!(index.search(v, 3, None).unwrap()[0].id, id);
        assert_eq!(index.search(v, 3, Some(tail)).unwrap()[0].id, id);
    }
    // a removed pending entry is not returned
    index.remove(ArticleId(970));
    assert_ne!(
        index.search(&vectors[970], 1, None).unwrap()[0].id,
        ArticleId(970)
    );
    // the insert that completes a batch moves it into the graph
    let mut rng = Rng::new(22);
    let extra: Vec<UnitVector> = (0..25).map(|_| rng.vector(32)).collect();
    for (i, v) in (1000u64..).zip(&extra) {
        index.insert(ArticleId(i), ts(published(i)), v).unwrap();
    }
    assert_eq!(index.pending_len(), 1);
    for (i, v) in (1000u64..).zip(&extra) {
        assert_eq!(index.search(v, 1, None).unwrap()[0].id, ArticleId(i));
    }
}

#[test]
fn small_index_is_answered_exactly() {
    let (index, _) = build(params(16), 300, 2);
    let mut rng = Rng::new(3);
    for _ in 0..20 {
        let q = rng.vector(16);
        assert_eq!(
            index.search(&q, 7, None).unwrap(),
            index.search_exact(&q, 7, None).unwrap()
        );
    }
}

#[test]
fn a_stored_vector_finds_itself_first_on_both_paths() {
    // hnsw_rs's DistDot would panic here: 1 - dot(v, v) can be slightly negative
    for exact_scan_below in [0, 4096] {
        let p = IndexParams {
            exact_scan_below,
            ..params(32)
        };
        let (index, vectors) = build(p, 300, 4);
        for (i, v) in vectors.iter().enumerate().step_by(15) {
            let hits = index.search(v, 3, None).unwrap();
            assert_eq!(hits[0].id, ArticleId(i as u64));
            assert!((hits[0].similarity - 1.0).abs() < 1e-5);
        }
    }
}

#[test]
fn rejects_bad_input() {
    let mut index = VectorIndex::new(params(8)).unwrap();
    let v = UnitVector::normalize(vec![1.0; 8]).unwrap();
    let short = UnitVector::normalize(vec![1.0; 4]).unwrap();
    index.insert(ArticleId(1), ts(0), &v).unwrap();
    assert!(matches!(
        index.insert(ArticleId(2), ts(0), &short),
        Err(IndexError::DimensionMismatch {
            expected: 8,
            got: 4
        })
    ));
    assert!(matches!(
        index.insert(ArticleId(1), ts(0), &v),
        Err(IndexError::DuplicateId(ArticleId(1)))
    ));
    assert!(matches!(
        index.search(&short, 1, None),
        Err(IndexError::DimensionMismatch { .. })
    ));
    let batch = [(ArticleId(5), ts(0), &v), (ArticleId(5), ts(1), &v)];
    assert!(matches!(
        index.insert_batch(&batch),
        Err(IndexError::DuplicateId(ArticleId(5)))
    ));
    assert_eq!(index.len(), 1, "a rejected batch changes nothing");
    assert!(index.search(&v, 0, None).unwrap().is_empty());

    for bad in [
        IndexParams {
            m: 300,
            ..params(8)
        },
        IndexParams {
            graph_batch: 0,
            ..params(8)
        },
        IndexParams { m: 1, ..params(8) },
        IndexParams {
            dim: 0,
            ..params(8)
        },
        IndexParams {
            rebuild_tombstone_ratio: f64::NAN,
            ..params(8)
        },
    ] {
        assert!(matches!(
            VectorIndex::new(bad),
            Err(IndexError::InvalidParams(_))
        ));
    }
}

#[test]
fn upsert_replaces_the_vector() {
    let mut index = VectorIndex::new(params(4)).unwrap();
    let a = UnitVector::normalize(vec![1.0, 0.0, 0.0, 0.0]).unwrap();
    let b = UnitVector::normalize(vec![0.0, 1.0, 0.0, 0.0]).unwrap();
    assert!(!index.upsert(ArticleId(1), ts(0), &a).unwrap());
    assert!(index.upsert(ArticleId(1), ts(0), &b).unwrap());
    assert_eq!((index.len(), index.tombstones()), (1, 1));
    let hits = index.search(&b, 5, None).unwrap();
    assert_eq!(hits.len(), 1);
    assert!((hits[0].similarity - 1.0).abs() < 1e-6);
    assert_eq!(index.max_article_id(), Some(ArticleId(1)));
    assert_eq!(index.vector(ArticleId(1)), Some(b.as_slice()));
    assert_eq!(index.ids().collect::<Vec<_>>(), vec![ArticleId(1)]);
    assert!(index.remove(ArticleId(1)));
    assert_eq!(index.vector(ArticleId(1)), None);
    assert_eq!(index.ids().count(), 0);
}

#[test]
fn index_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<VectorIndex>();
}

#[test]
fn memory_counts_one_copy_of_the_vectors_and_the_graph_per_point() {
    let (mut index, _) = build(params(16), 300, 23);
    let m = index.memory();
    assert_eq!(m.vectors, 300 * 16 * 4);
    // 256 graph points (four batches of 64): each costs hundreds of bytes of
    // bookkeeping and neighbour lists, but not a copy of its vector
    assert!(
        (256 * 300..256 * 4000).contains(&m.graph),
        "graph {}",
        m.graph
    );
    assert!(m.maps >= 300 * 40, "maps {}", m.maps);
    assert_eq!(m.total(), index.memory_bytes());
    for i in 0..100 {
        index.remove(ArticleId(i));
    }
    index.rebuild();
    let after = index.memory();
    assert_eq!(after.vectors, 200 * 16 * 4);
    assert!(after.graph < m.graph);
    assert_eq!(
        VectorIndex::new(params(16)).unwrap().memory().graph,
        0,
        "an empty graph"
    );
}
