use concord_core::{ArticleId, Embedding, Lang, UnitVector};
use jiff::Timestamp;
use sha2::{Digest, Sha256};

use crate::{
    Db, StoreError,
    db::{Tx, from_millis, millis},
    sql::{Row, values},
};

/// Where an article is on its way through Concord.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ArticleState {
    /// Stored and acknowledged; waiting for the model.
    Queued,
    /// Has a vector; waiting for the clusterer.
    Embedded,
    /// In exactly one cluster.
    Clustered,
    /// Removed by a caller; in no cluster and not in the index.
    Deleted,
}

/// A model vector blob and the nullable blob read beside it ([`Db::vector_beside`]).
type VectorBeside = (Vec<u8>, Option<Vec<u8>>);

impl ArticleState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Embedded => "embedded",
            Self::Clustered => "clustered",
            Self::Deleted => "deleted",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "queued" => Ok(Self::Queued),
            "embedded" => Ok(Self::Embedded),
            "clustered" => Ok(Self::Clustered),
            "deleted" => Ok(Self::Deleted),
            other => Err(StoreError::Corrupt {
                table: "articles",
                reason: format!("unknown state {other:?}"),
            }),
        }
    }
}

/// The fingerprint that decides whether a re-sent article changed.
pub fn content_hash(
    title: &str,
    body: &str,
    url: Option<&str>,
    published_at: Timestamp,
    lang: Option<Lang>,
) -> String {
    let mut h = Sha256::new();
    for part in [
        title,
        body,
        url.unwrap_or(""),
        &published_at.as_millisecond().to_string(),
        lang.map_or("", Lang::as_str),
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// An article as ingest hands it to the store.
#[derive(Debug, Clone)]
pub struct NewArticle {
    pub external_id: String,
    pub source: Option<String>,
    pub url: Option<String>,
    pub lang: Option<Lang>,
    /// `given`, `detected` or `undetermined`.
    pub lang_source: &'static str,
    pub model_supports_lang: bool,
    pub published_at: Timestamp,
    pub title: String,
    pub content_hash: String,
    pub prepared_text: String,
    pub truncated: bool,
}

/// What an upsert by external id did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpsertOutcome {
    /// First time this external id was seen.
    Inserted(ArticleId),
    /// Same id and same content: nothing changed.
    Unchanged(ArticleId, ArticleState),
    /// Same id, new content: stored and queued again.
    Updated(ArticleId),
}

impl UpsertOutcome {
    pub fn id(self) -> ArticleId {
        match self {
            Self::Inserted(id) | Self::Unchanged(id, _) | Self::Updated(id) => id,
        }
    }
}

/// An article row as stored.
#[derive(Debug, Clone)]
pub struct ArticleRecord {
    pub id: ArticleId,
    pub external_id: String,
    pub source: Option<String>,
    pub url: Option<String>,
    pub lang: Option<Lang>,
    pub lang_source: String,
    pub model_supports_lang: bool,
    pub published_at: Timestamp,
    pub received_at: Timestamp,
    pub updated_at: Timestamp,
    pub title: String,
    pub content_hash: String,
    pub prepared_text: String,
    pub truncated: bool,
    pub state: ArticleState,
}

/// A clustered article as the clusterer reloads it.
#[derive(Debug, Clone)]
pub struct ClusteredArticle {
    pub id: ArticleId,
    pub published_at: Timestamp,
    pub lang: Option<Lang>,
    pub title: String,
    /// The prepared text the model read.
    pub prepared_text: String,
    /// The model's vector.
    pub vector: UnitVector,
    /// The clusterer's centred vector, frozen when the article arrived.
    pub centred: UnitVector,
    /// The headline model's vector of the title (`None`: that model was off, or
    /// the article was embedded before the store kept it).
    pub headline: Option<UnitVector>,
    /// How crowded its neighbourhood was when it was placed (the clusterer's
    /// measure); `None` for articles placed before the store recorded it.
    pub crowding: Option<f32>,
}

/// An article that still has work to do (after a restart, for instance).
#[derive(Debug, Clone)]
pub struct PendingArticle {
    pub id: ArticleId,
    pub state: ArticleState,
    pub published_at: Timestamp,
    pub lang: Option<Lang>,
    pub title: String,
    pub prepared_text: String,
    /// The models' vectors, when the article is `embedded`.
    pub embedding: Option<Embedding>,
}

const ARTICLE_COLUMNS: &str = "id, external_id, source, url, lang, lang_source, model_supports_lang, \
     published_at, received_at, updated_at, title, content_hash, prepared_text, truncated, state";

pub(crate) fn parse_lang(
    table: &'static str,
    s: Option<String>,
) -> Result<Option<Lang>, StoreError> {
    s.map(|s| {
        Lang::parse(&s).map_err(|e| StoreError::Corrupt {
            table,
            reason: e.to_string(),
        })
    })
    .transpose()
}

fn article_from_row(row: &Row<'_>) -> Result<ArticleRecord, StoreError> {
    let id: i64 = row.get(0)?;
    let lang: Option<String> = row.get(4)?;
    let published: i64 = row.get(7)?;
    let received: i64 = row.get(8)?;
    let updated: i64 = row.get(9)?;
    let state: String = row.get(14)?;
    Ok(ArticleRecord {
        id: ArticleId(id as u64),
        external_id: row.get(1)?,
        source: row.get(2)?,
        url: row.get(3)?,
        lang: parse_lang("articles", lang)?,
        lang_source: row.get(5)?,
        model_supports_lang: row.get(6)?,
        published_at: from_millis("articles", published)?,
        received_at: from_millis("articles", received)?,
        updated_at: from_millis("articles", updated)?,
        title: row.get(10)?,
        content_hash: row.get(11)?,
        prepared_text: row.get(12)?,
        truncated: row.get(13)?,
        state: ArticleState::parse(&state)?,
    })
}

pub(crate) fn vector_to_blob(v: &UnitVector) -> Vec<u8> {
    v.as_slice().iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// [`vector_from_blob`] of a nullable column (`hvector`: NULL is no vector).
fn optional_vector_from_blob(blob: Option<Vec<u8>>) -> Result<Option<UnitVector>, StoreError> {
    blob.map(|b| vector_from_blob(&b)).transpose()
}

pub(crate) fn vector_from_blob(blob: &[u8]) -> Result<UnitVector, StoreError> {
    if !blob.len().is_multiple_of(4) {
        return Err(StoreError::Corrupt {
            table: "articles",
            reason: format!("vector blob of {} bytes", blob.len()),
        });
    }
    let raw: Vec<f32> = blob
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    UnitVector::normalize(raw).map_err(|e| StoreError::Corrupt {
        table: "articles",
        reason: e.to_string(),
    })
}

impl Db {
    /// Stores an article by its external id (idempotent); it is durable when this returns.
    pub fn upsert_article(
        &mut self,
        a: &NewArticle,
        now: Timestamp,
    ) -> Result<UpsertOutcome, StoreError> {
        self.transaction(|tx| tx.upsert_article(a, now))
    }

    pub fn article(&self, id: ArticleId) -> Result<Option<ArticleRecord>, StoreError> {
        self.c().query_opt(
            &format!("SELECT {ARTICLE_COLUMNS} FROM articles WHERE id = ?1"),
            values![id.0 as i64],
            article_from_row,
        )
    }

    /// The record of the clustering decision that placed the article (JSON), if any.
    pub fn why(&self, id: ArticleId) -> Result<Option<serde_json::Value>, StoreError> {
        let text: Option<Option<String>> = self.c().query_opt(
            "SELECT why FROM articles WHERE id = ?1",
            values![id.0 as i64],
            |r| r.get(0),
        )?;
        text.flatten()
            .map(|t| {
                serde_json::from_str(&t).map_err(|e| StoreError::Corrupt {
                    table: "articles",
                    reason: format!("why of article {id}: {e}"),
                })
            })
            .transpose()
    }

    /// Every clustered article's external id and decision record, in id order.
    pub fn whys(
        &self,
        mut f: impl FnMut(ArticleId, &str, serde_json::Value) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.c().query_each(
            "SELECT id, external_id, why FROM articles WHERE why IS NOT NULL ORDER BY id",
            values![],
            |row| {
                let id = ArticleId(row.get::<i64>(0)? as u64);
                let external: String = row.get(1)?;
                let text: String = row.get(2)?;
                let value = serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
                    table: "articles",
                    reason: format!("why of article {id}: {e}"),
                })?;
                f(id, &external, value)
            },
        )
    }

    pub fn article_by_external_id(
        &self,
        external_id: &str,
    ) -> Result<Option<ArticleRecord>, StoreError> {
        self.c().query_opt(
            &format!("SELECT {ARTICLE_COLUMNS} FROM articles WHERE external_id = ?1"),
            values![external_id],
            article_from_row,
        )
    }

    /// Articles not yet clustered, oldest first: what a restart must finish.
    pub fn pending_articles(&self) -> Result<Vec<PendingArticle>, StoreError> {
        self.c().query_vec(
            "SELECT id, state, published_at, lang, title, prepared_text, vector, hvector FROM articles
             WHERE state IN ('queued', 'embedded') ORDER BY id",
            values![],
            |r| {
                let state = ArticleState::parse(&r.get::<String>(1)?)?;
                let vector: Option<Vec<u8>> = r.get(6)?;
                Ok(PendingArticle {
                    id: ArticleId(r.get::<i64>(0)? as u64),
                    state,
                    published_at: from_millis("articles", r.get(2)?)?,
                    lang: parse_lang("articles", r.get(3)?)?,
                    title: r.get(4)?,
                    prepared_text: r.get(5)?,
                    embedding: match (state, vector) {
                        (ArticleState::Embedded, Some(b)) => Some(Embedding {
                            vector: vector_from_blob(&b)?,
                            headline: optional_vector_from_blob(r.get(7)?)?,
                        }),
                        _ => None,
                    },
                })
            },
        )
    }

    /// Up to `limit` articles in `state` (`queued` or `embedded`) last written before
    /// `before`, oldest first, with their content hash: what the distributed mode's sweep
    /// announces again when a notice was lost (a publish that failed after the commit,
    /// deliveries run out).
    pub fn unfinished_before(
        &self,
        state: ArticleState,
        before: Timestamp,
        limit: usize,
    ) -> Result<Vec<(ArticleId, String)>, StoreError> {
        self.c().query_vec(
            "SELECT id, content_hash FROM articles
             WHERE state = ?1 AND updated_at < ?2 ORDER BY id LIMIT ?3",
            values![state.as_str(), millis(before), limit as i64],
            |r| Ok((ArticleId(r.get::<i64>(0)? as u64), r.get(1)?)),
        )
    }

    /// The smallest id among articles not yet clustered (`queued` or `embedded`) that
    /// were written at `since` or later: what the distributed mode's clusterer waits for
    /// before deciding a later article, to decide in arrival order.
    pub fn earliest_unfinished_since(
        &self,
        since: Timestamp,
    ) -> Result<Option<ArticleId>, StoreError> {
        let id: Option<i64> = self.c().query_one(
            "SELECT min(id) FROM articles
             WHERE state IN ('queued', 'embedded') AND updated_at >= ?1",
            values![millis(since)],
            |r| r.get(0),
        )?;
        Ok(id.map(|id| ArticleId(id as u64)))
    }

    /// Every stored title (deleted articles' too: an outlet's affix stays
    /// learned), in id (arrival) order.
    pub fn titles(&self, mut f: impl FnMut(&str)) -> Result<(), StoreError> {
        self.c().query_each(
            "SELECT title FROM articles ORDER BY id",
            values![],
            |r| -> Result<(), StoreError> {
                f(&r.get::<String>(0)?);
                Ok(())
            },
        )
    }

    /// Every clustered article with both its vectors, in id (arrival) order:
    /// what the index and the clusterer rebuild themselves from.
    pub fn clustered_articles(
        &self,
        mut f: impl FnMut(ClusteredArticle) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.c().query_each(
            "SELECT id, published_at, lang, title, vector, cvector, prepared_text, crowding, hvector
             FROM articles WHERE state = 'clustered' AND vector IS NOT NULL ORDER BY id",
            values![],
            |r| {
                let vector = vector_from_blob(&r.get::<Vec<u8>>(4)?)?;
                let centred = match r.get::<Option<Vec<u8>>>(5)? {
                    Some(b) => vector_from_blob(&b)?,
                    None => vector.clone(),
                };
                f(ClusteredArticle {
                    id: ArticleId(r.get::<i64>(0)? as u64),
                    published_at: from_millis("articles", r.get(1)?)?,
                    lang: parse_lang("articles", r.get(2)?)?,
                    title: r.get(3)?,
                    prepared_text: r.get(6)?,
                    vector,
                    centred,
                    headline: optional_vector_from_blob(r.get(8)?)?,
                    crowding: r.get::<Option<f64>>(7)?.map(|c| c as f32),
                })
            },
        )
    }

    /// The model's vector and the clusterer's centred vector of one article.
    pub fn vectors(&self, id: ArticleId) -> Result<Option<(UnitVector, UnitVector)>, StoreError> {
        match self.vector_beside(id, "SELECT vector, cvector FROM articles WHERE id = ?1")? {
            Some((v, c)) => {
                let v = vector_from_blob(&v)?;
                let c = match c {
                    Some(c) => vector_from_blob(&c)?,
                    None => v.clone(),
                };
                Ok(Some((v, c)))
            }
            None => Ok(None),
        }
    }

    /// The models' vectors of one article, as an embed worker stored them.
    pub fn embedding(&self, id: ArticleId) -> Result<Option<Embedding>, StoreError> {
        match self.vector_beside(id, "SELECT vector, hvector FROM articles WHERE id = ?1")? {
            Some((v, h)) => Ok(Some(Embedding {
                vector: vector_from_blob(&v)?,
                headline: optional_vector_from_blob(h)?,
            })),
            None => Ok(None),
        }
    }

    /// One article's model vector blob and the nullable blob beside it, as `sql`
    /// (`SELECT vector, <column> FROM articles WHERE id = ?1`) reads them; `None`
    /// where the article or its vector is missing.
    fn vector_beside(
        &self,
        id: ArticleId,
        sql: &'static str,
    ) -> Result<Option<VectorBeside>, StoreError> {
        type Blobs = (Option<Vec<u8>>, Option<Vec<u8>>);
        let row: Option<Blobs> = self
            .c()
            .query_opt(sql, values![id.0 as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(row.and_then(|(v, other)| v.map(|v| (v, other))))
    }

    /// Counts of articles by state.
    pub fn article_counts(&self) -> Result<Vec<(ArticleState, u64)>, StoreError> {
        self.c().query_vec(
            "SELECT state, count(*) FROM articles GROUP BY state",
            values![],
            |r| {
                Ok((
                    ArticleState::parse(&r.get::<String>(0)?)?,
                    r.get::<i64>(1)? as u64,
                ))
            },
        )
    }
}

impl Tx<'_> {
    pub fn upsert_article(
        &self,
        a: &NewArticle,
        now: Timestamp,
    ) -> Result<UpsertOutcome, StoreError> {
        // Twice at most: on PostgreSQL another writer may insert the same external id
        // between the look-up and the insert; the second look-up finds (and locks) it.
        for _ in 0..2 {
            if let Some(outcome) = self.try_upsert_article(a, now)? {
                return Ok(outcome);
            }
        }
        Err(StoreError::NotFound(format!(
            "article {:?} (inserted and gone meanwhile)",
            a.external_id
        )))
    }

    /// `None`: another transaction inserted the external id after the look-up.
    fn try_upsert_article(
        &self,
        a: &NewArticle,
        now: Timestamp,
    ) -> Result<Option<UpsertOutcome>, StoreError> {
        let conn = self.conn;
        let existing: Option<(i64, String, String)> = conn.query_opt(
            &format!(
                "SELECT id, content_hash, state FROM articles WHERE external_id = ?1{}",
                conn.dialect().for_update()
            ),
            values![&a.external_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let lang = a.lang.map(Lang::as_str);
        match existing {
            Some((id, hash, state)) if hash == a.content_hash && state != "deleted" => Ok(Some(
                UpsertOutcome::Unchanged(ArticleId(id as u64), ArticleState::parse(&state)?),
            )),
            Some((id, _, _)) => {
                conn.execute(
                    "UPDATE articles SET source = ?2, url = ?3, lang = ?4, lang_source = ?5,
                        model_supports_lang = ?6, published_at = ?7, updated_at = ?8, title = ?9,
                        content_hash = ?10, prepared_text = ?11, truncated = ?12,
                        state = 'queued'
                     WHERE id = ?1",
                    values![
                        id,
                        &a.source,
                        &a.url,
                        lang,
                        a.lang_source,
                        a.model_supports_lang,
                        millis(a.published_at),
                        millis(now),
                        &a.title,
                        &a.content_hash,
                        &a.prepared_text,
                        a.truncated
                    ],
                )?;
                Ok(Some(UpsertOutcome::Updated(ArticleId(id as u64))))
            }
            None => {
                let id: Option<i64> = conn.query_opt(
                    "INSERT INTO articles (external_id, source, url, lang, lang_source,
                        model_supports_lang, published_at, received_at, updated_at, title,
                        content_hash, prepared_text, truncated, state)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?10, ?11, ?12, 'queued')
                     ON CONFLICT (external_id) DO NOTHING
                     RETURNING id",
                    values![
                        &a.external_id,
                        &a.source,
                        &a.url,
                        lang,
                        a.lang_source,
                        a.model_supports_lang,
                        millis(a.published_at),
                        millis(now),
                        &a.title,
                        &a.content_hash,
                        &a.prepared_text,
                        a.truncated
                    ],
                    |r| r.get(0),
                )?;
                Ok(id.map(|id| UpsertOutcome::Inserted(ArticleId(id as u64))))
            }
        }
    }

    /// Stores the vectors of an article being clustered (the models' and the
    /// centred one), unless its content changed meanwhile (then `false`: a newer
    /// version is queued).
    pub fn set_vectors(
        &self,
        id: ArticleId,
        expected_hash: &str,
        model: &str,
        embedding: &Embedding,
        centred: &UnitVector,
    ) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "UPDATE articles SET vector = ?1, cvector = ?2, model = ?3, hvector = ?4, state = 'embedded'
             WHERE id = ?5 AND content_hash = ?6 AND state IN ('queued', 'embedded', 'clustered')",
            values![
                &vector_to_blob(&embedding.vector),
                &vector_to_blob(centred),
                model,
                &embedding.headline.as_ref().map(vector_to_blob),
                id.0 as i64,
                expected_hash
            ],
        )?;
        Ok(n == 1)
    }

    /// Stores the model's vector of a queued article (an embed worker of the distributed
    /// mode), unless its content changed meanwhile or it is past `queued` (then `false`:
    /// a newer version is queued, or another worker got there first). The clusterer adds
    /// the centred vector when it places the article.
    pub fn set_embedding(
        &self,
        id: ArticleId,
        expected_hash: &str,
        model: &str,
        embedding: &Embedding,
    ) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            "UPDATE articles SET vector = ?1, cvector = NULL, model = ?2, hvector = ?3, state = 'embedded'
             WHERE id = ?4 AND content_hash = ?5 AND state = 'queued'",
            values![
                &vector_to_blob(&embedding.vector),
                model,
                &embedding.headline.as_ref().map(vector_to_blob),
                id.0 as i64,
                expected_hash
            ],
        )?;
        Ok(n == 1)
    }

    /// Keeps the headline model's vector of an article's title, computed after it
    /// was placed (when a later decision first needed it).
    pub fn set_headline(&self, id: ArticleId, headline: &UnitVector) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE articles SET hvector = ?2 WHERE id = ?1",
            values![id.0 as i64, &vector_to_blob(headline)],
        )?;
        Ok(())
    }

    /// Records how crowded an article's neighbourhood is, for an article placed
    /// before the store kept it (measured at the clusterer's start).
    pub fn set_crowding(&self, id: ArticleId, crowding: f32) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE articles SET crowding = ?2 WHERE id = ?1",
            values![id.0 as i64, f64::from(crowding)],
        )?;
        Ok(())
    }

    /// Records why the clusterer placed the article (JSON) and how crowded its
    /// neighbourhood was then ([`ClusteredArticle::crowding`]).
    pub fn set_why(
        &self,
        id: ArticleId,
        why: &serde_json::Value,
        crowding: f32,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE articles SET why = ?2, crowding = ?3 WHERE id = ?1",
            values![id.0 as i64, &why.to_string(), f64::from(crowding)],
        )?;
        Ok(())
    }

    pub fn set_article_state(&self, id: ArticleId, state: ArticleState) -> Result<(), StoreError> {
        let n = self.conn.execute(
            "UPDATE articles SET state = ?2 WHERE id = ?1",
            values![id.0 as i64, state.as_str()],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(id.to_string()));
        }
        Ok(())
    }
}
