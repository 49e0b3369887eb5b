use concord_core::{ArticleId, ClusterId, Lang};
use jiff::Timestamp;
use rusqlite::{OptionalExtension, Row, params};

use crate::{
    Db, StoreError,
    db::{Tx, from_millis, millis},
};

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

fn cluster_from_row(row: &Row<'_>) -> rusqlite::Result<Result<ClusterRecord, StoreError>> {
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
    Ok((|| {
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
    })())
}

fn membership_from_row(row: &Row<'_>) -> rusqlite::Result<Result<MembershipRecord, StoreError>> {
    let article: i64 = row.get(0)?;
    let cluster: i64 = row.get(1)?;
    let similarity: f64 = row.get(2)?;
    let joined: i64 = row.get(3)?;
    let pinned: bool = row.get(4)?;
    Ok(
        from_millis("memberships", joined).map(|joined_at| MembershipRecord {
            article: ArticleId(article as u64),
            cluster: ClusterId(cluster as u64),
            similarity: similarity as f32,
            joined_at,
            pinned,
        }),
    )
}

/// One cluster row, on a connection or inside a transaction.
fn cluster_by_id(
    conn: &rusqlite::Connection,
    id: ClusterId,
) -> Result<Option<ClusterRecord>, StoreError> {
    conn.query_row(
        &format!("SELECT {CLUSTER_COLUMNS} FROM clusters WHERE id = ?1"),
        [id.0 as i64],
        cluster_from_row,
    )
    .optional()?
    .transpose()
}

impl Db {
    pub fn cluster(&self, id: ClusterId) -> Result<Option<ClusterRecord>, StoreError> {
        cluster_by_id(&self.conn, id)
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
        let mut stmt = self.conn.prepare(
            "SELECT article_id, cluster_id, similarity, joined_at, pinned FROM memberships
             WHERE cluster_id = ?1 ORDER BY article_id",
        )?;
        let rows = stmt.query_map([cluster.0 as i64], membership_from_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row??);
        }
        Ok(out)
    }

    pub fn membership(&self, article: ArticleId) -> Result<Option<MembershipRecord>, StoreError> {
        self.conn
            .query_row(
                "SELECT article_id, cluster_id, similarity, joined_at, pinned FROM memberships
                 WHERE article_id = ?1",
                [article.0 as i64],
                membership_from_row,
            )
            .optional()?
            .transpose()
    }

    /// Every membership, in article order (for rebuilding the clusterer's state).
    pub fn all_memberships(&self) -> Result<Vec<MembershipRecord>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT article_id, cluster_id, similarity, joined_at, pinned FROM memberships
             ORDER BY article_id",
        )?;
        let rows = stmt.query_map([], membership_from_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row??);
        }
        Ok(out)
    }

    /// Active clusters (for rebuilding the clusterer's state).
    pub fn active_clusters(&self) -> Result<Vec<ClusterRecord>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {CLUSTER_COLUMNS} FROM clusters WHERE status = 'active' ORDER BY id"
        ))?;
        let rows = stmt.query_map([], cluster_from_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row??);
        }
        Ok(out)
    }

    pub fn events(
        &self,
        cluster: ClusterId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT seq, cluster_id, kind, article_id, other_cluster, at, data FROM cluster_events
             WHERE cluster_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            params![cluster.0 as i64, after_seq as i64, limit as i64],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, String>(6)?,
                ))
            },
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, cluster, kind, article, other, at, data) = row?;
            out.push(EventRecord {
                seq: seq as u64,
                cluster: ClusterId(cluster as u64),
                kind: ClusterEventKind::parse(&kind)?,
                article: article.map(|a| ArticleId(a as u64)),
                other_cluster: other.map(|c| ClusterId(c as u64)),
                at: from_millis("cluster_events", at)?,
                data: serde_json::from_str(&data).map_err(|e| StoreError::Corrupt {
                    table: "cluster_events",
                    reason: e.to_string(),
                })?,
            });
        }
        Ok(out)
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
        let mut stmt = self.conn.prepare(
            "SELECT id, kind, actor, at, data FROM corrections WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let before = before.map_or(i64::MAX, |b| b.min(i64::MAX as u64) as i64);
        let rows = stmt.query_map(params![before, limit as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, kind, actor, at, data) = row?;
            let data = serde_json::from_str(&data).map_err(|e| StoreError::Corrupt {
                table: "corrections",
                reason: e.to_string(),
            })?;
            out.push((
                id as u64,
                Correction {
                    kind,
                    actor,
                    at: from_millis("corrections", at)?,
                    data,
                },
            ));
        }
        Ok(out)
    }

    /// Corrections of one kind, oldest first, as `(kind, data)`.
    pub fn corrections_of_kind(
        &self,
        kind: &str,
    ) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT kind, data FROM corrections WHERE kind = ?1 ORDER BY id")?;
        let rows = stmt.query_map([kind], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (kind, data) = row?;
            let data = serde_json::from_str(&data).map_err(|e| StoreError::Corrupt {
                table: "corrections",
                reason: e.to_string(),
            })?;
            out.push((kind, data));
        }
        Ok(out)
    }
}

