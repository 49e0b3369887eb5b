//! The decision rule: given an arriving article and the candidate clusters
//! its nearest neighbours belong to, join one or start a new cluster.
//!
//! Pure functions of their inputs; the knobs come from `[cluster.rule]` in
//! `config/default.toml`, where each is documented, with the values the
//! evaluation chose. ARCHITECTURE.md explains the rule and why.

pub use concord_core::config::{
    Centering, JoinRule, JoinWeights, MergeRule, MergeWeights, RuleKind, RuleParams,
};
use concord_core::{ArticleId, ClusterId, Lang};

use crate::trees::JoinTrees;
use serde::Serialize;

/// What the calibrated join model sees of an article and one candidate cluster
/// (each documented with its weight in `config/default.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct JoinFeatures {
    pub best_cosine: f32,
    pub centroid_cosine: f32,
    pub shared_idf: f32,
    pub days_to_best: f32,
    pub days_beyond_recent: f32,
    pub mean_days_beyond_recent: f32,
    pub other_language: f32,
    pub lacks_language: f32,
    pub ln_size: f32,
    pub ln_volume: f32,
    pub both_long: f32,
    pub long_cosine: f32,
    /// The idf-weighted cosine of the character 4-grams of the article's title
    /// and its best-linked member's ([`crate::tokens::TokenStats::gram_cosine`]):
    /// names as they are inflected and spelled across languages, which whole
    /// tokens miss. Read by the trees only.
    pub gram_cosine: f32,
    /// The best such cosine to any of the cluster's members among the hits.
    pub gram_max: f32,
    /// How crowded the article's neighbourhood is: the mean of its best
    /// [`CROWDING_HITS`] centred cosines among the hits. Read by the trees only.
    pub crowding: f32,
    /// The best-linked member's own crowding when it arrived.
    pub member_crowding: f32,
    /// The headline model's cosine between the article's title and its
    /// best-linked member's (`[headline_model]`): `None` where either has no
    /// headline vector (that model off, or a vector stored before it was on),
    /// and then trees that read it do not decide ([`boosted_probability`]).
    /// Read by the trees only.
    pub headline_cosine: Option<f32>,
    /// The language the article and its best-linked member share (`None` when they
    /// differ): the model's intercept for it (`JoinWeights::language`, or
    /// `report_language` for two article-length texts). A multilingual model's
    /// cosines mean more in some languages than in others.
    pub same_language: Option<Lang>,
}

impl JoinFeatures {
    /// The features in `JoinFeatures::NAMES` order; an absent
    /// [`JoinFeatures::headline_cosine`] is NaN.
    pub fn values(&self) -> [f32; 17] {
        [
            self.best_cosine,
            self.centroid_cosine,
            self.shared_idf,
            self.days_to_best,
            self.days_beyond_recent,
            self.mean_days_beyond_recent,
            self.other_language,
            self.lacks_language,
            self.ln_size,
            self.ln_volume,
            self.both_long,
            self.long_cosine,
            self.gram_cosine,
            self.gram_max,
            self.crowding,
            self.member_crowding,
            self.headline_cosine.unwrap_or(f32::NAN),
        ]
    }

    /// The names of [`JoinFeatures::values`], as in `[cluster.rule.join_weights]`.
    pub const NAMES: [&'static str; 17] = [
        "best_cosine",
        "centroid_cosine",
        "shared_idf",
        "days_to_best",
        "days_beyond_recent",
        "mean_days_beyond_recent",
        "other_language",
        "lacks_language",
        "ln_size",
        "ln_volume",
        "both_long",
        "long_cosine",
        "gram_cosine",
        "gram_max",
        "crowding",
        "member_crowding",
        "headline_cosine",
    ];
}

/// How many of an article's best hits its crowding averages.
pub const CROWDING_HITS: usize = 5;

/// An article's crowding ([`JoinFeatures::crowding`]): the mean of the best
/// [`CROWDING_HITS`] of its neighbours' centred cosines (0 with none). Where many
/// reports sit close together, as on a day of many same-topic events, a given
/// cosine is weaker evidence of one event.
pub fn crowding(similarities: impl Iterator<Item = f32>) -> f32 {
    let mut best = [f32::NEG_INFINITY; CROWDING_HITS];
    for s in similarities.filter(|s| s.is_finite()) {
        if s > best[CROWDING_HITS - 1] {
            best[CROWDING_HITS - 1] = s;
            best.sort_by(|a, b| b.total_cmp(a));
        }
    }
    let (sum, n) = best
        .iter()
        .filter(|s| s.is_finite())
        .fold((0.0f32, 0u8), |(sum, n), s| (sum + s, n + 1));
    if n == 0 { 0.0 } else { sum / f32::from(n) }
}

/// How many of [`JoinFeatures::NAMES`] (the first ones) the logistic model reads;
/// the rest (the titles' character 4-gram cosines, the crowding) only the trees read.
pub const LOGISTIC_INPUTS: usize = 12;

/// The logistic's weights in [`JoinFeatures::NAMES`] order (the first
/// [`LOGISTIC_INPUTS`]), and the bias.
pub fn join_weight_values(w: &JoinWeights) -> ([f32; LOGISTIC_INPUTS], f32) {
    (
        [
            w.best_cosine,
            w.centroid_cosine,
            w.shared_idf,
            w.days_to_best,
            w.days_beyond_recent,
            w.mean_days_beyond_recent,
            w.other_language,
            w.lacks_language,
            w.ln_size,
            w.ln_volume,
            w.both_long,
            w.long_cosine,
        ],
        w.bias,
    )
}

