//! Versioned migrations, tracked in SQLite's `user_version`. Append only:
//! a released migration is never edited.

use rusqlite::Connection;

use crate::StoreError;

const MIGRATIONS: &[&str] = &[
    // 1: articles, clusters, memberships, events, corrections.
    r#"
    CREATE TABLE articles (
        id              INTEGER PRIMARY KEY,
        external_id     TEXT NOT NULL UNIQUE,
        source          TEXT,
        url             TEXT,
        lang            TEXT,
        lang_source     TEXT NOT NULL,
        model_supports_lang INTEGER NOT NULL,
        published_at    INTEGER NOT NULL,
        received_at     INTEGER NOT NULL,
        updated_at      INTEGER NOT NULL,
        title           TEXT NOT NULL,
        content_hash    TEXT NOT NULL,
        prepared_text   TEXT NOT NULL,
        truncated       INTEGER NOT NULL,
        model           TEXT,
        vector          BLOB,
        state           TEXT NOT NULL CHECK (state IN ('queued', 'embedded', 'clustered', 'deleted'))
    );
    CREATE INDEX articles_state ON articles (state) WHERE state IN ('queued', 'embedded');
    CREATE INDEX articles_published ON articles (published_at);

    CREATE TABLE clusters (
        id              INTEGER PRIMARY KEY,
        status          TEXT NOT NULL CHECK (status IN ('active', 'merged', 'empty')),
        merged_into     INTEGER REFERENCES clusters (id),
        created_at      INTEGER NOT NULL,
        updated_at      INTEGER NOT NULL,
        first_published INTEGER,
        last_published  INTEGER,
        size            INTEGER NOT NULL,
        languages       TEXT NOT NULL,
        label_article   INTEGER REFERENCES articles (id)
    );
    CREATE INDEX clusters_recent ON clusters (last_published) WHERE status = 'active';

    CREATE TABLE memberships (
        article_id      INTEGER PRIMARY KEY REFERENCES articles (id),
        cluster_id      INTEGER NOT NULL REFERENCES clusters (id),
        similarity      REAL NOT NULL,
        joined_at       INTEGER NOT NULL,
        pinned          INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX memberships_cluster ON memberships (cluster_id);

    CREATE TABLE cluster_events (
        seq             INTEGER PRIMARY KEY,
        cluster_id      INTEGER NOT NULL REFERENCES clusters (id),
        kind            TEXT NOT NULL,
        article_id      INTEGER,
        other_cluster   INTEGER,
        at              INTEGER NOT NULL,
        data            TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX cluster_events_cluster ON cluster_events (cluster_id, seq);

    CREATE TABLE corrections (
        id              INTEGER PRIMARY KEY,
        kind            TEXT NOT NULL,
        actor           TEXT NOT NULL,
        at              INTEGER NOT NULL,
        data            TEXT NOT NULL
    );

    CREATE TABLE meta (
        key             TEXT PRIMARY KEY,
        value           TEXT NOT NULL
    );
    "#,
    // 2: the clusterer's frozen, centred vector beside the model's own.
    r#"
    ALTER TABLE articles ADD COLUMN cvector BLOB;
    "#,
];

/// The schema version this binary writes.
pub const CURRENT: i64 = MIGRATIONS.len() as i64;

pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > CURRENT {
        return Err(StoreError::FutureSchema {
            found,
            known: CURRENT,
        });
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(found).unwrap_or(0))
    {
        let version = i as i64 + 1;
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        tracing::info!(version, "applied store migration");
    }
    Ok(())
}
