use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, RwLock},
};

use concord_core::{ArticleId, ClusterId, Embedding, Lang, UnitVector};
use concord_index::{TimeWindow, VectorIndex};
use concord_store::{
    ArticleState, ClusterEventKind, ClusterRecord, ClusterStatus, Db, MembershipRecord,
    OutboxEvent, StoreError, Tx,
};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

mod compaction;
mod corrections;
mod means;
pub use corrections::{Corrected, Correction};

use self::means::Means;
use crate::{
    ClusterError,
    rule::{self, Candidate, Centering, JoinRule, RuleKind, RuleParams},
    state::{ArticleMeta, ClusterState, ClusterSummary, Clusters},
    tokens::TokenStats,
    trees::JoinTrees,
};

/// An embedded article, ready to be clustered.
#[derive(Debug, Clone)]
pub struct ClusterInput {
    pub id: ArticleId,
    /// The content the vector was computed from; if the stored article has
    /// changed since, the vector is stale and the article is left queued.
    pub content_hash: String,
    pub published_at: Timestamp,
    pub lang: Option<Lang>,
    /// The title, for the shared-token signal.
    pub title: String,
    /// The prepared text the model read (title and body): an article-length text
    /// also gives its lead's tokens, and says the article is a full report.
    pub text: String,
    /// The models' vectors: the sentence model's of `text`, the headline model's
    /// of the title.
    pub embedding: Embedding,
    pub model: String,
}

/// Where an article went.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub article: ArticleId,
    pub cluster: ClusterId,
    pub created: bool,
    /// Score of the winning candidate (1.0 for a new cluster's first member).
    pub similarity: f32,
    /// Clusters merged into `cluster` because of this article.
    pub merged: Vec<ClusterId>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Assigned(Assignment),
    /// The article changed (or was deleted) after this vector was computed.
    Stale,
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn unit(v: &[f32]) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 1e-12 {
        v.iter().map(|x| x / norm).collect()
    } else {
        v.to_vec()
    }
}

/// Where the clusterer's second look gets the headline vectors it lacks: the
/// embed worker's headline model, asked synchronously from the cluster thread.
pub trait HeadlineSource: Send {
    /// The titles' vectors, in order.
    fn headlines(&mut self, titles: Vec<String>) -> Result<Vec<UnitVector>, String>;
}

/// [`rule::JoinFeatures::headline_cosine`] of two titles' headline vectors: none
/// unless both have one (of one model).
fn headline_cosine(a: Option<&UnitVector>, b: Option<&UnitVector>) -> Option<f32> {
    match (a, b) {
        (Some(a), Some(b)) if a.dim() == b.dim() => Some(a.cosine(b)),
        _ => None,
    }
}

/// What `assign` decided, handed to the commit.
struct Decision<'a> {
    /// The article's headline vector (given with it, or computed for the second look).
    headline: Option<UnitVector>,
    /// Members' headline vectors computed for the second look, to keep.
    fresh_headlines: Vec<(ArticleId, UnitVector)>,
    /// The article's centred vector.
    x: &'a UnitVector,
    tokens: Vec<u32>,
    join: Option<(ClusterId, f32)>,
    /// Recent candidate clusters (merge partners).
    others: &'a [ClusterId],
    in_window: usize,
    now: Timestamp,
    /// Keep the analyst's placement (the membership stays pinned).
    pinned: bool,
    /// The decision's record, stored with the article.
    why: serde_json::Value,
    /// The article's text is article-length ([`is_long`]).
    long: bool,
    /// The article's crowding ([`rule::JoinFeatures::crowding`]).
    crowding: f32,
}

/// `x` to 4 decimals, as an f64 (an f32 widened prints as 0.44999998807907104).
fn round4(x: f32) -> f64 {
    (f64::from(x) * 1e4).round() / 1e4
}

/// Words from which a text is article-length rather than a headline.
const LONG_WORDS: usize = 40;
/// Characters of an article-length text whose tokens join the title's: its lead.
const LEAD_CHARS: usize = 600;

/// Whether `text` is article-length (a report, not a headline).
fn is_long(text: &str) -> bool {
    text.split_whitespace().nth(LONG_WORDS - 1).is_some()
}

/// The article's distinctive tokens: its title's (without learned publisher
/// affixes) and, for an article-length text, its lead's.
fn article_tokens(stats: &mut TokenStats, title: &str, text: &str, long: bool) -> Vec<u32> {
    let mut ids = stats.intern_title(title);
    if long {
        let lead: String = text.chars().take(LEAD_CHARS).collect();
        ids.extend(stats.intern(&lead));
        ids.sort_unstable();
        ids.dedup();
    }
    ids
}

/// How many candidates the decision's record keeps, best first.
const WHY_CANDIDATES: usize = 5;

/// The record of one decision: the rule, its bar, and the best candidates with
/// their features and scores (the joined one flagged).
fn why_record(
    params: &RuleParams,
    verdict: &rule::Verdict,
    pinned: Option<ClusterId>,
) -> serde_json::Value {
    let rule = match (params.kind, params.join_rule, pinned) {
        (_, _, Some(_)) => "pinned",
        (RuleKind::Plain, _, None) => "plain",
        (RuleKind::Concord, rule::JoinRule::Calibrated, None) => "calibrated",
        (RuleKind::Concord, rule::JoinRule::Threshold, None) => "threshold",
        (RuleKind::Concord, rule::JoinRule::Boosted, None) => "boosted",
    };
    let joined = pinned.or(verdict.join.map(|j| j.0));
    let candidates: Vec<serde_json::Value> = verdict
        .scored
        .iter()
        .take(WHY_CANDIDATES)
        .map(|c| {
            json!({
                "cluster": c.cluster.to_string(),
                "joined": Some(c.cluster) == joined,
                "score": round4(c.score),
                "best_member": c.best_member.map(|m| m.to_string()),
                "features": c.features,
            })
        })
        .collect();
    json!({
        "rule": rule,
        "bar": round4(verdict.bar),
        "candidates_seen": verdict.scored.len(),
        "candidates": candidates,
    })
}