impl Tx<'_> {
    /// A new, empty, active cluster; its id is never reused.
    pub fn create_cluster(&self, now: Timestamp) -> Result<ClusterId, StoreError> {
        self.tx.execute(
            "INSERT INTO clusters (status, created_at, updated_at, size, languages)
             VALUES ('active', ?1, ?1, 0, '')",
            [millis(now)],
        )?;
        Ok(ClusterId(self.tx.last_insert_rowid() as u64))
    }

    /// Writes a cluster's summary (everything but its id and creation time).
    pub fn update_cluster(&self, c: &ClusterRecord) -> Result<(), StoreError> {
        let languages = c
            .languages
            .iter()
            .map(|l| l.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let n = self.tx.execute(
            "UPDATE clusters SET status = ?2, merged_into = ?3, updated_at = ?4,
                first_published = ?5, last_published = ?6, size = ?7, languages = ?8,
                label_article = ?9
             WHERE id = ?1",
            params![
                c.id.0 as i64,
                c.status.as_str(),
                c.merged_into.map(|m| m.0 as i64),
                millis(c.updated_at),
                c.first_published.map(millis),
                c.last_published.map(millis),
                c.size as i64,
                languages,
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
        self.tx.execute(
            "INSERT INTO memberships (article_id, cluster_id, similarity, joined_at, pinned)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (article_id) DO UPDATE SET cluster_id = excluded.cluster_id,
                similarity = excluded.similarity, joined_at = excluded.joined_at,
                pinned = excluded.pinned",
            params![
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
        self.tx.execute(
            "DELETE FROM memberships WHERE article_id = ?1",
            [article.0 as i64],
        )?;
        Ok(())
    }

    /// Re-points every membership of `from` to `into` (a merge).
    pub fn move_members(&self, from: ClusterId, into: ClusterId) -> Result<usize, StoreError> {
        Ok(self.tx.execute(
            "UPDATE memberships SET cluster_id = ?2 WHERE cluster_id = ?1",
            params![from.0 as i64, into.0 as i64],
        )?)
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
        self.tx.execute(
            "INSERT INTO cluster_events (cluster_id, kind, article_id, other_cluster, at, data)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                cluster.0 as i64,
                kind.as_str(),
                article.map(|a| a.0 as i64),
                other_cluster.map(|c| c.0 as i64),
                millis(at),
                data.to_string()
            ],
        )?;
        Ok(self.tx.last_insert_rowid() as u64)
    }

    pub fn add_correction(&self, c: &Correction) -> Result<u64, StoreError> {
        self.tx.execute(
            "INSERT INTO corrections (kind, actor, at, data) VALUES (?1, ?2, ?3, ?4)",
            params![c.kind, c.actor, millis(c.at), c.data.to_string()],
        )?;
        Ok(self.tx.last_insert_rowid() as u64)
    }

    /// Reads inside the transaction (sees its own writes).
    pub fn cluster(&self, id: ClusterId) -> Result<Option<ClusterRecord>, StoreError> {
        cluster_by_id(self.tx, id)
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
        let mut sql = format!(
            "SELECT c.id, c.status, c.merged_into, c.created_at, c.updated_at, c.first_published,
                    c.last_published, c.size, c.languages, c.label_article, a.title, {key}
             FROM clusters c LEFT JOIN articles a ON a.id = c.label_article
             WHERE c.status = 'active' AND c.size >= ?1
               AND (?2 IS NULL OR c.last_published >= ?2)
               AND (?3 IS NULL OR c.first_published <= ?3)
               AND (?4 IS NULL OR ',' || c.languages || ',' LIKE '%,' || ?4 || ',%')
               AND (length(c.languages) - length(replace(c.languages, ',', '')) + (c.languages != '')) >= ?5"
        );
        if q.after.is_some() {
            sql.push_str(&format!(" AND ({key} < ?6 OR ({key} = ?6 AND c.id < ?7))"));
        } else {
            sql.push_str(" AND ?6 IS NULL AND ?7 IS NULL");
        }
        if q.within.is_some() {
            sql.push_str(" AND c.id IN (SELECT value FROM json_each(?9))");
        } else {
            sql.push_str(" AND ?9 IS NULL");
        }
        sql.push_str(&format!(" ORDER BY {key} DESC, c.id DESC LIMIT ?8"));
        let within = q.within.as_ref().map(|ids| {
            serde_json::Value::from(ids.iter().map(|c| c.0).collect::<Vec<_>>()).to_string()
        });
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(
            params![
                q.min_size as i64,
                q.from.map(millis),
                q.to.map(millis),
                q.lang.map(|l| l.as_str()),
                q.min_languages as i64,
                q.after.map(|a| a.0),
                q.after.map(|a| a.1 as i64),
                q.limit as i64,
                within
            ],
            |row| {
                let record = cluster_from_row(row)?;
                let title: Option<String> = row.get(10)?;
                let sort: Option<i64> = row.get(11)?;
                Ok((record, title, sort.unwrap_or(0)))
            },
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (record, title, sort) = row?;
            out.push((record?, title, sort));
        }
        Ok(out)
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
        let mut stmt = self
            .conn
            .prepare(
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
                   AND (?1 IS NULL OR c.last_published >= ?1)
                   AND (?2 IS NULL OR c.first_published < ?2)
                 ORDER BY c.id, a.published_at, a.id",
            )
            .map_err(StoreError::from)?;
        let mut rows = stmt
            .query(params![from.map(millis), until.map(millis)])
            .map_err(StoreError::from)?;
        let mut n = 0;
        while let Some(row) = rows.next().map_err(StoreError::from)? {
            let read = || -> Result<ExportRow, StoreError> {
                let cluster = cluster_from_row(row)??;
                let lang: Option<String> = row.get(13)?;
                let published: i64 = row.get(14)?;
                Ok(ExportRow {
                    cluster,
                    label: row.get(10)?,
                    article: ArticleId(row.get::<_, i64>(11)? as u64),
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
        }
        Ok(n)
    }
}
