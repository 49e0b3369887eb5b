//! Reading a request: the extractors every handler shares, each refusing with a
//! [`Problem`] (body too large: 413, malformed JSON: 400, anything else: 422 naming the
//! field), and the small parsers of ids, page sizes and languages.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Path, Query, Request},
    http::{StatusCode, request::Parts},
    response::{IntoResponse, Response},
};
use concord_core::{ArticleId, ClusterId, DeliveryId, Lang, SubscriptionId};
use serde::de::DeserializeOwned;

use crate::problem::Problem;

/// The raw request body, or 413 past [`crate::MAX_BODY_BYTES`] (400 when unreadable).
pub(crate) struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|e| {
                let status = e.status();
                if status == StatusCode::PAYLOAD_TOO_LARGE {
                    Problem::new(
                        status,
                        "body_too_large",
                        "Request body too large",
                        format!("at most {} bytes", crate::MAX_BODY_BYTES),
                    )
                } else {
                    Problem::bad_json(e.body_text())
                }
            })
    }
}

/// A JSON body read with [`parse`]: the bad value's path is the problem's field.
pub(crate) struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        parse(&bytes).map(JsonBody)
    }
}

/// Query parameters; a value of the wrong type or an unknown name is a 422 on `query`.
pub(crate) struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| Params(q))
            .map_err(|e| Problem::invalid("query", e.body_text()))
    }
}

/// An id type as the API writes it: a letter and the store's number (`a12`, `c3`).
pub(crate) trait ApiId: Sized + Send {
    const PREFIX: char;
    /// How a refusal names it: `article id`.
    const WHAT: &'static str;
    fn from_u64(n: u64) -> Self;

    /// `a12` or `12`; anything else is a 422 on [`Self::WHAT`].
    fn parse(raw: &str) -> Result<Self, Problem> {
        Self::parse_as(raw, Self::WHAT)
    }

    /// [`Self::parse`], a refusal naming the id `what` (a cursor, say).
    fn parse_as(raw: &str, what: &'static str) -> Result<Self, Problem> {
        raw.strip_prefix(Self::PREFIX)
            .unwrap_or(raw)
            .parse::<u64>()
            .map(Self::from_u64)
            .map_err(|_| Problem::invalid(what, format!("{raw:?} is not a {what}")))
    }
}

macro_rules! api_id {
    ($ty:ident, $prefix:literal, $what:literal) => {
        impl ApiId for $ty {
            const PREFIX: char = $prefix;
            const WHAT: &'static str = $what;
            fn from_u64(n: u64) -> Self {
                $ty(n)
            }
        }
    };
}

api_id!(ArticleId, 'a', "article id");
api_id!(ClusterId, 'c', "cluster id");
api_id!(SubscriptionId, 's', "subscription id");
api_id!(DeliveryId, 'd', "delivery id");

/// The `{id}` of the path, parsed as `T`.
pub(crate) struct PathId<T>(pub T);

impl<S: Send + Sync, T: ApiId> FromRequestParts<S> for PathId<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        T::parse(&raw)
            .map(PathId)
            .map_err(IntoResponse::into_response)
    }
}

/// The JSON path of a deserialization error; serde reports a missing field at its
/// parent, so the field itself is named from the message. An unknown key is its own
/// path; the empty key is spelled `""` so that the path is never empty.
pub(crate) fn field_path(path: &str, message: &str) -> String {
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match (missing, path) {
        (Some(name), "." | "") => name.to_owned(),
        (Some(name), parent) => format!("{parent}.{name}"),
        (None, "") => "\"\"".to_owned(),
        (None, _) => path.to_owned(),
    }
}

/// Parses a JSON body, reporting where a bad value is.
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let message = inner.to_string();
                Problem::invalid(field_path(&path, &message), message)
            }
            serde_json::error::Category::Syntax
            | serde_json::error::Category::Eof
            | serde_json::error::Category::Io => Problem::bad_json(inner.to_string()),
        }
    })
}

/// Most clusters or hits one page returns.
pub(crate) const MAX_PAGE: usize = 200;

/// A page size or hit count from the query string: `default` when absent, else 1..=MAX_PAGE.
pub(crate) fn page_size(raw: Option<usize>, default: usize, field: &str) -> Result<usize, Problem> {
    match raw.unwrap_or(default) {
        n @ 1..=MAX_PAGE => Ok(n),
        _ => Err(Problem::invalid(
            field,
            format!("must be between 1 and {MAX_PAGE}"),
        )),
    }
}

/// An optional language parameter or field, as a problem on `field` when unknown.
pub(crate) fn parse_lang(raw: Option<&str>, field: &'static str) -> Result<Option<Lang>, Problem> {
    raw.map(Lang::parse)
        .transpose()
        .map_err(|e| Problem::invalid(field, e.to_string()))
}
