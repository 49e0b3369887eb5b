//! The dispatcher: one tokio task that turns the store's outbox into signed POSTs.
//!
//! Each round: fan new outbox rows out into deliveries, prune what is past retention
//! (at most once a minute), claim due deliveries up to the free concurrency, and start
//! an attempt for each; then sleep until poked ([`Dispatcher::notify_handle`]), an
//! attempt finishes, the next delivery is due, or the poll interval passes. Every
//! attempt records its own outcome in the store. Claims are leases: an attempt whose
//! outcome is never recorded (crash, shutdown deadline) is tried again when its lease
//! ends, so delivery is at least once and receivers deduplicate on `webhook-id`.

use std::{
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use concord_core::config::WebhooksConfig;
use concord_store::{AttemptOutcome, Db, DueDelivery, Store, StoreError};
use jiff::{SignedDuration, Timestamp};
use reqwest::{StatusCode, header};
use tokio::{sync::Notify, task::JoinSet};
use tokio_util::sync::CancellationToken;

use crate::{
    policy::{PolicyError, PolicyResolver, TargetPolicy},
    signature::{self, Secret},
};

/// Exponential backoff with full jitter: after the n-th failed attempt, wait a uniformly
/// random time in `[0, min(cap, base * 2^(n-1))]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Backoff {
    /// The longest wait after `failed_attempts` (≥ 1) attempts.
    pub fn ceiling(&self, failed_attempts: u32) -> Duration {
        let doublings = failed_attempts.saturating_sub(1).min(63);
        let factor = 1u32.checked_shl(doublings).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// A random wait in `[0, ceiling]`.
    pub fn delay(&self, failed_attempts: u32) -> Duration {
        let ceiling = self.ceiling(failed_attempts);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        // A failed draw from the OS only loses the jitter, not the backoff.
        let r = getrandom::u64().unwrap_or(u64::MAX);
        Duration::from_millis(r % millis.saturating_add(1))
    }
}

/// Everything the dispatcher is told; [`DispatcherConfig::from_config`] reads the
/// `[webhooks]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatcherConfig {
    pub policy: TargetPolicy,
    /// Per attempt: connect, send and read the answer's status.
    pub timeout: Duration,
    pub max_attempts: u32,
    pub backoff: Backoff,
    pub poll: Duration,
    pub concurrency: usize,
    pub outbox_retention: Duration,
}

impl DispatcherConfig {
    pub fn from_config(c: &WebhooksConfig) -> Self {
        Self {
            policy: TargetPolicy::from_config(c),
            timeout: c.timeout(),
            max_attempts: c.max_attempts.max(1),
            backoff: Backoff {
                base: c.backoff_base(),
                cap: c.backoff_cap(),
            },
            poll: c.poll(),
            concurrency: c.concurrency.max(1),
            outbox_retention: c.outbox_retention(),
        }
    }

    /// How long a claimed delivery is reserved for its attempt: the request's timeout
    /// plus room to record the outcome.
    fn lease(&self) -> Duration {
        self.timeout.saturating_add(Duration::from_secs(60))
    }
}

/// Counters of delivery attempts by outcome, for metrics. Monotonic.
#[derive(Debug, Default)]
pub struct DeliveryCounters {
    attempts: AtomicU64,
    succeeded: AtomicU64,
    retried: AtomicU64,
    failed: AtomicU64,
    disabled: AtomicU64,
    refused: AtomicU64,
}

/// A copy of [`DeliveryCounters`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterSnapshot {
    /// Every attempt, whatever came of it.
    pub attempts: u64,
    /// Attempts answered 2xx.
    pub succeeded: u64,
    /// Failed attempts that will be tried again.
    pub retried: u64,
    /// Failed attempts that were the delivery's last.
    pub failed: u64,
    /// Attempts answered 410 Gone (the subscription was disabled).
    pub disabled: u64,
    /// Attempts not made because the target address was refused by the policy
    /// (also counted as retried or failed).
    pub refused: u64,
}

