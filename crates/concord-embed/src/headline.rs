//! The headline model's own thread, for the clusterer's second look.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    thread::JoinHandle,
    time::Instant,
};

use concord_core::UnitVector;
use tokio::sync::{mpsc, oneshot};

use crate::{EmbedError, HeadlineModel};

/// Titles for the headline model (one decision's).
struct HeadlineJob {
    titles: Vec<String>,
    reply: oneshot::Sender<Result<Vec<UnitVector>, EmbedError>>,
}

/// What the headline thread has done, logged when it stops.
#[derive(Debug, Default)]
struct HeadlineStats {
    calls: AtomicU64,
    titles: AtomicU64,
    busy_micros: AtomicU64,
}

/// Asks the headline thread for titles' vectors and waits for them on the calling
/// (non-async) thread: the cluster thread's second look at a doubtful decision.
/// The thread runs while a lane is held.
#[derive(Debug, Clone)]
pub struct HeadlineLane {
    tx: mpsc::Sender<HeadlineJob>,
}

impl HeadlineLane {
    /// The titles' vectors, in order. Blocks: call it from a plain thread.
    pub fn embed_blocking(&self, titles: Vec<String>) -> Result<Vec<UnitVector>, EmbedError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .blocking_send(HeadlineJob { titles, reply })
            .map_err(|_| EmbedError::WorkerGone)?;
        rx.blocking_recv().map_err(|_| EmbedError::WorkerGone)?
    }
}

/// The thread that owns the headline model when titles are embedded only for
/// doubtful decisions (`[headline_model] embed = "doubtful"`): beside the sentence
/// model's thread, so the next articles' texts are embedded while a decision
/// waits for its titles'. It stops once every [`HeadlineLane`] is dropped.
#[derive(Debug)]
pub struct HeadlineWorker {
    thread: JoinHandle<()>,
}

impl HeadlineWorker {
    /// Moves `model` onto its own thread; the lane feeds it (one asker at a time:
    /// the cluster thread).
    pub fn spawn(mut model: HeadlineModel) -> std::io::Result<(Self, HeadlineLane)> {
        let (tx, mut rx) = mpsc::channel::<HeadlineJob>(4);
        let stats = HeadlineStats::default();
        let lane = HeadlineLane { tx };
        let thread = std::thread::Builder::new()
            .name("concord-headline".into())
            .spawn(move || {
                while let Some(job) = rx.blocking_recv() {
                    let started = Instant::now();
                    let result = model.embed(&job.titles);
                    stats.calls.fetch_add(1, Ordering::Relaxed);
                    stats
                        .titles
                        .fetch_add(job.titles.len() as u64, Ordering::Relaxed);
                    stats.busy_micros.fetch_add(
                        u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                        Ordering::Relaxed,
                    );
                    let _ = job.reply.send(result);
                }
                tracing::info!(
                    calls = stats.calls.load(Ordering::Relaxed),
                    titles = stats.titles.load(Ordering::Relaxed),
                    busy_ms = stats.busy_micros.load(Ordering::Relaxed) / 1000,
                    "headline worker stopped"
                );
            })?;
        Ok((Self { thread }, lane))
    }

    /// Waits until every lane is dropped and the thread has exited.
    pub fn join(self) {
        if self.thread.join().is_err() {
            tracing::error!("headline worker panicked");
        }
    }
}
