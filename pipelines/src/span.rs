//! Positions in the manifest source.

/// 1-based line and column of a node in the manifest source, plus its byte offset.
///
/// Columns count characters (not bytes) from the start of the line, so a caret drawn under
/// `col` lines up with what an editor shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Span {
    /// Line number, starting at 1.
    pub line: usize,
    /// Column in characters, starting at 1.
    pub col: usize,
    /// Byte offset of the position from the start of the source.
    pub offset: usize,
}

/// Maps the parser's (line, 0-based char column) markers to [`Span`]s with byte offsets, and
/// hands out source lines for snippets.
#[derive(Debug)]
pub(crate) struct SourceMap<'a> {
    source: &'a str,
    /// Byte offset at which each line starts.
    line_starts: Vec<usize>,
}

impl<'a> SourceMap<'a> {
    pub(crate) fn new(source: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(source.match_indices('\n').map(|(i, _)| i + 1));
        SourceMap {
            source,
            line_starts,
        }
    }

    /// Span of 1-based `line` and 0-based character column `col0`.
    pub(crate) fn span(&self, line: usize, col0: usize) -> Span {
        let text = self.line(line);
        let start = self.line_start(line);
        let in_line: usize = text.chars().take(col0).map(char::len_utf8).sum();
        Span {
            line: line.max(1),
            col: col0 + 1,
            offset: start + in_line,
        }
    }

    fn line_start(&self, line: usize) -> usize {
        let idx = line.saturating_sub(1);
        self.line_starts
            .get(idx)
            .copied()
            .unwrap_or(self.source.len())
    }

    /// The text of 1-based `line`, without its line break.
    pub(crate) fn line(&self, line: usize) -> &'a str {
        let start = self.line_start(line);
        let end = self
            .line_starts
            .get(line)
            .map(|next| next - 1)
            .unwrap_or(self.source.len())
            .max(start);
        let text = &self.source[start..end];
        text.strip_suffix('\r').unwrap_or(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_count_characters_but_offsets_count_bytes() {
        let map = SourceMap::new("a: 1\né: x\r\nlast");
        assert_eq!(map.line(2), "é: x");
        assert_eq!(map.line(3), "last");
        let span = map.span(2, 3);
        assert_eq!((span.line, span.col), (2, 4));
        assert_eq!(&"a: 1\né: x\r\nlast"[span.offset..span.offset + 1], "x");
    }

    #[test]
    fn lines_past_the_end_are_empty() {
        let map = SourceMap::new("only\n");
        assert_eq!(map.line(2), "");
        assert_eq!(map.line(9), "");
    }
}
