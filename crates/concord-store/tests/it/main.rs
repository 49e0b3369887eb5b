#![allow(clippy::unwrap_used, clippy::expect_used)]
use concord_core::{ArticleId, ClusterId, Embedding, Lang, UnitVector};
use concord_store::{
    ArticleState, ClusterEventKind, ClusterOrder, ClusterQuery, ClusterRecord, ClusterStatus,
    Correction, MembershipRecord, NewArticle, Store, StoreError, Synchronous, UpsertOutcome,
    content_hash,
};
use jiff::Timestamp;

/// Which engine a test runs on; see [`on_both_backends`].
#[derive(Debug, Clone, Copy)]
enum Backend {
    Sqlite,
    Postgres,
}

/// Where a test's store lives: a scratch data directory (removed on drop), or a fresh
/// database on this test binary's throwaway PostgreSQL server.
enum Place {
    Dir(tempfile::TempDir),
    Url(String),
}

impl Backend {
    fn place(self, name: &str) -> Place {
        match self {
            Self::Sqlite => Place::Dir(
                tempfile::Builder::new()
                    .prefix(&format!("concord-store-{name}-"))
                    .tempdir()
                    .unwrap(),
            ),
            Self::Postgres => {
                Place::Url(concord_testpg::database(name).unwrap_or_else(|e| panic!("{e}")))
            }
        }
    }
}

impl Place {
    /// Opens (creating and migrating) the store here.
    fn open(&self) -> Result<Store, StoreError> {
        match self {
            Self::Dir(dir) => Store::open(dir.path(), Synchronous::Normal),
            Self::Url(url) => Store::open_postgres(url, 4),
        }
    }

    /// Marks the schema as written by a future binary, behind the store's back.
    fn set_schema_version(&self, version: i64) {
        match self {
            Self::Dir(dir) => {
                let conn = rusqlite::Connection::open(dir.path().join("concord.sqlite3")).unwrap();
                conn.pragma_update(None, "user_version", version).unwrap();
            }
            Self::Url(url) => {
                let mut client = ::postgres::Client::connect(url, ::postgres::NoTls).unwrap();
                client
                    .execute("UPDATE schema_version SET version = $1", &[&version])
                    .unwrap();
            }
        }
    }
}

/// Runs each named test, a `fn(Backend)`, once per engine: `sqlite::name` and
/// `postgres::name`. A test left out of the list is dead code, which the lints refuse.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    super::$name(super::Backend::Sqlite)
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    super::$name(super::Backend::Postgres)
                }
            )*
        }
    };
}

on_both_backends!(
    upsert_is_idempotent_by_external_id_and_content,
    acknowledged_articles_survive_reopening,
    vectors_round_trip_and_stale_vectors_are_refused,
    a_failed_transaction_writes_nothing,
    merged_clusters_resolve_to_their_survivor,
    a_database_from_a_newer_binary_is_refused,
    export_rows_stream_each_active_member_once_grouped_by_cluster_within_the_dates,
    concurrent_upserts_of_one_external_id_store_it_once,
    a_clustering_decision_reads_back_the_same_on_every_reader,
    cluster_listings_filter_order_and_page,
    corrections_page_newest_first_and_by_kind,
    an_embed_worker_stores_a_vector_once_and_only_for_the_current_content,
    unfinished_articles_are_found_by_state_and_age,
);

fn article(external_id: &str, title: &str) -> NewArticle {
    let published_at: Timestamp = "2020-09-08T10:00:00Z".parse().unwrap();
    NewArticle {
        external_id: external_id.into(),
        source: Some("test".into()),
        url: None,
        lang: Some(Lang::parse("fr").unwrap()),
        lang_source: "given",
        model_supports_lang: true,
        published_at,
        title: title.into(),
        content_hash: content_hash(title, "", None, published_at, None),
        prepared_text: title.into(),
        truncated: false,
    }
}

fn vector(seed: f32) -> UnitVector {
    UnitVector::normalize((0..8).map(|i| seed + i as f32).collect()).unwrap()
}

