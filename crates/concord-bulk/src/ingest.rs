//! Sending records to a running service's `POST /v1/articles/batch`, as its client.
//!
//! The API decides what it accepts; this only carries the articles there and back:
//! busy answers (429, 503, a refused item marked 429/503) wait Retry-After (or a
//! doubling backoff) and go again, a batch too large for the body limit (413) is
//! halved, an unreachable service is retried a few times. Re-running a file is a
//! no-op by the API's own idempotency (same external id and content: `unchanged`).

use std::{io::Read, time::Duration};

/// The service's address type.
pub use reqwest::Url;
use reqwest::{StatusCode, header};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{
    BulkError,
    source::{Record, Records},
};

/// The most articles the API takes in one batch (`MAX_BATCH` in concord-server).
pub const MAX_BATCH: usize = 500;

/// How the client talks to the service.
#[derive(Debug, Clone)]
pub struct Options {
    /// The service's base URL, e.g. `http://127.0.0.1:8080`.
    pub url: Url,
    /// An API key with the `ingest` or `admin` role.
    pub key: String,
    /// Articles per request, 1..=[`MAX_BATCH`].
    pub batch: usize,
    /// Attempts per request before giving up on a busy or unreachable service.
    pub attempts: u32,
    /// The longest wait between attempts, whatever Retry-After says.
    pub max_wait: Duration,
}

/// Where the load stands; the final one is the summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Records read (articles and lines that hold none).
    pub read: u64,
    /// Stored and queued for clustering (new or changed).
    pub queued: u64,
    /// Already stored with the same content: nothing to do.
    pub unchanged: u64,
    /// Refused, by the API or because the line holds no article.
    pub refused: u64,
}

impl Tally {
    pub fn accepted(&self) -> u64 {
        self.queued + self.unchanged
    }
}

/// Why one record was refused.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub line: u64,
    /// The API's status, or `None` when the line held no article.
    pub status: Option<u16>,
    /// The API's field path (`published_at`), when it named one.
    pub field: Option<String>,
    pub detail: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: ", self.line)?;
        if let Some(status) = self.status {
            write!(f, "{status} ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "`{field}`: ")?;
        }
        f.write_str(&self.detail)
    }
}

/// The API's answer for one article of a batch.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ItemAnswer {
    Refused { problem: Problem },
    Accepted { status: String },
}

#[derive(Debug, Clone, Deserialize)]
struct Problem {
    status: u16,
    #[serde(default)]
    detail: String,
    #[serde(default)]
    field: Option<String>,
}

#[derive(Debug, Deserialize)]
struct BatchAnswer {
    results: Vec<ItemAnswer>,
}

/// One record's fate after a request.
#[derive(Debug)]
enum Fate {
    Queued,
    Unchanged,
    Busy,
    Refused(Problem),
}

/// An HTTP client of one service.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    batch_url: Url,
    auth: String,
    options: Options,
}

impl Client {
    pub fn new(options: Options) -> Result<Self, BulkError> {
        let batch_url = options
            .url
            .join("v1/articles/batch")
            .map_err(|e| BulkError::Protocol(format!("bad service URL: {e}")))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(|source| BulkError::Transport {
                url: options.url.to_string(),
                attempts: 0,
                source,
            })?;
        Ok(Self {
            http,
            batch_url,
            auth: format!("Bearer {}", options.key),
            options: Options {
                batch: options.batch.clamp(1, MAX_BATCH),
                attempts: options.attempts.max(1),
                ..options
            },
        })
    }

