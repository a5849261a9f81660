//! Manifest errors: a stable code per class, a position, a snippet and a hint.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::span::{SourceMap, Span};

/// The class of a manifest error. Each has a stable code (see [`ErrorCode::as_str`]) that tests,
/// scripts and documentation can rely on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The file could not be read (missing, unreadable, not UTF-8).
    Io,
    /// The text is not valid YAML.
    Syntax,
    /// The file holds no YAML document (only whitespace or comments).
    Empty,
    /// More than one YAML document (`---`) in the file.
    MultipleDocuments,
    /// Anchors and aliases that expand to too many nodes (a "billion laughs" document).
    AliasBomb,
    /// Nesting deeper than any manifest needs.
    TooDeep,
    /// A tag outside YAML's core schema (e.g. `!python/object`).
    UnsupportedTag,
    /// A mapping or list used as a mapping key.
    ComplexKey,
    /// The top level of the file is not a mapping.
    NotAMapping,
    /// A required top-level key (`name`, `stages`) is missing.
    MissingKey,
    /// A key that is not allowed where it is written.
    UnknownKey,
    /// The same key twice in one mapping.
    DuplicateKey,
    /// `stages` is empty or not a mapping.
    InvalidStages,
    /// A stage's value is not a mapping.
    StageNotAMapping,
    /// A stage has no `kind`.
    MissingKind,
    /// A stage's `kind` is not one binarylm knows.
    UnknownKind,
    /// A value of the wrong type (`seed: abc`, `inputs: 3`).
    WrongType,
    /// A value of the right type that is not allowed (`seed: -1`, an empty `run`).
    InvalidValue,
    /// A required parameter of the stage's kind is missing (`run` for `command`).
    MissingParam,
    /// Two stages with the same name.
    DuplicateStage,
    /// A stage name that is not a lowercase identifier.
    InvalidStageName,
    /// A reference to a stage that does not exist.
    UnknownStage,
    /// A stage that references itself.
    SelfReference,
    /// A reference to a stage whose kind produces an artifact type the key does not accept
    /// (`deploy`'s `model:` naming a `data` stage).
    WrongArtifactType,
    /// Stages that depend on each other in a loop.
    Cycle,
    /// A bad `resources:` block (negative or zero threads, wrong types).
    InvalidResources,
}

impl ErrorCode {
    /// The stable code, e.g. `manifest::unknown-key`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Io => "manifest::io",
            ErrorCode::Syntax => "manifest::syntax",
            ErrorCode::Empty => "manifest::empty",
            ErrorCode::MultipleDocuments => "manifest::multiple-documents",
            ErrorCode::AliasBomb => "manifest::alias-bomb",
            ErrorCode::TooDeep => "manifest::too-deep",
            ErrorCode::UnsupportedTag => "manifest::unsupported-tag",
            ErrorCode::ComplexKey => "manifest::complex-key",
            ErrorCode::NotAMapping => "manifest::not-a-mapping",
            ErrorCode::MissingKey => "manifest::missing-key",
            ErrorCode::UnknownKey => "manifest::unknown-key",
            ErrorCode::DuplicateKey => "manifest::duplicate-key",
            ErrorCode::InvalidStages => "manifest::invalid-stages",
            ErrorCode::StageNotAMapping => "manifest::stage-not-a-mapping",
            ErrorCode::MissingKind => "manifest::missing-kind",
            ErrorCode::UnknownKind => "manifest::unknown-kind",
            ErrorCode::WrongType => "manifest::wrong-type",
            ErrorCode::InvalidValue => "manifest::invalid-value",
            ErrorCode::MissingParam => "manifest::missing-param",
            ErrorCode::DuplicateStage => "manifest::duplicate-stage",
            ErrorCode::InvalidStageName => "manifest::invalid-stage-name",
            ErrorCode::UnknownStage => "manifest::unknown-stage",
            ErrorCode::SelfReference => "manifest::self-reference",
            ErrorCode::WrongArtifactType => "manifest::wrong-artifact-type",
            ErrorCode::Cycle => "manifest::cycle",
            ErrorCode::InvalidResources => "manifest::invalid-resources",
        }
    }

    /// The code without its `manifest::` prefix, as shown in `error[…]`.
    pub fn short(self) -> &'static str {
        let code = self.as_str();
        code.strip_prefix("manifest::").unwrap_or(code)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem in a manifest, located in its source.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestError {
    /// What class of problem this is.
    pub code: ErrorCode,
    /// One line saying what is wrong, naming the key, value or stage.
    pub message: String,
    /// The manifest path as the caller gave it (not canonicalized), for stable output.
    pub path: PathBuf,
    /// Where the problem is; `None` when it concerns the whole file (unreadable, empty).
    pub span: Option<Span>,
    /// How many characters to underline from `span`'s column (at least 1).
    pub width: usize,
    /// The source line at `span` (empty when `span` is `None`).
    pub line_text: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl ManifestError {
    /// The stable code of this error's class, e.g. `manifest::unknown-key`.
    pub fn code(&self) -> &'static str {
        self.code.as_str()
    }
}

