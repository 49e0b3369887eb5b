use std::{
    cell::RefCell,
    path::{Path, PathBuf},
    str::FromStr,
    time::Duration,
};

use rusqlite::{Connection, OpenFlags};

use crate::{
    StoreError, migrations,
    sql::{Conn, PgConnection, PgManager, PgSession, values},
};

/// How hard a commit waits for the disk. `Normal` (WAL) survives a process
/// crash such as `kill -9`; `Full` also survives power loss, at an fsync per commit.
/// PostgreSQL always commits as `Full` does (`synchronous_commit = on`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    Normal,
    Full,
}

/// The database and how to open connections to it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
}

#[derive(Debug, Clone)]
enum Backend {
    /// One file in the data directory; each connection opens it.
    Sqlite {
        path: PathBuf,
        synchronous: Synchronous,
    },
    /// A server; connections come from a pool shared by the store's clones.
    Postgres {
        pool: r2d2::Pool<PgManager>,
        /// For sessions outside the pool ([`Store::try_lease`]).
        config: Box<postgres::Config>,
    },
}

/// Which engine holds a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Store {
    /// Creates the data directory and database if needed and migrates the schema.
    pub fn open(dir: &Path, synchronous: Synchronous) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let store = Self {
            backend: Backend::Sqlite {
                path: dir.join("concord.sqlite3"),
                synchronous,
            },
        };
        let mut conn = store.sqlite_connection(false)?;
        migrations::migrate(&mut conn)?;
        Ok(store)
    }

    /// The PostgreSQL database at `url` (`postgres://user@host:port/db` or
    /// `host=... dbname=...`), its schema migrated, with a pool of at most
    /// `max_connections` connections shared by this store's clones. The database must
    /// exist; concurrent openers (several processes) migrate it once.
    pub fn open_postgres(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let manager = PgManager::new(postgres::Config::from_str(url)?);
        let config = Box::new(manager.config.clone());
        // A first connection of its own: a wrong address or password is its error at
        // once, not the pool's timeout.
        let mut client = manager.config.connect(postgres::NoTls)?;
        migrations::migrate_postgres(&mut client)?;
        drop(client);
        let pool = r2d2::Pool::builder()
            .max_size(max_connections.max(1))
            .min_idle(Some(0))
            .connection_timeout(Duration::from_secs(10))
            .build_unchecked(manager);
        Ok(Self {
            backend: Backend::Postgres { pool, config },
        })
    }

    /// The store already in data directory `dir`, as it is: never created or
    /// migrated (for readers such as `concord export`; [`Store::open`] is the way in
    /// for the service). A directory without one is [`StoreError::DataDir`].
    pub fn existing(dir: &Path, synchronous: Synchronous) -> Result<Self, StoreError> {
        let path = dir.join("concord.sqlite3");
        if !path.is_file() {
            return Err(StoreError::DataDir {
                path: dir.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no concord.sqlite3 here",
                ),
            });
        }
        Ok(Self {
            backend: Backend::Sqlite { path, synchronous },
        })
    }

    pub fn engine(&self) -> Engine {
        match self.backend {
            Backend::Sqlite { .. } => Engine::Sqlite,
            Backend::Postgres { .. } => Engine::Postgres,
        }
    }

    /// The database file (SQLite only).
    pub fn path(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Sqlite { path, .. } => Some(path),
            Backend::Postgres { .. } => None,
        }
    }

    /// Writes a consistent copy of the database into `dir` (created if needed) while
    /// the service keeps running: SQLite's `VACUUM INTO` reads one snapshot, so writers
    /// are not blocked and the copy is transactionally whole. The copy is a complete data
    /// directory: the index is rebuilt from it at start. Refuses to overwrite. A
    /// PostgreSQL store is backed up by the server's own tools (`pg_dump`, replicas).
    pub fn backup_to(&self, dir: &Path) -> Result<PathBuf, StoreError> {
        if let Backend::Postgres { .. } = self.backend {
            return Err(StoreError::Unsupported(
                "a backup of a PostgreSQL store (use pg_dump)",
            ));
        }
        std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let target = dir.join("concord.sqlite3");
        if target.exists() {
            return Err(StoreError::BackupExists(target));
        }
        let conn = self.sqlite_connection(false)?;
        conn.execute("VACUUM INTO ?1", [target.to_string_lossy()])?;
        Ok(target)
    }

    /// A read-write connection. Each owner (ingest, clusterer) holds its own.
    pub fn connect(&self) -> Result<Db, StoreError> {
        self.connection(false)
    }

    /// A connection for queries: read-only on SQLite; on PostgreSQL one of the pool's
    /// (what it runs is up to the caller).
    pub fn connect_read_only(&self) -> Result<Db, StoreError> {
        self.connection(true)
    }

    fn connection(&self, read_only: bool) -> Result<Db, StoreError> {
        Ok(Db {
            conn: match &self.backend {
                Backend::Sqlite { .. } => DbConn::Sqlite(self.sqlite_connection(read_only)?),
                Backend::Postgres { pool, .. } => {
                    DbConn::Postgres(Box::new(RefCell::new(pool.get()?)))
                }
            },
        })
    }

    /// Tries to take the lease named `key` (PostgreSQL only): a session-level advisory
    /// lock on a connection of its own, outside the pool. `None`: another session holds
    /// it. The server frees it when the session ends: [`Lease`] dropped, the process
    /// killed (its socket closes), or the machine gone (TCP keepalives, ~30 s).
    /// Blocking: call it off the async workers.
    pub fn try_lease(&self, key: i64) -> Result<Option<Lease>, StoreError> {
        let Backend::Postgres { config, .. } = &self.backend else {
            return Err(StoreError::Unsupported("a lease on a SQLite store"));
        };
        let mut config = (**config).clone();
        config
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .keepalives_interval(Duration::from_secs(5))
            .keepalives_retries(4);
        let mut session = PgSession::new(config.connect(postgres::NoTls)?);
        let held: bool = session
            .client()
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])?
            .get(0);
        Ok(held.then_some(Lease { session, key }))
    }

    fn sqlite_connection(&self, read_only: bool) -> Result<Connection, StoreError> {
        let Backend::Sqlite { path, synchronous } = &self.backend else {
            return Err(StoreError::Unsupported(
                "a SQLite connection to a PostgreSQL store",
            ));
        };
        let flags = if read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let conn = Connection::open_with_flags(path, flags)?;
        // Every statement goes through the cache (`sql.rs`): room for all of them.
        conn.set_prepared_statement_cache_capacity(64);
        conn.busy_timeout(Duration::from_secs(10))?;
        if !read_only {
            conn.pragma_update(None, "journal_mode", "WAL")?;
        }
        let sync = match synchronous {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        };
        conn.pragma_update(None, "synchronous", sync)?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        Ok(conn)
    }
}

