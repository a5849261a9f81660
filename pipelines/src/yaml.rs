//! A YAML node tree that remembers where every key and value came from.
//!
//! We build it ourselves from `saphyr-parser` events rather than going through a serde YAML
//! crate, because those lose positions inside tagged enums, silently keep the last of two
//! duplicate keys, and expand aliases without telling us. Here every node keeps its span, a
//! mapping keeps all its entries (duplicates included, for the validator to report), and alias
//! expansion is budgeted.

use std::collections::HashMap;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, ScanError};

use crate::span::{SourceMap, Span};

/// Most nodes that alias expansion may add to a document. Real manifests share a few small
/// blocks; a "billion laughs" document needs exponentially many, and is cut off here.
pub(crate) const ALIAS_NODE_BUDGET: usize = 10_000;

/// Deepest nesting accepted. Manifests are shallow; this keeps recursive walks (and `Drop`) far
/// from the stack limit on hostile input.
pub(crate) const MAX_DEPTH: usize = 64;

/// A parsed node and its position.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    /// Unique per node in the document (aliased copies share their anchor's id).
    pub id: u32,
    pub span: Span,
    /// Characters to underline in a snippet: the scalar's length when it fits on its line.
    pub width: usize,
    pub value: NodeValue,
    /// Number of nodes in this subtree, itself included (for the alias budget).
    pub size: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NodeValue {
    Scalar(Scalar),
    Seq(Vec<Node>),
    /// Entries in source order; duplicate keys are kept.
    Map(Vec<(Node, Node)>),
}

/// A scalar's text and whether YAML's core schema may read it as something other than a string.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scalar {
    pub text: String,
    /// Plain (unquoted, untagged as `!!str`) scalars are resolved to null/bool/number.
    pub plain: bool,
}

/// What a scalar means under the YAML 1.2 core schema.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Resolved<'a> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(&'a str),
}

impl Scalar {
    pub(crate) fn resolve(&self) -> Resolved<'_> {
        if !self.plain {
            return Resolved::Str(&self.text);
        }
        let t = self.text.as_str();
        match t {
            "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
            "true" | "True" | "TRUE" => return Resolved::Bool(true),
            "false" | "False" | "FALSE" => return Resolved::Bool(false),
            ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
                return Resolved::Float(f64::INFINITY)
            }
            "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
            ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
            _ => {}
        }
        if let Some(int) = resolve_int(t) {
            return int;
        }
        if looks_like_float(t) {
            if let Ok(f) = t.parse::<f64>() {
                return Resolved::Float(f);
            }
        }
        Resolved::Str(t)
    }
}

fn resolve_int(t: &str) -> Option<Resolved<'static>> {
    let radix = |digits: &str, radix: u32| u64::from_str_radix(digits, radix).ok();
    if let Some(hex) = t.strip_prefix("0x") {
        return radix(hex, 16).map(Resolved::UInt);
    }
    if let Some(oct) = t.strip_prefix("0o") {
        return radix(oct, 8).map(Resolved::UInt);
    }
    let (negative, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if negative {
        // Out-of-range negatives fall through to floats, as other YAML loaders do.
        t.parse::<i64>().ok().map(Resolved::Int)
    } else {
        digits.parse::<u64>().ok().map(Resolved::UInt)
    }
}

/// The core schema's float pattern: `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`.
fn looks_like_float(t: &str) -> bool {
    let s = t.strip_prefix(['-', '+']).unwrap_or(t);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => {
            (int.is_empty() && digits(frac)) || (digits(int) && (frac.is_empty() || digits(frac)))
        }
        None => digits(mantissa),
    };
    let exponent_ok = match exponent {
        Some(e) => digits(e.strip_prefix(['-', '+']).unwrap_or(e)),
        None => true,
    };
    mantissa_ok && exponent_ok
}

