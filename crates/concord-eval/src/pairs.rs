//! Article pairs rated same event or not: the JSONL of `../shared/data/semeval-pairs/`.
//!
//! One JSON object per line with `pair_id`, `lang1`, `lang2`, `title1`, `text1`,
//! `title2`, `text2` and `same_event` (`true`, `false` or `null`); other fields (`score`,
//! `date1`, `date2`, `source`) are not read. Blank lines are skipped.
//!
//! - Pairs with `same_event` null are not scored and not replayed (only counted).
//! - Scored pair `i` (0-based, file order) puts both its articles at the same instant,
//!   2000-01-01T00:00:00Z + i × 30 days ([`PAIR_SPACING_DAYS`]): far outside the
//!   clusterer's ±7 day window of every other pair, so each pair is clustered alone.
//! - Keys are `{pair_id}#1` and `{pair_id}#2`. Gold: a same-event pair's two articles
//!   share the label `{pair_id}`; a different-event pair's are `{pair_id}#1` and
//!   `{pair_id}#2`.
//! - A null (or blank) title means the scrape found no separate headline and the text
//!   starts with it. The pipeline takes an empty title with a body (text preparation joins
//!   whatever of title and body is left, and refuses only when nothing is), so such an
//!   article is submitted as it came: title `""` and the whole text as the body, with no
//!   guess at where the headline ends.
//!
//! [`score`] counts, from a replay's predicted clusters, the same-event pairs put together
//! and the different-event pairs kept apart, overall and per language pair.

use std::{
    collections::{BTreeMap, HashMap},
    fs::File,
    io::{self, BufRead},
    path::Path,
};

use concord_core::Lang;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::{Dataset, EvalError, Item};

/// Days between two consecutive scored pairs' publication times.
pub const PAIR_SPACING_DAYS: i64 = 30;

/// The publication time of scored pair 0: 2000-01-01T00:00:00Z.
pub const PAIR_BASE: Timestamp = Timestamp::constant(946_684_800, 0);

/// A pairs file read for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairsData {
    /// Both articles of every scored pair, in replay order.
    pub dataset: Dataset,
    /// The scored pairs, in file order.
    pub pairs: Vec<ScoredPair>,
    /// Pairs left out because `same_event` is null.
    pub unscored: usize,
}

/// One scored pair: where its two articles are in [`PairsData::dataset`] and its label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScoredPair {
    pub pair_id: String,
    /// Index of the first article (`text1`) in the dataset's items.
    pub first: usize,
    /// Index of the second article (`text2`).
    pub second: usize,
    pub same_event: bool,
    pub lang1: Lang,
    pub lang2: Lang,
}

impl ScoredPair {
    /// The language pair's name, its two codes sorted: `de-en`, `ar-ar`.
    pub fn lang_pair(&self) -> String {
        let (a, b) = if self.lang1 <= self.lang2 {
            (self.lang1, self.lang2)
        } else {
            (self.lang2, self.lang1)
        };
        format!("{}-{}", a.as_str(), b.as_str())
    }
}

#[derive(Deserialize)]
struct Row {
    pair_id: String,
    lang1: String,
    lang2: String,
    title1: Option<String>,
    text1: String,
    title2: Option<String>,
    text2: String,
    same_event: Option<bool>,
}

/// Reads the pairs JSONL at `path`.
pub fn read(path: impl AsRef<Path>) -> Result<PairsData, EvalError> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| EvalError::io(path, e))?;
    from_reader(io::BufReader::new(file), path)
}

