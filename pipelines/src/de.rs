//! serde deserialization from a [`Node`], reporting every problem with its position.
//!
//! A derived `Deserialize` stops at its first error. To report all of them we (1) check a
//! struct's keys against the field list serde hands to `deserialize_struct`, recording unknown
//! keys and skipping them, and (2) when a value fails, record the error, exclude that node, and
//! deserialize again — at most once per node, so it terminates. A required field that is
//! missing only because its value was excluded is not reported a second time.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};

use crate::span::Span;
use crate::yaml::{Node, NodeValue, Resolved};

/// One problem found while deserializing, relative to the node deserialization started at.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Issue {
    pub span: Span,
    pub width: usize,
    /// Key path from the starting node, e.g. `env.FOO` or `inputs[2]` (empty for the node itself).
    pub path: String,
    pub kind: IssueKind,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum IssueKind {
    UnknownKey {
        key: String,
        expected: &'static [&'static str],
    },
    MissingKey {
        key: &'static str,
    },
    WrongType {
        expected: String,
        found: String,
    },
    InvalidValue {
        expected: String,
        found: String,
    },
    UnknownVariant {
        variant: String,
        expected: &'static [&'static str],
    },
    /// A check beyond types failed (see `StageKind::validate`).
    Invalid {
        message: String,
        hint: Option<String>,
    },
    Other(String),
}

/// The serde error type. Position and culprit are filled in by the innermost node that sees it.
/// Boxed: errors travel through every `Result` of the deserializer, successes should stay small.
#[derive(Debug)]
pub(crate) struct Error(Box<ErrorInner>);

#[derive(Debug)]
pub(crate) struct ErrorInner {
    kind: IssueKind,
    /// Already reported (or a consequence of an excluded node): nothing more to say.
    silent: bool,
    at: Option<(Span, usize, String)>,
    culprit: Option<u32>,
}

impl std::ops::Deref for Error {
    type Target = ErrorInner;

    fn deref(&self) -> &ErrorInner {
        &self.0
    }
}

impl std::ops::DerefMut for Error {
    fn deref_mut(&mut self) -> &mut ErrorInner {
        &mut self.0
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.kind)
    }
}

impl std::error::Error for Error {}

impl Error {
    fn new(kind: IssueKind) -> Self {
        Error(Box::new(ErrorInner {
            kind,
            silent: false,
            at: None,
            culprit: None,
        }))
    }

    /// Attaches the node where the error surfaced, unless a deeper node already did.
    fn at(mut self, node: &Node, path: &str) -> Self {
        if self.culprit.is_none() {
            self.culprit = Some(node.id);
            self.at = Some((node.span, node.width, path.to_string()));
            // serde's own "found" text is generic ("sequence"); ours names the value.
            if let IssueKind::WrongType { found, .. } | IssueKind::InvalidValue { found, .. } =
                &mut self.kind
            {
                *found = node.describe();
            }
        }
        self
    }
}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::new(IssueKind::Other(msg.to_string()))
    }

    fn invalid_type(unexp: de::Unexpected, exp: &dyn de::Expected) -> Self {
        Error::new(IssueKind::WrongType {
            expected: friendly_expected(&exp.to_string()),
            found: unexp.to_string(),
        })
    }

    fn invalid_value(unexp: de::Unexpected, exp: &dyn de::Expected) -> Self {
        Error::new(IssueKind::InvalidValue {
            expected: friendly_expected(&exp.to_string()),
            found: unexp.to_string(),
        })
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        Error::new(IssueKind::UnknownVariant {
            variant: variant.to_string(),
            expected,
        })
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        Error::new(IssueKind::UnknownKey {
            key: field.to_string(),
            expected,
        })
    }

    fn missing_field(field: &'static str) -> Self {
        Error::new(IssueKind::MissingKey { key: field })
    }
}

/// serde's "expected" texts name Rust types; say what a manifest author would write instead.
fn friendly_expected(exp: &str) -> String {
    match exp {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a non-negative integer".to_string(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "an integer".to_string(),
        "f32" | "f64" => "a number".to_string(),
        "a sequence" => "a list".to_string(),
        "a map" => "a mapping".to_string(),
        other if other.starts_with("struct ") => "a mapping".to_string(),
        other => other.to_string(),
    }
}

