use crate::{
    Db, StoreError,
    db::{Tx, from_millis, millis},
    sql::{Conn, Dialect, Row, values},
};
use concord_core::{ArticleId, ClusterId, Lang};
use jiff::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterStatus {
    Active,
    /// Merged into another cluster; its id resolves to the survivor forever.
    Merged,
    /// Every member left (deleted, moved or split out).
    Empty,
}

impl ClusterStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Merged => "merged",
            Self::Empty => "empty",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "active" => Ok(Self::Active),
            "merged" => Ok(Self::Merged),
            "empty" => Ok(Self::Empty),
            other => Err(StoreError::Corrupt {
                table: "clusters",
                reason: format!("unknown status {other:?}"),
            }),
        }
    }
}

/// A cluster row: the summary the clusterer maintains.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterRecord {
    pub id: ClusterId,
    pub status: ClusterStatus,
    pub merged_into: Option<ClusterId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub first_published: Option<Timestamp>,
    pub last_published: Option<Timestamp>,
    pub size: u64,
    pub languages: Vec<Lang>,
    pub label_article: Option<ArticleId>,
}

/// Every change a client can observe is one of these, written in the same
/// transaction as the change itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterEventKind {
    Created,
    ArticleJoined,
    ArticleLeft,
    MergedInto,
    Absorbed,
    SplitFrom,
}

impl ClusterEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::ArticleJoined => "article_joined",
            Self::ArticleLeft => "article_left",
            Self::MergedInto => "merged_into",
            Self::Absorbed => "absorbed",
            Self::SplitFrom => "split_from",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "created" => Self::Created,
            "article_joined" => Self::ArticleJoined,
            "article_left" => Self::ArticleLeft,
            "merged_into" => Self::MergedInto,
            "absorbed" => Self::Absorbed,
            "split_from" => Self::SplitFrom,
            other => {
                return Err(StoreError::Corrupt {
                    table: "cluster_events",
                    reason: format!("unknown kind {other:?}"),
                });
            }
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub seq: u64,
    pub cluster: ClusterId,
    pub kind: ClusterEventKind,
    pub article: Option<ArticleId>,
    pub other_cluster: Option<ClusterId>,
    pub at: Timestamp,
    pub data: serde_json::Value,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MembershipRecord {
    pub article: ArticleId,
    pub cluster: ClusterId,
    pub similarity: f32,
    pub joined_at: Timestamp,
    /// Placed by an analyst: the clusterer must not move it on its own.
    pub pinned: bool,
}

/// An analyst's correction, kept with who and when.
#[derive(Debug, Clone, PartialEq)]
pub struct Correction {
    pub kind: String,
    pub actor: String,
    pub at: Timestamp,
    pub data: serde_json::Value,
}

const CLUSTER_COLUMNS: &str = "id, status, merged_into, created_at, updated_at, first_published, \
     last_published, size, languages, label_article";

