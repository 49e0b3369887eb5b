use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context;
use clap::Args;
use concord_core::{
    Config,
    config::{ProcessRole, ServerConfig},
};
use concord_embed::Encoders;
use concord_feeds::SinkOutcome;
use concord_pipeline::{ArticleSubmission, IngestError, Pipeline};
use concord_server::{AppState, FeedOut, FeedStatus, Keys, WebhookSettings, app};
use concord_store::UpsertOutcome;
use concord_webhooks::{Dispatcher, DispatcherConfig};
use figment::Figment;
use tokio_util::sync::CancellationToken;

use crate::{config, roles};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (overrides server.listen).
    #[arg(long)]
    listen: Option<String>,
    /// Data directory (overrides data.dir).
    #[arg(long)]
    data_dir: Option<String>,
    /// Which part to run (overrides distributed.role): all, api, embed or cluster.
    #[arg(long)]
    role: Option<String>,
}

pub fn serve(figment: Figment, args: ServeArgs) -> anyhow::Result<()> {
    let config = config::load(
        figment,
        &[
            ("server.listen", args.listen),
            ("data.dir", args.data_dir),
            ("distributed.role", args.role),
        ],
    )?;
    config::init_tracing(&config);
    let role = config.distributed.role;
    tracing::info!(role = role.as_str(), "starting");
    let keys = Keys::new(&config.auth.keys);
    if matches!(role, ProcessRole::All | ProcessRole::Api) {
        check_exposure(&config.server, keys.has_dev_key())?;
    }
    std::fs::create_dir_all(&config.data.dir)
        .with_context(|| format!("cannot create data dir {}", config.data.dir.display()))?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // Before anything slow: as PID 1 in a container, a signal nobody handles is ignored,
    // and `docker stop` during the model load would wait for the grace period.
    let stop = runtime.block_on(async { Stop::install() })?;
    match role {
        ProcessRole::Embed => return roles::embed(&config, runtime, &stop),
        ProcessRole::Cluster => return roles::cluster(&config, runtime, &stop),
        ProcessRole::All | ProcessRole::Api => {}
    }

    let Some(pipeline) = runtime.block_on(start_up(&config, &stop))? else {
        // Nothing was acknowledged yet; the store is as crash-safe mid-start as anywhere,
        // so the start-up thread is left where it is (the process exit ends it).
        tracing::info!("stopped during start-up");
        runtime.shutdown_background();
        return Ok(());
    };

    let mut webhooks = WebhookSettings::from_config(&config.webhooks)
        .context("webhooks.secrets: not a valid whsec_ secret")?;
    let dispatcher = runtime
        .block_on(async {
            // Off the async workers: opening its connection may block (PostgreSQL's client
            // runs a runtime of its own and refuses to start inside this one).
            let (store, dispatch_config) = (
                pipeline.store().clone(),
                DispatcherConfig::from_config(&config.webhooks),
            );
            let dispatcher =
                tokio::task::spawn_blocking(move || Dispatcher::start(&store, dispatch_config))
                    .await
                    .context("the webhook dispatcher's start-up panicked")??;
            // The cluster thread pokes after every commit; pass it on to the dispatcher.
            let (changes, wake) = (pipeline.outbox_notify(), dispatcher.notify_handle());
            tokio::spawn(async move {
                loop {
                    changes.notified().await;
                    wake.notify_one();
                }
            });
            Ok::<_, anyhow::Error>(dispatcher)
        })
        .context("cannot start the webhook dispatcher")?;
    webhooks.wake = Some(dispatcher.notify_handle());
    webhooks.counters = Some(dispatcher.counters());
    tracing::info!(
        inbound = !webhooks.inbound_secrets.is_empty(),
        "webhook dispatcher started"
    );
    let budget = config.server.shutdown_deadline();
    runtime.block_on(async {
        // Finish what a previous run acknowledged but did not cluster, in the background.
        let recovering = pipeline.clone();
        let recovery = tokio::spawn(async move {
            match recovering.recover().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(articles = n, "re-queued unfinished articles"),
                Err(error) => tracing::error!(%error, "recovery failed"),
            }
        });
        // RSS and Atom feeds from [feeds], each on its own task, into the pipeline.
        let feeds_stop = CancellationToken::new();
        let (feeds, feed_status) = if config.feeds.list.is_empty() {
            (None, None)
        } else {
            let poller = Arc::new(
                concord_feeds::Poller::new(
                    &config.feeds,
                    PipelineSink(pipeline.clone()),
                    Some(pipeline.metrics().clone()),
                )
                .context("feeds.list")?,
            );
            tracing::info!(feeds = config.feeds.list.len(), "feed polling started");
            let status = feed_status(&poller);
            (Some(tokio::spawn(poller.run(feeds_stop.clone()))), Some(status))
        };
        let served = async {
            let listener = tokio::net::TcpListener::bind(config.server.listen)
                .await
                .with_context(|| format!("cannot listen on {}", config.server.listen))?;
            tracing::info!(addr = %config.server.listen, "listening");
            if keys.has_dev_key() {
                tracing::warn!("the local development API key is configured: replace auth.keys before exposing this service");
            }
            let state = AppState::with_webhooks(pipeline.clone(), keys, webhooks);
            if let Some(status) = feed_status {
                state.set_feeds(status);
            }
            let server = axum::serve(listener, app(state))
            .with_graceful_shutdown(stop.requested());
            // The drain waits for requests in flight (a `?wait=true` one waits for its
            // cluster), but not past the deadline: then it moves on, and the connections
            // still open (and their handles on the pipeline) end with the runtime.
            tokio::select! {
                served = server => served.context("server failed"),
                () = stop.deadline_passed(budget) => {
                    tracing::warn!(secs = budget.as_secs(), "shutdown deadline passed while requests were in flight");
                    Ok(())
                }
            }
        }
        .await;
        // The feeds too (an item not yet handed over is fetched again next start).
        feeds_stop.cancel();
        if let Some(feeds) = feeds {
            let _ = feeds.await;
        }
        // Recovery feeds the queues like a client: stop it too, so the pipeline can drain
        // and dump. What it had not re-queued yet is still queued in the store.
        if !recovery.is_finished() {
            tracing::info!("recovery stopped; unfinished articles stay queued for the next start");
            recovery.abort();
        }
        let _ = recovery.await;
        served
    })?;
    // One budget from the signal to the exit, shared by every stage in turn.
    let deadline = stop.requested_at().unwrap_or_else(Instant::now) + budget;
    tracing::info!("draining");
    // The router is gone: let the queues drain and the index dump be written.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let wait = left(deadline);
    std::thread::spawn(move || {
        let _ = done_tx.send(pipeline.shutdown_within(wait));
    });
    match done_rx.recv_timeout(left(deadline)) {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!("pipeline still shared at shutdown; queued work continues in the store")
        }
        Err(_) => tracing::warn!(
            secs = budget.as_secs(),
            "shutdown deadline passed; queued work stays in the store for the next start"
        ),
    }
    // Every change is committed with its outbox rows; let attempts in flight finish
    // (the rest stay pending in the store and go out after the next start).
    if let Err(error) = runtime.block_on(dispatcher.shutdown(left(deadline))) {
        tracing::warn!(%error, "webhook dispatcher did not stop cleanly");
    }
    runtime.shutdown_timeout(left(deadline).min(Duration::from_secs(1)));
    tracing::info!("stopped");
    Ok(())
}

