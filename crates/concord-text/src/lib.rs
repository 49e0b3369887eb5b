//! Article text preparation: turns an article as received (title, body, maybe a language)
//! into the one text an embedding model reads, and says what was done to it.
//!
//! Owns: Unicode and whitespace normalization, page-furniture removal (share buttons,
//! image credits, copyright lines, repeated blocks), title deduplication, language
//! detection and the rule for trusting it, learned publisher affixes in headlines
//! ([`TitleAffixes`], state the caller holds), and truncation to a [`TokenBudget`] that is
//! always reported ([`PreparedText::truncated`]).
//! Must not: know about models, tokenizers, storage or HTTP. A model's tokenizer and its
//! language list come in from the caller, through [`TokenBudget`] and a `&[Lang]`.
//! Pure: no I/O, no global state, no panics on any input.

mod affixes;
mod budget;
mod detect;
mod furniture;
mod normalize;

use concord_core::Lang;
use serde::Serialize;

pub use affixes::TitleAffixes;
pub use budget::{TokenBudget, WhitespaceBudget};

/// An article as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArticleInput<'a> {
    pub title: &'a str,
    pub body: &'a str,
    /// The language the caller vouches for; detected when `None`.
    pub lang: Option<Lang>,
}

/// Where [`PreparedText::lang`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LangSource {
    /// The caller gave it; no detection ran.
    Given,
    /// Detected, and the detection rule accepted it.
    Detected,
    /// Detection found no language it could trust: `lang` is `None`.
    Undetermined,
}

impl LangSource {
    /// The serialized name back (`given`, `detected`, `undetermined`).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "given" => Some(Self::Given),
            "detected" => Some(Self::Detected),
            "undetermined" => Some(Self::Undetermined),
            _ => None,
        }
    }
}

/// The text to embed and what preparation did to get it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PreparedText {
    /// Title, a newline, then the cleaned body lines separated by newlines.
    pub text: String,
    /// True whenever the text was cut to fit the token budget.
    pub truncated: bool,
    pub lang: Option<Lang>,
    pub lang_source: LangSource,
    /// Detector confidence in its best guess, 0 to 1, also when the guess was not
    /// trusted; `None` when the language was given or nothing could be guessed.
    pub lang_confidence: Option<f64>,
    /// `lang` is one of the languages the model was trained on; false when `lang` is `None`.
    pub model_supports_lang: bool,
    /// Non-empty input lines (title included) removed as furniture, duplicates, or the
    /// title repeated as the body's first line.
    pub removed_furniture_lines: usize,
    /// Tokens in `text`, as the budget counts them.
    pub tokens: usize,
}

/// The headline of a prepared text ([`PreparedText::text`]): its first line, the
/// cleaned title (or, where the title was page furniture, the body's first line).
/// What the headline model reads.
pub fn headline(prepared_text: &str) -> &str {
    prepared_text.lines().next().unwrap_or("")
}

/// Why an article gives no text to embed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrepareError {
    #[error("no text left after cleaning: title and body are empty, punctuation or page furniture")]
    EmptyText,
    #[error("a budget of {max_tokens} tokens fits none of the text")]
    NothingFits { max_tokens: usize },
}