fn cluster_from_row(row: &Row<'_>) -> Result<ClusterRecord, StoreError> {
    let id: i64 = row.get(0)?;
    let status: String = row.get(1)?;
    let merged_into: Option<i64> = row.get(2)?;
    let created: i64 = row.get(3)?;
    let updated: i64 = row.get(4)?;
    let first: Option<i64> = row.get(5)?;
    let last: Option<i64> = row.get(6)?;
    let size: i64 = row.get(7)?;
    let languages: String = row.get(8)?;
    let label: Option<i64> = row.get(9)?;
    let languages = languages
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            Lang::parse(s).map_err(|e| StoreError::Corrupt {
                table: "clusters",
                reason: e.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ClusterRecord {
        id: ClusterId(id as u64),
        status: ClusterStatus::parse(&status)?,
        merged_into: merged_into.map(|m| ClusterId(m as u64)),
        created_at: from_millis("clusters", created)?,
        updated_at: from_millis("clusters", updated)?,
        first_published: first.map(|t| from_millis("clusters", t)).transpose()?,
        last_published: last.map(|t| from_millis("clusters", t)).transpose()?,
        size: size as u64,
        languages,
        label_article: label.map(|l| ArticleId(l as u64)),
    })
}

fn membership_from_row(row: &Row<'_>) -> Result<MembershipRecord, StoreError> {
    let article: i64 = row.get(0)?;
    let cluster: i64 = row.get(1)?;
    let similarity: f64 = row.get(2)?;
    let joined: i64 = row.get(3)?;
    let pinned: bool = row.get(4)?;
    Ok(MembershipRecord {
        article: ArticleId(article as u64),
        cluster: ClusterId(cluster as u64),
        similarity: similarity as f32,
        joined_at: from_millis("memberships", joined)?,
        pinned,
    })
}

/// One cluster row, on a connection or inside a transaction.
fn cluster_by_id(conn: Conn<'_>, id: ClusterId) -> Result<Option<ClusterRecord>, StoreError> {
    conn.query_opt(
        &format!("SELECT {CLUSTER_COLUMNS} FROM clusters WHERE id = ?1"),
        values![id.0 as i64],
        cluster_from_row,
    )
}

impl Db {
    pub fn cluster(&self, id: ClusterId) -> Result<Option<ClusterRecord>, StoreError> {
        cluster_by_id(self.c(), id)
    }

    /// Follows `merged_into` to the surviving cluster; `None` if `id` never existed.
    pub fn resolve_cluster(&self, id: ClusterId) -> Result<Option<ClusterRecord>, StoreError> {
        let mut current = id;
        // Merge chains are short; the bound only guards against a corrupt cycle.
        for _ in 0..1024 {
            let Some(record) = self.cluster(current)? else {
                return Ok(None);
            };
            match (record.status, record.merged_into) {
                (ClusterStatus::Merged, Some(next)) => current = next,
                _ => return Ok(Some(record)),
            }
        }
        Err(StoreError::Corrupt {
            table: "clusters",
            reason: format!("merge chain from {id} does not end"),
        })
    }

    pub fn members(&self, cluster: ClusterId) -> Result<Vec<MembershipRecord>, StoreError> {
        self.c().query_vec(
            "SELECT article_id, cluster_id, similarity, joined_at, pinned FROM memberships
             WHERE cluster_id = ?1 ORDER BY article_id",
            values![cluster.0 as i64],
            membership_from_row,
        )
    }

    pub fn membership(&self, article: ArticleId) -> Result<Option<MembershipRecord>, StoreError> {
        self.c().query_opt(
            "SELECT article_id, cluster_id, similarity, joined_at, pinned FROM memberships
             WHERE article_id = ?1",
            values![article.0 as i64],
            membership_from_row,
        )
    }

    /// Every membership, in article order (for rebuilding the clusterer's state).
    pub fn all_memberships(&self) -> Result<Vec<MembershipRecord>, StoreError> {
        self.c().query_vec(
            "SELECT article_id, cluster_id, similarity, joined_at, pinned FROM memberships
             ORDER BY article_id",
            values![],
            membership_from_row,
        )
    }

    /// Active clusters (for rebuilding the clusterer's state).
    pub fn active_clusters(&self) -> Result<Vec<ClusterRecord>, StoreError> {
        self.c().query_vec(
            &format!("SELECT {CLUSTER_COLUMNS} FROM clusters WHERE status = 'active' ORDER BY id"),
            values![],
            cluster_from_row,
        )
    }

    pub fn events(
        &self,
        cluster: ClusterId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StoreError> {
        self.c().query_vec(
            "SELECT seq, cluster_id, kind, article_id, other_cluster, at, data FROM cluster_events
             WHERE cluster_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            values![cluster.0 as i64, after_seq as i64, limit as i64],
            |r| {
                let data: String = r.get(6)?;
                Ok(EventRecord {
                    seq: r.get::<i64>(0)? as u64,
                    cluster: ClusterId(r.get::<i64>(1)? as u64),
                    kind: ClusterEventKind::parse(&r.get::<String>(2)?)?,
                    article: r.get::<Option<i64>>(3)?.map(|a| ArticleId(a as u64)),
                    other_cluster: r.get::<Option<i64>>(4)?.map(|c| ClusterId(c as u64)),
                    at: from_millis("cluster_events", r.get(5)?)?,
                    data: serde_json::from_str(&data).map_err(|e| StoreError::Corrupt {
                        table: "cluster_events",
                        reason: e.to_string(),
                    })?,
                })
            },
        )
    }
}

impl Db {
    /// Corrections newest first, as `(id, correction)`, those with ids below
    /// `before` when given (keyset pagination).
    pub fn corrections(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, Correction)>, StoreError> {
        let before = before.map_or(i64::MAX, |b| b.min(i64::MAX as u64) as i64);
        self.c().query_vec(
            "SELECT id, kind, actor, at, data FROM corrections WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
            values![before, limit as i64],
            |r| {
                let data: String = r.get(4)?;
                let data = serde_json::from_str(&data).map_err(|e| StoreError::Corrupt {
                    table: "corrections",
                    reason: e.to_string(),
                })?;
                Ok((
                    r.get::<i64>(0)? as u64,
                    Correction {
                        kind: r.get(1)?,
                        actor: r.get(2)?,
                        at: from_millis("corrections", r.get(3)?)?,
                        data,
                    },
                ))
            },
        )
    }

    /// Corrections of one kind, oldest first, as `(kind, data)`.
    pub fn corrections_of_kind(
        &self,
        kind: &str,
    ) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
        self.c().query_vec(
            "SELECT kind, data FROM corrections WHERE kind = ?1 ORDER BY id",
            values![kind],
            |r| {
                let data: String = r.get(1)?;
                let data = serde_json::from_str(&data).map_err(|e| StoreError::Corrupt {
                    table: "corrections",
                    reason: e.to_string(),
                })?;
                Ok((r.get(0)?, data))
            },
        )
    }
}

impl Tx<'_> {
    /// A new, empty, active cluster; its id is never reused.
    pub fn create_cluster(&self, now: Timestamp) -> Result<ClusterId, StoreError> {
        let id: i64 = self.conn.query_one(
            "INSERT INTO clusters (status, created_at, updated_at, size, languages)
             VALUES ('active', ?1, ?1, 0, '') RETURNING id",
            values![millis(now)],
            |r| r.get(0),
        )?;
        Ok(ClusterId(id as u64))
    }

    /// Writes a cluster's summary (everything but its id and creation time).
    pub fn update_cluster(&self, c: &ClusterRecord) -> Result<(), StoreError> {
        let languages = c
            .languages
            .iter()
            .map(|l| l.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let n = self.conn.execute(
            "UPDATE clusters SET status = ?2, merged_into = ?3, updated_at = ?4,
                first_published = ?5, last_published = ?6, size = ?7, languages = ?8,
                label_article = ?9
             WHERE id = ?1",
            values![
                c.id.0 as i64,
                c.status.as_str(),
                c.merged_into.map(|m| m.0 as i64),
                millis(c.updated_at),
                c.first_published.map(millis),
                c.last_published.map(millis),
                c.size as i64,
                &languages,
                c.label_article.map(|a| a.0 as i64)
            ],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(c.id.to_string()));
        }
        Ok(())
    }

    /// Puts `article` in `cluster` (replacing any membership it had).
    pub fn set_membership(&self, m: &MembershipRecord) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO memberships (article_id, cluster_id, similarity, joined_at, pinned)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (article_id) DO UPDATE SET cluster_id = excluded.cluster_id,
                similarity = excluded.similarity, joined_at = excluded.joined_at,
                pinned = excluded.pinned",
            values![
                m.article.0 as i64,
                m.cluster.0 as i64,
                f64::from(m.similarity),
                millis(m.joined_at),
                m.pinned
            ],
        )?;
        Ok(())
    }

    pub fn remove_membership(&self, article: ArticleId) -> Result<(), StoreError> {
        self.conn.execute(
            "DELETE FROM memberships WHERE article_id = ?1",
            values![article.0 as i64],
        )?;
        Ok(())
    }

    /// Re-points every membership of `from` to `into` (a merge).
    pub fn move_members(&self, from: ClusterId, into: ClusterId) -> Result<usize, StoreError> {
        let n = self.conn.execute(
            "UPDATE memberships SET cluster_id = ?2 WHERE cluster_id = ?1",
            values![from.0 as i64, into.0 as i64],
        )?;
        Ok(n as usize)
    }

    pub fn add_event(
        &self,
        cluster: ClusterId,
        kind: ClusterEventKind,
        article: Option<ArticleId>,
        other_cluster: Option<ClusterId>,
        at: Timestamp,
        data: &serde_json::Value,
    ) -> Result<u64, StoreError> {
        let seq: i64 = self.conn.query_one(
            "INSERT INTO cluster_events (cluster_id, kind, article_id, other_cluster, at, data)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING seq",
            values![
                cluster.0 as i64,
                kind.as_str(),
                article.map(|a| a.0 as i64),
                other_cluster.map(|c| c.0 as i64),
                millis(at),
                &data.to_string()
            ],
            |r| r.get(0),
        )?;
        Ok(seq as u64)
    }

    pub fn add_correction(&self, c: &Correction) -> Result<u64, StoreError> {
        let id: i64 = self.conn.query_one(
            "INSERT INTO corrections (kind, actor, at, data) VALUES (?1, ?2, ?3, ?4) RETURNING id",
            values![&c.kind, &c.actor, millis(c.at), &c.data.to_string()],
            |r| r.get(0),
        )?;
        Ok(id as u64)
    }

    /// Reads inside the transaction (sees its own writes).
    pub fn cluster(&self, id: ClusterId) -> Result<Option<ClusterRecord>, StoreError> {
        cluster_by_id(self.conn, id)
    }
}

