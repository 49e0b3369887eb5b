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

/// `text` lowercased, Cyrillic letters spelled in Latin.
fn latin_lower(text: &str) -> String {
    let mut latin = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        match transliterate(c) {
            Some(s) => latin.push_str(s),
            None => latin.push(c),
        }
    }
    latin
}

/// `text` without its accents (decomposed, combining marks dropped), lowercased.
fn fold_accents(text: &str) -> String {
    text.nfkd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The distinctive tokens of `text`: lowercased, Cyrillic transliterated,
/// accent-folded; kept when they hold a digit or have at least four
/// characters. Sorted, deduplicated.
pub fn tokens(text: &str) -> Vec<String> {
    let Some(re) = TOKEN.as_ref() else {
        return Vec::new();
    };
    let latin = latin_lower(text);
    let mut out: Vec<String> = re
        .find_iter(&latin)
        .map(|m| fold_accents(m.as_str()))
        .filter(|t| {
            t.chars().any(|c| c.is_ascii_digit() || c.is_numeric()) || t.chars().count() >= 4
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Marks a character 4-gram's id among an article's token ids (word ids are
/// interned from 0 and stay below it).
pub const GRAM_BIT: u32 = 0x8000_0000;

/// The character 4-grams of `text`'s words (lowercased, Cyrillic transliterated,
/// accent-folded, each word padded with a space on both sides; a shorter padded
/// word counts whole), hashed (FNV-1a) into ids with [`GRAM_BIT`] set. Sorted,
/// deduplicated.
pub fn grams(text: &str) -> Vec<u32> {
    let Some(re) = WORD.as_ref() else {
        return Vec::new();
    };
    let folded = fold_accents(&latin_lower(text));
    let hash = |cs: &[char]| -> u32 {
        let mut h: u32 = 0x811c_9dc5;
        let mut buf = [0u8; 4];
        for c in cs {
            for b in c.encode_utf8(&mut buf).bytes() {
                h ^= u32::from(b);
                h = h.wrapping_mul(0x0100_0193);
            }
        }
        (h & !GRAM_BIT) | GRAM_BIT
    };
    let mut out = Vec::new();
    for m in re.find_iter(&folded) {
        let mut cs: Vec<char> = Vec::with_capacity(m.as_str().len() + 2);
        cs.push(' ');
        cs.extend(m.as_str().chars());
        cs.push(' ');
        if cs.len() <= 4 {
            out.push(hash(&cs));
        } else {
            out.extend(cs.windows(4).map(hash));
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

static WORD: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"[^\W_]+").ok());

/// The word ids of a sorted id list: those before its 4-grams ([`GRAM_BIT`]).
fn words(ids: &[u32]) -> &[u32] {
    &ids[..ids.partition_point(|id| id & GRAM_BIT == 0)]
}

/// The ids two sorted lists both hold, in order.
fn common<'a>(a: &'a [u32], b: &'a [u32]) -> impl Iterator<Item = u32> + 'a {
    let (mut i, mut j) = (0, 0);
    std::iter::from_fn(move || {
        while i < a.len() && j < b.len() {
            match a[i].cmp(&b[j]) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    i += 1;
                    j += 1;
                    return Some(a[i - 1]);
                }
            }
        }
        None
    })
}

/// An article's 4-gram ids and their idf norm ([`TokenStats::gram_vector`]).
#[derive(Debug, Clone, Copy)]
pub struct GramVector<'a> {
    grams: &'a [u32],
    norm: f64,
}

/// Interned tokens with document frequencies over the articles seen so far.
#[derive(Debug, Default)]
pub struct TokenStats {
    ids: HashMap<String, u32>,
    df: Vec<u32>,
    gram_df: HashMap<u32, u32>,
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
    /// affixes learned so far (this title's own counted first): its words'
    /// ids, then its character 4-grams' ([`grams`]), sorted.
    pub fn intern_title(&mut self, title: &str) -> Vec<u32> {
        self.affixes.observe(title);
        let kept = self.affixes.strip(title);
        let mut ids = self.intern(kept);
        ids.extend(grams(kept));
        ids
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
            if id & GRAM_BIT != 0 {
                *self.gram_df.entry(*id).or_default() += 1;
            } else if let Some(df) = self.df.get_mut(*id as usize) {
                *df += 1;
            }
        }
        self.docs += 1;
    }

    /// Takes one article's tokens back out (it was deleted or re-decided).
    pub fn uncount(&mut self, ids: &[u32]) {
        for id in ids {
            if id & GRAM_BIT != 0 {
                if let Some(df) = self.gram_df.get_mut(id) {
                    *df = df.saturating_sub(1);
                }
            } else if let Some(df) = self.df.get_mut(*id as usize) {
                *df = df.saturating_sub(1);
            }
        }
        self.docs = self.docs.saturating_sub(1);
    }

    /// Sum of `ln((docs + 1) / (df + 1))` over the word tokens both sorted lists
    /// share (their 4-grams, after the words, are [`TokenStats::gram_cosine`]'s).
    pub fn shared_idf(&self, a: &[u32], b: &[u32]) -> f32 {
        let n = (self.docs + 1) as f64;
        let sum: f64 = common(words(a), words(b))
            .map(|id| {
                let df = self.df.get(id as usize).copied().unwrap_or(0);
                (n / (f64::from(df) + 1.0)).ln()
            })
            .sum();
        sum as f32
    }

    /// The weight `ln((docs + 1) / (df + 1)) + 1` of a 4-gram id.
    fn gram_idf(&self, id: u32) -> f64 {
        let df = self.gram_df.get(&id).copied().unwrap_or(0);
        ((self.docs + 1) as f64 / (f64::from(df) + 1.0)).ln() + 1.0
    }

    /// A sorted id list's 4-grams with their norm under the current
    /// frequencies: one side of [`TokenStats::gram_cosine_to`], worked out once
    /// for an article compared with many.
    pub fn gram_vector<'a>(&self, ids: &'a [u32]) -> GramVector<'a> {
        let grams = &ids[words(ids).len()..];
        let norm = grams.iter().map(|id| self.gram_idf(*id).powi(2)).sum();
        GramVector { grams, norm }
    }

    /// The idf-weighted cosine of `a`'s 4-grams and those of the sorted id list
    /// `b` (binary weights, idf as [`TokenStats::gram_vector`]); 0 when either
    /// has none.
    pub fn gram_cosine_to(&self, a: &GramVector<'_>, b: &[u32]) -> f32 {
        let b = self.gram_vector(b);
        if a.norm <= 0.0 || b.norm <= 0.0 {
            return 0.0;
        }
        let dot: f64 = common(a.grams, b.grams)
            .map(|id| self.gram_idf(id).powi(2))
            .sum();
        (dot / (a.norm * b.norm).sqrt()) as f32
    }

    /// [`TokenStats::gram_cosine_to`] of two sorted id lists.
    pub fn gram_cosine(&self, a: &[u32], b: &[u32]) -> f32 {
        self.gram_cosine_to(&self.gram_vector(a), b)
    }

    /// Approximate heap bytes: the interner's table (key header, id, control
    /// byte per slot), the token strings and the document frequencies (of the
    /// words and of the 4-grams).
    pub fn memory_bytes(&self) -> usize {
        use std::mem::size_of;
        let slots = self.ids.capacity() * (size_of::<String>() + size_of::<u32>() + 1);
        let strings: usize = self.ids.keys().map(String::capacity).sum();
        let grams = self.gram_df.capacity() * (2 * size_of::<u32>() + 1);
        slots
            + strings
            + self.df.capacity() * size_of::<u32>()
            + grams
            + self.affixes.memory_bytes()
    }

    pub fn vocabulary(&self) -> usize {
        self.df.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts `titles` into `stats`, as articles seen before.
    fn seen(stats: &mut TokenStats, titles: &[&str]) {
        for title in titles {
            let ids = stats.intern_title(title);
            stats.count(&ids);
        }
    }

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
        let mut kept = stats.intern("Archery gold for South Korea");
        kept.extend(grams("Archery gold for South Korea"));
        assert_eq!(c, kept, "words and 4-grams of the title without the outlet");
        // Without learning, the outlet's words are shared.
        let mut plain = TokenStats::new(0);
        seen(
            &mut plain,
            &[
                "Rowing heats delayed by rain",
                "Swimming final tonight",
                "Judo bronze",
            ],
        );
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
        // The 4-grams' document frequencies count too.
        let words_only = stats.memory_bytes();
        let title = stats.intern_title("Quizzical zebras juxtapose fjords in Kyrgyzstan");
        stats.count(&title);
        assert!(stats.memory_bytes() > words_only);
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
    fn grams_are_padded_four_character_windows_of_folded_words() {
        let g = grams("Nishiya");
        // " nishiya " has 9 characters: 6 windows of 4.
        assert_eq!(g.len(), 6);
        assert!(g.iter().all(|id| id & GRAM_BIT != 0));
        assert!(g.windows(2).all(|w| w[0] < w[1]), "sorted, no duplicates");
        // A short word counts whole; case, accents and Cyrillic fold.
        assert_eq!(grams("de").len(), 1);
        assert_eq!(grams("Tóquio"), grams("toquio"));
        assert_eq!(grams("Токио"), grams("Tokio"));
        assert_eq!(grams("Rayssa, Leal!"), grams("rayssa leal"));
        assert!(grams("").is_empty() && grams(" -- ").is_empty());
    }

    #[test]
    fn gram_cosine_sees_a_name_across_its_spellings_and_ignores_words() {
        let mut stats = TokenStats::new(0);
        seen(
            &mut stats,
            &[
                "Swimming final tonight",
                "Judo bronze for Brazil",
                "Rowing heats",
            ],
        );
        let en = stats.intern_title("Nishiya wins skateboarding gold");
        let es = stats.intern_title("Momiji Nishiya gana el oro en skateboarding");
        let other = stats.intern_title("Rayssa Leal conquista a prata no skate");
        let same = stats.gram_cosine(&en, &es);
        assert!(same > stats.gram_cosine(&en, &other), "{same}");
        assert!((stats.gram_cosine(&en, &en) - 1.0).abs() < 1e-6);
        assert_eq!(stats.gram_cosine(&en, &es), stats.gram_cosine(&es, &en));
        assert_eq!(stats.gram_cosine(&en, &[]), 0.0);
        // Word tokens alone have no 4-grams; the grams never count as shared words.
        let words = stats.intern("Nishiya wins skateboarding gold");
        assert_eq!(stats.gram_cosine(&words, &en), 0.0);
        assert_eq!(stats.shared_idf(&en, &es), stats.shared_idf(&words, &es));
    }

    #[test]
    fn counting_grams_lowers_their_weight_and_uncounting_restores_it() {
        let mut stats = TokenStats::new(0);
        let a = stats.intern_title("Horigome wins gold");
        let b = stats.intern_title("Horigome takes the first skateboarding gold");
        let before = stats.gram_cosine(&a, &b);
        let c = stats.intern_title("gold gold wins");
        for _ in 0..20 {
            stats.count(&c);
        }
        // "gold" and "wins" are common now: what the two share is mostly the name.
        let common = stats.gram_cosine(&a, &b);
        assert!(common != before);
        for _ in 0..20 {
            stats.uncount(&c);
        }
        assert_eq!(stats.gram_cosine(&a, &b), before);
    }

    proptest::proptest! {
        #[test]
        fn gram_cosine_is_a_symmetric_similarity(a in "\\PC{0,60}", b in "\\PC{0,60}") {
            let mut stats = TokenStats::new(0);
            let x = stats.intern_title(&a);
            stats.count(&x);
            let y = stats.intern_title(&b);
            stats.count(&y);
            let c = stats.gram_cosine(&x, &y);
            proptest::prop_assert!((0.0..=1.0 + 1e-5).contains(&c), "{}", c);
            proptest::prop_assert_eq!(c, stats.gram_cosine(&y, &x));
            proptest::prop_assert!(x.windows(2).all(|w| w[0] < w[1]), "sorted, no duplicates");
        }
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
