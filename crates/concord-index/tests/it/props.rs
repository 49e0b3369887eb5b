use std::collections::BTreeMap;

use concord_core::ArticleId;
use concord_index::{IndexParams, TimeWindow, VectorIndex};
use proptest::prelude::*;

use crate::common::{Rng, params, published, ts};

#[derive(Debug, Clone)]
enum Op {
    Insert(u64),
    Upsert(u64),
    Remove(u64),
    Rebuild,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u64..24).prop_map(Op::Insert),
        1 => (0u64..24).prop_map(Op::Upsert),
        3 => (0u64..24).prop_map(Op::Remove),
        1 => Just(Op::Rebuild),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn live_len_is_consistent_and_removed_ids_never_come_back(
        ops in proptest::collection::vec(op(), 1..60),
        graph_path in any::<bool>(),
        graph_batch in 1usize..6,
        seed in any::<u64>(),
    ) {
        let p = IndexParams {
            exact_scan_below: if graph_path { 0 } else { 4096 },
            m: 4,
            graph_batch,
            ..params(8)
        };
        let mut index = VectorIndex::new(p).unwrap();
        let mut rng = Rng::new(seed);
        let mut model: BTreeMap<u64, ()> = BTreeMap::new();
        let mut newest = None;
        for op in ops {
            match op {
                Op::Insert(id) => {
                    let res = index.insert(ArticleId(id), ts(published(id)), &rng.vector(8));
                    prop_assert_eq!(res.is_ok(), model.insert(id, ()).is_none());
                    if res.is_ok() {
                        newest = Some(id);
                    }
                }
                Op::Upsert(id) => {
                    let replaced = index.upsert(ArticleId(id), ts(published(id)), &rng.vector(8)).unwrap();
                    prop_assert_eq!(replaced, model.insert(id, ()).is_some());
                    newest = Some(id);
                }
                Op::Remove(id) => {
                    prop_assert_eq!(index.remove(ArticleId(id)), model.remove(&id).is_some());
                    if newest == Some(id) {
                        newest = None;
                    }
                }
                Op::Rebuild => {
                    index.rebuild();
                    prop_assert_eq!(index.tombstones(), 0);
                }
            }
            prop_assert_eq!(index.len(), model.len());
            prop_assert_eq!(index.graph_len(), index.len() + index.tombstones());
            prop_assert!(index.pending_len() < graph_batch);
            let q = rng.vector(8);
            let hits = index.search(&q, 30, None).unwrap();
            prop_assert!(hits.iter().all(|h| model.contains_key(&h.id.0)));
            let window = TimeWindow::new(ts(published(5)), ts(published(15)));
            let hits = index.search(&q, 30, Some(window)).unwrap();
            prop_assert!(hits.iter().all(|h| model.contains_key(&h.id.0) && (5..=15).contains(&h.id.0)));
            // the exact path must find every live entry, and so must the
            // graph path when it asks for all of them
            prop_assert_eq!(index.search_exact(&q, 30, None).unwrap().len(), model.len());
            // the newest entry sits in the last slot: when that slot is
            // pending, graph searches must still find it (by exact scan)
            if let Some(id) = newest.filter(|_| index.pending_len() > 0) {
                let v = index.vector(ArticleId(id)).unwrap().to_vec();
                let v = concord_core::UnitVector::normalize(v).unwrap();
                prop_assert_eq!(index.search(&v, 1, None).unwrap()[0].id, ArticleId(id));
            }
        }
    }
}
