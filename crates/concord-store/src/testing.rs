//! Unit tests run against both engines: a scratch SQLite data directory, or a fresh
//! database on the test process's throwaway PostgreSQL server (`concord-testpg`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::{Db, Store, Synchronous};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// A store and what keeps it alive (the SQLite directory).
pub(crate) struct Scratch {
    pub(crate) store: Store,
    _dir: Option<tempfile::TempDir>,
}

impl Backend {
    pub(crate) fn store(self, name: &str) -> Scratch {
        match self {
            Self::Sqlite => {
                let dir = tempfile::Builder::new()
                    .prefix(&format!("concord-store-{name}-"))
                    .tempdir()
                    .unwrap();
                let store = Store::open(dir.path(), Synchronous::Normal).unwrap();
                Scratch {
                    store,
                    _dir: Some(dir),
                }
            }
            Self::Postgres => {
                let url = concord_testpg::database(name).unwrap_or_else(|e| panic!("{e}"));
                Scratch {
                    store: Store::open_postgres(&url, 4).unwrap(),
                    _dir: None,
                }
            }
        }
    }

    /// A store and one read-write connection to it.
    pub(crate) fn db(self, name: &str) -> (Scratch, Db) {
        let scratch = self.store(name);
        let db = scratch.store.connect().unwrap();
        (scratch, db)
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
                    super::$name($crate::testing::Backend::Sqlite)
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    super::$name($crate::testing::Backend::Postgres)
                }
            )*
        }
    };
}
pub(crate) use on_both_backends;