/// The single writer of cluster state. Owned by one thread or task.
pub struct Clusterer {
    params: RuleParams,
    /// The join trees (`join_rule = "boosted"` only), read once at open.
    trees: Option<Arc<JoinTrees>>,
    /// The second look's trees (`headline_trees`; `join_rule = "boosted"` only).
    headline_trees: Option<Arc<JoinTrees>>,
    /// Where missing headline vectors come from (none: only those given are read).
    headline_source: Option<Box<dyn HeadlineSource>>,
    dim: usize,
    index: Arc<RwLock<VectorIndex>>,
    db: Db,
    clusters: Clusters,
    articles: HashMap<ArticleId, ArticleMeta>,
    means: Means,
    tokens: TokenStats,
    /// Pairs an analyst split apart: never merged again automatically.
    split_guards: HashSet<(ClusterId, ClusterId)>,
    /// Articles an analyst placed (moved or split out): kept where they were put.
    pinned: HashSet<ArticleId>,
    clock: Box<dyn Fn() -> Timestamp + Send>,
    /// A compacted copy of the index being built in the background.
    compaction: Option<compaction::InFlight>,
}

impl std::fmt::Debug for Clusterer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clusterer")
            .field("params", &self.params)
            .field("clusters", &self.clusters.len())
            .field("articles", &self.articles.len())
            .finish_non_exhaustive()
    }
}

fn guard_key(a: ClusterId, b: ClusterId) -> (ClusterId, ClusterId) {
    if a < b { (a, b) } else { (b, a) }
}

impl Clusterer {
    /// Rebuilds the in-memory state from the store and makes the index agree
    /// with it (inserting what it lacks, dropping what the store no longer has).
    /// The index holds the clusterer's centred vectors.
    pub fn open(
        mut params: RuleParams,
        dim: usize,
        db: Db,
        index: Arc<RwLock<VectorIndex>>,
    ) -> Result<Self, ClusterError> {
        if params.kind == RuleKind::Plain {
            // The baseline compares raw cosines.
            params.centering = Centering::None;
        }
        let tokens = TokenStats::new(params.title_affix_min);
        let trees = match (params.kind, params.join_rule) {
            (RuleKind::Concord, JoinRule::Boosted) => Some(Arc::new(
                JoinTrees::load(&params.join_trees)
                    .map_err(|e| ClusterError::Invalid(format!("cluster.rule.join_trees: {e}")))?,
            )),
            _ => None,
        };
        let headline_trees = match trees {
            Some(_) => Some(Arc::new(
                JoinTrees::load_headline(&params.headline_trees).map_err(|e| {
                    ClusterError::Invalid(format!("cluster.rule.headline_trees: {e}"))
                })?,
            )),
            None => None,
        };
        let mut this = Self {
            params,
            trees,
            headline_trees,
            headline_source: None,
            dim,
            index,
            db,
            clusters: HashMap::new(),
            articles: HashMap::new(),
            means: Means::default(),
            tokens,
            split_guards: HashSet::new(),
            pinned: HashSet::new(),
            clock: Box::new(Timestamp::now),
            compaction: None,
        };
        this.reload()?;
        Ok(this)
    }

    /// Replaces the wall clock (evaluation replays and tests use a fixed one).
    pub fn set_clock(&mut self, clock: impl Fn() -> Timestamp + Send + 'static) {
        self.clock = Box::new(clock);
    }

    pub fn params(&self) -> &RuleParams {
        &self.params
    }

