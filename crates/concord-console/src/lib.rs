//! The analyst's console: a single-page browser application served at `/`, its
//! assets (HTML, JavaScript, CSS and the vendored libraries under `assets/vendor/`,
//! pinned by `scripts/vendor-console.sh`) compiled into the binary, so it works offline
//! and behind any proxy without a CDN or a build step.
//!
//! Owns: the console's files and the routes that serve them (content types,
//! revalidation by ETag, the Content-Security-Policy that keeps the page to its own
//! origin).
//! Must not: read the store, the index or the pipeline, or know API keys. The page is
//! a client of the public `/v1` API like any other: the key the analyst types is kept
//! in the tab's `sessionStorage` and sent as a header by the browser, never in a URL,
//! and every permission is enforced by the API, not by what the page shows.

use axum::{
    Router,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// The path it is served at.
    pub path: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
    /// Strong validator: a hash of the bytes, fixed at compile time.
    pub etag: &'static str,
}

/// FNV-1a, 64 bits: enough to tell two builds' files apart for caching.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// `"` + 16 lowercase hex digits + `"`, in a static buffer.
const fn etag_of(bytes: &[u8]) -> [u8; 18] {
    let hash = fnv1a(bytes);
    let digits = b"0123456789abcdef";
    let mut out = [b'"'; 18];
    let mut i = 0;
    while i < 16 {
        out[1 + i] = digits[((hash >> (60 - 4 * i)) & 0xf) as usize];
        i += 1;
    }
    out
}

macro_rules! asset {
    ($path:literal, $file:literal, $type:literal) => {{
        const BYTES: &[u8] = include_bytes!(concat!("../assets/", $file));
        const TAG: [u8; 18] = etag_of(BYTES);
        Asset {
            path: $path,
            content_type: $type,
            bytes: BYTES,
            etag: match std::str::from_utf8(&TAG) {
                Ok(s) => s,
                Err(_) => panic!("hex is ascii"),
            },
        }
    }};
}

/// Every file the console serves.
pub static ASSETS: &[Asset] = &[
    asset!("/", "index.html", "text/html; charset=utf-8"),
    asset!(
        "/console/app.js",
        "app.js",
        "text/javascript; charset=utf-8"
    ),
    asset!("/console/style.css", "style.css", "text/css; charset=utf-8"),
    asset!(
        "/console/vendor/preact-htm.module.js",
        "vendor/preact-htm.module.js",
        "text/javascript; charset=utf-8"
    ),
    asset!(
        "/console/vendor/uPlot.iife.min.js",
        "vendor/uPlot.iife.min.js",
        "text/javascript; charset=utf-8"
    ),
    asset!(
        "/console/vendor/uPlot.min.css",
        "vendor/uPlot.min.css",
        "text/css; charset=utf-8"
    ),
];

/// Scripts and styles from this origin only, API calls to this origin only, no
/// framing, no plugins. uPlot sizes its canvas through the CSSOM, which `style-src`
/// does not govern, so no `'unsafe-inline'` is needed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

fn serve(asset: &'static Asset, request: &HeaderMap) -> Response {
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == asset.etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            )],
            asset.bytes,
        )
            .into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::ETAG, HeaderValue::from_static(asset.etag));
    // Revalidate every time: a new binary's files must be picked up at the next load.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    response
}

/// The console's routes (GET and HEAD), to be merged into the service's router.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    ASSETS.iter().fold(Router::new(), |router, asset| {
        router.route(
            asset.path,
            get(move |headers: HeaderMap| async move { serve(asset, &headers) }),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_differ_with_the_bytes_and_are_quoted_hex() {
        let a = etag_of(b"one");
        let b = etag_of(b"two");
        assert_ne!(a, b);
        let tag = std::str::from_utf8(&a).unwrap_or_default();
        assert!(
            tag.starts_with('"') && tag.ends_with('"') && tag.len() == 18,
            "{tag}"
        );
        assert!(tag[1..17].bytes().all(|c| c.is_ascii_hexdigit()), "{tag}");
    }

    #[test]
    fn every_asset_has_bytes_and_a_distinct_path() {
        let mut paths: Vec<_> = ASSETS.iter().map(|a| a.path).collect();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(paths.len(), ASSETS.len());
        assert!(ASSETS.iter().all(|a| !a.bytes.is_empty()));
    }
}