impl DeliveryCounters {
    pub fn snapshot(&self) -> CounterSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CounterSnapshot {
            attempts: get(&self.attempts),
            succeeded: get(&self.succeeded),
            retried: get(&self.retried),
            failed: get(&self.failed),
            disabled: get(&self.disabled),
            refused: get(&self.refused),
        }
    }

    fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// Why the dispatcher could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("http client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("in-flight deliveries did not finish within the shutdown deadline")]
    ShutdownDeadline,
    #[error("dispatcher task failed: {0}")]
    Task(String),
}

/// The running dispatcher. Dropping it without [`Dispatcher::shutdown`] leaves the task
/// running until the runtime stops.
#[derive(Debug)]
pub struct Dispatcher {
    notify: Arc<Notify>,
    cancel: CancellationToken,
    counters: Arc<DeliveryCounters>,
    task: tokio::task::JoinHandle<()>,
}

impl Dispatcher {
    /// Opens its own store connection and starts the loop on the current tokio runtime.
    /// One dispatcher per store.
    pub fn start(store: &Store, config: DispatcherConfig) -> Result<Self, DispatchError> {
        let db = store.connect()?;
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            // A redirect could lead to an address the policy never saw; the spec asks
            // receivers to update their URL instead, so a 3xx is a failed attempt.
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve names itself, past the policy.
            .no_proxy()
            .dns_resolver(PolicyResolver::new(config.policy))
            .user_agent(concat!("concord-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let notify = Arc::new(Notify::new());
        let cancel = CancellationToken::new();
        let counters = Arc::new(DeliveryCounters::default());
        let ctx = Arc::new(Ctx {
            db: Arc::new(Mutex::new(db)),
            client,
            config,
            counters: counters.clone(),
        });
        let task = tokio::spawn(run(ctx, notify.clone(), cancel.clone()));
        Ok(Self {
            notify,
            cancel,
            counters,
            task,
        })
    }

    /// Poke this after a commit that emitted outbox events, so they go out now rather
    /// than at the next poll.
    pub fn notify_handle(&self) -> Arc<Notify> {
        self.notify.clone()
    }

    pub fn wake(&self) {
        self.notify.notify_one();
    }

    pub fn counters(&self) -> Arc<DeliveryCounters> {
        self.counters.clone()
    }

    /// Stops claiming, lets in-flight attempts finish and record their outcome, and
    /// returns once they have or `deadline` has passed (then the rest are abandoned:
    /// their leases make them due again after a restart).
    pub async fn shutdown(self, deadline: Duration) -> Result<(), DispatchError> {
        self.cancel.cancel();
        let mut task = self.task;
        match tokio::time::timeout(deadline, &mut task).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(DispatchError::Task(e.to_string())),
            Err(_) => {
                task.abort();
                Err(DispatchError::ShutdownDeadline)
            }
        }
    }
}

#[derive(Debug)]
struct Ctx {
    db: Arc<Mutex<Db>>,
    client: reqwest::Client,
    config: DispatcherConfig,
    counters: Arc<DeliveryCounters>,
}

impl Ctx {
    /// Runs a store call off the async threads.
    async fn store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Db) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let mut db = db.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut db)
        })
        .await
        .map_err(|e| StoreError::Corrupt {
            table: "deliveries",
            reason: format!("store task failed: {e}"),
        })?
    }
}

fn after(t: Timestamp, d: Duration) -> Timestamp {
    let d = SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX);
    t.checked_add(d).unwrap_or(Timestamp::MAX)
}

const PRUNE_EVERY: Duration = Duration::from_secs(60);