struct Ctx {
    issues: RefCell<Vec<Issue>>,
    excluded: RefCell<HashSet<u32>>,
}

impl Ctx {
    fn record(&self, issue: Issue) {
        let mut issues = self.issues.borrow_mut();
        if !issues.contains(&issue) {
            issues.push(issue);
        }
    }

    fn is_excluded(&self, node: &Node) -> bool {
        self.excluded.borrow().contains(&node.id)
    }
}

/// Deserializes `T` from `node`, returning every issue found (each once) if any.
pub(crate) fn from_node<T: DeserializeOwned>(node: &Node) -> Result<T, Vec<Issue>> {
    let ctx = Ctx {
        issues: RefCell::new(Vec::new()),
        excluded: RefCell::new(HashSet::new()),
    };
    // Each round excludes one more node, so the number of rounds is bounded by the tree size.
    for _ in 0..=node.size {
        let result = T::deserialize(NodeDe {
            node,
            ctx: &ctx,
            path: String::new(),
        });
        match result {
            Ok(value) => {
                let issues = ctx.issues.into_inner();
                return if issues.is_empty() {
                    Ok(value)
                } else {
                    Err(issues)
                };
            }
            Err(error) => {
                let error = *error.0;
                if !error.silent {
                    let (span, width, path) =
                        error
                            .at
                            .clone()
                            .unwrap_or((node.span, node.width, String::new()));
                    ctx.record(Issue {
                        span,
                        width,
                        path,
                        kind: error.kind,
                    });
                }
                let culprit = error.culprit.unwrap_or(node.id);
                if culprit == node.id || !ctx.excluded.borrow_mut().insert(culprit) {
                    break;
                }
            }
        }
    }
    Err(ctx.issues.into_inner())
}

fn join_key(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

struct NodeDe<'n, 'c> {
    node: &'n Node,
    ctx: &'c Ctx,
    path: String,
}

impl<'n, 'c> NodeDe<'n, 'c> {
    fn child(&self, node: &'n Node, path: String) -> Self {
        NodeDe {
            node,
            ctx: self.ctx,
            path,
        }
    }

    fn resolved(&self) -> Option<Resolved<'n>> {
        self.node.as_scalar().map(|s| s.resolve())
    }

    fn wrong_type(&self, exp: &dyn de::Expected) -> Error {
        <Error as de::Error>::invalid_type(de::Unexpected::Other("value"), exp)
            .at(self.node, &self.path)
    }

    fn finish<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        result.map_err(|e| e.at(self.node, &self.path))
    }

    /// Entries of a mapping that take part in deserialization: later duplicates (reported by
    /// the validator) and excluded values are skipped.
    fn live_entries(&self, entries: &'n [(Node, Node)]) -> Vec<&'n (Node, Node)> {
        let mut seen = HashSet::new();
        entries
            .iter()
            .filter(|(k, v)| seen.insert(k.text().unwrap_or("")) && !self.ctx.is_excluded(v))
            .collect()
    }
}

