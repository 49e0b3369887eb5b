//! The one configuration struct, loaded once, validated, passed down.
//!
//! Defaults live in `config/default.toml` only (embedded here at compile time);
//! this module parses and validates, the binary layers files, environment and
//! flags on top with [`figment`].

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, time::Duration};

use figment::{
    Figment,
    providers::{Format, Toml},
};
use serde::{Deserialize, Serialize};

use crate::Lang;

/// `config/default.toml`, the documented defaults of every knob.
pub const DEFAULT_TOML: &str = include_str!("../../../config/default.toml");

/// Everything Concord can be told at start-up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub data: DataConfig,
    pub model: ModelConfig,
    pub headline_model: HeadlineModelConfig,
    pub embed: EmbedConfig,
    pub store: StoreConfig,
    pub index: IndexConfig,
    pub cluster: ClusterConfig,
    pub auth: AuthConfig,
    pub webhooks: WebhooksConfig,
    pub feeds: FeedsConfig,
    pub log: LogConfig,
    pub distributed: DistributedConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub shutdown_deadline_secs: u64,
    pub allow_dev_key_off_loopback: bool,
}

impl ServerConfig {
    /// Whether `listen` is a loopback address (127.0.0.0/8, `::1`, or `::ffff:127.x`),
    /// reachable from this machine only.
    pub fn listens_on_loopback(&self) -> bool {
        self.listen.ip().to_canonical().is_loopback()
    }

    /// The whole shutdown budget, from the signal to the exit.
    pub fn shutdown_deadline(&self) -> Duration {
        Duration::from_secs(self.shutdown_deadline_secs)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    pub dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub name: String,
    pub dir: PathBuf,
    pub ort_dylib: PathBuf,
    pub max_tokens: usize,
    pub intra_threads: usize,
    pub spin: bool,
    pub languages: Vec<Lang>,
    pub title_affix_min: u32,
}

/// Which articles' titles the headline model embeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeadlineEmbed {
    /// Only those a doubtful decision reads (the article and the best-linked members
    /// of the clusters in play), when it needs them; each at most once.
    Doubtful,
    /// Every article's, on arrival.
    Every,
}

/// The second encoder, for titles only (`[headline_model]` in `config/default.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadlineModelConfig {
    pub enabled: bool,
    pub embed: HeadlineEmbed,
    pub name: String,
    pub dir: PathBuf,
    pub prefix: String,
    pub max_tokens: usize,
    pub intra_threads: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedConfig {
    pub queue_capacity: usize,
    pub query_queue_capacity: usize,
    pub max_batch: usize,
    pub max_batch_chars: usize,
    pub max_wait_ms: u64,
}

impl EmbedConfig {
    pub fn max_wait(&self) -> Duration {
        Duration::from_millis(self.max_wait_ms)
    }
}

/// Which rule decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    /// The tuned rule (centred similarities, link + centroid score, time decay, merges).
    Concord,
    /// The baseline: join the nearest article's cluster when it is within
    /// `plain_window_hours` and cosine ≥ `plain_threshold`.
    Plain,
}

/// How similarities are centred before scoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Centering {
    /// Raw cosine.
    None,
    /// Subtract the running mean of every vector seen so far.
    Global,
    /// Subtract the running mean of the article's own language.
    Language,
}

/// How two clusters are judged to be one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MergeRule {
    /// Centroid cosine against `merge_threshold` (`merge_threshold_cross_lang`
    /// without a shared language), plus the density term.
    Threshold,
    /// A weighted sum of cluster-pair features (`merge_weights`) reaching 0.
    Linear,
}

/// How an arriving article is judged to belong to a candidate cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JoinRule {
    /// A logistic model of "same event" over the candidate's features
    /// (`join_weights`): join the most probable cluster when its probability
    /// reaches `join_probability`. Means the same at every volume.
    Calibrated,
    /// The earlier hand-set score (`link_weight`, bonuses, decay, drift)
    /// against `threshold + density_slope · ln(n / density_ref)`.
    Threshold,
    /// Boosted trees (`join_trees`) over the same features for two texts that are
    /// not both article-length, the logistic (`join_weights`) for two reports;
    /// joins as `Calibrated` does, at `join_probability`.
    Boosted,
}

