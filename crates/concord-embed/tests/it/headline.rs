//! The headline model (`[headline_model]`, multilingual-e5-small) on the real files.

use std::sync::{Mutex, OnceLock};

use concord_core::UnitVector;
use concord_embed::{EmbedError, EmbedWorker, Encoders, HeadlineModel};

use crate::config;

fn model() -> &'static Mutex<HeadlineModel> {
    static MODEL: OnceLock<Mutex<HeadlineModel>> = OnceLock::new();
    MODEL.get_or_init(|| {
        let config = config();
        let model = HeadlineModel::load(&config.model, &config.headline_model)
            .expect("headline model loads")
            .expect("the headline model is on by default");
        Mutex::new(model)
    })
}

fn embed(titles: &[&str]) -> Vec<UnitVector> {
    model()
        .lock()
        .expect("model lock")
        .embed(titles)
        .expect("embed")
}

#[test]
fn titles_get_unit_384_dimensional_vectors_whatever_the_batch() {
    let titles = [
        "China launches a global initiative on data security",
        "La Chine lance une initiative mondiale sur la sécurité des données",
        "중국, 데이터 안보 글로벌 이니셔티브 발표",
        "",
    ];
    let together = embed(&titles);
    assert_eq!(together.len(), titles.len());
    for (title, v) in titles.iter().zip(&together) {
        assert_eq!(v.dim(), 384);
        let alone = &embed(&[title])[0];
        // Padding to the batch's longest title changes nothing.
        assert!(v.cosine(alone) > 0.9999, "{title:?}: {}", v.cosine(alone));
    }
}

#[test]
fn one_event_across_languages_is_nearer_than_another_event_on_the_same_topic() {
    let v = embed(&[
        "China launches a global initiative on data security",
        "La Chine lance une initiative mondiale sur la sécurité des données",
        "الصين تطلق مبادرة عالمية بشأن أمن البيانات",
        "China asks US tech firms to pledge compliance with its security standards",
    ]);
    let (en, fr, ar, other) = (&v[0], &v[1], &v[2], &v[3]);
    assert!(
        en.cosine(fr) > en.cosine(other),
        "{} {}",
        en.cosine(fr),
        en.cosine(other)
    );
    assert!(
        en.cosine(ar) > ar.cosine(other),
        "{} {}",
        en.cosine(ar),
        ar.cosine(other)
    );
}

#[test]
fn the_prefix_is_read_before_the_title() {
    let config = config();
    let mut bare = config.headline_model.clone();
    bare.prefix = String::new();
    let mut without = HeadlineModel::load(&config.model, &bare).unwrap().unwrap();
    let title = "Wang Yi announces the Global Initiative on Data Security";
    let prefixed = &embed(&[title])[0];
    let plain = &without.embed(&[title]).unwrap()[0];
    let by_hand = &without.embed(&[format!("query: {title}")]).unwrap()[0];
    assert!(prefixed.cosine(by_hand) > 0.9999);
    assert!(
        prefixed.cosine(plain) < 0.999,
        "the prefix changes what is read"
    );
}

#[test]
fn off_in_config_loads_nothing_and_a_missing_folder_names_the_file() {
    let config = config();
    let mut off = config.headline_model.clone();
    off.enabled = false;
    assert!(HeadlineModel::load(&config.model, &off).unwrap().is_none());
    let mut missing = config.headline_model.clone();
    missing.dir = std::env::temp_dir().join("concord-no-such-headline-model");
    match HeadlineModel::load(&config.model, &missing) {
        Err(EmbedError::MissingFile { path }) => assert!(path.starts_with(&missing.dir)),
        other => panic!("expected a missing file, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_embeds_an_articles_title_with_the_headline_model_and_a_query_without() {
    let config = config();
    let models = Encoders::load(&config.model, &config.headline_model).unwrap();
    let (worker, handle) = EmbedWorker::spawn(models, &config.embed).unwrap();
    let title = "China launches a global initiative on data security";
    let article = handle.try_reserve().unwrap().submit(
        format!("{title}\nBeijing, Sept. 8."),
        Some(title.to_owned()),
    );
    let embedding = article.await.unwrap().unwrap();
    assert_eq!(embedding.vector.dim(), 512);
    let headline = embedding.headline.expect("the title's headline vector");
    assert!(headline.cosine(&embed(&[title])[0]) > 0.999);
    let query = handle.try_submit_query(title.to_owned()).unwrap();
    let answer = query.await.unwrap().unwrap();
    assert!(
        answer.headline.is_none(),
        "a query needs no headline vector"
    );
    drop(handle);
    tokio::task::spawn_blocking(move || worker.join())
        .await
        .unwrap();
}
