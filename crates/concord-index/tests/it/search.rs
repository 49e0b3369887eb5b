use std::collections::HashSet;

use concord_core::{ArticleId, UnitVector};
use concord_index::{IndexError, IndexParams, VectorIndex};

use crate::common::{Rng, build, params, ts};

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
