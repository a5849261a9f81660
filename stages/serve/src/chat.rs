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

/// One piece of a conversation laid out in the template: a marker (a special token's spelling)
/// or ordinary text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    Marker(&'static str),
    Text(&'a str),
}

impl Role {
    /// The marker that opens this role's turns.
    pub fn marker(self) -> &'static str {
        match self {
            Role::System => SYSTEM_MARKER,
            Role::User => USER_MARKER,
            Role::Assistant => ASSISTANT_MARKER,
        }
    }
}

/// The one definition of the marker layout: each turn is its role's marker, its text, and
/// `<|end|>`. The server's prompts ([`ChatTemplate::render`], which then opens the assistant's
/// turn), fine-tuning ([`ChatTemplate::render_training`]) and the token shards the tokenizer
/// stage writes for instruction records all lay turns out through this function.
pub fn layout<'a>(turns: &[(Role, &'a str)]) -> Vec<Piece<'a>> {
    turns
        .iter()
        .flat_map(|&(role, text)| {
            [
                Piece::Marker(role.marker()),
                Piece::Text(text),
                Piece::Marker(END_MARKER),
            ]
        })
        .collect()
}

impl Markers {
    fn id(&self, marker: &str) -> u32 {
        match marker {
            SYSTEM_MARKER => self.system,
            USER_MARKER => self.user,
            ASSISTANT_MARKER => self.assistant,
            _ => self.end,
        }
    }

    /// `<|role|>` + text + `<|end|>` (see [`layout`]), with the per-token target flags of
    /// `render_training`: the assistant's text and its `<|end|>`, never its opening marker.
    fn push_message(
        &self,
        codec: &dyn Codec,
        msg: &Message,
        ids: &mut Vec<u32>,
        targets: &mut Vec<bool>,
    ) {
        let answer = msg.role == Role::Assistant;
        // Piece 0 is the opening marker, which the template writes, not the model.
        for (i, piece) in layout(&[(msg.role, &msg.content)]).into_iter().enumerate() {
            let start = ids.len();
            match piece {
                Piece::Marker(m) => ids.push(self.id(m)),
                Piece::Text(t) => ids.extend(codec.encode(t)),
            }
            targets.extend(std::iter::repeat_n(answer && i > 0, ids.len() - start));
        }
    }
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

    /// The role markers' token ids (system, user, assistant, end); empty without markers.
    pub fn marker_ids(&self) -> Vec<u32> {
        match &self.markers {
            Some(m) => vec![m.system, m.user, m.assistant, m.end],
            None => Vec::new(),
        }
    }

    /// Prompt tokens for `messages`, ending where the assistant's reply begins.
    pub fn render(&self, codec: &dyn Codec, messages: &[Message]) -> Vec<u32> {
        match &self.markers {
            Some(m) => {
                let mut ids = Vec::new();
                for msg in messages {
                    m.push_message(codec, msg, &mut ids, &mut Vec::new());
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

    /// A whole conversation as training tokens, with a flag per token saying whether it is the
    /// assistant's to predict (what the fine-tuning loss counts): each assistant message's
    /// text and its closing `<|end|>`, not its `<|assistant|>` marker (the template, not the
    /// model, writes that: [`ChatTemplate::render`] ends every prompt with it). The tokens are
    /// exactly those of `render` for the conversation up to an assistant message followed by
    /// that message, so training and serving see one format. `None` when the tokenizer has no
    /// role markers: a plain transcript has no reliable turn boundary to train on.
    pub fn render_training(
        &self,
        codec: &dyn Codec,
        messages: &[Message],
    ) -> Option<(Vec<u32>, Vec<bool>)> {
        let m = self.markers.as_ref()?;
        let mut ids = Vec::new();
        let mut targets = Vec::new();
        for msg in messages {
            m.push_message(codec, msg, &mut ids, &mut targets);
        }
        Some((ids, targets))
    }

    /// The id of the token that ends a turn, when the tokenizer has the markers.
    pub fn end_token(&self) -> Option<u32> {
        self.markers.as_ref().map(|m| m.end)
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

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::ByteCodec as Bytes;

    fn msg(role: Role, content: &str) -> Message {
        Message {
            role,
            content: content.to_string(),
        }
    }

    /// Training tokens are the serving prompt followed by the answer and `<|end|>`, and only
    /// those answer tokens are targets.
    #[test]
    fn training_tokens_extend_the_served_prompt() {
        let t = ChatTemplate::for_codec(&Bytes);
        let prompt = [msg(Role::System, "s"), msg(Role::User, "hi")];
        let mut chat = prompt.to_vec();
        chat.push(msg(Role::Assistant, "yo"));
        let (ids, targets) = t.render_training(&Bytes, &chat).unwrap();
        let served = t.render(&Bytes, &prompt);
        assert_eq!(
            served,
            [
                256,
                b's' as u32,
                259,
                257,
                b'h' as u32,
                b'i' as u32,
                259,
                258
            ]
        );
        assert_eq!(&ids[..served.len()], served.as_slice());
        assert_eq!(&ids[served.len()..], [b'y' as u32, b'o' as u32, 259]);
        let answer: Vec<bool> = (0..ids.len()).map(|i| i >= served.len()).collect();
        assert_eq!(targets, answer);
        assert_eq!(t.end_token(), Some(259));
    }
}
