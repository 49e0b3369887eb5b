//! Clusterer behaviour on synthetic vectors (no model needed).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::{HashMap, HashSet},
    path::Path,
    sync::{Arc, RwLock},
};

use concord_cluster::{
    Centering, ClusterError, ClusterInput, Clusterer, Correction, HeadlineSource, JoinRule,
    JoinWeights, MergeRule, MergeWeights, Outcome, RuleKind, RuleParams,
};
use concord_core::{ArticleId, ClusterId, Embedding, Lang, UnitVector};
use concord_index::{IndexParams, VectorIndex};
use concord_store::{NewArticle, Store, Synchronous, content_hash};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

const DIM: usize = 16;

fn params() -> RuleParams {
    RuleParams {
        kind: RuleKind::Concord,
        window_hours: 72.0,
        recent_hours: 72.0,
        decay_per_day: 0.0,
        drift_per_day: 0.0,
        drift_grace_hours: 24.0,
        k: 16,
        centering: Centering::None,
        centering_shrink: 100.0,
        centering_warmup: 100.0,
        centering_lag_hours: 0.0,
        centering_lag_min: 500,
        centering_balance: 0.0,
        link_weight: 0.5,
        threshold: 0.8,
        density_slope: 0.0,
        density_ref: 100.0,
        cross_lang_bonus: 0.0,
        token_weight: 0.0,
        token_cap: 10.0,
        title_affix_min: 0,
        merge_threshold: 0.9,
        merge_threshold_cross_lang: 0.9,
        merge_min_size: 1,
        merge_rule: MergeRule::Threshold,
        merge_weights: MergeWeights {
            cosine: 0.0,
            cohesion_ratio: 0.0,
            ln_min_size: 0.0,
            ln_max_size: 0.0,
            no_shared_language: 0.0,
            days_apart: 0.0,
            ln_density: 0.0,
            bias: 0.0,
        },
        // The hand-set threshold rule reads these toy vectors' cosines directly.
        join_rule: JoinRule::Threshold,
        join_probability: 0.5,
        join_volume_floor: 10,
        join_volume_ceiling: 1000,
        join_weights: JoinWeights {
            best_cosine: 0.0,
            centroid_cosine: 0.0,
            shared_idf: 0.0,
            days_to_best: 0.0,
            days_beyond_recent: 0.0,
            mean_days_beyond_recent: 0.0,
            other_language: 0.0,
            lacks_language: 0.0,
            ln_size: 0.0,
            ln_volume: 0.0,
            both_long: 0.0,
            long_cosine: 0.0,
            bias: 0.0,
            language: Default::default(),
            report_language: Default::default(),
        },
        join_trees: String::new(),
        headline_trees: String::new(),
        headline_doubt_low: 0.2,
        headline_doubt_high: 0.8,
        // No window is quiet unless a test says so: these streams hold a few articles.
        quiet_volume: 0,
        quiet_doubt_low: 0.1,
        quiet_join_probability: 0.5,
        plain_threshold: 0.65,
        plain_window_hours: 24.0,
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    store: Store,
    index: Arc<RwLock<VectorIndex>>,
    clusterer: Clusterer,
    next: u64,
}

impl Harness {
    fn new(params: RuleParams) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Synchronous::Normal).unwrap();
        let index = Arc::new(RwLock::new(
            VectorIndex::new(IndexParams::new(DIM)).unwrap(),
        ));
        let clusterer =
            Clusterer::open(params, DIM, store.connect().unwrap(), Arc::clone(&index)).unwrap();
        Self {
            _dir: dir,
            store,
            index,
            clusterer,
            next: 0,
        }
    }

    /// Stores an article and clusters it; returns its id and outcome.
    fn add(&mut self, v: &[f32], at: Timestamp, lang: &str) -> (ArticleId, Outcome) {
        self.add_with_headline(v, None, at, lang)
    }

    /// [`Harness::add`] with a headline model's vector of the title.
    fn add_with_headline(
        &mut self,
        v: &[f32],
        headline: Option<&[f32]>,
        at: Timestamp,
        lang: &str,
    ) -> (ArticleId, Outcome) {
        self.add_full(v, headline, at, lang, None)
    }

    /// [`Harness::add`] for an article-length text: its title line, then `body`.
    fn add_report(
        &mut self,
        v: &[f32],
        at: Timestamp,
        lang: &str,
        body: &str,
    ) -> (ArticleId, Outcome) {
        self.add_full(v, None, at, lang, Some(body))
    }

    fn add_full(
        &mut self,
        v: &[f32],
        headline: Option<&[f32]>,
        at: Timestamp,
        lang: &str,
        body: Option<&str>,
    ) -> (ArticleId, Outcome) {
        self.next += 1;
        let after_title = body.map(|b| format!("\n{b}")).unwrap_or_default();
        let title = format!("article {}", self.next);
        let hash = content_hash(&title, "", None, at, None);
        let lang = Lang::parse(lang).unwrap();
        let id = self
            .store
            .connect()
            .unwrap()
            .upsert_article(
                &NewArticle {
                    external_id: format!("ext-{}", self.next),
                    source: None,
                    url: None,
                    lang: Some(lang),
                    lang_source: "given",
                    model_supports_lang: true,
                    published_at: at,
                    title: title.clone(),
                    content_hash: hash.clone(),
                    prepared_text: format!("{title}{after_title}"),
                    truncated: false,
                },
                Timestamp::now(),
            )
            .unwrap()
            .id();
        let outcome = self
            .clusterer
            .assign(&ClusterInput {
                id,
                content_hash: hash,
                published_at: at,
                lang: Some(lang),
                title: format!("title {}", self.next),
                text: format!("title {}{after_title}", self.next),
                embedding: Embedding {
                    vector: UnitVector::normalize(v.to_vec()).unwrap(),
                    headline: headline.map(|h| UnitVector::normalize(h.to_vec()).unwrap()),
                },
                model: "test".into(),
            })
            .unwrap();
        (id, outcome)
    }

    fn cluster(outcome: &Outcome) -> ClusterId {
        match outcome {
            Outcome::Assigned(a) => a.cluster,
            Outcome::Stale => panic!("unexpected stale outcome"),
        }
    }

    /// Every article in exactly one cluster, in memory and in the store alike.
    fn check_partition(&self, ids: &[ArticleId]) {
        let summaries = self.clusterer.summaries();
        let mut seen = HashSet::new();
        for s in &summaries {
            assert!(s.size > 0, "empty active cluster {}", s.id);
            assert_eq!(s.size, s.members.len());
            for m in &s.members {
                assert!(seen.insert(*m), "{m} is in two clusters");
                assert_eq!(self.clusterer.cluster_of(*m), Some(s.id));
            }
        }
        let expected: HashSet<ArticleId> = ids.iter().copied().collect();
        assert_eq!(seen, expected, "clusters do not partition the articles");
        let db = self.store.connect_read_only().unwrap();
        for s in &summaries {
            let stored: HashSet<ArticleId> = db
                .members(s.id)
                .unwrap()
                .iter()
                .map(|m| m.article)
                .collect();
            let memory: HashSet<ArticleId> = s.members.iter().copied().collect();
            assert_eq!(stored, memory, "store and memory disagree on {}", s.id);
            assert_eq!(db.cluster(s.id).unwrap().unwrap().size, s.size as u64);
        }
        assert_eq!(self.index.read().unwrap().len(), ids.len());
    }
}

