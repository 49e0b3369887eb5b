//! Nearest neighbours in any language: `/v1/search` (a text), `/v1/articles/{id}/similar`
//! (a stored article). Both ask the pipeline's query lanes, never the ingest queues.

use axum::{Json, extract::State};
use concord_core::{ArticleId, Lang};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{
    AppState,
    input::{Params, PathId, page_size, parse_lang, schema},
    problem::{Problem, responses as r},
};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CountQuery {
    /// How many to return, 1 to 200 (default 10).
    #[param(minimum = 1, maximum = 200)]
    pub k: Option<usize>,
}

impl CountQuery {
    pub(crate) fn k(&self) -> Result<usize, Problem> {
        page_size(self.k, 10, "k")
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// Free text in any language; it must hold a letter (text that is only punctuation,
    /// digits or page furniture is a 422).
    #[param(pattern = r"\p{L}")]
    pub q: String,
    /// The query's language, if known (helps centring); detected otherwise.
    #[param(schema_with = schema::lang)]
    pub lang: Option<String>,
    /// How many hits, 1 to 200 (default 10).
    #[param(minimum = 1, maximum = 200)]
    pub k: Option<usize>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchHitOut {
    pub article: String,
    pub title: String,
    #[schema(value_type = Option<String>)]
    pub lang: Option<Lang>,
    #[schema(value_type = String, format = DateTime)]
    pub published_at: Timestamp,
    pub similarity: f32,
    pub cluster: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchOut {
    pub hits: Vec<SearchHitOut>,
    /// The distinct clusters of the hits, best first.
    pub clusters: Vec<String>,
}

/// The articles nearest to the query text `q` (any language); text the preparation
/// refuses is a 422 on `q`.
pub(crate) async fn search_q(
    state: &AppState,
    q: &str,
    lang: Option<Lang>,
    k: usize,
) -> Result<Vec<concord_pipeline::SearchHit>, Problem> {
    state
        .pipeline()
        .search_text(q, lang, k)
        .await
        .map_err(|e| match e {
            concord_pipeline::IngestError::Text(reason) => {
                Problem::invalid("q", reason.to_string())
            }
            other => Problem::from(other),
        })
}

/// One search hit as the API shows it, or `None` when the article is gone.
fn hit_out(
    db: &concord_store::Db,
    hit: &concord_pipeline::SearchHit,
) -> Result<Option<SearchHitOut>, Problem> {
    Ok(db.article(hit.article)?.map(|a| SearchHitOut {
        article: a.id.to_string(),
        title: a.title,
        lang: a.lang,
        published_at: a.published_at,
        similarity: hit.similarity,
        cluster: hit.cluster.map(|c| c.to_string()),
    }))
}

/// `GET /v1/search?q=...`: nearest articles to a text, and their clusters.
#[utoipa::path(
    get, path = "/v1/search", tag = "search",
    params(SearchQuery),
    responses(
        (status = 200, description = "nearest articles and their clusters", body = SearchOut),
        r::Unauthorized, r::Invalid, r::Busy, r::ShuttingDown
    )
)]
pub async fn search(
    State(state): State<AppState>,
    Params(q): Params<SearchQuery>,
) -> Result<Json<SearchOut>, Problem> {
    if q.q.trim().is_empty() {
        return Err(Problem::invalid("q", "must not be empty"));
    }
    let k = page_size(q.k, 10, "k")?;
    let lang = parse_lang(q.lang.as_deref(), "lang")?;
    let hits = search_q(&state, &q.q, lang, k).await?;
    state
        .read(move |db| {
            let mut out = SearchOut {
                hits: Vec::with_capacity(hits.len()),
                clusters: Vec::new(),
            };
            for hit in &hits {
                let Some(found) = hit_out(db, hit)? else {
                    continue;
                };
                if let Some(c) = &found.cluster
                    && !out.clusters.contains(c)
                {
                    out.clusters.push(c.clone());
                }
                out.hits.push(found);
            }
            Ok(Json(out))
        })
        .await
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SimilarOut {
    pub article: String,
    pub hits: Vec<SearchHitOut>,
}

/// `GET /v1/articles/{id}/similar?k=`: the articles nearest to a stored one, any language.
#[utoipa::path(
    get, path = "/v1/articles/{id}/similar", tag = "search",
    params(PathId<ArticleId>, CountQuery),
    responses(
        (status = 200, description = "nearest articles to a stored one", body = SimilarOut),
        r::Unauthorized, r::NotFound, r::Invalid, r::Busy, r::ShuttingDown
    )
)]
pub async fn similar(
    State(state): State<AppState>,
    PathId(id): PathId<ArticleId>,
    Params(q): Params<CountQuery>,
) -> Result<Json<SimilarOut>, Problem> {
    let k = q.k()?;
    let hits = state.pipeline().similar_to(id, k).await?;
    state
        .read(move |db| {
            let mut out = Vec::with_capacity(hits.len());
            for hit in &hits {
                out.extend(hit_out(db, hit)?);
            }
            Ok(Json(SimilarOut {
                article: id.to_string(),
                hits: out,
            }))
        })
        .await
}
