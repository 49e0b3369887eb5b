//! Language detection with whatlang, and the rule for when to believe it.
//!
//! whatlang's confidence is 1.0 for scripts that only one language uses (Hangul, Thai,
//! Greek, kana) and for any paragraph of a hundred letters or more; on a headline alone it
//! is often wrong with a confidence of 0.2 to 0.5 (an English headline read as Danish or
//! French, a Russian one as Ukrainian). So:
//!
//! - at least [`MIN_LETTERS`] letters, and
//! - confidence above [`RELIABLE`] (whatlang's own "reliable" bar) for short texts, or at
//!   least [`MIN_CONFIDENCE_LONG`] once the text has [`LONG_LETTERS`] letters (about a
//!   ten-word title plus a line of body).
//!
//! Otherwise the language is undetermined: a missing language is safer than a wrong one.

use concord_core::Lang;

/// Fewer letters than this say nothing about a language.
pub(crate) const MIN_LETTERS: usize = 4;
/// Letters from which a text counts as long enough for a medium confidence.
pub(crate) const LONG_LETTERS: usize = 60;
/// Confidence a short text needs (strictly above).
pub(crate) const RELIABLE: f64 = 0.9;
/// Confidence a long text needs.
pub(crate) const MIN_CONFIDENCE_LONG: f64 = 0.5;
/// Only the start of a text is read: a few kilobytes decide the language.
const SAMPLE_BYTES: usize = 4096;

/// What detection found: the language when the rule accepts it, and whatlang's
/// confidence in its best guess whenever it had one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Detection {
    pub(crate) lang: Option<Lang>,
    pub(crate) confidence: Option<f64>,
}

pub(crate) fn detect(text: &str) -> Detection {
    let sample = &text[..text.floor_char_boundary(SAMPLE_BYTES)];
    let Some(info) = whatlang::detect(sample) else {
        return Detection {
            lang: None,
            confidence: None,
        };
    };
    let letters = sample.chars().filter(|c| c.is_alphabetic()).count();
    let confidence = info.confidence();
    if !confidence.is_finite() {
        return Detection {
            lang: None,
            confidence: None,
        };
    }
    let accepted = letters >= MIN_LETTERS
        && (confidence > RELIABLE
            || (letters >= LONG_LETTERS && confidence >= MIN_CONFIDENCE_LONG));
    Detection {
        lang: accepted.then(|| from_whatlang(info.lang())),
        confidence: Some(confidence),
    }
}

/// Every language whatlang detects has a 639-1 code. The match has no catch-all arm, so a
/// whatlang upgrade with new languages fails to build until they are mapped.
pub(crate) fn from_whatlang(lang: whatlang::Lang) -> Lang {
    use whatlang::Lang as W;
    match lang {
        W::Epo => Lang::EO,
        W::Eng => Lang::EN,
        W::Rus => Lang::RU,
        W::Cmn => Lang::ZH,
        W::Spa => Lang::ES,
        W::Por => Lang::PT,
        W::Ita => Lang::IT,
        W::Ben => Lang::BN,
        W::Fra => Lang::FR,
        W::Deu => Lang::DE,
        W::Ukr => Lang::UK,
        W::Kat => Lang::KA,
        W::Ara => Lang::AR,
        W::Hin => Lang::HI,
        W::Jpn => Lang::JA,
        W::Heb => Lang::HE,
        W::Yid => Lang::YI,
        W::Pol => Lang::PL,
        W::Amh => Lang::AM,
        W::Jav => Lang::JV,
        W::Kor => Lang::KO,
        W::Nob => Lang::NB,
        W::Dan => Lang::DA,
        W::Swe => Lang::SV,
        W::Fin => Lang::FI,
        W::Tur => Lang::TR,
        W::Nld => Lang::NL,
        W::Hun => Lang::HU,
        W::Ces => Lang::CS,
        W::Ell => Lang::EL,
        W::Bul => Lang::BG,
        W::Bel => Lang::BE,
        W::Mar => Lang::MR,
        W::Kan => Lang::KN,
        W::Ron => Lang::RO,
        W::Slv => Lang::SL,
        W::Hrv => Lang::HR,
        W::Srp => Lang::SR,
        W::Mkd => Lang::MK,
        W::Lit => Lang::LT,
        W::Lav => Lang::LV,
        W::Est => Lang::ET,
        W::Tam => Lang::TA,
        W::Vie => Lang::VI,
        W::Urd => Lang::UR,
        W::Tha => Lang::TH,
        W::Guj => Lang::GU,
        W::Uzb => Lang::UZ,
        W::Pan => Lang::PA,
        W::Aze => Lang::AZ,
        W::Ind => Lang::ID,
        W::Tel => Lang::TE,
        W::Pes => Lang::FA,
        W::Mal => Lang::ML,
        W::Ori => Lang::OR,
        W::Mya => Lang::MY,
        W::Nep => Lang::NE,
        W::Sin => Lang::SI,
        W::Khm => Lang::KM,
        W::Tuk => Lang::TK,
        W::Aka => Lang::AK,
        W::Zul => Lang::ZU,
        W::Sna => Lang::SN,
        W::Afr => Lang::AF,
        W::Lat => Lang::LA,
        W::Slk => Lang::SK,
        W::Cat => Lang::CA,
        W::Tgl => Lang::TL,
        W::Hye => Lang::HY,
        W::Cym => Lang::CY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_agrees_with_whatlang_639_3_codes() {
        for &w in whatlang::Lang::all() {
            let ours = from_whatlang(w);
            // whatlang names Chinese by its individual language, Mandarin.
            assert_eq!(Lang::parse(w.code()), Ok(ours), "{w:?}");
        }
    }

    #[test]
    fn long_text_is_detected() {
        let d = detect(
            "The foreign minister said on Tuesday that the initiative would be presented \
             to other governments at a seminar in Beijing later this week.",
        );
        assert_eq!(d.lang, Some(Lang::EN));
        assert!(d.confidence.is_some_and(|c| c >= MIN_CONFIDENCE_LONG));
    }

    #[test]
    fn unique_scripts_are_detected_even_when_short() {
        assert_eq!(detect("데이터 안보 이니셔티브 발표").lang, Some(Lang::KO));
        assert_eq!(detect("จีนเปิดตัวโครงการความปลอดภัยข้อมูล").lang, Some(Lang::TH));
    }

    #[test]
    fn too_short_or_unsure_is_undetermined_but_reports_the_guess() {
        let d = detect("Hello");
        assert_eq!(d.lang, None);
        assert!(d.confidence.is_some());
        // A headline whatlang reads with low confidence.
        let d = detect("China tops medal table after first week");
        assert_eq!(d.lang, None, "{d:?}");
        assert!(d.confidence.is_some_and(|c| c <= RELIABLE));
    }

    #[test]
    fn nothing_to_detect() {
        let d = detect("123 456 !!!");
        assert_eq!(
            d,
            Detection {
                lang: None,
                confidence: None
            }
        );
        assert_eq!(detect("").lang, None);
    }
}
