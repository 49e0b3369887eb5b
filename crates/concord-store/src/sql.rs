//! The one place that knows there are two SQL engines.
//!
//! Every statement is written once, with SQLite's numbered placeholders (`?1`, `?2`),
//! and run through [`Conn`], which hands it to rusqlite as it is or to PostgreSQL with
//! the placeholders renumbered as `$1`, `$2` (prepared once per pooled connection).
//! Where the two dialects really differ (a boolean literal, a row lock, a JSON list, an
//! atomic claim), the statement asks [`Conn::dialect`] and says both forms side by side.
//! Parameters are [`Value`]s and columns are read through [`Row::get`], so no module
//! outside this one names rusqlite's or postgres' types.

use std::{cell::RefCell, collections::HashMap, error::Error as StdError, fmt};

use bytes::BytesMut;
use postgres::{
    fallible_iterator::FallibleIterator,
    types::{IsNull, Type, to_sql_checked},
};

use crate::StoreError;

/// Which SQL an engine speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// A row lock for a read that a write in the same transaction depends on. SQLite
    /// needs none: its write transactions take the database lock up front.
    pub(crate) fn for_update(self) -> &'static str {
        match self {
            Self::Sqlite => "",
            Self::Postgres => " FOR UPDATE",
        }
    }

    /// Whether the comma-separated list in column `list` holds `item` (both SQL).
    pub(crate) fn list_contains(self, list: &str, item: &str) -> String {
        let position = match self {
            Self::Sqlite => "instr",
            Self::Postgres => "strpos",
        };
        format!("{position}(',' || {list} || ',', ',' || {item} || ',') > 0")
    }
}

/// Opens the PostgreSQL connections of a store's pool.
#[derive(Debug)]
pub(crate) struct PgManager {
    pub(crate) config: postgres::Config,
}

impl PgManager {
    /// Every session commits synchronously whatever the server's default: an article
    /// is durable when the store says so (a server crash loses no acknowledged commit).
    pub(crate) fn new(mut config: postgres::Config) -> Self {
        let options = config.get_options().unwrap_or_default();
        let options = format!("{options} -c synchronous_commit=on")
            .trim()
            .to_owned();
        config.options(&options);
        if config.get_application_name().is_none() {
            config.application_name("concord");
        }
        Self { config }
    }
}

impl r2d2::ManageConnection for PgManager {
    type Connection = PgSession;
    type Error = postgres::Error;

    fn connect(&self) -> Result<PgSession, postgres::Error> {
        Ok(PgSession::new(self.config.connect(postgres::NoTls)?))
    }

    fn is_valid(&self, conn: &mut PgSession) -> Result<(), postgres::Error> {
        conn.client().simple_query("").map(|_| ())
    }

    fn has_broken(&self, conn: &mut PgSession) -> bool {
        conn.client().is_closed()
    }
}

/// A pooled PostgreSQL connection.
pub(crate) type PgConnection = r2d2::PooledConnection<PgManager>;

/// A PostgreSQL connection with the statements it has prepared (kept with the
/// connection in the pool, so a request that borrows it prepares nothing again).
pub(crate) struct PgSession {
    /// Always `Some` but in `drop`, which hands it to a thread of its own.
    client: Option<postgres::Client>,
    statements: HashMap<String, postgres::Statement>,
}

impl Drop for PgSession {
    /// Closing a `postgres::Client` blocks on a runtime of its own, which panics on a
    /// thread that drives an async runtime (the last store handle may be dropped by a
    /// task, at shutdown say). A thread of its own closes it, wherever the drop happens.
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let closing = std::thread::Builder::new()
                .name("pg-close".to_owned())
                .spawn(move || drop(client));
            if let Err(error) = closing {
                tracing::warn!(%error, "cannot start a thread to close a PostgreSQL connection");
            }
        }
    }
}

impl fmt::Debug for PgSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgSession")
            .field(
                "closed",
                &self.client.as_ref().is_none_or(|c| c.is_closed()),
            )
            .field("statements", &self.statements.len())
            .finish()
    }
}

impl PgSession {
    pub(crate) fn new(client: postgres::Client) -> Self {
        Self {
            client: Some(client),
            statements: HashMap::new(),
        }
    }

    pub(crate) fn client(&mut self) -> &mut postgres::Client {
        match &mut self.client {
            Some(client) => client,
            None => unreachable!("the client is taken only by drop"),
        }
    }

