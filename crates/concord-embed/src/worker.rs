use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use concord_core::{Embedding, UnitVector, config::EmbedConfig};
use tokio::sync::{mpsc, oneshot};

use crate::{EmbedError, Encoders};

type Reply = oneshot::Sender<Result<Embedding, EmbedError>>;

/// What the submitter waits on: the job's embedding.
pub type EmbedReceiver = oneshot::Receiver<Result<Embedding, EmbedError>>;

struct Job {
    text: String,
    /// The title for the headline model (ignored when the worker has none).
    headline: Option<String>,
    reply: Reply,
}

/// Counters the worker keeps; read them for metrics and benchmarks.
#[derive(Debug, Default)]
pub struct WorkerStats {
    pub batches: AtomicU64,
    pub texts: AtomicU64,
    pub busy_micros: AtomicU64,
}

/// Told about every batch the model runs (metrics); called on the model's thread.
pub trait BatchObserver: Send + Sync {
    fn batch(&self, size: usize, elapsed: Duration);
}

struct NoObserver;

impl BatchObserver for NoObserver {
    fn batch(&self, _size: usize, _elapsed: Duration) {}
}

/// Cheap to clone; every clone feeds the same bounded queue.
#[derive(Debug, Clone)]
pub struct EmbedHandle {
    tx: mpsc::Sender<Job>,
    /// The query lane: served before `tx` whenever both have texts waiting.
    urgent: mpsc::Sender<Job>,
    capacity: usize,
    dim: usize,
    stats: Arc<WorkerStats>,
}

impl EmbedHandle {
    /// Queues `text` without waiting for room: a full queue is [`EmbedError::QueueFull`],
    /// which the API turns into 429 with Retry-After.
    pub fn try_submit(&self, text: String) -> Result<EmbedReceiver, EmbedError> {
        submit_now(&self.tx, text)
    }

    /// Queues a query's `text` on the priority lane, which the model serves
    /// before the ingest queue: a search never waits behind the ingest backlog.
    /// A full lane is [`EmbedError::QueueFull`].
    pub fn try_submit_query(&self, text: String) -> Result<EmbedReceiver, EmbedError> {
        submit_now(&self.urgent, text)
    }

    /// Reserves one place in the queue without waiting, so a caller can make
    /// its own write durable before committing the text to the model.
    pub fn try_reserve(&self) -> Result<EmbedPermit, EmbedError> {
        self.tx
            .clone()
            .try_reserve_owned()
            .map(|permit| EmbedPermit { permit })
            .map_err(refused)
    }

    /// Reserves one place in the queue, waiting for room.
    pub async fn reserve(&self) -> Result<EmbedPermit, EmbedError> {
        self.tx
            .clone()
            .reserve_owned()
            .await
            .map(|permit| EmbedPermit { permit })
            .map_err(|_| EmbedError::WorkerGone)
    }

    /// Queues `text`, waiting for room, then waits for its embedding.
    pub async fn embed(&self, text: String) -> Result<Embedding, EmbedError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Job {
                text,
                headline: None,
                reply,
            })
            .await
            .map_err(|_| EmbedError::WorkerGone)?;
        rx.await.map_err(|_| EmbedError::WorkerGone)?
    }

    /// Texts waiting for the model right now.
    pub fn queue_depth(&self) -> usize {
        self.capacity - self.tx.capacity()
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn stats(&self) -> &WorkerStats {
        &self.stats
    }
}

/// Queues `text` on `lane` without waiting for room.
fn submit_now(lane: &mpsc::Sender<Job>, text: String) -> Result<EmbedReceiver, EmbedError> {
    let (reply, rx) = oneshot::channel();
    lane.try_send(Job {
        text,
        headline: None,
        reply,
    })
    .map_err(refused)?;
    Ok(rx)
}

/// A lane that refused a job: full, or the worker is gone.
fn refused<T>(e: mpsc::error::TrySendError<T>) -> EmbedError {
    match e {
        mpsc::error::TrySendError::Full(_) => EmbedError::QueueFull,
        mpsc::error::TrySendError::Closed(_) => EmbedError::WorkerGone,
    }
}

