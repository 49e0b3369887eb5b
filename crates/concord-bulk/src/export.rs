//! Clusters with their members, written as NDJSON (one cluster per line) or CSV (one
//! member per row, its cluster's summary repeated), from the store's export rows.
//!
//! NDJSON fields: `cluster` (id), `label` (its label article's title), `size`,
//! `languages`, `first_seen`, `last_seen` (RFC 3339), `members`: each with `article`
//! (id), `external_id`, `lang`, `published_at`, `title`, `url`, `source`,
//! `similarity` (to the cluster when it joined). CSV columns: [`CSV_COLUMNS`].

use std::{io::Write, path::Path};

use concord_store::{ExportRow, Store, Synchronous};
use jiff::Timestamp;
use serde::Serialize;

use crate::BulkError;

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

#[derive(Debug, Serialize)]
struct ClusterLine {
    cluster: String,
    label: Option<String>,
    size: u64,
    languages: Vec<String>,
    first_seen: Option<Timestamp>,
    last_seen: Option<Timestamp>,
    members: Vec<MemberLine>,
}

#[derive(Debug, Serialize)]
struct MemberLine {
    article: String,
    external_id: String,
    lang: Option<String>,
    published_at: Timestamp,
    title: String,
    url: Option<String>,
    source: Option<String>,
    similarity: f64,
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

    pub fn push(&mut self, row: ExportRow) -> Result<(), BulkError> {
        let cluster = row.cluster.id.to_string();
        self.written.articles += 1;
        if let Out::Csv(w) = &mut self.out {
            if self.current.as_ref().is_none_or(|c| c.cluster != cluster) {
                self.written.clusters += 1;
                self.current = Some(summary(&row, cluster.clone()));
            }
            let ts = |t: Option<Timestamp>| t.map(|t| t.to_string()).unwrap_or_default();
            w.write_record([
                cluster.as_str(),
                row.label.as_deref().unwrap_or(""),
                &row.cluster.size.to_string(),
                &languages(&row).join(";"),
                &ts(row.cluster.first_published),
                &ts(row.cluster.last_published),
                &row.article.to_string(),
                &row.external_id,
                row.lang.map(|l| l.as_str()).unwrap_or(""),
                &row.published_at.to_string(),
                &format!("{:.4}", row.similarity),
                &row.title,
                row.url.as_deref().unwrap_or(""),
                row.source.as_deref().unwrap_or(""),
            ])?;
            return Ok(());
        }
        if self.current.as_ref().is_some_and(|c| c.cluster != cluster) {
            self.flush_cluster()?;
        }
        let current = self
            .current
            .get_or_insert_with(|| summary(&row, cluster.clone()));
        current.members.push(MemberLine {
            article: row.article.to_string(),
            external_id: row.external_id,
            lang: row.lang.map(|l| l.as_str().to_owned()),
            published_at: row.published_at,
            title: row.title,
            url: row.url,
            source: row.source,
            similarity: row.similarity,
        });
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

fn languages(row: &ExportRow) -> Vec<String> {
    row.cluster
        .languages
        .iter()
        .map(|l| l.as_str().to_owned())
        .collect()
}

fn summary(row: &ExportRow, cluster: String) -> ClusterLine {
    ClusterLine {
        cluster,
        label: row.label.clone(),
        size: row.cluster.size,
        languages: languages(row),
        first_seen: row.cluster.first_published,
        last_seen: row.cluster.last_published,
        members: Vec::new(),
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
    let store = Store::existing(dir, Synchronous::Normal)?;
    // One statement: SQLite reads it from one snapshot, whatever the service writes meanwhile.
    store
        .connect_read_only()?
        .export_rows(from, until, |row| writer.push(row))?;
    Ok(())
}
