//! Running means of the model's vectors (overall and per language), which
//! the rule subtracts before comparing ("centring").
//!
//! Two views are kept. `all` holds every article seen. `settled` holds only
//! the articles published more than `centering_lag_hours` before the newest
//! one seen (the stream's clock): while a story breaks, its own reports are not
//! yet in the mean that is subtracted, so what they share survives centring.
//! Until `centering_lag_min` articles have settled, `all` is used instead (a
//! young store has no history to lean on).

use std::collections::{BTreeMap, HashMap};

use concord_core::{ArticleId, Lang};

use crate::rule::{Centering, RuleParams};

/// One running sum: the weighted sum of vectors, how many were added and
/// their total weight (equal to the count unless weighted).
#[derive(Debug, Default, Clone)]
struct Acc {
    sum: Vec<f64>,
    n: u64,
    w: f64,
}

impl Acc {
    fn add(&mut self, v: &[f32], weight: f64) {
        if self.sum.len() != v.len() {
            self.sum = vec![0.0; v.len()];
        }
        self.sum
            .iter_mut()
            .zip(v)
            .for_each(|(s, x)| *s += weight * f64::from(*x));
        if weight > 0.0 {
            self.n += 1;
            self.w += weight;
        } else {
            self.n = self.n.saturating_sub(1);
            self.w = (self.w + weight).max(0.0);
        }
    }
}

/// Running sums, overall and per language.
#[derive(Debug, Default, Clone)]
struct Sums {
    global: Acc,
    by_lang: HashMap<Option<Lang>, Acc>,
}

impl Sums {
    /// Adds `v` with `weight` (negative: takes it out again).
    fn add(&mut self, lang: Option<Lang>, v: &[f32], weight: f64) {
        self.global.add(v, weight);
        self.by_lang.entry(lang).or_default().add(v, weight);
    }

    fn lang_count(&self, lang: Option<Lang>) -> u64 {
        self.by_lang.get(&lang).map_or(0, |e| e.n)
    }

    /// The mean to subtract from `v` (counting `v` itself, with weight 1, when
    /// `with_self`), or `None` for no centring.
    fn mean(
        &self,
        params: &RuleParams,
        lang: Option<Lang>,
        v: &[f32],
        with_self: bool,
    ) -> Option<Vec<f64>> {
        let extra = if with_self { 1.0 } else { 0.0 };
        let mean_with = |entry: Option<&Acc>| -> Vec<f64> {
            let w = entry.map_or(0.0, |e| e.w) + extra;
            v.iter()
                .enumerate()
                .map(|(i, x)| {
                    let s = entry.and_then(|e| e.sum.get(i)).copied().unwrap_or(0.0)
                        + extra * f64::from(*x);
                    if w > 0.0 { s / w } else { 0.0 }
                })
                .collect()
        };
        match params.centering {
            Centering::None => None,
            Centering::Global => Some(mean_with(Some(&self.global))),
            Centering::Language => {
                let lang_entry = self.by_lang.get(&lang);
                let n_l = lang_entry.map_or(0, |e| e.n) as f64 + extra;
                let a = n_l / (n_l + params.centering_shrink);
                let lm = mean_with(lang_entry);
                let gm = mean_with(Some(&self.global));
                Some(
                    lm.iter()
                        .zip(&gm)
                        .map(|(l, g)| a * l + (1.0 - a) * g)
                        .collect(),
                )
            }
        }
    }
}

/// The centring means, with the lag described in the module docs.
#[derive(Debug, Default)]
pub(crate) struct Means {
    all: Sums,
    settled: Sums,
    /// Articles in `all` but not yet in `settled`, by (published_at, id).
    pending: BTreeMap<(i64, ArticleId), (Option<Lang>, Vec<f32>)>,
    /// The newest published_at seen (seconds).
    clock: Option<i64>,
    /// While too little has settled: `settled` plus every pending vector
    /// weighted by its cluster's size to the power `-centering_balance`, and
    /// how many articles `all` held when it was computed ([`Means::rebalance`]).
    balanced: Option<(Sums, u64)>,
}

impl Means {
    /// Adds an article's model vector, published at `secs`.
    pub fn add(
        &mut self,
        params: &RuleParams,
        id: ArticleId,
        secs: i64,
        lang: Option<Lang>,
        v: &[f32],
    ) {
        self.all.add(lang, v, 1.0);
        self.pending.insert((secs, id), (lang, v.to_vec()));
        self.clock = Some(self.clock.map_or(secs, |c| c.max(secs)));
        self.settle(params);
    }

    /// Takes an article out again (`v` as it was added).
    pub fn remove(&mut self, id: ArticleId, secs: i64, lang: Option<Lang>, v: &[f32]) {
        self.all.add(lang, v, -1.0);
        self.balanced = None;
        if self.pending.remove(&(secs, id)).is_none() {
            self.settled.add(lang, v, -1.0);
        }
    }

