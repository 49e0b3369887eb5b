//! Analyst corrections: merge clusters, split members out, move one article.
//!
//! Each is one store transaction (memberships, cluster rows, events and the
//! correction itself with who and when), then the same change in memory. What
//! an analyst placed is pinned: a split pair is never merged again
//! automatically, and a moved or split-out article stays where it was put
//! when its content is updated.

use std::collections::HashSet;

use concord_core::{ArticleId, ClusterId};
use concord_store::{
    ClusterEventKind, ClusterStatus, Correction as CorrectionRecord, MembershipRecord, OutboxEvent,
};
use serde_json::json;

use super::{
    Clusterer, dot, emit_merged, guard_key, merge_into, refresh_after_removal, unit, update_label,
};
use crate::{ClusterError, state::ClusterState};

/// An analyst's correction (serialisable: the distributed mode's api nodes send it to
/// the active clusterer).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Correction {
    /// Fold the `from` clusters into `into`, which keeps its id.
    Merge {
        into: ClusterId,
        from: Vec<ClusterId>,
    },
    /// Move `articles` out of `from` into a new cluster that is kept apart from `from`.
    Split {
        from: ClusterId,
        articles: Vec<ArticleId>,
    },
    /// Move one article into another active cluster.
    Move { article: ArticleId, to: ClusterId },
}

impl Correction {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Merge { .. } => "merge",
            Self::Split { .. } => "split",
            Self::Move { .. } => "move",
        }
    }
}

/// What a correction did.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Corrected {
    /// The correction's id in the store.
    pub id: u64,
    /// The cluster the analyst looks at next: the survivor of a merge, the new
    /// cluster of a split, the target of a move.
    pub cluster: ClusterId,
    /// Every cluster whose membership changed, `cluster` included.
    pub changed: Vec<ClusterId>,
}

impl Clusterer {
    /// Applies an analyst's correction, recorded with `actor` and the clock's now.
    /// Cluster ids must be active ones (callers resolve merged ids first).
    pub fn correct(
        &mut self,
        correction: &Correction,
        actor: &str,
    ) -> Result<Corrected, ClusterError> {
        let result = match correction {
            Correction::Merge { into, from } => self.merge_clusters(*into, from, actor),
            Correction::Split { from, articles } => self.split_cluster(*from, articles, actor),
            Correction::Move { article, to } => self.move_article(*article, *to, actor),
        };
        if let Err(e) = &result
            && e.is_store_failure()
        {
            // Memory may be ahead of the store: rebuild it from the truth.
            tracing::error!(error = %e, "correction failed; reloading state");
            self.reload()?;
        }
        result
    }

    fn active(&self, id: ClusterId) -> Result<&ClusterState, ClusterError> {
        self.clusters
            .get(&id)
            .ok_or(ClusterError::UnknownCluster(id))
    }

    fn merge_clusters(
        &mut self,
        into: ClusterId,
        from: &[ClusterId],
        actor: &str,
    ) -> Result<Corrected, ClusterError> {
        let mut losers: Vec<ClusterId> = from.to_vec();
        losers.sort();
        losers.dedup();
        if losers.is_empty() {
            return Err(ClusterError::Invalid(
                "name at least one cluster to merge".into(),
            ));
        }
        if losers.contains(&into) {
            return Err(ClusterError::Invalid(format!(
                "cannot merge {into} into itself"
            )));
        }
        let mut survivor = self.active(into)?.clone();
        let loser_states = losers
            .iter()
            .map(|id| self.active(*id).cloned())
            .collect::<Result<Vec<_>, _>>()?;
        let now = (self.clock)();
        let data = json!({
            "into": into.0,
            "from": losers.iter().map(|c| c.0).collect::<Vec<_>>(),
        });
        let event_data = json!({ "reason": "analyst", "actor": actor });
        let id = self.db.transaction(|tx| {
            for loser in &loser_states {
                merge_into(tx, &mut survivor, loser, now, &event_data)?;
            }
            survivor.record.size = survivor.members.len() as u64;
            survivor.record.languages = survivor.languages();
            survivor.record.updated_at = now;
            tx.update_cluster(&survivor.record)?;
            emit_merged(tx, &loser_states, &survivor.record, now)?;
            tx.add_correction(&CorrectionRecord {
                kind: "merge".into(),
                actor: actor.to_owned(),
                at: now,
                data,
            })
        })?;
        for loser in &loser_states {
            for m in &loser.members {
                if let Some(meta) = self.articles.get_mut(m) {
                    meta.cluster = into;
                }
            }
            self.clusters.remove(&loser.record.id);
            self.transfer_guards(loser.record.id, into);
        }
        self.clusters.insert(into, survivor);
        let mut changed = losers;
        changed.push(into);
        changed.sort();
        Ok(Corrected {
            id,
            cluster: into,
            changed,
        })
    }