fn upsert_is_idempotent_by_external_id_and_content(b: Backend) {
    let place = b.place("upsert");
    let store = place.open().unwrap();
    let mut db = store.connect().unwrap();
    let now = Timestamp::now();
    let first = db
        .upsert_article(&article("x-1", "Initiative mondiale"), now)
        .unwrap();
    let UpsertOutcome::Inserted(id) = first else {
        panic!("{first:?}")
    };
    let again = db
        .upsert_article(&article("x-1", "Initiative mondiale"), now)
        .unwrap();
    assert_eq!(again, UpsertOutcome::Unchanged(id, ArticleState::Queued));
    let changed = db
        .upsert_article(&article("x-1", "Initiative mondiale (mise à jour)"), now)
        .unwrap();
    assert_eq!(changed, UpsertOutcome::Updated(id));
    let other = db.upsert_article(&article("x-2", "Autre"), now).unwrap();
    assert_ne!(other.id(), id);
    let record = db.article(id).unwrap().unwrap();
    assert_eq!(record.title, "Initiative mondiale (mise à jour)");
    assert_eq!(record.state, ArticleState::Queued);
}

fn acknowledged_articles_survive_reopening(b: Backend) {
    let place = b.place("durable");
    let id = {
        let store = place.open().unwrap();
        let mut db = store.connect().unwrap();
        db.upsert_article(&article("d-1", "Durable"), Timestamp::now())
            .unwrap()
            .id()
    };
    let store = place.open().unwrap();
    let db = store.connect().unwrap();
    let pending = db.pending_articles().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].id, id);
    assert_eq!(pending[0].state, ArticleState::Queued);
}

fn vectors_round_trip_and_stale_vectors_are_refused(b: Backend) {
    let place = b.place("vector");
    let store = place.open().unwrap();
    let mut db = store.connect().unwrap();
    let a = article("v-1", "Vecteur");
    let id = db.upsert_article(&a, Timestamp::now()).unwrap().id();
    let (v, x, h) = (vector(1.0), vector(2.0), vector(5.0));
    let embedding = Embedding {
        vector: v.clone(),
        headline: Some(h.clone()),
    };
    let set = |db: &mut concord_store::Db, hash: &str| {
        db.transaction(|tx| tx.set_vectors(id, hash, "m", &embedding, &x))
            .unwrap()
    };
    assert!(!set(&mut db, "stale-hash"));
    assert!(set(&mut db, &a.content_hash));
    let (back, centred) = db.vectors(id).unwrap().unwrap();
    assert!((back.cosine(&v) - 1.0).abs() < 1e-6);
    assert!((centred.cosine(&x) - 1.0).abs() < 1e-6);
    let pending = db.pending_articles().unwrap();
    assert_eq!(pending[0].state, ArticleState::Embedded);
    let stored = pending[0]
        .embedding
        .as_ref()
        .expect("an embedded article's vectors");
    assert!((stored.vector.cosine(&v) - 1.0).abs() < 1e-6);
    let headline = stored
        .headline
        .as_ref()
        .expect("the headline vector is kept");
    assert!((headline.cosine(&h) - 1.0).abs() < 1e-6);
}

fn a_failed_transaction_writes_nothing(b: Backend) {
    let place = b.place("atomic");
    let store = place.open().unwrap();
    let mut db = store.connect().unwrap();
    let id = db
        .upsert_article(&article("t-1", "Atomique"), Timestamp::now())
        .unwrap()
        .id();
    let result: Result<(), StoreError> = db.transaction(|tx| {
        let c = tx.create_cluster(Timestamp::now())?;
        tx.set_membership(&MembershipRecord {
            article: id,
            cluster: c,
            similarity: 1.0,
            joined_at: Timestamp::now(),
            pinned: false,
        })?;
        tx.set_article_state(ArticleId(9999), ArticleState::Clustered)
    });
    assert!(matches!(result, Err(StoreError::NotFound(_))));
    assert!(db.membership(id).unwrap().is_none());
    assert!(db.cluster(ClusterId(1)).unwrap().is_none());
}

