//! `/v1/articles`: submit one or a batch, read, delete; and [`parse_article`], the one
//! reading of an article body (the API, the inbound webhook, the fuzz target and the
//! property tests all call it).

use axum::{
    Json,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use concord_cluster::Outcome;
use concord_core::{ArticleId, Lang};
use concord_pipeline::ArticleSubmission;
use concord_store::UpsertOutcome;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::{
    AppState,
    input::{JsonBody, Params, PathId, RawBody, field_path, parse, parse_lang, schema},
    problem::{Problem, ProblemBody, responses as r},
};

/// Longest external id accepted.
const MAX_EXTERNAL_ID: usize = 256;

/// An article as a feed submits it. NUL characters (U+0000) are removed from every string
/// field before anything else (the answer's `external_id` shows the id as stored).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArticleIn {
    /// The caller's id: resubmitting it with the same content is a no-op, with new content an
    /// update. Surrounding white space is trimmed; what is left must be 1 to 256 characters.
    #[schema(min_length = 1, max_length = 256, pattern = r"[^\s\x00]")]
    pub external_id: String,
    /// Must hold a letter: a title that is only punctuation, digits or page furniture (and
    /// no body to make up for it) is a 422.
    #[schema(pattern = r"\p{L}")]
    pub title: String,
    #[serde(default)]
    pub body: String,
    /// ISO 639-1/639-3 or BCP-47; detected when absent.
    #[schema(schema_with = schema::lang_or_null)]
    pub lang: Option<String>,
    /// RFC 3339, from 1900-01-01 to 24 hours after the server's clock (else 422).
    #[schema(value_type = String, format = DateTime)]
    pub published_at: Timestamp,
    pub url: Option<String>,
    pub source: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SubmitQuery {
    /// Answer only once the article is clustered.
    #[serde(default)]
    pub wait: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ArticleAccepted {
    pub id: String,
    pub external_id: String,
    /// `queued`, `unchanged` or `clustered`.
    pub status: &'static str,
    #[schema(value_type = Option<String>)]
    pub lang: Option<Lang>,
    #[schema(value_type = String)]
    pub lang_source: concord_text::LangSource,
    pub truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub similarity: Option<f32>,
}

/// What ingest answers for one stored article.
pub(crate) fn accepted(
    submitted: &concord_pipeline::Submitted,
    external_id: String,
) -> ArticleAccepted {
    ArticleAccepted {
        id: submitted.id.to_string(),
        external_id,
        status: match submitted.outcome {
            UpsertOutcome::Unchanged(..) => "unchanged",
            UpsertOutcome::Inserted(_) | UpsertOutcome::Updated(_) => "queued",
        },
        lang: submitted.prepared.lang,
        lang_source: submitted.prepared.lang_source,
        truncated: submitted.prepared.truncated,
        cluster: None,
        similarity: None,
    }
}

/// Earliest `published_at` accepted: no news feed predates it, and the usual "no date"
/// sentinels (`0001-01-01`, `-infinity` mapped to a minimum) fall before it.
const EARLIEST_PUBLISHED: Timestamp = Timestamp::constant(-2_208_988_800, 0); // 1900-01-01T00:00:00Z

/// How far past the server's clock `published_at` may be: feeds with a wrong zone or a
/// fast clock are hours ahead, never days.
const MAX_FUTURE: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

/// One article as `POST /v1/articles` and the inbound webhook read it: the JSON body
/// parsed, then validated against the clock `now`. Never panics; every refusal is a
/// [`Problem`] (400 for malformed JSON, 422 with the offending field otherwise).
pub fn parse_article(bytes: &[u8], now: Timestamp) -> Result<ArticleSubmission, Problem> {
    validate(parse::<ArticleIn>(bytes)?, now)
}

/// `published_at` refused when outside [1900-01-01, now + 24 h]: a date far in the
/// future or the past is a sentinel or a bug, and clustering by time would group every
/// article carrying it (or keep one on top of "recent" forever).
fn check_published_at(t: Timestamp, now: Timestamp) -> Result<(), Problem> {
    if t < EARLIEST_PUBLISHED {
        return Err(Problem::invalid(
            "published_at",
            format!("{t} is before {EARLIEST_PUBLISHED}: not a publication date"),
        ));
    }
    let latest = now.checked_add(MAX_FUTURE).unwrap_or(Timestamp::MAX);
    if t > latest {
        return Err(Problem::invalid(
            "published_at",
            format!(
                "{t} is more than {} hours in the future",
                MAX_FUTURE.as_hours()
            ),
        ));
    }
    Ok(())
}

pub(crate) fn validate(a: ArticleIn, now: Timestamp) -> Result<ArticleSubmission, Problem> {
    // The pipeline's one NUL rule first, so the checks below see the id as it is stored.
    let mut submission = ArticleSubmission {
        external_id: a.external_id,
        source: a.source,
        url: a.url,
        lang: None,
        published_at: a.published_at,
        title: a.title,
        body: a.body,
    }
    .without_nul();
    submission.external_id = submission.external_id.trim().to_owned();
    if submission.external_id.is_empty() {
        return Err(Problem::invalid("external_id", "must not be empty"));
    }
    if submission.external_id.chars().count() > MAX_EXTERNAL_ID {
        return Err(Problem::invalid(
            "external_id",
            format!("must be at most {MAX_EXTERNAL_ID} characters"),
        ));
    }
    submission.lang = parse_lang(a.lang.as_deref(), "lang")?;
    check_published_at(submission.published_at, now)?;
    Ok(submission)
}

/// `POST /v1/articles`: durable before the answer; 202 queued, 200 unchanged or (with `?wait=true`) clustered.
#[utoipa::path(
    post, path = "/v1/articles", tag = "articles",
    params(SubmitQuery),
    request_body = ArticleIn,
    responses(
        (status = 202, description = "stored and queued for clustering", body = ArticleAccepted),
        (status = 200, description = "unchanged (same external id and content), or clustered with `?wait=true`", body = ArticleAccepted),
        r::BadJson, r::Unauthorized, r::Forbidden, r::TooLarge, r::Invalid, r::Busy, r::ShuttingDown
    )
)]
pub async fn submit_article(
    State(state): State<AppState>,
    Params(query): Params<SubmitQuery>,
    RawBody(body): RawBody,
) -> Result<Response, Problem> {
    let submission = parse_article(&body, Timestamp::now())?;
    let external_id = submission.external_id.clone();
    let submitted = state.pipeline().submit(submission, query.wait).await?;
    let mut out = accepted(&submitted, external_id);
    let changed = !matches!(submitted.outcome, UpsertOutcome::Unchanged(..));
    let status = match (submitted.clustered, query.wait) {
        (Some(rx), true) => {
            let reply = rx
                .await
                .map_err(|_| Problem::from(concord_pipeline::IngestError::ShuttingDown))??;
            if let Outcome::Assigned(a) = reply {
                out.status = "clustered";
                out.cluster = Some(a.cluster.to_string());
                out.similarity = Some(a.similarity);
            }
            StatusCode::OK
        }
        // Queued for clustering: accepted, not yet done.
        (_, false) if changed => StatusCode::ACCEPTED,
        (_, _) => StatusCode::OK,
    };
    Ok((status, Json(out)).into_response())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ArticleOut {
    pub id: String,
    pub external_id: String,
    pub title: String,
    #[schema(value_type = Option<String>)]
    pub lang: Option<Lang>,
    pub lang_source: String,
    pub model_supports_lang: bool,
    #[schema(value_type = String, format = DateTime)]
    pub published_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub received_at: Timestamp,
    #[schema(value_type = String)]
    pub state: concord_store::ArticleState,
    pub truncated: bool,
    pub url: Option<String>,
    pub source: Option<String>,
    pub cluster: Option<String>,
    /// Why the clusterer placed the article: the rule (`boosted`, `calibrated`,
    /// `threshold`, `plain`, or `pinned` by an analyst), the bar a candidate had to
    /// reach, and the best candidate clusters (at most 5, best first, the joined one
    /// flagged) with their score (for `boosted` and `calibrated`, the probability of
    /// the same event), best-linked member and the features the rule read. Absent
    /// until the article is clustered.
    #[schema(value_type = Option<Object>)]
    pub why: Option<serde_json::Value>,
}

/// `GET /v1/articles/{id}`.
#[utoipa::path(
    get, path = "/v1/articles/{id}", tag = "articles",
    params(PathId<ArticleId>),
    responses(
        (status = 200, description = "the article, its state and cluster", body = ArticleOut),
        r::Unauthorized, r::NotFound, r::Invalid
    )
)]
pub async fn get_article(
    State(state): State<AppState>,
    PathId(id): PathId<ArticleId>,
) -> Result<Json<ArticleOut>, Problem> {
    state
        .read(move |db| {
            let a = db
                .article(id)?
                .ok_or_else(|| Problem::not_found(format!("article {id} not found")))?;
            let cluster = db.membership(id)?.map(|m| m.cluster.to_string());
            let why = db.why(id)?;
            Ok(Json(ArticleOut {
                id: a.id.to_string(),
                external_id: a.external_id,
                title: a.title,
                lang: a.lang,
                lang_source: a.lang_source,
                model_supports_lang: a.model_supports_lang,
                published_at: a.published_at,
                received_at: a.received_at,
                state: a.state,
                truncated: a.truncated,
                url: a.url,
                source: a.source,
                cluster,
                why,
            }))
        })
        .await
}