/// Prepares one article: normalize, remove furniture, join title and body, detect the
/// language when none is given, cut to `budget`.
///
/// `supported` is the model's language list, for [`PreparedText::model_supports_lang`].
pub fn prepare(
    input: &ArticleInput<'_>,
    supported: &[Lang],
    budget: &dyn TokenBudget,
) -> Result<PreparedText, PrepareError> {
    let raw_title = normalize::one_line(input.title);
    let mut title = furniture::clean_title(&raw_title);
    let body = furniture::clean_body(normalize::lines(input.body), title.as_deref());
    // The title is what the caller says the headline is. Cleaning may judge it page
    // furniture ("Photos: ..." reads like an image credit), but when nothing else is
    // left, keeping it beats refusing a real headline.
    if title.is_none() && body.lines.is_empty() && raw_title.chars().any(char::is_alphabetic) {
        title = Some(raw_title.clone());
    }
    let title_removed = usize::from(title.is_none() && !raw_title.is_empty());

    let mut text = String::new();
    for line in title.iter().chain(&body.lines) {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(line);
    }
    if text.is_empty() {
        return Err(PrepareError::EmptyText);
    }

    let (lang, lang_source, lang_confidence) = match input.lang {
        Some(lang) => (Some(lang), LangSource::Given, None),
        None => {
            let found = detect::detect(&text);
            let source = match found.lang {
                Some(_) => LangSource::Detected,
                None => LangSource::Undetermined,
            };
            (found.lang, source, found.confidence)
        }
    };

    let truncated = budget::fit(&mut text, budget);
    if text.is_empty() {
        return Err(PrepareError::NothingFits {
            max_tokens: budget.max_tokens(),
        });
    }
    Ok(PreparedText {
        tokens: budget.count(&text),
        text,
        truncated,
        lang,
        lang_source,
        lang_confidence,
        model_supports_lang: lang.is_some_and(|l| supported.contains(&l)),
        removed_furniture_lines: body.removed + title_removed,
    })
}

/// [`prepare`] with the model's language list and token budget held together, for a
/// service that prepares many articles for one model.
pub struct Preparer {
    supported: Vec<Lang>,
    budget: Box<dyn TokenBudget + Send + Sync>,
}

impl std::fmt::Debug for Preparer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Preparer")
            .field("supported", &self.supported)
            .field("max_tokens", &self.budget.max_tokens())
            .finish_non_exhaustive()
    }
}

impl Preparer {
    pub fn new(supported: Vec<Lang>, budget: impl TokenBudget + Send + Sync + 'static) -> Self {
        Self {
            supported,
            budget: Box::new(budget),
        }
    }

    pub fn prepare(&self, input: &ArticleInput<'_>) -> Result<PreparedText, PrepareError> {
        prepare(input, &self.supported, &*self.budget)
    }

    pub fn supported(&self) -> &[Lang] {
        &self.supported
    }