fn t0() -> Timestamp {
    "2021-07-20T00:00:00Z".parse().unwrap()
}

fn hours(h: i64) -> SignedDuration {
    SignedDuration::from_hours(h)
}

fn axis(i: usize, noise: f32) -> Vec<f32> {
    let mut v = vec![noise; DIM];
    v[i] = 1.0;
    v
}

#[test]
fn similar_articles_join_and_different_ones_do_not() {
    let mut h = Harness::new(params());
    let (a, oa) = h.add(&axis(0, 0.01), t0(), "en");
    let (b, ob) = h.add(&axis(0, 0.02), t0() + hours(2), "fr");
    let (c, oc) = h.add(&axis(5, 0.01), t0() + hours(3), "en");
    assert_eq!(Harness::cluster(&oa), Harness::cluster(&ob));
    assert_ne!(Harness::cluster(&oa), Harness::cluster(&oc));
    let Outcome::Assigned(first) = &oa else {
        panic!()
    };
    assert!(first.created);
    h.check_partition(&[a, b, c]);
}

#[test]
fn the_same_story_outside_the_time_window_starts_a_new_cluster() {
    let mut h = Harness::new(params());
    let (a, oa) = h.add(&axis(1, 0.01), t0(), "en");
    let (b, ob) = h.add(&axis(1, 0.01), t0() + hours(24 * 365 * 5), "en");
    assert_ne!(Harness::cluster(&oa), Harness::cluster(&ob));
    h.check_partition(&[a, b]);
}

