//! The five real articles in `shared/data/seeds`, page furniture included. They are read
//! in place, never copied into the repository.

use std::path::{Path, PathBuf};

use concord_core::Lang;
use concord_text::{
    ArticleInput, LangSource, PreparedText, TokenBudget, WhitespaceBudget, prepare,
};

/// The model languages of `config/default.toml`.
const SUPPORTED: &[&str] = &[
    "ar", "de", "en", "es", "fr", "it", "ja", "ko", "nl", "pl", "pt", "ru", "th", "tr", "zh",
];

const ROOMY: WhitespaceBudget = WhitespaceBudget {
    max_tokens: 100_000,
};

fn seeds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/seeds")
}

fn supported() -> Vec<Lang> {
    SUPPORTED.iter().map(|c| Lang::parse(c).unwrap()).collect()
}

fn raw(prefix: &str) -> String {
    let dir = seeds_dir();
    let entry = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(prefix) && name.ends_with(".txt")
        })
        .unwrap_or_else(|| panic!("no seed {prefix}_*.txt in {}", dir.display()));
    std::fs::read_to_string(entry).unwrap()
}

/// Title is the first non-empty line, the rest is the body, as the ingest CLI splits it.
fn split(raw: &str) -> (&str, &str) {
    let raw = raw.trim_start();
    raw.split_once('\n')
        .map_or((raw.trim(), ""), |(t, b)| (t.trim(), b))
}

fn prepared(prefix: &str) -> PreparedText {
    let raw = raw(prefix);
    let (title, body) = split(&raw);
    prepare(
        &ArticleInput {
            title,
            body,
            lang: None,
        },
        &supported(),
        &ROOMY,
    )
    .unwrap()
}

fn assert_absent(text: &str, needles: &[&str]) {
    for needle in needles {
        assert!(!text.contains(needle), "{needle:?} is still in:\n{text}");
    }
}

fn assert_detected(p: &PreparedText, want: &str) {
    assert_eq!(p.lang.map(Lang::as_str), Some(want), "{p:?}");
    assert_eq!(p.lang_source, LangSource::Detected);
    assert!(p.lang_confidence.is_some_and(|c| c > 0.9), "{p:?}");
    assert!(p.model_supports_lang);
}

#[test]
fn the_raw_seeds_do_contain_the_furniture_the_other_tests_expect_gone() {
    // Guards the tests below against passing because a seed changed.
    assert!(raw("000").matches("[Image source=").count() == 2);
    assert!(raw("000").contains("View original image"));
    assert!(raw("003").contains("Partagez cet article sur :"));
    assert!(raw("004").contains("Getty Images"));
    assert_eq!(
        raw("002")
            .matches("تشمل المبادرة الصينية ثماني محاور رئيسية")
            .count(),
        2
    );
}

#[test]
fn seed_000_english_translation_loses_image_credits_and_footer() {
    let p = prepared("000");
    assert!(
        p.text.starts_with(
            "WSJ, Citing Sources\nData Security Global Initiative Expected to Be Announced\n\
             Anticipated Response to US Clean Network Program\n\
             [Asia Economy New York=Correspondent Baek Jong-min] The Wall Street Journal (WSJ) \
             reported on the 7th (local time) that China plans"
        ),
        "{}",
        p.text
    );
    assert_absent(
        &p.text,
        &[
            "[Image source=",
            "View original image",
            "All rights reserved",
            "AI translation",
            "Briefing",
        ],
    );
    assert!(p.text.ends_with("used by the US and others."), "{}", p.text);
    // Two image credits, the image link, the translation note, copyright, the next section.
    assert_eq!(p.removed_furniture_lines, 6);
    assert_detected(&p, "en");
}

#[test]
fn seed_001_french_article_without_furniture_is_kept_whole() {
    let p = prepared("001");
    assert!(p.text.starts_with(
        "La Chine souhaite établir des normes mondiales pour le numérique\n\
         La Chine lance une initiative visant à définir des règles mondiales de sécurité des données."
    ));
    assert_eq!(p.removed_furniture_lines, 0);
    assert_eq!(p.text.lines().count(), 9);
    assert_detected(&p, "fr");
}

