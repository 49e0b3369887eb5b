use std::collections::{BTreeMap, HashSet};

use concord_core::Lang;
use jiff::{Span, Timestamp, civil::Date, tz::TimeZone};
use serde::Serialize;

use crate::sample::PyRandom;

/// One labelled article.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    /// Unique within its dataset: the article URI (OG2021), the file name (seeds) or
    /// `{pair_id}#1` / `{pair_id}#2` (pairs).
    pub key: String,
    pub lang: Lang,
    pub published_at: Timestamp,
    /// Empty where the dataset has no separate headline (pairs whose text starts with it).
    pub title: String,
    /// Empty where the dataset has titles only (OG2021).
    pub body: String,
    /// The gold event label; items with equal labels report the same event.
    pub gold: String,
    /// A reference system's cluster label, where the dataset has one: Event Registry's
    /// per-language event (`er_event_uri`) for OG2021, `None` for the seeds. `None` on an
    /// OG2021 item means the reference left it unclustered (a singleton).
    pub reference: Option<String>,
}

impl Item {
    /// The UTC calendar date of [`Item::published_at`].
    pub fn published_date(&self) -> Date {
        TimeZone::UTC.to_datetime(self.published_at).date()
    }
}

/// Labelled articles in replay order: sorted by `published_at`, ties kept in the order
/// of the source file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Dataset {
    pub items: Vec<Item>,
}

impl Dataset {
    /// Sorts `items` into replay order (stable, so ties keep their given order).
    pub fn new(mut items: Vec<Item>) -> Self {
        items.sort_by_key(|item| item.published_at);
        Self { items }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Number of distinct gold events.
    pub fn gold_clusters(&self) -> usize {
        self.items
            .iter()
            .map(|item| item.gold.as_str())
            .collect::<HashSet<_>>()
            .len()
    }

    /// How many items each language has.
    pub fn lang_counts(&self) -> BTreeMap<Lang, usize> {
        let mut counts = BTreeMap::new();
        for item in &self.items {
            *counts.entry(item.lang).or_insert(0) += 1;
        }
        counts
    }

    /// UTC dates of the first and the last item; `None` when empty.
    pub fn date_range(&self) -> Option<(Date, Date)> {
        let first = self.items.first()?.published_date();
        let last = self.items.last()?.published_date();
        Some((first, last))
    }

    /// The middle of [`Dataset::date_range`], rounded down to a whole day: a default
    /// boundary for a tune/test split (`filter_dates(None, Some(d))` to tune,
    /// `filter_dates(Some(d), None)` to test). For OG2021 (2021-07-01 to 2021-08-14)
    /// this is 2021-07-23, the same as [`crate::OG2021_TUNE_UNTIL`].
    pub fn split_date(&self) -> Option<Date> {
        let (first, last) = self.date_range()?;
        let days = last.duration_since(first).as_secs() / 86_400;
        let half = Span::new().try_days(days / 2).ok()?;
        first.checked_add(half).ok()
    }

    /// The same stream replayed `factor` times faster: every `published_at` is moved
    /// toward the first item's, `t0 + (t - t0) / factor`, so `factor` days of news fall
    /// in one. The events and their order are unchanged; each window holds `factor`
    /// times the articles, and an event's reports arrive `factor` times closer. A
    /// denser stream made of labelled events, to fit the join model at volumes the
    /// data never reaches (`scripts/fit_join.sh`). A `factor` of 1 (or below, or not
    /// finite) changes nothing.
    pub fn compress_time(&self, factor: f64) -> Dataset {
        let Some(first) = self.items.first().map(|item| item.published_at) else {
            return self.clone();
        };
        if !(factor.is_finite() && factor > 1.0) {
            return self.clone();
        }
        let t0 = first.as_millisecond();
        let items = self
            .items
            .iter()
            .map(|item| {
                let offset = (item.published_at.as_millisecond() - t0) as f64 / factor;
                let mut item = item.clone();
                // Within the original range, so always representable.
                item.published_at = Timestamp::from_millisecond(t0 + offset.round() as i64)
                    .unwrap_or(item.published_at);
                item
            })
            .collect();
        Dataset { items }
    }

    /// The same items in the order a feed that delivers each one up to `max_hours`
    /// late brings them: each arrives at its publication time plus a delay drawn
    /// uniformly from `[0, max_hours)` (CPython's `random.Random(seed)`, one draw per
    /// item in replay order), and the replay follows arrival (ties keep replay order).
    /// Publication times are kept: a late article still says when it was published,
    /// and the clusterer places it by that. A `max_hours` of 0 (or below, or not
    /// finite) changes nothing.
    pub fn delay_arrivals(&self, max_hours: f64, seed: u64) -> Dataset {
        if !(max_hours.is_finite() && max_hours > 0.0) {
            return self.clone();
        }
        let mut random = PyRandom::new(seed);
        let max_ms = max_hours * 3_600_000.0;
        let mut arriving: Vec<(i64, &Item)> = self
            .items
            .iter()
            .map(|item| {
                // Below max_ms, itself finite: the cast cannot saturate.
                let delay = (random.random() * max_ms) as i64;
                (
                    item.published_at.as_millisecond().saturating_add(delay),
                    item,
                )
            })
            .collect();
        arriving.sort_by_key(|(at, _)| *at);
        Dataset {
            items: arriving.into_iter().map(|(_, item)| item.clone()).collect(),
        }
    }

    /// The items whose UTC publication date `d` satisfies `from <= d < until`: `from` is
    /// inclusive, `until` exclusive, and `None` leaves that side open. So
    /// `filter_dates(None, Some(d))` and `filter_dates(Some(d), None)` split the dataset
    /// into two disjoint parts. Replay order is kept.
    pub fn filter_dates(&self, from: Option<Date>, until: Option<Date>) -> Dataset {
        let items = self
            .items
            .iter()
            .filter(|item| {
                let date = item.published_date();
                from.is_none_or(|from| date >= from) && until.is_none_or(|until| date < until)
            })
            .cloned()
            .collect();
        Dataset { items }
    }
}
