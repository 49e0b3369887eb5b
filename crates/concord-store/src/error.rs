/// What the store can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgres: {0}")]
    Postgres(#[from] postgres::Error),
    #[error("postgres connection pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("database schema version {found} is newer than this binary knows ({known})")]
    FutureSchema { found: i64, known: i64 },
    #[error("corrupt row in {table}: {reason}")]
    Corrupt { table: &'static str, reason: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("backup target {0} already holds a database; choose an empty directory")]
    BackupExists(std::path::PathBuf),
    #[error("not supported by this store: {0}")]
    Unsupported(&'static str),
    #[error("lease {0} is no longer held (its session ended)")]
    LeaseLost(i64),
}
