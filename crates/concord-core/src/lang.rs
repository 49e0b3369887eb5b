//! Language codes: a [`Lang`] is always one known language, named by its ISO 639-1 code.
//!
//! The table holds every language whatlang 0.18 can detect (all of them have a 639-1 code)
//! plus a few common news languages it cannot detect, so a caller may still name them.
//! Parsing accepts 639-1 (`"en"`), 639-3 (`"eng"`, as in the OG2021 data), the 639-2/B
//! bibliographic variants (`"fre"`, `"ger"`, `"chi"`), the individual-language codes that
//! detectors report for a macrolanguage (`"cmn"` for Chinese, `"pes"` for Persian, `"arb"`
//! for Arabic) and BCP-47 or POSIX locale tags, of which only the primary subtag counts
//! (`"zh-CN"`, `"pt_BR"`).

use std::fmt;
use std::str::FromStr;

/// One known language. Stored as an index into a static table sorted by 639-1 code, so it
/// is `Copy`, one byte, and orders alphabetically by [`Lang::as_str`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Lang(u8);

/// A string that names no language in the table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown language {given:?}: expected an ISO 639-1 or 639-3 code or a BCP-47 tag such as \"en\", \"eng\" or \"pt-BR\""
)]
pub struct LangError {
    given: String,
}

impl LangError {
    /// Longest prefix of the rejected input kept in the error, in characters.
    const MAX_ECHO: usize = 64;

    fn new(given: &str) -> Self {
        let mut echo: String = given.chars().take(Self::MAX_ECHO).collect();
        if echo.len() < given.len() {
            echo.push('…');
        }
        Self { given: echo }
    }

    /// What the caller gave, cut to 64 characters.
    pub fn given(&self) -> &str {
        &self.given
    }
}

struct Entry {
    iso1: &'static str,
    iso3: &'static str,
    name: &'static str,
    /// Other three-letter codes that name the same language: 639-2/B variants and the
    /// individual languages detectors report for a macrolanguage.
    aliases: &'static [&'static str],
}

macro_rules! languages {
    ($( $konst:ident $iso1:literal $iso3:literal $name:literal [$($alias:literal),*] ;)*) => {
        /// Sorted by 639-1 code; a unit test checks it.
        const TABLE: &[Entry] = &[
            $( Entry { iso1: $iso1, iso3: $iso3, name: $name, aliases: &[$($alias),*] }, )*
        ];

        impl Lang {
            $(
                #[doc = $name]
                pub const $konst: Lang = Lang::known($iso1);
            )*
        }
    };
}

