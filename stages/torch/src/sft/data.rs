//! The conversations of a data stage, tokenized with the model's tokenizer and chat template.
//!
//! A data stage writes `train.parquet` and `val.parquet`; `instructions` records
//! (`prompt`, `response`) and `preferences` records (`prompt`, `chosen`, `rejected`: the chosen
//! answer is the one to imitate) become a user turn and an assistant turn; `messages` records
//! are whole conversations (a system turn, several user and assistant turns), and every
//! assistant turn in them is learned. Plain text records have no turns to learn from and are
//! refused.

use std::path::{Path, PathBuf};

use records::Record;
use serve::chat::{ChatTemplate, Message, Role};

use serve::engine::Codec;

use super::pack::Example;

/// One conversation of a split, with at least one assistant turn.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    pub messages: Vec<Message>,
}

impl Exchange {
    /// A user's prompt and the reference answer.
    pub fn single(prompt: String, response: String) -> Exchange {
        Exchange {
            messages: vec![
                Message {
                    role: Role::User,
                    content: prompt,
                },
                Message {
                    role: Role::Assistant,
                    content: response,
                },
            ],
        }
    }

    fn last_answer(&self) -> usize {
        self.messages
            .iter()
            .rposition(|m| m.role == Role::Assistant)
            .unwrap_or(self.messages.len())
    }

    /// The conversation before its last assistant turn (what a client sends to get it).
    pub fn prompt_messages(&self) -> &[Message] {
        &self.messages[..self.last_answer()]
    }

    /// The last assistant turn, trimmed: the reference that held-out answers are compared with.
    pub fn response(&self) -> &str {
        self.messages
            .get(self.last_answer())
            .map(|m| m.content.trim())
            .unwrap_or("")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: records::RecordsError,
    },
    #[error("{path} holds plain text records; sft needs conversations: use a data stage with the `instructions` (or `preferences`) generator, a `jsonl` source with `records: messages` (or `instructions`), or a `command` stage with `produces: corpus` that writes train.parquet and val.parquet with `prompt` and `response` columns")]
    NotConversations { path: PathBuf },
    #[error("{path} has no records; sft needs at least one conversation in each split")]
    Empty { path: PathBuf },
}

/// The exchanges of `split` (`train`, `val`) of the data stage in `dir`.
pub fn read_split(dir: &Path, split: &str) -> Result<Vec<Exchange>, DataError> {
    let path = dir.join(format!("{split}.parquet"));
    let recs = records::read_split(&path).map_err(|source| DataError::Read {
        path: path.clone(),
        source,
    })?;
    if recs.is_empty() {
        return Err(DataError::Empty { path });
    }
    recs.into_iter()
        .map(|r| match r {
            Record::Chat {
                prompt, response, ..
            } => Ok(Exchange::single(prompt, response)),
            Record::Conversation(messages) => Ok(Exchange { messages }),
            Record::Text(_) => Err(DataError::NotConversations { path: path.clone() }),
        })
        .collect()
}

/// Tokenizes exchanges for training (`template` must use the role markers).
pub fn encode(exchanges: &[Exchange], template: &ChatTemplate, codec: &dyn Codec) -> Vec<Example> {
    exchanges
        .iter()
        .filter_map(|e| {
            template
                .render_training(codec, &e.messages)
                .map(|(tokens, targets)| Example { tokens, targets })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sft::pack::{pack, IGNORE};
    use serve::testing::ByteCodec as Bytes;

    fn turn(role: Role, content: &str) -> Message {
        Message {
            role,
            content: content.to_string(),
        }
    }

    /// In a multi-turn conversation every assistant turn is learned (its text and its
    /// `<|end|>`), and nothing else: not the system or user turns, not the assistant markers.
    /// Held-out evaluation asks for the last answer, given every turn before it.
    #[test]
    fn every_assistant_turn_and_only_those_are_targets() {
        const END: i64 = 259;
        let chat = Exchange {
            messages: vec![
                turn(Role::System, "S"),
                turn(Role::User, "q1"),
                turn(Role::Assistant, "A1"),
                turn(Role::User, "q2"),
                turn(Role::Assistant, "A2"),
                turn(Role::User, "thanks"),
            ],
        };
        let template = ChatTemplate::for_codec(&Bytes);
        let packed = pack(&encode(std::slice::from_ref(&chat), &template, &Bytes), 64);
        let targets: Vec<i64> = packed
            .targets
            .iter()
            .copied()
            .filter(|&t| t != IGNORE)
            .collect();
        let b = |c: char| i64::from(c as u8);
        assert_eq!(targets, [b('A'), b('1'), END, b('A'), b('2'), END]);
        // Each target sits right after the token that predicts it: the answers' own places.
        let first = packed.targets.iter().position(|&t| t != IGNORE).unwrap();
        assert_eq!(packed.inputs[first], 258, "predicted from <|assistant|>");

        assert_eq!(chat.response(), "A2");
        let prompt: Vec<&str> = chat
            .prompt_messages()
            .iter()
            .map(|m| m.content.as_str())
            .collect();
        assert_eq!(prompt, ["S", "q1", "A1", "q2"]);
    }
}