/// Weights of the calibrated join model: the probability that an article
/// reports the same event as a candidate cluster is the logistic of the sum of
/// weight × feature, plus `bias`, plus the intercept of the language both texts
/// share (`language` for headlines, `report_language` when both are
/// article-length; none for a language without one). Each feature is documented in
/// `config/default.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JoinWeights {
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
    pub bias: f32,
    #[serde(default)]
    pub language: BTreeMap<Lang, f32>,
    #[serde(default)]
    pub report_language: BTreeMap<Lang, f32>,
}

/// Weights of the linear merge score: merge when the sum of weight × feature,
/// plus `bias`, reaches 0. Each feature is documented in `config/default.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeWeights {
    pub cosine: f32,
    pub cohesion_ratio: f32,
    pub ln_min_size: f32,
    pub ln_max_size: f32,
    pub no_shared_language: f32,
    pub days_apart: f32,
    pub ln_density: f32,
    pub bias: f32,
}

/// The rule's knobs; each is documented in `config/default.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleParams {
    pub kind: RuleKind,
    pub window_hours: f64,
    pub recent_hours: f64,
    pub decay_per_day: f32,
    pub drift_per_day: f32,
    pub drift_grace_hours: f64,
    pub k: usize,
    pub centering: Centering,
    pub centering_shrink: f64,
    pub centering_warmup: f64,
    pub centering_lag_hours: f64,
    pub centering_lag_min: u64,
    pub centering_balance: f64,
    pub link_weight: f32,
    pub threshold: f32,
    pub density_slope: f32,
    pub density_ref: f32,
    pub cross_lang_bonus: f32,
    pub token_weight: f32,
    pub token_cap: f32,
    pub title_affix_min: u32,
    pub merge_threshold: f32,
    pub merge_threshold_cross_lang: f32,
    pub merge_min_size: usize,
    pub merge_rule: MergeRule,
    pub merge_weights: MergeWeights,
    pub join_rule: JoinRule,
    pub join_probability: f32,
    pub join_volume_floor: usize,
    pub join_volume_ceiling: usize,
    pub join_weights: JoinWeights,
    pub join_trees: String,
    pub headline_trees: String,
    pub headline_doubt_low: f32,
    pub headline_doubt_high: f32,
    pub quiet_volume: usize,
    pub quiet_doubt_low: f32,
    pub quiet_join_probability: f32,
    pub plain_threshold: f32,
    pub plain_window_hours: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    pub synchronous: Synchronous,
    pub backend: StoreBackend,
    pub postgres_url: PostgresUrl,
    pub postgres_max_connections: u32,
}

/// The part of Concord one process runs (`[distributed] role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProcessRole {
    /// Everything in one process: the embedded default.
    All,
    /// HTTP API: stores articles and announces them on the article log.
    Api,
    /// An embed worker: the model, fed from the article log.
    Embed,
    /// The clusterer: one active (a lease), the others on standby.
    Cluster,
}

impl ProcessRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Api => "api",
            Self::Embed => "embed",
            Self::Cluster => "cluster",
        }
    }
}

/// `[distributed]`: the roles of the distributed mode and the article log they share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistributedConfig {
    pub role: ProcessRole,
    pub nats_url: String,
    pub request_timeout_secs: u64,
    pub wait_secs: u64,
    pub lease_poll_ms: u64,
    pub sweep_after_secs: u64,
    pub sweep_every_secs: u64,
    pub replicas: usize,
    pub duplicate_window_secs: u64,
    pub embed_ack_wait_secs: u64,
    pub embed_max_deliver: i64,
    pub embed_prefetch: usize,
    pub cluster_ack_wait_secs: u64,
    pub cluster_max_deliver: i64,
    pub cluster_window: i64,
    pub reorder_wait_ms: u64,
}

/// Where the store lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// `concord.sqlite3` in the data directory: the embedded default.
    Sqlite,
    /// A PostgreSQL database at `store.postgres_url`.
    Postgres,
}

/// A PostgreSQL connection string. It may carry a password, so it is never printed:
/// `Debug` shows only whether one is set.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PostgresUrl(String);