    /// Loads every record of `records`: `on_refused` hears each refusal as it happens,
    /// `on_progress` the tally and the input bytes consumed after each batch. Returns
    /// the final tally; an error means the load stopped (what was acknowledged before
    /// it is stored, and re-running the file resumes at no cost).
    pub async fn load<R: Read>(
        &self,
        mut records: Records<R>,
        mut on_refused: impl FnMut(&Refusal),
        mut on_progress: impl FnMut(&Tally, u64),
    ) -> Result<Tally, BulkError> {
        let mut tally = Tally::default();
        loop {
            let mut batch: Vec<(u64, Map<String, Value>)> = Vec::with_capacity(self.options.batch);
            let mut done = false;
            while batch.len() < self.options.batch {
                let Some(record) = records.next() else {
                    done = true;
                    break;
                };
                let Record { line, article } = record?;
                tally.read += 1;
                match article {
                    Ok(article) => batch.push((line, article)),
                    Err(detail) => {
                        tally.refused += 1;
                        on_refused(&Refusal {
                            line,
                            status: None,
                            field: None,
                            detail,
                        });
                    }
                }
            }
            if !batch.is_empty() {
                self.send_all(batch, &mut tally, &mut on_refused).await?;
            }
            on_progress(&tally, records.bytes_read());
            if done {
                return Ok(tally);
            }
        }
    }

    /// Sends one batch until every article in it is accepted or refused for good.
    async fn send_all(
        &self,
        mut pending: Vec<(u64, Map<String, Value>)>,
        tally: &mut Tally,
        on_refused: &mut impl FnMut(&Refusal),
    ) -> Result<(), BulkError> {
        let mut attempt = 0;
        while !pending.is_empty() {
            let fates = self.submit(&pending).await?;
            let mut busy = Vec::new();
            for ((line, article), fate) in pending.into_iter().zip(fates) {
                match fate {
                    Fate::Queued => tally.queued += 1,
                    Fate::Unchanged => tally.unchanged += 1,
                    Fate::Busy => busy.push((line, article)),
                    Fate::Refused(p) => {
                        tally.refused += 1;
                        on_refused(&Refusal {
                            line,
                            status: Some(p.status),
                            field: p.field.map(|f| article_field(&f)),
                            detail: p.detail,
                        });
                    }
                }
            }
            if !busy.is_empty() {
                attempt += 1;
                if attempt >= self.options.attempts {
                    return Err(BulkError::Busy {
                        attempts: attempt,
                        status: 429,
                    });
                }
                tokio::time::sleep(self.backoff(attempt, None)).await;
            }
            pending = busy;
        }
        Ok(())
    }

    /// One request for `items` (split in halves while the service finds it too
    /// large), retried while the service is busy or unreachable: each item's fate.
    async fn submit(&self, items: &[(u64, Map<String, Value>)]) -> Result<Vec<Fate>, BulkError> {
        let body = serde_json::json!({
            "articles": items.iter().map(|(_, a)| a).collect::<Vec<_>>()
        })
        .to_string();
        let response = self
            .send(|| {
                self.http
                    .post(self.batch_url.clone())
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(body.clone())
            })
            .await?;
        let status = response.status();
        match status {
            StatusCode::OK | StatusCode::ACCEPTED => {
                let answer: BatchAnswer = read_json(response, "batch answer").await?;
                if answer.results.len() != items.len() {
                    return Err(BulkError::Protocol(format!(
                        "{} results for {} articles",
                        answer.results.len(),
                        items.len()
                    )));
                }
                Ok(answer.results.into_iter().map(fate).collect())
            }
            StatusCode::PAYLOAD_TOO_LARGE if items.len() > 1 => {
                let (a, b) = items.split_at(items.len() / 2);
                let mut fates = Box::pin(self.submit(a)).await?;
                fates.extend(Box::pin(self.submit(b)).await?);
                Ok(fates)
            }
            StatusCode::PAYLOAD_TOO_LARGE => Ok(vec![Fate::Refused(Problem {
                status: status.as_u16(),
                detail: problem_detail(response).await,
                field: None,
            })]),
            other => Err(refusal(other, response).await),
        }
    }