/// How to order a cluster listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterOrder {
    /// Most recently published member first.
    Recent,
    /// Largest first.
    Size,
}

/// Filters and a page of a cluster listing.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterQuery {
    /// Clusters with a member published at or after this time.
    pub from: Option<Timestamp>,
    /// Clusters with a member published at or before this time.
    pub to: Option<Timestamp>,
    pub lang: Option<Lang>,
    pub min_size: u64,
    pub min_languages: u64,
    pub order: ClusterOrder,
    /// Keyset cursor: the (sort key, id) of the last row of the previous page.
    pub after: Option<(i64, u64)>,
    pub limit: usize,
    /// Only these clusters (e.g. those a text search found), when given.
    pub within: Option<Vec<ClusterId>>,
}

impl Db {
    /// Active clusters matching `q`, in its order, with each one's label title and
    /// its sort key (for the next page's cursor).
    pub fn list_clusters(
        &self,
        q: &ClusterQuery,
    ) -> Result<Vec<(ClusterRecord, Option<String>, i64)>, StoreError> {
        let key = match q.order {
            ClusterOrder::Recent => "c.last_published",
            ClusterOrder::Size => "c.size",
        };
        // Every parameter appears in every form of the statement (rusqlite binds by
        // count, PostgreSQL must know each one's type): unused ones are cast NULL checks.
        let mut sql = format!(
            "SELECT c.id, c.status, c.merged_into, c.created_at, c.updated_at, c.first_published,
                    c.last_published, c.size, c.languages, c.label_article, a.title, {key}
             FROM clusters c LEFT JOIN articles a ON a.id = c.label_article
             WHERE c.status = 'active' AND c.size >= ?1
               AND (CAST(?2 AS BIGINT) IS NULL OR c.last_published >= ?2)
               AND (CAST(?3 AS BIGINT) IS NULL OR c.first_published <= ?3)
               AND (CAST(?4 AS TEXT) IS NULL OR ',' || c.languages || ',' LIKE '%,' || ?4 || ',%')
               AND (length(c.languages) - length(replace(c.languages, ',', ''))
                    + CAST(c.languages <> '' AS INTEGER)) >= ?5"
        );
        if q.after.is_some() {
            sql.push_str(&format!(" AND ({key} < ?6 OR ({key} = ?6 AND c.id < ?7))"));
        } else {
            sql.push_str(" AND CAST(?6 AS BIGINT) IS NULL AND CAST(?7 AS BIGINT) IS NULL");
        }
        match (q.within.is_some(), self.c().dialect()) {
            (true, Dialect::Sqlite) => {
                sql.push_str(" AND c.id IN (SELECT value FROM json_each(?9))");
            }
            // Bound as text, then read as JSON (a JSONB parameter would need its own
            // binary form).
            (true, Dialect::Postgres) => sql.push_str(
                " AND c.id IN (SELECT CAST(value AS BIGINT)
                               FROM jsonb_array_elements_text(CAST(CAST(?9 AS TEXT) AS JSONB)))",
            ),
            (false, _) => sql.push_str(" AND CAST(?9 AS TEXT) IS NULL"),
        }
        sql.push_str(&format!(" ORDER BY {key} DESC, c.id DESC LIMIT ?8"));
        let within = q.within.as_ref().map(|ids| {
            serde_json::Value::from(ids.iter().map(|c| c.0).collect::<Vec<_>>()).to_string()
        });
        self.c().query_vec(
            &sql,
            values![
                q.min_size as i64,
                q.from.map(millis),
                q.to.map(millis),
                q.lang.map(|l| l.as_str()),
                q.min_languages as i64,
                q.after.map(|a| a.0),
                q.after.map(|a| a.1 as i64),
                q.limit as i64,
                &within
            ],
            |row| {
                let record = cluster_from_row(row)?;
                let title: Option<String> = row.get(10)?;
                let sort: Option<i64> = row.get(11)?;
                Ok((record, title, sort.unwrap_or(0)))
            },
        )
    }
}