/// Whether a shared language's intercept comes from `report_language` (both texts
/// article-length, `both_long` 1) rather than `language`; `concord fit-join` sorts its
/// training rows by the same test.
pub fn reads_report_language(both_long: f32) -> bool {
    both_long > 0.5
}

/// The calibrated probability that the article reports the candidate's event.
pub fn join_probability(weights: &JoinWeights, f: &JoinFeatures) -> f32 {
    let (w, bias) = join_weight_values(weights);
    let language = f.same_language.map_or(0.0, |lang| {
        let table = if reads_report_language(f.both_long) {
            &weights.report_language
        } else {
            &weights.language
        };
        table.get(&lang).copied().unwrap_or(0.0)
    });
    let z: f32 = bias
        + language
        + w.iter()
            .zip(&f.values()[..LOGISTIC_INPUTS])
            .map(|(w, x)| w * x)
            .sum::<f32>();
    sigmoid(z)
}

/// Log-odds to probability.
fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

/// The boosted rule's probability: the trees' for a decision between two texts
/// that are not both article-length, the logistic's for two reports (the trees
/// are fitted on headline decisions only; reports' are few, and trees over them
/// learn the rated pairs' hard negatives rather than the event), and the
/// logistic's too where an input the trees read is absent (a headline vector
/// missing on either side).
pub fn boosted_probability(
    weights: &JoinWeights,
    trees: Option<&JoinTrees>,
    f: &JoinFeatures,
) -> f32 {
    match trees {
        Some(trees) if !reads_report_language(f.both_long) && trees.can_score(f) => {
            sigmoid(trees.logit(f))
        }
        _ => join_probability(weights, f),
    }
}

/// `ln(in_window / density_ref)`: how busy the window is, as the hand-set
/// threshold reads it.
pub fn ln_density(params: &RuleParams, in_window: usize) -> f32 {
    (in_window.max(1) as f32 / params.density_ref).ln()
}

/// [`ln_density`] with `in_window` held within [`join_volume_floor`,
/// `join_volume_ceiling`], the volume of the window as the join model and the
/// linear merge score read it:
/// within the volumes of the data the weights were fitted on, so neither a feed of
/// two articles nor a day busier than any it saw is extrapolated to.
pub fn ln_volume(params: &RuleParams, in_window: usize) -> f32 {
    ln_density(
        params,
        in_window
            .min(params.join_volume_ceiling)
            .max(params.join_volume_floor),
    )
}

/// How much the join model's day features count: `min(1, max(in_window,
/// join_volume_floor) / density_ref)`. In full on a busy day; for less in a quiet
/// feed, where an event's reports trickle in over days (the seeds: four reports over
/// six days).
pub fn join_busyness(params: &RuleParams, in_window: usize) -> f32 {
    (in_window.max(params.join_volume_floor) as f32 / params.density_ref).min(1.0)
}

/// What the rule sees of one candidate cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub cluster: ClusterId,
    /// Best link to a member among the hits: centred cosine plus bonuses.
    pub best_link: f32,
    /// Best plain cosine to a member within the baseline's window (`None`: none there).
    pub best_plain: Option<f32>,
    /// Centred cosine between the article and the cluster's centroid.
    pub centroid: f32,
    /// Whether the cluster already holds an article in the article's language.
    pub has_lang: bool,
    /// Whether one of its members among the hits is within `recent_hours`.
    pub recent: bool,
    /// The penalty for the article's distance in time from the cluster's
    /// mean published_at ([`drift`]), subtracted from the score.
    pub drift: f32,
    /// The member among the hits with the best centred cosine.
    pub best_member: Option<ArticleId>,
    /// What the calibrated join model reads.
    pub features: JoinFeatures,
}

/// One candidate as the rule scored it: its probability (calibrated) or score
/// (threshold rule), for the decision's record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scored {
    pub cluster: ClusterId,
    pub score: f32,
    pub best_member: Option<ArticleId>,
    pub features: JoinFeatures,
}

/// The rule's verdict: the cluster to join and the score that won, or `None`
/// for a new cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub join: Option<(ClusterId, f32)>,
    /// Every candidate with its score, best first (ties: older cluster first).
    pub scored: Vec<Scored>,
    /// The bar the best score had to reach.
    pub bar: f32,
}

/// One link's score: the centred cosine plus the cross-lingual and token bonuses.
pub fn link(params: &RuleParams, cosine: f32, other_lang: bool, shared_idf: f32) -> f32 {
    cosine
        + if other_lang {
            params.cross_lang_bonus
        } else {
            0.0
        }
        + params.token_weight * shared_idf.min(params.token_cap)
}

/// The penalty on a link between articles `hours_apart`: `decay_per_day` per
/// day beyond `recent_hours`, scaled by how busy the news is (`in_window`
/// articles within `recent_hours`, relative to `density_ref`, at most 1): in a
/// sparse stream a report days later is still likely the same story; in a
/// dense one a same-topic report days later is usually another event.
pub fn decay(params: &RuleParams, hours_apart: f64, in_window: usize) -> f32 {
    let beyond = (hours_apart - params.recent_hours).max(0.0) / 24.0;
    let busy = (in_window as f32 / params.density_ref).min(1.0);
    params.decay_per_day * beyond as f32 * busy
}

