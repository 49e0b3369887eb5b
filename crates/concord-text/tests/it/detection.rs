//! Language detection on small multilingual fixtures written for these tests.

use concord_core::Lang;
use concord_text::{ArticleInput, LangSource, WhitespaceBudget, prepare};

const ROOMY: WhitespaceBudget = WhitespaceBudget { max_tokens: 10_000 };

/// A headline and one or two sentences of body per language.
const ARTICLES: &[(&str, &str, &str)] = &[
    (
        "en",
        "China proposes global rules on data security",
        "The foreign minister said the initiative would be presented to other governments. \
         Officials expect several countries to support the proposal in the coming weeks.",
    ),
    (
        "fr",
        "La Chine propose des règles mondiales sur les données",
        "Le ministre des Affaires étrangères a déclaré que l'initiative serait présentée aux \
         autres gouvernements. Plusieurs pays devraient soutenir la proposition.",
    ),
    (
        "ar",
        "الصين تقترح قواعد عالمية لأمن البيانات",
        "قال وزير الخارجية إن المبادرة ستعرض على الحكومات الأخرى خلال الأسابيع المقبلة.",
    ),
    (
        "ko",
        "중국, 데이터 안보 국제 규칙 제안",
        "외교부 장관은 이 구상을 다른 나라 정부들에 제시할 것이라고 말했다.",
    ),
    (
        "zh",
        "中国提出全球数据安全倡议",
        "外交部长表示，该倡议将提交给其他国家政府，预计多个国家将支持这一提议。",
    ),
    (
        "ru",
        "Китай предложил глобальные правила безопасности данных",
        "Министр иностранных дел заявил, что инициатива будет представлена правительствам \
         других стран в ближайшие недели.",
    ),
    (
        "es",
        "China propone normas mundiales sobre seguridad de datos",
        "El ministro de Asuntos Exteriores dijo que la iniciativa se presentará a otros \
         gobiernos. Varios países podrían apoyar la propuesta en las próximas semanas.",
    ),
    (
        "pt",
        "China propõe regras globais sobre segurança de dados",
        "O ministro das Relações Exteriores disse que a iniciativa será apresentada a outros \
         governos. Vários países devem apoiar a proposta nas próximas semanas.",
    ),
    (
        "de",
        "China schlägt weltweite Regeln für Datensicherheit vor",
        "Der Außenminister sagte, die Initiative werde anderen Regierungen vorgelegt. Mehrere \
         Länder dürften den Vorschlag in den kommenden Wochen unterstützen.",
    ),
];

#[test]
fn each_fixture_language_is_detected() {
    for (want, title, body) in ARTICLES {
        let p = prepare(
            &ArticleInput {
                title,
                body,
                lang: None,
            },
            &[],
            &ROOMY,
        )
        .unwrap();
        assert_eq!(p.lang.map(Lang::as_str), Some(*want), "{title}: {p:?}");
        assert_eq!(p.lang_source, LangSource::Detected, "{title}");
    }
}

#[test]
fn headlines_alone_are_detected_right_or_left_undetermined_never_wrong() {
    let mut detected = 0;
    for (want, title, _) in ARTICLES {
        let p = prepare(
            &ArticleInput {
                title,
                body: "",
                lang: None,
            },
            &[],
            &ROOMY,
        )
        .unwrap();
        match p.lang {
            Some(lang) => {
                assert_eq!(lang.as_str(), *want, "{title}: {p:?}");
                detected += 1;
            }
            None => assert_eq!(p.lang_source, LangSource::Undetermined),
        }
    }
    // Unique scripts (Hangul, Han) and Arabic are certain even for a headline.
    assert!(detected >= 3, "only {detected} headlines detected");
}

#[test]
fn model_support_follows_the_given_list() {
    let (_, title, body) = ARTICLES[3];
    let article = ArticleInput {
        title,
        body,
        lang: None,
    };
    let ko = prepare(&article, &[Lang::KO, Lang::EN], &ROOMY).unwrap();
    assert!(ko.model_supports_lang);
    let not = prepare(&article, &[Lang::EN], &ROOMY).unwrap();
    assert_eq!(not.lang, Some(Lang::KO));
    assert!(!not.model_supports_lang);
}

#[test]
fn furniture_in_several_languages_is_removed_from_real_looking_bodies() {
    let body = "Das Ministerium kündigte am Dienstag neue Regeln für den Datenschutz an.\n\
                Artikel teilen\n\
                Foto: dpa\n\
                Lesen Sie auch: Neue Regeln in Brüssel\n\
                Alle Rechte vorbehalten.\n\
                Die Regeln sollen im kommenden Jahr in Kraft treten.";
    let p = prepare(
        &ArticleInput {
            title: "Neue Regeln für Daten",
            body,
            lang: None,
        },
        &[],
        &ROOMY,
    )
    .unwrap();
    assert_eq!(
        p.text,
        "Neue Regeln für Daten\n\
         Das Ministerium kündigte am Dienstag neue Regeln für den Datenschutz an.\n\
         Die Regeln sollen im kommenden Jahr in Kraft treten."
    );
    assert_eq!(p.removed_furniture_lines, 4);
    assert_eq!(p.lang, Some(Lang::DE));
}

#[test]
fn sentences_about_shares_are_kept() {
    let body = "China's share of exports rose\n\
                Share prices fell sharply on Monday.\n\
                The firms share data with regulators, the report said.";
    let p = prepare(
        &ArticleInput {
            title: "Trade figures",
            body,
            lang: None,
        },
        &[],
        &ROOMY,
    )
    .unwrap();
    assert_eq!(p.removed_furniture_lines, 0);
    assert_eq!(p.text.lines().count(), 4);
}