#[test]
fn an_article_bridging_two_clusters_merges_them_and_the_old_id_resolves() {
    let mut p = params();
    p.threshold = 0.6;
    p.merge_threshold = 0.6;
    p.merge_threshold_cross_lang = 0.6;
    p.link_weight = 1.0;
    let mut h = Harness::new(p);
    let mut left = axis(2, 0.0);
    left[3] = 0.3;
    let mut right = axis(3, 0.0);
    right[2] = 0.3;
    let (a, oa) = h.add(&left, t0(), "en");
    let (b, ob) = h.add(&right, t0() + hours(1), "en");
    let (ca, cb) = (Harness::cluster(&oa), Harness::cluster(&ob));
    assert_ne!(ca, cb, "the two ends must start apart");
    let (c, oc) = h.add(
        &axis(2, 0.0)
            .iter()
            .zip(axis(3, 0.0))
            .map(|(x, y)| x + y)
            .collect::<Vec<_>>(),
        t0() + hours(2),
        "en",
    );
    let Outcome::Assigned(bridge) = &oc else {
        panic!()
    };
    assert_eq!(bridge.merged.len(), 1, "{bridge:?}");
    let survivor = bridge.cluster;
    let loser = bridge.merged[0];
    assert!([ca, cb].contains(&survivor) && [ca, cb].contains(&loser));
    let db = h.store.connect_read_only().unwrap();
    assert_eq!(db.resolve_cluster(loser).unwrap().unwrap().id, survivor);
    h.check_partition(&[a, b, c]);
}

#[test]
fn state_reloaded_from_the_store_matches_memory() {
    let mut h = Harness::new(params());
    let mut ids = Vec::new();
    for i in 0..12 {
        let (id, _) = h.add(&axis(i % 3, 0.01 * i as f32), t0() + hours(i as i64), "en");
        ids.push(id);
    }
    let before = h.clusterer.summaries();
    let index = Arc::new(RwLock::new(
        VectorIndex::new(IndexParams::new(DIM)).unwrap(),
    ));
    let reloaded = Clusterer::open(
        params(),
        DIM,
        h.store.connect().unwrap(),
        Arc::clone(&index),
    )
    .unwrap();
    assert_eq!(reloaded.summaries(), before);
    assert_eq!(
        index.read().unwrap().len(),
        ids.len(),
        "index repaired from the store"
    );
}

#[test]
fn a_deleted_article_leaves_its_cluster_and_the_index() {
    let mut h = Harness::new(params());
    let (a, oa) = h.add(&axis(4, 0.01), t0(), "en");
    let (b, _) = h.add(&axis(4, 0.02), t0() + hours(1), "en");
    let cluster = Harness::cluster(&oa);
    assert_eq!(h.clusterer.delete_article(a).unwrap(), Some(cluster));
    assert_eq!(h.clusterer.cluster_of(a), None);
    assert!(!h.index.read().unwrap().contains(a));
    h.check_partition(&[b]);
    let db = h.store.connect_read_only().unwrap();
    assert_eq!(db.cluster(cluster).unwrap().unwrap().size, 1);
}

#[test]
fn deleting_past_the_tombstone_share_compacts_the_index_in_the_background() {
    let mut h = Harness::new(params());
    let mut ids = Vec::new();
    for i in 0..50 {
        let (id, _) = h.add(&axis(i % 8, 0.01 * i as f32), t0() + hours(i as i64), "en");
        ids.push(id);
    }
    let (gone, kept) = ids.split_at(20);
    let mut kept = kept.to_vec();
    for id in gone {
        h.clusterer.delete_article(*id).unwrap();
    }
    // While the copy may still be building: more arrivals and deletions, which
    // must be replayed onto it.
    for i in 50..55 {
        let (id, _) = h.add(&axis(i % 8, 0.01 * i as f32), t0() + hours(i as i64), "en");
        kept.push(id);
    }
    let late = kept.remove(0);
    h.clusterer.delete_article(late).unwrap();
    h.clusterer.finish_compaction().unwrap();
    let index = h.index.read().unwrap();
    assert!(
        index.tombstones() < gone.len(),
        "never compacted: {}",
        index.tombstones()
    );
    assert_eq!(index.len(), kept.len());
    for id in &kept {
        assert!(index.contains(*id), "{id} lost by the compaction");
    }
    for id in gone.iter().chain([&late]) {
        assert!(!index.contains(*id), "{id} back after the compaction");
    }
    drop(index);
    h.check_partition(&kept);
}

#[test]
fn the_plain_rule_links_to_the_nearest_article_within_a_day() {
    let mut p = params();
    p.kind = RuleKind::Plain;
    p.plain_threshold = 0.9;
    let mut h = Harness::new(p);
    let (_, oa) = h.add(&axis(6, 0.01), t0(), "en");
    let (_, ob) = h.add(&axis(6, 0.01), t0() + hours(20), "en");
    let (_, oc) = h.add(&axis(6, 0.01), t0() + hours(60), "en");
    assert_eq!(Harness::cluster(&oa), Harness::cluster(&ob));
    assert_ne!(
        Harness::cluster(&ob),
        Harness::cluster(&oc),
        "60h later is outside a day of every member"
    );
}