languages! {
    AF "af" "afr" "Afrikaans" [];
    AK "ak" "aka" "Akan" ["twi", "fat"];
    AM "am" "amh" "Amharic" [];
    AR "ar" "ara" "Arabic" ["arb"];
    AZ "az" "aze" "Azerbaijani" ["azj", "azb"];
    BE "be" "bel" "Belarusian" [];
    BG "bg" "bul" "Bulgarian" [];
    BN "bn" "ben" "Bengali" [];
    BS "bs" "bos" "Bosnian" [];
    CA "ca" "cat" "Catalan" [];
    CS "cs" "ces" "Czech" ["cze"];
    CY "cy" "cym" "Welsh" ["wel"];
    DA "da" "dan" "Danish" [];
    DE "de" "deu" "German" ["ger"];
    EL "el" "ell" "Greek" ["gre"];
    EN "en" "eng" "English" [];
    EO "eo" "epo" "Esperanto" [];
    ES "es" "spa" "Spanish" [];
    ET "et" "est" "Estonian" ["ekk"];
    EU "eu" "eus" "Basque" ["baq"];
    FA "fa" "fas" "Persian" ["per", "pes"];
    FI "fi" "fin" "Finnish" [];
    FR "fr" "fra" "French" ["fre"];
    GA "ga" "gle" "Irish" [];
    GL "gl" "glg" "Galician" [];
    GU "gu" "guj" "Gujarati" [];
    HE "he" "heb" "Hebrew" [];
    HI "hi" "hin" "Hindi" [];
    HR "hr" "hrv" "Croatian" [];
    HU "hu" "hun" "Hungarian" [];
    HY "hy" "hye" "Armenian" ["arm"];
    ID "id" "ind" "Indonesian" [];
    IS "is" "isl" "Icelandic" ["ice"];
    IT "it" "ita" "Italian" [];
    JA "ja" "jpn" "Japanese" [];
    JV "jv" "jav" "Javanese" [];
    KA "ka" "kat" "Georgian" ["geo"];
    KK "kk" "kaz" "Kazakh" [];
    KM "km" "khm" "Khmer" [];
    KN "kn" "kan" "Kannada" [];
    KO "ko" "kor" "Korean" [];
    KY "ky" "kir" "Kyrgyz" [];
    LA "la" "lat" "Latin" [];
    LO "lo" "lao" "Lao" [];
    LT "lt" "lit" "Lithuanian" [];
    LV "lv" "lav" "Latvian" ["lvs"];
    MK "mk" "mkd" "Macedonian" ["mac"];
    ML "ml" "mal" "Malayalam" [];
    MN "mn" "mon" "Mongolian" ["khk"];
    MR "mr" "mar" "Marathi" [];
    MS "ms" "msa" "Malay" ["may", "zsm"];
    MY "my" "mya" "Burmese" ["bur"];
    NB "nb" "nob" "Norwegian Bokmål" [];
    NE "ne" "nep" "Nepali" ["npi"];
    NL "nl" "nld" "Dutch" ["dut"];
    OR "or" "ori" "Odia" ["ory"];
    PA "pa" "pan" "Punjabi" [];
    PL "pl" "pol" "Polish" [];
    PS "ps" "pus" "Pashto" [];
    PT "pt" "por" "Portuguese" [];
    RO "ro" "ron" "Romanian" ["rum"];
    RU "ru" "rus" "Russian" [];
    SI "si" "sin" "Sinhala" [];
    SK "sk" "slk" "Slovak" ["slo"];
    SL "sl" "slv" "Slovenian" [];
    SN "sn" "sna" "Shona" [];
    SO "so" "som" "Somali" [];
    SQ "sq" "sqi" "Albanian" ["alb", "als"];
    SR "sr" "srp" "Serbian" [];
    SV "sv" "swe" "Swedish" [];
    SW "sw" "swa" "Swahili" ["swh"];
    TA "ta" "tam" "Tamil" [];
    TE "te" "tel" "Telugu" [];
    TH "th" "tha" "Thai" [];
    TK "tk" "tuk" "Turkmen" [];
    TL "tl" "tgl" "Tagalog" ["fil"];
    TR "tr" "tur" "Turkish" [];
    UK "uk" "ukr" "Ukrainian" [];
    UR "ur" "urd" "Urdu" [];
    UZ "uz" "uzb" "Uzbek" ["uzn"];
    VI "vi" "vie" "Vietnamese" [];
    YI "yi" "yid" "Yiddish" ["ydd"];
    ZH "zh" "zho" "Chinese" ["chi", "cmn"];
    ZU "zu" "zul" "Zulu" [];
}

// `Lang` indexes the table with a `u8`.
const _: () = assert!(TABLE.len() <= u8::MAX as usize);

