use std::path::Path;

use concord_text::TokenBudget;
use tokenizers::Tokenizer;

use crate::{EmbedError, model::read_file};

/// The model's own tokenizer as a token budget for text preparation, so
/// truncation happens (and is flagged) before the model would cut silently.
pub struct TokenizerBudget {
    tokenizer: Tokenizer,
    max_tokens: usize,
}

impl std::fmt::Debug for TokenizerBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenizerBudget")
            .field("max_tokens", &self.max_tokens)
            .finish_non_exhaustive()
    }
}

impl TokenizerBudget {
    /// Loads `tokenizer.json` from the model folder.
    pub fn load(model_dir: &Path, max_tokens: usize) -> Result<Self, EmbedError> {
        let path = model_dir.join("tokenizer.json");
        let bytes = read_file(&path)?;
        let mut tokenizer = Tokenizer::from_bytes(bytes).map_err(|e| EmbedError::Load {
            dir: model_dir.to_path_buf(),
            reason: format!("tokenizer.json: {e}"),
        })?;
        // Count and cut ourselves: the tokenizer must see the whole text.
        tokenizer
            .with_truncation(None)
            .map_err(|e| EmbedError::Load {
                dir: model_dir.to_path_buf(),
                reason: format!("tokenizer.json: {e}"),
            })?;
        tokenizer.with_padding(None);
        Ok(Self {
            tokenizer,
            max_tokens,
        })
    }
}

impl TokenBudget for TokenizerBudget {
    fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    fn count(&self, text: &str) -> usize {
        self.tokenizer
            .encode(text, true)
            .map_or(usize::MAX, |enc| enc.len())
    }

    fn cut_point(&self, text: &str) -> Option<usize> {
        let Ok(encoding) = self.tokenizer.encode(text, true) else {
            // An input the tokenizer refuses cannot be embedded whole: keep nothing past
            // a conservative character budget rather than claiming it fits.
            return text
                .char_indices()
                .nth(self.max_tokens)
                .map(|(byte, _)| byte);
        };
        if encoding.len() <= self.max_tokens {
            return None;
        }
        // Special tokens (BOS/EOS) have empty offsets; find the last content token
        // that still fits once they are counted.
        let specials = encoding
            .get_special_tokens_mask()
            .iter()
            .filter(|m| **m == 1)
            .count();
        let keep = self.max_tokens.saturating_sub(specials);
        let offsets = encoding.get_offsets();
        let content: Vec<(usize, usize)> = offsets
            .iter()
            .zip(encoding.get_special_tokens_mask())
            .filter(|(_, special)| **special == 0)
            .map(|(o, _)| *o)
            .collect();
        match content.get(keep) {
            Some((start, _)) => Some(*start),
            None => Some(content.last().map_or(0, |(_, end)| *end)),
        }
    }
}