    fn split_cluster(
        &mut self,
        from: ClusterId,
        articles: &[ArticleId],
        actor: &str,
    ) -> Result<Corrected, ClusterError> {
        let origin = self.active(from)?;
        let mut moving: Vec<ArticleId> = articles.to_vec();
        moving.sort();
        moving.dedup();
        if moving.is_empty() {
            return Err(ClusterError::Invalid(
                "name at least one article to split out".into(),
            ));
        }
        for a in &moving {
            if !origin.members.contains(a) {
                return Err(ClusterError::NotAMember {
                    article: *a,
                    cluster: from,
                });
            }
        }
        if moving.len() == origin.members.len() {
            return Err(ClusterError::Invalid(format!(
                "a split must leave at least one article in {from}"
            )));
        }
        let mut vectors = Vec::with_capacity(moving.len());
        for a in &moving {
            let (_, x) = self
                .db
                .vectors(*a)?
                .ok_or(ClusterError::UnknownArticle(*a))?;
            vectors.push(x);
        }
        let mut origin = origin.clone();
        let now = (self.clock)();
        let dim = self.dim;
        let Self {
            db,
            articles: metas,
            ..
        } = self;
        let metas = &*metas;
        let (id, new_state, origin_record) = db.transaction(|tx| {
            let new_id = tx.create_cluster(now)?;
            let record = tx
                .cluster(new_id)?
                .ok_or_else(|| concord_store::StoreError::NotFound(new_id.to_string()))?;
            let mut state = ClusterState::new(record, dim);
            let event = json!({ "reason": "analyst", "actor": actor });
            tx.add_event(new_id, ClusterEventKind::Created, None, None, now, &event)?;
            tx.add_event(
                new_id,
                ClusterEventKind::SplitFrom,
                None,
                Some(from),
                now,
                &event,
            )?;
            for (a, x) in moving.iter().zip(&vectors) {
                let (lang, secs) = metas.get(a).map_or((None, 0), |m| (m.lang, m.secs));
                origin.remove(*a, lang, secs, Some(x.as_slice()));
                state.add(*a, lang, secs, x.as_slice());
                update_label(&mut state, *a, x.as_slice());
                tx.add_event(
                    from,
                    ClusterEventKind::ArticleLeft,
                    Some(*a),
                    Some(new_id),
                    now,
                    &event,
                )?;
                tx.add_event(
                    new_id,
                    ClusterEventKind::ArticleJoined,
                    Some(*a),
                    None,
                    now,
                    &event,
                )?;
            }
            let centroid = unit(&state.sum);
            for (a, x) in moving.iter().zip(&vectors) {
                tx.set_membership(&MembershipRecord {
                    article: *a,
                    cluster: new_id,
                    similarity: dot(&centroid, x.as_slice()),
                    joined_at: now,
                    pinned: true,
                })?;
            }
            refresh_after_removal(&mut state, metas, now);
            tx.update_cluster(&state.record)?;
            let origin_record = refresh_after_removal(&mut origin, metas, now);
            tx.update_cluster(&origin_record)?;
            tx.emit(
                &OutboxEvent::ClusterSplit {
                    from,
                    into: state.record.clone(),
                    articles: moving.clone(),
                },
                now,
            )?;
            tx.emit(
                &OutboxEvent::ClusterUpdated {
                    cluster: origin_record.clone(),
                },
                now,
            )?;
            let id = tx.add_correction(&CorrectionRecord {
                kind: "split".into(),
                actor: actor.to_owned(),
                at: now,
                data: json!({
                    "from": from.0,
                    "to": new_id.0,
                    "articles": moving.iter().map(|a| a.0).collect::<Vec<_>>(),
                }),
            })?;
            Ok((id, state, origin_record))
        })?;
        let new_id = new_state.record.id;
        for a in &moving {
            if let Some(meta) = self.articles.get_mut(a) {
                meta.cluster = new_id;
            }
            self.pinned.insert(*a);
        }
        debug_assert_eq!(origin_record.status, ClusterStatus::Active);
        self.clusters.insert(from, origin);
        self.clusters.insert(new_id, new_state);
        self.split_guards.insert(guard_key(from, new_id));
        Ok(Corrected {
            id,
            cluster: new_id,
            changed: vec![from, new_id],
        })
    }