    /// `GET path?query` on the service, its JSON answer (retried like a batch while
    /// the service is busy or unreachable).
    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(String, String)],
    ) -> Result<T, BulkError> {
        let mut url = self
            .options
            .url
            .join(path)
            .map_err(|e| BulkError::Protocol(format!("bad path {path:?}: {e}")))?;
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        let response = self.send(|| self.http.get(url.clone())).await?;
        match response.status() {
            StatusCode::OK => read_json(response, path).await,
            other => Err(refusal(other, response).await),
        }
    }

    /// Sends what `build` makes, with the key, until the service answers something
    /// other than busy (429, 503) or a server error, or the attempts run out.
    async fn send(
        &self,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, BulkError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let response = match build()
                .header(header::AUTHORIZATION, &self.auth)
                .send()
                .await
            {
                Ok(response) => response,
                Err(source) => {
                    if attempt >= self.options.attempts {
                        return Err(BulkError::Transport {
                            url: self.options.url.to_string(),
                            attempts: attempt,
                            source,
                        });
                    }
                    tracing::warn!(attempt, error = %source, "service unreachable; retrying");
                    tokio::time::sleep(self.backoff(attempt, None)).await;
                    continue;
                }
            };
            let status = response.status();
            let busy = matches!(
                status,
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
            );
            if !busy && !status.is_server_error() {
                return Ok(response);
            }
            if attempt >= self.options.attempts {
                return Err(if busy {
                    BulkError::Busy {
                        attempts: attempt,
                        status: status.as_u16(),
                    }
                } else {
                    BulkError::Http {
                        status: status.as_u16(),
                        detail: problem_detail(response).await,
                    }
                });
            }
            let retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            tracing::warn!(attempt, status = status.as_u16(), "service busy; retrying");
            tokio::time::sleep(self.backoff(attempt, retry_after)).await;
        }
    }

    /// Retry-After when the service gave one, else 250 ms doubling per attempt;
    /// never more than `max_wait`.
    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let doubling = Duration::from_millis(250).saturating_mul(1 << attempt.min(16));
        retry_after.unwrap_or(doubling).min(self.options.max_wait)
    }
}

/// A batch item's field path (`articles[3].published_at`) as the article's own
/// (`published_at`): the line already says which article.
fn article_field(path: &str) -> String {
    match path
        .strip_prefix("articles[")
        .and_then(|rest| rest.split_once(']'))
    {
        Some((index, rest)) if index.bytes().all(|b| b.is_ascii_digit()) => {
            rest.strip_prefix('.').unwrap_or(rest).to_owned()
        }
        _ => path.to_owned(),
    }
}

fn fate(answer: ItemAnswer) -> Fate {
    match answer {
        ItemAnswer::Accepted { status } if status == "unchanged" => Fate::Unchanged,
        ItemAnswer::Accepted { .. } => Fate::Queued,
        ItemAnswer::Refused { problem } if matches!(problem.status, 429 | 503) => Fate::Busy,
        ItemAnswer::Refused { problem } => Fate::Refused(problem),
    }
}

/// A JSON answer, or why it is not one.
async fn read_json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    what: &str,
) -> Result<T, BulkError> {
    let text = response
        .text()
        .await
        .map_err(|e| BulkError::Protocol(format!("cannot read the {what}: {e}")))?;
    serde_json::from_str(&text)
        .map_err(|e| BulkError::Protocol(format!("{what} not understood: {e}")))
}

/// The error for an answer that is neither success nor busy.
async fn refusal(status: StatusCode, response: reqwest::Response) -> BulkError {
    let detail = problem_detail(response).await;
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => BulkError::Unauthorized {
            status: status.as_u16(),
            detail,
        },
        other => BulkError::Http {
            status: other.as_u16(),
            detail,
        },
    }
}

/// The `detail` of a problem+json answer, or its text.
async fn problem_detail(response: reqwest::Response) -> String {
    let text = response.text().await.unwrap_or_default();
    serde_json::from_str::<Problem>(&text)
        .map(|p| p.detail)
        .unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::article_field;

    #[test]
    fn a_batch_field_path_becomes_the_articles_own() {
        assert_eq!(article_field("articles[12].published_at"), "published_at");
        assert_eq!(article_field("articles[0]"), "");
        assert_eq!(article_field("title"), "title");
        assert_eq!(article_field("articles[x].title"), "articles[x].title");
    }
}
