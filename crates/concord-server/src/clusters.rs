//! `/v1/clusters`: the filtered, paged list, one cluster with its members and timeline,
//! and its related clusters. A merged id resolves to its survivor everywhere
//! ([`resolve`]); every cluster is summarised the same way ([`ClusterSummaryOut`]).

use axum::{Json, extract::State};
use concord_core::{ClusterId, Lang};
use concord_store::ClusterRecord;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{
    AppState,
    input::{Params, PathId, page_size, parse_lang, schema},
    problem::{Problem, responses as r},
    search::{CountQuery, search_q},
};

/// The active cluster `id` resolves to (itself, or the survivor of the merges it went
/// into); 404 when there is none.
pub(crate) fn resolve(db: &concord_store::Db, id: ClusterId) -> Result<ClusterRecord, Problem> {
    db.resolve_cluster(id)?
        .ok_or_else(|| Problem::not_found(format!("cluster {id} not found")))
}

/// The title of the article that labels a cluster, if any.
fn label_of(db: &concord_store::Db, c: &ClusterRecord) -> Result<Option<String>, Problem> {
    Ok(match c.label_article {
        Some(a) => db.article(a)?.map(|a| a.title),
        None => None,
    })
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// RFC 3339: clusters with a member published at or after this.
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<Timestamp>,
    /// RFC 3339: clusters with a member published at or before this.
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<Timestamp>,
    /// Only clusters with a member in this language.
    #[param(schema_with = schema::lang)]
    pub lang: Option<String>,
    /// Only clusters with at least this many members.
    #[serde(default)]
    #[param(schema_with = schema::min_size)]
    pub min_size: u64,
    /// Only clusters with members in at least this many languages.
    #[serde(default)]
    #[param(schema_with = schema::min_languages)]
    pub min_languages: u64,
    /// `recent` (newest activity first, the default) or `size` (largest first).
    #[param(schema_with = schema::sort)]
    pub sort: Option<String>,
    /// Clusters per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page, listed with the same `sort` (else 422).
    #[param(pattern = "^(recent|size):-?[0-9]{1,18}:[0-9]{1,19}$")]
    pub cursor: Option<String>,
    /// Free text in any language: only clusters holding one of the articles nearest to it
    /// (as `/v1/search` finds them: the 200 nearest, those within 0.25 of the best match).
    /// It must hold a letter, as `/v1/search`'s `q`.
    #[param(pattern = r"\p{L}")]
    pub q: Option<String>,
}

/// Articles a list's text query looks at, and how far below the best match a hit may
/// score and still count (centred cosines; cross-lingual matches score lower than
/// same-language ones, so the bar is relative, not absolute).
const LIST_QUERY_HITS: usize = 200;
const LIST_QUERY_MARGIN: f32 = 0.25;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClusterSummaryOut {
    pub id: String,
    pub size: u64,
    #[schema(value_type = Vec<String>)]
    pub languages: Vec<Lang>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub first_seen: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_seen: Option<Timestamp>,
    pub label: Option<String>,
}

