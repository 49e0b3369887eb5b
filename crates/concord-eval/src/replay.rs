//! Replays a dataset, in publication order, through the same pipeline the
//! service runs: each article is submitted as an upstream feed would submit it.

use std::{collections::HashMap, time::Instant};

use concord_core::{ArticleId, ClusterId};
use concord_pipeline::{ArticleSubmission, IngestError, Pipeline};

use crate::Dataset;

/// What a replay predicted, item by item (dataset order).
#[derive(Debug, Clone)]
pub struct Replayed {
    /// The cluster of each item; items the pipeline refused get a singleton of their own.
    pub predicted: Vec<ClusterId>,
    /// Items the pipeline refused (unusable text), with the reason.
    pub refused: Vec<(usize, String)>,
    pub seconds: f64,
    pub clusters: usize,
}

impl Replayed {
    pub fn articles_per_second(&self) -> f64 {
        self.predicted.len() as f64 / self.seconds.max(1e-9)
    }
}

/// Submits every item in order (waiting for room, never refusing for load),
/// waits until all are clustered, and reads back the clustering.
pub async fn replay(
    pipeline: &Pipeline,
    dataset: &Dataset,
    mut progress: impl FnMut(usize),
) -> Result<Replayed, IngestError> {
    let started = Instant::now();
    let mut ids: Vec<Option<ArticleId>> = Vec::with_capacity(dataset.len());
    let mut refused = Vec::new();
    for (i, item) in dataset.items.iter().enumerate() {
        let submission = ArticleSubmission {
            external_id: item.key.clone(),
            source: None,
            url: None,
            lang: Some(item.lang),
            published_at: item.published_at,
            title: item.title.clone(),
            body: item.body.clone(),
        };
        match pipeline.submit_waiting(submission, false).await {
            Ok(submitted) => ids.push(Some(submitted.id)),
            Err(IngestError::Text(e)) => {
                refused.push((i, e.to_string()));
                ids.push(None);
            }
            Err(e) => return Err(e),
        }
        progress(i + 1);
    }
    pipeline.flush().await?;
    let summaries = pipeline.summaries().await?;
    let clusters = summaries.len();
    let cluster_of: HashMap<ArticleId, ClusterId> = summaries
        .into_iter()
        .flat_map(|s| s.members.into_iter().map(move |m| (m, s.id)))
        .collect();
    let predicted = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            id.and_then(|id| cluster_of.get(&id).copied())
                // Not clustered (refused): a singleton no real cluster id can collide with.
                .unwrap_or(ClusterId(u64::MAX - i as u64))
        })
        .collect();
    Ok(Replayed {
        predicted,
        refused,
        seconds: started.elapsed().as_secs_f64(),
        clusters,
    })
}
