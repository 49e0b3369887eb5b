use std::sync::{Mutex, OnceLock};

use concord_core::UnitVector;
use concord_embed::{EmbedError, Model, TokenizerBudget};
use concord_text::{ArticleInput, TokenBudget, prepare};

use crate::{config, seeds_dir};

/// One model for the whole test binary: loading it once keeps the suite fast.
fn model() -> &'static Mutex<Model> {
    static MODEL: OnceLock<Mutex<Model>> = OnceLock::new();
    MODEL.get_or_init(|| Mutex::new(Model::load(&config().model).expect("model loads")))
}

fn embed(texts: &[&str]) -> Vec<UnitVector> {
    model()
        .lock()
        .expect("model lock")
        .embed(texts)
        .expect("embed")
}

fn seed_texts() -> Vec<(String, String)> {
    let config = config();
    let budget = TokenizerBudget::load(&config.model.dir, config.model.max_tokens).unwrap();
    let mut files: Vec<_> = std::fs::read_dir(seeds_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 5, "expected five seed articles");
    files
        .iter()
        .map(|path| {
            let raw = std::fs::read_to_string(path).unwrap();
            let (title, body) = raw.trim_start().split_once('\n').unwrap();
            let prepared = prepare(
                &ArticleInput {
                    title: title.trim(),
                    body,
                    lang: None,
                },
                &config.model.languages,
                &budget,
            )
            .unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, prepared.text)
        })
        .collect()
}

#[test]
fn vectors_are_unit_length_and_512_dimensional() {
    let vectors = embed(&[
        "Wang Yi announced a global initiative on data security.",
        "하나",
    ]);
    assert_eq!(vectors.len(), 2);
    for v in &vectors {
        assert_eq!(v.dim(), 512);
        let norm: f32 = v.as_slice().iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-4, "norm {norm}");
    }
    assert_eq!(model().lock().unwrap().dim(), 512);
}

const UNRELATED: &[&str] = &[
    "Heavy rain is expected across the north of England this weekend, with flood warnings in place.",
    "Le club de football a remporté la finale de la coupe après une séance de tirs au but.",
    "وصفة سهلة لتحضير الكعك بالشوكولاتة في المنزل خلال ثلاثين دقيقة.",
    "올해 김장 배추 가격이 작년보다 크게 올랐다고 농민들이 말했다.",
    "The central bank left interest rates unchanged and signalled patience on inflation.",
    "Les vendanges ont commencé tôt cette année dans le Bordelais à cause de la chaleur.",
];

#[test]
fn the_four_2020_seed_articles_are_each_others_nearest_neighbours() {
    let seeds = seed_texts();
    let same_event: Vec<&str> = seeds[..4].iter().map(|(_, t)| t.as_str()).collect();
    let mut texts = same_event.clone();
    texts.extend_from_slice(UNRELATED);
    let vectors = embed(&texts);

    let mut min_same = f32::MAX;
    let mut max_unrelated = f32::MIN;
    for i in 0..4 {
        let mut ranked: Vec<(usize, f32)> = (0..vectors.len())
            .filter(|j| *j != i)
            .map(|j| (j, vectors[i].cosine(&vectors[j])))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        let top3: Vec<usize> = ranked[..3].iter().map(|(j, _)| *j).collect();
        assert!(
            top3.iter().all(|j| *j < 4),
            "{}: nearest neighbours {ranked:?} are not the other 2020 seeds",
            seeds[i].0
        );
        for (j, cos) in ranked {
            if j < 4 {
                min_same = min_same.min(cos);
            } else {
                max_unrelated = max_unrelated.max(cos);
            }
        }
    }
    assert!(
        min_same > max_unrelated + 0.15,
        "same-event cosine {min_same:.3} is not well above unrelated {max_unrelated:.3}"
    );
}