async fn run(ctx: Arc<Ctx>, notify: Arc<Notify>, cancel: CancellationToken) {
    let mut inflight = JoinSet::new();
    let mut last_prune: Option<tokio::time::Instant> = None;
    tracing::info!(
        concurrency = ctx.config.concurrency,
        "webhook dispatcher started"
    );
    while !cancel.is_cancelled() {
        let now = Timestamp::now();
        if let Err(e) = ctx.store(move |db| db.fan_out(now)).await {
            tracing::warn!(error = %e, "webhook fan-out failed");
        }
        if last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
            last_prune = Some(tokio::time::Instant::now());
            let before = now
                .checked_sub(
                    SignedDuration::try_from(ctx.config.outbox_retention)
                        .unwrap_or(SignedDuration::MAX),
                )
                .unwrap_or(Timestamp::MIN);
            match ctx.store(move |db| db.prune_webhooks(before)).await {
                Ok(p) if p.outbox + p.inbound > 0 => {
                    tracing::info!(
                        outbox = p.outbox,
                        inbound = p.inbound,
                        "pruned webhook rows"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "webhook pruning failed"),
            }
        }

        let free = ctx.config.concurrency.saturating_sub(inflight.len());
        if free > 0 {
            let lease_until = after(now, ctx.config.lease());
            match ctx
                .store(move |db| db.claim_due(now, lease_until, free))
                .await
            {
                Ok(due) => {
                    for d in due {
                        inflight.spawn(attempt(ctx.clone(), d));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "claiming webhook deliveries failed"),
            }
        }

        let mut wait = ctx.config.poll;
        if inflight.len() < ctx.config.concurrency {
            match ctx.store(|db| db.next_due_at()).await {
                Ok(Some(due)) => {
                    let until = Timestamp::now().duration_until(due);
                    let until = Duration::try_from(until).unwrap_or(Duration::ZERO);
                    // Never spin: a due delivery that was not claimed waits a moment.
                    wait = wait.min(until.max(Duration::from_millis(1)));
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "reading the next webhook due time failed"),
            }
        }
        tokio::select! {
            () = cancel.cancelled() => {}
            Some(done) = inflight.join_next(), if !inflight.is_empty() => {
                if let Err(e) = done {
                    tracing::error!(error = %e, "webhook attempt task failed");
                }
            }
            () = notify.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
    let left = inflight.len();
    if left > 0 {
        tracing::info!(
            in_flight = left,
            "webhook dispatcher finishing in-flight attempts"
        );
    }
    while let Some(done) = inflight.join_next().await {
        if let Err(e) = done {
            tracing::error!(error = %e, "webhook attempt task failed");
        }
    }
    tracing::info!("webhook dispatcher stopped");
}

/// What one request came to, before deciding on retries.
enum Sent {
    Status {
        status: StatusCode,
        retry_after: Option<Duration>,
    },
    Refused(PolicyError),
    Error(String),
    /// Nothing can make this delivery work (its stored secret is unusable).
    Broken(String),
}

async fn send(ctx: &Ctx, d: &DueDelivery, at: Timestamp) -> Sent {
    let url = match ctx.config.policy.check_url(&d.url) {
        Ok(url) => url,
        Err(e) => return Sent::Refused(e),
    };
    let secret = match Secret::parse(d.secret.expose()) {
        Ok(s) => s,
        Err(e) => return Sent::Broken(format!("subscription secret: {e}")),
    };
    let msg_id = d.webhook_id();
    let signature = signature::sign(&secret, &msg_id, at, d.payload.as_bytes());
    let request = ctx
        .client
        .post(url)
        .header(signature::WEBHOOK_ID, msg_id)
        .header(signature::WEBHOOK_TIMESTAMP, at.as_second().to_string())
        .header(signature::WEBHOOK_SIGNATURE, signature)
        .header(header::CONTENT_TYPE, "application/json")
        .body(d.payload.clone());
    match request.send().await {
        Ok(response) => {
            let status = response.status();
            let retry_after = response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            Sent::Status {
                status,
                retry_after,
            }
        }
        Err(e) => {
            // The policy's refusal arrives from the resolver as the error's source.
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
            while let Some(s) = source {
                if let Some(p) = s.downcast_ref::<PolicyError>() {
                    return Sent::Refused(p.clone());
                }
                source = s.source();
            }
            Sent::Error(describe(e, ctx.config.timeout))
        }
    }
}

/// The error chain, without the URL (it may carry a token in its query).
fn describe(e: reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("timed out after {} ms", timeout.as_millis());
    }
    let e = e.without_url();
    let mut out = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

async fn attempt(ctx: Arc<Ctx>, d: DueDelivery) {
    let started = Timestamp::now();
    let number = d.attempts.saturating_add(1);
    let sent = send(&ctx, &d, started).await;
    let counters = &ctx.counters;
    DeliveryCounters::bump(&counters.attempts);

    let (status, error, retry_after) = match sent {
        Sent::Status { status, .. } if status.is_success() => {
            DeliveryCounters::bump(&counters.succeeded);
            tracing::debug!(
                delivery = %d.id, subscription = %d.subscription, attempt = number,
                status = status.as_u16(), "webhook delivered"
            );
            record(
                &ctx,
                &d,
                AttemptOutcome::Succeeded {
                    status: status.as_u16(),
                },
            )
            .await;
            return;
        }
        Sent::Status { status, .. } if status == StatusCode::GONE => {
            DeliveryCounters::bump(&counters.disabled);
            tracing::warn!(
                delivery = %d.id, subscription = %d.subscription,
                "webhook endpoint answered 410 gone; subscription disabled"
            );
            record(
                &ctx,
                &d,
                AttemptOutcome::DisableSubscription {
                    status: Some(status.as_u16()),
                    reason: "endpoint answered 410 Gone".into(),
                },
            )
            .await;
            return;
        }
        Sent::Status {
            status,
            retry_after,
        } => (
            Some(status.as_u16()),
            format!("http {}", status.as_u16()),
            retry_after,
        ),
        Sent::Refused(e) => {
            DeliveryCounters::bump(&counters.refused);
            (None, format!("refused: {e}"), None)
        }
        Sent::Error(e) => (None, e, None),
        Sent::Broken(e) => {
            DeliveryCounters::bump(&counters.failed);
            tracing::error!(
                delivery = %d.id, subscription = %d.subscription, error = %e,
                "webhook delivery cannot be attempted"
            );
            record(
                &ctx,
                &d,
                AttemptOutcome::Failed {
                    status: None,
                    error: e,
                },
            )
            .await;
            return;
        }
    };

    if number >= ctx.config.max_attempts {
        DeliveryCounters::bump(&counters.failed);
        tracing::warn!(
            delivery = %d.id, subscription = %d.subscription, attempt = number,
            status, error = %error, "webhook delivery failed for good"
        );
        record(&ctx, &d, AttemptOutcome::Failed { status, error }).await;
        return;
    }
    DeliveryCounters::bump(&counters.retried);
    let backoff = ctx.config.backoff;
    let mut delay = backoff.delay(number);
    if let Some(asked) = retry_after {
        delay = delay.max(asked.min(backoff.cap));
    }
    let next_attempt_at = after(Timestamp::now(), delay);
    tracing::warn!(
        delivery = %d.id, subscription = %d.subscription, attempt = number,
        status, error = %error, retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        "webhook delivery failed; will retry"
    );
    record(
        &ctx,
        &d,
        AttemptOutcome::Retry {
            status,
            error,
            next_attempt_at,
        },
    )
    .await;
}

async fn record(ctx: &Ctx, d: &DueDelivery, outcome: AttemptOutcome) {
    let id = d.id;
    let at = Timestamp::now();
    if let Err(e) = ctx
        .store(move |db| db.record_attempt(id, at, &outcome))
        .await
    {
        // The lease runs out and the delivery is tried again.
        tracing::error!(delivery = %id, error = %e, "recording a webhook attempt failed");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_with_jitter_below_the_ceiling() {
        let b = Backoff {
            base: Duration::from_secs(5),
            cap: Duration::from_secs(7200),
        };
        assert_eq!(b.ceiling(1), Duration::from_secs(5));
        assert_eq!(b.ceiling(2), Duration::from_secs(10));
        assert_eq!(b.ceiling(11), Duration::from_secs(5120));
        assert_eq!(b.ceiling(12), Duration::from_secs(7200));
        assert_eq!(b.ceiling(1000), Duration::from_secs(7200));
        for n in 1..40 {
            assert!(b.delay(n) <= b.ceiling(n));
        }
        let zero = Backoff {
            base: Duration::ZERO,
            cap: Duration::ZERO,
        };
        assert_eq!(zero.delay(3), Duration::ZERO);
    }

    #[test]
    fn default_schedule_reaches_over_hours() {
        let config = concord_core::Config::embedded_default().unwrap();
        let c = DispatcherConfig::from_config(&config.webhooks);
        let longest: Duration = (1..c.max_attempts).map(|n| c.backoff.ceiling(n)).sum();
        assert!(longest >= Duration::from_secs(6 * 3600), "{longest:?}");
        assert!(longest <= Duration::from_secs(24 * 3600), "{longest:?}");
    }
}
