//! Cheap, language-independent overlap signal: shared numbers and long words
//! (names, places) between two titles, weighted by how rare they are so far.

use std::{collections::HashMap, sync::LazyLock};

use concord_text::TitleAffixes;
use regex::Regex;
use unicode_normalization::{UnicodeNormalization, char::is_combining_mark};

/// Runs of letters/digits, optionally followed by numeric groups: `3-1`, `9.80`, `tokyo-2020`.
static TOKEN: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"[^\W_]+(?:[-:.,][0-9]+)*").ok());

/// Cyrillic letters to Latin, so names match across ru/uk/bg and Latin scripts.
fn transliterate(c: char) -> Option<&'static str> {
    Some(match c {
        'а' => "a",
        'б' => "b",
        'в' => "v",
        'г' | 'ґ' => "g",
        'д' => "d",
        'е' | 'ё' | 'э' => "e",
        'ж' => "zh",
        'з' => "z",
        'и' | 'й' | 'і' | 'ї' => "i",
        'к' => "k",
        'л' => "l",
        'м' => "m",
        'н' => "n",
        'о' => "o",
        'п' => "p",
        'р' => "r",
        'с' => "s",
        'т' => "t",
        'у' | 'ў' => "u",
        'ф' => "f",
        'х' => "kh",
        'ц' => "ts",
        'ч' => "ch",
        'ш' => "sh",
        'щ' => "shch",
        'ъ' | 'ь' => "",
        'ы' => "y",
        'ю' => "iu",
        'я' => "ia",
        'є' => "ie",
        _ => return None,
    })
}