const fn same_ascii(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

impl Lang {
    /// The constant for a 639-1 code of the table; evaluated at compile time only, where
    /// a missing code is a build error.
    const fn known(iso1: &str) -> Lang {
        let mut i = 0;
        while i < TABLE.len() {
            if same_ascii(TABLE[i].iso1, iso1) {
                return Lang(i as u8);
            }
            i += 1;
        }
        panic!("language constant missing from the table");
    }

    /// Reads a 639-1 or 639-3 code or a BCP-47 tag, ignoring ASCII case and surrounding
    /// whitespace: `"en"`, `"ENG"`, `"fre"`, `"zh-CN"`, `"pt_BR"`.
    pub fn parse(s: &str) -> Result<Lang, LangError> {
        let trimmed = s.trim();
        let primary = trimmed.split(['-', '_']).next().unwrap_or_default();
        if !(2..=3).contains(&primary.len()) || !primary.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(LangError::new(s));
        }
        let code = primary.to_ascii_lowercase();
        let found = TABLE
            .iter()
            .position(|e| e.iso1 == code || e.iso3 == code || e.aliases.iter().any(|a| *a == code));
        match found.and_then(|i| u8::try_from(i).ok()) {
            Some(i) => Ok(Lang(i)),
            None => Err(LangError::new(s)),
        }
    }

    fn entry(self) -> &'static Entry {
        // Every `Lang` is built from an index into `TABLE`: in bounds by construction.
        &TABLE[usize::from(self.0)]
    }

    /// ISO 639-1 code, lowercase: `"en"`.
    pub fn as_str(self) -> &'static str {
        self.entry().iso1
    }

    /// ISO 639-3 code, lowercase: `"eng"`.
    pub fn iso639_3(self) -> &'static str {
        self.entry().iso3
    }

    /// English name: `"English"`.
    pub fn english_name(self) -> &'static str {
        self.entry().name
    }

    /// Every known language, in 639-1 order.
    pub fn all() -> impl ExactSizeIterator<Item = Lang> + Clone {
        (0..TABLE.len() as u8).map(Lang)
    }
}

impl fmt::Debug for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Lang").field(&self.as_str()).finish()
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Lang {
    type Err = LangError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Lang::parse(s)
    }
}