impl Node {
    pub(crate) fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            NodeValue::Map(entries) => Some(entries),
            _ => None,
        }
    }

    pub(crate) fn as_scalar(&self) -> Option<&Scalar> {
        match &self.value {
            NodeValue::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// The text of a scalar node (as written), or `None` for collections.
    pub(crate) fn text(&self) -> Option<&str> {
        self.as_scalar().map(|s| s.text.as_str())
    }

    pub(crate) fn is_null(&self) -> bool {
        matches!(self.as_scalar().map(Scalar::resolve), Some(Resolved::Null))
    }

    /// A short description for "found …" in error messages.
    pub(crate) fn describe(&self) -> String {
        match &self.value {
            NodeValue::Seq(_) => "a list".to_string(),
            NodeValue::Map(_) => "a mapping".to_string(),
            NodeValue::Scalar(s) => match s.resolve() {
                Resolved::Null => "nothing (null)".to_string(),
                Resolved::Bool(b) => format!("the boolean `{b}`"),
                Resolved::Int(_) | Resolved::UInt(_) => format!("the integer `{}`", s.text),
                Resolved::Float(_) => format!("the number `{}`", s.text),
                Resolved::Str(text) => format!("the string `{}`", shorten(text)),
            },
        }
    }

    /// Follows a key path such as `env.FOO`, `inputs[1]` or `train.schedule[0].lr`.
    pub(crate) fn at_path(&self, path: &str) -> Option<&Node> {
        let mut node = self;
        for step in parse_path(path) {
            node = match (step, &node.value) {
                (Step::Key(key), NodeValue::Map(entries)) => entries
                    .iter()
                    .find(|(k, _)| k.text() == Some(key.as_str()))
                    .map(|(_, v)| v)?,
                (Step::Index(i), NodeValue::Seq(items)) => items.get(i)?,
                _ => return None,
            };
        }
        Some(node)
    }
}

impl Node {
    /// The key node of the last step of `path` (`env.FOO` → the `FOO` key), if it is a key.
    pub(crate) fn key_at_path(&self, path: &str) -> Option<&Node> {
        let (parent, key) = match path.rsplit_once('.') {
            Some((parent, key)) => (self.at_path(parent)?, key),
            None => (self, path),
        };
        parent
            .as_map()?
            .iter()
            .find(|(k, _)| k.text() == Some(key))
            .map(|(k, _)| k)
    }
}

fn shorten(text: &str) -> String {
    const MAX: usize = 40;
    let one_line = text.lines().next().unwrap_or("");
    if one_line.chars().count() > MAX || one_line.len() != text.len() {
        let cut: String = one_line.chars().take(MAX).collect();
        format!("{cut}…")
    } else {
        text.to_string()
    }
}

enum Step {
    Key(String),
    Index(usize),
}

fn parse_path(path: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            steps.push(Step::Key(key.to_string()));
        }
        for index in rest.split('[').filter(|s| !s.is_empty()) {
            if let Ok(i) = index.trim_end_matches(']').parse() {
                steps.push(Step::Index(i));
            }
        }
    }
    steps
}

/// Why a document could not be turned into a node tree.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TreeError {
    /// The YAML itself is malformed.
    Syntax { span: Span, message: String },
    /// The document holds nothing but comments or whitespace.
    Empty,
    /// More than one `---` document.
    MultipleDocuments { span: Span },
    /// Alias expansion would exceed [`ALIAS_NODE_BUDGET`].
    AliasBomb { span: Span },
    /// Nesting deeper than [`MAX_DEPTH`].
    TooDeep { span: Span },
    /// A mapping or list used as a mapping key.
    ComplexKey { span: Span },
    /// A tag outside YAML's core schema, e.g. `!python/object`.
    UnsupportedTag { span: Span, tag: String },
}

enum Frame {
    Seq {
        start: Span,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        start: Span,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
    },
}

struct Builder<'a> {
    map: SourceMap<'a>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    next_id: u32,
    expanded: usize,
    root: Option<Node>,
}

