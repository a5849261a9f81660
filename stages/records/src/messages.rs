//! OpenAI-style conversations: `[{"role": "system" | "user" | "assistant", "content": "…"}, …]`,
//! the `messages` field of a JSON Lines chat file, and the text a data stage's `messages`
//! column holds.
//!
//! A conversation is checked once, where it is read (the data stage, which knows the line), so
//! that every stage after it can trust the column: each message has a known role and text
//! content, and at least one turn is the assistant's (what fine-tuning learns from).

use serde_json::Value;
use serve::chat::{Message, Role};

/// Why a `messages` value is not a conversation binarylm can train on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessagesError {
    #[error("`messages` is {0}, not an array of messages")]
    NotArray(&'static str),
    #[error("`messages` is empty")]
    Empty,
    #[error("`messages[{index}]` is {found}, not an object with `role` and `content`")]
    NotObject { index: usize, found: &'static str },
    #[error("`messages[{index}]` has no `role` (expected system, user or assistant)")]
    MissingRole { index: usize },
    #[error("`messages[{index}]` has role `{role}`; expected system, user or assistant")]
    UnknownRole { index: usize, role: String },
    #[error("`messages[{index}]` has no `content`")]
    MissingContent { index: usize },
    #[error("`messages[{index}].content` is {found}, not text")]
    ContentNotText { index: usize, found: &'static str },
    #[error("no message has role `assistant`: there is no answer to learn")]
    NoAssistant,
    #[error("not JSON: {0}")]
    Json(String),
}

/// The conversation in `value` (the `messages` array), checked.
pub fn from_value(value: &Value) -> Result<Vec<Message>, MessagesError> {
    let Value::Array(items) = value else {
        return Err(MessagesError::NotArray(json_type(value)));
    };
    if items.is_empty() {
        return Err(MessagesError::Empty);
    }
    let messages = items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let Value::Object(fields) = item else {
                return Err(MessagesError::NotObject {
                    index,
                    found: json_type(item),
                });
            };
            let role = match fields.get("role") {
                None | Some(Value::Null) => return Err(MessagesError::MissingRole { index }),
                Some(Value::String(r)) => {
                    Role::parse(r).ok_or_else(|| MessagesError::UnknownRole {
                        index,
                        role: r.clone(),
                    })?
                }
                Some(other) => {
                    return Err(MessagesError::UnknownRole {
                        index,
                        role: other.to_string(),
                    })
                }
            };
            let content = match fields.get("content") {
                None | Some(Value::Null) => return Err(MessagesError::MissingContent { index }),
                Some(Value::String(c)) => c.clone(),
                Some(other) => {
                    return Err(MessagesError::ContentNotText {
                        index,
                        found: json_type(other),
                    })
                }
            };
            Ok(Message { role, content })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if !messages.iter().any(|m| m.role == Role::Assistant) {
        return Err(MessagesError::NoAssistant);
    }
    Ok(messages)
}

/// The conversation in `text`, as [`to_json`] writes it (or any JSON [`from_value`] accepts).
pub fn parse(text: &str) -> Result<Vec<Message>, MessagesError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| MessagesError::Json(e.to_string()))?;
    from_value(&value)
}

/// The canonical JSON text of a conversation: `[{"content":…,"role":…},…]` (keys sorted, no
/// spaces, other keys dropped), so equal conversations are equal strings and hash alike in the
/// data stage.
pub fn to_json(messages: &[Message]) -> String {
    to_value(messages).to_string()
}

/// The conversation as a JSON array of `{"role", "content"}` objects.
pub fn to_value(messages: &[Message]) -> Value {
    let items: Vec<Value> = messages
        .iter()
        .map(|m| {
            let mut o = serde_json::Map::new();
            o.insert("role".into(), Value::String(role_name(m.role).into()));
            o.insert("content".into(), Value::String(m.content.clone()));
            Value::Object(o)
        })
        .collect();
    Value::Array(items)
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}

/// How a JSON value is described in errors.
pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<Vec<Message>, MessagesError> {
        from_value(&serde_json::from_str(text).expect("test JSON"))
    }

    #[test]
    fn a_multi_turn_conversation_round_trips_through_its_canonical_text() {
        let m = check(
            r#"[{"content":"Be brief.","role":"system"},{"role":"user","content":"Hi"},
                {"role":"assistant","content":"Hello."},{"role":"user","content":"Bye"},
                {"role":"assistant","content":"Bye.","name":"bot"}]"#,
        )
        .expect("valid");
        let roles: Vec<Role> = m.iter().map(|m| m.role).collect();
        use Role::*;
        assert_eq!(roles, [System, User, Assistant, User, Assistant]);
        let text = to_json(&m);
        assert!(
            text.starts_with(r#"[{"content":"Be brief.","role":"system"},{"#),
            "{text}"
        );
        assert!(!text.contains("name"), "{text}");
        assert_eq!(parse(&text), Ok(m));
    }

    #[test]
    fn malformed_conversations_say_what_is_wrong() {
        let cases = [
            (r#"{"role":"user"}"#, MessagesError::NotArray("an object")),
            ("[]", MessagesError::Empty),
            (
                r#"["hi"]"#,
                MessagesError::NotObject {
                    index: 0,
                    found: "a string",
                },
            ),
            (
                r#"[{"role":"user","content":"q"},{"content":"a"}]"#,
                MessagesError::MissingRole { index: 1 },
            ),
            (
                r#"[{"role":"tool","content":"x"}]"#,
                MessagesError::UnknownRole {
                    index: 0,
                    role: "tool".into(),
                },
            ),
            (
                r#"[{"role":"user"}]"#,
                MessagesError::MissingContent { index: 0 },
            ),
            (
                r#"[{"role":"user","content":[{"type":"text"}]}]"#,
                MessagesError::ContentNotText {
                    index: 0,
                    found: "an array",
                },
            ),
            (
                r#"[{"role":"system","content":"s"},{"role":"user","content":"q"}]"#,
                MessagesError::NoAssistant,
            ),
        ];
        for (text, want) in cases {
            assert_eq!(check(text), Err(want), "{text}");
        }
    }
}