impl serde::Serialize for Lang {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Lang {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl serde::de::Visitor<'_> for Visitor {
            type Value = Lang;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a language code such as \"en\", \"eng\" or \"pt-BR\"")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Lang, E> {
                Lang::parse(v).map_err(E::custom)
            }
        }

        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn table_is_sorted_unique_and_well_formed() {
        assert!(TABLE.len() <= usize::from(u8::MAX));
        for pair in TABLE.windows(2) {
            assert!(
                pair[0].iso1 < pair[1].iso1,
                "{} before {}",
                pair[0].iso1,
                pair[1].iso1
            );
        }
        let mut three: Vec<&str> = TABLE
            .iter()
            .flat_map(|e| std::iter::once(e.iso3).chain(e.aliases.iter().copied()))
            .collect();
        for code in &three {
            assert_eq!(code.len(), 3, "{code}");
            assert!(code.bytes().all(|b| b.is_ascii_lowercase()), "{code}");
        }
        for e in TABLE {
            assert_eq!(e.iso1.len(), 2, "{}", e.iso1);
            assert!(e.iso1.bytes().all(|b| b.is_ascii_lowercase()), "{}", e.iso1);
        }
        let before = three.len();
        three.sort_unstable();
        three.dedup();
        assert_eq!(
            three.len(),
            before,
            "a three-letter code names two languages"
        );
    }

    #[test]
    fn parses_639_1_and_639_3_case_insensitively() {
        for (given, want) in [
            ("en", "en"),
            ("EN", "en"),
            ("eng", "en"),
            ("por", "pt"),
            ("spa", "es"),
            ("fra", "fr"),
            ("rus", "ru"),
            ("deu", "de"),
            ("slv", "sl"),
            ("ara", "ar"),
            ("zho", "zh"),
            ("Zho", "zh"),
            ("ko", "ko"),
            ("th", "th"),
            ("tr", "tr"),
        ] {
            assert_eq!(Lang::parse(given).map(Lang::as_str), Ok(want), "{given}");
        }
    }

    #[test]
    fn parses_aliases_and_bcp47_primary_subtag() {
        assert_eq!(Lang::parse("fre"), Ok(Lang::FR));
        assert_eq!(Lang::parse("ger"), Ok(Lang::DE));
        assert_eq!(Lang::parse("chi"), Ok(Lang::ZH));
        assert_eq!(Lang::parse("cmn"), Ok(Lang::ZH));
        assert_eq!(Lang::parse("pes"), Ok(Lang::FA));
        assert_eq!(Lang::parse("zh-CN"), Ok(Lang::ZH));
        assert_eq!(Lang::parse("zh-Hant-TW"), Ok(Lang::ZH));
        assert_eq!(Lang::parse("pt-BR"), Ok(Lang::PT));
        assert_eq!(Lang::parse("pt_BR"), Ok(Lang::PT));
        assert_eq!(Lang::parse(" en "), Ok(Lang::EN));
    }

    #[test]
    fn rejects_unknown_and_malformed_and_says_what_was_given() {
        for bad in [
            "", "-", "e", "xx", "xyz", "english", "-en", "e1", "日本", "enG1", "e n",
        ] {
            let err = Lang::parse(bad).expect_err(bad);
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
            assert_eq!(err.given(), bad);
        }
    }

    #[test]
    fn error_echo_is_bounded() {
        let long = "x".repeat(10_000);
        let err = Lang::parse(&long).expect_err("too long");
        assert!(err.given().chars().count() <= LangError::MAX_ECHO + 1);
        assert!(err.to_string().len() < 300);
    }

    #[test]
    fn accessors_display_and_debug() {
        assert_eq!(Lang::KO.as_str(), "ko");
        assert_eq!(Lang::KO.iso639_3(), "kor");
        assert_eq!(Lang::KO.english_name(), "Korean");
        assert_eq!(Lang::ZH.iso639_3(), "zho");
        assert_eq!(Lang::AR.to_string(), "ar");
        assert_eq!(format!("{:?}", Lang::AR), "Lang(\"ar\")");
        assert_eq!("sl".parse::<Lang>(), Ok(Lang::SL));
        assert!(Lang::EN < Lang::FR);
        assert_eq!(Lang::all().len(), TABLE.len());
    }

    #[test]
    fn serde_is_the_639_1_string_and_deserialize_parses() {
        assert_eq!(serde_json::to_string(&Lang::PT).unwrap(), "\"pt\"");
        let langs: Vec<Lang> = serde_json::from_str(r#"["en", "fra", "zh-CN"]"#).unwrap();
        assert_eq!(langs, vec![Lang::EN, Lang::FR, Lang::ZH]);
        let err = serde_json::from_str::<Lang>("\"klingon\"").unwrap_err();
        assert!(err.to_string().contains("klingon"), "{err}");
        assert!(serde_json::from_str::<Lang>("42").is_err());
    }

    proptest! {
        #[test]
        fn as_str_and_iso639_3_roundtrip(i in 0..TABLE.len()) {
            let lang = Lang::all().nth(i).unwrap();
            prop_assert_eq!(Lang::parse(lang.as_str()), Ok(lang));
            prop_assert_eq!(Lang::parse(lang.iso639_3()), Ok(lang));
            prop_assert_eq!(Lang::parse(&lang.as_str().to_uppercase()), Ok(lang));
            prop_assert_eq!(lang.to_string().parse::<Lang>(), Ok(lang));
            let json = serde_json::to_string(&lang).unwrap();
            prop_assert_eq!(serde_json::from_str::<Lang>(&json).unwrap(), lang);
        }

        #[test]
        fn parse_never_panics(s in any::<String>()) {
            if let Ok(lang) = Lang::parse(&s) {
                prop_assert_eq!(Lang::parse(lang.as_str()), Ok(lang));
            }
        }

        #[test]
        fn parse_never_panics_on_code_like_strings(s in "[a-zA-Z_\\- ]{0,12}") {
            let _ = Lang::parse(&s);
        }
    }
}
