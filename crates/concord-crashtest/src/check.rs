//! The end-of-run invariants, checked through the API only.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    time::{Duration, Instant},
};

use crate::{Api, Error};

/// What one check of the whole store found. Every count but the totals must be 0.
#[derive(Debug, Clone, Default)]
pub struct Round {
    pub name: &'static str,
    /// Acknowledged articles checked.
    pub acknowledged: usize,
    pub clusters: usize,
    /// Acknowledged but not found by id, or in no cluster's members.
    pub lost: usize,
    /// Acknowledged and found, but not in state `clustered`.
    pub unclustered: usize,
    /// An article in more than one cluster (or twice in one), or a cluster listed twice.
    pub duplicates: usize,
    /// The article's own cluster differs from the cluster whose members hold it, a
    /// listed cluster resolves to another, or a cluster's size differs from its members.
    pub inconsistent: usize,
    /// Members that were never acknowledged to the harness.
    pub unacknowledged_members: usize,
    /// `/readyz` indexed_articles.
    pub indexed_articles: usize,
    /// Acknowledged articles neither found by `similar` nor answering it.
    pub not_indexed: usize,
    /// Articles `similar` returned that were never acknowledged.
    pub stale_index: usize,
    /// Cluster ids given to the harness that no longer resolve to a listed cluster.
    pub unresolved_cluster_ids: usize,
    pub cluster_ids_checked: usize,
    /// Problems, for the log (first few of each kind).
    pub notes: Vec<String>,
}

impl Round {
    pub fn clean(&self) -> bool {
        self.lost == 0
            && self.unclustered == 0
            && self.duplicates == 0
            && self.inconsistent == 0
            && self.unacknowledged_members == 0
            && self.not_indexed == 0
            && self.stale_index == 0
            && self.indexed_articles == self.acknowledged
            && self.unresolved_cluster_ids == 0
    }

    fn note(&mut self, what: String) {
        if self.notes.len() < 20 {
            self.notes.push(what);
        }
    }
}

