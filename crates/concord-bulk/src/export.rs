//! Clusters with their members, written as NDJSON (one cluster per line) or CSV (one
//! member per row, its cluster's summary repeated), from a data directory (the store's
//! export rows) or from a running service's API.
//!
//! NDJSON fields: `cluster` (id), `label` (its label article's title), `size`,
//! `languages`, `first_seen`, `last_seen` (RFC 3339), `members`: each with `article`
//! (id), `external_id`, `lang`, `published_at`, `title`, `url`, `source`,
//! `similarity` (to the cluster when it joined). CSV columns: [`CSV_COLUMNS`].

use std::{io::Write, path::Path};

use concord_store::{ExportRow, Store, Synchronous};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::{BulkError, ingest::Client};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Ndjson,
    Csv,
}

/// The CSV export's columns, in order.
pub const CSV_COLUMNS: [&str; 14] = [
    "cluster",
    "label",
    "size",
    "languages",
    "first_seen",
    "last_seen",
    "article",
    "external_id",
    "lang",
    "published_at",
    "similarity",
    "title",
    "url",
    "source",
];

/// A cluster as exported: its summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cluster {
    #[serde(rename = "cluster")]
    pub id: String,
    pub label: Option<String>,
    pub size: u64,
    pub languages: Vec<String>,
    pub first_seen: Option<Timestamp>,
    pub last_seen: Option<Timestamp>,
}

/// One member of a cluster as exported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    #[serde(alias = "id")]
    pub article: String,
    pub external_id: String,
    pub lang: Option<String>,
    pub published_at: Timestamp,
    pub title: String,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    /// Kept as the single-precision value it was computed as, so both sources print it alike.
    pub similarity: f32,
}

#[derive(Debug, Serialize)]
struct ClusterLine {
    #[serde(flatten)]
    cluster: Cluster,
    members: Vec<Member>,
}

/// A store row as what an export writes.
fn split_row(row: ExportRow) -> (Cluster, Member) {
    let cluster = Cluster {
        id: row.cluster.id.to_string(),
        label: row.label,
        size: row.cluster.size,
        languages: row
            .cluster
            .languages
            .iter()
            .map(|l| l.as_str().to_owned())
            .collect(),
        first_seen: row.cluster.first_published,
        last_seen: row.cluster.last_published,
    };
    let member = Member {
        article: row.article.to_string(),
        external_id: row.external_id,
        lang: row.lang.map(|l| l.as_str().to_owned()),
        published_at: row.published_at,
        title: row.title,
        url: row.url,
        source: row.source,
        similarity: row.similarity as f32,
    };
    (cluster, member)
}

/// How much an export wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    pub clusters: u64,
    pub articles: u64,
}

/// Writes rows (grouped by cluster, as [`concord_store::Db::export_rows`] gives them)
/// in one format. Only the current cluster's members are held in memory.
#[derive(Debug)]
pub struct Writer<W: Write> {
    out: Out<W>,
    current: Option<ClusterLine>,
    written: Written,
}

#[derive(Debug)]
enum Out<W: Write> {
    Ndjson(W),
    Csv(Box<csv::Writer<W>>),
}

impl<W: Write> Writer<W> {
    pub fn new(out: W, format: Format) -> Result<Self, BulkError> {
        let out = match format {
            Format::Ndjson => Out::Ndjson(out),
            Format::Csv => {
                let mut w = csv::Writer::from_writer(out);
                w.write_record(CSV_COLUMNS)?;
                Out::Csv(Box::new(w))
            }
        };
        Ok(Self {
            out,
            current: None,
            written: Written::default(),
        })
    }

    /// One member of `cluster`; members come grouped by cluster.
    pub fn push(&mut self, cluster: &Cluster, member: Member) -> Result<(), BulkError> {
        self.written.articles += 1;
        if let Out::Csv(w) = &mut self.out {
            if self
                .current
                .as_ref()
                .is_none_or(|c| c.cluster.id != cluster.id)
            {
                self.written.clusters += 1;
                self.current = Some(ClusterLine {
                    cluster: cluster.clone(),
                    members: Vec::new(),
                });
            }
            let ts = |t: Option<Timestamp>| t.map(|t| t.to_string()).unwrap_or_default();
            w.write_record([
                cluster.id.as_str(),
                cluster.label.as_deref().unwrap_or(""),
                &cluster.size.to_string(),
                &cluster.languages.join(";"),
                &ts(cluster.first_seen),
                &ts(cluster.last_seen),
                &member.article,
                &member.external_id,
                member.lang.as_deref().unwrap_or(""),
                &member.published_at.to_string(),
                &format!("{:.4}", member.similarity),
                &member.title,
                member.url.as_deref().unwrap_or(""),
                member.source.as_deref().unwrap_or(""),
            ])?;
            return Ok(());
        }
        if self
            .current
            .as_ref()
            .is_some_and(|c| c.cluster.id != cluster.id)
        {
            self.flush_cluster()?;
        }
        self.current
            .get_or_insert_with(|| ClusterLine {
                cluster: cluster.clone(),
                members: Vec::new(),
            })
            .members
            .push(member);
        Ok(())
    }