impl PostgresUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The connection string, for the one call that connects.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl std::fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_empty() {
            "PostgresUrl(unset)"
        } else {
            "PostgresUrl(<redacted>)"
        })
    }
}

/// How hard a commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// Survives a process crash such as `kill -9` (SQLite WAL, `synchronous=NORMAL`).
    Normal,
    /// Also survives power loss, at an fsync per commit.
    Full,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexConfig {
    pub m: usize,
    pub ef_construction: usize,
    pub ef_search: usize,
    pub exact_scan_below: usize,
    pub rebuild_tombstone_ratio: f64,
    pub dump_every_inserts: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    pub queue_capacity: usize,
    pub query_queue_capacity: usize,
    pub rule: RuleParams,
}

/// What an API key may do. Each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Browse, read and search.
    Read,
    /// Also submit and delete articles.
    Ingest,
    /// Also corrections and webhook subscriptions.
    Admin,
}

/// One API key: only its SHA-256 is configured, never the key itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    pub name: String,
    pub role: Role,
    /// Lowercase hex SHA-256 of the key.
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub keys: Vec<ApiKey>,
}

/// A configured secret: kept in clear (it is needed to sign or verify), never shown by
/// `Debug`, so a logged `Config` does not leak it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, for the code that signs or verifies with it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

/// RSS and Atom feeds polled into the pipeline; each knob is documented in
/// `config/default.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedsConfig {
    pub interval_secs: u64,
    pub timeout_ms: u64,
    pub max_bytes: u64,
    pub allow_private_targets: bool,
    pub allow_loopback_targets: bool,
    pub list: Vec<FeedSpec>,
}

impl FeedsConfig {
    pub fn interval(&self) -> Duration {
        Duration::from_secs(self.interval_secs.max(1))
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// One RSS or Atom feed to poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedSpec {
    /// Short, unique: part of each item's external id (`feed:<name>:<guid>`) and the
    /// `feed` label of the metrics.
    pub name: String,
    pub url: String,
    /// The items' language when the feed does not say (else detected).
    #[serde(default)]
    pub lang: Option<String>,
    /// The items' `source`; the feed's name when absent.
    #[serde(default)]
    pub source: Option<String>,
}

/// Inbound webhook verification and outbound delivery; each knob is documented in
/// `config/default.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksConfig {
    pub secrets: Vec<SecretString>,
    pub tolerance_secs: u64,
    pub allow_private_targets: bool,
    pub allow_loopback_targets: bool,
    pub timeout_ms: u64,
    pub max_attempts: u32,
    pub backoff_base_ms: u64,
    pub backoff_cap_ms: u64,
    pub poll_ms: u64,
    pub concurrency: usize,
    pub outbox_retention_days: u64,
}