#[test]
fn seed_002_arabic_repeated_block_appears_once() {
    let p = prepared("002");
    for paragraph_start in [
        "تشمل المبادرة الصينية ثماني محاور رئيسية",
        "وأشار وانغ إلى أنه على الرغم من اختلاف",
        "وتأتي المبادرة في ظل الضغوط الأمريكية",
        "وكانت العديد من الشركات الصينية العالمية",
    ] {
        assert_eq!(
            p.text.matches(paragraph_start).count(),
            1,
            "{paragraph_start}"
        );
    }
    assert!(p.text.starts_with(
        "الحكومة الصينية تطلق مبادرة أمن البيانات لتعزيز التعاون الدولي\n\
         هدى الخطيب أعلن وانغ يي، عضو مجلس الدولة ووزير الخارجية الصينية"
    ));
    assert_eq!(p.removed_furniture_lines, 4);
    assert_eq!(p.text.lines().count(), 6);
    assert_detected(&p, "ar");
}

#[test]
fn seed_003_xinhua_page_loses_header_metadata_and_comment_form() {
    let p = prepared("003");
    // The first line of the file is the page's update time, not the title.
    assert!(
        p.text.starts_with(
            "La Chine propose des règles universellement acceptées sur la sécurité des données\n\
             La Chine appelle les pays du monde entier à élaborer ensemble des règles"
        ),
        "{}",
        p.text
    );
    assert_absent(
        &p.text,
        &[
            "Dernière mise à jour",
            "Page d'accueil",
            "Xinhua |",
            "Rédacteurs",
            "Partagez",
            "Votre pseudo",
            "Conseils de la rédaction",
        ],
    );
    assert!(p.text.ends_with("a conclu M. Wang."), "{}", p.text);
    // Update time (the file's first line), breadcrumb, source line, editor credit, share
    // label, comment-form field, bullet, next section.
    assert_eq!(p.removed_furniture_lines, 8);
    assert_detected(&p, "fr");
}

#[test]
fn seed_004_korea_portal_loses_byline_caption_and_footer() {
    let p = prepared("004");
    assert!(p.text.starts_with(
        "China Wants U.S. Tech Companies To Pledge Compliance With Their Security Standards\n\
         China, in their letter to certain U.S. tech firms, called for a pledge of compliance"
    ));
    assert_absent(
        &p.text,
        &[
            "Czarelli",
            "Getty Images",
            "©",
            "Korea Portal",
            "Don't Miss",
        ],
    );
    assert!(
        p.text.ends_with("increased so dramatically.\""),
        "{}",
        p.text
    );
    assert_eq!(p.removed_furniture_lines, 4);
    assert_detected(&p, "en");
}

#[test]
fn seeds_cut_to_a_small_budget_are_flagged_and_fit() {
    let budget = WhitespaceBudget { max_tokens: 64 };
    for prefix in ["000", "001", "002", "003", "004"] {
        let raw = raw(prefix);
        let (title, body) = split(&raw);
        let article = ArticleInput {
            title,
            body,
            lang: None,
        };
        let full = prepare(&article, &supported(), &ROOMY).unwrap();
        let cut = prepare(&article, &supported(), &budget).unwrap();
        assert!(cut.truncated, "{prefix}");
        assert!(!full.truncated, "{prefix}");
        assert_eq!(cut.tokens, 64, "{prefix}");
        assert_eq!(budget.count(&cut.text), cut.tokens);
        assert!(full.text.starts_with(&cut.text), "{prefix}");
        assert_eq!(cut.lang, full.lang, "{prefix}");
    }
}

#[test]
fn given_language_is_kept_for_seeds() {
    let raw = raw("002");
    let (title, body) = split(&raw);
    let article = ArticleInput {
        title,
        body,
        lang: Some(Lang::parse("ara").unwrap()),
    };
    let p = prepare(&article, &supported(), &ROOMY).unwrap();
    assert_eq!(p.lang, Some(Lang::AR));
    assert_eq!(p.lang_source, LangSource::Given);
    assert_eq!(p.lang_confidence, None);
}
