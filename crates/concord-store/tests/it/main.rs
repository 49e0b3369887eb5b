#![allow(clippy::unwrap_used, clippy::expect_used)]
use concord_core::{ArticleId, ClusterId, Lang, UnitVector};
use concord_store::{
    ArticleState, ClusterEventKind, ClusterStatus, MembershipRecord, NewArticle, Store, StoreError,
    Synchronous, UpsertOutcome, content_hash,
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
    let (v, x) = (vector(1.0), vector(2.0));
    let set = |db: &mut concord_store::Db, hash: &str| {
        db.transaction(|tx| tx.set_vectors(id, hash, "m", &v, &x))
            .unwrap()
    };
    assert!(!set(&mut db, "stale-hash"));
    assert!(set(&mut db, &a.content_hash));
    let (back, centred) = db.vectors(id).unwrap().unwrap();
    assert!((back.cosine(&v) - 1.0).abs() < 1e-6);
    assert!((centred.cosine(&x) - 1.0).abs() < 1e-6);
    let pending = db.pending_articles().unwrap();
    assert_eq!(pending[0].state, ArticleState::Embedded);
    assert!(pending[0].vector.is_some());
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