/// The penalty on joining a cluster whose members' mean published_at is
/// `hours_apart` from the article: `drift_per_day` per day beyond
/// `drift_grace_hours`, scaled by how busy the news is like [`decay`]. A link
/// decays with the distance to one member; this follows the cluster as a
/// whole, so a cluster that keeps absorbing the next day's same-topic reports
/// (always one recent member to link to) falls behind its own arrivals and
/// stops chaining, while an event's reports arrive close to its mean.
pub fn drift(params: &RuleParams, hours_apart: f64, in_window: usize) -> f32 {
    let beyond = (hours_apart - params.drift_grace_hours).max(0.0) / 24.0;
    let busy = (in_window as f32 / params.density_ref).min(1.0);
    params.drift_per_day * beyond as f32 * busy
}

/// A candidate cluster's score under the tuned rule.
pub fn score(params: &RuleParams, c: &Candidate) -> f32 {
    let centroid = c.centroid
        + if c.has_lang {
            0.0
        } else {
            params.cross_lang_bonus
        };
    params.link_weight * c.best_link + (1.0 - params.link_weight) * centroid - c.drift
}

/// The join threshold when `in_window` articles share the article's time window.
pub fn threshold(params: &RuleParams, in_window: usize) -> f32 {
    params.threshold + params.density_slope * ln_density(params, in_window)
}

/// How far two clusters' centroid cosine clears the merge bar (merge when ≥ 0).
pub fn merge_margin(
    params: &RuleParams,
    cosine: f32,
    share_a_language: bool,
    in_window: usize,
) -> f32 {
    let bar = if share_a_language {
        params.merge_threshold
    } else {
        params.merge_threshold_cross_lang
    };
    cosine - bar - (threshold(params, in_window) - params.threshold)
}

/// What the merge rule sees of a pair of clusters: C (holding the arriving
/// article) and a candidate D.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MergePair {
    /// Cosine of the two centroids (sums of centred unit vectors).
    pub cosine: f32,
    /// Mean cross-pair cosine over the geometric mean of the two mean
    /// within-cluster pair cosines (each at least 0.001; 1 for a single member).
    pub cohesion_ratio: f32,
    pub min_size: usize,
    pub max_size: usize,
    pub share_a_language: bool,
    /// Between the two clusters' mean published_at.
    pub days_apart: f32,
}

impl MergePair {
    /// The features of clusters with centroid sums `a`, `b` of `na`, `nb`
    /// unit vectors.
    pub fn new(
        a: &[f32],
        na: usize,
        b: &[f32],
        nb: usize,
        share_a_language: bool,
        days_apart: f32,
    ) -> Self {
        let dot = |x: &[f32], y: &[f32]| -> f64 {
            x.iter()
                .zip(y)
                .map(|(p, q)| f64::from(*p) * f64::from(*q))
                .sum()
        };
        let (ab, aa, bb) = (dot(a, b), dot(a, a), dot(b, b));
        let cosine = if aa > 0.0 && bb > 0.0 {
            ab / (aa.sqrt() * bb.sqrt())
        } else {
            0.0
        };
        // Mean pair cosine within a cluster of n unit vectors summing to s: (s·s - n) / (n(n-1)).
        let cohesion = |ss: f64, n: usize| -> f64 {
            let n = n as f64;
            if n < 2.0 {
                1.0
            } else {
                ((ss - n) / (n * (n - 1.0))).max(1e-3)
            }
        };
        let (fa, fb) = (na.max(1) as f64, nb.max(1) as f64);
        let ratio = ab / (fa * fb) / (cohesion(aa, na) * cohesion(bb, nb)).sqrt();
        Self {
            cosine: cosine as f32,
            cohesion_ratio: ratio as f32,
            min_size: na.min(nb),
            max_size: na.max(nb),
            share_a_language,
            days_apart,
        }
    }
}

/// The names of [`merge_features`], as in `[cluster.rule.merge_weights]`.
pub const MERGE_FEATURE_NAMES: [&str; 7] = [
    "cosine",
    "cohesion_ratio",
    "ln_min_size",
    "ln_max_size",
    "no_shared_language",
    "days_apart",
    "ln_density",
];

/// What the linear merge score reads, in [`MERGE_FEATURE_NAMES`] order.
pub fn merge_features(params: &RuleParams, pair: &MergePair, in_window: usize) -> [f32; 7] {
    let ln = |n: usize| (n.max(1) as f32).ln();
    [
        pair.cosine,
        pair.cohesion_ratio,
        ln(pair.min_size),
        ln(pair.max_size),
        if pair.share_a_language { 0.0 } else { 1.0 },
        pair.days_apart,
        // Held within the volumes the weights were fitted on, as the join model reads it.
        ln_volume(params, in_window),
    ]
}

/// How far a pair clears the merge bar (merge when ≥ 0), by `merge_rule`.
pub fn merge_score(params: &RuleParams, pair: &MergePair, in_window: usize) -> f32 {
    match params.merge_rule {
        MergeRule::Threshold => merge_margin(params, pair.cosine, pair.share_a_language, in_window),
        MergeRule::Linear => {
            let w = &params.merge_weights;
            let weights = [
                w.cosine,
                w.cohesion_ratio,
                w.ln_min_size,
                w.ln_max_size,
                w.no_shared_language,
                w.days_apart,
                w.ln_density,
            ];
            weights
                .iter()
                .zip(merge_features(params, pair, in_window))
                .fold(w.bias, |sum, (w, x)| sum + w * x)
        }
    }
}

