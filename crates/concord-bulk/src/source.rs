//! Article files, record by record: JSONL (one API article object per line) or CSV
//! (a header naming the article's fields, one article per row).

use std::{
    collections::VecDeque,
    io::{self, BufRead, BufReader, Read},
    path::Path,
    sync::{Arc, Mutex, PoisonError},
};

use serde_json::{Map, Value};

use crate::BulkError;

/// The fields of an article in the API's shape (`POST /v1/articles`); a CSV header
/// may name these and nothing else.
pub const FIELDS: [&str; 7] = [
    "external_id",
    "title",
    "body",
    "lang",
    "published_at",
    "url",
    "source",
];

/// The fields without which the API refuses every article: a CSV lacking one of these
/// columns is refused up front rather than line by line.
pub const REQUIRED: [&str; 3] = ["external_id", "title", "published_at"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
}

impl Format {
    /// By the file name: `.csv` is CSV, anything else (`.jsonl`, `.ndjson`, `-`) JSONL.
    pub fn of_path(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("csv") => Format::Csv,
            _ => Format::Jsonl,
        }
    }
}

/// One record of the input: where it starts (1-based line) and the article object,
/// or why that line holds none.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub line: u64,
    pub article: Result<Map<String, Value>, String>,
}

/// The records of one input, read lazily: a file of any size streams through.
#[derive(Debug)]
pub struct Records<R: Read> {
    inner: Inner<R>,
    bytes: u64,
}

enum Inner<R: Read> {
    Jsonl {
        reader: BufReader<R>,
        line: u64,
        buf: Vec<u8>,
    },
    Csv {
        reader: Box<csv::Reader<Tracked<R>>>,
        lines: Arc<Mutex<Lines>>,
        headers: Vec<String>,
        record: csv::StringRecord,
    },
}

/// Where the lines of a stream start, as far ahead as the CSV reader has read: it
/// reports a record's byte offset (before any blank lines it skipped) but not a line
/// number that counts those blank lines, so lines are counted here from the bytes.
#[derive(Debug)]
struct Lines {
    /// Bytes passed through so far.
    consumed: u64,
    /// The 1-based line the next byte is on, and whether it starts that line.
    line: u64,
    at_start: bool,
    /// (offset, line) of each non-blank line's first byte not yet asked about.
    starts: VecDeque<(u64, u64)>,
}

impl Default for Lines {
    fn default() -> Self {
        Self {
            consumed: 0,
            line: 1,
            at_start: true,
            starts: VecDeque::new(),
        }
    }
}

impl Lines {
    fn saw(&mut self, bytes: &[u8]) {
        for (i, b) in bytes.iter().enumerate() {
            match b {
                b'\n' => {
                    self.line += 1;
                    self.at_start = true;
                }
                b'\r' => {}
                _ if self.at_start => {
                    self.starts.push_back((self.consumed + i as u64, self.line));
                    self.at_start = false;
                }
                _ => {}
            }
        }
        self.consumed += bytes.len() as u64;
    }

    /// The line of the first non-blank line starting at or after byte `offset`
    /// (offsets asked in increasing order).
    fn line_of(&mut self, offset: u64) -> u64 {
        while self.starts.front().is_some_and(|&(at, _)| at < offset) {
            self.starts.pop_front();
        }
        self.starts.front().map_or(self.line, |&(_, line)| line)
    }
}

/// A reader that notes where the newlines go by.
#[derive(Debug)]
struct Tracked<R> {
    inner: R,
    lines: Arc<Mutex<Lines>>,
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .saw(&buf[..n]);
        Ok(n)
    }
}

impl<R: Read> std::fmt::Debug for Inner<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Inner::Jsonl { line, .. } => f.debug_struct("Jsonl").field("line", line).finish(),
            Inner::Csv { headers, .. } => f.debug_struct("Csv").field("headers", headers).finish(),
        }
    }
}