fn reopen(h: &Harness) -> Clusterer {
    let index = Arc::new(RwLock::new(
        VectorIndex::new(IndexParams::new(DIM)).unwrap(),
    ));
    Clusterer::open(params(), DIM, h.store.connect().unwrap(), index).unwrap()
}

/// The stored crowding of every clustered article.
fn stored_crowding(h: &Harness) -> HashMap<ArticleId, Option<f32>> {
    let mut out = HashMap::new();
    h.store
        .connect_read_only()
        .unwrap()
        .clustered_articles(|a| {
            out.insert(a.id, a.crowding);
            Ok(())
        })
        .unwrap();
    out
}

/// The best candidate of `id`'s stored decision record.
fn best_candidate(h: &Harness, id: ArticleId) -> serde_json::Value {
    let why = h
        .store
        .connect_read_only()
        .unwrap()
        .why(id)
        .unwrap()
        .unwrap();
    why["candidates"][0].clone()
}

/// The best candidate of `id`'s stored decision: its best-linked member and the
/// crowding the decision read for that member.
fn best_member_crowding(h: &Harness, id: ArticleId) -> (String, f64) {
    let best = best_candidate(h, id);
    (
        best["best_member"].as_str().unwrap().to_owned(),
        best["features"]["member_crowding"].as_f64().unwrap(),
    )
}

#[test]
fn an_articles_crowding_is_stored_and_read_back_after_a_restart() {
    let mut h = Harness::new(params());
    let mut ids = Vec::new();
    for i in 0..4 {
        let (id, _) = h.add(&axis(0, 0.05 * i as f32), t0() + hours(i as i64), "en");
        ids.push(id);
    }
    let stored = stored_crowding(&h);
    assert_eq!(
        stored[&ids[0]],
        Some(0.0),
        "the first article has no neighbours"
    );
    assert!(stored[&ids[3]].unwrap() > 0.9, "{stored:?}");
    h.clusterer = reopen(&h);
    // Closest to the last one, whose crowding is not 0.
    let (late, _) = h.add(&axis(0, 0.16), t0() + hours(5), "en");
    let (member, crowding) = best_member_crowding(&h, late);
    assert_eq!(member, ids[3].to_string());
    let kept = f64::from(stored[&ids[3]].unwrap());
    assert!((crowding - kept).abs() < 1e-6, "{crowding} against {kept}");
}

/// The headline cosine the best candidate of `id`'s stored decision read.
fn best_headline_cosine(h: &Harness, id: ArticleId) -> Option<f64> {
    best_candidate(h, id)["features"]["headline_cosine"].as_f64()
}

#[test]
fn the_headline_cosine_is_read_where_both_titles_have_a_vector_even_after_a_restart() {
    let mut h = Harness::new(params());
    let headline = |a: f32| vec![a.cos(), a.sin(), 0.0];
    let (first, _) = h.add_with_headline(&axis(0, 0.0), Some(&headline(0.0)), t0(), "en");
    let (second, _) =
        h.add_with_headline(&axis(0, 0.05), Some(&headline(0.5)), t0() + hours(1), "en");
    let read = best_headline_cosine(&h, second).expect("both have a headline vector");
    assert!((read - f64::from(0.5f32.cos())).abs() < 1e-4, "{read}");
    h.clusterer = reopen(&h);
    let (third, _) =
        h.add_with_headline(&axis(0, 0.02), Some(&headline(1.0)), t0() + hours(2), "en");
    let member = best_member_crowding(&h, third).0;
    let expected = if member == first.to_string() {
        1.0f32
    } else {
        0.5
    };
    let read = best_headline_cosine(&h, third).expect("kept across the restart");
    assert!(
        (read - f64::from(expected.cos())).abs() < 1e-4,
        "{read} for {member}"
    );
    // An article without one (that model off) reads none, and is decided all the same.
    let (fourth, outcome) = h.add(&axis(0, 0.03), t0() + hours(3), "en");
    assert_eq!(best_headline_cosine(&h, fourth), None);
    assert!(matches!(outcome, Outcome::Assigned(_)));
}

/// A headline model by rule: the title ending in number `n` gets the unit
/// vector at angle `angles[n]`; every call is recorded.
struct FakeHeadlines {
    angles: HashMap<u64, f32>,
    calls: Arc<std::sync::Mutex<Vec<Vec<String>>>>,
}