/// Whether a window holding `in_window` articles (within `recent_hours`) is quiet:
/// at most [`RuleParams::quiet_volume`]. There an event has few reports, so a wrong
/// join costs more than a missed one, and the second look is cheap: every
/// title decision gets it ([`doubtful`]) and a title joins at
/// [`RuleParams::quiet_join_probability`] ([`Bars`]).
pub fn quiet(params: &RuleParams, in_window: usize) -> bool {
    in_window <= params.quiet_volume
}

/// The bars a candidate's score must reach to join, by the model that scored it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bars {
    /// For a candidate scored by the trees (not two article-length texts).
    pub titles: f32,
    /// For two article-length texts, which the logistic scores at every volume.
    pub reports: f32,
}

impl Bars {
    /// The configured rule's bars for a window holding `in_window` articles.
    pub fn new(params: &RuleParams, in_window: usize) -> Self {
        match (params.kind, params.join_rule) {
            (RuleKind::Plain, _) => Self::one(params.plain_threshold),
            (RuleKind::Concord, JoinRule::Threshold) => Self::one(threshold(params, in_window)),
            (RuleKind::Concord, JoinRule::Calibrated | JoinRule::Boosted) => Self {
                titles: if quiet(params, in_window) {
                    params.quiet_join_probability
                } else {
                    params.join_probability
                },
                reports: params.join_probability,
            },
        }
    }

    fn one(bar: f32) -> Self {
        Self {
            titles: bar,
            reports: bar,
        }
    }

    /// The bar for one scored candidate.
    pub fn of(&self, s: &Scored) -> f32 {
        if reads_report_language(s.features.both_long) {
            self.reports
        } else {
            self.titles
        }
    }
}

/// Decides for one article. Ties break towards the older (smaller) cluster id,
/// so the outcome never depends on hash-map order.
/// With `join_rule = "boosted"`, `trees` score the candidates (without them, the
/// logistic does).
pub fn decide(
    params: &RuleParams,
    trees: Option<&JoinTrees>,
    candidates: &[Candidate],
    in_window: usize,
) -> Verdict {
    let record = |c: &Candidate, score: f32| Scored {
        cluster: c.cluster,
        score,
        best_member: c.best_member,
        features: c.features,
    };
    let scored: Vec<Scored> = match (params.kind, params.join_rule) {
        (RuleKind::Plain, _) => candidates
            .iter()
            .filter_map(|c| c.best_plain.map(|s| record(c, s)))
            .collect(),
        (RuleKind::Concord, rule @ (JoinRule::Calibrated | JoinRule::Boosted)) => {
            // The calibrated rule is the boosted one without trees.
            let trees = trees.filter(|_| rule == JoinRule::Boosted);
            candidates
                .iter()
                .map(|c| {
                    record(
                        c,
                        boosted_probability(&params.join_weights, trees, &c.features),
                    )
                })
                .collect()
        }
        (RuleKind::Concord, JoinRule::Threshold) => candidates
            .iter()
            .map(|c| record(c, score(params, c)))
            .collect(),
    };
    ranked(scored, Bars::new(params, in_window))
}

/// The verdict over `scored`: best first (ties: the older cluster), joined to the
/// best candidate that reaches its own bar. Titles and reports can have different
/// bars (in a quiet window), so the best-scored candidate may miss its bar while the
/// next one clears its own: that one joins. `bar` is the joined candidate's bar, or
/// the best-scored one's when none joins.
fn ranked(mut scored: Vec<Scored>, bars: Bars) -> Verdict {
    scored.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.cluster.cmp(&b.cluster)));
    let cleared = scored.iter().find(|s| s.score >= bars.of(s));
    let bar = cleared
        .or(scored.first())
        .map_or(bars.titles, |s| bars.of(s));
    let join = cleared.map(|s| (s.cluster, s.score));
    Verdict { join, scored, bar }
}

/// Whether `verdict` (the first trees' decision) is doubtful enough for a second look
/// with the headline model, and the clusters in play: those scored at least the low
/// end whose score the headline trees can change, i.e. not two article-length texts
/// (those stay on the logistic, [`second_look`]). In a [`quiet`] window it is when its
/// best score reaches [`RuleParams::quiet_doubt_low`]; else when it is within
/// [`RuleParams::headline_doubt_low`], [`RuleParams::headline_doubt_high`]). None
/// when no candidate would be in play: a look that can change no score would only
/// spend the headline model's time (a report among reports).
pub fn doubtful(
    params: &RuleParams,
    verdict: &Verdict,
    in_window: usize,
) -> Option<Vec<ClusterId>> {
    let best = verdict.scored.first()?.score;
    let (low, high) = if quiet(params, in_window) {
        (params.quiet_doubt_low, f32::INFINITY)
    } else {
        (params.headline_doubt_low, params.headline_doubt_high)
    };
    if !(low..high).contains(&best) {
        return None;
    }
    let in_play: Vec<ClusterId> = verdict
        .scored
        .iter()
        .filter(|s| s.score >= low && !reads_report_language(s.features.both_long))
        .map(|s| s.cluster)
        .collect();
    (!in_play.is_empty()).then_some(in_play)
}