/// One connection and the statements Concord runs on it.
#[derive(Debug)]
pub struct Db {
    conn: DbConn,
}

#[derive(Debug)]
enum DbConn {
    Sqlite(Connection),
    /// In a cell: postgres' client needs `&mut` to run anything, and reads take `&Db`.
    /// Boxed: a pooled connection with its statements is four times a SQLite one.
    Postgres(Box<RefCell<PgConnection>>),
}

impl Db {
    pub(crate) fn c(&self) -> Conn<'_> {
        match &self.conn {
            DbConn::Sqlite(c) => Conn::Sqlite(c),
            DbConn::Postgres(c) => Conn::Postgres(c),
        }
    }

    /// Leaves WAL checkpoints to the store's other writers. A checkpoint copies the
    /// log into the database file and syncs it: milliseconds that land on whichever
    /// commit pushes the log past SQLite's threshold. For the latency-critical
    /// writer (the clusterer); the ingest connection, which writes every article
    /// first, keeps checkpointing, so the log stays bounded. Nothing to do on
    /// PostgreSQL, where the server checkpoints on its own.
    pub fn without_auto_checkpoint(self) -> Result<Self, StoreError> {
        if let DbConn::Sqlite(conn) = &self.conn {
            conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        }
        Ok(self)
    }

    /// Pages of log after which a commit on this connection checkpoints (0: never,
    /// as on PostgreSQL).
    pub fn auto_checkpoint_pages(&self) -> Result<i64, StoreError> {
        match &self.conn {
            DbConn::Sqlite(conn) => {
                Ok(conn.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))?)
            }
            DbConn::Postgres(_) => Ok(0),
        }
    }

    /// Runs `f` in one transaction: everything it writes commits together or not at all
    /// (`f` must pass on every error it meets: on PostgreSQL a failed statement spoils
    /// the rest of the transaction).
    ///
    /// SQLite: the write lock is taken up front (`BEGIN IMMEDIATE`): a deferred
    /// transaction that reads first cannot upgrade once another connection has written,
    /// and would fail with "database is locked" instead of waiting. Writers are one at
    /// a time. PostgreSQL: `READ COMMITTED`, writers run side by side; the statements
    /// whose reads their writes depend on lock those rows (`FOR UPDATE`) or claim them
    /// in one statement, so the outcomes are the ones one writer at a time would give.
    pub fn transaction<T>(
        &mut self,
        f: impl FnOnce(&Tx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match &mut self.conn {
            DbConn::Sqlite(conn) => {
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let out = f(&Tx {
                    conn: Conn::Sqlite(&tx),
                })?;
                tx.commit()?;
                Ok(out)
            }
            DbConn::Postgres(cell) => {
                let conn = Conn::Postgres(cell);
                conn.batch("BEGIN ISOLATION LEVEL READ COMMITTED")?;
                let mut open = RollbackUnlessDone { cell, done: false };
                let out = f(&Tx { conn })?;
                open.done = true;
                conn.batch("COMMIT")?;
                Ok(out)
            }
        }
    }

    /// A value from the `meta` table.
    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.c()
            .query_opt("SELECT value FROM meta WHERE key = ?1", values![key], |r| {
                r.get(0)
            })
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.c().execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            values![key, value],
        )?;
        Ok(())
    }
}

