//! Cleaning: the per-document steps (HTML, normalization, control characters, whitespace,
//! length, language, quality) run in parallel over each batch; exact and near-duplicate
//! removal need the whole corpus and live in the stage's driver, using [`ExactDedup`] and
//! [`near_dedup`]. Every step is recorded with documents and characters in and out.

pub mod html;
pub mod language;
pub mod near_dedup;
pub mod quality;

use std::collections::{BTreeMap, HashSet};

use pipelines::{CleanParams, Normalize, QualityParams};
use rayon::prelude::*;
use unicode_normalization::UnicodeNormalization;

use super::doc::Doc;
use super::error::DataError;
use super::stats::StepStats;

/// One per-document step.
enum Step {
    Html,
    Nfc,
    Nfkc,
    Control,
    Whitespace,
    MinChars(usize),
    MaxChars(usize),
    Language {
        allow: Vec<whatlang::Lang>,
        min_confidence: f64,
    },
    Quality(QualityParams),
}

impl Step {
    fn name(&self) -> &'static str {
        match self {
            Step::Html => "strip_html",
            Step::Nfc => "normalize_nfc",
            Step::Nfkc => "normalize_nfkc",
            Step::Control => "strip_control",
            Step::Whitespace => "collapse_whitespace",
            Step::MinChars(_) => "min_chars",
            Step::MaxChars(_) => "max_chars",
            Step::Language { .. } => "language",
            Step::Quality(_) => "quality",
        }
    }

    /// Rewrites the document (`Ok(true)` if it changed) or gives the reason it is dropped.
    fn apply(&self, doc: &mut Doc, chars: usize) -> Result<bool, &'static str> {
        let rewrite = |doc: &mut Doc, f: &dyn Fn(&str) -> String| {
            let mut changed = false;
            for field in &mut doc.fields {
                let new = f(field);
                if new != *field {
                    changed = true;
                    *field = new;
                }
            }
            changed
        };
        match self {
            Step::Html => Ok(rewrite(doc, &html::strip_html)),
            Step::Nfc => Ok(rewrite(doc, &|s: &str| s.nfc().collect::<String>())),
            Step::Nfkc => Ok(rewrite(doc, &|s: &str| s.nfkc().collect::<String>())),
            Step::Control => Ok(rewrite(doc, &strip_control)),
            Step::Whitespace => Ok(rewrite(doc, &collapse_whitespace)),
            Step::MinChars(min) if chars < *min => Err("too_short"),
            Step::MaxChars(max) if chars > *max => Err("too_long"),
            Step::MinChars(_) | Step::MaxChars(_) => Ok(false),
            Step::Language {
                allow,
                min_confidence,
            } => language::check(&doc.joined(), allow, *min_confidence).map(|()| false),
            Step::Quality(q) => quality::check(&doc.joined(), q).map(|()| false),
        }
    }
}

/// The per-document steps of a stage, in order.
pub struct Cleaner {
    steps: Vec<Step>,
}

/// Counts of one step over some documents; adds up across batches.
#[derive(Debug, Clone, Default, PartialEq)]
struct Counts {
    documents_in: usize,
    documents_out: usize,
    chars_in: usize,
    chars_out: usize,
    changed: usize,
}

/// What the per-document steps did to a batch.
#[derive(Debug, Default)]
pub struct Tally {
    counts: Vec<Counts>,
    /// Removal reason → documents.
    pub removed: BTreeMap<String, usize>,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), Counts::default());
        }
        for (a, b) in self.counts.iter_mut().zip(other.counts) {
            a.documents_in += b.documents_in;
            a.documents_out += b.documents_out;
            a.chars_in += b.chars_in;
            a.chars_out += b.chars_out;
            a.changed += b.changed;
        }
        for (reason, n) in other.removed {
            *self.removed.entry(reason).or_default() += n;
        }
    }
}

/// A document that passed the per-document steps, with what later steps need.
pub struct Cleaned {
    pub doc: Doc,
    pub chars: usize,
    pub hash: [u8; 32],
}