fn merged_clusters_resolve_to_their_survivor(b: Backend) {
    let place = b.place("merge");
    let store = place.open().unwrap();
    let mut db = store.connect().unwrap();
    let now = Timestamp::now();
    let (a, b, c) = db
        .transaction(|tx| {
            let a = tx.create_cluster(now)?;
            let b = tx.create_cluster(now)?;
            let c = tx.create_cluster(now)?;
            for (from, into) in [(a, b), (b, c)] {
                let mut rec = tx.cluster(from)?.unwrap();
                rec.status = ClusterStatus::Merged;
                rec.merged_into = Some(into);
                tx.update_cluster(&rec)?;
                tx.add_event(
                    from,
                    ClusterEventKind::MergedInto,
                    None,
                    Some(into),
                    now,
                    &serde_json::json!({}),
                )?;
            }
            Ok((a, b, c))
        })
        .unwrap();
    assert_eq!(db.resolve_cluster(a).unwrap().unwrap().id, c);
    assert_eq!(db.resolve_cluster(b).unwrap().unwrap().id, c);
    assert!(db.resolve_cluster(ClusterId(42)).unwrap().is_none());
    let events = db.events(a, 0, 10).unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, ClusterEventKind::MergedInto);
    assert_eq!(events[0].other_cluster, Some(b));
}

fn a_database_from_a_newer_binary_is_refused(b: Backend) {
    let place = b.place("future");
    place.open().unwrap();
    place.set_schema_version(999);
    let err = place.open().unwrap_err();
    assert!(
        matches!(err, StoreError::FutureSchema { found: 999, .. }),
        "{err:?}"
    );
}