    fn index_read(&self) -> Result<std::sync::RwLockReadGuard<'_, VectorIndex>, ClusterError> {
        self.index
            .read()
            .map_err(|_| ClusterError::Invalid("index lock poisoned".into()))
    }

    fn index_write(&self) -> Result<std::sync::RwLockWriteGuard<'_, VectorIndex>, ClusterError> {
        self.index
            .write()
            .map_err(|_| ClusterError::Invalid("index lock poisoned".into()))
    }

    fn reload(&mut self) -> Result<(), ClusterError> {
        // The store is the truth: a copy built from the old index is not wanted.
        self.compaction = None;
        self.clusters.clear();
        self.articles.clear();
        self.means = Means::default();
        self.tokens = TokenStats::new(self.params.title_affix_min);
        for record in self.db.active_clusters()? {
            self.clusters
                .insert(record.id, ClusterState::new(record, self.dim));
        }
        let all = self.db.all_memberships()?;
        self.pinned = all.iter().filter(|m| m.pinned).map(|m| m.article).collect();
        let memberships: HashMap<ArticleId, ClusterId> =
            all.into_iter().map(|m| (m.article, m.cluster)).collect();
        let index = Arc::clone(&self.index);
        let mut index = index
            .write()
            .map_err(|_| ClusterError::Invalid("index lock poisoned".into()))?;
        let mut live = HashSet::new();
        let mut missing = Vec::new();
        let mut unmeasured = Vec::new();
        let Self {
            params,
            db,
            clusters,
            articles,
            means,
            tokens,
            ..
        } = self;
        db.clustered_articles(|a| {
            let Some(cluster) = memberships.get(&a.id).copied() else {
                return Err(StoreError::Corrupt {
                    table: "memberships",
                    reason: format!("clustered article {} has no membership", a.id),
                });
            };
            let Some(state) = clusters.get_mut(&cluster) else {
                return Err(StoreError::Corrupt {
                    table: "memberships",
                    reason: format!("article {} is in inactive cluster {cluster}", a.id),
                });
            };
            state.add(
                a.id,
                a.lang,
                a.published_at.as_second(),
                a.centred.as_slice(),
            );
            means.add(
                params,
                a.id,
                a.published_at.as_second(),
                a.lang,
                a.vector.as_slice(),
            );
            let long = is_long(&a.prepared_text);
            let ids = article_tokens(tokens, &a.title, &a.prepared_text, long);
            tokens.count(&ids);
            articles.insert(
                a.id,
                ArticleMeta {
                    cluster,
                    secs: a.published_at.as_second(),
                    lang: a.lang,
                    tokens: ids,
                    long,
                    crowding: a.crowding.unwrap_or(0.0),
                    headline: a.headline,
                },
            );
            if a.crowding.is_none() {
                unmeasured.push((a.id, a.published_at));
            }
            live.insert(a.id);
            if !index.contains(a.id) {
                missing.push((a.id, a.published_at, a.centred));
            }
            Ok(())
        })?;
        let stale: Vec<ArticleId> = index.ids().filter(|id| !live.contains(id)).collect();
        for id in &stale {
            index.remove(*id);
        }
        let repaired = missing.len();
        for (id, published_at, vector) in missing {
            index.insert(id, published_at, &vector)?;
        }
        if index.needs_rebuild() {
            index.rebuild();
        }
        // Articles placed before the store kept their crowding: measured now, among
        // their neighbours on both sides (which their own decision could not see),
        // so close to what it was, and stored, so once.
        // The index holds their centred vectors: read one at a time, not kept.
        let mut measured = Vec::with_capacity(unmeasured.len());
        for (id, published_at) in &unmeasured {
            let Some(vector) = index
                .vector(*id)
                .and_then(|v| UnitVector::normalize(v.to_vec()).ok())
            else {
                continue;
            };
            let hits = index.search(
                &vector,
                rule::CROWDING_HITS + 1,
                Some(self.neighbour_window(*published_at)),
            )?;
            let crowding =
                rule::crowding(hits.iter().filter(|h| h.id != *id).map(|h| h.similarity));
            if let Some(meta) = self.articles.get_mut(id) {
                meta.crowding = crowding;
            }
            measured.push((*id, crowding));
        }
        drop(index);
        if !measured.is_empty() {
            self.db.transaction(|tx| {
                for (id, crowding) in &measured {
                    tx.set_crowding(*id, *crowding)?;
                }
                Ok(())
            })?;
            tracing::info!(
                articles = measured.len(),
                "measured the crowding of articles placed before the store kept it"
            );
        }
        // A split pair stays apart; either side may since have been merged into
        // another cluster, which inherits the guard.
        self.split_guards.clear();
        for (_, data) in self.db.corrections_of_kind("split")? {
            if let (Some(a), Some(b)) = (data["from"].as_u64(), data["to"].as_u64()) {
                let resolve = |id: u64| -> Result<ClusterId, ClusterError> {
                    Ok(self
                        .db
                        .resolve_cluster(ClusterId(id))?
                        .map_or(ClusterId(id), |r| r.id))
                };
                let (a, b) = (resolve(a)?, resolve(b)?);
                if a != b {
                    self.split_guards.insert(guard_key(a, b));
                }
            }
        }
        tracing::info!(
            clusters = self.clusters.len(),
            articles = self.articles.len(),
            index_repaired = repaired,
            index_dropped = stale.len(),
            "clusterer state loaded"
        );
        Ok(())
    }

    fn window(&self, t: Timestamp, hours: f64) -> TimeWindow {
        let half = SignedDuration::from_secs((hours * 3600.0) as i64);
        TimeWindow::new(
            t.checked_sub(half).unwrap_or(Timestamp::MIN),
            t.checked_add(half).unwrap_or(Timestamp::MAX),
        )
    }

    /// Where an article's neighbours (the hits) are searched: around `t`, as wide
    /// as either rule looks.
    fn neighbour_window(&self, t: Timestamp) -> TimeWindow {
        self.window(
            t,
            self.params.window_hours.max(self.params.plain_window_hours),
        )
    }

    /// Lets the second look ask for the headline vectors it lacks (articles
    /// received without one: `[headline_model] embed = "doubtful"`, or placed before
    /// the headline model was on).
    pub fn set_headline_source(&mut self, source: Box<dyn HeadlineSource>) {
        self.headline_source = Some(source);
    }

    /// Candidate clusters for an article with centred vector `x`, from its
    /// nearest neighbours in the time window, and how many articles the window holds.
    fn candidates(
        &self,
        input: &ClusterInput,
        x: &UnitVector,
        tokens: &[u32],
        long: bool,
    ) -> Result<(Vec<Candidate>, usize, f32), ClusterError> {
        let window = self.neighbour_window(input.published_at);
        let recent = self.window(input.published_at, self.params.recent_hours);
        let index = self.index_read()?;
        let hits = index.search(x, self.params.k, Some(window))?;
        let in_window = index.count_in_window(recent);
        drop(index);
        let recent_secs = (self.params.recent_hours * 3600.0) as i64;
        let secs = input.published_at.as_second();
        let plain_secs = (self.params.plain_window_hours * 3600.0) as i64;
        let recent_days = (self.params.recent_hours / 24.0) as f32;
        let mut by_cluster: HashMap<ClusterId, Candidate> = HashMap::new();
        let ln_volume = rule::ln_volume(&self.params, in_window);
        let busy = rule::join_busyness(&self.params, in_window);
        // The article's side of every 4-gram cosine, weighed once.
        let grams = self.tokens.gram_vector(tokens);
        let crowding = rule::crowding(hits.iter().map(|h| h.similarity));
        for hit in hits {
            let Some(meta) = self.articles.get(&hit.id) else {
                continue;
            };
            let shared = self.tokens.shared_idf(tokens, &meta.tokens);
            let gram = self.tokens.gram_cosine_to(&grams, &meta.tokens);
            let apart = (secs - meta.secs).abs();
            let link = rule::link(
                &self.params,
                hit.similarity,
                meta.lang != input.lang,
                shared,
            ) - rule::decay(&self.params, apart as f64 / 3600.0, in_window);
            let plain = (apart <= plain_secs).then_some(hit.similarity);
            let entry = by_cluster.entry(meta.cluster).or_insert_with(|| Candidate {
                cluster: meta.cluster,
                best_link: f32::MIN,
                best_plain: None,
                centroid: 0.0,
                has_lang: false,
                recent: false,
                drift: 0.0,
                best_member: None,
                features: rule::JoinFeatures {
                    best_cosine: f32::MIN,
                    ln_volume,
                    crowding,
                    ..rule::JoinFeatures::default()
                },
            });
            entry.recent |= apart <= recent_secs;
            entry.best_link = entry.best_link.max(link);
            entry.best_plain = match (entry.best_plain, plain) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            let f = &mut entry.features;
            f.shared_idf = f.shared_idf.max(shared.min(self.params.token_cap));
            f.gram_max = f.gram_max.max(gram);
            if hit.similarity > f.best_cosine {
                let days = apart as f32 / 86_400.0;
                f.best_cosine = hit.similarity;
                f.days_to_best = days * busy;
                f.days_beyond_recent = (days - recent_days).max(0.0) * busy;
                let same = meta.lang == input.lang;
                f.headline_cosine =
                    headline_cosine(input.embedding.headline.as_ref(), meta.headline.as_ref());
                f.other_language = if same { 0.0 } else { 1.0 };
                f.same_language = input.lang.filter(|_| same);
                f.both_long = if long && meta.long { 1.0 } else { 0.0 };
                f.long_cosine = f.both_long * hit.similarity;
                f.gram_cosine = gram;
                f.member_crowding = meta.crowding;
                entry.best_member = Some(hit.id);
            }
        }
        let mut out: Vec<Candidate> = by_cluster.into_values().collect();
        for c in &mut out {
            if let Some(state) = self.clusters.get(&c.cluster) {
                c.centroid = dot(x.as_slice(), &unit(&state.sum));
                c.has_lang = state.has_lang(input.lang);
                let hours = (secs as f64 - state.mean_secs()).abs() / 3600.0;
                c.drift = rule::drift(&self.params, hours, in_window);
                let f = &mut c.features;
                f.centroid_cosine = c.centroid;
                f.lacks_language = if c.has_lang { 0.0 } else { 1.0 };
                f.mean_days_beyond_recent = ((hours / 24.0) as f32 - recent_days).max(0.0) * busy;
                f.ln_size = (state.size().max(1) as f32).ln();
            }
        }
        out.sort_by_key(|c| c.cluster);
        Ok((out, in_window, crowding))
    }

    /// Clusters one embedded article: decide, commit, then update memory and the index.
    pub fn assign(&mut self, input: &ClusterInput) -> Result<Outcome, ClusterError> {
        self.poll_compaction(false)?;
        let vector = &input.embedding.vector;
        if vector.dim() != self.dim {
            return Err(ClusterError::Invalid(format!(
                "vector has {} dimensions, the index {}",
                vector.dim(),
                self.dim
            )));
        }
        // An updated article is re-decided from scratch, unless an analyst placed it.
        let pinned_to = self
            .pinned
            .contains(&input.id)
            .then(|| self.articles.get(&input.id).map(|m| m.cluster))
            .flatten();
        if self.articles.contains_key(&input.id) {
            self.detach(input.id)?;
        }
        let (articles, clusters) = (&self.articles, &self.clusters);
        self.means.rebalance(&self.params, |id| {
            articles
                .get(&id)
                .and_then(|m| clusters.get(&m.cluster))
                .map_or(1, |c| c.size())
        });
        let centred = self
            .means
            .centre(&self.params, input.lang, vector.as_slice());
        let x = UnitVector::normalize(centred).unwrap_or_else(|_| vector.clone());
        let long = is_long(&input.text);
        let tokens = article_tokens(&mut self.tokens, &input.title, &input.text, long);
        let (mut candidates, in_window, crowding) = self.candidates(input, &x, &tokens, long)?;
        let mut verdict = rule::decide(&self.params, self.trees.as_deref(), &candidates, in_window);
        let mut headline = input.embedding.headline.clone();
        let mut fresh_headlines = Vec::new();
        if let Some(headline_trees) = self.headline_trees.clone()
            && let Some(in_play) = rule::doubtful(&self.params, &verdict, in_window)
        {
            fresh_headlines =
                self.complete_headlines(input, &mut headline, &mut candidates, &in_play)?;
            verdict = rule::second_look(
                &self.params,
                &headline_trees,
                verdict,
                &candidates,
                &in_play,
                in_window,
            );
        }
        let pinned_state = pinned_to.and_then(|c| self.clusters.get(&c));
        let why = why_record(&self.params, &verdict, pinned_state.map(|s| s.record.id));
        let pinned = match pinned_state {
            Some(state) => {
                verdict.join = Some((state.record.id, dot(x.as_slice(), &unit(&state.sum))));
                true
            }
            None => false,
        };
        let now = (self.clock)();
        let others: Vec<ClusterId> = candidates
            .iter()
            .filter(|c| c.recent)
            .map(|c| c.cluster)
            .collect();
        match self.commit_assignment(
            input,
            Decision {
                headline,
                fresh_headlines,
                x: &x,
                tokens,
                join: verdict.join,
                others: &others,
                in_window,
                now,
                pinned,
                why,
                long,
                crowding,
            },
        ) {
            Ok(outcome) => Ok(outcome),
            Err(e) => {
                // Memory may be ahead of the store: rebuild it from the truth.
                tracing::error!(error = %e, article = %input.id, "assignment failed; reloading state");
                self.reload()?;
                Err(e)
            }
        }
    }

    /// Makes sure the article and the best-linked members of the clusters in play
    /// have headline vectors (asking the source, in one call, for those that lack
    /// one), then sets those candidates' headline cosines. Returns the members'
    /// vectors computed here, for the commit to keep.
    fn complete_headlines(
        &mut self,
        input: &ClusterInput,
        headline: &mut Option<UnitVector>,
        candidates: &mut [rule::Candidate],
        in_play: &[ClusterId],
    ) -> Result<Vec<(ArticleId, UnitVector)>, ClusterError> {
        let members: Vec<ArticleId> = candidates
            .iter()
            .filter(|c| in_play.contains(&c.cluster))
            .filter_map(|c| c.best_member)
            .collect();
        let mut fresh = Vec::new();
        if let Some(source) = self.headline_source.as_mut() {
            let mut wanted: Vec<Option<ArticleId>> = Vec::new();
            let mut titles = Vec::new();
            if headline.is_none() {
                wanted.push(None);
                titles.push(concord_text::headline(&input.text).to_owned());
            }
            for m in &members {
                if self.articles.get(m).is_some_and(|a| a.headline.is_none())
                    && !wanted.contains(&Some(*m))
                    && let Some(a) = self.db.article(*m)?
                {
                    wanted.push(Some(*m));
                    titles.push(concord_text::headline(&a.prepared_text).to_owned());
                }
            }
            if !titles.is_empty() {
                match source.headlines(titles) {
                    Ok(vectors) if vectors.len() == wanted.len() => {
                        for (who, v) in wanted.into_iter().zip(vectors) {
                            match who {
                                None => *headline = Some(v),
                                Some(m) => {
                                    if let Some(meta) = self.articles.get_mut(&m) {
                                        meta.headline = Some(v.clone());
                                    }
                                    fresh.push((m, v));
                                }
                            }
                        }
                    }
                    Ok(vectors) => tracing::warn!(
                        asked = wanted.len(),
                        got = vectors.len(),
                        "headline model answered the wrong number of vectors; no second look"
                    ),
                    Err(error) => {
                        tracing::warn!(%error, article = %input.id, "no headline vectors; no second look");
                    }
                }
            }
        }
        for c in candidates
            .iter_mut()
            .filter(|c| in_play.contains(&c.cluster))
        {
            let member = c.best_member.and_then(|m| self.articles.get(&m));
            c.features.headline_cosine =
                headline_cosine(headline.as_ref(), member.and_then(|m| m.headline.as_ref()));
        }
        Ok(fresh)
    }

    fn commit_assignment(
        &mut self,
        input: &ClusterInput,
        decision: Decision<'_>,
    ) -> Result<Outcome, ClusterError> {
        let Self {
            db,
            clusters,
            dim,
            params,
            split_guards,
            ..
        } = self;
        let params = &*params;
        let split_guards = &*split_guards;
        let Decision {
            headline,
            fresh_headlines,
            x,
            tokens,
            join,
            others,
            in_window,
            now,
            pinned,
            why,
            long,
            crowding,
        } = decision;
        let xs = x.as_slice();
        let committed = db.transaction(|tx| {
            let embedding = Embedding {
                vector: input.embedding.vector.clone(),
                headline: headline.clone(),
            };
            if !tx.set_vectors(input.id, &input.content_hash, &input.model, &embedding, x)? {
                return Ok(None);
            }
            for (member, v) in &fresh_headlines {
                tx.set_headline(*member, v)?;
            }
            let (mut state, created, similarity) =
                match join.and_then(|(c, s)| clusters.get(&c).map(|st| (st, s))) {
                    Some((existing, s)) => (existing.clone(), false, s),
                    None => {
                        let id = tx.create_cluster(now)?;
                        let record = tx
                            .cluster(id)?
                            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
                        tx.add_event(
                            id,
                            ClusterEventKind::Created,
                            Some(input.id),
                            None,
                            now,
                            &json!({}),
                        )?;
                        (ClusterState::new(record, *dim), true, 1.0)
                    }
                };
            state.add(input.id, input.lang, input.published_at.as_second(), xs);
            update_label(&mut state, input.id, xs);
            let cluster = state.record.id;
            tx.set_membership(&MembershipRecord {
                article: input.id,
                cluster,
                similarity,
                joined_at: now,
                pinned,
            })?;
            tx.add_event(
                cluster,
                ClusterEventKind::ArticleJoined,
                Some(input.id),
                None,
                now,
                &json!({ "similarity": similarity }),
            )?;
            // At most one merge per arrival: the candidate whose centroid is closest
            // to the updated cluster's, if it clears the bar. The older id survives.
            let (partner, merge_candidates) =
                merge_partner(params, clusters, split_guards, &state, others, in_window);
            let mut why = why;
            if !merge_candidates.is_empty() {
                why["merge_candidates"] = serde_json::Value::Array(merge_candidates);
            }
            tx.set_why(input.id, &why, crowding)?;
            let (mut survivor, absorbed) = match partner.and_then(|o| clusters.get(&o)) {
                Some(other) if other.record.id < cluster => {
                    let mut survivor = other.clone();
                    let data = json!({ "reason": "centroids", "article": input.id.0 });
                    merge_into(tx, &mut survivor, &state, now, &data)?;
                    (survivor, vec![state])
                }
                Some(other) => {
                    let mut survivor = state;
                    let data = json!({ "reason": "centroids", "article": input.id.0 });
                    merge_into(tx, &mut survivor, other, now, &data)?;
                    (survivor, vec![other.clone()])
                }
                None => (state, Vec::new()),
            };
            finish_record(&mut survivor, now, input.published_at);
            tx.update_cluster(&survivor.record)?;
            tx.set_article_state(input.id, ArticleState::Clustered)?;
            // Webhook events, in the same transaction as the change they report.
            tx.emit(
                &OutboxEvent::ArticleClustered {
                    article: input.id,
                    cluster: survivor.record.id,
                    similarity,
                },
                now,
            )?;
            emit_merged(tx, &absorbed, &survivor.record, now)?;
            // A new cluster absorbed at once into an older one was never seen by anyone.
            let event = if created && survivor.record.id == cluster {
                OutboxEvent::ClusterCreated {
                    cluster: survivor.record.clone(),
                }
            } else {
                OutboxEvent::ClusterUpdated {
                    cluster: survivor.record.clone(),
                }
            };
            tx.emit(&event, now)?;
            Ok(Some((survivor, absorbed, created, similarity, cluster)))
        })?;
        let Some((survivor, absorbed, created, similarity, joined)) = committed else {
            return Ok(Outcome::Stale);
        };
        let cluster = survivor.record.id;
        let mut merged = Vec::new();
        for loser in &absorbed {
            for m in &loser.members {
                if let Some(meta) = self.articles.get_mut(m) {
                    meta.cluster = cluster;
                }
            }
            self.clusters.remove(&loser.record.id);
            merged.push(loser.record.id);
            self.transfer_guards(loser.record.id, cluster);
        }
        if joined != cluster {
            merged.push(joined);
            self.clusters.remove(&joined);
            self.transfer_guards(joined, cluster);
        }
        if !pinned {
            self.pinned.remove(&input.id);
        }
        merged.retain(|m| *m != cluster);
        merged.sort();
        merged.dedup();
        self.clusters.insert(cluster, survivor);
        self.tokens.count(&tokens);
        self.articles.insert(
            input.id,
            ArticleMeta {
                cluster,
                secs: input.published_at.as_second(),
                lang: input.lang,
                tokens,
                long,
                crowding,
                headline,
            },
        );
        self.means.add(
            &self.params,
            input.id,
            input.published_at.as_second(),
            input.lang,
            input.embedding.vector.as_slice(),
        );
        // Completing a batch means inserting it into the graph (the slow part):
        // that runs behind the read lock, so searches go on meanwhile.
        let backlog = self.index_write()?.push(input.id, input.published_at, x)?;
        self.note_insert(input.id, input.published_at, x);
        if backlog {
            let built = self.index_read()?.build_backlog();
            self.index_write()?.commit_backlog(built);
        }
        Ok(Outcome::Assigned(Assignment {
            article: input.id,
            cluster,
            created: created && merged.is_empty(),
            similarity,
            merged,
        }))
    }

    /// Takes an article out of its cluster and the index (memory only; the
    /// caller's transaction rewrites its membership).
    fn detach(&mut self, id: ArticleId) -> Result<(), ClusterError> {
        let Some(meta) = self.articles.remove(&id) else {
            return Ok(());
        };
        let vectors = self.db.vectors(id)?;
        if let Some(state) = self.clusters.get_mut(&meta.cluster) {
            state.remove(
                id,
                meta.lang,
                meta.secs,
                vectors.as_ref().map(|(_, x)| x.as_slice()),
            );
        }
        if let Some((v, _)) = &vectors {
            self.means.remove(id, meta.secs, meta.lang, v.as_slice());
        }
        self.tokens.uncount(&meta.tokens);
        self.index_write()?.remove(id);
        // Tombstones cost memory and search time: past the configured share,
        // a compacted copy is built in the background.
        self.note_remove(id)?;
        if let Some(state) = self.clusters.get_mut(&meta.cluster) {
            let now = (self.clock)();
            let record = refresh_after_removal(state, &self.articles, now);
            let article = id;
            let cluster = state.record.id;
            let emptied = state.size() == 0;
            self.db.transaction(|tx| {
                tx.remove_membership(article)?;
                tx.update_cluster(&record)?;
                tx.emit(
                    &OutboxEvent::ClusterUpdated {
                        cluster: record.clone(),
                    },
                    now,
                )?;
                tx.add_event(
                    cluster,
                    ClusterEventKind::ArticleLeft,
                    Some(article),
                    None,
                    now,
                    &json!({}),
                )?;
                Ok(())
            })?;
            if emptied {
                self.clusters.remove(&cluster);
            }
        }
        Ok(())
    }

    /// Removes an article for good: out of its cluster, out of the index, state `deleted`.
    pub fn delete_article(&mut self, id: ArticleId) -> Result<Option<ClusterId>, ClusterError> {
        self.poll_compaction(false)?;
        let cluster = self.articles.get(&id).map(|m| m.cluster);
        self.detach(id)?;
        self.pinned.remove(&id);
        self.db
            .transaction(|tx| tx.set_article_state(id, ArticleState::Deleted))?;
        Ok(cluster)
    }

    /// The `k` articles nearest to a query vector, centred the way an arriving
    /// article in `lang` would be, with the cluster each is in. Reads only.
    pub fn search(
        &self,
        vector: &UnitVector,
        lang: Option<Lang>,
        k: usize,
    ) -> Result<Vec<(ArticleId, f32, Option<ClusterId>)>, ClusterError> {
        let centred = self.means.centre(&self.params, lang, vector.as_slice());
        let x = UnitVector::normalize(centred).unwrap_or_else(|_| vector.clone());
        let hits = self.index_read()?.search(&x, k, None)?;
        Ok(hits
            .into_iter()
            .map(|h| (h.id, h.similarity, self.cluster_of(h.id)))
            .collect())
    }

    /// The `k` articles nearest to a stored, clustered article (itself excluded).
    pub fn similar_to(
        &self,
        article: ArticleId,
        k: usize,
    ) -> Result<Vec<(ArticleId, f32, Option<ClusterId>)>, ClusterError> {
        if !self.articles.contains_key(&article) {
            return Err(ClusterError::UnknownArticle(article));
        }
        let (_, x) = self
            .db
            .vectors(article)?
            .ok_or(ClusterError::UnknownArticle(article))?;
        let hits = self.index_read()?.search(&x, k.saturating_add(1), None)?;
        Ok(hits
            .into_iter()
            .filter(|h| h.id != article)
            .take(k)
            .map(|h| (h.id, h.similarity, self.cluster_of(h.id)))
            .collect())
    }

    /// Up to `n` other active clusters nearest to `cluster`'s centroid (by their
    /// best member), with that similarity: same topic, possibly another event.
    pub fn related(
        &self,
        cluster: ClusterId,
        n: usize,
    ) -> Result<Vec<(ClusterId, f32)>, ClusterError> {
        let state = self
            .clusters
            .get(&cluster)
            .ok_or(ClusterError::UnknownCluster(cluster))?;
        let Ok(centroid) = UnitVector::normalize(state.sum.clone()) else {
            return Ok(Vec::new());
        };
        let k = (state.size() + n.saturating_mul(8)).min(1024);
        let hits = self.index_read()?.search(&centroid, k, None)?;
        let mut out: Vec<(ClusterId, f32)> = Vec::new();
        for h in hits {
            match self.cluster_of(h.id) {
                Some(c) if c != cluster && !out.iter().any(|(o, _)| *o == c) => {
                    out.push((c, h.similarity));
                }
                _ => {}
            }
            if out.len() == n {
                break;
            }
        }
        Ok(out)
    }

    /// The cluster an article is in right now.
    pub fn cluster_of(&self, id: ArticleId) -> Option<ClusterId> {
        self.articles.get(&id).map(|m| m.cluster)
    }

    /// Every active cluster, sorted by id, members sorted (tests, invariants, evaluation).
    pub fn summaries(&self) -> Vec<ClusterSummary> {
        let mut out: Vec<ClusterSummary> = self
            .clusters
            .values()
            .map(|s| {
                let mut members = s.members.clone();
                members.sort();
                ClusterSummary {
                    id: s.record.id,
                    size: s.size(),
                    languages: s.languages(),
                    members,
                }
            })
            .collect();
        out.sort_by_key(|s| s.id);
        out
    }

    pub fn article_count(&self) -> usize {
        self.articles.len()
    }

    pub fn cluster_count(&self) -> usize {
        self.clusters.len()
    }

    /// Approximate heap bytes of the clustering state (excluding the index):
    /// clusters (centroid sums, members, language counts), per-article facts
    /// and title tokens, and the token interner.
    pub fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        let clusters: usize = self
            .clusters
            .values()
            .map(|s| {
                size_of::<ClusterState>()
                    + s.sum.capacity() * size_of::<f32>()
                    + s.members.capacity() * size_of::<ArticleId>()
                    + s.lang_counts.capacity() * size_of::<(Option<Lang>, u32)>()
                    + size_of::<ClusterId>()
                    + 8
            })
            .sum();
        let articles =
            self.articles.capacity() * (size_of::<ArticleId>() + size_of::<ArticleMeta>() + 1);
        // Each article's interned title tokens, and the interner they point into.
        let tokens: usize = self
            .articles
            .values()
            .map(|m| m.tokens.capacity() * size_of::<u32>())
            .sum::<usize>()
            + self.tokens.memory_bytes();
        clusters + articles + tokens + self.means.memory_bytes()
    }
}