    fn flush_cluster(&mut self) -> Result<(), BulkError> {
        if let (Some(cluster), Out::Ndjson(w)) = (self.current.take(), &mut self.out) {
            serde_json::to_writer(&mut *w, &cluster)
                .map_err(|e| BulkError::Write(std::io::Error::other(e)))?;
            w.write_all(b"\n").map_err(BulkError::Write)?;
            self.written.clusters += 1;
        }
        Ok(())
    }

    /// Writes what is left and flushes.
    pub fn finish(mut self) -> Result<Written, BulkError> {
        self.flush_cluster()?;
        match &mut self.out {
            Out::Ndjson(w) => w.flush().map_err(BulkError::Write)?,
            Out::Csv(w) => w.flush().map_err(BulkError::Write)?,
        }
        Ok(self.written)
    }
}

/// Exports the clusters of the store in data directory `dir` with a member published
/// within `[from, until)`, reading one consistent snapshot on a read-only connection
/// (the service may keep running; the store is never created or changed).
pub fn from_data_dir<W: Write>(
    dir: &Path,
    from: Option<Timestamp>,
    until: Option<Timestamp>,
    writer: &mut Writer<W>,
) -> Result<(), BulkError> {
    from_store(
        &Store::existing(dir, Synchronous::Normal)?,
        from,
        until,
        writer,
    )
}

/// [`from_data_dir`] from a store already opened (a PostgreSQL one, say).
pub fn from_store<W: Write>(
    store: &Store,
    from: Option<Timestamp>,
    until: Option<Timestamp>,
    writer: &mut Writer<W>,
) -> Result<(), BulkError> {
    // One statement: SQLite and PostgreSQL both read it from one snapshot, whatever the
    // service writes meanwhile.
    store.connect_read_only()?.export_rows(from, until, |row| {
        let (cluster, member) = split_row(row);
        writer.push(&cluster, member)
    })?;
    Ok(())
}

#[derive(Debug, Deserialize)]
struct PageIn {
    clusters: Vec<SummaryIn>,
    next_cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
struct SummaryIn {
    id: String,
}

#[derive(Debug, Deserialize)]
struct ClusterIn {
    id: String,
    label: Option<String>,
    size: u64,
    languages: Vec<String>,
    first_seen: Option<Timestamp>,
    last_seen: Option<Timestamp>,
    members: Vec<Member>,
}

/// The number of a cluster id (`c12` → 12), for the data directory's order.
fn id_number(id: &str) -> u64 {
    id.trim_start_matches('c').parse().unwrap_or(u64::MAX)
}

/// Exports the clusters a running service lists with a member published within
/// `[from, until)`, through its API (`GET /v1/clusters`, page by page, then each
/// cluster), in cluster id order as from a data directory. Pages are read while the
/// service keeps clustering: a cluster merged away between the listing and its read
/// answers with its survivor, which is written once.
pub async fn from_api<W: Write>(
    client: &Client,
    from: Option<Timestamp>,
    until: Option<Timestamp>,
    writer: &mut Writer<W>,
) -> Result<(), BulkError> {
    let mut query = vec![("limit".to_owned(), "200".to_owned())];
    if let Some(from) = from {
        query.push(("from".into(), from.to_string()));
    }
    if let Some(until) = until {
        // The API's `to` includes its instant; `until` does not.
        let to = until
            .checked_sub(SignedDuration::from_millis(1))
            .unwrap_or(until);
        query.push(("to".into(), to.to_string()));
    }
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut q = query.clone();
        if let Some(c) = cursor.take() {
            q.push(("cursor".into(), c));
        }
        let page: PageIn = client.get_json("v1/clusters", &q).await?;
        ids.extend(page.clusters.into_iter().map(|c| c.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    ids.sort_by_key(|id| id_number(id));
    ids.dedup();
    let mut written = std::collections::HashSet::new();
    for id in ids {
        let c: ClusterIn = client.get_json(&format!("v1/clusters/{id}"), &[]).await?;
        if !written.insert(c.id.clone()) {
            continue;
        }
        let cluster = Cluster {
            id: c.id,
            label: c.label,
            size: c.size,
            languages: c.languages,
            first_seen: c.first_seen,
            last_seen: c.last_seen,
        };
        for member in c.members {
            writer.push(&cluster, member)?;
        }
    }
    Ok(())
}
