//! `serve --role embed` and `serve --role cluster`: the distributed mode's processes
//! without the API. Each serves `/healthz`, `/readyz` and `/metrics` on `server.listen`
//! for probes and Prometheus. Wiring only; the roles are in `concord_pipeline::roles`.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use concord_core::Config;
use concord_embed::Encoders;
use concord_metrics::Metrics;
use concord_pipeline::roles::{open_shared_store, run_cluster, run_embed};
use concord_webhooks::{Dispatcher, DispatcherConfig};
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

use crate::serve::Stop;

/// What a role's probes report: `ready` once it does its work (embed: the model is
/// loaded; cluster: it holds the lease, or waits on standby: both are healthy).
#[derive(Clone)]
struct Probe {
    role: &'static str,
    ready: Arc<AtomicBool>,
    active: Option<Arc<AtomicBool>>,
    metrics: Metrics,
}

/// Serves the probes and metrics on `server.listen` until `stop`.
async fn serve_probes(
    config: &Config,
    probe: Probe,
    stop: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    use axum::{Json, Router, extract::State, http::StatusCode, routing::get};
    async fn readyz(State(p): State<Probe>) -> (StatusCode, Json<serde_json::Value>) {
        let ready = p.ready.load(Ordering::Relaxed);
        let mut body = serde_json::json!({
            "status": if ready { "ready" } else { "starting" },
            "role": p.role,
        });
        if let Some(active) = &p.active {
            body["state"] = if active.load(Ordering::Relaxed) {
                "active"
            } else {
                "standby"
            }
            .into();
        }
        let code = if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        (code, Json(body))
    }
    let app = Router::new()
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/readyz", get(readyz))
        .route(
            "/metrics",
            get(|State(p): State<Probe>| async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    p.metrics.render(),
                )
            }),
        )
        .with_state(probe);
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    tracing::info!(addr = %config.server.listen, "probes and metrics listening");
    Ok(tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
        if let Err(error) = served {
            tracing::warn!(%error, "probe server failed");
        }
    }))
}

/// A token cancelled by the first SIGTERM/SIGINT.
fn token(stop: &Stop) -> CancellationToken {
    let token = CancellationToken::new();
    let (t, requested) = (token.clone(), stop.requested());
    tokio::spawn(async move {
        requested.await;
        t.cancel();
    });
    token
}

/// Runs a role on `runtime`: its probes on `server.listen` beside `body`, which gets
/// the token the first SIGTERM/SIGINT cancels. When `body` ends the probes stop, and
/// the runtime is shut down.
fn run_role<F, Fut>(
    config: &Config,
    runtime: Runtime,
    stop: &Stop,
    probe: Probe,
    body: F,
) -> anyhow::Result<()>
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let result = runtime.block_on(async {
        let token = token(stop);
        let probes = serve_probes(config, probe, token.clone()).await?;
        let outcome = body(token.clone()).await;
        token.cancel();
        let _ = probes.await;
        outcome
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

pub fn embed(config: &Config, runtime: Runtime, stop: &Stop) -> anyhow::Result<()> {
    let budget = config.server.shutdown_deadline();
    let (metrics, ready) = (Metrics::new(), Arc::new(AtomicBool::new(false)));
    let probe = Probe {
        role: "embed",
        ready: Arc::clone(&ready),
        active: None,
        metrics: metrics.clone(),
    };
    run_role(config, runtime, stop, probe, |token| async move {
        let started = Instant::now();
        let (model_config, headline_config) = (config.model.clone(), config.headline_model.clone());
        let loading =
            tokio::task::spawn_blocking(move || Encoders::load(&model_config, &headline_config));
        let models = tokio::select! {
            biased;
            () = token.cancelled() => return Ok(()),
            models = loading => models.context("model load panicked")?.context("cannot start the embedding models")?,
        };
        tracing::info!(
            model = models.text.name(),
            dim = models.text.dim(),
            headline_model = models.headline.as_ref().map(|h| h.name()),
            millis = started.elapsed().as_millis() as u64,
            "model loaded"
        );
        ready.store(true, Ordering::Relaxed);
        tokio::select! {
            r = run_embed(config, models, metrics, token) => r.context("embed worker failed"),
            () = stop.deadline_passed(budget) => {
                tracing::warn!(secs = budget.as_secs(), "shutdown deadline passed; notices in hand go to other workers");
                Ok(())
            }
        }
    })
}

pub fn cluster(config: &Config, runtime: Runtime, stop: &Stop) -> anyhow::Result<()> {
    let budget = config.server.shutdown_deadline();
    let (metrics, active) = (Metrics::new(), Arc::new(AtomicBool::new(false)));
    let probe = Probe {
        role: "cluster",
        ready: Arc::new(AtomicBool::new(true)),
        active: Some(Arc::clone(&active)),
        metrics: metrics.clone(),
    };
    run_role(config, runtime, stop, probe, |token| async move {
        // The outbox rows this clusterer commits go out from here too (any number of
        // dispatchers share the deliveries: claims skip locked rows).
        let store = open_shared_store(config)
            .await
            .context("cannot open the store")?;
        let dispatch_config = DispatcherConfig::from_config(&config.webhooks);
        let dispatcher =
            tokio::task::spawn_blocking(move || Dispatcher::start(&store, dispatch_config))
                .await
                .context("the webhook dispatcher's start-up panicked")?
                .context("cannot start the webhook dispatcher")?;
        let outcome = tokio::select! {
            r = run_cluster(config, metrics, dispatcher.notify_handle(), active, token) => r.context("clusterer failed"),
            () = stop.deadline_passed(budget) => {
                tracing::warn!(secs = budget.as_secs(), "shutdown deadline passed; the next clusterer resumes from the log");
                Ok(())
            }
        };
        let left = stop.requested_at().map_or(Duration::from_secs(1), |at| {
            (at + budget).saturating_duration_since(Instant::now())
        });
        if let Err(error) = dispatcher.shutdown(left).await {
            tracing::warn!(%error, "webhook dispatcher did not stop cleanly");
        }
        outcome
    })
}