/// The candidate cluster to merge with `state` (already holding the new
/// article), if any clears the bar. Ties go to the older cluster.
fn merge_partner(
    params: &RuleParams,
    clusters: &Clusters,
    split_guards: &HashSet<(ClusterId, ClusterId)>,
    state: &ClusterState,
    others: &[ClusterId],
    in_window: usize,
) -> (Option<ClusterId>, Vec<serde_json::Value>) {
    let mut record = Vec::new();
    if params.kind != RuleKind::Concord || state.size() < params.merge_min_size {
        return (None, record);
    }
    let me = state.record.id;
    let mut best: Option<(f32, ClusterId)> = None;
    for &o in others {
        if o == me || split_guards.contains(&guard_key(o, me)) {
            continue;
        }
        let Some(other) = clusters.get(&o) else {
            continue;
        };
        if other.size() < params.merge_min_size {
            continue;
        }
        let share = other.lang_counts.iter().any(|(l, _)| state.has_lang(*l));
        let days_apart = ((state.mean_secs() - other.mean_secs()).abs() / 86_400.0) as f32;
        let pair = rule::MergePair::new(
            &state.sum,
            state.size(),
            &other.sum,
            other.size(),
            share,
            days_apart,
        );
        let margin = rule::merge_score(params, &pair, in_window);
        let features: serde_json::Map<String, serde_json::Value> = rule::MERGE_FEATURE_NAMES
            .iter()
            .zip(rule::merge_features(params, &pair, in_window))
            .map(|(n, v)| ((*n).to_owned(), json!(v)))
            .collect();
        record.push(json!({
            "cluster": o.to_string(),
            "representative": other.record.label_article.map(|a| a.to_string()),
            "score": round4(margin),
            "features": features,
        }));
        if best.is_none_or(|(b, id)| margin > b || (margin == b && o < id)) {
            best = Some((margin, o));
        }
    }
    (best.filter(|(m, _)| *m >= 0.0).map(|(_, o)| o), record)
}