impl ClusterSummaryOut {
    /// What every listing shows of a cluster.
    pub(crate) fn new(c: ClusterRecord, label: Option<String>) -> Self {
        Self {
            id: c.id.to_string(),
            size: c.size,
            languages: c.languages,
            first_seen: c.first_published,
            last_seen: c.last_published,
            label,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClusterPage {
    pub clusters: Vec<ClusterSummaryOut>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

fn parse_cursor(raw: &str, sort: &str) -> Result<(i64, u64), Problem> {
    let bad = || Problem::invalid("cursor", "not a cursor this listing returned");
    let (s, rest) = raw.split_once(':').ok_or_else(bad)?;
    if s != sort {
        return Err(bad());
    }
    let (key, id) = rest.split_once(':').ok_or_else(bad)?;
    // Exactly the spec's pattern: no sign but the key's minus, at most 18 and 19 digits
    // (both fit their types, so the parses below cannot fail on a well-formed cursor).
    let digits =
        |s: &str, max: usize| (1..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(key.strip_prefix('-').unwrap_or(key), 18) || !digits(id, 19) {
        return Err(bad());
    }
    Ok((
        key.parse().map_err(|_| bad())?,
        id.parse().map_err(|_| bad())?,
    ))
}

/// `GET /v1/clusters`: filtered, sorted, keyset-paginated.
#[utoipa::path(
    get, path = "/v1/clusters", tag = "clusters",
    params(ListQuery),
    responses(
        (status = 200, description = "one page of clusters", body = ClusterPage),
        r::Unauthorized, r::Invalid, r::Busy, r::ShuttingDown
    )
)]
pub async fn list_clusters(
    State(state): State<AppState>,
    Params(q): Params<ListQuery>,
) -> Result<Json<ClusterPage>, Problem> {
    let sort = q.sort.as_deref().unwrap_or("recent");
    let order = match sort {
        "recent" => concord_store::ClusterOrder::Recent,
        "size" => concord_store::ClusterOrder::Size,
        other => {
            return Err(Problem::invalid(
                "sort",
                format!("{other:?}: expected recent or size"),
            ));
        }
    };
    let lang = parse_lang(q.lang.as_deref(), "lang")?;
    let limit = page_size(q.limit, 50, "limit")?;
    let after = q
        .cursor
        .as_deref()
        .map(|c| parse_cursor(c, sort))
        .transpose()?;
    let within = match q.q.as_deref().map(str::trim) {
        None => None,
        Some("") => return Err(Problem::invalid("q", "must not be empty")),
        Some(text) => {
            let hits = search_q(&state, text, lang, LIST_QUERY_HITS).await?;
            let best = hits.iter().map(|h| h.similarity).fold(f32::MIN, f32::max);
            let mut ids: Vec<ClusterId> = hits
                .iter()
                .filter(|h| h.similarity >= best - LIST_QUERY_MARGIN)
                .filter_map(|h| h.cluster)
                .collect();
            ids.sort();
            ids.dedup();
            Some(ids)
        }
    };
    let query = concord_store::ClusterQuery {
        from: q.from,
        to: q.to,
        lang,
        min_size: q.min_size,
        min_languages: q.min_languages,
        order,
        after,
        limit: limit + 1,
        within,
    };
    let sort = sort.to_owned();
    state
        .read(move |db| {
            let mut rows = db.list_clusters(&query)?;
            let more = rows.len() > limit;
            rows.truncate(limit);
            let next_cursor = more
                .then(|| {
                    rows.last()
                        .map(|(c, _, key)| format!("{sort}:{key}:{}", c.id.0))
                })
                .flatten();
            Ok(Json(ClusterPage {
                clusters: rows
                    .into_iter()
                    .map(|(c, label, _)| ClusterSummaryOut::new(c, label))
                    .collect(),
                next_cursor,
            }))
        })
        .await
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MemberOut {
    pub id: String,
    /// The caller's id of the article.
    pub external_id: String,
    pub title: String,
    #[schema(value_type = Option<String>)]
    pub lang: Option<Lang>,
    #[schema(value_type = String, format = DateTime)]
    pub published_at: Timestamp,
    pub similarity: f32,
    pub url: Option<String>,
    pub source: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ClusterOut {
    #[serde(flatten)]
    pub summary: ClusterSummaryOut,
    /// Set when the requested id was merged: it resolves to this cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested: Option<String>,
    pub members: Vec<MemberOut>,
    /// Arrivals per UTC day of publication, oldest first.
    pub timeline: Vec<TimelineDay>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TimelineDay {
    #[schema(value_type = String, format = Date)]
    pub date: jiff::civil::Date,
    pub articles: usize,
    #[schema(value_type = Vec<String>)]
    pub languages: Vec<Lang>,
}

fn timeline(members: &[MemberOut]) -> Vec<TimelineDay> {
    let mut days: Vec<TimelineDay> = Vec::new();
    for m in members {
        let date = jiff::tz::TimeZone::UTC.to_datetime(m.published_at).date();
        if days.last().is_none_or(|d| d.date != date) {
            days.push(TimelineDay {
                date,
                articles: 0,
                languages: Vec::new(),
            });
        }
        if let Some(day) = days.last_mut() {
            day.articles += 1;
            if let Some(l) = m.lang
                && !day.languages.contains(&l)
            {
                day.languages.push(l);
                day.languages.sort_by(|a, b| a.as_str().cmp(b.as_str()));
            }
        }
    }
    days
}

/// `GET /v1/clusters/{id}`: a merged id answers with its survivor.
#[utoipa::path(
    get, path = "/v1/clusters/{id}", tag = "clusters",
    params(PathId<ClusterId>),
    responses(
        (status = 200, description = "the cluster (a merged id answers with its survivor and `requested`)", body = ClusterOut),
        r::Unauthorized, r::NotFound, r::Invalid
    )
)]
pub async fn get_cluster(
    State(state): State<AppState>,
    PathId(id): PathId<ClusterId>,
) -> Result<Json<ClusterOut>, Problem> {
    state
        .read(move |db| {
            let c = resolve(db, id)?;
            let mut members = Vec::new();
            let mut label = None;
            for m in db.members(c.id)? {
                if let Some(a) = db.article(m.article)? {
                    if c.label_article == Some(a.id) {
                        label = Some(a.title.clone());
                    }
                    members.push(MemberOut {
                        id: a.id.to_string(),
                        external_id: a.external_id,
                        title: a.title,
                        lang: a.lang,
                        published_at: a.published_at,
                        similarity: m.similarity,
                        url: a.url,
                        source: a.source,
                    });
                }
            }
            members.sort_by_key(|m| m.published_at);
            let timeline = timeline(&members);
            Ok(Json(ClusterOut {
                requested: (c.id != id).then(|| id.to_string()),
                summary: ClusterSummaryOut::new(c, label),
                members,
                timeline,
            }))
        })
        .await
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RelatedOut {
    #[serde(flatten)]
    pub summary: ClusterSummaryOut,
    /// Cosine of this cluster's closest member to the asked cluster's centroid.
    pub similarity: f32,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RelatedPage {
    /// The cluster asked about (a merged id resolves to its survivor).
    pub cluster: String,
    pub related: Vec<RelatedOut>,
}

/// `GET /v1/clusters/{id}/related?k=`: other clusters nearest to this one's centroid
/// (same topic, often another event), best first.
#[utoipa::path(
    get, path = "/v1/clusters/{id}/related", tag = "clusters",
    params(PathId<ClusterId>, CountQuery),
    responses(
        (status = 200, description = "nearest other clusters", body = RelatedPage),
        r::Unauthorized, r::NotFound, r::Invalid, r::Busy, r::ShuttingDown
    )
)]
pub async fn related(
    State(state): State<AppState>,
    PathId(id): PathId<ClusterId>,
    Params(q): Params<CountQuery>,
) -> Result<Json<RelatedPage>, Problem> {
    let k = q.k()?;
    let id = state.read(move |db| Ok(resolve(db, id)?.id)).await?;
    let near = state.pipeline().related(id, k).await?;
    state
        .read(move |db| {
            let mut related = Vec::with_capacity(near.len());
            for (c, similarity) in near {
                let Some(r) = db.cluster(c)? else { continue };
                let label = label_of(db, &r)?;
                related.push(RelatedOut {
                    summary: ClusterSummaryOut::new(r, label),
                    similarity,
                });
            }
            Ok(Json(RelatedPage {
                cluster: id.to_string(),
                related,
            }))
        })
        .await
}