impl<'de, 'n, 'c> de::Deserializer<'de> for NodeDe<'n, 'c> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let result = match &self.node.value {
            NodeValue::Seq(_) => return self.deserialize_seq(visitor),
            NodeValue::Map(_) => return self.deserialize_map(visitor),
            NodeValue::Scalar(s) => match s.resolve() {
                Resolved::Null => visitor.visit_unit(),
                Resolved::Bool(b) => visitor.visit_bool(b),
                Resolved::Int(i) => visitor.visit_i64(i),
                Resolved::UInt(u) => visitor.visit_u64(u),
                Resolved::Float(f) => visitor.visit_f64(f),
                Resolved::Str(text) => visitor.visit_str(text),
            },
        };
        self.finish(result)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.resolved() {
            Some(Resolved::Bool(b)) => self.finish(visitor.visit_bool(b)),
            _ => Err(self.wrong_type(&visitor)),
        }
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let result = match self.resolved() {
            Some(Resolved::Int(i)) => visitor.visit_i64(i),
            Some(Resolved::UInt(u)) => visitor.visit_u64(u),
            _ => return Err(self.wrong_type(&visitor)),
        };
        self.finish(result)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let result = match self.resolved() {
            Some(Resolved::Int(i)) => visitor.visit_i64(i),
            Some(Resolved::UInt(u)) => visitor.visit_u64(u),
            Some(Resolved::Float(f)) => visitor.visit_f64(f),
            _ => return Err(self.wrong_type(&visitor)),
        };
        self.finish(result)
    }

    /// Any non-null scalar reads as a string, as written: `env: {DEBUG: 1}` means "1".
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.node.as_scalar() {
            Some(s) if s.resolve() != Resolved::Null => {
                let text = s.text.as_str();
                self.finish(visitor.visit_str(text))
            }
            _ => Err(self.wrong_type(&visitor)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.node.is_null() {
            self.finish(visitor.visit_none())
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.node.is_null() {
            self.finish(visitor.visit_unit())
        } else {
            Err(self.wrong_type(&visitor))
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let NodeValue::Seq(items) = &self.node.value else {
            return Err(self.wrong_type(&visitor));
        };
        let items: Vec<(usize, &Node)> = items
            .iter()
            .enumerate()
            .filter(|(_, n)| !self.ctx.is_excluded(n))
            .collect();
        let access = Seq {
            de: &self,
            items: items.into_iter(),
        };
        let result = visitor.visit_seq(access);
        self.finish(result)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let Some(entries) = self.node.as_map() else {
            return Err(self.wrong_type(&visitor));
        };
        let entries = self.live_entries(entries);
        let access = Map {
            de: &self,
            entries: entries.into_iter(),
            value: None,
        };
        let result = visitor.visit_map(access);
        self.finish(result)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let Some(all) = self.node.as_map() else {
            return Err(self.wrong_type(&visitor));
        };
        let mut entries = Vec::new();
        for entry in self.live_entries(all) {
            let key = entry.0.text().unwrap_or("");
            if fields.contains(&key) {
                entries.push(entry);
            } else {
                self.ctx.record(Issue {
                    span: entry.0.span,
                    width: entry.0.width,
                    path: join_key(&self.path, key),
                    kind: IssueKind::UnknownKey {
                        key: key.to_string(),
                        expected: fields,
                    },
                });
            }
        }
        let access = Map {
            de: &self,
            entries: entries.into_iter(),
            value: None,
        };
        match visitor.visit_map(access) {
            Err(mut error) if error.culprit.is_none() => {
                if let IssueKind::MissingKey { key } = error.kind {
                    // Present but excluded: its own error was already recorded.
                    error.silent = all.iter().any(|(k, _)| k.text() == Some(key));
                }
                Err(error.at(self.node, &self.path))
            }
            other => other,
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let (tag, content) = match &self.node.value {
            NodeValue::Scalar(_) => (self.node, None),
            NodeValue::Map(entries) if entries.len() == 1 => (&entries[0].0, Some(&entries[0].1)),
            _ => return Err(self.wrong_type(&visitor)),
        };
        let access = Enum {
            de: &self,
            tag,
            content,
        };
        let result = visitor.visit_enum(access);
        self.finish(result)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        Err(self.wrong_type(&visitor))
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        Err(self.wrong_type(&visitor))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 u8 u16 u32 u64 i128 u128 f32
    }
}

struct Seq<'a, 'n, 'c, I> {
    de: &'a NodeDe<'n, 'c>,
    items: I,
}

impl<'de, 'n, I: Iterator<Item = (usize, &'n Node)>> SeqAccess<'de> for Seq<'_, 'n, '_, I> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.items.next() {
            None => Ok(None),
            Some((i, node)) => {
                let child = self.de.child(node, format!("{}[{i}]", self.de.path));
                seed.deserialize(child).map(Some)
            }
        }
    }
}

struct Map<'a, 'n, 'c, I> {
    de: &'a NodeDe<'n, 'c>,
    entries: I,
    value: Option<(&'n Node, String)>,
}

impl<'de, 'n, I: Iterator<Item = &'n (Node, Node)>> MapAccess<'de> for Map<'_, 'n, '_, I> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        let path = join_key(&self.de.path, key.text().unwrap_or(""));
        self.value = Some((value, path.clone()));
        let text = key.text().unwrap_or("");
        let key_de: de::value::StrDeserializer<'_, Error> = text.into_deserializer();
        seed.deserialize(key_de)
            .map(Some)
            .map_err(|e| e.at(key, &path))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        match self.value.take() {
            Some((node, path)) => seed.deserialize(self.de.child(node, path)),
            None => Err(<Error as de::Error>::custom("value requested before key")),
        }
    }
}

