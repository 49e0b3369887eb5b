//! Token budgets and truncation that always says when it cut.

use std::sync::Arc;

/// How many tokens a text may have, and where to cut one that has more. The embedding
/// crate implements it with the model's own tokenizer; [`WhitespaceBudget`] is the simple
/// stand-in for tests and for running without a tokenizer.
pub trait TokenBudget {
    /// Most tokens a prepared text may have.
    fn max_tokens(&self) -> usize;

    /// Byte offset at which `text` must be cut to fit, or `None` if it fits.
    fn cut_point(&self, text: &str) -> Option<usize>;

    /// Tokens in `text`.
    fn count(&self, text: &str) -> usize;
}

impl<T: TokenBudget + ?Sized> TokenBudget for &T {
    fn max_tokens(&self) -> usize {
        (**self).max_tokens()
    }

    fn cut_point(&self, text: &str) -> Option<usize> {
        (**self).cut_point(text)
    }

    fn count(&self, text: &str) -> usize {
        (**self).count(text)
    }
}

impl<T: TokenBudget + ?Sized> TokenBudget for Box<T> {
    fn max_tokens(&self) -> usize {
        (**self).max_tokens()
    }

    fn cut_point(&self, text: &str) -> Option<usize> {
        (**self).cut_point(text)
    }

    fn count(&self, text: &str) -> usize {
        (**self).count(text)
    }
}

impl<T: TokenBudget + ?Sized> TokenBudget for Arc<T> {
    fn max_tokens(&self) -> usize {
        (**self).max_tokens()
    }

    fn cut_point(&self, text: &str) -> Option<usize> {
        (**self).cut_point(text)
    }

    fn count(&self, text: &str) -> usize {
        (**self).count(text)
    }
}

/// One token per whitespace-separated word. Subword tokenizers give more tokens than
/// words for most scripts and fewer for unspaced ones (Chinese, Japanese, Thai), so this
/// is a stand-in, not an estimate of what a model sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WhitespaceBudget {
    pub max_tokens: usize,
}

impl TokenBudget for WhitespaceBudget {
    fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    fn cut_point(&self, text: &str) -> Option<usize> {
        let mut words = 0;
        let mut in_word = false;
        for (at, c) in text.char_indices() {
            if c.is_whitespace() {
                in_word = false;
            } else if !in_word {
                if words == self.max_tokens {
                    return Some(at);
                }
                words += 1;
                in_word = true;
            }
        }
        None
    }

    fn count(&self, text: &str) -> usize {
        text.split_whitespace().count()
    }
}

/// A cut moves back to the last whitespace at most this many bytes before the cut point,
/// so a word is not split; unspaced scripts are cut at a character boundary instead.
const WORD_BACKOFF_BYTES: usize = 64;

/// Rounds of trusting the budget's cut point before halving the text each round, so a
/// budget whose cut points barely shrink the text still ends quickly.
const TRUSTED_ROUNDS: usize = 8;

/// Cuts `text` until `budget` has no cut point for it. Returns whether anything was cut;
/// the text only ever gets shorter, and only through here.
pub(crate) fn fit(text: &mut String, budget: &dyn TokenBudget) -> bool {
    let original = text.len();
    let mut end = text.len();
    let mut rounds = 0;
    while end > 0 {
        let current = &text[..end];
        let Some(point) = budget.cut_point(current) else {
            break;
        };
        rounds += 1;
        let mut cut = current.floor_char_boundary(point.min(end));
        if cut >= end {
            // A cut point at the very end cuts nothing: drop at least one character.
            cut = current.floor_char_boundary(end - 1);
        }
        if rounds > TRUSTED_ROUNDS {
            cut = cut.min(current.floor_char_boundary(end / 2));
        }
        cut = back_off_to_whitespace(current, cut);
        end = current[..cut].trim_end().len();
    }
    text.truncate(end);
    end < original
}

