//! `concord_text::prepare` on arbitrary titles and bodies under three budgets that need no
//! model: whole words, bytes (cuts inside words and characters, like a subword tokenizer)
//! and characters. Never a panic; a prepared text is never empty, never over its budget,
//! free of NUL and CR, and a prefix of the same article prepared without a limit.
#![no_main]

use arbitrary::Arbitrary;
use concord_core::Lang;
use concord_text::{ArticleInput, PrepareError, TokenBudget, WhitespaceBudget, prepare};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    title: &'a str,
    body: &'a str,
    lang: Option<u8>,
    budget: Budget,
}

#[derive(Debug, Clone, Copy, Arbitrary)]
enum Budget {
    Words(u8),
    Bytes(u16),
    Chars(u16),
}

impl TokenBudget for Budget {
    fn max_tokens(&self) -> usize {
        match *self {
            Budget::Words(n) => usize::from(n),
            Budget::Bytes(n) | Budget::Chars(n) => usize::from(n),
        }
    }

    fn cut_point(&self, text: &str) -> Option<usize> {
        match *self {
            Budget::Words(n) => WhitespaceBudget {
                max_tokens: usize::from(n),
            }
            .cut_point(text),
            Budget::Bytes(n) => (text.len() > usize::from(n)).then_some(usize::from(n)),
            Budget::Chars(n) => text.char_indices().nth(usize::from(n)).map(|(at, _)| at),
        }
    }

    fn count(&self, text: &str) -> usize {
        match *self {
            Budget::Words(_) => text.split_whitespace().count(),
            Budget::Bytes(_) => text.len(),
            Budget::Chars(_) => text.chars().count(),
        }
    }
}

const UNLIMITED: WhitespaceBudget = WhitespaceBudget {
    max_tokens: usize::MAX,
};

fuzz_target!(|input: Input<'_>| {
    let langs: Vec<Lang> = Lang::all().collect();
    let lang = input
        .lang
        .and_then(|i| langs.get(usize::from(i) % langs.len().max(1)).copied());
    let article = ArticleInput {
        title: input.title,
        body: input.body,
        lang,
    };
    let supported = &langs[..langs.len() / 2];
    let full = prepare(&article, supported, &UNLIMITED);
    let got = prepare(&article, supported, &input.budget);
    match (&full, &got) {
        (Err(PrepareError::EmptyText), Err(PrepareError::EmptyText)) => {}
        (Ok(_), Err(PrepareError::NothingFits { max_tokens })) => {
            assert_eq!(*max_tokens, input.budget.max_tokens());
        }
        (Ok(full), Ok(got)) => {
            assert!(!full.truncated);
            assert!(!got.text.is_empty());
            assert!(got.tokens <= input.budget.max_tokens(), "{got:?}");
            assert_eq!(got.tokens, input.budget.count(&got.text));
            assert!(full.text.starts_with(&got.text), "{full:?} / {got:?}");
            assert_eq!(got.truncated, got.text.len() < full.text.len());
            assert!(!got.text.contains(['\0', '\r']), "{got:?}");
            assert_eq!(got.lang, full.lang);
            if lang.is_some() {
                assert_eq!(got.lang, lang);
            }
            assert_eq!(
                got.model_supports_lang,
                got.lang.is_some_and(|l| supported.contains(&l))
            );
        }
        _ => panic!("unlimited {full:?} vs budgeted {got:?}"),
    }
});