impl Cleaner {
    /// The steps `params` turns on; an unknown language code is an error naming the known ones.
    pub fn new(params: &CleanParams) -> Result<Cleaner, DataError> {
        let mut steps = Vec::new();
        if params.strip_html {
            steps.push(Step::Html);
        }
        match params.normalize {
            Normalize::Nfc => steps.push(Step::Nfc),
            Normalize::Nfkc => steps.push(Step::Nfkc),
            Normalize::None => {}
        }
        if params.strip_control {
            steps.push(Step::Control);
        }
        if params.collapse_whitespace {
            steps.push(Step::Whitespace);
        }
        steps.push(Step::MinChars(params.min_chars));
        if let Some(max) = params.max_chars {
            steps.push(Step::MaxChars(max));
        }
        if let Some(codes) = &params.languages {
            let mut allow = Vec::new();
            for code in codes {
                allow.push(
                    language::parse(code).ok_or_else(|| DataError::UnknownLanguage {
                        code: code.clone(),
                        known: language::known_codes().join(", "),
                    })?,
                );
            }
            steps.push(Step::Language {
                allow,
                min_confidence: params.min_language_confidence,
            });
        }
        if let Some(q) = &params.quality {
            steps.push(Step::Quality(q.clone()));
        }
        Ok(Cleaner { steps })
    }

    /// Runs every step over `docs` on the current rayon pool. The survivors come back in
    /// input order.
    pub fn run(&self, docs: Vec<Doc>, tally: &mut Tally) -> Vec<Cleaned> {
        let results: Vec<(Option<Cleaned>, Tally)> =
            docs.into_par_iter().map(|doc| self.one(doc)).collect();
        let mut kept = Vec::with_capacity(results.len());
        for (doc, t) in results {
            tally.add(t);
            kept.extend(doc);
        }
        kept
    }

    fn one(&self, mut doc: Doc) -> (Option<Cleaned>, Tally) {
        let mut tally = Tally {
            counts: vec![Counts::default(); self.steps.len()],
            removed: BTreeMap::new(),
        };
        let mut chars = doc.chars();
        for (step, counts) in self.steps.iter().zip(&mut tally.counts) {
            counts.documents_in += 1;
            counts.chars_in += chars;
            match step.apply(&mut doc, chars) {
                Ok(changed) => {
                    if changed {
                        counts.changed += 1;
                        chars = doc.chars();
                    }
                    counts.documents_out += 1;
                    counts.chars_out += chars;
                }
                Err(reason) => {
                    tally.removed.insert(reason.to_string(), 1);
                    return (None, tally);
                }
            }
        }
        let hash = doc.content_hash();
        (Some(Cleaned { doc, chars, hash }), tally)
    }

    /// The steps' records, in order, from what [`Cleaner::run`] tallied.
    pub fn steps(&self, tally: &Tally) -> Vec<StepStats> {
        self.steps
            .iter()
            .enumerate()
            .map(|(i, step)| {
                let c = tally.counts.get(i).cloned().unwrap_or_default();
                StepStats {
                    name: step.name().to_string(),
                    documents_in: c.documents_in,
                    documents_out: c.documents_out,
                    chars_in: c.chars_in,
                    chars_out: c.chars_out,
                    changed: c.changed,
                }
            })
            .collect()
    }
}

/// Exact deduplication across batches: remembers 128 bits of each content hash (a collision
/// among 2^40 documents has odds around 10^-15).
#[derive(Default)]
pub struct ExactDedup {
    seen: HashSet<u128>,
    pub stats: Flow,
}

/// Documents and characters in and out of a corpus-wide step.
#[derive(Debug, Default, Clone)]
pub struct Flow {
    pub documents_in: usize,
    pub documents_out: usize,
    pub chars_in: usize,
    pub chars_out: usize,
}

