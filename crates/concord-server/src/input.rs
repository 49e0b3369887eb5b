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

/// Most digits an id may have: any 19 digits fit a `u64`, and the store's ids (SQLite
/// rowids) are below 2^63, which has 19.
const MAX_ID_DIGITS: usize = 19;

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

    /// [`Self::parse`], a refusal naming the id `what` (a cursor, say). Exactly
    /// [`Self::pattern`]: the prefix is optional, then 1 to 19 ASCII digits (no sign).
    fn parse_as(raw: &str, what: &'static str) -> Result<Self, Problem> {
        let digits = raw.strip_prefix(Self::PREFIX).unwrap_or(raw);
        let well_formed = (1..=MAX_ID_DIGITS).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit());
        well_formed
            .then(|| digits.parse::<u64>().ok())
            .flatten()
            .map(Self::from_u64)
            .ok_or_else(|| Problem::invalid(what, format!("{raw:?} is not a {what}")))
    }

    /// What [`Self::parse`] accepts, as the spec's `pattern`.
    fn pattern() -> String {
        format!("^{}?[0-9]{{1,{MAX_ID_DIGITS}}}$", Self::PREFIX)
    }

    /// The schema of such an id in a path, a query or a body.
    fn schema() -> utoipa::openapi::Object {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(Self::pattern()))
            .build()
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

impl<T: ApiId> utoipa::IntoParams for PathId<T> {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::openapi::{Required, path::ParameterBuilder, path::ParameterIn};
        vec![
            ParameterBuilder::new()
                .name("id")
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some(format!("{}, e.g. {}3", T::WHAT, T::PREFIX)))
                .schema(Some(T::schema()))
                .build(),
        ]
    }
}

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

/// Parses a JSON body (always an object here), reporting where a bad value is.
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    // serde reads a struct from an array of its fields in order too; the API (and its
    // spec) takes objects only.
    if bytes.trim_ascii_start().first() == Some(&b'[')
        && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
    {
        return Err(Problem::invalid(
            ".",
            "expected a JSON object, found an array",
        ));
    }
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

/// Schemas for what the handlers check by hand, so that the spec says exactly what the
/// server enforces (`schema_with` on the fields and parameters that use them).
pub(crate) mod schema {
    use concord_core::{ArticleId, ClusterId, DeliveryId, Lang};
    use utoipa::openapi::{
        Object, ObjectBuilder, SchemaFormat,
        schema::{ArrayBuilder, SchemaType, Type},
    };

    use super::{ApiId, MAX_PAGE};

    fn string() -> ObjectBuilder {
        ObjectBuilder::new().schema_type(Type::String)
    }

    fn nullable(b: ObjectBuilder) -> ObjectBuilder {
        b.schema_type(SchemaType::from_iter([Type::String, Type::Null]))
    }

    fn lang_builder() -> ObjectBuilder {
        let codes = Lang::all().flat_map(|l| [l.as_str(), l.iso639_3()]);
        string().enum_values(Some(codes)).description(Some(
            "A known language: its ISO 639-1 or 639-3 code (the server also reads them in \
             any case, 639-2/B variants and BCP-47 tags such as `pt-BR`, by their primary \
             subtag); anything else is a 422.",
        ))
    }

    /// A language code (query parameter).
    pub fn lang() -> Object {
        lang_builder().build()
    }

    /// A language code or null (body field).
    pub fn lang_or_null() -> Object {
        let mut b = nullable(lang_builder());
        b = b.enum_values(Some(
            Lang::all()
                .flat_map(|l| [l.as_str(), l.iso639_3()])
                .map(serde_json::Value::from)
                .chain([serde_json::Value::Null]),
        ));
        b.build()
    }

    /// A whole number from 0 to 2^64 - 1 (the server reads it as a `u64`).
    fn unsigned_builder() -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(0u64))
            .maximum(Some(u64::MAX))
    }

    // utoipa drops a parameter's doc comment when its schema is custom, so each of
    // these carries its own description.

    /// `GET /v1/clusters`'s `min_size`.
    pub fn min_size() -> Object {
        unsigned_builder()
            .description(Some("Only clusters with at least this many members."))
            .build()
    }

    /// `GET /v1/clusters`'s `min_languages`.
    pub fn min_languages() -> Object {
        unsigned_builder()
            .description(Some(
                "Only clusters with members in at least this many languages.",
            ))
            .build()
    }

    /// `GET /v1/corrections`'s `cursor`.
    pub fn corrections_cursor() -> Object {
        unsigned_builder()
            .description(Some(
                "The `next_cursor` of the previous page (a correction id); absent for the first page.",
            ))
            .build()
    }

    /// `GET /v1/clusters`'s `sort`.
    pub fn sort() -> Object {
        string()
            .enum_values(Some(["recent", "size"]))
            .default(Some("recent".into()))
            .description(Some(
                "`recent` (newest activity first, the default) or `size` (largest first).",
            ))
            .build()
    }

    /// A delivery log cursor: the `next_cursor` of the previous page, a delivery id.
    pub fn delivery_cursor() -> Object {
        DeliveryId::schema()
    }

    /// A delivery's status.
    pub fn delivery_status() -> Object {
        string()
            .enum_values(Some(["pending", "succeeded", "failed"]))
            .build()
    }

    fn ids<T: ApiId>() -> ArrayBuilder {
        ArrayBuilder::new()
            .items(T::schema())
            .min_items(Some(1))
            .max_items(Some(MAX_PAGE))
    }

    /// 1 to 200 cluster ids.
    pub fn cluster_ids() -> utoipa::openapi::Array {
        ids::<ClusterId>().build()
    }

    /// 1 to 200 article ids.
    pub fn article_ids() -> utoipa::openapi::Array {
        ids::<ArticleId>().build()
    }

    /// One cluster id.
    pub fn cluster_id() -> Object {
        ClusterId::schema()
    }

    fn url_builder() -> ObjectBuilder {
        string()
            .format(Some(SchemaFormat::Custom("uri".to_owned())))
            .pattern(Some(concat!(
                "^[Hh][Tt][Tt][Pp][Ss]?://",
                // a host name whose last label starts with a letter (so never read as IPv4)
                "[A-Za-z0-9.-]*[A-Za-z][A-Za-z0-9-]*\\.?",
                "(:(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[0-9]{1,4})?)?",
                "([/?#]|$)",
            )))
            .description(Some(
                "An http(s) URI (RFC 3986: other characters percent-encoded) naming its host. \
                 The server also takes IP address literals; private, loopback (`localhost` \
                 too), link-local, unspecified and multicast targets are refused (422) unless \
                 `[webhooks]` allows them.",
            ))
    }

    /// A webhook target.
    pub fn url() -> Object {
        url_builder().build()
    }

    /// A webhook target, or null to keep the current one.
    pub fn url_or_null() -> Object {
        nullable(url_builder()).build()
    }

    fn event_types_builder() -> ArrayBuilder {
        ArrayBuilder::new()
            .items(string().enum_values(Some(
                concord_store::EventType::ALL.iter().map(|t| t.as_str()),
            )))
            .min_items(Some(1))
    }

    /// At least one event type.
    pub fn event_types() -> utoipa::openapi::Array {
        event_types_builder().build()
    }

    /// At least one event type, or null to keep the current ones.
    pub fn event_types_or_null() -> utoipa::openapi::Array {
        event_types_builder()
            .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
            .build()
    }
}