/// A reserved place in the embed queue; dropping it gives the place back.
#[derive(Debug)]
pub struct EmbedPermit {
    permit: mpsc::OwnedPermit<Job>,
}

impl EmbedPermit {
    /// Queues `text` (and the `headline` for the headline model, if the worker has
    /// one) in the reserved place; the receiver yields its embedding.
    pub fn submit(self, text: String, headline: Option<String>) -> EmbedReceiver {
        let (reply, rx) = oneshot::channel();
        self.permit.send(Job {
            text,
            headline,
            reply,
        });
        rx
    }
}

/// The thread that owns the model. Dropping every [`EmbedHandle`] stops it
/// after the queue drains; [`EmbedWorker::join`] waits for that.
#[derive(Debug)]
pub struct EmbedWorker {
    thread: JoinHandle<()>,
}

impl EmbedWorker {
    /// Moves the models onto their own thread and returns the handle that feeds it.
    pub fn spawn(
        models: impl Into<Encoders>,
        config: &EmbedConfig,
    ) -> std::io::Result<(Self, EmbedHandle)> {
        Self::spawn_observed(models.into(), config, Arc::new(NoObserver))
    }

    /// As [`EmbedWorker::spawn`], telling `observer` about every batch.
    pub fn spawn_observed(
        models: Encoders,
        config: &EmbedConfig,
        observer: Arc<dyn BatchObserver>,
    ) -> std::io::Result<(Self, EmbedHandle)> {
        let (tx, rx) = mpsc::channel(config.queue_capacity);
        let (urgent, urgent_rx) = mpsc::channel(config.query_queue_capacity);
        let stats = Arc::new(WorkerStats::default());
        let handle = EmbedHandle {
            tx,
            urgent,
            capacity: config.queue_capacity,
            dim: models.text.dim(),
            stats: Arc::clone(&stats),
        };
        let limits = BatchLimits {
            texts: config.max_batch,
            chars: config.max_batch_chars,
            wait: config.max_wait(),
        };
        let thread = std::thread::Builder::new()
            .name("concord-embed".into())
            .spawn(move || {
                run(
                    models,
                    Lanes::new(urgent_rx, rx),
                    limits,
                    &stats,
                    &*observer,
                )
            })?;
        Ok((Self { thread }, handle))
    }

    /// Waits until the queue is drained and the thread has exited.
    pub fn join(self) {
        if self.thread.join().is_err() {
            tracing::error!("embed worker panicked");
        }
    }
}

/// The two queues the model reads: queries first, then ingest.
struct Lanes {
    urgent: mpsc::Receiver<Job>,
    bulk: mpsc::Receiver<Job>,
    urgent_open: bool,
}

impl Lanes {
    fn new(urgent: mpsc::Receiver<Job>, bulk: mpsc::Receiver<Job>) -> Self {
        Self {
            urgent,
            bulk,
            urgent_open: true,
        }
    }

    /// A job already waiting (queries first), and whether it is a query.
    fn try_recv(&mut self) -> Result<(Job, bool), mpsc::error::TryRecvError> {
        match self.urgent.try_recv() {
            Ok(job) => Ok((job, true)),
            Err(_) => self.bulk.try_recv().map(|job| (job, false)),
        }
    }

    /// The next job and whether it is a query, waiting for one; `None` once
    /// the ingest queue is closed and drained (the query lane closes with it:
    /// both live in the handle).
    async fn recv(&mut self) -> Option<(Job, bool)> {
        loop {
            tokio::select! {
                biased;
                job = self.urgent.recv(), if self.urgent_open => match job {
                    Some(job) => return Some((job, true)),
                    None => self.urgent_open = false,
                },
                job = self.bulk.recv() => return job.map(|job| (job, false)),
            }
        }
    }
}