fn update_label(state: &mut ClusterState, id: ArticleId, v: &[f32]) {
    let centroid = unit(&state.sum);
    let sim = dot(&centroid, v);
    if state.record.label_article.is_none() || sim > state.label_sim {
        state.record.label_article = Some(id);
        state.label_sim = sim;
    }
}

fn finish_record(state: &mut ClusterState, now: Timestamp, published_at: Timestamp) {
    let languages = state.languages();
    let size = state.members.len() as u64;
    let r = &mut state.record;
    r.updated_at = now;
    r.size = size;
    r.first_published = Some(
        r.first_published
            .map_or(published_at, |f| f.min(published_at)),
    );
    r.last_published = Some(
        r.last_published
            .map_or(published_at, |l| l.max(published_at)),
    );
    r.languages = languages;
    r.status = ClusterStatus::Active;
}

fn refresh_after_removal(
    state: &mut ClusterState,
    articles: &HashMap<ArticleId, ArticleMeta>,
    now: Timestamp,
) -> ClusterRecord {
    let times: Vec<i64> = state
        .members
        .iter()
        .filter_map(|m| articles.get(m).map(|a| a.secs))
        .collect();
    let languages = state.languages();
    let size = state.members.len() as u64;
    let r = &mut state.record;
    r.updated_at = now;
    r.size = size;
    r.first_published = times
        .iter()
        .min()
        .and_then(|s| Timestamp::from_second(*s).ok());
    r.last_published = times
        .iter()
        .max()
        .and_then(|s| Timestamp::from_second(*s).ok());
    if r.label_article.is_some_and(|l| !state.members.contains(&l)) {
        r.label_article = state.members.first().copied();
        state.label_sim = f32::MIN;
    }
    r.languages = languages;
    if state.members.is_empty() {
        r.status = ClusterStatus::Empty;
    }
    state.record.clone()
}

