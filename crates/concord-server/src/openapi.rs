//! The OpenAPI 3.1 description of the HTTP surface, generated from the
//! handlers' own types and `#[utoipa::path]` attributes. `docs/openapi.json`
//! is this, committed; a test fails when the two differ.

use utoipa::{
    Modify, OpenApi,
    openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use crate::{articles, clusters, corrections, feeds, problem, search, webhooks};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Concord",
        description = "Cross-lingual news event clustering: articles in, event clusters out.\n\nEvery `/v1` route needs an API key (`Authorization: Bearer <key>` or `X-Api-Key`); roles are `read` < `ingest` < `admin`. Errors are RFC 9457 problem+json with a stable `code` and, for bad input, the `field` path.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    paths(
        crate::healthz,
        crate::readyz,
        crate::auth::me,
        articles::submit_article,
        articles::submit_batch,
        articles::get_article,
        articles::delete_article,
        search::similar,
        corrections::move_article,
        clusters::list_clusters,
        clusters::get_cluster,
        clusters::related,
        corrections::merge,
        corrections::split,
        corrections::list,
        feeds::list,
        search::search,
        webhooks::inbound_article,
        webhooks::create_subscription,
        webhooks::list_subscriptions,
        webhooks::get_subscription,
        webhooks::update_subscription,
        webhooks::delete_subscription,
        webhooks::list_deliveries,
        webhooks::replay_delivery,
        webhooks::replay_range,
    ),
    components(schemas(problem::ProblemBody)),
    modifiers(&Security),
    security(("bearer" = []), ("api_key" = [])),
    tags(
        (name = "auth", description = "The key presented: its name and role"),
        (name = "articles", description = "Submit, read and delete articles"),
        (name = "clusters", description = "Browse and read event clusters"),
        (name = "search", description = "Nearest articles to a text or an article"),
        (name = "corrections", description = "Analyst corrections (admin keys)"),
        (name = "webhooks", description = "Signed inbound article webhook; outbound subscriptions and their delivery log (admin keys)"),
        (name = "feeds", description = "The RSS and Atom feeds polled from the configuration"),
        (name = "health", description = "Liveness and readiness (no key)"),
    )
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Api-Key"))),
        );
    }
}

/// The spec as served at `/openapi.json`.
pub fn spec() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The spec as committed: pretty JSON with a trailing newline.
pub fn spec_json() -> String {
    let mut out = spec().to_pretty_json().unwrap_or_default();
    out.push('\n');
    out
}
