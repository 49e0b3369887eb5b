//! Versioned migrations, one list per engine, tracked in SQLite's `user_version` and in
//! PostgreSQL's `schema_version` table. Append only: a released migration is never
//! edited. Version N means the same schema on both: each PostgreSQL migration says what
//! its SQLite twin says, in PostgreSQL's types (`BIGINT` for every integer and time in
//! milliseconds, `BOOLEAN`, `DOUBLE PRECISION`, `BYTEA`, identity columns for ids).

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
    // 3: webhooks: subscriptions, the outbox the clusterer writes in its transactions,
    // the delivery log, and the ids of inbound webhooks already accepted.
    // AUTOINCREMENT: ids and outbox sequence numbers reach clients (the outbox seq is the
    // `webhook-id` receivers deduplicate on), so pruning the newest rows must not let
    // SQLite hand the same number out again.
    r#"
    CREATE TABLE subscriptions (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        url             TEXT NOT NULL,
        event_types     TEXT NOT NULL,
        secret          TEXT NOT NULL,
        description     TEXT,
        enabled         INTEGER NOT NULL,
        disabled_reason TEXT,
        created_at      INTEGER NOT NULL,
        updated_at      INTEGER NOT NULL
    );

    CREATE TABLE outbox (
        seq             INTEGER PRIMARY KEY AUTOINCREMENT,
        event_type      TEXT NOT NULL,
        payload         TEXT NOT NULL,
        created_at      INTEGER NOT NULL,
        fanned_out      INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX outbox_unfanned ON outbox (seq) WHERE fanned_out = 0;
    CREATE INDEX outbox_created ON outbox (created_at);

    CREATE TABLE deliveries (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        subscription_id INTEGER NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
        outbox_seq      INTEGER NOT NULL REFERENCES outbox (seq) ON DELETE CASCADE,
        status          TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        last_attempt_at INTEGER,
        last_status     INTEGER,
        last_error      TEXT,
        created_at      INTEGER NOT NULL,
        updated_at      INTEGER NOT NULL
    );
    CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
    CREATE INDEX deliveries_subscription ON deliveries (subscription_id, id DESC);
    CREATE INDEX deliveries_outbox ON deliveries (outbox_seq);

    CREATE TABLE inbound_webhooks (
        webhook_id      TEXT PRIMARY KEY,
        received_at     INTEGER NOT NULL,
        article_id      INTEGER NOT NULL REFERENCES articles (id)
    );
    CREATE INDEX inbound_webhooks_received ON inbound_webhooks (received_at);
    "#,
    // 4: why the clusterer placed each article: its decision's candidates, features and
    // scores (JSON), shown to analysts on the article.
    r#"
    ALTER TABLE articles ADD COLUMN why TEXT;
    "#,
    // 5: how crowded each article's neighbourhood was when it was placed (the mean of
    // its best centred cosines among the hits), which later arrivals' decisions read.
    r#"
    ALTER TABLE articles ADD COLUMN crowding REAL;
    "#,
    // 6: the headline model's vector of each article's title (f32 little-endian, like
    // `vector`), which the join trees compare; NULL where that model was off.
    r#"
    ALTER TABLE articles ADD COLUMN hvector BLOB;
    "#,
];