fn concurrent_upserts_of_one_external_id_store_it_once(b: Backend) {
    let place = b.place("concurrent_upserts");
    let store = place.open().unwrap();
    let now = Timestamp::now();
    let outcomes: Vec<Vec<UpsertOutcome>> = std::thread::scope(|s| {
        let writers: Vec<_> = (0..4)
            .map(|_| {
                let store = store.clone();
                s.spawn(move || {
                    let mut db = store.connect().unwrap();
                    (0..20)
                        .map(|i| {
                            db.upsert_article(&article(&format!("c-{i}"), "Même"), now)
                                .unwrap()
                        })
                        .collect()
                })
            })
            .collect();
        writers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    for i in 0..20 {
        let of_i: Vec<UpsertOutcome> = outcomes.iter().map(|o| o[i]).collect();
        let inserted = of_i
            .iter()
            .filter(|o| matches!(o, UpsertOutcome::Inserted(_)))
            .count();
        assert_eq!(inserted, 1, "c-{i}: {of_i:?}");
        assert!(
            of_i.iter().all(|o| o.id() == of_i[0].id()),
            "c-{i}: {of_i:?}"
        );
    }
    let db = store.connect_read_only().unwrap();
    assert_eq!(db.pending_articles().unwrap().len(), 20);
}

fn export_rows_stream_each_active_member_once_grouped_by_cluster_within_the_dates(b: Backend) {
    let place = b.place("export");
    let store = place.open().unwrap();
    let mut db = store.connect().unwrap();
    let now = Timestamp::now();
    let at = |s: &str| -> Timestamp { s.parse().unwrap() };
    let mut ids = Vec::new();
    for (key, title, published) in [
        ("x-1", "Initiative mondiale", "2020-09-08T10:00:00Z"),
        ("x-2", "مبادرة عالمية", "2020-09-09T10:00:00Z"),
        ("x-3", "Autre événement", "2015-06-01T10:00:00Z"),
        ("x-4", "Absorbée", "2020-09-08T11:00:00Z"),
    ] {
        let mut a = article(key, title);
        a.published_at = at(published);
        ids.push(db.upsert_article(&a, now).unwrap().id());
    }
    let (c1, c2) = db
        .transaction(|tx| {
            let c1 = tx.create_cluster(now)?;
            let c2 = tx.create_cluster(now)?;
            let merged = tx.create_cluster(now)?;
            for (article, cluster, published) in [
                (ids[1], c1, "2020-09-09T10:00:00Z"),
                (ids[0], c1, "2020-09-08T10:00:00Z"),
                (ids[2], c2, "2015-06-01T10:00:00Z"),
                (ids[3], merged, "2020-09-08T11:00:00Z"),
            ] {
                tx.set_membership(&MembershipRecord {
                    article,
                    cluster,
                    similarity: 0.5,
                    joined_at: now,
                    pinned: false,
                })?;
                let mut rec = tx.cluster(cluster)?.unwrap();
                rec.size += 1;
                rec.first_published = Some(
                    rec.first_published
                        .map_or(at(published), |f| f.min(at(published))),
                );
                rec.last_published = Some(
                    rec.last_published
                        .map_or(at(published), |l| l.max(at(published))),
                );
                rec.label_article = Some(article);
                tx.update_cluster(&rec)?;
            }
            let mut rec = tx.cluster(merged)?.unwrap();
            rec.status = ClusterStatus::Merged;
            rec.merged_into = Some(c1);
            tx.update_cluster(&rec)?;
            Ok((c1, c2))
        })
        .unwrap();
    let export = |from: Option<&str>, until: Option<&str>| {
        let mut rows = Vec::new();
        let n = db
            .export_rows::<StoreError>(from.map(at), until.map(at), |row| {
                rows.push((row.cluster.id, row.external_id, row.label));
                Ok(())
            })
            .unwrap();
        assert_eq!(n as usize, rows.len());
        rows
    };
    // Clusters in id order, members in publication order, the merged cluster left out.
    assert_eq!(
        export(None, None),
        [
            (c1, "x-1".to_owned(), Some("Initiative mondiale".to_owned())),
            (c1, "x-2".to_owned(), Some("Initiative mondiale".to_owned())),
            (c2, "x-3".to_owned(), Some("Autre événement".to_owned())),
        ]
    );
    // A cluster is in when it has a member within [from, until).
    let in_2020: Vec<_> = export(Some("2020-09-09T00:00:00Z"), Some("2021-01-01T00:00:00Z"))
        .into_iter()
        .map(|r| r.1)
        .collect();
    assert_eq!(in_2020, ["x-1", "x-2"]);
    let in_2015: Vec<_> = export(None, Some("2020-01-01T00:00:00Z"))
        .into_iter()
        .map(|r| r.1)
        .collect();
    assert_eq!(in_2015, ["x-3"]);
    // The callback's error stops the stream.
    let mut seen = 0;
    let stopped = db.export_rows(None, None, |_| {
        seen += 1;
        Err(StoreError::NotFound("stop".into()))
    });
    assert!(matches!(stopped, Err(StoreError::NotFound(_))));
    assert_eq!(seen, 1);
}

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn a_clustering_decision_reads_back_the_same_on_every_reader(b: Backend) {
    let place = b.place("decision");
    let store = place.open().unwrap();
    let mut db = store.connect().unwrap();
    let now = at("2024-05-01T12:00:00Z");
    let articles: Vec<NewArticle> = (0..3)
        .map(|i| article(&format!("d-{i}"), &format!("Titre {i}")))
        .collect();
    let ids: Vec<ArticleId> = articles
        .iter()
        .map(|a| db.upsert_article(a, now).unwrap().id())
        .collect();
    let (c1, c2) = db
        .transaction(|tx| {
            let c1 = tx.create_cluster(now)?;
            let c2 = tx.create_cluster(now)?;
            for (i, (a, id)) in articles.iter().zip(&ids).enumerate() {
                assert!(tx.set_vectors(
                    *id,
                    &a.content_hash,
                    "m",
                    &Embedding::text_only(vector(i as f32)),
                    &vector(9.0)
                )?);
                tx.set_article_state(*id, ArticleState::Clustered)?;
                tx.set_membership(&MembershipRecord {
                    article: *id,
                    cluster: if i < 2 { c1 } else { c2 },
                    similarity: 0.25,
                    joined_at: now,
                    pinned: i == 1,
                })?;
                tx.set_why(*id, &serde_json::json!({"candidates": i}), 0.25 * i as f32)?;
            }
            let mut rec = tx.cluster(c1)?.unwrap();
            rec.size = 2;
            rec.languages = vec![Lang::parse("fr").unwrap(), Lang::parse("en").unwrap()];
            rec.label_article = Some(ids[0]);
            tx.update_cluster(&rec)?;
            tx.add_event(
                c1,
                ClusterEventKind::ArticleJoined,
                Some(ids[1]),
                None,
                now,
                &serde_json::json!({"similarity": 0.25}),
            )?;
            Ok((c1, c2))
        })
        .unwrap();
    db.set_meta("centering", "{\"n\": 3}").unwrap();
    db.set_meta("centering", "{\"n\": 4}").unwrap();
    // What the clusterer's start writes for an article placed before migration 5.
    db.transaction(|tx| tx.set_crowding(ids[2], 0.75)).unwrap();

    let reader = store.connect_read_only().unwrap();
    assert_eq!(
        reader.meta("centering").unwrap().as_deref(),
        Some("{\"n\": 4}")
    );
    assert_eq!(reader.meta("nothing").unwrap(), None);
    let mut clustered = Vec::new();
    let mut crowding = Vec::new();
    reader
        .clustered_articles(|a| {
            clustered.push((a.id, a.title, a.vector.cosine(&vector(9.0)) < 0.999_999));
            crowding.push(a.crowding);
            Ok(())
        })
        .unwrap();
    assert_eq!(clustered.len(), 3);
    assert_eq!(clustered[1], (ids[1], "Titre 1".to_owned(), true));
    assert_eq!(crowding, [Some(0.0), Some(0.25), Some(0.75)]);
    let mut whys = Vec::new();
    reader
        .whys(|id, key, why| {
            whys.push((id, key.to_owned(), why));
            Ok(())
        })
        .unwrap();
    assert_eq!(
        whys[2],
        (
            ids[2],
            "d-2".to_owned(),
            serde_json::json!({"candidates": 2})
        )
    );
    assert_eq!(
        reader.why(ids[0]).unwrap(),
        Some(serde_json::json!({"candidates": 0}))
    );
    let mut titles = Vec::new();
    reader.titles(|t| titles.push(t.to_owned())).unwrap();
    assert_eq!(titles, ["Titre 0", "Titre 1", "Titre 2"]);
    assert_eq!(
        reader.article_counts().unwrap(),
        vec![(ArticleState::Clustered, 3)]
    );
    let members = reader.members(c1).unwrap();
    assert_eq!(members.len(), 2);
    assert!(members[1].pinned && !members[0].pinned);
    assert!((members[0].similarity - 0.25).abs() < 1e-9);
    let record = reader.cluster(c1).unwrap().unwrap();
    assert_eq!(record.size, 2);
    assert_eq!(record.label_article, Some(ids[0]));
    assert_eq!(record.languages.len(), 2);
    let events = reader.events(c1, 0, 10).unwrap();
    assert_eq!(events[0].article, Some(ids[1]));
    assert_eq!(events[0].data["similarity"], 0.25);
    drop(reader);

    db.transaction(|tx| {
        assert_eq!(tx.move_members(c1, c2)?, 2);
        tx.remove_membership(ids[2])?;
        tx.set_article_state(ids[2], ArticleState::Deleted)
    })
    .unwrap();
    let all: Vec<(ArticleId, ClusterId)> = db
        .all_memberships()
        .unwrap()
        .iter()
        .map(|m| (m.article, m.cluster))
        .collect();
    assert_eq!(all, vec![(ids[0], c2), (ids[1], c2)]);
    assert_eq!(db.membership(ids[2]).unwrap(), None);
    assert_eq!(db.active_clusters().unwrap().len(), 2);
    // Deleted with new content: queued again under the same id.
    let mut changed = articles[2].clone();
    changed.title = "Titre 2 bis".into();
    changed.content_hash = "other".into();
    assert_eq!(
        db.upsert_article(&changed, now).unwrap(),
        UpsertOutcome::Updated(ids[2])
    );
}

fn cluster_listings_filter_order_and_page(b: Backend) {
    let place = b.place("listing");
    let store = place.open().unwrap();
    let mut db = store.connect().unwrap();
    let now = at("2024-05-01T12:00:00Z");
    let label = db
        .upsert_article(&article("l-1", "Étiquette"), now)
        .unwrap()
        .id();
    let fr = Lang::parse("fr").unwrap();
    let en = Lang::parse("en").unwrap();
    let de = Lang::parse("de").unwrap();
    // (size, languages, last published day)
    let shapes = [
        (5, vec![fr, en], "2024-04-10"),
        (2, vec![en], "2024-04-20"),
        (9, vec![de, en, fr], "2024-04-15"),
        (1, vec![], "2024-04-25"),
    ];
    let ids: Vec<ClusterId> = db
        .transaction(|tx| {
            let mut ids = Vec::new();
            for (size, languages, day) in &shapes {
                let id = tx.create_cluster(now)?;
                let last = at(&format!("{day}T00:00:00Z"));
                tx.update_cluster(&ClusterRecord {
                    id,
                    status: ClusterStatus::Active,
                    merged_into: None,
                    created_at: now,
                    updated_at: now,
                    first_published: Some(last - jiff::SignedDuration::from_hours(48)),
                    last_published: Some(last),
                    size: *size,
                    languages: languages.clone(),
                    label_article: Some(label),
                })?;
                ids.push(id);
            }
            Ok(ids)
        })
        .unwrap();
    let query = |order| ClusterQuery {
        from: None,
        to: None,
        lang: None,
        min_size: 0,
        min_languages: 0,
        order,
        after: None,
        limit: 10,
        within: None,
    };
    let list = |q: &ClusterQuery| -> Vec<ClusterId> {
        db.list_clusters(q)
            .unwrap()
            .iter()
            .map(|(c, _, _)| c.id)
            .collect()
    };
    assert_eq!(
        list(&query(ClusterOrder::Recent)),
        [ids[3], ids[1], ids[2], ids[0]]
    );
    assert_eq!(
        list(&query(ClusterOrder::Size)),
        [ids[2], ids[0], ids[1], ids[3]]
    );
    let rows = db.list_clusters(&query(ClusterOrder::Size)).unwrap();
    assert_eq!(rows[0].1.as_deref(), Some("Étiquette"));
    assert_eq!(rows[0].2, 9);
    let mut q = query(ClusterOrder::Size);
    q.lang = Some(en);
    q.min_languages = 2;
    assert_eq!(list(&q), [ids[2], ids[0]]);
    let mut q = query(ClusterOrder::Recent);
    q.from = Some(at("2024-04-14T00:00:00Z"));
    q.to = Some(at("2024-04-19T00:00:00Z"));
    q.min_size = 2;
    assert_eq!(list(&q), [ids[1], ids[2]]);
    let mut q = query(ClusterOrder::Size);
    q.limit = 2;
    let first = db.list_clusters(&q).unwrap();
    let last = first.last().unwrap();
    q.after = Some((last.2, last.0.id.0));
    assert_eq!(list(&q), [ids[1], ids[3]]);
    let mut q = query(ClusterOrder::Recent);
    q.within = Some(vec![ids[0], ids[3], ClusterId(999)]);
    assert_eq!(list(&q), [ids[3], ids[0]]);
}

fn corrections_page_newest_first_and_by_kind(b: Backend) {
    let place = b.place("corrections");
    let store = place.open().unwrap();
    let mut db = store.connect().unwrap();
    let now = at("2024-05-01T12:00:00Z");
    let ids = db
        .transaction(|tx| {
            ["merge", "split", "move", "split"]
                .iter()
                .enumerate()
                .map(|(i, kind)| {
                    tx.add_correction(&Correction {
                        kind: (*kind).into(),
                        actor: "ops".into(),
                        at: now,
                        data: serde_json::json!({"n": i}),
                    })
                })
                .collect::<Result<Vec<u64>, _>>()
        })
        .unwrap();
    let page = db.corrections(None, 3).unwrap();
    let got: Vec<u64> = page.iter().map(|(id, _)| *id).collect();
    assert_eq!(got, [ids[3], ids[2], ids[1]]);
    assert_eq!(page[0].1.actor, "ops");
    assert_eq!(page[0].1.at, now);
    let rest = db.corrections(Some(ids[1]), 3).unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].1.kind, "merge");
    let splits = db.corrections_of_kind("split").unwrap();
    assert_eq!(
        splits,
        vec![
            ("split".to_owned(), serde_json::json!({"n": 1})),
            ("split".to_owned(), serde_json::json!({"n": 3})),
        ]
    );
}