impl HeadlineSource for FakeHeadlines {
    fn headlines(&mut self, titles: Vec<String>) -> Result<Vec<UnitVector>, String> {
        self.calls.lock().unwrap().push(titles.clone());
        titles
            .iter()
            .map(|t| {
                let n: u64 = t
                    .rsplit(' ')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or("no number")?;
                let a = self.angles.get(&n).copied().ok_or("unknown title")?;
                Ok(UnitVector::normalize(vec![a.cos(), a.sin(), 0.0]).unwrap())
            })
            .collect()
    }
}

/// The boosted rule with two trees files written into `dir`: first trees whose logit is
/// `first_logit` for every candidate, and second-look trees at p near 1 where the titles'
/// headline cosine passes 0.9, near 0 below; the doubt window [0.3, 0.55), and no merges
/// (these toy vectors' clusters would merge by their centroids: decisions only).
fn two_looks(dir: &Path, first_logit: f32) -> RuleParams {
    let first = dir.join("first.json");
    std::fs::write(
        &first,
        format!(
            r#"{{"format":"concord-join-trees/1","inputs":["best_cosine"],"base":{first_logit},"trees":[[{{"leaf":0.0}}]]}}"#
        ),
    )
    .unwrap();
    let second = dir.join("second.json");
    std::fs::write(
        &second,
        r#"{"format":"concord-join-trees/1","inputs":["headline_cosine"],"base":0.0,
            "trees":[[{"input":0,"at":0.9,"left":1,"right":2},{"leaf":-5.0},{"leaf":5.0}]]}"#,
    )
    .unwrap();
    let mut p = params();
    p.join_rule = JoinRule::Boosted;
    p.join_trees = first.display().to_string();
    p.headline_trees = second.display().to_string();
    p.headline_doubt_low = 0.3;
    p.headline_doubt_high = 0.55;
    p.merge_threshold = 2.0;
    p.merge_threshold_cross_lang = 2.0;
    p
}

#[test]
fn a_doubtful_decision_asks_for_the_headline_vectors_it_lacks_once_and_keeps_them() {
    // First trees: p = 0.45 for every candidate (doubtful, under the bar of 0.5);
    // second look: p near 1 where the titles' cosine passes 0.9, near 0 below.
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::new(two_looks(dir.path(), -0.2));
    let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
    // Titles 1 and 2 report one event (cosine 0.995), title 3 another (0.54).
    let angles = HashMap::from([(1, 0.0), (2, 0.1), (3, 1.0)]);
    h.clusterer.set_headline_source(Box::new(FakeHeadlines {
        angles,
        calls: Arc::clone(&calls),
    }));
    let (first, a) = h.add(&axis(0, 0.0), t0(), "en");
    assert!(
        calls.lock().unwrap().is_empty(),
        "no candidates, no doubt, no call"
    );
    let (second, b) = h.add(&axis(0, 0.05), t0() + hours(1), "en");
    assert_eq!(
        Harness::cluster(&a),
        Harness::cluster(&b),
        "joined on the second look"
    );
    // The arriving article's title and its best-linked member's, in one call.
    assert_eq!(
        *calls.lock().unwrap(),
        vec![vec!["title 2".to_owned(), "article 1".to_owned()]]
    );
    let read = best_headline_cosine(&h, second).unwrap();
    assert!((read - f64::from(0.1f32.cos())).abs() < 1e-4, "{read}");
    let (_, c) = h.add(&axis(0, 0.03), t0() + hours(2), "en");
    assert_ne!(
        Harness::cluster(&a),
        Harness::cluster(&c),
        "kept apart on the second look"
    );
    // Only the new title was asked for: the members' vectors were kept.
    assert_eq!(calls.lock().unwrap()[1], vec!["title 3".to_owned()]);
    // And stored: a restart reads them back (no source now, and none is asked).
    let mut kept = HashMap::new();
    h.store
        .connect_read_only()
        .unwrap()
        .clustered_articles(|a| {
            kept.insert(a.id, a.headline.is_some());
            Ok(())
        })
        .unwrap();
    assert!(
        kept[&first],
        "the member's vector, computed for the second look"
    );
    assert!(kept[&second], "the article's own");
}

#[test]
fn in_a_quiet_window_even_a_sure_title_join_takes_the_second_look() {
    // First trees: p = 0.9 for every candidate (sure); second look as above.
    let dir = tempfile::tempdir().unwrap();
    let sure = two_looks(dir.path(), 2.2);
    let together = |quiet_volume: usize| {
        let mut h = Harness::new(RuleParams {
            quiet_volume,
            ..sure.clone()
        });
        let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
        // Titles 1 and 3 report different events (headline cosine 0.54).
        h.clusterer.set_headline_source(Box::new(FakeHeadlines {
            angles: HashMap::from([(1, 0.0), (2, 1.0)]),
            calls: Arc::clone(&calls),
        }));
        let (_, a) = h.add(&axis(0, 0.0), t0(), "en");
        let (_, b) = h.add(&axis(0, 0.05), t0() + hours(1), "en");
        let asked = calls.lock().unwrap().len();
        (Harness::cluster(&a) == Harness::cluster(&b), asked)
    };
    assert_eq!(together(0), (true, 0), "a busy window trusts a sure join");
    assert_eq!(together(1000), (false, 1), "a quiet one looks again");
}

