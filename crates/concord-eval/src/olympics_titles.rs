//! The OG2021 Tokyo Olympics dataset: `og2021_titles_clusters.csv`, titles only.
//!
//! Columns (by header name; extra columns are ignored): `uri`, `lang` (ISO 639-3),
//! `published_at` (`YYYY-MM-DD HH:MM:SS`, UTC), `cluster_id` (gold), `er_event_uri`
//! (Event Registry's per-language event, may be empty) and `title`. `id` and
//! `orig_cluster_id` are not read.

use std::{collections::HashMap, fs::File, io, path::Path};

use concord_core::Lang;
use jiff::{
    Timestamp,
    civil::{Date, DateTime, date},
    tz::TimeZone,
};

use crate::{Dataset, EvalError, Item, sample::Sample};

/// End (exclusive) of the OG2021 tuning period: tune on articles published before
/// 2021-07-23, report on the rest (`filter_dates(None, Some(OG2021_TUNE_UNTIL))` and
/// `filter_dates(Some(OG2021_TUNE_UNTIL), None)`).
pub const OG2021_TUNE_UNTIL: Date = date(2021, 7, 23);

const COLUMNS: [&str; 6] = [
    "uri",
    "lang",
    "published_at",
    "cluster_id",
    "er_event_uri",
    "title",
];

/// Reads the OG2021 CSV at `path`.
pub fn read(path: impl AsRef<Path>) -> Result<Dataset, EvalError> {
    read_sampled(path, None)
}

/// Reads the OG2021 CSV at `path`, keeping only `sample`'s rows when given (drawn over
/// the rows in file order, before replay order: the subset Python draws from the file).
pub fn read_sampled(path: impl AsRef<Path>, sample: Option<&Sample>) -> Result<Dataset, EvalError> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| EvalError::io(path, e))?;
    from_reader_sampled(io::BufReader::new(file), path, sample)
}

/// Reads OG2021 CSV text from `reader`; `origin` only names the source in errors.
pub fn from_reader(reader: impl io::Read, origin: &Path) -> Result<Dataset, EvalError> {
    from_reader_sampled(reader, origin, None)
}

/// [`from_reader`] keeping only `sample`'s rows when given. Every row is read and
/// checked first, so a malformed row is an error whichever rows the sample keeps.
pub fn from_reader_sampled(
    reader: impl io::Read,
    origin: &Path,
    sample: Option<&Sample>,
) -> Result<Dataset, EvalError> {
    let items = rows(reader, origin)?;
    Ok(Dataset::new(match sample {
        Some(sample) => sample.apply(items),
        None => items,
    }))
}

/// Every row, in file order.
fn rows(reader: impl io::Read, origin: &Path) -> Result<Vec<Item>, EvalError> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(reader);
    let headers = csv.headers().map_err(|e| csv_error(origin, e))?.clone();
    let mut index = [0usize; COLUMNS.len()];
    for (slot, name) in index.iter_mut().zip(COLUMNS) {
        *slot = headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| EvalError::malformed(origin, 1, format!("missing column `{name}`")))?;
    }
    let [uri, lang, published_at, cluster_id, er_event_uri, title] = index;

    let mut items = Vec::new();
    let mut first_line: HashMap<String, u64> = HashMap::new();
    let mut record = csv::StringRecord::new();
    while csv
        .read_record(&mut record)
        .map_err(|e| csv_error(origin, e))?
    {
        let line = record.position().map_or(0, csv::Position::line);
        let bad = |reason: String| EvalError::malformed(origin, line, reason);
        let field = |i: usize, name: &str| {
            record
                .get(i)
                .map(str::trim)
                .ok_or_else(|| bad(format!("missing field `{name}`")))
        };
        let nonempty = |i: usize, name: &str| {
            field(i, name).and_then(|v| {
                if v.is_empty() {
                    Err(bad(format!("empty `{name}`")))
                } else {
                    Ok(v)
                }
            })
        };

        let key = nonempty(uri, "uri")?.to_owned();
        let lang = Lang::parse(field(lang, "lang")?).map_err(|e| bad(format!("`lang`: {e}")))?;
        let published_at = parse_timestamp(field(published_at, "published_at")?)
            .map_err(|reason| bad(format!("`published_at`: {reason}")))?;
        let gold = nonempty(cluster_id, "cluster_id")?.to_owned();
        let reference = Some(field(er_event_uri, "er_event_uri")?)
            .filter(|v| !v.is_empty())
            .map(str::to_owned);
        let title = nonempty(title, "title")?.to_owned();

        if let Some(first) = first_line.get(&key) {
            return Err(bad(format!("duplicate uri {key:?}, first on line {first}")));
        }
        first_line.insert(key.clone(), line);
        items.push(Item {
            key,
            lang,
            published_at,
            title,
            body: String::new(),
            gold,
            reference,
        });
    }
    Ok(items)
}

/// `YYYY-MM-DD HH:MM:SS`, in UTC.
fn parse_timestamp(s: &str) -> Result<Timestamp, String> {
    let invalid = |e: jiff::Error| format!("expected `YYYY-MM-DD HH:MM:SS` (UTC), got {s:?}: {e}");
    let datetime = DateTime::strptime("%Y-%m-%d %H:%M:%S", s).map_err(invalid)?;
    TimeZone::UTC.to_timestamp(datetime).map_err(invalid)
}

fn csv_error(origin: &Path, error: csv::Error) -> EvalError {
    let line = error.position().map_or(0, csv::Position::line);
    let reason = error.to_string();
    match error.into_kind() {
        csv::ErrorKind::Io(e) => EvalError::io(origin, e),
        _ => EvalError::malformed(origin, line, reason),
    }
}