fn an_embed_worker_stores_a_vector_once_and_only_for_the_current_content(b: Backend) {
    let place = b.place("embedding");
    let store = place.open().unwrap();
    let mut db = store.connect().unwrap();
    let a = article("e-1", "Plongement");
    let id = db.upsert_article(&a, Timestamp::now()).unwrap().id();
    let v = vector(3.0);
    let embedding = Embedding {
        vector: v.clone(),
        headline: Some(vector(4.0)),
    };
    let mut set = |hash: &str| {
        db.transaction(|tx| tx.set_embedding(id, hash, "m", &embedding))
            .unwrap()
    };
    assert!(!set("stale-hash"), "another version's vector");
    assert!(set(&a.content_hash));
    assert!(!set(&a.content_hash), "a second worker finds it embedded");
    let db = store.connect().unwrap();
    let record = db.article(id).unwrap().unwrap();
    assert_eq!(record.state, ArticleState::Embedded);
    let (back, centred) = db.vectors(id).unwrap().unwrap();
    assert!((back.cosine(&v) - 1.0).abs() < 1e-6);
    // No centred vector until the clusterer places it: the model's stands in.
    assert!((centred.cosine(&v) - 1.0).abs() < 1e-6);
    assert_eq!(db.embedding(id).unwrap(), Some(embedding.clone()));
    let pending = db.pending_articles().unwrap();
    assert_eq!(pending[0].state, ArticleState::Embedded);
    assert_eq!(pending[0].embedding, Some(embedding));
}