#[test]
fn a_decision_between_two_reports_never_asks_the_headline_model() {
    // Two article-length texts are scored by the logistic, which reads no headline
    // cosine: even where every decision gets a second look (a quiet window from the
    // low end 0), theirs asks the headline model for nothing.
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::new(RuleParams {
        quiet_volume: 1000,
        quiet_doubt_low: 0.0,
        ..two_looks(dir.path(), -0.2)
    });
    let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
    h.clusterer.set_headline_source(Box::new(FakeHeadlines {
        angles: HashMap::from([(1, 0.0), (2, 0.0), (3, 0.0)]),
        calls: Arc::clone(&calls),
    }));
    let body = "the council voted on the budget after a long debate ".repeat(6);
    let (_, a) = h.add_report(&axis(0, 0.0), t0(), "en", &body);
    let (_, b) = h.add_report(&axis(0, 0.05), t0() + hours(1), "en", &body);
    assert!(
        calls.lock().unwrap().is_empty(),
        "asked for {:?}",
        calls.lock().unwrap()
    );
    assert_eq!(
        Harness::cluster(&a),
        Harness::cluster(&b),
        "the logistic joins them"
    );
    // A headline beside them is looked at: a title against a report's title.
    h.add(&axis(0, 0.03), t0() + hours(2), "en");
    assert_eq!(calls.lock().unwrap().len(), 1);
    assert_eq!(calls.lock().unwrap()[0][0], "title 3");
}

#[test]
fn crowding_missing_from_an_older_store_is_measured_at_start() {
    let mut h = Harness::new(params());
    let vectors: Vec<Vec<f32>> = (0..4).map(|i| axis(1, 0.1 * i as f32)).collect();
    let mut ids = Vec::new();
    for (i, v) in vectors.iter().enumerate() {
        ids.push(h.add(v, t0() + hours(i as i64), "en").0);
    }
    rusqlite::Connection::open(h._dir.path().join("concord.sqlite3"))
        .unwrap()
        .execute("UPDATE articles SET crowding = NULL", [])
        .unwrap();
    h.clusterer = reopen(&h);
    let stored = stored_crowding(&h);
    assert!(
        ids.iter().all(|id| stored[id].is_some()),
        "measured once and stored: {stored:?}"
    );
    let (late, _) = h.add(&axis(1, 0.05), t0() + hours(5), "en");
    let (member, crowding) = best_member_crowding(&h, late);
    let m = ids.iter().position(|id| id.to_string() == member).unwrap();
    // Measured among all its neighbours, the three others on both sides.
    let unit = |v: &[f32]| UnitVector::normalize(v.to_vec()).unwrap();
    let expected = (0..4)
        .filter(|&j| j != m)
        .map(|j| f64::from(unit(&vectors[m]).cosine(&unit(&vectors[j]))))
        .sum::<f64>()
        / 3.0;
    assert!(
        (crowding - expected).abs() < 1e-5,
        "{crowding} against {expected}"
    );
}

#[test]
fn a_split_pair_is_not_merged_again_even_after_a_restart() {
    let mut h = Harness::new(params());
    let mut ids = Vec::new();
    for i in 0..4 {
        let (id, _) = h.add(&axis(7, 0.01), t0() + hours(i), "en");
        ids.push(id);
    }
    let origin = h.clusterer.cluster_of(ids[0]).unwrap();
    assert!(
        ids.iter()
            .all(|a| h.clusterer.cluster_of(*a) == Some(origin))
    );
    let done = h
        .clusterer
        .correct(
            &Correction::Split {
                from: origin,
                articles: vec![ids[2], ids[3]],
            },
            "ana",
        )
        .unwrap();
    let split = done.cluster;
    assert_ne!(split, origin);
    assert_eq!(h.clusterer.cluster_of(ids[3]), Some(split));
    h.check_partition(&ids);
    // A new report close to both would merge them (centroid cosine ~1) but for the guard.
    let (e, _) = h.add(&axis(7, 0.01), t0() + hours(5), "en");
    ids.push(e);
    assert_ne!(
        h.clusterer.cluster_of(ids[0]),
        h.clusterer.cluster_of(ids[3])
    );
    h.check_partition(&ids);
    // The guard and the pins come back from the store.
    h.index = Arc::new(RwLock::new(
        VectorIndex::new(IndexParams::new(DIM)).unwrap(),
    ));
    h.clusterer = Clusterer::open(
        params(),
        DIM,
        h.store.connect().unwrap(),
        Arc::clone(&h.index),
    )
    .unwrap();
    let (f, _) = h.add(&axis(7, 0.01), t0() + hours(6), "en");
    ids.push(f);
    assert_ne!(
        h.clusterer.cluster_of(ids[0]),
        h.clusterer.cluster_of(ids[3])
    );
    assert!(h.clusterer.pinned().contains(&ids[2]));
    let db = h.store.connect_read_only().unwrap();
    let corrections = db.corrections_of_kind("split").unwrap();
    assert_eq!(corrections.len(), 1);
    h.check_partition(&ids);
}