fn run(
    mut models: Encoders,
    mut lanes: Lanes,
    limits: BatchLimits,
    stats: &WorkerStats,
    observer: &dyn BatchObserver,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(error) => {
            tracing::error!(%error, "embed worker could not start its timer runtime");
            return;
        }
    };
    runtime.block_on(async {
        let mut batch: Vec<Job> = Vec::with_capacity(limits.texts);
        // A job that would have overfilled the last batch starts the next one.
        let mut carry: Option<(Job, bool)> = None;
        loop {
            let next = match carry.take() {
                Some(next) => Some(next),
                None => lanes.recv().await,
            };
            let Some((first, query)) = next else { break };
            let mut chars = first.text.len();
            batch.push(first);
            let deadline = tokio::time::Instant::now() + limits.wait;
            while batch.len() < limits.texts {
                let job = if query {
                    // A person waits: run the queries already there, without
                    // filling the batch up with ingest texts (that would add
                    // their model time to the search's).
                    match lanes.urgent.try_recv() {
                        Ok(job) => (job, true),
                        Err(_) => break,
                    }
                } else {
                    match lanes.try_recv() {
                        Ok(job) => job,
                        Err(mpsc::error::TryRecvError::Disconnected) => break,
                        Err(mpsc::error::TryRecvError::Empty) => {
                            match tokio::time::timeout_at(deadline, lanes.recv()).await {
                                Ok(Some(job)) => job,
                                Ok(None) | Err(_) => break,
                            }
                        }
                    }
                };
                if chars + job.0.text.len() > limits.chars {
                    carry = Some(job);
                    break;
                }
                chars += job.0.text.len();
                batch.push(job.0);
            }
            run_batch(&mut models, &mut batch, stats, observer);
        }
    });
    tracing::debug!("embed worker stopped");
}

/// How big one model call may get.
#[derive(Debug, Clone, Copy)]
struct BatchLimits {
    texts: usize,
    /// Bytes of text: a batch is padded to its longest text, so a few long
    /// articles make a slow batch (and a search waits for the batch running).
    chars: usize,
    wait: Duration,
}

fn run_batch(
    models: &mut Encoders,
    batch: &mut Vec<Job>,
    stats: &WorkerStats,
    observer: &dyn BatchObserver,
) {
    // A caller that gave up (dropped its receiver) costs no model time.
    batch.retain(|job| !job.reply.is_closed());
    if batch.is_empty() {
        return;
    }
    let started = Instant::now();
    let result = embed_batch(models, batch);
    let elapsed = started.elapsed();
    observer.batch(batch.len(), elapsed);
    stats.batches.fetch_add(1, Ordering::Relaxed);
    stats.texts.fetch_add(batch.len() as u64, Ordering::Relaxed);
    stats.busy_micros.fetch_add(
        u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
    tracing::trace!(
        size = batch.len(),
        micros = elapsed.as_micros(),
        "embedded batch"
    );
    match result {
        Ok(embeddings) => {
            for (job, embedding) in batch.drain(..).zip(embeddings) {
                let _ = job.reply.send(Ok(embedding));
            }
        }
        Err(error) => {
            let message = error.to_string();
            for job in batch.drain(..) {
                let _ = job.reply.send(Err(EmbedError::Inference(message.clone())));
            }
        }
    }
}

/// One call of the sentence model over every text of the batch, and one of the
/// headline model over the titles it carries (when the worker has that model).
fn embed_batch(models: &mut Encoders, batch: &[Job]) -> Result<Vec<Embedding>, EmbedError> {
    let texts: Vec<&str> = batch.iter().map(|job| job.text.as_str()).collect();
    let vectors = models.text.embed(&texts)?;
    let mut headlines: Vec<Option<UnitVector>> = vec![None; batch.len()];
    if let Some(model) = models.headline.as_mut() {
        let (at, titles): (Vec<usize>, Vec<&str>) = batch
            .iter()
            .enumerate()
            .filter_map(|(i, job)| job.headline.as_deref().map(|t| (i, t)))
            .unzip();
        if !titles.is_empty() {
            for (i, vector) in at.into_iter().zip(model.embed(&titles)?) {
                headlines[i] = Some(vector);
            }
        }
    }
    Ok(vectors
        .into_iter()
        .zip(headlines)
        .map(|(vector, headline)| Embedding { vector, headline })
        .collect())
}