    fn move_article(
        &mut self,
        article: ArticleId,
        to: ClusterId,
        actor: &str,
    ) -> Result<Corrected, ClusterError> {
        let meta = self
            .articles
            .get(&article)
            .ok_or(ClusterError::UnknownArticle(article))?;
        let from = meta.cluster;
        let (lang, secs) = (meta.lang, meta.secs);
        if from == to {
            return Err(ClusterError::Invalid(format!(
                "article {article} is already in {to}"
            )));
        }
        let mut target = self.active(to)?.clone();
        let mut origin = self.active(from)?.clone();
        let (_, x) = self
            .db
            .vectors(article)?
            .ok_or(ClusterError::UnknownArticle(article))?;
        let now = (self.clock)();
        let Self {
            db,
            articles: metas,
            ..
        } = self;
        let metas = &*metas;
        let (id, origin_record) = db.transaction(|tx| {
            let event = json!({ "reason": "analyst", "actor": actor });
            origin.remove(article, lang, secs, Some(x.as_slice()));
            target.add(article, lang, secs, x.as_slice());
            update_label(&mut target, article, x.as_slice());
            tx.set_membership(&MembershipRecord {
                article,
                cluster: to,
                similarity: dot(&unit(&target.sum), x.as_slice()),
                joined_at: now,
                pinned: true,
            })?;
            tx.add_event(
                from,
                ClusterEventKind::ArticleLeft,
                Some(article),
                Some(to),
                now,
                &event,
            )?;
            tx.add_event(
                to,
                ClusterEventKind::ArticleJoined,
                Some(article),
                Some(from),
                now,
                &event,
            )?;
            let origin_record = refresh_after_removal(&mut origin, metas, now);
            tx.update_cluster(&origin_record)?;
            refresh_after_removal(&mut target, metas, now);
            tx.update_cluster(&target.record)?;
            for record in [&origin_record, &target.record] {
                tx.emit(
                    &OutboxEvent::ClusterUpdated {
                        cluster: record.clone(),
                    },
                    now,
                )?;
            }
            Ok((
                tx.add_correction(&CorrectionRecord {
                    kind: "move".into(),
                    actor: actor.to_owned(),
                    at: now,
                    data: json!({ "article": article.0, "from": from.0, "to": to.0 }),
                })?,
                origin_record,
            ))
        })?;
        if let Some(meta) = self.articles.get_mut(&article) {
            meta.cluster = to;
        }
        self.pinned.insert(article);
        if origin_record.status == ClusterStatus::Empty {
            self.clusters.remove(&from);
        } else {
            self.clusters.insert(from, origin);
        }
        self.clusters.insert(to, target);
        Ok(Corrected {
            id,
            cluster: to,
            changed: vec![from.min(to), from.max(to)],
        })
    }

    /// Guards naming `loser` now name `survivor` (a merge keeps split pairs apart).
    pub(super) fn transfer_guards(&mut self, loser: ClusterId, survivor: ClusterId) {
        let moved: Vec<(ClusterId, ClusterId)> = self
            .split_guards
            .iter()
            .filter(|(a, b)| *a == loser || *b == loser)
            .copied()
            .collect();
        for (a, b) in moved {
            self.split_guards.remove(&(a, b));
            let other = if a == loser { b } else { a };
            if other != survivor {
                self.split_guards.insert(guard_key(other, survivor));
            }
        }
    }

    /// Ids of articles an analyst placed.
    pub fn pinned(&self) -> &HashSet<ArticleId> {
        &self.pinned
    }
}