    fn prepare(&mut self, sql: &str) -> Result<postgres::Statement, StoreError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let statement = self.client().prepare(&postgres_placeholders(sql))?;
        self.statements.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

/// `?N` placeholders as PostgreSQL's `$N`, outside quoted literals and identifiers.
pub(crate) fn postgres_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) => {
                out.push('$');
                continue;
            }
            None => {}
        }
        out.push(c);
    }
    out
}

/// A connection (or the connection of a transaction in progress) of either engine.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Conn<'a> {
    Sqlite(&'a rusqlite::Connection),
    Postgres(&'a RefCell<PgConnection>),
}

impl Conn<'_> {
    pub(crate) fn dialect(self) -> Dialect {
        match self {
            Self::Sqlite(_) => Dialect::Sqlite,
            Self::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Runs a statement; returns how many rows it changed.
    pub(crate) fn execute(self, sql: &str, params: &[Value<'_>]) -> Result<u64, StoreError> {
        match self {
            Self::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                Ok(stmt.execute(rusqlite::params_from_iter(params.iter()))? as u64)
            }
            Self::Postgres(cell) => {
                let mut session = borrow(cell)?;
                let stmt = session.prepare(sql)?;
                Ok(session.client().execute(&stmt, &pg_params(params))?)
            }
        }
    }

    /// The first row of a query, read by `f`, if there is one.
    pub(crate) fn query_opt<T>(
        self,
        sql: &str,
        params: &[Value<'_>],
        f: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let mut f = Some(f);
        let mut out = None;
        self.each_until(sql, params, true, &mut |row| {
            if let Some(f) = f.take() {
                out = Some(f(row)?);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// The one row of a query that always returns one (an aggregate).
    pub(crate) fn query_one<T>(
        self,
        sql: &str,
        params: &[Value<'_>],
        f: impl FnOnce(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.query_opt(sql, params, f)?
            .ok_or_else(|| StoreError::NotFound(format!("a row of {sql:?}")))
    }

    /// Every row of a query, each read by `f`.
    pub(crate) fn query_vec<T>(
        self,
        sql: &str,
        params: &[Value<'_>],
        mut f: impl FnMut(&Row<'_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        self.query_each(sql, params, |row| -> Result<(), StoreError> {
            out.push(f(row)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// Streams every row of a query through `f` as it is read (not held in memory);
    /// stops at the first error. `f` must not use this connection.
    pub(crate) fn query_each<E: From<StoreError>>(
        self,
        sql: &str,
        params: &[Value<'_>],
        mut f: impl FnMut(&Row<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut failed = None;
        let read = self.each_until(sql, params, false, &mut |row| match f(row) {
            Ok(()) => Ok(()),
            Err(e) => {
                failed = Some(e);
                Err(StoreError::NotFound("stopped by the caller".into()))
            }
        });
        match (read, failed) {
            (_, Some(e)) => Err(e),
            (Err(e), None) => Err(e.into()),
            (Ok(()), None) => Ok(()),
        }
    }

    fn each_until(
        self,
        sql: &str,
        params: &[Value<'_>],
        first_only: bool,
        f: &mut dyn FnMut(&Row<'_>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
                while let Some(row) = rows.next()? {
                    f(&Row::Sqlite(row))?;
                    if first_only {
                        break;
                    }
                }
                Ok(())
            }
            Self::Postgres(cell) => {
                let mut session = borrow(cell)?;
                let stmt = session.prepare(sql)?;
                let mut rows = session.client().query_raw(&stmt, pg_params(params))?;
                while let Some(row) = rows.next()? {
                    f(&Row::Postgres(&row))?;
                    if first_only {
                        break;
                    }
                }
                Ok(())
            }
        }
    }

    /// Runs statements without parameters or results (schema changes).
    pub(crate) fn batch(self, sql: &str) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Self::Postgres(cell) => Ok(borrow(cell)?.client().batch_execute(sql)?),
        }
    }
}

fn borrow(cell: &RefCell<PgConnection>) -> Result<std::cell::RefMut<'_, PgConnection>, StoreError> {
    cell.try_borrow_mut()
        .map_err(|_| StoreError::Unsupported("using a connection while it streams rows"))
}

fn pg_params<'a>(params: &'a [Value<'a>]) -> Vec<&'a (dyn postgres::types::ToSql + Sync)> {
    params
        .iter()
        .map(|p| p as &(dyn postgres::types::ToSql + Sync))
        .collect()
}

/// A row being read, of either engine.
pub(crate) enum Row<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Postgres(&'a postgres::Row),
}

/// A column type both engines read: `i64`, `f64`, `bool`, `String`, `Vec<u8>` and
/// their `Option`s (the schemas keep integers 64-bit on both).
pub(crate) trait Column:
    rusqlite::types::FromSql + for<'r> postgres::types::FromSql<'r>
{
}

impl<T> Column for T where T: rusqlite::types::FromSql + for<'r> postgres::types::FromSql<'r> {}

impl Row<'_> {
    pub(crate) fn get<T: Column>(&self, i: usize) -> Result<T, StoreError> {
        match self {
            Self::Sqlite(r) => Ok(r.get(i)?),
            Self::Postgres(r) => Ok(r.try_get(i)?),
        }
    }
}

/// A statement parameter, bound as what the engine's column expects.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value<'a> {
    Null,
    Int(i64),
    Real(f64),
    Bool(bool),
    Text(&'a str),
    Blob(&'a [u8]),
}

/// Parameters as `&[Value]`, from anything with a `From` into [`Value`].
macro_rules! values {
    ($($e:expr),* $(,)?) => {
        &[$($crate::sql::Value::from($e)),*]
    };
}
pub(crate) use values;

impl From<i64> for Value<'_> {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}

impl From<f64> for Value<'_> {
    fn from(v: f64) -> Self {
        Self::Real(v)
    }
}

impl From<bool> for Value<'_> {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(v: &'a str) -> Self {
        Self::Text(v)
    }
}

impl<'a> From<&'a String> for Value<'a> {
    fn from(v: &'a String) -> Self {
        Self::Text(v)
    }
}

impl<'a> From<&'a [u8]> for Value<'a> {
    fn from(v: &'a [u8]) -> Self {
        Self::Blob(v)
    }
}

impl<'a> From<&'a Vec<u8>> for Value<'a> {
    fn from(v: &'a Vec<u8>) -> Self {
        Self::Blob(v)
    }
}

impl<'a, T: Into<Value<'a>>> From<Option<T>> for Value<'a> {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Null, Into::into)
    }
}

impl<'a, T: Copy + Into<Value<'a>>> From<&Option<T>> for Value<'a> {
    fn from(v: &Option<T>) -> Self {
        v.map_or(Self::Null, Into::into)
    }
}

impl<'a> From<&'a Option<String>> for Value<'a> {
    fn from(v: &'a Option<String>) -> Self {
        v.as_deref().map_or(Self::Null, Self::Text)
    }
}

impl<'a> From<&'a Option<Vec<u8>>> for Value<'a> {
    fn from(v: &'a Option<Vec<u8>>) -> Self {
        v.as_deref().map_or(Self::Null, Self::Blob)
    }
}

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match *self {
            Self::Null => ValueRef::Null,
            Self::Int(v) => ValueRef::Integer(v),
            Self::Real(v) => ValueRef::Real(v),
            Self::Bool(v) => ValueRef::Integer(i64::from(v)),
            Self::Text(v) => ValueRef::Text(v.as_bytes()),
            Self::Blob(v) => ValueRef::Blob(v),
        }))
    }
}

