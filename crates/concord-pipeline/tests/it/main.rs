//! The pipeline end to end on the real model: store, embed worker, index, clusterer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use concord_cluster::Outcome;
use concord_core::{Config, Lang};
use concord_embed::Model;
use concord_pipeline::{ArticleSubmission, IngestError, Pipeline};
use concord_store::{ArticleState, UpsertOutcome};
use jiff::Timestamp;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn config(data: &Path) -> Config {
    let mut config = Config::embedded_default().unwrap();
    config.model.dir = root().join(&config.model.dir);
    config.model.ort_dylib = root().join(&config.model.ort_dylib);
    config.data.dir = data.to_path_buf();
    config
}

struct Seed {
    file: String,
    lang: Lang,
    published: Timestamp,
    title: String,
    body: String,
}

/// The five seed articles with their labelled language and date (no gold label).
fn seeds() -> Vec<Seed> {
    let dir = root().join("../shared/data/seeds");
    let labels = std::fs::read_to_string(dir.join("labels.jsonl")).unwrap();
    labels
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let file = v["file"].as_str().unwrap().to_owned();
            let raw = std::fs::read_to_string(dir.join(&file)).unwrap();
            let (title, body) = raw.trim_start().split_once('\n').unwrap();
            Seed {
                lang: Lang::parse(v["lang"].as_str().unwrap()).unwrap(),
                published: format!("{}T12:00:00Z", v["published"].as_str().unwrap())
                    .parse()
                    .unwrap(),
                title: title.trim().to_owned(),
                body: body.to_owned(),
                file,
            }
        })
        .collect()
}

fn submission(s: &Seed) -> ArticleSubmission {
    ArticleSubmission {
        external_id: s.file.clone(),
        source: Some("seeds".into()),
        url: None,
        lang: Some(s.lang),
        published_at: s.published,
        title: s.title.clone(),
        body: s.body.clone(),
    }
}

