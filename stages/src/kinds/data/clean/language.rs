//! Language identification with whatlang (trigram profiles over 69 languages).

use whatlang::Lang;

/// Bytes of a document looked at: detection is linear in the text and a few kilobytes decide
/// it as well as the whole document does.
const SAMPLE_BYTES: usize = 4096;

/// ISO 639-1 codes of the languages whatlang knows, with their 639-3 form.
const ISO_639_1: &[(&str, &str)] = &[
    ("af", "afr"),
    ("ak", "aka"),
    ("am", "amh"),
    ("ar", "ara"),
    ("az", "aze"),
    ("be", "bel"),
    ("bg", "bul"),
    ("bn", "ben"),
    ("ca", "cat"),
    ("cs", "ces"),
    ("da", "dan"),
    ("de", "deu"),
    ("el", "ell"),
    ("en", "eng"),
    ("eo", "epo"),
    ("es", "spa"),
    ("et", "est"),
    ("fa", "pes"),
    ("fi", "fin"),
    ("fr", "fra"),
    ("gu", "guj"),
    ("he", "heb"),
    ("hi", "hin"),
    ("hr", "hrv"),
    ("hu", "hun"),
    ("hy", "hye"),
    ("id", "ind"),
    ("it", "ita"),
    ("ja", "jpn"),
    ("jv", "jav"),
    ("ka", "kat"),
    ("km", "khm"),
    ("kn", "kan"),
    ("ko", "kor"),
    ("la", "lat"),
    ("lt", "lit"),
    ("lv", "lav"),
    ("mk", "mkd"),
    ("ml", "mal"),
    ("mr", "mar"),
    ("my", "mya"),
    ("nb", "nob"),
    ("ne", "nep"),
    ("nl", "nld"),
    ("no", "nob"),
    ("or", "ori"),
    ("pa", "pan"),
    ("pl", "pol"),
    ("pt", "por"),
    ("ro", "ron"),
    ("ru", "rus"),
    ("si", "sin"),
    ("sk", "slk"),
    ("sl", "slv"),
    ("sn", "sna"),
    ("sr", "srp"),
    ("sv", "swe"),
    ("ta", "tam"),
    ("te", "tel"),
    ("th", "tha"),
    ("tk", "tuk"),
    ("tl", "tgl"),
    ("tr", "tur"),
    ("uk", "ukr"),
    ("ur", "urd"),
    ("uz", "uzb"),
    ("vi", "vie"),
    ("yi", "yid"),
    ("zh", "cmn"),
    ("zu", "zul"),
];

/// The language of a code as users write it (`en`, `eng`, `EN`), or `None` if whatlang does
/// not know it.
pub fn parse(code: &str) -> Option<Lang> {
    let code = code.trim().to_ascii_lowercase();
    let three = ISO_639_1
        .iter()
        .find(|(two, _)| *two == code)
        .map_or(code.as_str(), |(_, three)| three);
    Lang::from_code(three)
}

/// Every code [`parse`] accepts in its two-letter form, for error messages.
pub fn known_codes() -> Vec<&'static str> {
    ISO_639_1.iter().map(|(two, _)| *two).collect()
}

/// Why a document fails the filter, if it does.
pub fn check(text: &str, allow: &[Lang], min_confidence: f64) -> Result<(), &'static str> {
    let mut end = text.len().min(SAMPLE_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    match whatlang::detect(&text[..end]) {
        Some(info) if allow.contains(&info.lang()) => {
            if info.confidence() >= min_confidence {
                Ok(())
            } else {
                Err("language_uncertain")
            }
        }
        _ => Err("language"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_in_both_forms() {
        assert_eq!(parse("en"), Some(Lang::Eng));
        assert_eq!(parse("ENG"), Some(Lang::Eng));
        assert_eq!(parse("de"), Some(Lang::Deu));
        assert_eq!(parse("xx"), None);
        assert!(known_codes().contains(&"fr"));
    }

    #[test]
    fn english_passes_and_german_does_not() {
        let en =
            "The quick brown fox jumps over the lazy dog while the farmer watches from the barn.";
        let de =
            "Der schnelle braune Fuchs springt über den faulen Hund, während der Bauer zusieht.";
        assert_eq!(check(en, &[Lang::Eng], 0.0), Ok(()));
        assert_eq!(check(de, &[Lang::Eng], 0.0), Err("language"));
        assert_eq!(check(de, &[Lang::Eng, Lang::Deu], 0.0), Ok(()));
        assert_eq!(check(en, &[Lang::Eng], 1.01), Err("language_uncertain"));
    }
}