/// PostgreSQL's twin of each migration above, in the same order.
const POSTGRES_MIGRATIONS: &[&str] = &[
    // 1: articles, clusters, memberships, events, corrections.
    r#"
    CREATE TABLE articles (
        id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        external_id     TEXT NOT NULL UNIQUE,
        source          TEXT,
        url             TEXT,
        lang            TEXT,
        lang_source     TEXT NOT NULL,
        model_supports_lang BOOLEAN NOT NULL,
        published_at    BIGINT NOT NULL,
        received_at     BIGINT NOT NULL,
        updated_at      BIGINT NOT NULL,
        title           TEXT NOT NULL,
        content_hash    TEXT NOT NULL,
        prepared_text   TEXT NOT NULL,
        truncated       BOOLEAN NOT NULL,
        model           TEXT,
        vector          BYTEA,
        state           TEXT NOT NULL CHECK (state IN ('queued', 'embedded', 'clustered', 'deleted'))
    );
    CREATE INDEX articles_state ON articles (state) WHERE state IN ('queued', 'embedded');
    CREATE INDEX articles_published ON articles (published_at);

    CREATE TABLE clusters (
        id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        status          TEXT NOT NULL CHECK (status IN ('active', 'merged', 'empty')),
        merged_into     BIGINT REFERENCES clusters (id),
        created_at      BIGINT NOT NULL,
        updated_at      BIGINT NOT NULL,
        first_published BIGINT,
        last_published  BIGINT,
        size            BIGINT NOT NULL,
        languages       TEXT NOT NULL,
        label_article   BIGINT REFERENCES articles (id)
    );
    CREATE INDEX clusters_recent ON clusters (last_published) WHERE status = 'active';

    CREATE TABLE memberships (
        article_id      BIGINT PRIMARY KEY REFERENCES articles (id),
        cluster_id      BIGINT NOT NULL REFERENCES clusters (id),
        similarity      DOUBLE PRECISION NOT NULL,
        joined_at       BIGINT NOT NULL,
        pinned          BOOLEAN NOT NULL DEFAULT FALSE
    );
    CREATE INDEX memberships_cluster ON memberships (cluster_id);

    CREATE TABLE cluster_events (
        seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        cluster_id      BIGINT NOT NULL REFERENCES clusters (id),
        kind            TEXT NOT NULL,
        article_id      BIGINT,
        other_cluster   BIGINT,
        at              BIGINT NOT NULL,
        data            TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX cluster_events_cluster ON cluster_events (cluster_id, seq);

    CREATE TABLE corrections (
        id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        kind            TEXT NOT NULL,
        actor           TEXT NOT NULL,
        at              BIGINT NOT NULL,
        data            TEXT NOT NULL
    );

    CREATE TABLE meta (
        key             TEXT PRIMARY KEY,
        value           TEXT NOT NULL
    );
    "#,
    // 2: the clusterer's frozen, centred vector beside the model's own.
    r#"
    ALTER TABLE articles ADD COLUMN cvector BYTEA;
    "#,
    // 3: webhooks. Identity sequences never hand a number out twice, pruned or not
    // (SQLite's AUTOINCREMENT).
    r#"
    CREATE TABLE subscriptions (
        id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        url             TEXT NOT NULL,
        event_types     TEXT NOT NULL,
        secret          TEXT NOT NULL,
        description     TEXT,
        enabled         BOOLEAN NOT NULL,
        disabled_reason TEXT,
        created_at      BIGINT NOT NULL,
        updated_at      BIGINT NOT NULL
    );

    CREATE TABLE outbox (
        seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        event_type      TEXT NOT NULL,
        payload         TEXT NOT NULL,
        created_at      BIGINT NOT NULL,
        fanned_out      BOOLEAN NOT NULL DEFAULT FALSE
    );
    CREATE INDEX outbox_unfanned ON outbox (seq) WHERE NOT fanned_out;
    CREATE INDEX outbox_created ON outbox (created_at);

    CREATE TABLE deliveries (
        id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        subscription_id BIGINT NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
        outbox_seq      BIGINT NOT NULL REFERENCES outbox (seq) ON DELETE CASCADE,
        status          TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
        attempts        BIGINT NOT NULL DEFAULT 0,
        next_attempt_at BIGINT NOT NULL,
        last_attempt_at BIGINT,
        last_status     BIGINT,
        last_error      TEXT,
        created_at      BIGINT NOT NULL,
        updated_at      BIGINT NOT NULL
    );
    CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
    CREATE INDEX deliveries_subscription ON deliveries (subscription_id, id DESC);
    CREATE INDEX deliveries_outbox ON deliveries (outbox_seq);

    CREATE TABLE inbound_webhooks (
        webhook_id      TEXT PRIMARY KEY,
        received_at     BIGINT NOT NULL,
        article_id      BIGINT NOT NULL REFERENCES articles (id)
    );
    CREATE INDEX inbound_webhooks_received ON inbound_webhooks (received_at);
    "#,
    // 4: why the clusterer placed each article (JSON).
    r#"
    ALTER TABLE articles ADD COLUMN why TEXT;
    "#,
    // 5: how crowded each article's neighbourhood was when it was placed.
    r#"
    ALTER TABLE articles ADD COLUMN crowding DOUBLE PRECISION;
    "#,
    // 6: the headline model's vector of each article's title.
    r#"
    ALTER TABLE articles ADD COLUMN hvector BYTEA;
    "#,
];

/// The schema version this binary writes.
pub const CURRENT: i64 = MIGRATIONS.len() as i64;

const _: () = assert!(MIGRATIONS.len() == POSTGRES_MIGRATIONS.len());

/// The transaction-level advisory lock concurrent openers of one PostgreSQL database
/// take, so the schema is migrated once (any constant of Concord's own will do).
const MIGRATION_LOCK: i64 = 0x636f_6e63_6f72_6401;

pub fn migrate_postgres(client: &mut postgres::Client) -> Result<(), StoreError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")?;
    let found: i64 = match tx.query_opt("SELECT version FROM schema_version", &[])? {
        Some(row) => row.try_get(0)?,
        None => {
            tx.execute("INSERT INTO schema_version (version) VALUES (0)", &[])?;
            0
        }
    };
    if found > CURRENT {
        return Err(StoreError::FutureSchema {
            found,
            known: CURRENT,
        });
    }
    for (i, sql) in POSTGRES_MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(found).unwrap_or(0))
    {
        let version = i as i64 + 1;
        tx.batch_execute(sql)?;
        tx.execute("UPDATE schema_version SET version = $1", &[&version])?;
        tracing::info!(version, "applied store migration (postgres)");
    }
    tx.commit()?;
    Ok(())
}

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