/// Polls every article until it is `clustered`, or gives up after `timeout`.
pub fn settle<'a>(
    api: &Api,
    ids: impl IntoIterator<Item = &'a String>,
    timeout: Duration,
) -> Result<(), Error> {
    let deadline = Instant::now() + timeout;
    let mut pending: Vec<&String> = ids.into_iter().collect();
    loop {
        let mut still = Vec::new();
        for id in pending {
            match api.article(id)? {
                Some(a) if a.state == "clustered" => {}
                _ => still.push(id),
            }
        }
        if still.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(Error::NotSettled {
                pending: still.len(),
                secs: timeout.as_secs(),
            });
        }
        pending = still;
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Checks every invariant against what the harness was told: `acked` maps
/// external id to article id, `cluster_ids` is every cluster id ever answered.
pub fn verify(
    name: &'static str,
    api: &Api,
    acked: &BTreeMap<String, String>,
    cluster_ids: &BTreeSet<String>,
) -> Result<Round, Error> {
    let mut round = Round {
        name,
        acknowledged: acked.len(),
        ..Round::default()
    };
    let ids: HashSet<&String> = acked.values().collect();
    // two articles acknowledged under one id
    if ids.len() < acked.len() {
        round.duplicates += acked.len() - ids.len();
        round.note(format!(
            "{} acknowledged articles share an id with another",
            acked.len() - ids.len()
        ));
    }
    let mut lost: BTreeSet<&String> = BTreeSet::new();

    // 1. every acknowledged article by id: stored, the same article, clustered
    let mut own_cluster: HashMap<&String, String> = HashMap::new();
    for (external_id, id) in acked {
        match api.article(id)? {
            None => {
                round.note(format!("{id} ({external_id}) not found"));
                lost.insert(id);
            }
            Some(a) if a.external_id != *external_id => {
                round.note(format!(
                    "{id} answers as {} instead of {external_id}",
                    a.external_id
                ));
                lost.insert(id);
            }
            Some(a) => {
                if a.state != "clustered" {
                    round.unclustered += 1;
                    round.note(format!("{id} is {}", a.state));
                }
                if let Some(c) = a.cluster {
                    own_cluster.insert(id, c);
                }
            }
        }
    }

    // 2. every listed cluster's members: each acknowledged article exactly once
    let listed = api.all_clusters()?;
    round.clusters = listed.len();
    let mut listed_ids = HashSet::new();
    let mut holder: HashMap<String, String> = HashMap::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    for summary in &listed {
        if !listed_ids.insert(summary.id.clone()) {
            round.duplicates += 1;
            round.note(format!("cluster {} listed twice", summary.id));
            continue;
        }
        let Some(cluster) = api.cluster(&summary.id)? else {
            round.inconsistent += 1;
            round.note(format!("listed cluster {} does not resolve", summary.id));
            continue;
        };
        if cluster.id != summary.id {
            round.inconsistent += 1;
            round.note(format!(
                "listed cluster {} resolves to {}",
                summary.id, cluster.id
            ));
        }
        if cluster.size != cluster.members.len() as u64 || cluster.size != summary.size {
            round.inconsistent += 1;
            round.note(format!(
                "cluster {}: size {} (listed {}) but {} members",
                cluster.id,
                cluster.size,
                summary.size,
                cluster.members.len()
            ));
        }
        for m in cluster.members {
            *seen.entry(m.id.clone()).or_default() += 1;
            holder.insert(m.id, summary.id.clone());
        }
    }
    for (member, n) in &seen {
        if *n > 1 {
            round.duplicates += n - 1;
            round.note(format!("{member} is a member {n} times"));
        }
        if !ids.contains(member) {
            round.unacknowledged_members += 1;
            round.note(format!("{member} is a member but was never acknowledged"));
        }
    }
    for id in &ids {
        match holder.get(*id) {
            None => {
                if lost.insert(id) {
                    round.note(format!("{id} is in no cluster"));
                }
            }
            Some(c) => {
                if own_cluster.get(*id).is_some_and(|own| own != c) {
                    round.inconsistent += 1;
                    round.note(format!(
                        "{id} says cluster {:?}, listed in {c}",
                        own_cluster.get(*id)
                    ));
                }
            }
        }
    }
    round.lost = lost.len();

    // 3. the index: its size, and every article found near some other (the
    // index answers small windows by an exact scan, so this is exact here)
    round.indexed_articles = api.ready()?.indexed_articles.unwrap_or_default();
    let k = acked.len().saturating_sub(1).clamp(1, 200);
    let mut found: HashSet<String> = HashSet::new();
    let mut stale: HashSet<String> = HashSet::new();
    let mut answering = 0usize;
    for id in &ids {
        match api.similar(id, k) {
            Ok(similar) => {
                answering += 1;
                for hit in similar.hits {
                    if !ids.contains(&hit.article) {
                        stale.insert(hit.article.clone());
                    }
                    found.insert(hit.article);
                }
            }
            Err(Error::Status { status, body, .. }) => {
                round.not_indexed += 1;
                round.note(format!("similar to {id}: {status} {body}"));
            }
            Err(other) => return Err(other),
        }
    }
    if ids.len() > 1 && answering > 0 {
        for id in &ids {
            if !found.contains(*id) {
                round.not_indexed += 1;
                round.note(format!("{id} is near no other article (not in the index?)"));
            }
        }
    }
    round.stale_index = stale.len();

    // 4. every cluster id ever given still resolves, to a listed (active) cluster
    for cid in cluster_ids {
        round.cluster_ids_checked += 1;
        match api.cluster(cid)? {
            Some(c) if listed_ids.contains(&c.id) => {}
            Some(c) => {
                round.unresolved_cluster_ids += 1;
                round.note(format!("{cid} resolves to {}, which is not listed", c.id));
            }
            None => {
                round.unresolved_cluster_ids += 1;
                round.note(format!("{cid} does not resolve"));
            }
        }
    }
    Ok(round)
}
