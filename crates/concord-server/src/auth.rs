//! API keys: `Authorization: Bearer <key>` or `X-Api-Key: <key>`, checked
//! against configured SHA-256 digests, with a role per route.

use std::collections::HashMap;

use axum::{
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use concord_core::config::{ApiKey, Role};
use sha2::{Digest, Sha256};

use crate::{AppState, problem::Problem};

/// The key the README's examples use; the service warns while it is configured.
pub const DEV_KEY_SHA256: &str = "12470e3f9e8a63702f7e53599187d4e7467a96b7b260a16497681a368e5cbb13";

/// Configured keys by digest.
#[derive(Debug, Clone, Default)]
pub struct Keys {
    by_digest: HashMap<String, (String, Role)>,
}

impl Keys {
    pub fn new(keys: &[ApiKey]) -> Self {
        Self {
            by_digest: keys
                .iter()
                .map(|k| (k.sha256.clone(), (k.name.clone(), k.role)))
                .collect(),
        }
    }

    pub fn has_dev_key(&self) -> bool {
        self.by_digest.contains_key(DEV_KEY_SHA256)
    }

    fn role_of(&self, key: &str) -> Option<&(String, Role)> {
        let digest = hex::encode(Sha256::digest(key.as_bytes()));
        self.by_digest.get(&digest)
    }
}

/// Who is calling: the configured name of the key presented (never the key).
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

/// The key presented, as the service knows it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct MeOut {
    /// The key's configured name (the `actor` of its corrections).
    pub name: String,
    /// `read` < `ingest` < `admin`: what the key may do.
    #[schema(value_type = String, pattern = "^(read|ingest|admin)$")]
    pub role: Role,
}

/// `GET /v1/me`: the name and role of the key presented, so a client (the console) can
/// offer only what the key may do. The routes enforce roles whatever a client shows.
#[utoipa::path(
    get, path = "/v1/me", tag = "auth",
    responses(
        (status = 200, description = "the key's name and role", body = MeOut),
        crate::problem::responses::Unauthorized
    )
)]
pub async fn me(axum::Extension(caller): axum::Extension<Caller>) -> axum::Json<MeOut> {
    axum::Json(MeOut {
        name: caller.name,
        role: caller.role,
    })
}

/// The role a request needs by default: reads are `read`, writes `ingest`.
fn required(method: &Method) -> Role {
    if method == Method::GET || method == Method::HEAD {
        Role::Read
    } else {
        Role::Ingest
    }
}

/// Middleware for `/v1` routes that change clusters or subscriptions: `admin` only.
pub async fn require_admin(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    check(&state, request, next, Role::Admin).await
}

fn presented(request: &Request) -> Option<&str> {
    let headers = request.headers();
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return v.strip_prefix("Bearer ").map(str::trim);
    }
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// Middleware for every `/v1` route.
pub async fn require_key(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let needed = required(request.method());
    check(&state, request, next, needed).await
}

async fn check(state: &AppState, mut request: Request, next: Next, needed: Role) -> Response {
    let Some(key) = presented(&request) else {
        return unauthorized("an API key is required: Authorization: Bearer <key>");
    };
    let Some((name, role)) = state.keys().role_of(key) else {
        return unauthorized("unknown API key");
    };
    if *role < needed {
        return Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Forbidden",
            format!("key {name:?} has role {role:?}; this needs {needed:?}"),
        )
        .into_response();
    }
    tracing::Span::current().record("key", name.as_str());
    let caller = Caller {
        name: name.clone(),
        role: *role,
    };
    request.extensions_mut().insert(caller);
    next.run(request).await
}

fn unauthorized(detail: &str) -> Response {
    let mut response = Problem::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "Unauthorized",
        detail,
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}