    pub fn budget(&self) -> &(dyn TokenBudget + Send + Sync) {
        &*self.budget
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const ROOMY: WhitespaceBudget = WhitespaceBudget { max_tokens: 10_000 };

    #[test]
    fn the_headline_is_the_cleaned_title_or_else_the_first_body_line() {
        let prepared = |title: &str, body: &str| {
            prepare(
                &ArticleInput {
                    title,
                    body,
                    lang: None,
                },
                &[],
                &ROOMY,
            )
            .unwrap()
            .text
        };
        let text = prepared(
            "Wang Yi launches a data security initiative",
            "Beijing, 8 Sept.\nMore.",
        );
        assert_eq!(
            headline(&text),
            "Wang Yi launches a data security initiative"
        );
        let text = prepared(
            "Dernière mise à jour à 09h10 le 14/09",
            "La Chine lance une initiative.",
        );
        assert_eq!(headline(&text), "La Chine lance une initiative.");
        assert_eq!(headline(""), "");
    }

    #[test]
    fn a_headline_that_reads_like_furniture_is_kept_when_nothing_else_is_left() {
        for title in [
            "Photos: US basketball loses to France, 25-game Olympic win streak ends",
            "FOTO: Olimpijske igre so se začele! Na stadion zakorakali tudi slovenski športni",
            "ФОТО: В Токио прошла церемония открытия летних Олимпийских игр",
        ] {
            let p = prepare(&input(title, ""), &[], &ROOMY).unwrap();
            assert!(
                p.text.contains(title.split_once(':').unwrap().1.trim()),
                "{title}: {}",
                p.text
            );
        }
        // Digits alone are still nothing to embed.
        assert!(prepare(&input("0", ""), &[], &ROOMY).is_err());
    }

    fn input<'a>(title: &'a str, body: &'a str) -> ArticleInput<'a> {
        ArticleInput {
            title,
            body,
            lang: None,
        }
    }

    const BODY_EN: &str = "The foreign minister said on Tuesday that the initiative would be \
        presented to other governments at a seminar in Beijing later this week.\n\n\
        Share this article\n\
        View original image\n\
        Officials expect a number of countries to support the proposal.";

    #[test]
    fn title_and_cleaned_body_are_joined_by_newlines() {
        let got = prepare(
            &input("China to unveil data rules", BODY_EN),
            &[Lang::EN],
            &ROOMY,
        )
        .unwrap();
        assert_eq!(
            got.text,
            "China to unveil data rules\n\
             The foreign minister said on Tuesday that the initiative would be presented to \
             other governments at a seminar in Beijing later this week.\n\
             Officials expect a number of countries to support the proposal."
        );
        assert_eq!(got.removed_furniture_lines, 2);
        assert!(!got.truncated);
        assert_eq!(got.tokens, ROOMY.count(&got.text));
    }

    #[test]
    fn detected_language_and_model_support() {
        let got = prepare(
            &input("China to unveil data rules", BODY_EN),
            &[Lang::EN],
            &ROOMY,
        )
        .unwrap();
        assert_eq!(got.lang, Some(Lang::EN));
        assert_eq!(got.lang_source, LangSource::Detected);
        assert!(got.lang_confidence.is_some_and(|c| c > 0.5));
        assert!(got.model_supports_lang);

        let got = prepare(
            &input("China to unveil data rules", BODY_EN),
            &[Lang::FR],
            &ROOMY,
        )
        .unwrap();
        assert_eq!(got.lang, Some(Lang::EN));
        assert!(!got.model_supports_lang);
    }

    #[test]
    fn given_language_wins_and_skips_detection() {
        let article = ArticleInput {
            lang: Some(Lang::DE),
            ..input("China to unveil data rules", BODY_EN)
        };
        let got = prepare(&article, &[Lang::DE], &ROOMY).unwrap();
        assert_eq!(got.lang, Some(Lang::DE));
        assert_eq!(got.lang_source, LangSource::Given);
        assert_eq!(got.lang_confidence, None);
        assert!(got.model_supports_lang);
    }

    #[test]
    fn a_short_title_alone_is_undetermined_and_not_supported() {
        let got = prepare(
            &input("Osaka loses in third round", ""),
            &[Lang::EN],
            &ROOMY,
        )
        .unwrap();
        assert_eq!(got.text, "Osaka loses in third round");
        assert_eq!(got.lang, None);
        assert_eq!(got.lang_source, LangSource::Undetermined);
        assert!(got.lang_confidence.is_some());
        assert!(!got.model_supports_lang);
    }

    #[test]
    fn title_repeated_at_the_start_of_the_body_appears_once() {
        let got = prepare(
            &input(
                "China proposes data rules",
                "China proposes data rules\nWang Yi spoke.",
            ),
            &[],
            &ROOMY,
        )
        .unwrap();
        assert_eq!(got.text, "China proposes data rules\nWang Yi spoke.");
        assert_eq!(got.removed_furniture_lines, 1);
    }

    #[test]
    fn furniture_title_is_dropped_and_counted() {
        let got = prepare(
            &input("View original image", "Wang Yi spoke in Moscow."),
            &[],
            &ROOMY,
        )
        .unwrap();
        assert_eq!(got.text, "Wang Yi spoke in Moscow.");
        assert_eq!(got.removed_furniture_lines, 1);
    }

    #[test]
    fn nothing_left_is_an_error() {
        for (title, body) in [
            ("", ""),
            ("  \n\t", "\0\r\n \u{200B}"),
            ("---", "•\n***\n2020"),
            (
                "",
                "Share this article\n© 2024 Example. All rights reserved.\nhttps://example.com",
            ),
        ] {
            assert_eq!(
                prepare(&input(title, body), &[], &ROOMY),
                Err(PrepareError::EmptyText),
                "{title:?} {body:?}"
            );
        }
    }

    #[test]
    fn over_budget_text_is_cut_and_flagged() {
        let budget = WhitespaceBudget { max_tokens: 8 };
        let got = prepare(&input("China to unveil data rules", BODY_EN), &[], &budget).unwrap();
        assert_eq!(got.text, "China to unveil data rules\nThe foreign minister");
        assert!(got.truncated);
        assert_eq!(got.tokens, 8);
        // Detection still read the whole text.
        assert_eq!(got.lang, Some(Lang::EN));
    }

    #[test]
    fn a_zero_budget_fits_nothing() {
        let got = prepare(
            &input("Title here", ""),
            &[],
            &WhitespaceBudget { max_tokens: 0 },
        );
        assert_eq!(got, Err(PrepareError::NothingFits { max_tokens: 0 }));
    }

    #[test]
    fn preparer_holds_languages_and_budget() {
        let preparer = Preparer::new(vec![Lang::EN], WhitespaceBudget { max_tokens: 5 });
        let got = preparer
            .prepare(&input("China to unveil data rules", BODY_EN))
            .unwrap();
        assert!(got.truncated);
        assert_eq!(got.tokens, 5);
        assert_eq!(preparer.supported(), [Lang::EN]);
        assert_eq!(preparer.budget().max_tokens(), 5);
        assert!(format!("{preparer:?}").contains("max_tokens: 5"));
    }

    #[test]
    fn serializes_with_lowercase_codes_and_sources() {
        let article = ArticleInput {
            lang: Some(Lang::FR),
            ..input(
                "La Chine propose des règles",
                "Share\nWang Yi a parlé à Moscou.",
            )
        };
        let got = prepare(&article, &[Lang::FR], &ROOMY).unwrap();
        insta::assert_json_snapshot!(got, @r#"
        {
          "text": "La Chine propose des règles\nWang Yi a parlé à Moscou.",
          "truncated": false,
          "lang": "fr",
          "lang_source": "given",
          "lang_confidence": null,
          "model_supports_lang": true,
          "removed_furniture_lines": 1,
          "tokens": 11
        }
        "#);
    }

    #[test]
    fn huge_messy_input_is_prepared_within_budget() {
        let mut body = String::new();
        for i in 0..20_000 {
            body.push_str(&format!(
                "Paragraph {i} about data\0 security, 데이터 보안 {i}, البيانات {i}.\r\n\u{200B}Share\n"
            ));
        }
        let budget = WhitespaceBudget { max_tokens: 512 };
        let got = prepare(&input("Data security", &body), &[], &budget).unwrap();
        assert!(got.truncated);
        assert!(got.tokens <= 512);
        assert!(!got.text.contains('\0'));
        assert!(!got.text.contains("\nShare"));
    }

    /// Cuts at a byte offset, like a subword tokenizer that lands inside words and
    /// characters.
    struct ByteBudget(usize);

    impl TokenBudget for ByteBudget {
        fn max_tokens(&self) -> usize {
            self.0
        }
        fn cut_point(&self, text: &str) -> Option<usize> {
            (text.len() > self.0).then_some(self.0)
        }
        fn count(&self, text: &str) -> usize {
            text.len()
        }
    }

    fn messy_text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            any::<char>().prop_map(String::from),
            Just("\0".to_owned()),
            Just("\r\n".to_owned()),
            Just("\n\n".to_owned()),
            Just(" \t ".to_owned()),
            Just("\u{200B}\u{FEFF}\u{AD}".to_owned()),
            "[a-zA-Z]{1,12}",
            "[а-яА-Я]{1,10}",
            "[가-힣]{1,6}",
            "[一-龥]{1,6}",
            "[ء-ي]{1,8}",
            Just("Share this article".to_owned()),
            Just("© 2020 Example. All rights reserved.".to_owned()),
            Just("[Image source=Yonhap]".to_owned()),
            Just("https://example.com/x".to_owned()),
            Just(" | 14.09.2020 | ".to_owned()),
            Just("« cité » >> ".to_owned()),
        ];
        prop::collection::vec(piece, 0..120).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        // Few cases: each one is up to a mebibyte of mixed scripts.
        #![proptest_config(ProptestConfig::with_cases(12))]
        #[test]
        fn huge_mixed_input_never_panics_and_stays_within_the_budget(
            piece in messy_text(),
            repeat in 1usize..20_000,
            max_tokens in 0usize..600,
            bytes in any::<bool>(),
        ) {
            let mut body = piece.repeat(repeat);
            body.truncate(body.floor_char_boundary(1 << 20));
            let title = format!("Seoul 서울 Сеул سيول 首尔 {}", &body[..body.floor_char_boundary(300)]);
            let words = WhitespaceBudget { max_tokens };
            let budget: &dyn TokenBudget = if bytes { &ByteBudget(max_tokens) } else { &words };
            match prepare(&input(&title, &body), &[Lang::KO], budget) {
                Ok(got) => {
                    prop_assert!(got.tokens <= max_tokens);
                    prop_assert_eq!(got.tokens, budget.count(&got.text));
                    prop_assert!(!got.text.contains('\0'));
                }
                Err(e) => prop_assert_eq!(e, PrepareError::NothingFits { max_tokens }),
            }
        }
    }

