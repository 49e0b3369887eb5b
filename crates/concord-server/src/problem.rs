//! RFC 9457 problem details: the one error shape every route answers with.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use concord_cluster::ClusterError;
use concord_pipeline::IngestError;
use serde::Serialize;

/// A problem as the client sees it (`application/problem+json`). Boxed: it
/// travels in every handler's `Err` and should stay one pointer wide.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem(Box<ProblemBody>);

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ProblemBody {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    /// A stable machine-readable code.
    pub code: &'static str,
    /// For bad input: where in the request the problem is (a JSON path such as `published_at`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip)]
    retry_after_secs: Option<u64>,
}

impl Problem {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self(Box::new(ProblemBody {
            kind: format!("https://concord.invalid/problems/{code}"),
            title,
            status: status.as_u16(),
            detail: detail.into(),
            code,
            field: None,
            retry_after_secs: None,
        }))
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.0.field = Some(field.into());
        self
    }

    pub fn body(&self) -> &ProblemBody {
        &self.0
    }

    pub fn bad_json(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "Malformed JSON",
            detail,
        )
    }

    pub fn invalid(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "Invalid field",
            detail,
        )
        .with_field(field)
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Not found", what)
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            detail,
        )
    }
}

impl From<IngestError> for Problem {
    // One exhaustive match: a new error variant must decide its status here.
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Text(reason) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unusable_text",
                "Unusable article text",
                reason.to_string(),
            )
            .with_field("title"),
            IngestError::Busy { queue } => {
                let mut p = Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "busy",
                    "Too many articles in flight",
                    format!("the {queue} queue is full; retry later"),
                );
                p.0.retry_after_secs = Some(1);
                p
            }
            IngestError::NotFound(id) => Self::not_found(format!("article {id} not found")),
            IngestError::ShuttingDown => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "Shutting down",
                "the service is shutting down; retry against the next instance",
            ),
            IngestError::Store(e) => Self::internal(format!("store: {e}")),
            IngestError::Embed(e) => Self::internal(format!("embedding: {e}")),
            IngestError::Cluster(e) => Self::from(e),
            IngestError::Unavailable { role } => {
                let mut p = Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "Temporarily unavailable",
                    format!(
                        "no {role} answered in time; a standby takes over within seconds, retry"
                    ),
                );
                p.0.retry_after_secs = Some(2);
                p
            }
            IngestError::Remote(message) => Self::internal(message),
            IngestError::Log(e) => Self::internal(format!("article log: {e}")),
        }
    }
}

impl From<ClusterError> for Problem {
    // Refusals of a correction are the caller's to fix; the rest are ours.
    fn from(e: ClusterError) -> Self {
        match e {
            ClusterError::UnknownArticle(id) => Self::not_found(format!("article {id} not found")),
            ClusterError::UnknownCluster(id) => {
                Self::not_found(format!("cluster {id} not found or not active"))
            }
            ClusterError::NotAMember { article, cluster } => Self::new(
                StatusCode::CONFLICT,
                "not_a_member",
                "Not a member",
                format!("article {article} is not in cluster {cluster}"),
            )
            .with_field("articles"),
            ClusterError::Invalid(detail) => Self::new(
                StatusCode::CONFLICT,
                "correction_refused",
                "Correction refused",
                detail,
            ),
            ClusterError::Store(e) => Self::internal(format!("clustering: store: {e}")),
            ClusterError::Index(e) => Self::internal(format!("clustering: index: {e}")),
        }
    }
}

impl From<concord_store::StoreError> for Problem {
    fn from(e: concord_store::StoreError) -> Self {
        Self::internal(format!("store: {e}"))
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let p = self.0;
        let status = StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(code = p.code, detail = %p.detail, "request failed");
        }
        let retry = p.retry_after_secs;
        let body = serde_json::to_vec(&*p).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = retry {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// The problem answers routes share, as OpenAPI responses: a route lists the ones it can
/// give (`responses((status = 200, ...), problem::Unauthorized, problem::NotFound)`), so
/// each status is described once. Types for the spec only: never built, so their field
/// is never read.
#[allow(dead_code)]
pub mod responses {
    use super::ProblemBody;

    /// malformed JSON
    #[derive(utoipa::IntoResponses)]
    #[response(status = 400, content_type = "application/problem+json")]
    pub struct BadJson(pub ProblemBody);

    /// no or unknown API key
    #[derive(utoipa::IntoResponses)]
    #[response(status = 401, content_type = "application/problem+json")]
    pub struct Unauthorized(pub ProblemBody);

    /// the key's role does not allow this
    #[derive(utoipa::IntoResponses)]
    #[response(status = 403, content_type = "application/problem+json")]
    pub struct Forbidden(pub ProblemBody);

    /// not found
    #[derive(utoipa::IntoResponses)]
    #[response(status = 404, content_type = "application/problem+json")]
    pub struct NotFound(pub ProblemBody);

    /// the correction cannot apply
    #[derive(utoipa::IntoResponses)]
    #[response(status = 409, content_type = "application/problem+json")]
    pub struct Conflict(pub ProblemBody);

    /// body too large
    #[derive(utoipa::IntoResponses)]
    #[response(status = 413, content_type = "application/problem+json")]
    pub struct TooLarge(pub ProblemBody);

    /// invalid field (see `field`)
    #[derive(utoipa::IntoResponses)]
    #[response(status = 422, content_type = "application/problem+json")]
    pub struct Invalid(pub ProblemBody);

    /// queue full: retry after Retry-After seconds
    #[derive(utoipa::IntoResponses)]
    #[response(
        status = 429,
        content_type = "application/problem+json",
        headers(("Retry-After" = u64, description = "seconds to wait before retrying"))
    )]
    pub struct Busy(pub ProblemBody);

    /// shutting down
    #[derive(utoipa::IntoResponses)]
    #[response(status = 503, content_type = "application/problem+json")]
    pub struct ShuttingDown(pub ProblemBody);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec promises Retry-After on every 429 (`responses::Busy`); every 429 is a
    /// full queue.
    #[test]
    fn a_full_queue_is_429_with_retry_after() {
        let response = Problem::from(IngestError::Busy { queue: "embed" }).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            response.headers().get(header::RETRY_AFTER),
            Some(&HeaderValue::from(1u64))
        );
        let other = Problem::from(IngestError::ShuttingDown).into_response();
        assert_eq!(other.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(other.headers().get(header::RETRY_AFTER).is_none());
    }
}
