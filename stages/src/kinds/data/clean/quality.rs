//! Gopher-style document quality heuristics (Rae et al. 2021, "Scaling Language Models",
//! appendix A): cheap statistics of words and lines that separate prose from boilerplate,
//! lists, tables of symbols and machine-generated repetition.

use std::collections::HashSet;

use pipelines::QualityParams;

const BULLETS: &[char] = &['•', '-', '*', '‣', '◦', '·', '●', '▪', '–'];
const STOP_WORDS: &[&str] = &["the", "be", "to", "of", "and", "that", "have", "with"];

/// The removal reason of the first check `text` fails, or `Ok` if it passes them all.
pub fn check(text: &str, q: &QualityParams) -> Result<(), &'static str> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let n = words.len();
    if q.min_words.is_some_and(|min| n < min) || q.max_words.is_some_and(|max| n > max) {
        return Err("quality_word_count");
    }
    if n > 0 {
        let mean = words.iter().map(|w| w.chars().count()).sum::<usize>() as f64 / n as f64;
        if q.min_mean_word_length.is_some_and(|min| mean < min)
            || q.max_mean_word_length.is_some_and(|max| mean > max)
        {
            return Err("quality_mean_word_length");
        }
    }
    if let Some(max) = q.max_symbol_word_ratio {
        let symbols =
            text.matches('#').count() + text.matches("...").count() + text.matches('…').count();
        if symbols as f64 > max * n.max(1) as f64 {
            return Err("quality_symbol_ratio");
        }
    }
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let share = |count: usize| count as f64 / lines.len().max(1) as f64;
    if let Some(max) = q.max_bullet_lines {
        let bullets = lines.iter().filter(|l| l.starts_with(BULLETS)).count();
        if share(bullets) > max {
            return Err("quality_bullet_lines");
        }
    }
    if let Some(max) = q.max_ellipsis_lines {
        let ellipses = lines
            .iter()
            .filter(|l| l.ends_with("...") || l.ends_with('…'))
            .count();
        if share(ellipses) > max {
            return Err("quality_ellipsis_lines");
        }
    }
    if let Some(min) = q.min_alpha_words {
        let alpha = words
            .iter()
            .filter(|w| w.chars().any(char::is_alphabetic))
            .count();
        if n > 0 && (alpha as f64) < min * n as f64 {
            return Err("quality_alpha_words");
        }
    }
    if let Some(max) = q.max_duplicate_lines {
        let mut seen = HashSet::new();
        let repeated = lines.iter().filter(|l| !seen.insert(**l)).count();
        if share(repeated) > max {
            return Err("quality_duplicate_lines");
        }
    }
    if let Some(min) = q.min_stop_words {
        let found: HashSet<String> = words
            .iter()
            .map(|w| {
                w.trim_matches(|c: char| !c.is_alphanumeric())
                    .to_lowercase()
            })
            .filter(|w| STOP_WORDS.contains(&w.as_str()))
            .collect();
        if found.len() < min {
            return Err("quality_stop_words");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROSE: &str = "The miller walked to the market with a basket of bread. \
        She sold the loaves to a baker and bought apples for her children. \
        On the way home it began to rain, so she waited under the old oak tree \
        until the clouds had passed and the road was dry again. Her children \
        were happy to see the apples and they ate them all before dinner time.";

    fn all_on() -> QualityParams {
        QualityParams {
            min_stop_words: Some(2),
            ..QualityParams::default()
        }
    }

    #[test]
    fn prose_passes_every_check() {
        assert_eq!(check(PROSE, &all_on()), Ok(()));
    }

    #[test]
    fn each_check_names_its_reason() {
        let q = all_on();
        assert_eq!(check("too few words here", &q), Err("quality_word_count"));
        let long_words = "incomprehensibilities ".repeat(60);
        assert_eq!(check(&long_words, &q), Err("quality_mean_word_length"));
        let hashes = format!("{PROSE} {}", "#tag ".repeat(20));
        assert_eq!(check(&hashes, &q), Err("quality_symbol_ratio"));
        let bullets = "- remember the important groceries for tomorrow morning\n".repeat(12);
        assert_eq!(check(&bullets, &q), Err("quality_bullet_lines"));
        let trailing = format!(
            "{PROSE}\n{}",
            "and then the rest was lost to us...\n".repeat(3)
        );
        let trailing = trailing.replace(". ", ".\n");
        let mut no_dup = q.clone();
        no_dup.max_duplicate_lines = None;
        assert_eq!(check(&trailing, &no_dup), Err("quality_ellipsis_lines"));
        let numbers = format!("{PROSE} {}", "12 345 67 890 ".repeat(10));
        assert_eq!(check(&numbers, &q), Err("quality_alpha_words"));
        let repeated = format!(
            "{PROSE}\n{}",
            "Buy the best shoes today and save.\n".repeat(4)
        );
        assert_eq!(check(&repeated, &q), Err("quality_duplicate_lines"));
        let no_stop = "apple banana cherry grape melon ".repeat(12);
        assert_eq!(check(&no_stop, &q), Err("quality_stop_words"));
    }

    #[test]
    fn a_null_threshold_skips_its_check() {
        let q = QualityParams {
            min_words: None,
            ..QualityParams::default()
        };
        assert_eq!(check("a short but fine line of words", &q), Ok(()));
    }
}
