use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use rusqlite::{Connection, OpenFlags};

use crate::{StoreError, migrations};

/// How hard a commit waits for the disk. `Normal` (WAL) survives a process
/// crash such as `kill -9`; `Full` also survives power loss, at an fsync per commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    Normal,
    Full,
}

/// The database file and how to open connections to it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    path: PathBuf,
    synchronous: Synchronous,
}

impl Store {
    /// Creates the data directory and database if needed and migrates the schema.
    pub fn open(dir: &Path, synchronous: Synchronous) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let store = Self {
            path: dir.join("concord.sqlite3"),
            synchronous,
        };
        let mut conn = store.raw_connection(false)?;
        migrations::migrate(&mut conn)?;
        Ok(store)
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
        Ok(Self { path, synchronous })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes a consistent copy of the database into `dir` (created if needed) while
    /// the service keeps running: SQLite's `VACUUM INTO` reads one snapshot, so writers
    /// are not blocked and the copy is transactionally whole. The copy is a complete data
    /// directory: the index is rebuilt from it at start. Refuses to overwrite.
    pub fn backup_to(&self, dir: &Path) -> Result<PathBuf, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::DataDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let target = dir.join("concord.sqlite3");
        if target.exists() {
            return Err(StoreError::BackupExists(target));
        }
        let conn = self.raw_connection(false)?;
        conn.execute("VACUUM INTO ?1", [target.to_string_lossy()])?;
        Ok(target)
    }

    /// A read-write connection. Each owner (ingest, clusterer) holds its own.
    pub fn connect(&self) -> Result<Db, StoreError> {
        Ok(Db {
            conn: self.raw_connection(false)?,
        })
    }

    /// A read-only connection for queries.
    pub fn connect_read_only(&self) -> Result<Db, StoreError> {
        Ok(Db {
            conn: self.raw_connection(true)?,
        })
    }

    fn raw_connection(&self, read_only: bool) -> Result<Connection, StoreError> {
        let flags = if read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let conn = Connection::open_with_flags(&self.path, flags)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        if !read_only {
            conn.pragma_update(None, "journal_mode", "WAL")?;
        }
        let sync = match self.synchronous {
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
    pub(crate) conn: Connection,
}

impl Db {
    /// Leaves WAL checkpoints to the store's other writers. A checkpoint copies the
    /// log into the database file and syncs it: milliseconds that land on whichever
    /// commit pushes the log past SQLite's threshold. For the latency-critical
    /// writer (the clusterer); the ingest connection, which writes every article
    /// first, keeps checkpointing, so the log stays bounded.
    pub fn without_auto_checkpoint(self) -> Result<Self, StoreError> {
        self.conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        Ok(self)
    }

    /// Pages of log after which a commit on this connection checkpoints (0: never).
    pub fn auto_checkpoint_pages(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))?)
    }

    /// Runs `f` in one transaction: everything it writes commits together or not at all.
    /// The write lock is taken up front (`BEGIN IMMEDIATE`): a deferred transaction that
    /// reads first cannot upgrade once another connection has written, and would fail
    /// with "database is locked" instead of waiting.
    pub fn transaction<T>(
        &mut self,
        f: impl FnOnce(&Tx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let out = f(&Tx { tx: &tx })?;
        tx.commit()?;
        Ok(out)
    }

    /// A value from the `meta` table.
    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        use rusqlite::OptionalExtension;
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [key, value],
        )?;
        Ok(())
    }
}

/// A write transaction in progress; see [`Db::transaction`].
#[derive(Debug)]
pub struct Tx<'a> {
    pub(crate) tx: &'a rusqlite::Transaction<'a>,
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use jiff::Timestamp;

    use super::*;
    use crate::{NewArticle, content_hash};

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
}