impl postgres::types::ToSql for Value<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match (*self, ty) {
            (Self::Null, _) => Ok(IsNull::Yes),
            (Self::Int(v), &Type::INT8) => v.to_sql(ty, out),
            // An integer expression of PostgreSQL's own (`length(...)`) makes its
            // parameter an int4: bound if it fits.
            (Self::Int(v), &Type::INT4) => i32::try_from(v)?.to_sql(ty, out),
            (Self::Int(v), &Type::INT2) => i16::try_from(v)?.to_sql(ty, out),
            (Self::Real(v), &Type::FLOAT8) => v.to_sql(ty, out),
            (Self::Bool(v), &Type::BOOL) => v.to_sql(ty, out),
            (Self::Text(v), _) if <&str as postgres::types::ToSql>::accepts(ty) => {
                v.to_sql(ty, out)
            }
            (Self::Blob(v), &Type::BYTEA) => v.to_sql(ty, out),
            (value, ty) => Err(format!("cannot bind {value:?} as {ty}").into()),
        }
    }

    fn accepts(ty: &Type) -> bool {
        matches!(
            *ty,
            Type::INT8 | Type::INT4 | Type::INT2 | Type::FLOAT8 | Type::BOOL | Type::BYTEA
        ) || <&str as postgres::types::ToSql>::accepts(ty)
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_renumbered_outside_literals() {
        assert_eq!(
            postgres_placeholders("SELECT '?1', \"a?2\" FROM t WHERE a = ?1 AND b = ?12 OR c ?"),
            "SELECT '?1', \"a?2\" FROM t WHERE a = $1 AND b = $12 OR c ?"
        );
    }
}