    proptest! {
        #[test]
        fn never_panics_and_respects_the_whitespace_budget(
            title in messy_text(),
            body in messy_text(),
            max_tokens in 0usize..40,
        ) {
            let full = prepare(&input(&title, &body), &[Lang::EN], &ROOMY);
            let budget = WhitespaceBudget { max_tokens };
            let got = prepare(&input(&title, &body), &[Lang::EN], &budget);
            match (&full, &got) {
                (Err(PrepareError::EmptyText), Err(PrepareError::EmptyText)) => {}
                (Ok(_), Err(PrepareError::NothingFits { max_tokens: 0 })) => {}
                (Ok(full), Ok(got)) => {
                    prop_assert!(got.tokens <= max_tokens);
                    prop_assert_eq!(got.tokens, budget.count(&got.text));
                    prop_assert!(full.text.starts_with(&got.text));
                    prop_assert_eq!(got.truncated, got.text != full.text);
                    prop_assert!(!full.truncated);
                    prop_assert!(!got.text.contains(['\0', '\r', '\u{200B}']), "control left");
                    prop_assert!(!got.text.is_empty());
                    prop_assert_eq!(got.lang, full.lang);
                    prop_assert_eq!(got.model_supports_lang, got.lang == Some(Lang::EN));
                }
                _ => prop_assert!(false, "full {:?} vs budgeted {:?}", full, got),
            }
        }

        #[test]
        fn punctuation_and_symbols_alone_never_panic_or_overflow_the_budget(
            title in r"[\p{P}\p{S}\s\x00]{0,80}",
            body in r"[\p{P}\p{S}\p{Cc}\s]{0,400}",
            max_tokens in 0usize..20,
        ) {
            let budget = WhitespaceBudget { max_tokens };
            match prepare(&input(&title, &body), &[], &budget) {
                Ok(got) => {
                    prop_assert!(!got.text.is_empty());
                    prop_assert!(got.tokens <= max_tokens);
                }
                Err(PrepareError::EmptyText | PrepareError::NothingFits { .. }) => {}
            }
        }

        #[test]
        fn never_panics_on_arbitrary_strings_and_byte_cuts(
            title in any::<String>(),
            body in any::<String>(),
            max_bytes in 0usize..200,
        ) {
            let full = prepare(&input(&title, &body), &[], &ROOMY);
            let got = prepare(&input(&title, &body), &[], &ByteBudget(max_bytes));
            if let (Ok(full), Ok(got)) = (&full, &got) {
                prop_assert!(got.text.len() <= max_bytes);
                prop_assert!(full.text.starts_with(&got.text));
                prop_assert_eq!(got.truncated, got.text.len() < full.text.len());
            }
        }
    }
}