/// Reads pairs JSONL from `reader`; `origin` only names the source in errors.
pub fn from_reader(reader: impl BufRead, origin: &Path) -> Result<PairsData, EvalError> {
    let mut items = Vec::new();
    // (pair id, same event, languages) of each scored pair, in file order.
    let mut scored = Vec::new();
    let mut unscored = 0;
    let mut first_line: HashMap<String, u64> = HashMap::new();
    for (line, text) in (1u64..).zip(reader.lines()) {
        let text = text.map_err(|e| EvalError::io(origin, e))?;
        if text.trim().is_empty() {
            continue;
        }
        let bad = |reason: String| EvalError::malformed(origin, line, reason);
        let row: Row = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let pair_id = row.pair_id.trim().to_owned();
        if pair_id.is_empty() {
            return Err(bad("empty `pair_id`".to_owned()));
        }
        if let Some(first) = first_line.get(&pair_id) {
            return Err(bad(format!(
                "duplicate pair_id {pair_id:?}, first on line {first}"
            )));
        }
        first_line.insert(pair_id.clone(), line);
        let Some(same_event) = row.same_event else {
            unscored += 1;
            continue;
        };

        let lang1 = Lang::parse(&row.lang1).map_err(|e| bad(format!("`lang1`: {e}")))?;
        let lang2 = Lang::parse(&row.lang2).map_err(|e| bad(format!("`lang2`: {e}")))?;
        let days = PAIR_SPACING_DAYS
            .checked_mul(scored.len() as i64)
            .and_then(|days| days.checked_mul(86_400))
            .ok_or_else(|| bad("too many pairs to space in time".to_owned()))?;
        let published_at = PAIR_BASE
            .checked_add(SignedDuration::from_secs(days))
            .map_err(|e| bad(format!("too many pairs to space in time: {e}")))?;
        let gold = |n: u8| {
            if same_event {
                pair_id.clone()
            } else {
                format!("{pair_id}#{n}")
            }
        };
        let article = |n: u8, lang: Lang, title: Option<String>, text: String| {
            let title = title.map(|t| t.trim().to_owned()).unwrap_or_default();
            let body = text.trim().to_owned();
            if title.is_empty() && body.is_empty() {
                return Err(bad(format!("article {n} has neither title nor text")));
            }
            Ok(Item {
                key: format!("{pair_id}#{n}"),
                lang,
                published_at,
                title,
                body,
                gold: gold(n),
                reference: None,
            })
        };
        items.push(article(1, lang1, row.title1, row.text1)?);
        items.push(article(2, lang2, row.title2, row.text2)?);
        scored.push((pair_id, same_event, lang1, lang2));
    }

    let dataset = Dataset::new(items);
    let position: HashMap<&str, usize> = dataset
        .items
        .iter()
        .enumerate()
        .map(|(i, item)| (item.key.as_str(), i))
        .collect();
    let mut pairs = Vec::with_capacity(scored.len());
    for (pair_id, same_event, lang1, lang2) in scored {
        let find = |n: u8| {
            position
                .get(format!("{pair_id}#{n}").as_str())
                .copied()
                .ok_or_else(|| {
                    EvalError::invalid(origin, format!("pair {pair_id:?} lost article {n}"))
                })
        };
        pairs.push(ScoredPair {
            first: find(1)?,
            second: find(2)?,
            pair_id,
            same_event,
            lang1,
            lang2,
        });
    }
    Ok(PairsData {
        dataset,
        pairs,
        unscored,
    })
}

/// How many pairs a prediction got right, by label.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct PairCounts {
    /// Same-event pairs.
    pub same: u64,
    /// Same-event pairs whose two articles were predicted in one cluster.
    pub same_together: u64,
    /// Different-event pairs.
    pub different: u64,
    /// Different-event pairs whose two articles were predicted in different clusters.
    pub different_apart: u64,
    /// `same_together / same` (`None` when there is no same-event pair).
    pub same_together_rate: Option<f64>,
    /// `different_apart / different` (`None` when there is no different-event pair).
    pub different_apart_rate: Option<f64>,
    /// Right pairs over all scored pairs (`None` when there is none).
    pub accuracy: Option<f64>,
}

impl PairCounts {
    fn add(&mut self, same_event: bool, together: bool) {
        if same_event {
            self.same += 1;
            self.same_together += u64::from(together);
        } else {
            self.different += 1;
            self.different_apart += u64::from(!together);
        }
        let ratio = |n: u64, d: u64| (d > 0).then(|| n as f64 / d as f64);
        self.same_together_rate = ratio(self.same_together, self.same);
        self.different_apart_rate = ratio(self.different_apart, self.different);
        self.accuracy = ratio(
            self.same_together + self.different_apart,
            self.same + self.different,
        );
    }
}

/// Pair scores overall and per language pair (keys like `de-en`, codes sorted).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PairScores {
    #[serde(flatten)]
    pub all: PairCounts,
    pub lang_pairs: BTreeMap<String, PairCounts>,
}

/// Scores `pairs` against `predicted`, the predicted cluster of each dataset item (as a
/// replay returns them, in dataset order). An item past the end of `predicted` counts
/// as a cluster of its own, like an article the pipeline refused.
pub fn score<P: PartialEq>(pairs: &[ScoredPair], predicted: &[P]) -> PairScores {
    let mut scores = PairScores::default();
    for pair in pairs {
        let together = match (predicted.get(pair.first), predicted.get(pair.second)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        };
        scores.all.add(pair.same_event, together);
        scores
            .lang_pairs
            .entry(pair.lang_pair())
            .or_default()
            .add(pair.same_event, together);
    }
    scores
}