/// Rolls a PostgreSQL transaction back when its closure failed or panicked, so the
/// connection goes back to the pool outside any transaction.
struct RollbackUnlessDone<'a> {
    cell: &'a RefCell<PgConnection>,
    done: bool,
}

impl Drop for RollbackUnlessDone<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let Ok(mut session) = self.cell.try_borrow_mut()
            && let Err(e) = session.client().batch_execute("ROLLBACK")
        {
            tracing::warn!(error = %e, "postgres rollback failed");
        }
    }
}

/// A write transaction in progress; see [`Db::transaction`].
#[derive(Debug)]
pub struct Tx<'a> {
    pub(crate) conn: Conn<'a>,
}

pub(crate) fn millis(t: jiff::Timestamp) -> i64 {
    t.as_millisecond()
}

pub(crate) fn from_millis(table: &'static str, ms: i64) -> Result<jiff::Timestamp, StoreError> {
    jiff::Timestamp::from_millisecond(ms).map_err(|e| StoreError::Corrupt {
        table,
        reason: format!("timestamp {ms}: {e}"),
    })
}

/// A held lease (see [`Store::try_lease`]). [`Lease::release`] frees it at once;
/// dropping it frees it when its session has closed, a moment later, since the close
/// runs on a thread of its own.
#[derive(Debug)]
pub struct Lease {
    session: PgSession,
    key: i64,
}

impl Lease {
    /// The lease's key.
    pub fn key(&self) -> i64 {
        self.key
    }