/// Moves `cut` back to the start of the word it falls in, when that word starts within
/// [`WORD_BACKOFF_BYTES`] and is not the first word.
fn back_off_to_whitespace(text: &str, cut: usize) -> usize {
    let (head, tail) = text.split_at(cut);
    let at_boundary = head.ends_with(char::is_whitespace) || tail.starts_with(char::is_whitespace);
    if cut == 0 || at_boundary {
        return cut;
    }
    let window_start = text.floor_char_boundary(cut.saturating_sub(WORD_BACKOFF_BYTES));
    match head[window_start..].rfind(char::is_whitespace) {
        Some(at) if window_start + at > 0 => window_start + at,
        _ => cut,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fitted(text: &str, budget: &dyn TokenBudget) -> (String, bool) {
        let mut text = text.to_owned();
        let cut = fit(&mut text, budget);
        (text, cut)
    }

    #[test]
    fn whitespace_budget_counts_and_cuts_at_the_next_word() {
        let b = WhitespaceBudget { max_tokens: 3 };
        assert_eq!(b.count("  one two\nthree  four "), 4);
        assert_eq!(b.cut_point("one two three"), None);
        assert_eq!(b.cut_point("one two  three four"), Some(15));
        assert_eq!(WhitespaceBudget { max_tokens: 0 }.cut_point("a"), Some(0));
        assert_eq!(WhitespaceBudget { max_tokens: 0 }.cut_point("  "), None);
    }

    #[test]
    fn text_that_fits_is_untouched() {
        let (text, cut) = fitted("one two three", &WhitespaceBudget { max_tokens: 3 });
        assert_eq!((text.as_str(), cut), ("one two three", false));
    }

    #[test]
    fn text_over_budget_is_cut_to_whole_words_and_flagged() {
        let (text, cut) = fitted(
            "one two\nthree four five",
            &WhitespaceBudget { max_tokens: 3 },
        );
        assert_eq!((text.as_str(), cut), ("one two\nthree", true));
        let (text, cut) = fitted("one two", &WhitespaceBudget { max_tokens: 0 });
        assert_eq!((text.as_str(), cut), ("", true));
    }

    /// Cuts at a fixed byte offset, wherever it falls, like a subword tokenizer would.
    struct Bytes(usize);

    impl TokenBudget for Bytes {
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

    #[test]
    fn a_cut_inside_a_word_backs_off_to_the_word_start() {
        let (text, cut) = fitted("alpha beta gamma", &Bytes(13));
        assert_eq!((text.as_str(), cut), ("alpha beta", true));
    }

    #[test]
    fn a_cut_inside_a_character_backs_off_to_its_boundary() {
        // "한국어" is three 3-byte characters without spaces.
        let (text, cut) = fitted("한국어", &Bytes(4));
        assert_eq!((text.as_str(), cut), ("한", true));
        let (text, _) = fitted("데이터 보안", &Bytes(11));
        assert_eq!(text, "데이터");
    }

    /// Says every text must be cut at its own end: cuts nothing, forever.
    struct Stubborn;

    impl TokenBudget for Stubborn {
        fn max_tokens(&self) -> usize {
            0
        }
        fn cut_point(&self, text: &str) -> Option<usize> {
            Some(text.len() + 10)
        }
        fn count(&self, text: &str) -> usize {
            text.len()
        }
    }

    #[test]
    fn a_budget_that_never_fits_ends_with_nothing_instead_of_looping() {
        let long = "word ".repeat(100_000);
        let (text, cut) = fitted(&long, &Stubborn);
        assert_eq!((text.as_str(), cut), ("", true));
    }

    #[test]
    fn blanket_impls_forward() {
        let b = WhitespaceBudget { max_tokens: 1 };
        let boxed: Box<dyn TokenBudget> = Box::new(b);
        let shared: Arc<dyn TokenBudget + Send + Sync> = Arc::new(b);
        fn count_via<B: TokenBudget>(budget: B) -> usize {
            budget.count("a b")
        }
        assert_eq!(count_via::<&WhitespaceBudget>(&b), 2);
        assert_eq!(boxed.cut_point("a b"), Some(2));
        assert_eq!(shared.max_tokens(), 1);
    }
}