#[test]
fn an_analyst_merge_folds_clusters_and_the_loser_resolves() {
    let mut h = Harness::new(params());
    let (a, oa) = h.add(&axis(0, 0.01), t0(), "en");
    let (b, ob) = h.add(&axis(5, 0.01), t0() + hours(1), "fr");
    let (ca, cb) = (Harness::cluster(&oa), Harness::cluster(&ob));
    assert_ne!(ca, cb);
    let done = h
        .clusterer
        .correct(
            &Correction::Merge {
                into: cb,
                from: vec![ca],
            },
            "ana",
        )
        .unwrap();
    assert_eq!(done.cluster, cb);
    assert_eq!(h.clusterer.cluster_of(a), Some(cb));
    let db = h.store.connect_read_only().unwrap();
    assert_eq!(db.resolve_cluster(ca).unwrap().unwrap().id, cb);
    assert_eq!(db.cluster(cb).unwrap().unwrap().languages.len(), 2);
    h.check_partition(&[a, b]);
    assert_eq!(reopen(&h).summaries(), h.clusterer.summaries());
}

#[test]
fn a_moved_article_stays_put_when_its_content_is_updated() {
    let mut h = Harness::new(params());
    let (a, oa) = h.add(&axis(1, 0.01), t0(), "en");
    let (b, _) = h.add(&axis(1, 0.02), t0() + hours(1), "en");
    let (c, oc) = h.add(&axis(9, 0.01), t0() + hours(2), "en");
    let (ca, cc) = (Harness::cluster(&oa), Harness::cluster(&oc));
    h.clusterer
        .correct(&Correction::Move { article: b, to: cc }, "ana")
        .unwrap();
    assert_eq!(h.clusterer.cluster_of(b), Some(cc));
    h.check_partition(&[a, b, c]);
    let db = h.store.connect_read_only().unwrap();
    assert!(db.membership(b).unwrap().unwrap().pinned);
    assert_eq!(db.cluster(ca).unwrap().unwrap().size, 1);
    // Re-clustering the same vector (an update) leaves it where the analyst put it.
    let stored = db.article(b).unwrap().unwrap();
    let outcome = h
        .clusterer
        .assign(&ClusterInput {
            id: b,
            content_hash: stored.content_hash.clone(),
            published_at: stored.published_at,
            lang: stored.lang,
            title: stored.title.clone(),
            text: stored.title.clone(),
            embedding: Embedding::text_only(UnitVector::normalize(axis(1, 0.02)).unwrap()),
            model: "test".into(),
        })
        .unwrap();
    assert_eq!(Harness::cluster(&outcome), cc);
    assert!(db.membership(b).unwrap().unwrap().pinned);
    h.check_partition(&[a, b, c]);
}

#[test]
fn corrections_that_make_no_sense_are_refused_without_change() {
    let mut h = Harness::new(params());
    let (a, oa) = h.add(&axis(2, 0.01), t0(), "en");
    let (b, ob) = h.add(&axis(6, 0.01), t0() + hours(1), "en");
    let (ca, cb) = (Harness::cluster(&oa), Harness::cluster(&ob));
    let before = h.clusterer.summaries();
    let cases = [
        Correction::Split {
            from: ca,
            articles: vec![a],
        },
        Correction::Split {
            from: ca,
            articles: vec![b],
        },
        Correction::Split {
            from: ca,
            articles: vec![],
        },
        Correction::Move { article: a, to: ca },
        Correction::Move {
            article: a,
            to: ClusterId(999),
        },
        Correction::Merge {
            into: ca,
            from: vec![ca],
        },
        Correction::Merge {
            into: ca,
            from: vec![ClusterId(999)],
        },
    ];
    for case in &cases {
        let err = h.clusterer.correct(case, "ana").unwrap_err();
        assert!(!err.is_store_failure(), "{case:?}: {err}");
    }
    assert!(matches!(
        h.clusterer.correct(&cases[1], "ana"),
        Err(ClusterError::NotAMember { .. })
    ));
    assert!(matches!(
        h.clusterer.correct(&cases[4], "ana"),
        Err(ClusterError::UnknownCluster(_))
    ));
    assert_eq!(h.clusterer.summaries(), before);
    let _ = cb;
    h.check_partition(&[a, b]);
}