/// Time left until `deadline` (zero once past).
fn left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// The built-in development key is public (it is in the README): refuse to serve it on an
/// address other machines can reach unless `server.allow_dev_key_off_loopback` says so.
fn check_exposure(server: &ServerConfig, dev_key: bool) -> anyhow::Result<()> {
    if !dev_key || server.listens_on_loopback() {
        return Ok(());
    }
    if server.allow_dev_key_off_loopback {
        tracing::warn!(
            addr = %server.listen,
            "the development API key is configured on a non-loopback address (server.allow_dev_key_off_loopback): anyone who can reach it is admin"
        );
        return Ok(());
    }
    anyhow::bail!(
        "refusing to listen on {} with the development API key (concord-dev-key) configured: \
         configure your own keys (auth.keys, CONCORD_AUTH__KEYS), listen on loopback, or set \
         server.allow_dev_key_off_loopback = true (CONCORD_SERVER__ALLOW_DEV_KEY_OFF_LOOPBACK=true)",
        server.listen
    )
}

/// Loads the model and opens the store and index on a thread of their own, while the
/// runtime listens for a stop; `None` when the stop came first.
async fn start_up(config: &Config, stop: &Stop) -> anyhow::Result<Option<Pipeline>> {
    if config.distributed.role == ProcessRole::Api {
        // An api node: the store and the article log; the model and index live elsewhere.
        let log = tokio::select! {
            biased;
            () = stop.requested() => return Ok(None),
            log = concord_pipeline::roles::connect_log(config) => {
                log.context("cannot connect to the article log (distributed.nats_url)")?
            }
        };
        let config = config.clone();
        let pipeline = tokio::task::spawn_blocking(move || Pipeline::start_api(&config, log))
            .await
            .context("start-up panicked")?
            .context("cannot open the store")?;
        tracing::info!("api node ready");
        return Ok(Some(pipeline));
    }
    let (done, started) = tokio::sync::oneshot::channel();
    let config = config.clone();
    std::thread::Builder::new()
        .name("concord-startup".into())
        .spawn(move || {
            let started = Instant::now();
            tracing::info!(dir = %config.model.dir.display(), "loading the model");
            let result = Encoders::load(&config.model, &config.headline_model)
                .context("cannot start the embedding models")
                .and_then(|models| {
                    tracing::info!(
                        model = models.text.name(),
                        dim = models.text.dim(),
                        headline_model = models.headline.as_ref().map(|h| h.name()),
                        millis = started.elapsed().as_millis(),
                        "model loaded"
                    );
                    Pipeline::start(&config, models).context("cannot open the store and index")
                });
            if result.is_ok() {
                tracing::info!(millis = started.elapsed().as_millis(), "pipeline ready");
            }
            // The receiver is gone only when a stop came first.
            let _ = done.send(result);
        })
        .context("cannot start the start-up thread")?;
    tokio::select! {
        biased;
        () = stop.requested() => Ok(None),
        result = started => match result {
            Ok(result) => result.map(Some),
            Err(_) => anyhow::bail!("start-up failed (its thread panicked)"),
        },
    }
}

