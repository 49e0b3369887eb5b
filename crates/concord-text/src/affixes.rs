//! Publisher affixes in headlines: "... - ISTOÉ Independente", "... | The China
//! Post, Taiwan", "Olympics Latest: ...". Feeds and aggregators keep the outlet's
//! name (or its live-blog label) in the title, so two unrelated reports from one
//! outlet share words, and an embedding, that say nothing about the event.
//!
//! No fixed list can know every outlet, so the affixes are learned: a short
//! leading or trailing segment, cut off by a separator, that has been seen in at
//! least `min_articles` titles is furniture. A segment seen once is content
//! ("Japan wins gold - again"); one that recurs across unrelated titles is the
//! outlet's signature.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

/// Separators before a trailing segment (spaced, so "Covid-19" is never cut).
const SUFFIX_SEPARATORS: [&str; 5] = [" - ", " | ", " – ", " — ", " :: "];
/// Separators after a leading segment.
const PREFIX_SEPARATORS: [&str; 2] = [" | ", ": "];
/// An affix is at most this many characters and words; what remains has at
/// least `MIN_REST_WORDS` words.
const MAX_AFFIX_CHARS: usize = 60;
const MAX_AFFIX_WORDS: usize = 6;
const MIN_REST_WORDS: usize = 3;

/// A title's candidate affixes: the leading and the trailing segment that
/// could be an outlet's, as byte ranges of the title (separator excluded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Candidates {
    /// The leading segment and where the rest starts.
    pub prefix: Option<(usize, usize)>,
    /// Where the trailing segment's separator starts, and where the segment starts.
    pub suffix: Option<(usize, usize)>,
}

fn words(s: &str) -> usize {
    s.split_whitespace().count()
}

fn short(segment: &str) -> bool {
    let segment = segment.trim();
    !segment.is_empty()
        && segment.chars().count() <= MAX_AFFIX_CHARS
        && words(segment) <= MAX_AFFIX_WORDS
        && segment.chars().any(char::is_alphabetic)
}

/// Finds the candidate affixes of `title`.
pub fn candidates(title: &str) -> Candidates {
    let suffix = SUFFIX_SEPARATORS
        .iter()
        .filter_map(|sep| title.rfind(sep).map(|at| (at, at + sep.len())))
        .max_by_key(|&(at, _)| at)
        .filter(|&(at, start)| short(&title[start..]) && words(&title[..at]) >= MIN_REST_WORDS);
    let body_end = suffix.map_or(title.len(), |(at, _)| at);
    let prefix = PREFIX_SEPARATORS
        .iter()
        .filter_map(|sep| title[..body_end].find(sep).map(|at| (at, at + sep.len())))
        .min_by_key(|&(at, _)| at)
        .filter(|&(at, rest)| {
            short(&title[..at]) && words(&title[rest..body_end]) >= MIN_REST_WORDS
        });
    Candidates { prefix, suffix }
}

fn key(segment: &str) -> u64 {
    let mut h = DefaultHasher::new();
    for c in segment.trim().chars().flat_map(char::to_lowercase) {
        c.hash(&mut h);
    }
    h.finish()
}

/// The learned affixes: how many titles each candidate segment was seen in.
#[derive(Debug, Clone, Default)]
pub struct TitleAffixes {
    /// Hash of the lowercased segment -> titles seen with it.
    seen: HashMap<u64, u32>,
    min_articles: u32,
}

impl TitleAffixes {
    /// Segments seen in at least `min_articles` titles are stripped; 0 strips nothing.
    pub fn new(min_articles: u32) -> Self {
        Self {
            seen: HashMap::new(),
            min_articles,
        }
    }

    /// Counts one title's candidate affixes (once per article).
    pub fn observe(&mut self, title: &str) {
        if self.min_articles == 0 {
            return;
        }
        let c = candidates(title);
        if let Some((at, _)) = c.prefix {
            *self.seen.entry(key(&title[..at])).or_default() += 1;
        }
        if let Some((_, start)) = c.suffix {
            *self.seen.entry(key(&title[start..])).or_default() += 1;
        }
    }