impl<R: Read> Records<R> {
    /// Starts reading `reader`; for CSV, reads and checks the header first.
    pub fn new(reader: R, format: Format) -> Result<Self, BulkError> {
        let inner = match format {
            Format::Jsonl => Inner::Jsonl {
                reader: BufReader::new(reader),
                line: 0,
                buf: Vec::new(),
            },
            Format::Csv => {
                let lines = Arc::new(Mutex::new(Lines::default()));
                let mut reader = csv::ReaderBuilder::new()
                    .has_headers(true)
                    .flexible(true)
                    .from_reader(Tracked {
                        inner: reader,
                        lines: lines.clone(),
                    });
                let headers: Vec<String> = reader
                    .headers()
                    .map_err(csv_fatal)?
                    .iter()
                    .map(|h| h.trim().to_owned())
                    .collect();
                check_headers(&headers)?;
                Inner::Csv {
                    reader: Box::new(reader),
                    lines,
                    headers,
                    record: csv::StringRecord::new(),
                }
            }
        };
        Ok(Self { inner, bytes: 0 })
    }

    /// Bytes of the input consumed so far (for a progress bar over a file's size).
    pub fn bytes_read(&self) -> u64 {
        match &self.inner {
            Inner::Jsonl { .. } => self.bytes,
            Inner::Csv { reader, .. } => reader.position().byte(),
        }
    }
}

fn check_headers(headers: &[String]) -> Result<(), BulkError> {
    for (i, h) in headers.iter().enumerate() {
        if !FIELDS.contains(&h.as_str()) {
            return Err(BulkError::Header(format!(
                "unknown column {h:?}; the columns are the article's fields: {}",
                FIELDS.join(", ")
            )));
        }
        if headers[..i].contains(h) {
            return Err(BulkError::Header(format!("column {h:?} appears twice")));
        }
    }
    for required in REQUIRED {
        if !headers.iter().any(|h| h == required) {
            return Err(BulkError::Header(format!(
                "no column {required:?}: every article needs one"
            )));
        }
    }
    Ok(())
}

fn csv_fatal(e: csv::Error) -> BulkError {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => BulkError::Read(io),
        other => BulkError::Header(format!("{other:?}")),
    }
}