/// SIGTERM or SIGINT (ctrl-c), listened for from the first moment of `serve`: the time
/// the first one arrived, for everyone who waits on it.
#[derive(Debug, Clone)]
pub(crate) struct Stop {
    at: tokio::sync::watch::Receiver<Option<Instant>>,
}

impl Stop {
    /// Installs the handlers (so the signals no longer end the process by default) and
    /// a task that records the first one. Call within the runtime.
    fn install() -> anyhow::Result<Self> {
        let (tx, at) = tokio::sync::watch::channel(None);
        let mut signals = Signals::install()?;
        tokio::spawn(async move {
            let name = signals.recv().await;
            tracing::info!(signal = name, "shutdown requested");
            let _ = tx.send(Some(Instant::now()));
            // A second signal is someone who will not wait for the drain (ctrl-c twice):
            // exit now, as a crash would. Everything acknowledged is in the store; the
            // next start re-queues what was not clustered and repairs the index.
            let name = signals.recv().await;
            tracing::warn!(
                signal = name,
                "second signal: exiting now; unfinished work stays in the store for the next start"
            );
            std::process::exit(if name == "sigint" { 130 } else { 143 });
        });
        Ok(Self { at })
    }

    /// Completes once a stop was requested.
    pub(crate) fn requested(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut at = self.at.clone();
        async move {
            // Dropped sender: the signal task ended without a signal (the runtime is going).
            if at.wait_for(Option::is_some).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    pub(crate) fn requested_at(&self) -> Option<Instant> {
        *self.at.borrow()
    }

    /// Completes `budget` after the stop was requested.
    pub(crate) async fn deadline_passed(&self, budget: Duration) {
        self.requested().await;
        let at = self.requested_at().unwrap_or_else(Instant::now);
        tokio::time::sleep_until((at + budget).into()).await;
    }
}

#[cfg(unix)]
#[derive(Debug)]
struct Signals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            terminate: signal(SignalKind::terminate()).context("cannot listen for sigterm")?,
            interrupt: signal(SignalKind::interrupt()).context("cannot listen for sigint")?,
        })
    }

    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "sigterm",
            _ = self.interrupt.recv() => "sigint",
        }
    }
}

#[cfg(not(unix))]
#[derive(Debug)]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn install() -> anyhow::Result<Self> {
        Ok(Self)
    }

    async fn recv(&mut self) -> &'static str {
        match tokio::signal::ctrl_c().await {
            Ok(()) => "ctrl-c",
            Err(error) => {
                tracing::error!(%error, "cannot listen for ctrl-c");
                std::future::pending().await
            }
        }
    }
}

#[derive(Debug, Args)]
pub struct PrepareArgs {
    /// A text file: first non-empty line is the title, the rest the body.
    file: PathBuf,
    /// The article's language, if known (ISO 639-1 or 639-3).
    #[arg(long)]
    lang: Option<String>,
}