/// One member of an active cluster, with its cluster's summary: a row of `concord export`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportRow {
    pub cluster: ClusterRecord,
    /// The cluster's label: its label article's title.
    pub label: Option<String>,
    pub article: ArticleId,
    pub external_id: String,
    pub lang: Option<Lang>,
    pub published_at: Timestamp,
    pub title: String,
    pub url: Option<String>,
    pub source: Option<String>,
    /// The member's similarity to its cluster when it joined.
    pub similarity: f64,
}

impl Db {
    /// Every member of every active cluster with a member published within
    /// `[from, until)` (either side open when `None`), grouped by cluster (in id
    /// order) and in publication order within one, each passed to `f` as it is
    /// read: the whole store streams through without being held in memory. Stops
    /// at the first error `f` returns.
    pub fn export_rows<E: From<StoreError>>(
        &self,
        from: Option<Timestamp>,
        until: Option<Timestamp>,
        mut f: impl FnMut(ExportRow) -> Result<(), E>,
    ) -> Result<u64, E> {
        let mut n = 0;
        self.c().query_each(
            "SELECT c.id, c.status, c.merged_into, c.created_at, c.updated_at,
                    c.first_published, c.last_published, c.size, c.languages,
                    c.label_article, l.title,
                    a.id, a.external_id, a.lang, a.published_at, a.title, a.url, a.source,
                    m.similarity
             FROM clusters c
             JOIN memberships m ON m.cluster_id = c.id
             JOIN articles a ON a.id = m.article_id
             LEFT JOIN articles l ON l.id = c.label_article
             WHERE c.status = 'active'
               AND (CAST(?1 AS BIGINT) IS NULL OR c.last_published >= ?1)
               AND (CAST(?2 AS BIGINT) IS NULL OR c.first_published < ?2)
             ORDER BY c.id, a.published_at, a.id",
            values![from.map(millis), until.map(millis)],
            |row| -> Result<(), E> {
                let read = || -> Result<ExportRow, StoreError> {
                    let cluster = cluster_from_row(row)?;
                    let lang: Option<String> = row.get(13)?;
                    let published: i64 = row.get(14)?;
                    Ok(ExportRow {
                        cluster,
                        label: row.get(10)?,
                        article: ArticleId(row.get::<i64>(11)? as u64),
                        external_id: row.get(12)?,
                        lang: crate::article::parse_lang("articles", lang)?,
                        published_at: from_millis("articles", published)?,
                        title: row.get(15)?,
                        url: row.get(16)?,
                        source: row.get(17)?,
                        similarity: row.get(18)?,
                    })
                };
                f(read()?)?;
                n += 1;
                Ok(())
            },
        )?;
        Ok(n)
    }
}
