//! Cleaning steps, each recorded with documents and characters in and out: Unicode
//! normalization, control characters, whitespace, length filters, exact deduplication.

use std::collections::HashSet;

use pipelines::{CleanParams, Dedup, Normalize};
use unicode_normalization::UnicodeNormalization;

use super::doc::Doc;
use super::stats::{Stats, StepStats};

/// Applies every step of `params` in order, recording each in `stats`.
pub fn clean(mut docs: Vec<Doc>, params: &CleanParams, stats: &mut Stats) -> Vec<Doc> {
    match params.normalize {
        Normalize::Nfc => docs = map_step(docs, "normalize_nfc", stats, |s| s.nfc().collect()),
        Normalize::Nfkc => docs = map_step(docs, "normalize_nfkc", stats, |s| s.nfkc().collect()),
        Normalize::None => {}
    }
    if params.strip_control {
        docs = map_step(docs, "strip_control", stats, strip_control);
    }
    if params.collapse_whitespace {
        docs = map_step(docs, "collapse_whitespace", stats, collapse_whitespace);
    }
    let min = params.min_chars;
    docs = filter_step(docs, "min_chars", "too_short", stats, |d| d.chars() >= min);
    if let Some(max) = params.max_chars {
        docs = filter_step(docs, "max_chars", "too_long", stats, |d| d.chars() <= max);
    }
    if params.dedup == Dedup::Exact {
        let mut seen = HashSet::new();
        docs = filter_step(docs, "dedup_exact", "duplicate", stats, |d| {
            seen.insert(d.content_hash())
        });
    }
    docs
}

/// A step that rewrites every field; `changed` counts the documents it altered.
fn map_step(docs: Vec<Doc>, name: &str, stats: &mut Stats, f: impl Fn(&str) -> String) -> Vec<Doc> {
    let mut step = StepStats::start(name, &docs);
    let out: Vec<Doc> = docs
        .into_iter()
        .map(|mut d| {
            let mut changed = false;
            for field in &mut d.fields {
                let new = f(field);
                if new != *field {
                    changed = true;
                    *field = new;
                }
            }
            step.changed += usize::from(changed);
            d
        })
        .collect();
    step.finish(&out);
    stats.steps.push(step);
    out
}

/// A step that drops documents; each dropped one counts under `reason`.
fn filter_step(
    docs: Vec<Doc>,
    name: &str,
    reason: &str,
    stats: &mut Stats,
    mut keep: impl FnMut(&Doc) -> bool,
) -> Vec<Doc> {
    let mut step = StepStats::start(name, &docs);
    let out: Vec<Doc> = docs.into_iter().filter(|d| keep(d)).collect();
    step.finish(&out);
    let removed = step.documents_in - step.documents_out;
    if removed > 0 {
        *stats.removed.entry(reason.to_string()).or_default() += removed;
    }
    stats.steps.push(step);
    out
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
}