/// One `cluster.merged` webhook event per loser, carrying the survivor as it
/// finally is (after every merge of the transaction).
fn emit_merged(
    tx: &Tx<'_>,
    losers: &[ClusterState],
    survivor: &ClusterRecord,
    now: Timestamp,
) -> Result<(), StoreError> {
    for loser in losers {
        tx.emit(
            &OutboxEvent::ClusterMerged {
                from: loser.record.id,
                into: survivor.clone(),
            },
            now,
        )?;
    }
    Ok(())
}

/// Moves `loser`'s members into `survivor` inside `tx` and records the merge.
fn merge_into(
    tx: &Tx<'_>,
    survivor: &mut ClusterState,
    loser: &ClusterState,
    now: Timestamp,
    data: &serde_json::Value,
) -> Result<(), StoreError> {
    tx.move_members(loser.record.id, survivor.record.id)?;
    survivor.absorb(loser);
    let mut record = loser.record.clone();
    record.status = ClusterStatus::Merged;
    record.merged_into = Some(survivor.record.id);
    record.updated_at = now;
    tx.update_cluster(&record)?;
    tx.add_event(
        loser.record.id,
        ClusterEventKind::MergedInto,
        None,
        Some(survivor.record.id),
        now,
        data,
    )?;
    tx.add_event(
        survivor.record.id,
        ClusterEventKind::Absorbed,
        None,
        Some(loser.record.id),
        now,
        data,
    )?;
    if let Some(first) = loser.record.first_published {
        survivor.record.first_published = Some(
            survivor
                .record
                .first_published
                .map_or(first, |f| f.min(first)),
        );
    }
    if let Some(last) = loser.record.last_published {
        survivor.record.last_published =
            Some(survivor.record.last_published.map_or(last, |l| l.max(last)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_article_length_text_adds_its_leads_tokens_and_a_headline_does_not() {
        let headline = "Wang Yi launches data security initiative";
        assert!(!is_long(headline));
        let report = format!(
            "{headline} {}",
            "Beijing presented the Global Initiative on Data Security at a seminar on \
             digital governance, calling on states to oppose mass surveillance and to \
             respect the sovereignty of other countries over their data, Xinhua reported \
             on Tuesday after the announcement in 2020"
        );
        assert!(is_long(&report));
        let mut stats = TokenStats::new(0);
        let short = article_tokens(&mut stats, headline, headline, false);
        let long = article_tokens(&mut stats, headline, &report, true);
        assert!(long.len() > short.len());
        assert!(
            short.iter().all(|t| long.contains(t)),
            "the title's tokens stay"
        );
        assert!(
            long.windows(2).all(|w| w[0] < w[1]),
            "sorted, no duplicates"
        );
        // The lead is cut at LEAD_CHARS: tokens past it are not read.
        let far = format!("{report} {} zanzibarite", "ab ".repeat(300));
        let cut = article_tokens(&mut stats, headline, &far, true);
        assert_eq!(cut.len(), long.len());
    }
}
