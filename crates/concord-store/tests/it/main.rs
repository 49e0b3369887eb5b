#![allow(clippy::unwrap_used, clippy::expect_used)]
use concord_core::{ArticleId, ClusterId, Lang, UnitVector};
use concord_store::{
    ArticleState, ClusterEventKind, ClusterStatus, MembershipRecord, NewArticle, Store, StoreError,
    Synchronous, UpsertOutcome, content_hash,
};
use jiff::Timestamp;

/// A scratch data directory, removed when the returned guard drops.
fn temp_dir(name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix(&format!("concord-store-{name}-"))
        .tempdir()
        .unwrap();
    let path = dir.path().to_path_buf();
    (dir, path)
}

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

#[test]
fn upsert_is_idempotent_by_external_id_and_content() {
    let (_guard, dir) = temp_dir("upsert");
    let store = Store::open(&dir, Synchronous::Normal).unwrap();
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

#[test]
fn acknowledged_articles_survive_reopening() {
    let (_guard, dir) = temp_dir("durable");
    let id = {
        let store = Store::open(&dir, Synchronous::Normal).unwrap();
        let mut db = store.connect().unwrap();
        db.upsert_article(&article("d-1", "Durable"), Timestamp::now())
            .unwrap()
            .id()
    };
    let store = Store::open(&dir, Synchronous::Normal).unwrap();
    let db = store.connect().unwrap();
    let pending = db.pending_articles().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].id, id);
    assert_eq!(pending[0].state, ArticleState::Queued);
}

#[test]
fn vectors_round_trip_and_stale_vectors_are_refused() {
    let (_guard, dir) = temp_dir("vector");
    let store = Store::open(&dir, Synchronous::Normal).unwrap();
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

#[test]
fn a_failed_transaction_writes_nothing() {
    let (_guard, dir) = temp_dir("atomic");
    let store = Store::open(&dir, Synchronous::Normal).unwrap();
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

#[test]
fn merged_clusters_resolve_to_their_survivor() {
    let (_guard, dir) = temp_dir("merge");
    let store = Store::open(&dir, Synchronous::Normal).unwrap();
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

#[test]
fn a_database_from_a_newer_binary_is_refused() {
    let (_guard, dir) = temp_dir("future");
    Store::open(&dir, Synchronous::Normal).unwrap();
    let conn = rusqlite_conn(&dir);
    conn.pragma_update(None, "user_version", 999).unwrap();
    drop(conn);
    let err = Store::open(&dir, Synchronous::Normal).unwrap_err();
    assert!(
        matches!(err, StoreError::FutureSchema { found: 999, .. }),
        "{err:?}"
    );
}

fn rusqlite_conn(dir: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join("concord.sqlite3")).unwrap()
}