    /// Moves into `settled` what the clock has left `centering_lag_hours` behind.
    fn settle(&mut self, params: &RuleParams) {
        let Some(clock) = self.clock else { return };
        let horizon = clock.saturating_sub((params.centering_lag_hours * 3600.0) as i64);
        while let Some(entry) = self.pending.first_entry() {
            if entry.key().0 >= horizon {
                break;
            }
            let (lang, v) = entry.remove();
            self.settled.add(lang, &v, 1.0);
        }
    }

    /// Whether centring uses the settled means (else every article seen).
    fn use_settled(&self, params: &RuleParams, lang: Option<Lang>) -> bool {
        params.centering_lag_hours > 0.0
            && self.settled.global.n >= params.centering_lag_min
            && (params.centering != Centering::Language || self.settled.lang_count(lang) > 0)
    }

    /// While too little has settled (a young store), recomputes the
    /// balanced sums: each article waiting to settle counts
    /// `cluster_size(id)^-centering_balance` instead of 1. A young store's
    /// only history is what is breaking now; counted per article, a story
    /// with hundreds of reports (an opening ceremony on a service's first
    /// day) becomes the mean and is centred out of its own reports, while
    /// counted per cluster it is one event among the others. Recomputing
    /// costs a pass over the waiting vectors, so it runs only when the store
    /// has grown by 2% since the last time (a burst stays linear overall).
    pub fn rebalance(&mut self, params: &RuleParams, cluster_size: impl Fn(ArticleId) -> usize) {
        if params.centering_balance <= 0.0
            || params.centering_lag_hours <= 0.0
            || self.settled.global.n >= params.centering_lag_min
        {
            self.balanced = None;
            return;
        }
        let n = self.all.global.n;
        if let Some((_, at)) = &self.balanced
            && n < at + (at / 50).max(1)
        {
            return;
        }
        let mut sums = self.settled.clone();
        for ((_, id), (lang, v)) in &self.pending {
            let size = cluster_size(*id).max(1) as f64;
            sums.add(*lang, v, size.powf(-params.centering_balance));
        }
        self.balanced = Some((sums, n));
    }

    /// The centred vector of `v`: `normalize(v - w·mu)`; `v` itself when
    /// nothing is left. Without the lag (or before enough has settled), `mu`
    /// counts `v` as if already added (over the balanced sums when
    /// [`Means::rebalance`] made them) and `w = N/(N + centering_warmup)`
    /// keeps a young store barely centred.
    pub fn centre(&self, params: &RuleParams, lang: Option<Lang>, v: &[f32]) -> Vec<f32> {
        let settled = self.use_settled(params, lang);
        let (sums, with_self) = if settled {
            (&self.settled, false)
        } else {
            // `rebalance` keeps balanced sums only while balancing is on.
            (self.balanced.as_ref().map_or(&self.all, |(b, _)| b), true)
        };
        let Some(mu) = sums.mean(params, lang, v, with_self) else {
            return v.to_vec();
        };
        let weight = if settled {
            1.0
        } else {
            let n = self.all.global.n as f64 + 1.0;
            n / (n + params.centering_warmup)
        };
        let x: Vec<f64> = v
            .iter()
            .zip(&mu)
            .map(|(a, m)| f64::from(*a) - weight * m)
            .collect();
        let norm = x.iter().map(|y| y * y).sum::<f64>().sqrt();
        if norm <= 1e-9 {
            return v.to_vec();
        }
        x.iter().map(|y| (y / norm) as f32).collect()
    }