impl WebhooksConfig {
    pub fn tolerance(&self) -> Duration {
        Duration::from_secs(self.tolerance_secs)
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    pub fn backoff_base(&self) -> Duration {
        Duration::from_millis(self.backoff_base_ms)
    }

    pub fn backoff_cap(&self) -> Duration {
        Duration::from_millis(self.backoff_cap_ms)
    }

    pub fn poll(&self) -> Duration {
        Duration::from_millis(self.poll_ms)
    }

    pub fn outbox_retention(&self) -> Duration {
        Duration::from_secs(self.outbox_retention_days.saturating_mul(24 * 3600))
    }
}

/// `whsec_` followed by standard base64 (the full decoding is the webhooks crate's job).
fn looks_like_whsec(s: &str) -> bool {
    s.strip_prefix("whsec_").is_some_and(|b64| {
        !b64.is_empty()
            && b64
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'='))
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    pub filter: String,
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration: {0}")]
    Parse(#[from] Box<figment::Error>),
    #[error("invalid configuration: `{field}` {reason}")]
    Invalid { field: &'static str, reason: String },
}

impl Config {
    /// The defaults as a figment, for callers that layer more providers on top.
    pub fn default_figment() -> Figment {
        Figment::from(Toml::string(DEFAULT_TOML))
    }

    /// Extract and validate a configuration from any figment.
    pub fn from_figment(figment: &Figment) -> Result<Self, ConfigError> {
        let config: Config = figment.extract().map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    /// The documented defaults, validated.
    pub fn embedded_default() -> Result<Self, ConfigError> {
        Self::from_figment(&Self::default_figment())
    }

    /// Checks the invariants serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, reason: &str| {
            Err(ConfigError::Invalid {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.embed.queue_capacity == 0 {
            return invalid("embed.queue_capacity", "must be at least 1");
        }
        if self.store.backend == StoreBackend::Postgres && self.store.postgres_url.is_empty() {
            return invalid(
                "store.postgres_url",
                "must be set when store.backend is \"postgres\" (CONCORD_STORE__POSTGRES_URL)",
            );
        }
        if self.distributed.role != ProcessRole::All {
            if self.store.backend != StoreBackend::Postgres {
                return invalid(
                    "distributed.role",
                    "the api, embed and cluster roles share a PostgreSQL store: set store.backend = \"postgres\"",
                );
            }
            if self.distributed.nats_url.trim().is_empty() {
                return invalid(
                    "distributed.nats_url",
                    "must be set for the api, embed and cluster roles (CONCORD_DISTRIBUTED__NATS_URL)",
                );
            }
        }
        for (field, value) in [
            (
                "distributed.request_timeout_secs",
                self.distributed.request_timeout_secs,
            ),
            ("distributed.lease_poll_ms", self.distributed.lease_poll_ms),
            (
                "distributed.sweep_every_secs",
                self.distributed.sweep_every_secs,
            ),
            (
                "distributed.embed_ack_wait_secs",
                self.distributed.embed_ack_wait_secs,
            ),
            (
                "distributed.cluster_ack_wait_secs",
                self.distributed.cluster_ack_wait_secs,
            ),
            (
                "distributed.embed_prefetch",
                self.distributed.embed_prefetch as u64,
            ),
            ("distributed.replicas", self.distributed.replicas as u64),
            (
                "distributed.cluster_window",
                self.distributed.cluster_window.max(0) as u64,
            ),
        ] {
            if value == 0 {
                return invalid(field, "must be at least 1");
            }
        }
        if self.store.postgres_max_connections == 0 {
            return invalid("store.postgres_max_connections", "must be at least 1");
        }
        if self.embed.max_batch == 0 {
            return invalid("embed.max_batch", "must be at least 1");
        }
        if self.embed.max_batch > self.embed.queue_capacity {
            return invalid("embed.max_batch", "must not exceed embed.queue_capacity");
        }
        if self.cluster.queue_capacity == 0 {
            return invalid("cluster.queue_capacity", "must be at least 1");
        }
        if self.embed.max_batch_chars == 0 {
            return invalid("embed.max_batch_chars", "must be at least 1");
        }
        if self.embed.query_queue_capacity == 0 {
            return invalid("embed.query_queue_capacity", "must be at least 1");
        }
        if self.cluster.query_queue_capacity == 0 {
            return invalid("cluster.query_queue_capacity", "must be at least 1");
        }
        if self.cluster.rule.k == 0 {
            return invalid("cluster.rule.k", "must be at least 1");
        }
        if !(self.cluster.rule.window_hours > 0.0 && self.cluster.rule.plain_window_hours > 0.0) {
            return invalid("cluster.rule.window_hours", "must be positive");
        }
        let lag = self.cluster.rule.centering_lag_hours;
        if lag.is_nan() || lag < 0.0 {
            return invalid("cluster.rule.centering_lag_hours", "must be 0 or more");
        }
        if !(0.0..=1.0).contains(&self.cluster.rule.link_weight) {
            return invalid("cluster.rule.link_weight", "must be in [0, 1]");
        }
        if self.cluster.rule.join_volume_ceiling < self.cluster.rule.join_volume_floor {
            return invalid(
                "cluster.rule.join_volume_ceiling",
                "must not be below join_volume_floor",
            );
        }
        let r = &self.cluster.rule;
        if !(0.0..=r.join_probability).contains(&r.headline_doubt_low)
            || !(r.join_probability..=1.0).contains(&r.headline_doubt_high)
        {
            return invalid(
                "cluster.rule.headline_doubt_low",
                "headline_doubt_low <= join_probability <= headline_doubt_high, within [0, 1]",
            );
        }
        let p = self.cluster.rule.join_probability;
        if !(p > 0.0 && p < 1.0) {
            return invalid("cluster.rule.join_probability", "must be in (0, 1)");
        }
        if !(r.quiet_join_probability > 0.0 && r.quiet_join_probability < 1.0) {
            return invalid("cluster.rule.quiet_join_probability", "must be in (0, 1)");
        }
        if !(0.0..=r.quiet_join_probability).contains(&r.quiet_doubt_low) {
            return invalid(
                "cluster.rule.quiet_doubt_low",
                "must be within [0, quiet_join_probability]",
            );
        }
        if !(2..=255).contains(&self.index.m) {
            return invalid("index.m", "must be between 2 and 255");
        }
        for key in &self.auth.keys {
            let hex_ok = key.sha256.len() == 64
                && key
                    .sha256
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
            if !hex_ok {
                return invalid("auth.keys", "sha256 must be 64 lowercase hex digits");
            }
        }
        let hooks = &self.webhooks;
        if !hooks.secrets.iter().all(|s| looks_like_whsec(s.expose())) {
            return invalid(
                "webhooks.secrets",
                "each must be `whsec_` followed by base64",
            );
        }
        if hooks.tolerance_secs == 0 {
            return invalid("webhooks.tolerance_secs", "must be at least 1");
        }
        if hooks.timeout_ms == 0 {
            return invalid("webhooks.timeout_ms", "must be at least 1");
        }
        if hooks.max_attempts == 0 {
            return invalid("webhooks.max_attempts", "must be at least 1");
        }
        if hooks.backoff_base_ms == 0 {
            return invalid("webhooks.backoff_base_ms", "must be at least 1");
        }
        if hooks.backoff_cap_ms < hooks.backoff_base_ms {
            return invalid(
                "webhooks.backoff_cap_ms",
                "must not be below webhooks.backoff_base_ms",
            );
        }
        if hooks.poll_ms == 0 {
            return invalid("webhooks.poll_ms", "must be at least 1");
        }
        if hooks.concurrency == 0 {
            return invalid("webhooks.concurrency", "must be at least 1");
        }
        if hooks.outbox_retention_days == 0 {
            return invalid("webhooks.outbox_retention_days", "must be at least 1");
        }
        if self.model.max_tokens < 8 {
            return invalid("model.max_tokens", "must be at least 8");
        }
        if self.model.name.trim().is_empty() {
            return invalid("model.name", "must not be empty");
        }
        let headline = &self.headline_model;
        if headline.enabled && !(8..=512).contains(&headline.max_tokens) {
            return invalid("headline_model.max_tokens", "must be within 8..=512");
        }
        if headline.enabled && headline.name.trim().is_empty() {
            return invalid("headline_model.name", "must not be empty");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::providers::Serialized;

    #[test]
    fn embedded_defaults_parse_and_validate() {
        let config = Config::embedded_default().unwrap();
        assert_eq!(config.embed.max_batch, 32);
        assert!(config.model.languages.contains(&Lang::parse("ko").unwrap()));
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let figment = Config::default_figment().merge(Toml::string("[server]\nlisten_typo = 1\n"));
        assert!(matches!(
            Config::from_figment(&figment),
            Err(ConfigError::Parse(_))
        ));
    }

    #[test]
    fn api_keys_must_be_sha256_digests() {
        let ok = Config::embedded_default().unwrap();
        assert!(!ok.auth.keys.is_empty());
        let figment = Config::default_figment().merge(Toml::string(
            "[auth]\nkeys = [{ name = \"plain\", role = \"read\", sha256 = \"my-secret-key\" }]\n",
        ));
        let err = Config::from_figment(&figment);
        assert!(
            matches!(
                err,
                Err(ConfigError::Invalid {
                    field: "auth.keys",
                    ..
                })
            ),
            "{err:?}"
        );
    }

    #[test]
    fn webhooks_section_defaults_and_checks() {
        let config = Config::embedded_default().unwrap();
        let hooks = &config.webhooks;
        assert!(
            hooks.secrets.is_empty(),
            "inbound webhooks are off by default"
        );
        assert_eq!(hooks.tolerance(), Duration::from_secs(300));
        assert!(!hooks.allow_private_targets && !hooks.allow_loopback_targets);
        assert!(hooks.backoff_base() <= hooks.backoff_cap());

        let with_secret = Config::default_figment().merge(Toml::string(
            "[webhooks]\nsecrets = [\"whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD\"]\n",
        ));
        let config = Config::from_figment(&with_secret).unwrap();
        let shown = format!("{config:?}");
        assert!(!shown.contains("C2FVsBQI"), "Debug must not show secrets");
        assert_eq!(
            config.webhooks.secrets[0].expose(),
            "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
        );

        for (toml, field) in [
            ("secrets = [\"not-a-secret\"]", "webhooks.secrets"),
            ("concurrency = 0", "webhooks.concurrency"),
            ("backoff_cap_ms = 1", "webhooks.backoff_cap_ms"),
            ("max_attempts = 0", "webhooks.max_attempts"),
        ] {
            let figment =
                Config::default_figment().merge(Toml::string(&format!("[webhooks]\n{toml}\n")));
            let err = Config::from_figment(&figment);
            assert!(
                matches!(err, Err(ConfigError::Invalid { field: f, .. }) if f == field),
                "{toml}: {err:?}"
            );
        }
    }

    #[test]
    fn postgres_needs_a_url_and_never_prints_it() {
        let without =
            Config::default_figment().merge(Serialized::default("store.backend", "postgres"));
        match Config::from_figment(&without) {
            Err(ConfigError::Invalid { field, .. }) => assert_eq!(field, "store.postgres_url"),
            other => panic!("{other:?}"),
        }
        let url = "postgres://concord:s3cret@db.internal:5432/concord";
        let with = without.merge(Serialized::default("store.postgres_url", url));
        let config = Config::from_figment(&with).unwrap();
        assert_eq!(config.store.backend, StoreBackend::Postgres);
        assert_eq!(config.store.postgres_url.expose(), url);
        let printed = format!("{config:?}");
        assert!(!printed.contains("s3cret"), "{printed}");
        assert!(printed.contains("PostgresUrl(<redacted>)"));
        assert_eq!(
            Config::embedded_default().unwrap().store.backend,
            StoreBackend::Sqlite
        );
    }

    #[test]
    fn the_distributed_roles_need_postgres_and_nats() {
        let default = Config::embedded_default().unwrap();
        assert_eq!(default.distributed.role, ProcessRole::All);
        let field = |figment: &Figment| match Config::from_figment(figment) {
            Err(ConfigError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let api = Config::default_figment().merge(Serialized::default("distributed.role", "api"));
        assert_eq!(
            field(&api),
            "distributed.role",
            "SQLite is one process's store"
        );
        let on_pg = api
            .merge(Serialized::default("store.backend", "postgres"))
            .merge(Serialized::default(
                "store.postgres_url",
                "postgres://db/concord",
            ));
        assert_eq!(field(&on_pg), "distributed.nats_url");
        let complete = on_pg.merge(Serialized::default(
            "distributed.nats_url",
            "nats://nats:4222",
        ));
        let config = Config::from_figment(&complete).unwrap();
        assert_eq!(config.distributed.role.as_str(), "api");
        let no_window = complete.merge(Serialized::default("distributed.cluster_window", 0));
        assert_eq!(field(&no_window), "distributed.cluster_window");
        let bad_role =
            Config::default_figment().merge(Serialized::default("distributed.role", "leader"));
        assert!(matches!(
            Config::from_figment(&bad_role),
            Err(ConfigError::Parse(_))
        ));
    }

    #[test]
    fn zero_batch_is_invalid() {
        let figment = Config::default_figment().merge(Serialized::default("embed.max_batch", 0));
        let err = Config::from_figment(&figment);
        assert!(
            matches!(
                err,
                Err(ConfigError::Invalid {
                    field: "embed.max_batch",
                    ..
                })
            ),
            "{err:?}"
        );
    }
}