/// Parses one YAML document into a [`Node`] tree.
pub(crate) fn parse_tree(source: &str) -> Result<Node, TreeError> {
    let mut builder = Builder {
        map: SourceMap::new(source),
        stack: Vec::new(),
        anchors: HashMap::new(),
        next_id: 0,
        expanded: 0,
        root: None,
    };
    let mut documents = 0usize;
    for event in Parser::new_from_str(source) {
        let (event, span) = event.map_err(|e| builder.syntax(&e))?;
        let start = builder.pos(&span.start);
        match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(TreeError::MultipleDocuments { span: start });
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let mut plain = style == ScalarStyle::Plain;
                if let Some(tag) = tag {
                    if !tag.is_yaml_core_schema() {
                        return Err(TreeError::UnsupportedTag {
                            span: start,
                            tag: tag.to_string(),
                        });
                    }
                    // `!!str 123` is the string "123"; other core tags leave resolution as is.
                    if tag.suffix == "str" {
                        plain = false;
                    }
                }
                let width = if span.end.line() == span.start.line() {
                    span.end.col().saturating_sub(span.start.col()).max(1)
                } else {
                    1
                };
                let text = text.into_owned();
                let node = builder.node(start, width, NodeValue::Scalar(Scalar { text, plain }), 1);
                builder.finish(node, anchor)?;
            }
            Event::SequenceStart(anchor, tag) => {
                builder.check_tag(tag.as_deref(), start)?;
                builder.push(
                    Frame::Seq {
                        start,
                        anchor,
                        items: Vec::new(),
                    },
                    start,
                )?;
            }
            Event::MappingStart(anchor, tag) => {
                builder.check_tag(tag.as_deref(), start)?;
                builder.push(
                    Frame::Map {
                        start,
                        anchor,
                        entries: Vec::new(),
                        key: None,
                    },
                    start,
                )?;
            }
            Event::SequenceEnd | Event::MappingEnd => builder.close()?,
            Event::Alias(id) => {
                let Some(target) = builder.anchors.get(&id) else {
                    return Err(TreeError::Syntax {
                        span: start,
                        message: "alias to an unknown anchor".to_string(),
                    });
                };
                builder.expanded += target.size;
                if builder.expanded > ALIAS_NODE_BUDGET {
                    return Err(TreeError::AliasBomb { span: start });
                }
                let copy = target.clone();
                builder.finish(copy, 0)?;
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => {}
        }
    }
    match builder.root {
        Some(root) if !root.is_null() || root.text() != Some("~") => Ok(root),
        _ => Err(TreeError::Empty),
    }
}

