//! The seed articles: a directory of `NNN_*.txt` files and a `labels.jsonl`.
//!
//! Each text file's first non-empty line is the title and everything after it the body.
//! `labels.jsonl` has one JSON object per line,
//! `{"file","lang","outlet","published","event"}`; `published` is a date (`YYYY-MM-DD`),
//! read as midnight UTC, and `event` is the gold label. Every `.txt` file in the directory
//! must be labelled exactly once.

use std::{
    collections::{HashMap, HashSet},
    fs,
    path::Path,
};

use concord_core::Lang;
use jiff::{civil::Date, tz::TimeZone};
use serde::Deserialize;

use crate::{Dataset, EvalError, Item};

/// The labels file inside a seeds directory.
pub const LABELS: &str = "labels.jsonl";

#[derive(Deserialize)]
struct Label {
    file: String,
    lang: String,
    published: String,
    event: String,
}

/// Reads the seed articles in `dir`. Replay order: by date, ties in `labels.jsonl` order.
pub fn read(dir: impl AsRef<Path>) -> Result<Dataset, EvalError> {
    let dir = dir.as_ref();
    let labels_path = dir.join(LABELS);
    let labels = fs::read_to_string(&labels_path).map_err(|e| EvalError::io(&labels_path, e))?;

    let mut items = Vec::new();
    let mut first_line: HashMap<String, u64> = HashMap::new();
    for (line, text) in (1u64..).zip(labels.lines()) {
        if text.trim().is_empty() {
            continue;
        }
        let bad = |reason: String| EvalError::malformed(&labels_path, line, reason);
        let label: Label = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        if label.file.is_empty()
            || label.file.contains(['/', '\\'])
            || label.file.starts_with('.')
            || !label.file.ends_with(".txt")
        {
            return Err(bad(format!(
                "`file` must name a .txt file in the directory, got {:?}",
                label.file
            )));
        }
        if let Some(first) = first_line.get(&label.file) {
            return Err(bad(format!(
                "{:?} labelled twice, first on line {first}",
                label.file
            )));
        }
        let lang = Lang::parse(&label.lang).map_err(|e| bad(format!("`lang`: {e}")))?;
        let date = Date::strptime("%Y-%m-%d", label.published.trim()).map_err(|e| {
            bad(format!(
                "`published`: expected `YYYY-MM-DD`, got {:?}: {e}",
                label.published
            ))
        })?;
        let published_at = TimeZone::UTC
            .to_timestamp(date.to_datetime(jiff::civil::Time::midnight()))
            .map_err(|e| bad(format!("`published`: {e}")))?;
        let gold = label.event.trim();
        if gold.is_empty() {
            return Err(bad("empty `event`".to_owned()));
        }

        let path = dir.join(&label.file);
        let text = fs::read_to_string(&path).map_err(|e| EvalError::io(&path, e))?;
        let (title, body) = split_title(&text)
            .ok_or_else(|| EvalError::invalid(&path, "no title: the file is blank"))?;

        first_line.insert(label.file.clone(), line);
        items.push(Item {
            key: label.file,
            lang,
            published_at,
            title: title.to_owned(),
            body: body.to_owned(),
            gold: gold.to_owned(),
            reference: None,
        });
    }

    let labelled: HashSet<&str> = items.iter().map(|item| item.key.as_str()).collect();
    let entries = fs::read_dir(dir).map_err(|e| EvalError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| EvalError::io(dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(".txt") && !labelled.contains(name.as_ref()) {
            return Err(EvalError::invalid(
                &labels_path,
                format!("{name:?} is in the directory but has no label"),
            ));
        }
    }
    Ok(Dataset::new(items))
}

/// The first non-empty line (trimmed) and the rest of the text (trimmed); `None` when
/// every line is blank.
fn split_title(text: &str) -> Option<(&str, &str)> {
    let text = text.trim_start();
    if text.is_empty() {
        return None;
    }
    let (title, body) = text.split_once('\n').unwrap_or((text, ""));
    Some((title.trim(), body.trim()))
}
