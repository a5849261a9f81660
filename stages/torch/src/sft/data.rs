//! The conversations of a data stage, tokenized with the model's tokenizer and chat template.
//!
//! A data stage writes `train.parquet` and `val.parquet`; `instructions` records
//! (`prompt`, `response`) and `preferences` records (`prompt`, `chosen`, `rejected`: the chosen
//! answer is the one to imitate) become a user turn and an assistant turn. Plain text records
//! have no turns to learn from and are refused.

use std::path::{Path, PathBuf};

use records::Record;
use serve::chat::{ChatTemplate, Message, Role};

use super::pack::Example;
use crate::server::engine::TokenizerCodec;

/// One conversation of a split: what the user asked and the reference answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    pub prompt: String,
    pub response: String,
}

impl Exchange {
    /// The prompt as chat messages (what a client sends).
    pub fn prompt_messages(&self) -> Vec<Message> {
        vec![Message {
            role: Role::User,
            content: self.prompt.clone(),
        }]
    }

    /// The whole conversation, answer included (what training sees).
    pub fn messages(&self) -> Vec<Message> {
        let mut m = self.prompt_messages();
        m.push(Message {
            role: Role::Assistant,
            content: self.response.clone(),
        });
        m
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
    #[error("{path} holds plain text records; sft needs conversations: use a data stage with the `instructions` (or `preferences`) generator, or a `command` stage with `produces: corpus` that writes train.parquet and val.parquet with `prompt` and `response` columns")]
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
            } => Ok(Exchange { prompt, response }),
            Record::Text(_) => Err(DataError::NotConversations { path: path.clone() }),
        })
        .collect()
}

/// Tokenizes exchanges for training (`template` must use the role markers).
pub fn encode(
    exchanges: &[Exchange],
    template: &ChatTemplate,
    codec: &TokenizerCodec,
) -> Vec<Example> {
    exchanges
        .iter()
        .filter_map(|e| {
            template
                .render_training(codec, &e.messages())
                .map(|(tokens, targets)| Example { tokens, targets })
        })
        .collect()
}