async fn cluster_of(
    reply: Option<tokio::sync::oneshot::Receiver<concord_pipeline::ClusterReply>>,
) -> concord_core::ClusterId {
    match reply
        .expect("a new article is clustered")
        .await
        .unwrap()
        .unwrap()
    {
        Outcome::Assigned(a) => a.cluster,
        Outcome::Stale => panic!("stale"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_2020_seeds_form_one_cross_lingual_cluster_and_2015_stays_apart() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let pipeline = Pipeline::start(&config, Model::load(&config.model).unwrap()).unwrap();
    let mut seeds = seeds();
    seeds.sort_by_key(|s| s.published);
    let mut clusters = std::collections::HashMap::new();
    for s in &seeds {
        let submitted = pipeline.submit_waiting(submission(s), true).await.unwrap();
        assert!(matches!(submitted.outcome, UpsertOutcome::Inserted(_)));
        clusters.insert(s.file.clone(), cluster_of(submitted.clustered).await);
    }
    // Later merges can fold a cluster into another: compare what the clusterer holds now.
    let summaries = pipeline.summaries().await.unwrap();
    let now_in = |file: &str| {
        let id = pipeline_article(&pipeline, file);
        summaries
            .iter()
            .find(|s| s.members.contains(&id))
            .map(|s| s.id)
            .unwrap()
    };
    let a = now_in("000_9324e893e81eec0c.txt");
    for f in [
        "001_534f8ade4f14ded0.txt",
        "002_54456295ff58628f.txt",
        "003_3af99dfced1773ad.txt",
    ] {
        assert_eq!(now_in(f), a, "{f} is not with 000");
    }
    assert_ne!(
        now_in("004_9e1bf06b7e740873.txt"),
        a,
        "the 2015 article joined the 2020 event"
    );
    let event = summaries.iter().find(|s| s.id == a).unwrap();
    let langs: Vec<&str> = event.languages.iter().map(|l| l.as_str()).collect();
    assert_eq!(langs, ["ar", "en", "fr"]);
    assert!(pipeline.shutdown());
}

fn pipeline_article(pipeline: &Pipeline, external_id: &str) -> concord_core::ArticleId {
    pipeline
        .store()
        .connect_read_only()
        .unwrap()
        .article_by_external_id(external_id)
        .unwrap()
        .unwrap()
        .id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resubmitting_is_idempotent_and_new_content_is_reclustered() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let pipeline = Pipeline::start(&config, Model::load(&config.model).unwrap()).unwrap();
    let seed = &seeds()[1];
    let first = pipeline
        .submit_waiting(submission(seed), true)
        .await
        .unwrap();
    cluster_of(first.clustered).await;
    let again = pipeline
        .submit_waiting(submission(seed), true)
        .await
        .unwrap();
    assert_eq!(
        again.outcome,
        UpsertOutcome::Unchanged(first.id, ArticleState::Clustered)
    );
    assert!(again.clustered.is_none());
    let mut changed = submission(seed);
    changed.title.push_str(" (mis à jour)");
    let updated = pipeline.submit_waiting(changed, true).await.unwrap();
    assert_eq!(updated.outcome, UpsertOutcome::Updated(first.id));
    cluster_of(updated.clustered).await;
    let summaries = pipeline.summaries().await.unwrap();
    let total: usize = summaries.iter().map(|s| s.size).sum();
    assert_eq!(total, 1, "the update must not leave a second copy behind");
    assert!(pipeline.shutdown());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_text_is_refused_before_anything_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let pipeline = Pipeline::start(&config, Model::load(&config.model).unwrap()).unwrap();
    let mut s = submission(&seeds()[0]);
    s.title = "  ".into();
    s.body = "!!! ... ---".into();
    let err = pipeline.submit(s, false).await.unwrap_err();
    assert!(matches!(err, IngestError::Text(_)), "{err:?}");
    let db = pipeline.store().connect_read_only().unwrap();
    assert!(db.article_counts().unwrap().is_empty());
    assert!(pipeline.shutdown());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_articles_are_clustered_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let seeds = seeds();
    {
        // Store the articles as ingest would, without letting the workers run:
        // the state a crash right after the acknowledgement leaves behind.
        let store =
            concord_store::Store::open(dir.path(), concord_store::Synchronous::Normal).unwrap();
        let mut db = store.connect().unwrap();
        for s in &seeds {
            db.upsert_article(
                &concord_store::NewArticle {
                    external_id: s.file.clone(),
                    source: None,
                    url: None,
                    lang: Some(s.lang),
                    lang_source: "given",
                    model_supports_lang: true,
                    published_at: s.published,
                    title: s.title.clone(),
                    content_hash: concord_store::content_hash(
                        &s.title,
                        &s.body,
                        None,
                        s.published,
                        Some(s.lang),
                    ),
                    prepared_text: format!("{}\n{}", s.title, s.body),
                    truncated: false,
                },
                Timestamp::now(),
            )
            .unwrap();
        }
    }
    let pipeline = Pipeline::start(&config, Model::load(&config.model).unwrap()).unwrap();
    assert_eq!(pipeline.recover().await.unwrap(), seeds.len());
    pipeline.flush().await.unwrap();
    let db = pipeline.store().connect_read_only().unwrap();
    assert_eq!(
        db.article_counts().unwrap(),
        vec![(ArticleState::Clustered, seeds.len() as u64)]
    );
    let summaries = pipeline.summaries().await.unwrap();
    assert_eq!(summaries.iter().map(|s| s.size).sum::<usize>(), seeds.len());
    assert_eq!(pipeline.indexed_articles(), Some(seeds.len()));
    drop(db);
    assert!(pipeline.shutdown());
    // And the index dump written at shutdown is picked up by the next start.
    let again = Pipeline::start(&config, Model::load(&config.model).unwrap()).unwrap();
    assert_eq!(again.recover().await.unwrap(), 0);
    assert_eq!(again.indexed_articles(), Some(seeds.len()));
    assert!(again.shutdown());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_handles_being_let_go_and_then_dumps() {
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let pipeline = Pipeline::start(&config, Model::load(&config.model).unwrap()).unwrap();

    // A handle that is never let go: shutdown gives up and says so.
    let kept = pipeline.clone();
    let refused =
        tokio::task::spawn_blocking(move || pipeline.shutdown_within(Duration::from_millis(20)))
            .await
            .unwrap();
    assert!(!refused);

    // A handle let go while shutdown waits (a server's connection task finishing
    // just after the server stopped): the workers drain and the index is dumped.
    let pipeline = kept;
    let straggler = pipeline.clone();
    let letting_go = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        drop(straggler);
    });
    let stopped =
        tokio::task::spawn_blocking(move || pipeline.shutdown_within(Duration::from_secs(60)))
            .await
            .unwrap();
    letting_go.join().unwrap();
    assert!(stopped);
    assert!(dir.path().join("index").join("CURRENT").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_running_restores_the_same_clusters() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(&dir.path().join("live"));
    let pipeline = Pipeline::start(&config, Model::load(&config.model).unwrap()).unwrap();
    for s in &seeds() {
        pipeline.submit(submission(s), false).await.unwrap();
    }
    pipeline.flush().await.unwrap();
    let before = pipeline.summaries().await.unwrap();
    // Online: the pipeline keeps running while the copy is taken.
    let backup = dir.path().join("backup");
    pipeline.store().backup_to(&backup).unwrap();
    assert!(pipeline.shutdown());

    // Restore = start on the copy: no index dump in it, so the index is rebuilt from the store.
    let restored_config = self::config(&backup);
    let restored = Pipeline::start(
        &restored_config,
        Model::load(&restored_config.model).unwrap(),
    )
    .unwrap();
    assert_eq!(
        restored.recover().await.unwrap(),
        0,
        "nothing left unclustered"
    );
    assert_eq!(restored.summaries().await.unwrap(), before);
    assert_eq!(restored.indexed_articles(), Some(seeds().len()));
    assert!(restored.shutdown());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_is_answered_before_the_ingest_backlog_is_clustered() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let pipeline = Pipeline::start(&config, Model::load(&config.model).unwrap()).unwrap();
    let seed = &seeds()[0];
    let start: Timestamp = "2020-09-08T00:00:00Z".parse().unwrap();
    let mut pending = Vec::new();
    // Enough that a backlog builds however the two cores are shared between submitting
    // (text preparation, the store's write) and the model: ~10-25% of them pending at the end.
    const N: usize = 600;
    for i in 0..N {
        let mut s = submission(seed);
        s.external_id = format!("backlog-{i}");
        // Full article bodies: the model is the bottleneck, so a backlog builds.
        s.title = format!("{} ({i})", s.title);
        s.published_at = start + jiff::SignedDuration::from_secs(60 * i as i64);
        let submitted = pipeline.submit_waiting(s, true).await.unwrap();
        pending.push(submitted.clustered.expect("new article"));
    }
    let before = pending.iter().filter(|rx| !rx.is_empty()).count();
    assert!(
        before + 40 <= N,
        "no backlog to overtake: {before} of {N} already clustered"
    );
    let hits = pipeline
        .search_text("data security initiative", Some(Lang::EN), 5)
        .await
        .unwrap();
    // In arrival order the search would wait for the whole backlog to be
    // embedded and clustered; on the query lanes it overtakes most of it.
    let after = pending.iter().filter(|rx| !rx.is_empty()).count();
    assert!(
        after - before < (N - before) / 2,
        "{} of a backlog of {} were clustered before the search answered",
        after - before,
        N - before
    );
    assert!(hits.len() <= 5);
    for rx in pending {
        rx.await.unwrap().unwrap();
    }
    assert!(pipeline.shutdown());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outlet_name_in_titles_is_learned_and_left_out_of_what_the_model_reads() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    assert_eq!(
        config.model.title_affix_min, 3,
        "the default learns after 3 titles"
    );
    let titles = [
        "Japan wins its first judo gold in Tokyo - Diário Exemplo",
        "Heavy rain delays the rowing heats again - Diário Exemplo",
        "Brazil takes silver in street skateboarding - Diário Exemplo",
        "Record crowd watches the marathon finish - Diário Exemplo",
    ];
    let submit = |pipeline: &Pipeline, i: usize, title: &str| {
        let mut s = submission(&seeds()[0]);
        s.external_id = format!("outlet-{i}");
        s.title = title.to_owned();
        s.body = String::new();
        s.lang = Some(Lang::parse("en").unwrap());
        let pipeline = pipeline.clone();
        async move { pipeline.submit_waiting(s, false).await.unwrap() }
    };
    let prepared = |pipeline: &Pipeline, i: usize| {
        let db = pipeline.store().connect_read_only().unwrap();
        let id = db
            .article_by_external_id(&format!("outlet-{i}"))
            .unwrap()
            .unwrap()
            .id;
        db.article(id).unwrap().unwrap().prepared_text
    };
    let pipeline = Pipeline::start(&config, Model::load(&config.model).unwrap()).unwrap();
    for (i, t) in titles.iter().take(3).enumerate() {
        submit(&pipeline, i, t).await;
    }
    // Seen twice before, the suffix was still read; the third sighting makes it the outlet's.
    assert_eq!(prepared(&pipeline, 1), titles[1]);
    assert_eq!(
        prepared(&pipeline, 2),
        "Brazil takes silver in street skateboarding"
    );
    pipeline.flush().await.unwrap();
    assert!(pipeline.shutdown());
    // A restart learns again from the stored titles, which keep the outlet's name.
    let again = Pipeline::start(&config, Model::load(&config.model).unwrap()).unwrap();
    submit(&again, 3, titles[3]).await;
    assert_eq!(
        prepared(&again, 3),
        "Record crowd watches the marathon finish"
    );
    let db = again.store().connect_read_only().unwrap();
    let id = db.article_by_external_id("outlet-3").unwrap().unwrap().id;
    assert_eq!(db.article(id).unwrap().unwrap().title, titles[3]);
    drop(db);
    again.flush().await.unwrap();
    assert!(again.shutdown());
}