/// Most articles one batch may carry.
pub const MAX_BATCH: usize = 500;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchIn {
    /// At most 500 (more is a 413); each is read as an `ArticleIn` on its own and refused
    /// in its result, not here, when it is not one.
    pub articles: Vec<serde_json::Value>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum BatchItem {
    Accepted(ArticleAccepted),
    Refused {
        problem: Box<crate::problem::ProblemBody>,
    },
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchOut {
    pub accepted: usize,
    pub refused: usize,
    /// One result per submitted article, in order.
    pub results: Vec<BatchItem>,
}

/// `POST /v1/articles/batch`: up to [`MAX_BATCH`] articles, each accepted or refused on its own.
#[utoipa::path(
    post, path = "/v1/articles/batch", tag = "articles",
    request_body = BatchIn,
    responses(
        (status = 202, description = "every article stored (queued or unchanged)", body = BatchOut),
        (status = 200, description = "some articles refused: see each result's problem", body = BatchOut),
        r::BadJson, r::Unauthorized, r::Forbidden,
        (status = 413, description = "body or batch too large", body = ProblemBody, content_type = "application/problem+json"),
        r::Invalid
    )
)]
pub async fn submit_batch(
    State(state): State<AppState>,
    JsonBody(batch): JsonBody<BatchIn>,
) -> Result<Response, Problem> {
    if batch.articles.len() > MAX_BATCH {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            "Batch too large",
            format!(
                "{} articles; at most {MAX_BATCH} per batch",
                batch.articles.len()
            ),
        )
        .with_field("articles"));
    }
    let now = Timestamp::now();
    let mut out = BatchOut {
        accepted: 0,
        refused: 0,
        results: Vec::with_capacity(batch.articles.len()),
    };
    for (i, value) in batch.articles.into_iter().enumerate() {
        let item = async {
            if value.is_array() {
                // serde would read a struct from an array of its fields in order.
                return Err(Problem::invalid(
                    format!("articles[{i}]"),
                    "expected an article object, found an array",
                ));
            }
            let article: ArticleIn = serde_path_to_error::deserialize(value).map_err(|e| {
                let path = e.path().to_string();
                let message = e.into_inner().to_string();
                let field = field_path(&path, &message);
                Problem::invalid(format!("articles[{i}].{field}"), message)
            })?;
            let submission = validate(article, now).map_err(|p| {
                let field = p.body().field.clone().unwrap_or_default();
                Problem::invalid(format!("articles[{i}].{field}"), p.body().detail.clone())
            })?;
            let external_id = submission.external_id.clone();
            let submitted = state.pipeline().submit(submission, false).await?;
            Ok::<_, Problem>(accepted(&submitted, external_id))
        }
        .await;
        match item {
            Ok(accepted) => {
                out.accepted += 1;
                out.results.push(BatchItem::Accepted(accepted));
            }
            Err(problem) => {
                out.refused += 1;
                out.results.push(BatchItem::Refused {
                    problem: Box::new(problem.body().clone()),
                });
            }
        }
    }
    // 202 when every item was accepted (queued or unchanged); 200 when some were
    // refused: the per-item results say which, and why.
    let status = if out.refused == 0 {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(out)).into_response())
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Deleted {
    pub id: String,
    /// The cluster the article left, if it was clustered.
    pub left_cluster: Option<String>,
}