fn unfinished_articles_are_found_by_state_and_age(b: Backend) {
    let place = b.place("unfinished");
    let store = place.open().unwrap();
    let mut db = store.connect().unwrap();
    let (t0, t1) = (at("2024-05-01T12:00:00Z"), at("2024-05-01T12:05:00Z"));
    let old = article("u-1", "Ancien");
    let old_id = db.upsert_article(&old, t0).unwrap().id();
    let old2 = db
        .upsert_article(&article("u-2", "Ancien 2"), t0)
        .unwrap()
        .id();
    let new_id = db
        .upsert_article(&article("u-3", "Nouveau"), t1)
        .unwrap()
        .id();
    let v = Embedding::text_only(vector(1.0));
    db.transaction(|tx| tx.set_embedding(old2, &article("u-2", "Ancien 2").content_hash, "m", &v))
        .unwrap();
    let cutoff = at("2024-05-01T12:01:00Z");
    let queued = db
        .unfinished_before(ArticleState::Queued, cutoff, 10)
        .unwrap();
    assert_eq!(queued, vec![(old_id, old.content_hash.clone())]);
    let embedded = db
        .unfinished_before(ArticleState::Embedded, cutoff, 10)
        .unwrap();
    assert_eq!(
        embedded.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [old2]
    );
    let later = db
        .unfinished_before(ArticleState::Queued, at("2024-05-01T13:00:00Z"), 10)
        .unwrap();
    assert_eq!(
        later.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [old_id, new_id]
    );
    let limited = db
        .unfinished_before(ArticleState::Queued, at("2024-05-01T13:00:00Z"), 1)
        .unwrap();
    assert_eq!(limited.len(), 1);
}