impl Builder<'_> {
    fn pos(&self, marker: &Marker) -> Span {
        self.map.span(marker.line(), marker.col())
    }

    fn syntax(&self, error: &ScanError) -> TreeError {
        TreeError::Syntax {
            span: self.pos(error.marker()),
            message: error.info().to_string(),
        }
    }

    fn check_tag(&self, tag: Option<&saphyr_parser::Tag>, span: Span) -> Result<(), TreeError> {
        match tag {
            Some(tag) if !tag.is_yaml_core_schema() => Err(TreeError::UnsupportedTag {
                span,
                tag: tag.to_string(),
            }),
            _ => Ok(()),
        }
    }

    fn node(&mut self, span: Span, width: usize, value: NodeValue, size: usize) -> Node {
        self.next_id += 1;
        Node {
            id: self.next_id,
            span,
            width,
            value,
            size,
        }
    }

    fn push(&mut self, frame: Frame, span: Span) -> Result<(), TreeError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(TreeError::TooDeep { span });
        }
        self.stack.push(frame);
        Ok(())
    }

    fn close(&mut self) -> Result<(), TreeError> {
        let node = match self.stack.pop() {
            Some(Frame::Seq {
                start,
                anchor,
                items,
            }) => {
                let size = 1 + items.iter().map(|n| n.size).sum::<usize>();
                (self.node(start, 1, NodeValue::Seq(items), size), anchor)
            }
            Some(Frame::Map {
                start,
                anchor,
                entries,
                ..
            }) => {
                let size = 1 + entries.iter().map(|(k, v)| k.size + v.size).sum::<usize>();
                (self.node(start, 1, NodeValue::Map(entries), size), anchor)
            }
            None => return Ok(()),
        };
        self.finish(node.0, node.1)
    }

    /// Hands a completed node to its parent (or makes it the root), remembering its anchor.
    fn finish(&mut self, node: Node, anchor: usize) -> Result<(), TreeError> {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => {
                    if !matches!(node.value, NodeValue::Scalar(_)) {
                        return Err(TreeError::ComplexKey { span: node.span });
                    }
                    *key = Some(node);
                }
                Some(k) => entries.push((k, node)),
            },
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(src: &str) -> Node {
        parse_tree(src).expect("parses")
    }

    #[test]
    fn keys_and_values_keep_their_positions() {
        let root = tree("name: x\nstages:\n  a:\n    kind: command\n");
        let kind = root.at_path("stages.a.kind").expect("path");
        assert_eq!((kind.span.line, kind.span.col), (4, 11));
        assert_eq!(kind.width, "command".len());
        let entries = root
            .at_path("stages.a")
            .and_then(Node::as_map)
            .expect("map");
        assert_eq!((entries[0].0.span.line, entries[0].0.span.col), (4, 5));
        assert_eq!(
            &"name: x\nstages:\n  a:\n    kind: command\n"[kind.span.offset..][..7],
            "command"
        );
    }

    #[test]
    fn duplicate_keys_are_kept_for_the_validator() {
        let root = tree("a: 1\na: 2\n");
        assert_eq!(root.as_map().map(<[_]>::len), Some(2));
    }

    #[test]
    fn scalars_resolve_by_the_core_schema() {
        let root = tree("a: [1, -2, 1.5e-3, true, ~, abc, '7', !!str 8, 0x1f, .5, 1e3]");
        let items: Vec<Resolved> = match &root.at_path("a").expect("a").value {
            NodeValue::Seq(items) => items
                .iter()
                .map(|n| n.as_scalar().expect("scalar").resolve())
                .collect(),
            _ => panic!("not a list"),
        };
        assert_eq!(
            items,
            vec![
                Resolved::UInt(1),
                Resolved::Int(-2),
                Resolved::Float(1.5e-3),
                Resolved::Bool(true),
                Resolved::Null,
                Resolved::Str("abc"),
                Resolved::Str("7"),
                Resolved::Str("8"),
                Resolved::UInt(31),
                Resolved::Float(0.5),
                Resolved::Float(1000.0),
            ]
        );
    }

    #[test]
    fn small_aliases_expand_but_bombs_are_refused() {
        let root = tree("base: &b {x: 1}\nother: *b\n");
        assert_eq!(root.at_path("other.x").and_then(Node::text), Some("1"));

        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let p = i - 1;
            bomb.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        assert!(matches!(
            parse_tree(&bomb),
            Err(TreeError::AliasBomb { .. })
        ));
    }

    #[test]
    fn empty_and_comment_only_documents_are_empty() {
        assert_eq!(parse_tree(""), Err(TreeError::Empty));
        assert_eq!(parse_tree("# nothing\n\n"), Err(TreeError::Empty));
        assert!(parse_tree("null").is_ok());
    }

    #[test]
    fn syntax_errors_have_a_position() {
        match parse_tree("a: [1, 2\nb: 3\n") {
            Err(TreeError::Syntax { span, .. }) => assert!(span.line >= 1),
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn deep_nesting_and_foreign_tags_are_refused() {
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(matches!(parse_tree(&deep), Err(TreeError::TooDeep { .. })));
        assert!(matches!(
            parse_tree("a: !python/object x"),
            Err(TreeError::UnsupportedTag { .. })
        ));
        assert!(matches!(
            parse_tree("? [a]\n: 1\n"),
            Err(TreeError::ComplexKey { .. })
        ));
    }
}
