//! Character-level cleanup: Unicode normalization, control characters, newlines, spaces.

use unicode_normalization::UnicodeNormalization;

/// Normalizes `raw` and splits it into non-empty lines, each with single spaces only.
///
/// NFKC rather than NFC: the text feeds an embedding model, language detection and
/// line comparisons, never a reader. NFKC folds the compatibility forms that real pages
/// carry (full-width Latin and digits in CJK news, half-width katakana, Arabic
/// presentation forms from PDF copies, ligatures, no-break and other odd spaces) into the
/// characters the same words use elsewhere, so duplicates and furniture compare equal and
/// the model sees one spelling. The SentencePiece tokenizers of multilingual embedding
/// models apply NFKC themselves, so counting tokens on NFKC text matches what the model
/// counts. What it loses (superscripts become digits, `½` becomes `1⁄2`) does not matter
/// for what an article is about.
pub(crate) fn lines(raw: &str) -> Vec<String> {
    unify(raw)
        .split('\n')
        .map(collapse_spaces)
        .filter(|line| !line.is_empty())
        .collect()
}

/// Normalizes `raw` into one line: newlines count as spaces.
pub(crate) fn one_line(raw: &str) -> String {
    collapse_spaces(&unify(raw))
}

/// NFKC, every line break as `\n`, tabs as spaces, control and invisible format
/// characters removed.
fn unify(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut after_cr = false;
    for c in raw.chars() {
        let was_cr = after_cr;
        after_cr = c == '\r';
        match c {
            '\n' if was_cr => {}
            '\r' | '\n' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}' => {
                out.push('\n');
            }
            '\t' => out.push(' '),
            c if c.is_control() || is_invisible_format(c) => {}
            c => out.push(c),
        }
    }
    out.nfkc().collect()
}

/// Format characters (Unicode category Cf) that carry no text: soft hyphen, zero-width
/// space, word joiner, byte-order mark, bidirectional marks and embeddings. Zero-width
/// joiner and non-joiner stay: Persian, Indic scripts and emoji need them.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{AD}'
            | '\u{61C}'
            | '\u{180E}'
            | '\u{200B}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
    )
}

/// Trims and turns every run of whitespace (any Unicode `White_Space`) into one space.
fn collapse_spaces(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    for word in line.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newlines_of_every_kind_split_lines_and_empty_lines_go() {
        let got = lines("a\r\nb\rc\n\n\nd\u{2028}e\u{85}f\u{0C}g\r\n\r\n");
        assert_eq!(got, ["a", "b", "c", "d", "e", "f", "g"]);
    }

    #[test]
    fn spaces_collapse_and_tabs_and_nbsp_are_spaces() {
        let got = lines("  a \t b\u{A0}\u{A0}c\u{3000}d  \n \u{A0} \t \n x");
        assert_eq!(got, ["a b c d", "x"]);
    }

    #[test]
    fn controls_and_invisible_format_characters_are_removed() {
        let got = lines("a\0b\u{7}c\u{1B}[0m d\u{200B}e\u{FEFF}f\u{AD}g\u{200F}h");
        assert_eq!(got, ["abc[0m defgh"]);
        // Zero-width non-joiner is meaningful in Persian.
        assert_eq!(lines("می\u{200C}خواهم"), ["می\u{200C}خواهم"]);
    }

    #[test]
    fn nfkc_folds_compatibility_forms() {
        // Full-width Latin, a ligature, a decomposed accent, Arabic presentation form.
        let got = one_line("ＣＨＩＮＡ ﬁnal e\u{301}te \u{FEF7}");
        assert_eq!(got, "CHINA final \u{e9}te \u{644}\u{623}");
    }

    #[test]
    fn one_line_joins_lines_with_spaces() {
        assert_eq!(one_line("  Big\nnews\r\n today "), "Big news today");
        assert_eq!(one_line("\0\n\t"), "");
    }
}