impl fmt::Display for ManifestError {
    /// Renders the error compactly, without colours:
    ///
    /// ```text
    /// error[unknown-key]: unknown key `input` in stage `train` (kind `command`)
    ///   --> pipeline.yaml:7:5
    ///    |
    ///  7 |     input: [prep]
    ///    |     ^^^^^
    ///    = hint: did you mean `inputs`? valid keys: run, inputs, deps, env, resources
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error[{}]: {}", self.code.short(), self.message)?;
        let number = self
            .span
            .map(|s| s.line.to_string())
            .unwrap_or_else(|| " ".to_string());
        let pad = " ".repeat(number.len());
        match self.span {
            None => writeln!(f, "{pad} --> {}", self.path.display())?,
            Some(span) => {
                writeln!(
                    f,
                    "{pad} --> {}:{}:{}",
                    self.path.display(),
                    span.line,
                    span.col
                )?;
                writeln!(f, "{pad}  |")?;
                writeln!(f, " {number} | {}", self.line_text.trim_end())?;
                // Keep tabs so the caret lines up under the same column in a terminal.
                let lead: String = self
                    .line_text
                    .chars()
                    .take(span.col.saturating_sub(1))
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                writeln!(f, "{pad}  | {lead}{}", "^".repeat(self.width.max(1)))?;
            }
        }
        if let Some(hint) = &self.hint {
            writeln!(f, "{pad}  = hint: {hint}")?;
        }
        Ok(())
    }
}

/// Every error found in a manifest (never just the first), in source order.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ManifestErrors {
    /// At least one error, sorted by position.
    pub errors: Vec<ManifestError>,
}

impl ManifestErrors {
    /// The codes of all errors, in order (handy in tests and for `--json`).
    pub fn codes(&self) -> Vec<&'static str> {
        self.errors.iter().map(ManifestError::code).collect()
    }
}

impl fmt::Display for ManifestErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        if self.errors.len() > 1 {
            if let Some(first) = self.errors.first() {
                writeln!(
                    f,
                    "\n{} errors in {}",
                    self.errors.len(),
                    first.path.display()
                )?;
            }
        }
        Ok(())
    }
}

/// Collects errors for one manifest, filling in path and snippet.
pub(crate) struct Reporter<'a> {
    path: &'a Path,
    map: SourceMap<'a>,
    errors: Vec<ManifestError>,
}

impl<'a> Reporter<'a> {
    pub(crate) fn new(path: &'a Path, source: &'a str) -> Self {
        Reporter {
            path,
            map: SourceMap::new(source),
            errors: Vec::new(),
        }
    }

    /// Records an error at `span`, underlining `width` characters.
    pub(crate) fn at(
        &mut self,
        code: ErrorCode,
        span: Span,
        width: usize,
        message: impl Into<String>,
        hint: impl Into<Option<String>>,
    ) {
        let error = ManifestError {
            code,
            message: message.into(),
            path: self.path.to_path_buf(),
            span: Some(span),
            width: width.max(1),
            line_text: self.map.line(span.line).to_string(),
            hint: hint.into(),
        };
        if !self.errors.contains(&error) {
            self.errors.push(error);
        }
    }

    /// Records an error about the whole file.
    pub(crate) fn file(
        &mut self,
        code: ErrorCode,
        message: impl Into<String>,
        hint: impl Into<Option<String>>,
    ) {
        self.errors.push(ManifestError {
            code,
            message: message.into(),
            path: self.path.to_path_buf(),
            span: None,
            width: 1,
            line_text: String::new(),
            hint: hint.into(),
        });
    }

    /// All errors, in source order, or `None` if there were none.
    pub(crate) fn finish(mut self) -> Option<ManifestErrors> {
        if self.errors.is_empty() {
            return None;
        }
        // Stable sort: errors at the same position keep the order in which they were found.
        self.errors
            .sort_by_key(|e| e.span.map(|s| (s.line, s.col)).unwrap_or((0, 0)));
        Some(ManifestErrors {
            errors: self.errors,
        })
    }
}

/// The candidate closest to `word`, if it is close enough to be a plausible typo.
pub(crate) fn nearest<'c>(
    word: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_compact_format() {
        let source =
            "name: x\nstages:\n  train:\n    kind: command\n    run: go\n\n    input: [prep]\n";
        let mut reporter = Reporter::new(Path::new("examples/x/pipeline.yaml"), source);
        let span = SourceMap::new(source).span(7, 4);
        reporter.at(
            ErrorCode::UnknownKey,
            span,
            5,
            "unknown key `input` in stage `train` (kind `command`)",
            Some("did you mean `inputs`?".to_string()),
        );
        let rendered = reporter.finish().expect("one error").to_string();
        assert_eq!(
            rendered,
            "error[unknown-key]: unknown key `input` in stage `train` (kind `command`)\n  --> examples/x/pipeline.yaml:7:5\n   |\n 7 |     input: [prep]\n   |     ^^^^^\n   = hint: did you mean `inputs`?\n"
        );
    }

    #[test]
    fn wide_line_numbers_widen_the_gutter() {
        let source = format!("{}bad\n", "\n".repeat(11));
        let mut reporter = Reporter::new(Path::new("p.yaml"), &source);
        reporter.at(
            ErrorCode::Syntax,
            SourceMap::new(&source).span(12, 0),
            3,
            "x",
            None,
        );
        let rendered = reporter.finish().expect("error").to_string();
        assert!(
            rendered.contains("   --> p.yaml:12:1\n    |\n 12 | bad\n    | ^^^\n"),
            "{rendered}"
        );
    }

    #[test]
    fn codes_are_stable_and_prefixed() {
        assert_eq!(ErrorCode::UnknownKey.as_str(), "manifest::unknown-key");
        assert_eq!(ErrorCode::Cycle.short(), "cycle");
    }

    #[test]
    fn nearest_finds_typos_only() {
        assert_eq!(nearest("input", ["run", "inputs", "deps"]), Some("inputs"));
        assert_eq!(nearest("zzz", ["run", "inputs", "deps"]), None);
    }
}