impl<R: Read> Iterator for Records<R> {
    type Item = Result<Record, BulkError>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            Inner::Jsonl { reader, line, buf } => loop {
                buf.clear();
                let n = match reader.read_until(b'\n', buf) {
                    Ok(0) => return None,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Some(Err(BulkError::Read(e))),
                };
                self.bytes += n as u64;
                *line += 1;
                let text = match std::str::from_utf8(buf) {
                    Ok(text) => text.trim(),
                    Err(e) => {
                        return Some(Ok(Record {
                            line: *line,
                            article: Err(format!("not UTF-8 text ({e})")),
                        }));
                    }
                };
                if text.is_empty() {
                    continue;
                }
                let article = match serde_json::from_str::<Value>(text) {
                    Ok(Value::Object(map)) => Ok(map),
                    Ok(_) => Err("not a JSON object".to_owned()),
                    Err(e) => Err(format!("not JSON: {e}")),
                };
                return Some(Ok(Record {
                    line: *line,
                    article,
                }));
            },
            Inner::Csv {
                reader,
                lines,
                headers,
                record,
            } => loop {
                let line_of = |byte: u64| {
                    lines
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .line_of(byte)
                };
                match reader.read_record(record) {
                    Ok(false) => return None,
                    Ok(true) => {
                        let line = record.position().map_or(0, |p| line_of(p.byte()));
                        if record.iter().all(|cell| cell.trim().is_empty()) {
                            continue;
                        }
                        if record.len() != headers.len() {
                            return Some(Ok(Record {
                                line,
                                article: Err(format!(
                                    "{} cells where the header has {}",
                                    record.len(),
                                    headers.len()
                                )),
                            }));
                        }
                        // An empty cell is an absent field (the API's defaults apply).
                        let article = headers
                            .iter()
                            .zip(record.iter())
                            .filter(|(_, cell)| !cell.is_empty())
                            .map(|(h, cell)| (h.clone(), Value::String(cell.to_owned())))
                            .collect();
                        return Some(Ok(Record {
                            line,
                            article: Ok(article),
                        }));
                    }
                    Err(e) => {
                        let line = e.position().map_or(0, |p| line_of(p.byte()));
                        match e.into_kind() {
                            csv::ErrorKind::Io(io) => return Some(Err(BulkError::Read(io))),
                            csv::ErrorKind::Utf8 { err, .. } => {
                                return Some(Ok(Record {
                                    line,
                                    article: Err(format!("not UTF-8 text ({err})")),
                                }));
                            }
                            other => {
                                return Some(Ok(Record {
                                    line,
                                    article: Err(format!("malformed CSV: {other:?}")),
                                }));
                            }
                        }
                    }
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn read(input: &str, format: Format) -> Vec<Record> {
        Records::new(input.as_bytes(), format)
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn jsonl_gives_each_object_its_line_and_says_why_a_line_is_not_one() {
        let input = "{\"external_id\":\"a\",\"title\":\"Initiative\"}\n\
                     \n\
                     [1, 2]\n\
                     {\"external_id\": \n\
                     {\"external_id\":\"b\",\"title\":\"مبادرة\"}";
        let records = read(input, Format::Jsonl);
        let lines: Vec<u64> = records.iter().map(|r| r.line).collect();
        assert_eq!(lines, [1, 3, 4, 5]);
        assert_eq!(records[0].article.as_ref().unwrap()["title"], "Initiative");
        assert_eq!(records[1].article, Err("not a JSON object".to_owned()));
        assert!(
            records[2]
                .article
                .as_ref()
                .unwrap_err()
                .starts_with("not JSON")
        );
        assert_eq!(records[3].article.as_ref().unwrap()["title"], "مبادرة");
    }

    #[test]
    fn jsonl_reports_bytes_that_are_not_utf8_and_goes_on() {
        let mut input = b"\xff\xfe{}\n".to_vec();
        input.extend_from_slice(b"{\"external_id\":\"a\"}\n");
        let mut records = Records::new(&input[..], Format::Jsonl).unwrap();
        let first = records.next().unwrap().unwrap();
        assert!(first.article.unwrap_err().starts_with("not UTF-8"));
        assert_eq!(records.next().unwrap().unwrap().line, 2);
        assert!(records.next().is_none());
        assert_eq!(records.bytes_read(), input.len() as u64);
    }

    #[test]
    fn csv_maps_columns_to_fields_and_leaves_empty_cells_out() {
        let input = "external_id,title,lang,published_at,body\n\
                     a,\"Initiative, mondiale\",fr,2020-09-08T10:00:00Z,\n\
                     \n\
                     b,Data security,,2020-09-09T10:00:00Z,\"Two\nlines\"\n\
                     c,short row\n";
        let records = read(input, Format::Csv);
        assert_eq!(records.len(), 3);
        let a = records[0].article.as_ref().unwrap();
        assert_eq!(records[0].line, 2);
        assert_eq!(a["title"], "Initiative, mondiale");
        assert!(!a.contains_key("body"));
        let b = records[1].article.as_ref().unwrap();
        assert_eq!(records[1].line, 4);
        assert!(!b.contains_key("lang"));
        assert_eq!(b["body"], "Two\nlines");
        assert_eq!(records[2].line, 6);
        assert_eq!(
            records[2].article,
            Err("2 cells where the header has 5".to_owned())
        );
    }

    #[test]
    fn a_csv_header_with_an_unknown_repeated_or_missing_column_is_refused_up_front() {
        for (header, says) in [
            (
                "external_id,title,published_at,author\n",
                "unknown column \"author\"",
            ),
            ("external_id,title,title,published_at\n", "appears twice"),
            ("external_id,published_at\n", "no column \"title\""),
        ] {
            let err = Records::new(header.as_bytes(), Format::Csv).unwrap_err();
            assert!(err.to_string().contains(says), "{err}");
        }
    }

    #[test]
    fn the_format_follows_the_file_name() {
        assert_eq!(Format::of_path(Path::new("a.CSV")), Format::Csv);
        assert_eq!(Format::of_path(Path::new("a.jsonl")), Format::Jsonl);
        assert_eq!(Format::of_path(Path::new("-")), Format::Jsonl);
    }

    proptest::proptest! {
        /// Any bytes: every line becomes a record or a reason, never a panic, and the
        /// line numbers only grow.
        #[test]
        fn any_input_reads_without_panicking(input in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            for format in [Format::Jsonl, Format::Csv] {
                let Ok(records) = Records::new(&input[..], format) else { continue };
                let mut last = 0;
                for record in records {
                    let Ok(record) = record else { break };
                    proptest::prop_assert!(record.line >= last);
                    last = record.line;
                }
            }
        }
    }
}
