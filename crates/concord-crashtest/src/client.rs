//! A small blocking client for the parts of the API the harness uses.

use std::time::Duration;

use serde::Deserialize;

use crate::Error;

/// The key `config/default.toml` carries for local use (role `admin`).
pub const DEV_KEY: &str = "concord-dev-key";

/// The API of one running service.
#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::blocking::Client,
    base: String,
    auth: String,
}

/// An answer with its status; the body is kept raw until the caller knows its shape.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn json<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|source| Error::Json {
            what: what.to_owned(),
            source,
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body)
            .chars()
            .take(500)
            .collect()
    }

    /// The JSON body when the status is 2xx, else [`Error::Status`].
    pub fn expect_ok<T: serde::de::DeserializeOwned>(self, what: &str) -> Result<T, Error> {
        if !self.ok() {
            return Err(Error::Status {
                what: what.to_owned(),
                status: self.status,
                body: self.text(),
            });
        }
        self.json(what)
    }
}

/// `POST /v1/articles` and each accepted item of a batch.
#[derive(Debug, Clone, Deserialize)]
pub struct Accepted {
    pub id: String,
    pub external_id: String,
    pub status: String,
    #[serde(default)]
    pub cluster: Option<String>,
}

/// One item of a batch answer: accepted, or refused with its problem.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum BatchItem {
    Accepted(Accepted),
    Refused { problem: Problem },
}

#[derive(Debug, Clone, Deserialize)]
pub struct Problem {
    pub status: u16,
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub detail: String,
}

#[derive(Debug, Deserialize)]
pub struct BatchAnswer {
    pub results: Vec<BatchItem>,
}

/// `GET /v1/articles/{id}`.
#[derive(Debug, Clone, Deserialize)]
pub struct ArticleOut {
    pub id: String,
    pub external_id: String,
    pub state: String,
    #[serde(default)]
    pub cluster: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ClusterSummary {
    pub id: String,
    pub size: u64,
}

#[derive(Debug, Deserialize)]
pub struct ClusterPage {
    pub clusters: Vec<ClusterSummary>,
    #[serde(default)]
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Member {
    pub id: String,
}

/// `GET /v1/clusters/{id}`.
#[derive(Debug, Deserialize)]
pub struct ClusterOut {
    pub id: String,
    pub size: u64,
    pub members: Vec<Member>,
}

#[derive(Debug, Deserialize)]
pub struct Ready {
    /// `None` on an api node of the distributed mode (no index there).
    pub indexed_articles: Option<usize>,
}

#[derive(Debug, Deserialize)]
pub struct Hit {
    pub article: String,
}

#[derive(Debug, Deserialize)]
pub struct Similar {
    pub hits: Vec<Hit>,
}

impl Api {
    /// A client for `base` (e.g. `http://127.0.0.1:8080`) with an API key.
    pub fn new(base: impl Into<String>, key: &str) -> Result<Self, Error> {
        let http = reqwest::blocking::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            // `?wait=true` waits for the model and the clusterer, recovery included
            .timeout(Duration::from_secs(60))
            .no_proxy()
            .build()
            .map_err(Error::Client)?;
        Ok(Self {
            http,
            base: base.into(),
            auth: format!("Bearer {key}"),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn send(&self, what: &str, req: reqwest::blocking::RequestBuilder) -> Result<Answer, Error> {
        let http = |source| Error::Http {
            what: what.to_owned(),
            source,
        };
        let resp = req
            .header(reqwest::header::AUTHORIZATION, &self.auth)
            .send()
            .map_err(http)?;
        let status = resp.status().as_u16();
        let body = resp.bytes().map_err(http)?.to_vec();
        Ok(Answer { status, body })
    }

    pub fn get(&self, path: &str) -> Result<Answer, Error> {
        self.send(
            &format!("GET {path}"),
            self.http.get(format!("{}{path}", self.base)),
        )
    }

    pub fn delete(&self, path: &str) -> Result<Answer, Error> {
        self.send(
            &format!("DELETE {path}"),
            self.http.delete(format!("{}{path}", self.base)),
        )
    }

    pub fn post(&self, path: &str, body: &serde_json::Value) -> Result<Answer, Error> {
        self.send(
            &format!("POST {path}"),
            self.http
                .post(format!("{}{path}", self.base))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string()),
        )
    }

    pub fn ready(&self) -> Result<Ready, Error> {
        self.get("/readyz")?.expect_ok("GET /readyz")
    }

    pub fn article(&self, id: &str) -> Result<Option<ArticleOut>, Error> {
        let path = format!("/v1/articles/{id}");
        let answer = self.get(&path)?;
        if answer.status == 404 {
            return Ok(None);
        }
        answer.expect_ok(&format!("GET {path}")).map(Some)
    }

    /// `GET /v1/clusters/{id}`: `None` when it does not resolve (404).
    pub fn cluster(&self, id: &str) -> Result<Option<ClusterOut>, Error> {
        let path = format!("/v1/clusters/{id}");
        let answer = self.get(&path)?;
        if answer.status == 404 {
            return Ok(None);
        }
        answer.expect_ok(&format!("GET {path}")).map(Some)
    }

    /// Every page of `GET /v1/clusters`, in order.
    pub fn all_clusters(&self) -> Result<Vec<ClusterSummary>, Error> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                // cursors are `sort:key:id` (letters, digits, '-', ':'), safe in a query
                Some(c) => format!("/v1/clusters?limit=200&cursor={c}"),
                None => "/v1/clusters?limit=200".to_owned(),
            };
            let page: ClusterPage = self.get(&path)?.expect_ok(&format!("GET {path}"))?;
            out.extend(page.clusters);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(out),
            }
        }
    }

    pub fn similar(&self, id: &str, k: usize) -> Result<Similar, Error> {
        let path = format!("/v1/articles/{id}/similar?k={k}");
        self.get(&path)?.expect_ok(&format!("GET {path}"))
    }
}