impl Flow {
    pub fn into_step(self, name: &str) -> StepStats {
        StepStats {
            name: name.to_string(),
            documents_in: self.documents_in,
            documents_out: self.documents_out,
            chars_in: self.chars_in,
            chars_out: self.chars_out,
            changed: 0,
        }
    }
}

impl ExactDedup {
    /// Keeps the first of each content in `docs` (and drops what earlier batches had).
    pub fn filter(&mut self, docs: Vec<Cleaned>) -> Vec<Cleaned> {
        let mut out = Vec::with_capacity(docs.len());
        for d in docs {
            self.stats.documents_in += 1;
            self.stats.chars_in += d.chars;
            if self.seen.insert(key(&d.hash)) {
                self.stats.documents_out += 1;
                self.stats.chars_out += d.chars;
                out.push(d);
            }
        }
        out
    }
}

/// The first 128 bits of a content hash, as a number.
pub fn key(hash: &[u8; 32]) -> u128 {
    let mut k = [0u8; 16];
    k.copy_from_slice(&hash[..16]);
    u128::from_be_bytes(k)
}

/// Drops control characters except newline and tab (`\r\n` and lone `\r` become `\n`).
pub fn strip_control(s: &str) -> String {
    let s = s.replace("\r\n", "\n").replace('\r', "\n");
    s.chars()
        .filter(|&c| c == '\n' || c == '\t' || !c.is_control())
        .collect()
}

