//! In-memory cluster state: what the rule needs, rebuilt from the store at start.

use std::collections::HashMap;

use concord_core::{ArticleId, ClusterId, Lang, UnitVector};
use concord_store::ClusterRecord;
use serde::Serialize;

/// One active cluster as the clusterer holds it.
#[derive(Debug, Clone)]
pub(crate) struct ClusterState {
    pub record: ClusterRecord,
    /// Sum of the members' centred unit vectors.
    pub sum: Vec<f32>,
    pub members: Vec<ArticleId>,
    pub lang_counts: Vec<(Option<Lang>, u32)>,
    /// Sum of the members' published_at (seconds), for the mean time.
    pub secs_sum: f64,
    /// Similarity of the label article to the centroid when it was chosen.
    pub label_sim: f32,
}

impl ClusterState {
    pub fn new(record: ClusterRecord, dim: usize) -> Self {
        Self {
            record,
            sum: vec![0.0; dim],
            members: Vec::new(),
            lang_counts: Vec::new(),
            secs_sum: 0.0,
            label_sim: f32::MIN,
        }
    }

    pub fn add(&mut self, id: ArticleId, lang: Option<Lang>, secs: i64, v: &[f32]) {
        self.sum.iter_mut().zip(v).for_each(|(s, x)| *s += x);
        self.secs_sum += secs as f64;
        self.members.push(id);
        match self.lang_counts.iter_mut().find(|(l, _)| *l == lang) {
            Some((_, n)) => *n += 1,
            None => self.lang_counts.push((lang, 1)),
        }
    }

    /// Takes a member out; `v` is its vector as added (absent: the sum is left as is).
    pub fn remove(&mut self, id: ArticleId, lang: Option<Lang>, secs: i64, v: Option<&[f32]>) {
        self.secs_sum -= secs as f64;
        if let Some(v) = v {
            self.sum.iter_mut().zip(v).for_each(|(s, x)| *s -= x);
        }
        self.members.retain(|m| *m != id);
        if let Some(pos) = self.lang_counts.iter().position(|(l, _)| *l == lang) {
            self.lang_counts[pos].1 -= 1;
            if self.lang_counts[pos].1 == 0 {
                self.lang_counts.remove(pos);
            }
        }
    }

    pub fn absorb(&mut self, other: &ClusterState) {
        self.sum
            .iter_mut()
            .zip(&other.sum)
            .for_each(|(s, x)| *s += x);
        self.members.extend_from_slice(&other.members);
        self.secs_sum += other.secs_sum;
        for (lang, n) in &other.lang_counts {
            match self.lang_counts.iter_mut().find(|(l, _)| l == lang) {
                Some((_, m)) => *m += n,
                None => self.lang_counts.push((*lang, *n)),
            }
        }
    }

    pub fn size(&self) -> usize {
        self.members.len()
    }

    /// The members' mean published_at (seconds); 0 when empty.
    pub fn mean_secs(&self) -> f64 {
        if self.members.is_empty() {
            0.0
        } else {
            self.secs_sum / self.members.len() as f64
        }
    }

    pub fn languages(&self) -> Vec<Lang> {
        let mut langs: Vec<Lang> = self.lang_counts.iter().filter_map(|(l, _)| *l).collect();
        langs.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        langs
    }

    pub fn has_lang(&self, lang: Option<Lang>) -> bool {
        self.lang_counts.iter().any(|(l, _)| *l == lang)
    }
}

/// Per-article facts the clusterer keeps in memory.
#[derive(Debug, Clone)]
pub(crate) struct ArticleMeta {
    pub cluster: ClusterId,
    pub secs: i64,
    pub lang: Option<Lang>,
    /// Interned title (and lead) tokens, sorted.
    pub tokens: Vec<u32>,
    /// Article-length text (a report, not a headline).
    pub long: bool,
    /// Its crowding when it arrived ([`crate::rule::JoinFeatures::crowding`]).
    pub crowding: f32,
    /// The headline model's vector of its title, if it has one.
    pub headline: Option<UnitVector>,
}

/// A cluster as the clusterer reports it (for tests and callers).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterSummary {
    pub id: ClusterId,
    pub size: usize,
    pub languages: Vec<Lang>,
    pub members: Vec<ArticleId>,
}

pub(crate) type Clusters = HashMap<ClusterId, ClusterState>;
