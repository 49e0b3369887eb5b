use concord_core::config::EmbedConfig;
use concord_embed::{EmbedError, EmbedHandle, EmbedWorker, Model};

use crate::config;

/// A worker on the real model, with the default embed settings as `tune` leaves them.
fn spawn_worker(tune: impl FnOnce(&mut EmbedConfig)) -> (EmbedWorker, EmbedHandle) {
    let config = config();
    let model = Model::load(&config.model).unwrap();
    let mut embed_config = config.embed.clone();
    tune(&mut embed_config);
    EmbedWorker::spawn(model, &embed_config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_batches_queued_texts_and_answers_each_caller() {
    let (worker, handle) = spawn_worker(|c| {
        c.max_batch = 8;
        c.max_wait_ms = 50;
    });

    let texts = ["un", "deux", "trois", "quatre", "cinq", "six"];
    let receivers: Vec<_> = texts
        .iter()
        .map(|t| handle.try_submit((*t).to_owned()).unwrap())
        .collect();
    let mut vectors = Vec::new();
    for rx in receivers {
        vectors.push(rx.await.unwrap().unwrap().vector);
    }
    assert_eq!(vectors.len(), texts.len());
    // Each caller got its own text's vector, not a neighbour's.
    let direct = handle.embed("trois".to_owned()).await.unwrap().vector;
    assert!(direct.cosine(&vectors[2]) > 0.9999);
    assert!(direct.cosine(&vectors[0]) < 0.999);
    let stats = handle.stats();
    let batches = stats.batches.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        batches < 7,
        "six queued texts took {batches} model calls: no batching"
    );

    drop(handle);
    worker.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_is_refused_not_grown() {
    let (worker, handle) = spawn_worker(|c| {
        c.queue_capacity = 2;
        c.max_batch = 1;
    });
    let long = "Les ministres ont discuté de sécurité des données pendant des heures. ".repeat(40);
    let mut accepted = Vec::new();
    let mut refused = 0;
    for _ in 0..200 {
        match handle.try_submit(long.clone()) {
            Ok(rx) => accepted.push(rx),
            Err(EmbedError::QueueFull) => refused += 1,
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert!(refused > 0, "a queue of 2 accepted 200 texts");
    assert!(handle.queue_depth() <= 2);
    for rx in accepted {
        assert!(rx.await.unwrap().is_ok());
    }
    drop(handle);
    worker.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_overtakes_the_ingest_backlog() {
    let (worker, handle) = spawn_worker(|c| {
        c.queue_capacity = 256;
        c.max_batch = 4;
    });
    let long = "Les ministres ont discuté de sécurité des données pendant des heures. ".repeat(10);
    let backlog: Vec<_> = (0..200)
        .map(|i| handle.try_submit(format!("{i} {long}")).unwrap())
        .collect();
    let query = handle
        .try_submit_query("data security initiative".to_owned())
        .unwrap();
    let vector = query.await.unwrap().unwrap().vector;
    assert_eq!(vector.dim(), 512);
    // In FIFO order the query would come after all 200; served first, it
    // comes back while most of the backlog still waits (batches of 4).
    let done = backlog.iter().filter(|rx| !rx.is_empty()).count();
    assert!(
        done < 100,
        "{done} of 200 ingest texts were embedded before the query"
    );
    for rx in backlog {
        assert!(rx.await.unwrap().is_ok());
    }
    drop(handle);
    worker.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_query_lane_is_refused_and_ingest_keeps_its_own_room() {
    let (worker, handle) = spawn_worker(|c| {
        c.query_queue_capacity = 1;
        c.max_batch = 1;
    });
    let long = "Les ministres ont discuté de sécurité des données pendant des heures. ".repeat(40);
    let mut accepted = Vec::new();
    let mut refused = 0;
    for _ in 0..50 {
        match handle.try_submit_query(long.clone()) {
            Ok(rx) => accepted.push(rx),
            Err(EmbedError::QueueFull) => refused += 1,
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert!(refused > 0, "a query lane of 1 accepted 50 texts");
    // The ingest queue is a separate budget.
    let ingest = handle.try_submit("ingest".to_owned()).unwrap();
    assert!(ingest.await.unwrap().is_ok());
    for rx in accepted {
        assert!(rx.await.unwrap().is_ok());
    }
    drop(handle);
    worker.join();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_texts_are_batched_by_size_short_ones_by_count() {
    let (worker, handle) = spawn_worker(|c| {
        c.max_batch = 32;
        c.max_batch_chars = 1000;
        c.max_wait_ms = 50;
    });
    let batches = || {
        handle
            .stats()
            .batches
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    // Six texts of ~700 bytes: no two fit in 1000 bytes, so six model calls.
    let long = "Les ministres ont discuté de sécurité des données. ".repeat(14);
    let receivers: Vec<_> = (0..6)
        .map(|i| handle.try_submit(format!("{i} {long}")).unwrap())
        .collect();
    for rx in receivers {
        assert!(rx.await.unwrap().is_ok());
    }
    assert_eq!(batches(), 6);
    // Twenty short ones fit one call (the 50 ms wait lets them gather).
    let receivers: Vec<_> = (0..20)
        .map(|i| handle.try_submit(format!("titre {i}")).unwrap())
        .collect();
    for rx in receivers {
        assert!(rx.await.unwrap().is_ok());
    }
    assert!(
        batches() <= 8,
        "{} model calls for 20 short texts",
        batches() - 6
    );
    drop(handle);
    worker.join();
}
