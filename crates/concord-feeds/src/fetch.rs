//! One conditional GET of a feed, under the target policy and the limits.

use concord_webhooks::{PolicyResolver, TargetPolicy};
use reqwest::{StatusCode, header, redirect};

use crate::poller::FeedError;

/// What a fetch brought back.
#[derive(Debug)]
pub(crate) enum Fetched {
    /// 304: nothing changed since the validators were given.
    NotModified,
    Body {
        bytes: Vec<u8>,
        etag: Option<String>,
        last_modified: Option<String>,
    },
}

/// An HTTP client whose every connection (names resolved, redirects followed) the
/// policy allows.
pub(crate) fn client(
    policy: TargetPolicy,
    timeout: std::time::Duration,
) -> Result<reqwest::Client, FeedError> {
    let redirects = redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= 5 {
            attempt.error("more than 5 redirects")
        } else if let Err(e) = policy.check_url(attempt.url().as_str()) {
            attempt.error(e)
        } else {
            attempt.follow()
        }
    });
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(redirects)
        .dns_resolver(PolicyResolver::new(policy))
        .user_agent(concat!("concord-feeds/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| FeedError::Client(e.to_string()))
}

/// GET `url` with the previous answer's validators; the body at most `max_bytes`.
pub(crate) async fn fetch(
    client: &reqwest::Client,
    policy: TargetPolicy,
    url: &str,
    etag: Option<&str>,
    last_modified: Option<&str>,
    max_bytes: u64,
) -> Result<Fetched, FeedError> {
    let url = policy
        .check_url(url)
        .map_err(|e| FeedError::Refused(e.to_string()))?;
    let mut request = client.get(url).header(
        header::ACCEPT,
        "application/rss+xml, application/atom+xml, application/feed+json, application/xml;q=0.9, */*;q=0.8",
    );
    if let Some(etag) = etag {
        request = request.header(header::IF_NONE_MATCH, etag);
    }
    if let Some(since) = last_modified {
        request = request.header(header::IF_MODIFIED_SINCE, since);
    }
    let mut response = request.send().await.map_err(fetch_error)?;
    let status = response.status();
    if status == StatusCode::NOT_MODIFIED {
        return Ok(Fetched::NotModified);
    }
    if !status.is_success() {
        return Err(FeedError::Status(status.as_u16()));
    }
    let header_text = |name: header::HeaderName| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let etag = header_text(header::ETAG);
    let last_modified = header_text(header::LAST_MODIFIED);
    if response.content_length().is_some_and(|n| n > max_bytes) {
        return Err(FeedError::TooLarge(max_bytes));
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(fetch_error)? {
        if (bytes.len() + chunk.len()) as u64 > max_bytes {
            return Err(FeedError::TooLarge(max_bytes));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Fetched::Body {
        bytes,
        etag,
        last_modified,
    })
}

/// A transport error, with the policy's refusal named when that was the cause.
fn fetch_error(e: reqwest::Error) -> FeedError {
    let mut source: Option<&dyn std::error::Error> = Some(&e);
    while let Some(err) = source {
        if let Some(p) = err.downcast_ref::<concord_webhooks::PolicyError>() {
            return FeedError::Refused(p.to_string());
        }
        source = err.source();
    }
    FeedError::Fetch(e.to_string())
}