/// `DELETE /v1/articles/{id}`: out of its cluster (which updates) and out of the index.
#[utoipa::path(
    delete, path = "/v1/articles/{id}", tag = "articles",
    params(PathId<ArticleId>),
    responses(
        (status = 200, description = "deleted; the cluster it left updated", body = Deleted),
        r::Unauthorized, r::Forbidden, r::NotFound, r::Invalid, r::ShuttingDown
    )
)]
pub async fn delete_article(
    State(state): State<AppState>,
    PathId(id): PathId<ArticleId>,
) -> Result<Json<Deleted>, Problem> {
    let exists = state.read(move |db| Ok(db.article(id)?)).await?;
    match exists {
        Some(a) if a.state != concord_store::ArticleState::Deleted => {}
        _ => return Err(Problem::not_found(format!("article {id} not found"))),
    }
    let left = state.pipeline().delete(id).await?;
    Ok(Json(Deleted {
        id: id.to_string(),
        left_cluster: left.map(|c| c.to_string()),
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const NOW: Timestamp = Timestamp::constant(1_767_225_600, 0); // 2026-01-01T00:00:00Z

    fn article(published_at: &str) -> String {
        serde_json::json!({
            "external_id": "a", "title": "Titre", "published_at": published_at
        })
        .to_string()
    }

    fn field_of(bytes: &[u8]) -> (u16, Option<String>) {
        let p = parse_article(bytes, NOW).unwrap_err();
        (p.body().status, p.body().field.clone())
    }

    #[test]
    fn publication_dates_outside_1900_to_tomorrow_are_refused_on_published_at() {
        for ok in [
            "1900-01-01T00:00:00Z",
            "1969-07-20T20:17:00Z",
            "2025-12-31T23:00:00-05:00",
            "2026-01-01T23:59:59Z",
        ] {
            assert!(parse_article(article(ok).as_bytes(), NOW).is_ok(), "{ok}");
        }
        for bad in [
            "0001-01-01T00:00:00Z",
            "1899-12-31T23:59:59Z",
            "-000001-01-01T00:00:00Z",
            "2026-01-02T00:00:01Z",
            "9999-01-01T00:00:00Z",
        ] {
            assert_eq!(
                field_of(article(bad).as_bytes()),
                (422, Some("published_at".to_owned())),
                "{bad}"
            );
        }
        // Past jiff's range altogether: a parse error, on the same field.
        assert_eq!(
            field_of(article("9999-12-31T23:59:59Z").as_bytes()),
            (422, Some("published_at".to_owned()))
        );
    }

    #[test]
    fn missing_and_unknown_fields_are_named() {
        assert_eq!(
            field_of(br#"{"external_id":"a","published_at":"2020-01-01T00:00:00Z"}"#),
            (422, Some("title".to_owned()))
        );
        assert_eq!(
            field_of(
                br#"{"external_id":"a","title":"t","published_at":"2020-01-01T00:00:00Z","extra":1}"#
            ),
            (422, Some("extra".to_owned()))
        );
        // The empty key, found by fuzzing: its path was the empty string.
        assert_eq!(
            field_of(br#"{"":1,"external_id":"a"}"#),
            (422, Some(r#""""#.to_owned()))
        );
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing_the_stack() {
        let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        // In a string field: the wrong type, at once.
        let body = format!(
            r#"{{"external_id":"a","title":{},"published_at":"2020-01-01T00:00:00Z"}}"#,
            deep(100_000)
        );
        assert_eq!(field_of(body.as_bytes()), (422, Some("title".to_owned())));
        // As the document itself, and in an unknown field's value.
        let (status, field) = field_of(deep(100_000).as_bytes());
        assert!(
            matches!((status, field.as_deref()), (400, None) | (422, Some(_))),
            "{status} {field:?}"
        );
        let body = format!(r#"{{"x":{}}}"#, deep(100_000));
        assert_eq!(field_of(body.as_bytes()), (422, Some("x".to_owned())));
        // In an optional string field: the wrong type, at once.
        let body = format!(r#"{{"url":{}}}"#, deep(100_000));
        assert_eq!(field_of(body.as_bytes()).0, 422);
    }

    /// Any JSON value, nested a few levels.
    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            any::<String>().prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
                prop::collection::btree_map(any::<String>(), inner, 0..6)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Dates as feeds send them, well- and ill-formed, any year.
    fn date() -> impl Strategy<Value = serde_json::Value> {
        prop_oneof![
            (
                -20_000i64..20_000,
                1u8..13,
                0u8..32,
                0u8..25,
                "[-+]",
                0u8..30
            )
                .prop_map(|(y, mo, d, h, sign, off)| {
                    serde_json::Value::from(format!(
                        "{y:04}-{mo:02}-{d:02}T{h:02}:00:00{sign}{off:02}:00"
                    ))
                }),
            "[0-9TZ:+. -]{0,30}".prop_map(serde_json::Value::from),
            json_value(),
        ]
    }

    fn field_name() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("external_id".to_owned()),
            Just("title".to_owned()),
            Just("body".to_owned()),
            Just("lang".to_owned()),
            Just("published_at".to_owned()),
            Just("url".to_owned()),
            Just("source".to_owned()),
            any::<String>(),
        ]
    }

    fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
        match parse_article(bytes, NOW) {
            Ok(a) => {
                prop_assert!(!a.external_id.is_empty());
                prop_assert!(a.published_at >= EARLIEST_PUBLISHED);
                prop_assert!(a.published_at <= NOW.checked_add(MAX_FUTURE).unwrap());
            }
            Err(p) => {
                let p = p.body();
                match p.status {
                    400 => prop_assert_eq!(p.code, "malformed_json"),
                    422 => prop_assert!(
                        p.field.as_deref().is_some_and(|f| !f.is_empty()),
                        "no field: {:?}",
                        p
                    ),
                    other => prop_assert!(false, "status {}: {:?}", other, p),
                }
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn articles_with_arbitrary_fields_parse_or_name_the_field(
            fields in prop::collection::vec((field_name(), json_value()), 0..8),
            external_id in any::<String>(),
            title in any::<String>(),
            published_at in date(),
        ) {
            let mut doc = serde_json::Map::new();
            doc.insert("external_id".into(), external_id.into());
            doc.insert("title".into(), title.into());
            doc.insert("published_at".into(), published_at);
            for (name, value) in fields {
                doc.insert(name, value);
            }
            check(serde_json::Value::Object(doc).to_string().as_bytes())?;
        }

        #[test]
        fn any_json_document_or_byte_string_parses_or_is_a_problem(
            doc in json_value(),
            bytes in prop::collection::vec(any::<u8>(), 0..200),
            depth in 0usize..5_000,
        ) {
            check(doc.to_string().as_bytes())?;
            check(&bytes)?;
            let nested = format!(
                r#"{{"external_id":"a","title":"t","published_at":"2020-01-01T00:00:00Z","url":{}1{}}}"#,
                "[".repeat(depth),
                "]".repeat(depth)
            );
            check(nested.as_bytes())?;
        }

        #[test]
        fn wellformed_dates_are_accepted_exactly_within_the_bounds(
            secs in -377_705_116_800i64..253_402_207_200,
        ) {
            let t = Timestamp::from_second(secs).unwrap();
            let got = parse_article(article(&t.to_string()).as_bytes(), NOW);
            let inside = t >= EARLIEST_PUBLISHED && t <= NOW.checked_add(MAX_FUTURE).unwrap();
            match got {
                Ok(a) => prop_assert!(inside && a.published_at == t),
                Err(p) => {
                    prop_assert!(!inside);
                    prop_assert_eq!(p.body().field.as_deref(), Some("published_at"));
                }
            }
        }
    }
}