    /// Confirms the session that holds the lease is alive and still holds it: a holder
    /// that cannot confirm must stop acting on it, since the server frees the lock with
    /// a dead session and a standby may hold it now. Blocking.
    pub fn confirm(&mut self) -> Result<(), StoreError> {
        let held: bool = self
            .session
            .client()
            .query_one(
                // The session takes no other advisory lock.
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'
                 AND pid = pg_backend_pid() AND granted)",
                &[],
            )?
            .get(0);
        if held {
            Ok(())
        } else {
            Err(StoreError::LeaseLost(self.key))
        }
    }

    /// Frees the lease before returning, so a standby polling for it can take it on its
    /// next try (a drop frees it only once the session's close reaches the server).
    /// Blocking. On an error the lease is still freed when the session closes.
    pub fn release(mut self) -> Result<(), StoreError> {
        let key = self.key;
        self.session
            .client()
            .execute("SELECT pg_advisory_unlock($1)", &[&key])?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use jiff::Timestamp;

    use super::*;
    use crate::{NewArticle, content_hash, testing::Backend};

    fn article(n: u32) -> NewArticle {
        let at: Timestamp = "2021-07-23T12:00:00Z".parse().unwrap();
        let title = format!("Opening ceremony report {n}");
        NewArticle {
            external_id: format!("ext-{n}"),
            source: None,
            url: None,
            lang: None,
            lang_source: "undetermined",
            model_supports_lang: false,
            published_at: at,
            content_hash: content_hash(&title, "", None, at, None),
            prepared_text: title.clone(),
            title,
            truncated: false,
        }
    }

    #[test]
    fn only_the_opted_out_connection_stops_checkpointing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("data"), Synchronous::Normal).unwrap();
        let ingest = store.connect().unwrap();
        let mut quiet = store.connect().unwrap().without_auto_checkpoint().unwrap();
        assert_eq!(quiet.auto_checkpoint_pages().unwrap(), 0);
        assert!(ingest.auto_checkpoint_pages().unwrap() > 0);
        // It still writes, durably, like any other connection.
        quiet.upsert_article(&article(1), Timestamp::now()).unwrap();
        assert!(ingest.article_by_external_id("ext-1").unwrap().is_some());
    }

    #[test]
    fn an_online_backup_is_a_whole_store_and_later_writes_stay_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("data"), Synchronous::Normal).unwrap();
        let mut db = store.connect().unwrap();
        for n in 0..20 {
            db.upsert_article(&article(n), Timestamp::now()).unwrap();
        }
        // A reader holds a snapshot open while the backup runs: it neither blocks nor breaks it.
        let reader = store.connect_read_only().unwrap();
        let backup_dir = dir.path().join("backup");
        store.backup_to(&backup_dir).unwrap();
        db.upsert_article(&article(99), Timestamp::now()).unwrap();
        drop(reader);

        let restored = Store::open(&backup_dir, Synchronous::Normal).unwrap();
        let copy = restored.connect_read_only().unwrap();
        assert!(copy.article_by_external_id("ext-19").unwrap().is_some());
        assert!(copy.article_by_external_id("ext-99").unwrap().is_none());
        assert_eq!(
            copy.pending_articles().unwrap().len(),
            20,
            "the restored store still knows which articles await clustering"
        );
        assert!(matches!(
            store.backup_to(&backup_dir),
            Err(StoreError::BackupExists(_))
        ));
    }

    #[test]
    fn a_postgres_store_is_a_server_not_a_file() {
        let (scratch, db) = Backend::Postgres.db("server_not_file");
        let store = &scratch.store;
        assert_eq!(store.engine(), Engine::Postgres);
        assert_eq!(store.path(), None);
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            store.backup_to(dir.path()),
            Err(StoreError::Unsupported(_))
        ));
        // The server checkpoints on its own: nothing to turn off.
        let db = db.without_auto_checkpoint().unwrap();
        assert_eq!(db.auto_checkpoint_pages().unwrap(), 0);
    }

    #[test]
    fn a_failed_or_panicking_postgres_transaction_leaves_its_pooled_connection_clean() {
        let url = concord_testpg::database("clean_pool").unwrap();
        // One connection: every `connect` below gets the same one back from the pool.
        let store = Store::open_postgres(&url, 1).unwrap();
        let now = Timestamp::now();
        let failed = store.connect().unwrap().transaction(|tx| {
            tx.upsert_article(&article(1), now)?;
            // A statement the server refuses spoils the rest of the transaction.
            tx.conn
                .execute("SELECT no_such_column FROM articles", &[])?;
            Ok(())
        });
        assert!(matches!(failed, Err(StoreError::Postgres(_))), "{failed:?}");
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut db = store.connect().unwrap();
            let _ = db.transaction(|tx| -> Result<(), StoreError> {
                tx.upsert_article(&article(2), now)?;
                panic!("a bug in the middle of a transaction")
            });
        }));
        assert!(panicked.is_err());
        let mut db = store.connect().unwrap();
        db.upsert_article(&article(3), now).unwrap();
        assert!(db.article_by_external_id("ext-1").unwrap().is_none());
        assert!(db.article_by_external_id("ext-2").unwrap().is_none());
        assert!(db.article_by_external_id("ext-3").unwrap().is_some());
    }

    #[test]
    fn a_wrong_postgres_address_is_its_own_error_at_once() {
        let started = std::time::Instant::now();
        let err = Store::open_postgres("postgres://postgres@127.0.0.1:1/nothing", 1).unwrap_err();
        assert!(matches!(err, StoreError::Postgres(_)), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        let err = Store::open_postgres("not a url at all=", 1).unwrap_err();
        assert!(matches!(err, StoreError::Postgres(_)), "{err:?}");
    }

    #[test]
    fn one_session_holds_a_lease_and_it_passes_on_when_the_session_ends() {
        let url = concord_testpg::database("lease").unwrap();
        let store = Store::open_postgres(&url, 2).unwrap();
        let mut first = store.try_lease(15).unwrap().expect("free lease");
        first.confirm().unwrap();
        assert_eq!(first.key(), 15);
        assert!(store.try_lease(15).unwrap().is_none(), "held by the first");
        let other = store.try_lease(16).unwrap();
        assert!(other.is_some(), "another key is another lease");
        // A dead holder's session: its lock goes with it, and the holder knows.
        let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let pid: i32 = first
            .session
            .client()
            .query_one("SELECT pg_backend_pid()", &[])
            .unwrap()
            .get(0);
        admin
            .execute("SELECT pg_terminate_backend($1)", &[&pid])
            .unwrap();
        assert!(first.confirm().is_err());
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let second = loop {
            if let Some(lease) = store.try_lease(15).unwrap() {
                break lease;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the lease was never freed"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        second.release().unwrap();
        let third = store.try_lease(15).unwrap().expect("freed by release");
        drop(third);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while store.try_lease(15).unwrap().is_none() {
            assert!(std::time::Instant::now() < deadline, "never freed on drop");
            std::thread::sleep(Duration::from_millis(20));
        }
        let sqlite = tempfile::tempdir().unwrap();
        let err = Store::open(sqlite.path(), Synchronous::Normal)
            .unwrap()
            .try_lease(15)
            .unwrap_err();
        assert!(matches!(err, StoreError::Unsupported(_)), "{err:?}");
    }
}