/// The distinctive tokens of `text`: lowercased, Cyrillic transliterated,
/// accent-folded; kept when they hold a digit or have at least four
/// characters. Sorted, deduplicated.
pub fn tokens(text: &str) -> Vec<String> {
    let Some(re) = TOKEN.as_ref() else {
        return Vec::new();
    };
    let mut latin = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        match transliterate(c) {
            Some(s) => latin.push_str(s),
            None => latin.push(c),
        }
    }
    let mut out: Vec<String> = re
        .find_iter(&latin)
        .map(|m| {
            m.as_str()
                .nfkd()
                .filter(|c| !is_combining_mark(*c))
                .flat_map(char::to_lowercase)
                .collect::<String>()
        })
        .filter(|t| {
            t.chars().any(|c| c.is_ascii_digit() || c.is_numeric()) || t.chars().count() >= 4
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Interned tokens with document frequencies over the articles seen so far.
#[derive(Debug, Default)]
pub struct TokenStats {
    ids: HashMap<String, u32>,
    df: Vec<u32>,
    /// Articles counted so far.
    docs: u64,
    /// Outlet names and live-blog labels learned from the titles seen, left
    /// out of a title's tokens: they are shared across unrelated reports.
    affixes: TitleAffixes,
}

impl TokenStats {
    /// Learns affixes seen in at least `affix_min` titles (0: none).
    pub fn new(affix_min: u32) -> Self {
        Self {
            affixes: TitleAffixes::new(affix_min),
            ..Self::default()
        }
    }

    /// Token ids of an arriving article's title, without the publisher
    /// affixes learned so far (this title's own counted first).
    pub fn intern_title(&mut self, title: &str) -> Vec<u32> {
        self.affixes.observe(title);
        let kept = self.affixes.strip(title);
        self.intern(kept)
    }

    /// Token ids of `text`, interning new tokens (with frequency 0).
    pub fn intern(&mut self, text: &str) -> Vec<u32> {
        let mut ids: Vec<u32> = tokens(text)
            .into_iter()
            .map(|t| {
                let next = self.df.len() as u32;
                *self.ids.entry(t).or_insert_with(|| {
                    self.df.push(0);
                    next
                })
            })
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Counts one article's tokens (after it has been scored).
    pub fn count(&mut self, ids: &[u32]) {
        for id in ids {
            if let Some(df) = self.df.get_mut(*id as usize) {
                *df += 1;
            }
        }
        self.docs += 1;
    }

    /// Takes one article's tokens back out (it was deleted or re-decided).
    pub fn uncount(&mut self, ids: &[u32]) {
        for id in ids {
            if let Some(df) = self.df.get_mut(*id as usize) {
                *df = df.saturating_sub(1);
            }
        }
        self.docs = self.docs.saturating_sub(1);
    }

    /// Sum of `ln((docs + 1) / (df + 1))` over the tokens both sorted lists share.
    pub fn shared_idf(&self, a: &[u32], b: &[u32]) -> f32 {
        let n = (self.docs + 1) as f64;
        let (mut i, mut j, mut sum) = (0, 0, 0.0f64);
        while i < a.len() && j < b.len() {
            match a[i].cmp(&b[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    let df = self.df.get(a[i] as usize).copied().unwrap_or(0);
                    sum += (n / (f64::from(df) + 1.0)).ln();
                    i += 1;
                    j += 1;
                }
            }
        }
        sum as f32
    }

    /// Approximate heap bytes: the interner's table (key header, id, control
    /// byte per slot), the token strings and the document frequencies.
    pub fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        let slots = self.ids.capacity() * (size_of::<String>() + size_of::<u32>() + 1);
        let strings: usize = self.ids.keys().map(String::capacity).sum();
        slots + strings + self.df.capacity() * size_of::<u32>() + self.affixes.memory_bytes()
    }

    pub fn vocabulary(&self) -> usize {
        self.df.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_learned_outlet_name_adds_no_shared_tokens() {
        let mut stats = TokenStats::new(2);
        let a =
            stats.intern_title("Hou wins weightlifting gold for China | The China Post, Taiwan");
        stats.count(&a);
        let b =
            stats.intern_title("Youngest athlete in Tokyo out of Games | The China Post, Taiwan");
        stats.count(&b);
        // The second sighting made the suffix the outlet's: nothing in common is left.
        assert_eq!(stats.shared_idf(&a, &b), 0.0);
        let c = stats.intern_title("Archery gold for South Korea | The China Post, Taiwan");
        assert_eq!(c, stats.intern("Archery gold for South Korea"));
        // Without learning, the outlet's words are shared.
        let mut plain = TokenStats::new(0);
        for other in [
            "Rowing heats delayed by rain",
            "Swimming final tonight",
            "Judo bronze",
        ] {
            let ids = plain.intern_title(other);
            plain.count(&ids);
        }
        let a = plain.intern_title("Hou wins weightlifting gold | The China Post, Taiwan");
        plain.count(&a);
        let b = plain.intern_title("Youngest athlete out of Games | The China Post, Taiwan");
        assert!(plain.shared_idf(&a, &b) > 0.0);
    }

    #[test]
    fn memory_counts_the_interned_strings() {
        let mut stats = TokenStats::default();
        let empty = stats.memory_bytes();
        let ids = stats.intern("Tokyo Olympics: Biles withdraws from the all-around final");
        stats.count(&ids);
        let long = "a".repeat(1000);
        let with_long = stats.intern(&format!("{long} 2021"));
        assert!(
            stats.memory_bytes() >= empty + 1000,
            "{}",
            stats.memory_bytes()
        );
        assert!(!with_long.is_empty());
    }

    #[test]
    fn numbers_names_and_long_words_are_tokens_short_words_are_not() {
        let t = tokens("Biles wins gold, USA beat Japan 3-1 in Tokyo-2020 at 9.80s");
        assert!(t.contains(&"biles".to_owned()));
        assert!(t.contains(&"3-1".to_owned()));
        assert!(t.contains(&"tokyo-2020".to_owned()));
        assert!(t.contains(&"japan".to_owned()));
        assert!(!t.iter().any(|x| x == "usa" || x == "in" || x == "at"));
    }

    #[test]
    fn cyrillic_names_meet_their_latin_spelling() {
        assert!(tokens("Путин встретился").contains(&"putin".to_owned()));
        assert_eq!(tokens("Токио"), tokens("Tokio"));
    }

    #[test]
    fn accents_and_case_fold_across_languages() {
        assert_eq!(tokens("Zürich"), tokens("zurich"));
        assert_eq!(tokens("ÉLÉPHANT"), tokens("elephant"));
    }

    #[test]
    fn rare_shared_tokens_weigh_more_than_common_ones() {
        let mut stats = TokenStats::default();
        let common = stats.intern("olympics games");
        for _ in 0..50 {
            stats.count(&common);
        }
        let a = stats.intern("olympics Ledecky");
        let b = stats.intern("Ledecky olympics");
        stats.count(&a);
        let c = stats.intern("olympics other");
        assert!(stats.shared_idf(&a, &b) > stats.shared_idf(&a, &c));
        assert!(stats.shared_idf(&a, &c) >= 0.0);
    }
}
