//! Chat templates: how a list of messages becomes the prompt of a plain language model.
//!
//! When the tokenizer has role markers (`<|system|>`, `<|user|>`, `<|assistant|>` and the
//! turn end `<|end|>`), a message is `<|role|>` + its text + `<|end|>`, and the prompt ends with
//! `<|assistant|>`; generation stops at `<|end|>`. The markers are inserted as token ids, never
//! parsed out of user text, so a user cannot forge a turn by typing a marker.
//!
//! A tokenizer without them (a base model never trained on chats) gets a plain-text transcript
//! (`User: …\nAssistant:`) that stops when the model starts the next user turn.

use crate::engine::Codec;

/// Spelling of the role markers and turn end looked up in the tokenizer.
pub const SYSTEM_MARKER: &str = "<|system|>";
pub const USER_MARKER: &str = "<|user|>";
pub const ASSISTANT_MARKER: &str = "<|assistant|>";
pub const END_MARKER: &str = "<|end|>";

/// A chat role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "system" | "developer" => Some(Role::System),
            "user" => Some(Role::User),
            "assistant" => Some(Role::Assistant),
            _ => None,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Role::System => "System",
            Role::User => "User",
            Role::Assistant => "Assistant",
        }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Markers {
    system: u32,
    user: u32,
    assistant: u32,
    end: u32,
}

/// The template of one served model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatTemplate {
    markers: Option<Markers>,
}

impl ChatTemplate {
    /// Uses the role markers when the tokenizer has all four, else the plain transcript.
    pub fn for_codec(codec: &dyn Codec) -> ChatTemplate {
        let id = |t| codec.token_to_id(t);
        let markers = match (
            id(SYSTEM_MARKER),
            id(USER_MARKER),
            id(ASSISTANT_MARKER),
            id(END_MARKER),
        ) {
            (Some(system), Some(user), Some(assistant), Some(end)) => Some(Markers {
                system,
                user,
                assistant,
                end,
            }),
            _ => None,
        };
        ChatTemplate { markers }
    }

    /// True when the tokenizer's role markers are used.
    pub fn uses_markers(&self) -> bool {
        self.markers.is_some()
    }

    /// Prompt tokens for `messages`, ending where the assistant's reply begins.
    pub fn render(&self, codec: &dyn Codec, messages: &[Message]) -> Vec<u32> {
        match &self.markers {
            Some(m) => {
                let mut ids = Vec::new();
                for msg in messages {
                    ids.push(match msg.role {
                        Role::System => m.system,
                        Role::User => m.user,
                        Role::Assistant => m.assistant,
                    });
                    ids.extend(codec.encode(&msg.content));
                    ids.push(m.end);
                }
                ids.push(m.assistant);
                ids
            }
            None => {
                let mut text = String::new();
                for msg in messages {
                    text.push_str(msg.role.title());
                    text.push_str(": ");
                    text.push_str(&msg.content);
                    text.push('\n');
                }
                text.push_str("Assistant:");
                codec.encode(&text)
            }
        }
    }

    /// Tokens that end the assistant's turn (besides end-of-sequence).
    pub fn stop_tokens(&self) -> Vec<u32> {
        self.markers.iter().map(|m| m.end).collect()
    }

    /// Strings that end the assistant's turn in the plain transcript.
    pub fn stop_strings(&self) -> Vec<String> {
        match self.markers {
            Some(_) => Vec::new(),
            None => vec!["\nUser:".to_string(), "\nSystem:".to_string()],
        }
    }

    /// The same template in Jinja, as Hugging Face tokenizers and lm-evaluation-harness's
    /// `RemoteTokenizer` expect in `/tokenizer_info`. Rendering it yields text containing the
    /// markers, which only round-trips if the tokenizer maps marker spellings to their ids.
    pub fn jinja(&self) -> String {
        match self.markers {
            Some(_) => format!(
                "{{% for message in messages %}}<|{{{{ message['role'] }}}}|>{{{{ message['content'] }}}}{END_MARKER}{{% endfor %}}{{% if add_generation_prompt %}}{ASSISTANT_MARKER}{{% endif %}}"
            ),
            None => "{% for message in messages %}{{ message['role'] | capitalize }}: {{ message['content'] }}\n{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}".to_string(),
        }
    }
}