    fn known(&self, segment: &str) -> bool {
        self.min_articles > 0
            && self
                .seen
                .get(&key(segment))
                .is_some_and(|n| *n >= self.min_articles)
    }

    /// `title` without the affixes seen often enough; the title itself when
    /// none is known.
    pub fn strip<'a>(&self, title: &'a str) -> &'a str {
        let c = candidates(title);
        let end = match c.suffix {
            Some((at, start)) if self.known(&title[start..]) => at,
            _ => title.len(),
        };
        let start = match c.prefix {
            Some((at, rest)) if self.known(&title[..at]) => rest,
            _ => 0,
        };
        title[start..end].trim()
    }

    /// Distinct segments counted.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Approximate heap bytes (key, count and control byte per slot).
    pub fn memory_bytes(&self) -> usize {
        self.seen.capacity() * (std::mem::size_of::<u64>() + std::mem::size_of::<u32>() + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_recurring_outlet_suffix_is_stripped_once_learned() {
        let mut a = TitleAffixes::new(3);
        let titles = [
            "Kevin Hoefler conquista a primeira medalha - ISTOÉ Independente",
            "Daniel Cargnin surpreende e leva bronze no judô - ISTOÉ Independente",
            "Rebeca Andrade é ouro no salto - ISTOÉ Independente",
        ];
        a.observe(titles[0]);
        a.observe(titles[1]);
        // Seen twice: still content as far as we know.
        assert_eq!(a.strip(titles[0]), titles[0]);
        a.observe(titles[2]);
        assert_eq!(
            a.strip(titles[0]),
            "Kevin Hoefler conquista a primeira medalha"
        );
        assert_eq!(
            a.strip("Brasil fecha a Olimpíada em 12º - istoé independente"),
            "Brasil fecha a Olimpíada em 12º"
        );
        // Another title's own ending is left alone.
        assert_eq!(
            a.strip("Japan wins its first gold of the Games - again"),
            "Japan wins its first gold of the Games - again"
        );
    }

    #[test]
    fn a_recurring_live_blog_prefix_is_stripped() {
        let mut a = TitleAffixes::new(2);
        a.observe("Olympics Latest: China's Hou wins weightlifting gold | The China Post, Taiwan");
        a.observe(
            "Olympics Latest: Youngest athlete in Tokyo out of Games | The China Post, Taiwan",
        );
        assert_eq!(
            a.strip("Olympics Latest: South Korea wins gold in mixed team archery | The China Post, Taiwan"),
            "South Korea wins gold in mixed team archery"
        );
    }

    #[test]
    fn short_titles_and_long_segments_are_never_cut() {
        let mut a = TitleAffixes::new(1);
        for t in ["Tokyo - Day 3", "Covid-19 cases rise in the village again"] {
            a.observe(t);
            assert_eq!(a.strip(t), t);
        }
        let long =
            "Medals table - the full list of every country that has won a medal so far in Tokyo";
        assert_eq!(candidates(long).suffix, None);
    }

    #[test]
    fn zero_learns_and_strips_nothing() {
        let mut a = TitleAffixes::new(0);
        let t = "Kevin Hoefler conquista a primeira medalha - ISTOÉ Independente";
        a.observe(t);
        a.observe(t);
        assert!(a.is_empty());
        assert_eq!(a.strip(t), t);
    }

    proptest! {
        #[test]
        fn stripping_keeps_a_non_empty_slice_of_the_title(
            titles in proptest::collection::vec("\\PC{0,80}", 1..8),
            min in 1u32..3,
        ) {
            let mut a = TitleAffixes::new(min);
            for t in &titles {
                a.observe(t);
            }
            for t in &titles {
                let s = a.strip(t);
                prop_assert!(t.contains(s));
                prop_assert!(
                    words(t) <= MIN_REST_WORDS || !s.is_empty(),
                    "{t:?} stripped to nothing"
                );
            }
        }
    }
}