struct Enum<'a, 'n, 'c> {
    de: &'a NodeDe<'n, 'c>,
    tag: &'n Node,
    content: Option<&'n Node>,
}

impl<'de, 'a, 'n, 'c> EnumAccess<'de> for Enum<'a, 'n, 'c> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), Error> {
        let text = self.tag.text().unwrap_or("");
        let tag_de: de::value::StrDeserializer<'_, Error> = text.into_deserializer();
        let value = seed
            .deserialize(tag_de)
            .map_err(|e| e.at(self.tag, &self.de.path))?;
        Ok((value, self))
    }
}

impl<'de> VariantAccess<'de> for Enum<'_, '_, '_> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.content {
            None => Ok(()),
            Some(node) if node.is_null() => Ok(()),
            Some(node) => Err(<Error as de::Error>::invalid_type(
                de::Unexpected::Other("value"),
                &"a name with no settings",
            )
            .at(node, &self.de.path)),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        match self.content {
            Some(node) => seed.deserialize(self.de.child(node, self.de.path.clone())),
            None => Err(self.de.wrong_type(&"a mapping with one key")),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        match self.content {
            Some(node) => de::Deserializer::deserialize_seq(
                self.de.child(node, self.de.path.clone()),
                visitor,
            ),
            None => Err(self.de.wrong_type(&visitor)),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.content {
            Some(node) => de::Deserializer::deserialize_struct(
                self.de.child(node, self.de.path.clone()),
                "",
                fields,
                visitor,
            ),
            None => Err(self.de.wrong_type(&visitor)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::yaml::parse_tree;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Demo {
        run: String,
        #[serde(default)]
        inputs: Vec<String>,
        #[serde(default)]
        threads: Option<usize>,
        #[serde(default)]
        env: BTreeMap<String, String>,
        #[serde(default)]
        mode: Option<Mode>,
    }

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Mode {
        Fast,
        Careful { level: u32 },
    }

    fn demo(src: &str) -> Result<Demo, Vec<Issue>> {
        from_node(&parse_tree(src).expect("yaml"))
    }

    #[test]
    fn a_good_struct_deserializes() {
        let d =
            demo("run: go\ninputs: [a, b]\nenv: {N: 1}\nmode: {careful: {level: 2}}").expect("ok");
        assert_eq!(d.inputs, vec!["a", "b"]);
        assert_eq!(d.env.get("N").map(String::as_str), Some("1"));
        assert_eq!(d.mode, Some(Mode::Careful { level: 2 }));
        assert_eq!(
            demo("run: go\nmode: fast").expect("ok").mode,
            Some(Mode::Fast)
        );
    }

    #[test]
    fn every_issue_is_reported_with_its_position() {
        let issues =
            demo("run: [x]\ninput: [a]\nthreads: -1\ninputs: 3\nmood: 1\n").expect_err("bad");
        let summary: Vec<(usize, usize, &str)> = issues
            .iter()
            .map(|i| {
                let what = match &i.kind {
                    IssueKind::UnknownKey { .. } => "unknown",
                    IssueKind::WrongType { .. } => "type",
                    IssueKind::InvalidValue { .. } => "value",
                    IssueKind::MissingKey { .. } => "missing",
                    _ => "other",
                };
                (i.span.line, i.span.col, what)
            })
            .collect();
        let mut sorted = summary.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            vec![
                (1, 6, "type"),
                (2, 1, "unknown"),
                (3, 10, "value"),
                (4, 9, "type"),
                (5, 1, "unknown")
            ],
            "{issues:#?}"
        );
    }

    #[test]
    fn missing_fields_and_bad_list_items_are_located() {
        let issues = demo("inputs: [a, [b]]\n").expect_err("bad");
        assert!(issues
            .iter()
            .any(|i| i.path == "inputs[1]" && i.span.line == 1 && i.span.col == 13));
        assert!(issues
            .iter()
            .any(|i| matches!(i.kind, IssueKind::MissingKey { key: "run" })));
    }

    #[test]
    fn wrong_type_names_what_was_found() {
        let issues = demo("run: go\nthreads: abc\n").expect_err("bad");
        match &issues[0].kind {
            IssueKind::WrongType { expected, found } => {
                assert_eq!(expected, "a non-negative integer");
                assert_eq!(found, "the string `abc`");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(issues[0].path, "threads");
    }
}