/// Runs of spaces and tabs become one space, lines lose trailing spaces, at most one blank line
/// in a row is kept, and the ends are trimmed.
pub fn collapse_whitespace(s: &str) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut blank_run = 0;
    for line in s.lines() {
        let collapsed = line
            .split([' ', '\t'])
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>();
        let line = collapsed.join(" ");
        if line.is_empty() {
            blank_run += 1;
            if blank_run > 1 {
                continue;
            }
        } else {
            blank_run = 0;
        }
        lines.push(line);
    }
    lines.join("\n").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::data::stats::Stats;
    use pipelines::Dedup;

    /// The per-document steps, then exact dedup when `params` asks for it, as the driver
    /// runs them.
    fn clean(docs: Vec<Doc>, params: &CleanParams, stats: &mut Stats) -> Vec<Doc> {
        let cleaner = Cleaner::new(params).expect("cleaner");
        let mut tally = Tally::default();
        let mut kept = cleaner.run(docs, &mut tally);
        stats.steps = cleaner.steps(&tally);
        stats.removed = tally.removed;
        if params.dedup == Dedup::Exact {
            let mut dedup = ExactDedup::default();
            kept = dedup.filter(kept);
            let step = dedup.stats.clone().into_step("dedup_exact");
            let removed = step.documents_in - step.documents_out;
            if removed > 0 {
                stats.removed.insert("duplicate".to_string(), removed);
            }
            stats.steps.push(step);
        }
        kept.into_iter().map(|c| c.doc).collect()
    }

    fn docs(texts: &[&str]) -> Vec<Doc> {
        texts
            .iter()
            .map(|t| Doc::text(t.to_string(), None))
            .collect()
    }

    fn texts(docs: &[Doc]) -> Vec<&str> {
        docs.iter().map(|d| d.fields[0].as_str()).collect()
    }

    fn params() -> CleanParams {
        CleanParams::default()
    }

    #[test]
    fn nfc_composes_and_nfkc_folds_compatibility_forms() {
        let mut stats = Stats::default();
        let out = clean(docs(&["cafe\u{301}", "ﬁne"]), &params(), &mut stats);
        assert_eq!(texts(&out), ["café", "ﬁne"]);
        assert_eq!(stats.steps[0].name, "normalize_nfc");
        assert_eq!(stats.steps[0].changed, 1);
        assert_eq!((stats.steps[0].chars_in, stats.steps[0].chars_out), (8, 7));

        let mut p = params();
        p.normalize = Normalize::Nfkc;
        let mut stats = Stats::default();
        assert_eq!(texts(&clean(docs(&["ﬁne"]), &p, &mut stats)), ["fine"]);
    }

    #[test]
    fn control_characters_go_newlines_and_tabs_stay() {
        let mut stats = Stats::default();
        let out = clean(docs(&["a\u{0}b\r\nc\td\u{7}"]), &params(), &mut stats);
        assert_eq!(texts(&out), ["ab\nc\td"]);
        let step = stats
            .steps
            .iter()
            .find(|s| s.name == "strip_control")
            .expect("step");
        assert_eq!((step.changed, step.chars_in, step.chars_out), (1, 9, 6));
    }

    #[test]
    fn whitespace_collapses_only_when_asked() {
        let input = "  a  \t b \n\n\n\nc   ";
        let mut stats = Stats::default();
        assert_eq!(
            texts(&clean(docs(&[input]), &params(), &mut stats)),
            [input]
        );
        let mut p = params();
        p.collapse_whitespace = true;
        let mut stats = Stats::default();
        assert_eq!(texts(&clean(docs(&[input]), &p, &mut stats)), ["a b\n\nc"]);
    }

    #[test]
    fn length_filters_and_dedup_count_their_removals() {
        let mut p = params();
        p.min_chars = 3;
        p.max_chars = Some(5);
        let mut stats = Stats::default();
        let out = clean(
            docs(&["ab", "abc", "abcdef", "abc", "", "abcde"]),
            &p,
            &mut stats,
        );
        assert_eq!(texts(&out), ["abc", "abcde"]);
        assert_eq!(stats.removed.get("too_short"), Some(&2));
        assert_eq!(stats.removed.get("too_long"), Some(&1));
        assert_eq!(stats.removed.get("duplicate"), Some(&1));
        let dedup = stats.steps.last().expect("steps");
        assert_eq!(
            (dedup.name.as_str(), dedup.documents_in, dedup.documents_out),
            ("dedup_exact", 3, 2)
        );

        p.dedup = Dedup::None;
        let mut stats = Stats::default();
        assert_eq!(clean(docs(&["abc", "abc"]), &p, &mut stats).len(), 2);
        assert!(stats.removed.is_empty());
    }

    #[test]
    fn html_language_and_quality_steps_count_what_they_do() {
        let mut p = params();
        p.strip_html = true;
        p.languages = Some(vec!["en".to_string()]);
        p.quality = Some(QualityParams {
            min_words: Some(5),
            ..QualityParams::default()
        });
        let english = "<p>The farmer walked to the market with his old dog.</p>";
        let german = "Der Bauer ging mit seinem alten Hund auf den Markt und kaufte Brot.";
        let listy = "- remember to buy apples and pears for the children\n\
                     - remember to buy bread with honey for the morning\n\
                     - remember to take the dog for a walk in the park";
        let mut stats = Stats::default();
        let out = clean(docs(&[english, german, listy]), &p, &mut stats);
        assert_eq!(
            texts(&out),
            ["The farmer walked to the market with his old dog."]
        );
        let step = |name: &str| {
            stats
                .steps
                .iter()
                .find(|s| s.name == name)
                .unwrap_or_else(|| panic!("no step {name}"))
        };
        assert_eq!(step("strip_html").changed, 1);
        assert_eq!(
            (
                step("language").documents_in,
                step("language").documents_out
            ),
            (3, 2)
        );
        assert_eq!(
            (step("quality").documents_in, step("quality").documents_out),
            (2, 1)
        );
        assert_eq!(stats.removed.get("language"), Some(&1));
        assert_eq!(stats.removed.get("quality_bullet_lines"), Some(&1));
    }

    #[test]
    fn an_unknown_language_code_is_an_error_listing_the_known_ones() {
        let mut p = params();
        p.languages = Some(vec!["klingon".to_string()]);
        let err = Cleaner::new(&p).err().expect("error").to_string();
        assert!(err.contains("klingon") && err.contains("en, "), "{err}");
    }
}
