//! `binarylm show <data stage>`: the artifact's `stats.json` as text — what each source
//! gave, what each step did, why documents were removed, the length distribution as a bar
//! chart, and a few sample records.

use std::fmt::Write;
use std::path::Path;

use super::stats::Stats;
use super::STATS_FILE;

/// Widest bar of the length histogram, in characters.
const BAR_WIDTH: usize = 40;
/// Characters of a sample shown per field (the stats keep a little more).
const SAMPLE_SHOWN: usize = 240;

/// The report for the data artifact in `dir`.
pub fn render(dir: &Path) -> Result<String, String> {
    let path = dir.join(STATS_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let stats: Stats =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(render_stats(&stats))
}

pub fn render_stats(s: &Stats) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "sources");
    for src in &s.sources {
        let nulls = if src.null_rows > 0 {
            format!(", {} null rows skipped", n(src.null_rows))
        } else {
            String::new()
        };
        let _ = writeln!(
            o,
            "  {:<44} {:>10} docs {:>14} chars{nulls}",
            src.source,
            n(src.documents),
            n(src.chars)
        );
    }
    if s.repaired_utf8_documents > 0 {
        let _ = writeln!(
            o,
            "  invalid UTF-8 repaired (U+FFFD) in {} documents",
            n(s.repaired_utf8_documents)
        );
    }
    let _ = writeln!(
        o,
        "steps {:>33} {:>31}",
        "documents in → out", "characters in → out"
    );
    for st in &s.steps {
        let changed = if st.changed > 0 {
            format!("  ({} rewritten)", n(st.changed))
        } else {
            String::new()
        };
        let _ = writeln!(
            o,
            "  {:<20} {:>10} → {:<10} {:>14} → {:<14}{changed}",
            st.name,
            n(st.documents_in),
            n(st.documents_out),
            n(st.chars_in),
            n(st.chars_out)
        );
    }
    if let Some(l) = &s.near_dedup {
        let _ = writeln!(
            o,
            "  (near-duplicates: {} permutations as {} bands × {} rows)",
            l.permutations, l.bands, l.rows
        );
    }
    if !s.removed.is_empty() {
        let _ = writeln!(o, "removed");
        for (reason, count) in &s.removed {
            let _ = writeln!(o, "  {reason:<28} {:>10}", n(*count));
        }
    }
    let _ = writeln!(o, "splits");
    for (name, sp) in [("train", &s.train), ("val", &s.val)] {
        let _ = writeln!(
            o,
            "  {name:<6} {:>10} docs {:>14} chars",
            n(sp.documents),
            n(sp.chars)
        );
    }
    let max = s
        .length_histogram
        .iter()
        .map(|b| b.documents)
        .max()
        .unwrap_or(0);
    if max > 0 {
        let _ = writeln!(o, "document length (characters)");
        let first = s
            .length_histogram
            .iter()
            .position(|b| b.documents > 0)
            .unwrap_or(0);
        for b in &s.length_histogram[first..] {
            let width = (b.documents * BAR_WIDTH).div_ceil(max);
            let _ = writeln!(
                o,
                "  {:>8} – {:<8} {:<w$} {}",
                n(b.min_chars),
                n(b.max_chars),
                "█".repeat(width),
                n(b.documents),
                w = BAR_WIDTH
            );
        }
    }
    if !s.samples.is_empty() {
        let _ = writeln!(o, "samples (train)");
        for (i, sample) in s.samples.iter().enumerate() {
            for (j, field) in sample.iter().enumerate() {
                let label = match s.columns.get(j) {
                    Some(c) if s.columns.len() > 1 => format!("{c}: "),
                    _ => String::new(),
                };
                let lead = if j == 0 {
                    format!("  [{}] ", i + 1)
                } else {
                    "      ".to_string()
                };
                let _ = writeln!(o, "{lead}{label}{}", one_line(field));
            }
        }
    }
    o
}

/// A field on one line: newlines shown as `⏎`, cut at [`SAMPLE_SHOWN`] characters.
fn one_line(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(SAMPLE_SHOWN)
        .map(|c| if c == '\n' { '⏎' } else { c })
        .collect();
    if s.chars().count() > SAMPLE_SHOWN {
        out.push('…');
    }
    out
}

/// 1234567 → "1,234,567".
fn n(v: usize) -> String {
    let digits = v.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::data::stats::{Bucket, SourceStats, StepStats};

    #[test]
    fn the_report_shows_steps_reasons_bars_and_samples() {
        let mut s = Stats {
            columns: vec!["text".to_string()],
            samples: vec![vec!["first line\nsecond line".to_string()]],
            ..Stats::default()
        };
        s.sources.push(SourceStats {
            source: "path: texts/".to_string(),
            documents: 1200,
            chars: 1_234_567,
            bytes: 1_234_567,
            null_rows: 0,
        });
        s.steps.push(StepStats {
            name: "dedup_exact".to_string(),
            documents_in: 1200,
            documents_out: 1000,
            chars_in: 1_234_567,
            chars_out: 1_000_000,
            changed: 0,
        });
        s.removed.insert("duplicate".to_string(), 200);
        s.length_histogram = vec![
            Bucket {
                min_chars: 1,
                max_chars: 1,
                documents: 0,
            },
            Bucket {
                min_chars: 2,
                max_chars: 3,
                documents: 10,
            },
            Bucket {
                min_chars: 4,
                max_chars: 7,
                documents: 5,
            },
        ];
        let text = render_stats(&s);
        assert!(text.contains("1,234,567"), "{text}");
        assert!(
            text.contains("dedup_exact") && text.contains("1,200 → 1,000"),
            "{text}"
        );
        assert!(text.contains("duplicate") && text.contains("200"), "{text}");
        assert!(text.contains(&"█".repeat(BAR_WIDTH)), "{text}");
        let half = text
            .lines()
            .find(|l| l.contains("4 – 7"))
            .expect("bucket line");
        assert_eq!(half.matches('█').count(), BAR_WIDTH / 2, "{text}");
        assert!(
            !text.contains("   1 – 1 "),
            "empty leading buckets are skipped: {text}"
        );
        assert!(text.contains("[1] first line⏎second line"), "{text}");
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(n(0), "0");
        assert_eq!(n(999), "999");
        assert_eq!(n(1000), "1,000");
        assert_eq!(n(12_345_678), "12,345,678");
    }
}