    /// Heap bytes held (the sums and the vectors waiting to settle).
    pub fn memory_bytes(&self) -> usize {
        let sums = |s: &Sums| {
            (s.global.sum.capacity() + s.by_lang.values().map(|e| e.sum.capacity()).sum::<usize>())
                * std::mem::size_of::<f64>()
        };
        let pending: usize = self
            .pending
            .values()
            .map(|(_, v)| v.capacity() * std::mem::size_of::<f32>() + 48)
            .sum();
        sums(&self.all)
            + sums(&self.settled)
            + self.balanced.as_ref().map_or(0, |(b, _)| sums(b))
            + pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(lag_hours: f64, lag_min: u64) -> RuleParams {
        let mut p = concord_core::config::Config::embedded_default()
            .map(|c| c.cluster.rule)
            .unwrap_or_else(|e| panic!("default config: {e}"));
        p.centering = Centering::Global;
        p.centering_warmup = 0.0;
        p.centering_lag_hours = lag_hours;
        p.centering_lag_min = lag_min;
        p
    }

    const HOUR: i64 = 3600;

    #[test]
    fn a_breaking_story_is_not_subtracted_until_it_settles() {
        // History: one article along x, two days ago. Now a story along y
        // breaks; a third report q covers another side of it.
        let history = [1.0, 0.0, 0.0];
        let story = [0.0, 1.0, 0.0];
        let q = [0.0, 0.6, 0.8];
        let feed = |p: &RuleParams| {
            let mut m = Means::default();
            m.add(p, ArticleId(1), 0, None, &history);
            m.add(p, ArticleId(2), 48 * HOUR, None, &story);
            m.add(p, ArticleId(3), 49 * HOUR, None, &story);
            m
        };
        let lagged = params(24.0, 1);
        let m = feed(&lagged);
        assert_eq!((m.settled.global.n, m.pending.len()), (1, 2));
        // Centred by the history only, q still points along the story.
        let c = m.centre(&lagged, None, &q);
        assert!(c[1] > 0.3, "{c:?}");
        // Centred by everything seen, the story is subtracted from its own report.
        let unlagged = params(0.0, 1);
        let c0 = feed(&unlagged).centre(&unlagged, None, &q);
        assert!(c0[1] < 0.0, "{c0:?}");
        // A day later the story has settled too.
        let mut m = m;
        m.add(&lagged, ArticleId(4), 74 * HOUR, None, &history);
        assert_eq!((m.settled.global.n, m.pending.len()), (3, 1));
    }

    #[test]
    fn a_young_store_counts_a_big_breaking_story_once_when_balanced() {
        // A service's first hours: ten reports of one story (along y, one
        // cluster) and two of other events (along x and z, one each). A new
        // report q covers another side of the story.
        let mut p = params(24.0, 500);
        let story = [0.0, 1.0, 0.0];
        let q = [0.6, 0.8, 0.0];
        let mut m = Means::default();
        for i in 0..10 {
            m.add(&p, ArticleId(i), i as i64 * 60, None, &story);
        }
        m.add(&p, ArticleId(10), 700, None, &[1.0, 0.0, 0.0]);
        m.add(&p, ArticleId(11), 800, None, &[0.0, 0.0, 1.0]);
        let size = |id: ArticleId| if id.0 < 10 { 10 } else { 1 };
        // Counted per article, the story is the mean and q loses it.
        p.centering_balance = 0.0;
        m.rebalance(&p, size);
        let plain = m.centre(&p, None, &q);
        assert!(plain[1] < 0.0, "{plain:?}");
        // Counted per cluster, the story is one event among three.
        p.centering_balance = 1.0;
        m.rebalance(&p, size);
        let balanced = m.centre(&p, None, &q);
        assert!(balanced[1] > 0.5, "{balanced:?}");
        assert!(balanced[1] > plain[1] + 0.2);
        // Once enough has settled, the lagged mean takes over and balancing stops.
        let settled = params(24.0, 1);
        m.add(&settled, ArticleId(12), 48 * HOUR, None, &[1.0, 0.0, 0.0]);
        m.rebalance(&settled, size);
        assert!(m.balanced.is_none());
    }

    #[test]
    fn too_little_settled_falls_back_to_everything_seen() {
        let p = params(24.0, 5);
        let mut m = Means::default();
        m.add(&p, ArticleId(1), 0, None, &[1.0, 0.0]);
        m.add(&p, ArticleId(2), 48 * HOUR, None, &[0.0, 1.0]);
        assert!(!m.use_settled(&p, None));
        let p1 = params(24.0, 1);
        assert!(m.use_settled(&p1, None));
        let fr = Lang::parse("fr").unwrap_or_else(|e| panic!("{e}"));
        // Global centring does not care which languages have settled...
        assert!(m.use_settled(&p1, Some(fr)));
        // ...by language, one with nothing settled uses everything seen.
        let p1l = RuleParams {
            centering: Centering::Language,
            ..p1
        };
        assert!(!m.use_settled(&p1l, Some(fr)));
    }

    #[test]
    fn removal_undoes_an_add_settled_or_not() {
        let p = params(24.0, 1);
        let mut m = Means::default();
        m.add(&p, ArticleId(1), 0, None, &[1.0, 0.0]);
        m.add(&p, ArticleId(2), 48 * HOUR, None, &[0.0, 1.0]);
        m.remove(ArticleId(2), 48 * HOUR, None, &[0.0, 1.0]);
        m.remove(ArticleId(1), 0, None, &[1.0, 0.0]);
        assert_eq!(m.all.global.n, 0);
        assert_eq!(m.settled.global.n, 0);
        assert!(m.pending.is_empty());
        assert!(
            m.all
                .global
                .sum
                .iter()
                .chain(&m.settled.global.sum)
                .all(|s| s.abs() < 1e-12)
        );
    }
}
