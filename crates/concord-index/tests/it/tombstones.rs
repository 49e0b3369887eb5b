use std::collections::HashSet;

use concord_core::ArticleId;
use concord_index::IndexParams;

use crate::common::{Rng, build, params};

#[test]
fn removed_items_are_never_returned_and_rebuild_keeps_live_ones() {
    for exact_scan_below in [0, 4096] {
        let p = IndexParams {
            exact_scan_below,
            ..params(32)
        };
        let (mut index, vectors) = build(p, 600, 9);
        let removed: HashSet<ArticleId> = (0..600).step_by(3).map(ArticleId).collect();
        for id in &removed {
            assert!(index.remove(*id));
            assert!(!index.remove(*id), "second removal is a no-op");
        }
        assert_eq!(index.len(), 600 - removed.len());
        assert_eq!(index.tombstones(), removed.len());
        assert!(index.needs_rebuild());
        let check = |index: &concord_index::VectorIndex| {
            let mut rng = Rng::new(10);
            for id in &removed {
                // the removed vector itself is the worst case
                let hits = index.search(&vectors[id.0 as usize], 10, None).unwrap();
                assert_eq!(hits.len(), 10);
                assert!(hits.iter().all(|h| !removed.contains(&h.id)));
            }
            for _ in 0..20 {
                let hits = index.search(&rng.vector(32), 10, None).unwrap();
                assert!(hits.iter().all(|h| !removed.contains(&h.id)));
            }
        };
        check(&index);
        index.rebuild();
        assert!(!index.needs_rebuild());
        assert_eq!(
            (index.len(), index.tombstones(), index.graph_len()),
            (600 - removed.len(), 0, 600 - removed.len())
        );
        check(&index);
        let mut found_self = 0;
        for (i, v) in vectors.iter().enumerate() {
            let id = ArticleId(i as u64);
            assert_eq!(index.contains(id), !removed.contains(&id));
            if !removed.contains(&id) && index.search(v, 1, None).unwrap()[0].id == id {
                found_self += 1;
            }
        }
        assert!(
            found_self as f64 >= 0.99 * index.len() as f64,
            "self recall {found_self}"
        );
        assert_eq!(index.max_article_id(), Some(ArticleId(599)));
    }
}