/// One sentence in four languages, and the same languages on other topics.
const TRANSLATIONS: &[&str] = &[
    "The museum will reopen to visitors next month after two years of renovation.",
    "Le musée rouvrira ses portes aux visiteurs le mois prochain après deux ans de rénovation.",
    "سيعيد المتحف فتح أبوابه للزوار الشهر المقبل بعد عامين من التجديد.",
    "박물관은 2년간의 보수 공사를 마치고 다음 달 관람객에게 다시 문을 연다.",
];
const DISTRACTORS: &[&str] = &[
    "The striker scored twice as the home team won the league title.",
    "Le gouvernement a annoncé une hausse du prix de l'électricité en janvier.",
    "ارتفعت أسعار النفط بعد قرار أوبك خفض الإنتاج.",
    "정부는 내년 최저임금을 5% 인상하기로 결정했다.",
];

#[test]
fn a_sentence_finds_its_translations_as_nearest_neighbours() {
    let mut texts = TRANSLATIONS.to_vec();
    texts.extend_from_slice(DISTRACTORS);
    let vectors = embed(&texts);
    for i in 0..TRANSLATIONS.len() {
        let mut ranked: Vec<(usize, f32)> = (0..vectors.len())
            .filter(|j| *j != i)
            .map(|j| (j, vectors[i].cosine(&vectors[j])))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        let top: Vec<usize> = ranked[..TRANSLATIONS.len() - 1]
            .iter()
            .map(|(j, _)| *j)
            .collect();
        assert!(
            top.iter().all(|j| *j < TRANSLATIONS.len()),
            "{:?}: ranking {ranked:?} puts a distractor above a translation",
            TRANSLATIONS[i]
        );
    }
}

#[test]
fn batching_with_longer_texts_does_not_change_a_vector() {
    let short = "Seoul hosts talks on data security.";
    let alone = embed(&[short]).remove(0);
    let seeds = seed_texts();
    let batch = embed(&[seeds[0].1.as_str(), short, seeds[2].1.as_str()]);
    let cos = alone.cosine(&batch[1]);
    assert!(cos > 0.9999, "padding changed the vector: cosine {cos}");
}

#[test]
fn tokenizer_budget_cuts_long_text_to_the_model_budget() {
    let config = config();
    let budget = TokenizerBudget::load(&config.model.dir, 32).unwrap();
    let long =
        "Le ministre des affaires étrangères a présenté une initiative mondiale. ".repeat(20);
    assert!(budget.count(&long) > 32);
    let cut = budget
        .cut_point(&long)
        .expect("text over budget has a cut point");
    assert!(
        budget.count(&long[..cut]) <= 32,
        "cut text has {} tokens",
        budget.count(&long[..cut])
    );
    assert!(
        budget.count(&long[..cut]) >= 28,
        "cut much earlier than needed"
    );
    assert_eq!(budget.cut_point("court"), None);
}

#[test]
fn missing_model_files_name_the_install_command() {
    let mut config = config();
    let guard = tempfile::tempdir().unwrap();
    let empty = guard.path().to_path_buf();
    config.model.dir = empty.clone();
    let err = Model::load(&config.model).expect_err("an empty model folder cannot load");
    assert!(
        matches!(err, EmbedError::MissingFile { ref path } if path.starts_with(&empty)),
        "{err:?}"
    );
    assert!(err.to_string().contains("models/install.sh"), "{err}");

    let mut config = crate::config();
    config.model.ort_dylib = empty.join("libonnxruntime.so");
    let err = Model::load(&config.model).expect_err("a missing runtime cannot load");
    assert!(matches!(err, EmbedError::MissingFile { .. }), "{err:?}");
    assert!(err.to_string().contains("libonnxruntime.so"), "{err}");
}

#[test]
fn corrupt_model_file_is_a_load_error() {
    let config0 = config();
    let guard = tempfile::tempdir().unwrap();
    let dir = guard.path().to_path_buf();
    for name in [
        "tokenizer.json",
        "config.json",
        "special_tokens_map.json",
        "tokenizer_config.json",
    ] {
        std::fs::copy(config0.model.dir.join(name), dir.join(name)).unwrap();
    }
    std::fs::write(dir.join("model.onnx"), b"not an onnx graph").unwrap();
    let mut config = config0;
    config.model.dir = dir;
    let err = Model::load(&config.model).expect_err("garbage onnx cannot load");
    assert!(matches!(err, EmbedError::Load { .. }), "{err:?}");
    assert!(err.to_string().contains("models/install.sh"), "{err}");
}
