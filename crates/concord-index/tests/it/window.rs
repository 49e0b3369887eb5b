use std::collections::HashSet;

use concord_core::ArticleId;
use concord_index::{IndexParams, TimeWindow};

use crate::common::{Rng, build, params, published, ts};

#[test]
fn window_excludes_out_of_window_items_on_both_paths() {
    // 1000 articles an hour apart; the window holds ids 250..=549
    let window = TimeWindow::new(ts(published(250)), ts(published(549)));
    let inside: HashSet<ArticleId> = (250..550).map(ArticleId).collect();
    for exact_scan_below in [0, 4096] {
        let p = IndexParams {
            exact_scan_below,
            ..params(32)
        };
        let (index, _) = build(p, 1000, 5);
        let mut rng = Rng::new(6);
        let mut agree = 0;
        for _ in 0..30 {
            let q = rng.vector(32);
            let hits = index.search(&q, 10, Some(window)).unwrap();
            assert_eq!(hits.len(), 10);
            assert!(
                hits.iter().all(|h| inside.contains(&h.id)),
                "path {exact_scan_below}"
            );
            let exact = index.search_exact(&q, 10, Some(window)).unwrap();
            agree += hits.iter().filter(|h| exact.contains(h)).count();
        }
        assert!(
            agree as f64 / 300.0 >= 0.9,
            "window recall {}",
            agree as f64 / 300.0
        );
    }
}

#[test]
fn window_bounds_are_inclusive_and_empty_windows_return_nothing() {
    let (index, vectors) = build(params(16), 50, 7);
    let q = &vectors[10];
    let w = TimeWindow::new(ts(published(10)), ts(published(10)));
    let hits = index.search(q, 5, Some(w)).unwrap();
    assert_eq!(
        hits.iter().map(|h| h.id).collect::<Vec<_>>(),
        vec![ArticleId(10)]
    );
    let before = TimeWindow::new(ts(0), ts(published(0) - 1));
    assert!(index.search(q, 5, Some(before)).unwrap().is_empty());
    let reversed = TimeWindow::new(ts(published(20)), ts(published(10)));
    assert!(index.search(q, 5, Some(reversed)).unwrap().is_empty());
}

#[test]
fn out_of_order_inserts_keep_the_time_index_sorted() {
    let mut index = concord_index::VectorIndex::new(params(8)).unwrap();
    let mut rng = Rng::new(8);
    for i in [5u64, 1, 9, 3, 7, 2] {
        index
            .insert(ArticleId(i), ts(published(i)), &rng.vector(8))
            .unwrap();
    }
    let w = TimeWindow::new(ts(published(2)), ts(published(5)));
    let got: HashSet<_> = index
        .search(&rng.vector(8), 10, Some(w))
        .unwrap()
        .iter()
        .map(|h| h.id.0)
        .collect();
    assert_eq!(got, HashSet::from([2, 3, 5]));
}

#[test]
fn a_tiny_window_on_the_graph_path_falls_back_to_an_exact_scan() {
    let p = IndexParams {
        exact_scan_below: 0,
        ..params(16)
    };
    let (mut index, _) = build(p, 400, 14);
    index.remove(ArticleId(101));
    let w = TimeWindow::new(ts(published(100)), ts(published(103)));
    let mut rng = Rng::new(15);
    for _ in 0..10 {
        let got: HashSet<u64> = index
            .search(&rng.vector(16), 10, Some(w))
            .unwrap()
            .iter()
            .map(|h| h.id.0)
            .collect();
        assert_eq!(got, HashSet::from([100, 102, 103]));
    }
}
