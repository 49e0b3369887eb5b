//! `serve --role embed` and `serve --role cluster`: the distributed mode's processes
//! that listen on no HTTP port. Wiring only; the roles are in `concord_pipeline::roles`.

use std::time::{Duration, Instant};

use anyhow::Context;
use concord_core::Config;
use concord_embed::Model;
use concord_metrics::Metrics;
use concord_pipeline::roles::{open_shared_store, run_cluster, run_embed};
use concord_webhooks::{Dispatcher, DispatcherConfig};
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

use crate::serve::Stop;

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

pub fn embed(config: &Config, runtime: Runtime, stop: &Stop) -> anyhow::Result<()> {
    let budget = config.server.shutdown_deadline();
    let result = runtime.block_on(async {
        let token = token(stop);
        let started = Instant::now();
        let model_config = config.model.clone();
        let loading = tokio::task::spawn_blocking(move || Model::load(&model_config));
        let model = tokio::select! {
            biased;
            () = token.cancelled() => return Ok(()),
            model = loading => model.context("model load panicked")?.context("cannot start the embedding model")?,
        };
        tracing::info!(
            model = model.name(),
            dim = model.dim(),
            millis = started.elapsed().as_millis() as u64,
            "model loaded"
        );
        tokio::select! {
            r = run_embed(config, model, Metrics::new(), token) => r.context("embed worker failed"),
            () = stop.deadline_passed(budget) => {
                tracing::warn!(secs = budget.as_secs(), "shutdown deadline passed; notices in hand go to other workers");
                Ok(())
            }
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

pub fn cluster(config: &Config, runtime: Runtime, stop: &Stop) -> anyhow::Result<()> {
    let budget = config.server.shutdown_deadline();
    let result = runtime.block_on(async {
        let token = token(stop);
        // The outbox rows this clusterer commits go out from here too (any number of
        // dispatchers share the deliveries: claims skip locked rows).
        let store = open_shared_store(config).await.context("cannot open the store")?;
        let dispatch_config = DispatcherConfig::from_config(&config.webhooks);
        let dispatcher = tokio::task::spawn_blocking(move || Dispatcher::start(&store, dispatch_config))
            .await
            .context("the webhook dispatcher's start-up panicked")?
            .context("cannot start the webhook dispatcher")?;
        let outcome = tokio::select! {
            r = run_cluster(config, Metrics::new(), dispatcher.notify_handle(), token) => r.context("clusterer failed"),
            () = stop.deadline_passed(budget) => {
                tracing::warn!(secs = budget.as_secs(), "shutdown deadline passed; the next clusterer resumes from the log");
                Ok(())
            }
        };
        let left = stop
            .requested_at()
            .map_or(Duration::from_secs(1), |at| (at + budget).saturating_duration_since(Instant::now()));
        if let Err(error) = dispatcher.shutdown(left).await {
            tracing::warn!(%error, "webhook dispatcher did not stop cleanly");
        }
        outcome
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}