#[test]
fn every_change_is_written_to_the_webhook_outbox_in_its_transaction() {
    use concord_store::{DeliveryQuery, EventType, NewSubscription};
    let mut h = Harness::new(params());
    let mut db = h.store.connect().unwrap();
    let sub = db
        .create_subscription(
            &NewSubscription {
                url: "http://127.0.0.1:9/hook".into(),
                event_types: EventType::ALL.to_vec(),
                secret: concord_core::config::SecretString::new(
                    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                ),
                description: None,
            },
            t0(),
        )
        .unwrap();
    let (a, oa) = h.add(&axis(0, 0.01), t0(), "en");
    let (_b, _) = h.add(&axis(0, 0.02), t0() + hours(1), "fr");
    let (_c, oc) = h.add(&axis(5, 0.01), t0() + hours(2), "en");
    let (ca, cc) = (Harness::cluster(&oa), Harness::cluster(&oc));
    h.clusterer
        .correct(
            &Correction::Merge {
                into: ca,
                from: vec![cc],
            },
            "ana",
        )
        .unwrap();
    h.clusterer
        .correct(
            &Correction::Split {
                from: ca,
                articles: vec![a],
            },
            "ana",
        )
        .unwrap();
    db.fan_out(Timestamp::now()).unwrap();
    let mut types: Vec<&str> = db
        .deliveries(&DeliveryQuery {
            subscription: sub.id,
            status: None,
            before: None,
            limit: 100,
        })
        .unwrap()
        .iter()
        .map(|d| d.event_type.as_str())
        .collect();
    types.reverse();
    assert_eq!(
        types,
        [
            "article.clustered",
            "cluster.created",
            "article.clustered",
            "cluster.updated",
            "article.clustered",
            "cluster.created",
            "cluster.merged",
            "cluster.split",
            "cluster.updated",
        ]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn every_article_is_in_exactly_one_cluster(
        articles in proptest::collection::vec((0usize..4, 0u8..40, 0i64..200, 0usize..3), 1..40),
        merge_threshold in 0.5f32..1.0,
        threshold in 0.3f32..0.95,
        noise_mode in 0u8..3,
        corrections in proptest::collection::vec((0u8..3, 0usize..50, 0usize..50), 0..6),
    ) {
        let mut p = params();
        p.threshold = threshold;
        p.merge_threshold = merge_threshold;
        p.merge_threshold_cross_lang = merge_threshold - 0.05;
        p.centering = [Centering::None, Centering::Global, Centering::Language][usize::from(noise_mode) % 3];
        p.token_weight = 0.02;
        p.cross_lang_bonus = 0.06;
        p.density_slope = 0.04;
        let mut h = Harness::new(p);
        let mut ids = Vec::new();
        let mut by_cluster: HashMap<ClusterId, usize> = HashMap::new();
        for (topic, noise, hour, lang) in articles {
            let mut v = axis(topic, 0.0);
            v[(topic + 1 + usize::from(noise) % 7) % DIM] = f32::from(noise) / 40.0;
            let (id, outcome) = h.add(&v, t0() + hours(hour), ["en", "fr", "ar"][lang]);
            *by_cluster.entry(Harness::cluster(&outcome)).or_default() += 1;
            ids.push(id);
        }
        h.check_partition(&ids);
        // Analyst corrections keep the partition too (refusals change nothing).
        for (op, pick, other) in corrections {
            let summaries = h.clusterer.summaries();
            let s = &summaries[pick % summaries.len()];
            let t = &summaries[other % summaries.len()];
            let correction = match op {
                0 => Correction::Merge { into: s.id, from: vec![t.id] },
                1 => Correction::Split { from: s.id, articles: s.members.iter().copied().take(other % 3 + 1).collect() },
                _ => Correction::Move { article: s.members[other % s.members.len()], to: t.id },
            };
            if let Err(e) = h.clusterer.correct(&correction, "prop") {
                prop_assert!(!e.is_store_failure(), "{e}");
            }
            h.check_partition(&ids);
        }
        prop_assert_eq!(reopen(&h).summaries(), h.clusterer.summaries());
    }
}