pub fn prepare(figment: Figment, args: &PrepareArgs) -> anyhow::Result<()> {
    let config = config::load(figment, &[])?;
    let raw = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let (title, body) = split_title(&raw);
    let lang = args
        .lang
        .as_deref()
        .map(concord_core::Lang::parse)
        .transpose()
        .context("--lang")?;
    let budget = concord_embed::TokenizerBudget::load(&config.model.dir, config.model.max_tokens)
        .context("cannot load the tokenizer")?;
    let prepared = concord_text::prepare(
        &concord_text::ArticleInput { title, body, lang },
        &config.model.languages,
        &budget,
    )
    .context("cannot prepare the text")?;
    println!("{}", serde_json::to_string_pretty(&prepared)?);
    Ok(())
}

/// Title is the first non-empty line; the rest is the body.
pub fn split_title(raw: &str) -> (&str, &str) {
    let trimmed = raw.trim_start();
    match trimmed.split_once('\n') {
        Some((title, body)) => (title.trim(), body),
        None => (trimmed.trim(), ""),
    }
}

/// What `GET /v1/feeds` shows: the poller's state of each feed. Holds only a weak
/// handle, so the poller (and the pipeline handle in it) goes when its task ends.
fn feed_status(poller: &Arc<concord_feeds::Poller<PipelineSink>>) -> FeedStatus {
    let poller = Arc::downgrade(poller);
    FeedStatus::new(move || {
        let Some(poller) = poller.upgrade() else {
            return Vec::new();
        };
        poller
            .states()
            .into_iter()
            .map(|(name, s)| FeedOut {
                name,
                url: s.url,
                polled_at: s.polled_at,
                ok_at: s.ok_at,
                error: s.error,
                items_queued: s.items_queued,
                items_unchanged: s.items_unchanged,
                items_refused: s.items_refused,
            })
            .collect()
    })
}

/// Feed items into the pipeline, as the API hands it articles.
struct PipelineSink(Pipeline);

impl concord_feeds::Sink for PipelineSink {
    async fn submit(&self, article: ArticleSubmission) -> SinkOutcome {
        match self.0.submit(article, false).await {
            Ok(s) if matches!(s.outcome, UpsertOutcome::Unchanged(..)) => SinkOutcome::Unchanged,
            Ok(_) => SinkOutcome::Queued,
            // Passing conditions: the item is offered again next round.
            Err(IngestError::Busy { .. } | IngestError::ShuttingDown | IngestError::Store(_)) => {
                SinkOutcome::Busy
            }
            Err(e) => SinkOutcome::Refused(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(listen: &str, allow: bool) -> ServerConfig {
        ServerConfig {
            listen: listen.parse().unwrap_or_else(|e| panic!("{listen}: {e}")),
            shutdown_deadline_secs: 30,
            allow_dev_key_off_loopback: allow,
        }
    }

    #[test]
    fn the_dev_key_is_served_on_loopback_only_unless_allowed() {
        for listen in [
            "127.0.0.1:8080",
            "127.1.2.3:8080",
            "[::1]:8080",
            "[::ffff:127.0.0.1]:8080",
        ] {
            assert!(
                check_exposure(&server(listen, false), true).is_ok(),
                "{listen}"
            );
        }
        for listen in [
            "0.0.0.0:8080",
            "[::]:8080",
            "10.0.0.5:8080",
            "[::ffff:10.0.0.5]:8080",
        ] {
            let refused = check_exposure(&server(listen, false), true)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                refused.contains("server.allow_dev_key_off_loopback"),
                "{listen}: {refused:?}"
            );
            assert!(
                check_exposure(&server(listen, true), true).is_ok(),
                "{listen}"
            );
        }
    }

    #[test]
    fn other_keys_are_served_anywhere() {
        assert!(check_exposure(&server("0.0.0.0:8080", false), false).is_ok());
    }

    #[test]
    fn the_embedded_default_is_refused_on_every_interface() {
        // what docker-compose.yml would run without its env file's keys
        let config = Config::embedded_default().unwrap_or_else(|e| panic!("{e}"));
        assert!(Keys::new(&config.auth.keys).has_dev_key());
        assert!(config.server.listens_on_loopback());
        assert!(!config.server.allow_dev_key_off_loopback);
        let exposed = server("0.0.0.0:8080", config.server.allow_dev_key_off_loopback);
        assert!(check_exposure(&exposed, true).is_err());
    }
}