/// The second look at a doubtful decision: each candidate in play (see [`doubtful`])
/// whose features the headline trees can read (a headline cosine on both sides)
/// scored again by them, the rest kept as scored, then the best at or above its bar
/// joins.
pub fn second_look(
    params: &RuleParams,
    headline_trees: &JoinTrees,
    verdict: Verdict,
    candidates: &[Candidate],
    in_play: &[ClusterId],
    in_window: usize,
) -> Verdict {
    let mut scored = verdict.scored;
    for s in &mut scored {
        if !in_play.contains(&s.cluster) {
            continue;
        }
        let Some(c) = candidates.iter().find(|c| c.cluster == s.cluster) else {
            continue;
        };
        s.features = c.features;
        if !reads_report_language(c.features.both_long) && headline_trees.can_score(&c.features) {
            s.score = sigmoid(headline_trees.logit(&c.features));
        }
    }
    ranked(scored, Bars::new(params, in_window))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crowding_is_the_mean_of_the_best_five_neighbours() {
        let sims = [0.1, 0.9, f32::NAN, 0.8, 0.2, 0.7, 0.6, 0.5];
        assert!((crowding(sims.into_iter()) - 0.7).abs() < 1e-6);
        assert!((crowding([0.4, 0.2].into_iter()) - 0.3).abs() < 1e-6);
        assert_eq!(crowding(std::iter::empty()), 0.0);
    }

    fn params() -> RuleParams {
        concord_core::Config::embedded_default()
            .map(|c| c.cluster.rule)
            .map(|mut r| {
                // The hand-set rule's tests; the calibrated one has its own below.
                r.join_rule = JoinRule::Threshold;
                r
            })
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn cand(id: u64, best_link: f32, centroid: f32, has_lang: bool) -> Candidate {
        Candidate {
            cluster: ClusterId(id),
            best_link,
            best_plain: Some(best_link),
            centroid,
            has_lang,
            recent: true,
            drift: 0.0,
            best_member: None,
            features: JoinFeatures::default(),
        }
    }

    #[test]
    fn the_best_cluster_above_the_bar_wins_and_ties_go_to_the_older() {
        let p = params();
        let v = decide(
            &p,
            None,
            &[
                cand(7, 0.9, 0.8, true),
                cand(3, 0.9, 0.8, true),
                cand(5, 0.5, 0.4, true),
            ],
            100,
        );
        assert_eq!(v.join.map(|j| j.0), Some(ClusterId(3)));
    }

    #[test]
    fn nothing_above_the_bar_starts_a_new_cluster() {
        let p = params();
        assert_eq!(decide(&p, None, &[cand(1, 0.1, 0.1, true)], 100).join, None);
        assert_eq!(decide(&p, None, &[], 100).join, None);
    }

    #[test]
    fn busy_windows_raise_the_bar() {
        let p = params();
        assert!(threshold(&p, 1000) > threshold(&p, 100));
        assert!(threshold(&p, 10) < threshold(&p, 100));
        assert!((threshold(&p, 100) - p.threshold).abs() < 1e-6);
        // A score that clears a quiet day's bar fails a busy day's.
        let c = cand(
            1,
            threshold(&p, 100) + 0.01,
            threshold(&p, 100) + 0.01,
            true,
        );
        assert!(
            decide(&p, None, std::slice::from_ref(&c), 100)
                .join
                .is_some()
        );
        assert!(decide(&p, None, &[c], 5000).join.is_none());
    }

    #[test]
    fn a_cluster_without_the_language_gets_the_cross_lingual_bonus() {
        let mut p = params();
        p.cross_lang_bonus = 0.06;
        assert!(score(&p, &cand(1, 0.5, 0.5, false)) > score(&p, &cand(1, 0.5, 0.5, true)));
        assert!(link(&p, 0.5, true, 0.0) > link(&p, 0.5, false, 0.0));
        assert!(link(&p, 0.5, false, 1000.0) <= 0.5 + p.token_weight * p.token_cap + 1e-6);
    }

    #[test]
    fn links_fade_with_days_beyond_the_recent_horizon() {
        let p = params();
        let busy = 1000;
        assert_eq!(decay(&p, 0.0, busy), 0.0);
        assert_eq!(decay(&p, p.recent_hours, busy), 0.0);
        assert!(decay(&p, p.recent_hours + 48.0, busy) > decay(&p, p.recent_hours + 24.0, busy));
        assert!((decay(&p, p.recent_hours + 24.0, busy) - p.decay_per_day).abs() < 1e-6);
        // A quiet stream barely penalises a report days later.
        assert!(decay(&p, p.recent_hours + 96.0, 2) < 0.1 * decay(&p, p.recent_hours + 96.0, busy));
    }

    #[test]
    fn a_cluster_whose_mean_time_falls_behind_scores_lower() {
        let p = params();
        assert!(p.drift_per_day > 0.0, "the default config drifts");
        let busy = 1000;
        assert_eq!(drift(&p, 0.0, busy), 0.0);
        assert_eq!(drift(&p, p.drift_grace_hours, busy), 0.0);
        assert!((drift(&p, p.drift_grace_hours + 24.0, busy) - p.drift_per_day).abs() < 1e-6);
        assert!(
            drift(&p, p.drift_grace_hours + 48.0, busy)
                > drift(&p, p.drift_grace_hours + 24.0, busy)
        );
        // A quiet stream lets an event's reports trickle in for days.
        assert!(
            drift(&p, p.drift_grace_hours + 96.0, 2)
                < 0.1 * drift(&p, p.drift_grace_hours + 96.0, busy)
        );
        // The penalty comes off the score, and can turn a join into a new cluster.
        let near = cand(1, 0.6, 0.6, true);
        let behind = Candidate {
            drift: drift(&p, p.drift_grace_hours + 48.0, busy),
            ..near.clone()
        };
        assert!(score(&p, &behind) < score(&p, &near));
        let bar = threshold(&p, busy);
        let at_bar = Candidate {
            best_link: bar,
            centroid: bar,
            ..near
        };
        assert!(
            decide(&p, None, std::slice::from_ref(&at_bar), busy)
                .join
                .is_some()
        );
        let late = Candidate {
            drift: drift(&p, p.drift_grace_hours + 48.0, busy),
            ..at_bar
        };
        assert_eq!(decide(&p, None, &[late], busy).join, None);
    }

    #[test]
    fn clusters_without_a_shared_language_merge_at_a_lower_cosine() {
        let p = params();
        let cos = (p.merge_threshold + p.merge_threshold_cross_lang) / 2.0;
        assert!(merge_margin(&p, cos, false, 100) >= 0.0);
        assert!(merge_margin(&p, cos, true, 100) < 0.0);
        assert!(merge_margin(&p, cos, false, 100) > merge_margin(&p, cos, false, 10_000));
    }

    fn pair(cosine_pct: usize, days_apart: f32, share: bool) -> MergePair {
        // Two clusters of 4 identical unit vectors each, `cosine_pct`% alike.
        let c = cosine_pct as f32 / 100.0;
        let a = [4.0, 0.0];
        let b = [4.0 * c, 4.0 * (1.0 - c * c).sqrt()];
        MergePair::new(&a, 4, &b, 4, share, days_apart)
    }

    #[test]
    fn merge_pair_features_follow_their_definitions() {
        let p = pair(60, 0.0, true);
        assert!((p.cosine - 0.6).abs() < 1e-5);
        // Tight clusters (within-cosine 1): the ratio is the cross cosine.
        assert!((p.cohesion_ratio - 0.6).abs() < 1e-5);
        // Loose clusters (4 members, within-cosine 0.5: |sum|² = 4 + 12·0.5 = 10),
        // centroids at cosine 0.6: mean cross cosine 10·0.6/16 = 0.375, over 0.5.
        let r = 10f32.sqrt();
        let loose = MergePair::new(&[r, 0.0], 4, &[0.6 * r, 0.8 * r], 4, true, 0.0);
        assert!((loose.cosine - 0.6).abs() < 1e-5);
        assert!((loose.cohesion_ratio - 0.75).abs() < 1e-4, "{loose:?}");
        assert_eq!((p.min_size, p.max_size), (4, 4));
    }

    #[test]
    fn the_linear_merge_weighs_similarity_time_and_languages() {
        let mut p = params();
        p.merge_rule = MergeRule::Linear;
        let s = |pair: &MergePair| merge_score(&p, pair, 100);
        assert!(s(&pair(90, 0.0, true)) > s(&pair(50, 0.0, true)));
        assert!(s(&pair(70, 0.2, true)) > s(&pair(70, 2.0, true)));
        assert!(s(&pair(70, 0.0, false)) > s(&pair(70, 0.0, true)));
        assert!(
            merge_score(&p, &pair(70, 0.0, true), 100)
                > merge_score(&p, &pair(70, 0.0, true), 5000)
        );
        assert!(s(&pair(99, 0.0, true)) >= 0.0);
        assert!(s(&pair(10, 0.0, true)) < 0.0);
        // The volume as the join model reads it: a feed quieter than join_volume_floor
        // merges no more readily than one at the floor, nor a day busier than the
        // ceiling less readily than one at it.
        let at = |n| merge_score(&p, &pair(70, 0.0, true), n);
        assert_eq!(at(2), at(p.join_volume_floor));
        assert!(at(p.join_volume_floor) > at(p.join_volume_floor + 5));
        assert_eq!(at(p.join_volume_ceiling * 10), at(p.join_volume_ceiling));
        let features = merge_features(&p, &pair(70, 0.0, true), 1);
        assert_eq!(features[6], ln_volume(&p, p.join_volume_floor));
        // The threshold rule reads the cosine only.
        p.merge_rule = MergeRule::Threshold;
        let c = p.merge_threshold + 0.01;
        let mut near = pair(0, 0.0, true);
        near.cosine = c;
        assert!(merge_score(&p, &near, 100) >= 0.0);
        near.days_apart = 5.0;
        assert!(merge_score(&p, &near, 100) >= 0.0);
    }

    #[test]
    fn the_calibrated_rule_joins_the_most_probable_cluster_above_its_bar() {
        let mut p = params();
        p.join_rule = JoinRule::Calibrated;
        let with = |id: u64, best_cosine: f32, centroid_cosine: f32| Candidate {
            features: JoinFeatures {
                best_cosine,
                centroid_cosine,
                ..JoinFeatures::default()
            },
            ..cand(id, 0.0, 0.0, true)
        };
        let strong = with(9, 0.9, 0.8);
        let weak = with(2, 0.1, 0.0);
        let prob = |c: &Candidate| join_probability(&p.join_weights, &c.features);
        assert!(prob(&strong) > p.join_probability, "{}", prob(&strong));
        assert!(prob(&weak) < p.join_probability, "{}", prob(&weak));
        let busy = p.quiet_volume + 1;
        let v = decide(&p, None, &[weak.clone(), strong.clone()], busy);
        assert_eq!(v.join.map(|j| j.0), Some(ClusterId(9)));
        assert_eq!(v.scored.len(), 2);
        assert_eq!(v.scored[0].cluster, ClusterId(9), "best first");
        assert_eq!(v.bar, p.join_probability);
        assert_eq!(decide(&p, None, &[weak], busy).join, None);
        // The window's volume enters as a feature, not as a sliding bar: beyond a
        // quiet window the bar stays put.
        assert_eq!(decide(&p, None, &[], 50_000).bar, v.bar);
        assert_eq!(
            decide(&p, None, &[], p.quiet_volume).bar,
            p.quiet_join_probability
        );
    }

    #[test]
    fn join_probability_is_the_logistic_of_the_weighted_features() {
        let p = params();
        let zero = JoinFeatures::default();
        let at_zero = join_probability(&p.join_weights, &zero);
        let expected = 1.0 / (1.0 + (-p.join_weights.bias).exp());
        assert!((at_zero - expected).abs() < 1e-6);
        let later = JoinFeatures {
            days_to_best: 3.0,
            ..zero
        };
        assert_eq!(
            join_probability(&p.join_weights, &later) < at_zero,
            p.join_weights.days_to_best < 0.0
        );
        assert_eq!(JoinFeatures::NAMES.len(), zero.values().len());
    }

    #[test]
    fn a_shared_language_adds_its_intercept_for_its_kind_of_text() {
        let mut w = params().join_weights;
        let (ar, en): (Lang, Lang) = ("ar".parse().unwrap(), "en".parse().unwrap());
        w.language = [(ar, 1.0)].into_iter().collect();
        w.report_language = [(ar, -2.0)].into_iter().collect();
        let logit = |f: &JoinFeatures| {
            let p = join_probability(&w, f);
            (p / (1.0 - p)).ln()
        };
        let headline = JoinFeatures {
            best_cosine: 0.5,
            ..JoinFeatures::default()
        };
        let report = JoinFeatures {
            both_long: 1.0,
            long_cosine: 0.5,
            ..headline
        };
        for (base, intercept) in [(headline, 1.0), (report, -2.0)] {
            let arabic = JoinFeatures {
                same_language: Some(ar),
                ..base
            };
            assert!((logit(&arabic) - logit(&base) - intercept).abs() < 1e-4);
            // A language without an intercept shares the bias.
            let english = JoinFeatures {
                same_language: Some(en),
                ..base
            };
            assert!((logit(&english) - logit(&base)).abs() < 1e-6);
        }
    }

    #[test]
    fn the_plain_rule_uses_the_nearest_article_only() {
        let mut p = params();
        p.kind = RuleKind::Plain;
        let mut far = cand(2, 0.99, 0.99, true);
        far.best_plain = None;
        let v = decide(&p, None, &[far, cand(4, 0.7, 0.0, true)], 100);
        assert_eq!(v.join.map(|j| j.0), Some(ClusterId(4)));
        let v = decide(&p, None, &[cand(4, 0.6, 0.9, true)], 100);
        assert_eq!(v.join, None);
    }

    /// One tree of one split: log-odds `high` above `at` on `input`, `-high` at or below.
    fn one_split(input: &str, at: f32, high: f32) -> JoinTrees {
        use crate::trees::{NodeFile, TREES_FORMAT, TreesFile};
        JoinTrees::from_file(&TreesFile {
            format: TREES_FORMAT.into(),
            inputs: vec![input.into()],
            base: 0.0,
            fitted: Default::default(),
            trees: vec![vec![
                NodeFile::Split {
                    input: 0,
                    at,
                    left: 1,
                    right: 2,
                },
                NodeFile::Leaf { leaf: -high },
                NodeFile::Leaf { leaf: high },
            ]],
        })
        .unwrap()
    }

    #[test]
    fn the_boosted_rule_scores_headlines_by_the_trees_and_reports_by_the_logistic() {
        let trees = one_split("best_cosine", 0.5, 2.0);
        let mut p = params();
        p.join_rule = JoinRule::Boosted;
        let w = &p.join_weights;
        let headline = JoinFeatures {
            best_cosine: 0.6,
            ..JoinFeatures::default()
        };
        let sigmoid = |z: f32| 1.0 / (1.0 + (-z).exp());
        assert!((boosted_probability(w, Some(&trees), &headline) - sigmoid(2.0)).abs() < 1e-6);
        let report = JoinFeatures {
            both_long: 1.0,
            long_cosine: 0.6,
            ..headline
        };
        assert_eq!(
            boosted_probability(w, Some(&trees), &report),
            join_probability(w, &report)
        );
        // Without trees (never so from `Clusterer::open`), the logistic decides.
        assert_eq!(
            boosted_probability(w, None, &headline),
            join_probability(w, &headline)
        );
        let mut c = cand(7, 0.0, 0.0, true);
        c.features = headline;
        let v = decide(&p, Some(&trees), std::slice::from_ref(&c), 100);
        assert_eq!(v.join.map(|j| j.0), Some(ClusterId(7)));
        c.features.best_cosine = 0.5;
        assert_eq!(decide(&p, Some(&trees), &[c], 100).join, None);
    }

    fn scored_verdict(scores: &[f32]) -> Verdict {
        Verdict {
            join: None,
            scored: scores
                .iter()
                .zip(1..)
                .map(|(&score, id)| Scored {
                    cluster: ClusterId(id),
                    score,
                    best_member: None,
                    features: JoinFeatures::default(),
                })
                .collect(),
            bar: 0.4,
        }
    }

    fn boosted_params() -> RuleParams {
        let mut p = params();
        p.join_rule = JoinRule::Boosted;
        p.join_probability = 0.4;
        p.headline_doubt_low = 0.3;
        p.headline_doubt_high = 0.55;
        p.quiet_volume = 100;
        p.quiet_doubt_low = 0.1;
        p.quiet_join_probability = 0.5;
        p
    }

    #[test]
    fn only_a_best_score_within_the_doubt_window_gets_a_second_look_at_the_clusters_in_play() {
        let p = boosted_params();
        let busy = 500;
        let verdict = scored_verdict;
        assert_eq!(doubtful(&p, &verdict(&[0.29, 0.1]), busy), None);
        assert_eq!(
            doubtful(&p, &verdict(&[0.55, 0.4]), busy),
            None,
            "a sure join"
        );
        assert_eq!(doubtful(&p, &verdict(&[]), busy), None);
        assert_eq!(
            doubtful(&p, &verdict(&[0.5, 0.3, 0.29]), busy),
            Some(vec![ClusterId(1), ClusterId(2)])
        );
        // The second look rescored the one it can read; the other keeps its score.
        let trees = one_split("headline_cosine", 0.9, 3.0);
        let mut near = cand(2, 0.0, 0.0, true);
        near.features.headline_cosine = Some(0.95);
        let in_play = [ClusterId(1), ClusterId(2)];
        let looked = second_look(
            &p,
            &trees,
            verdict(&[0.5, 0.3]),
            &[cand(1, 0.0, 0.0, true), near],
            &in_play,
            busy,
        );
        assert_eq!(looked.join.map(|j| j.0), Some(ClusterId(2)));
        assert_eq!(looked.scored[1].score, 0.5);
    }

    #[test]
    fn in_a_quiet_window_every_title_decision_from_the_low_end_gets_a_second_look() {
        let p = boosted_params();
        let verdict = scored_verdict;
        assert_eq!(
            doubtful(&p, &verdict(&[0.9, 0.2, 0.05]), 100),
            Some(vec![ClusterId(1), ClusterId(2)]),
            "a sure join is looked at again where the window is quiet"
        );
        assert_eq!(doubtful(&p, &verdict(&[0.9, 0.2]), 101), None);
        assert_eq!(
            doubtful(&p, &verdict(&[0.09]), 100),
            None,
            "a sure new event"
        );
    }

    #[test]
    fn two_reports_are_never_in_play_so_a_look_among_reports_alone_is_skipped() {
        let p = boosted_params();
        let report = |v: Verdict, i: usize| {
            let mut v = v;
            v.scored[i].features.both_long = 1.0;
            v
        };
        // Doubtful by its best score, but every candidate is a report: no look.
        let reports = report(report(scored_verdict(&[0.45, 0.35]), 0), 1);
        assert_eq!(doubtful(&p, &reports, 500), None);
        assert_eq!(doubtful(&p, &reports, 100), None, "quiet too");
        // A report beside a title member: only the title's cluster is in play.
        let mixed = report(scored_verdict(&[0.45, 0.35]), 0);
        assert_eq!(doubtful(&p, &mixed, 500), Some(vec![ClusterId(2)]));
    }

    #[test]
    fn in_a_quiet_window_a_title_needs_the_quiet_bar_and_two_reports_the_usual_one() {
        let p = boosted_params();
        let title = |score| Scored {
            cluster: ClusterId(3),
            score,
            best_member: None,
            features: JoinFeatures::default(),
        };
        let report = |score| Scored {
            features: JoinFeatures {
                both_long: 1.0,
                ..JoinFeatures::default()
            },
            ..title(score)
        };
        let quiet = Bars::new(&p, 100);
        let busy = Bars::new(&p, 101);
        assert_eq!(ranked(vec![title(0.45)], quiet).join, None);
        assert_eq!(ranked(vec![title(0.45)], quiet).bar, 0.5);
        assert!(ranked(vec![title(0.5)], quiet).join.is_some());
        assert!(ranked(vec![title(0.45)], busy).join.is_some());
        assert!(ranked(vec![report(0.45)], quiet).join.is_some());
        assert_eq!(ranked(vec![report(0.45)], quiet).bar, 0.4);
        // The best-scored candidate (a title at 0.45) misses the quiet bar; the next
        // (a report at 0.42) clears its own, 0.4: the report joins.
        let mixed = ranked(
            vec![
                report(0.42),
                Scored {
                    cluster: ClusterId(7),
                    ..title(0.45)
                },
            ],
            quiet,
        );
        assert_eq!(mixed.join, Some((ClusterId(3), 0.42)));
        assert_eq!(mixed.bar, 0.4);
        assert_eq!(mixed.scored[0].cluster, ClusterId(7), "still best first");
        let plain = RuleParams {
            kind: RuleKind::Plain,
            ..p
        };
        assert_eq!(Bars::new(&plain, 2).titles, plain.plain_threshold);
    }

    #[test]
    fn trees_that_read_the_headline_cosine_leave_a_decision_without_it_to_the_logistic() {
        let trees = one_split("headline_cosine", 0.9, 3.0);
        let w = &params().join_weights;
        let without = JoinFeatures {
            best_cosine: 0.6,
            ..JoinFeatures::default()
        };
        assert_eq!(
            boosted_probability(w, Some(&trees), &without),
            join_probability(w, &without)
        );
        let with = JoinFeatures {
            headline_cosine: Some(0.95),
            ..without
        };
        let sigmoid = |z: f32| 1.0 / (1.0 + (-z).exp());
        assert!((boosted_probability(w, Some(&trees), &with) - sigmoid(3.0)).abs() < 1e-6);
    }
}
