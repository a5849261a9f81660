//! HTML to text with a real parser (html5ever through `scraper`): tags go, entities are decoded
//! by the tokenizer, `<script>`/`<style>` (and `<head>`, `<template>`, `<noscript>`) contents
//! are dropped, and block elements become line breaks so paragraphs stay apart.

use ego_tree::iter::Edge;
use scraper::{Html, Node};

/// Elements whose text is not part of the document's content.
const SKIPPED: &[&str] = &[
    "script", "style", "head", "template", "noscript", "iframe", "svg",
];

/// Elements that start a new line (paragraph-level content).
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "dd",
    "div",
    "dl",
    "dt",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "td",
    "th",
    "tr",
    "ul",
];

/// The text of `s` read as HTML. Text without `<` or `&` cannot hold markup and is returned
/// as is (the parser would only cost time).
pub fn strip_html(s: &str) -> String {
    if !s.contains(['<', '&']) {
        return s.to_string();
    }
    let html = Html::parse_document(s);
    let mut out = String::with_capacity(s.len());
    // Depth inside skipped elements; iterative traversal, so deeply nested input cannot
    // overflow the stack.
    let mut skipping = 0usize;
    for edge in html.tree.root().traverse() {
        match edge {
            Edge::Open(node) => match node.value() {
                Node::Element(e) => {
                    let name = e.name();
                    if skipping > 0 || SKIPPED.contains(&name) {
                        skipping += 1;
                    } else if BLOCKS.contains(&name) {
                        out.push('\n');
                    }
                }
                Node::Text(t) if skipping == 0 => out.push_str(t),
                _ => {}
            },
            Edge::Close(node) => {
                if let Node::Element(e) = node.value() {
                    if skipping > 0 {
                        skipping -= 1;
                    } else if BLOCKS.contains(&e.name()) {
                        out.push('\n');
                    }
                }
            }
        }
    }
    tidy_lines(&out)
}

/// Block boundaries and the source's indentation leave runs of blank and space-only lines;
/// keep at most one blank line in a row and drop trailing spaces, and trim the ends.
fn tidy_lines(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut blank = 0;
    for line in s.lines() {
        let line = line.trim_end();
        if line.trim().is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
            out.push('\n');
        } else {
            blank = 0;
            out.push_str(line);
            out.push('\n');
        }
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_go_entities_decode_scripts_vanish() {
        let html = "<html><head><title>T</title><style>p{color:red}</style></head><body>\
                    <h1>Title &amp; more</h1><p>One&nbsp;para<b>graph</b> &lt;3</p>\
                    <script>var x = '<p>no</p>';</script><p>Two</p></body></html>";
        assert_eq!(
            strip_html(html),
            "Title & more\n\nOne\u{a0}paragraph <3\n\nTwo"
        );
    }

    #[test]
    fn plain_text_is_untouched_and_stray_brackets_survive() {
        assert_eq!(strip_html("a plain line"), "a plain line");
        assert_eq!(strip_html("if a < b and c > d"), "if a < b and c > d");
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let html = "<div>".repeat(50_000) + "deep" + &"</div>".repeat(50_000);
        assert_eq!(strip_html(&html), "deep");
    }
}
