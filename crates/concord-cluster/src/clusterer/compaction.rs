//! Dropping the index's tombstones without stopping: a compacted copy is
//! built on its own thread from a snapshot of the live entries while the
//! clusterer goes on with the old index; what changed meanwhile is replayed
//! onto the copy, which then replaces the old index under a brief write lock.

use std::{
    sync::mpsc::{self, TryRecvError},
    time::Instant,
};

use concord_core::{ArticleId, UnitVector};
use concord_index::{IndexError, VectorIndex};
use jiff::Timestamp;

use super::Clusterer;
use crate::ClusterError;

/// A change made to the live index after the snapshot was taken.
enum Change {
    Insert(ArticleId, Timestamp, UnitVector),
    Remove(ArticleId),
}

/// A compaction in flight.
pub(super) struct InFlight {
    built: mpsc::Receiver<Result<VectorIndex, IndexError>>,
    since: Vec<Change>,
    started: Instant,
    tombstones: usize,
}

impl Clusterer {
    /// Records an insert into the index for the compaction in flight, if any.
    pub(super) fn note_insert(&mut self, id: ArticleId, at: Timestamp, x: &UnitVector) {
        if let Some(c) = &mut self.compaction {
            c.since.push(Change::Insert(id, at, x.clone()));
        }
    }

    /// Records a removal from the index for the compaction in flight, or
    /// starts one when tombstones passed `index.rebuild_tombstone_ratio`.
    pub(super) fn note_remove(&mut self, id: ArticleId) -> Result<(), ClusterError> {
        if let Some(c) = &mut self.compaction {
            c.since.push(Change::Remove(id));
            return Ok(());
        }
        let index = self.index_read()?;
        if !index.needs_rebuild() {
            return Ok(());
        }
        let tombstones = index.tombstones();
        let job = index.compaction();
        drop(index);
        let (tx, built) = mpsc::channel();
        let live = job.len();
        let spawned = std::thread::Builder::new()
            .name("concord-compact".into())
            .spawn(move || {
                let _ = tx.send(job.build());
            });
        match spawned {
            Ok(_) => {
                tracing::info!(tombstones, live, "compacting the index in the background");
                self.compaction = Some(InFlight {
                    built,
                    since: Vec::new(),
                    started: Instant::now(),
                    tombstones,
                });
            }
            Err(error) => tracing::warn!(%error, "cannot start the index compaction"),
        }
        Ok(())
    }

    /// Swaps in the compacted index once it is built (`wait`: block until
    /// then), after replaying what changed since the snapshot.
    pub(super) fn poll_compaction(&mut self, wait: bool) -> Result<(), ClusterError> {
        let Some(c) = &self.compaction else {
            return Ok(());
        };
        let built = if wait {
            c.built.recv().map_err(|_| TryRecvError::Disconnected)
        } else {
            c.built.try_recv()
        };
        let built = match built {
            Err(TryRecvError::Empty) => return Ok(()),
            Err(TryRecvError::Disconnected) => {
                tracing::error!("index compaction thread died; keeping the old index");
                self.compaction = None;
                return Ok(());
            }
            Ok(Err(error)) => {
                tracing::error!(%error, "index compaction failed; keeping the old index");
                self.compaction = None;
                return Ok(());
            }
            Ok(Ok(index)) => index,
        };
        let Some(c) = self.compaction.take() else {
            return Ok(());
        };
        let mut index = built;
        let replayed = c.since.len();
        for change in c.since {
            match change {
                Change::Insert(id, at, x) => {
                    index.upsert(id, at, &x)?;
                }
                Change::Remove(id) => {
                    index.remove(id);
                }
            }
        }
        let live = index.len();
        *self.index_write()? = index;
        tracing::info!(
            tombstones = c.tombstones,
            live,
            replayed,
            millis = c.started.elapsed().as_millis(),
            "index compacted"
        );
        Ok(())
    }

    /// Waits for a compaction in flight and swaps it in (tests, replays).
    pub fn finish_compaction(&mut self) -> Result<(), ClusterError> {
        self.poll_compaction(true)
    }
}
