//! A data stage's splits as records, and how the tokenizer renders them.
//!
//! The tokenizer stage reads them in process; the torch kinds that read a data stage directly
//! (DPO's rejected answers, eval's texts and choices) read them in `binarylm-torch`, so the
//! reader lives in this small crate that both can depend on.
//!
//! Plain documents (`text`) are encoded as they are. Instruction records (`prompt`,
//! `response`) and preference records (`prompt`, `chosen`, `rejected`) are rendered as a user
//! turn and an assistant turn, and conversations (`messages`, as JSON text: see [`messages`])
//! as all their turns, with the chat markers as special tokens, laid out by the chat
//! template's one definition (`serve::chat::layout`):
//!
//! ```text
//! <|user|>{prompt}<|end|><|assistant|>{response}<|end|>   (preference: response = chosen)
//! ```
//!
//! so a model pretrained on these shards has seen the template that SFT trains with and the
//! server prompts with. The rejected
//! answer of a preference pair is not in the shards (it is only meaningful next to the chosen
//! one, which DPO reads from the data stage directly), but it is training text for the
//! tokenizer.

pub mod messages;

use std::path::{Path, PathBuf};

use polars::prelude::{DataFrame, ParquetReader, SerReader};
use serve::chat::{layout, Message, Piece, Role};
use tokenizer::Segment;

/// Chat markers used to render structured records.
pub use serve::chat::{ASSISTANT_MARKER as ASSISTANT, END_MARKER as END, USER_MARKER as USER};

/// One record of a split.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Text(String),
    /// An exchange; `rejected` only for preference records.
    Chat {
        prompt: String,
        response: String,
        rejected: Option<String>,
    },
    /// A conversation of any number of turns (a `messages` record), at least one of them the
    /// assistant's.
    Conversation(Vec<Message>),
}

impl Record {
    /// The texts the tokenizer trains on.
    pub fn training_texts(&self) -> Vec<&str> {
        match self {
            Record::Text(t) => vec![t],
            Record::Chat {
                prompt,
                response,
                rejected,
            } => {
                let mut v = vec![prompt.as_str(), response.as_str()];
                v.extend(rejected.as_deref());
                v
            }
            Record::Conversation(messages) => messages.iter().map(|m| m.content.as_str()).collect(),
        }
    }

    /// What goes into the shards, as text and special-token segments: a chat record as a user
    /// turn and an assistant turn, laid out by the chat template's one definition.
    pub fn segments(&self) -> Vec<Segment<'_>> {
        let turns: Vec<(Role, &str)> = match self {
            Record::Text(t) => return vec![Segment::Text(t)],
            Record::Chat {
                prompt, response, ..
            } => vec![(Role::User, prompt), (Role::Assistant, response)],
            Record::Conversation(messages) => messages
                .iter()
                .map(|m| (m.role, m.content.as_str()))
                .collect(),
        };
        layout(&turns)
            .into_iter()
            .map(|piece| match piece {
                Piece::Marker(m) => Segment::Special(m),
                Piece::Text(t) => Segment::Text(t),
            })
            .collect()
    }

    /// UTF-8 bytes of the encoded text (markers not counted).
    pub fn text_bytes(&self) -> u64 {
        self.segments()
            .iter()
            .map(|s| match s {
                Segment::Text(t) => t.len() as u64,
                Segment::Special(_) => 0,
            })
            .sum()
    }

    pub fn is_chat(&self) -> bool {
        matches!(self, Record::Chat { .. } | Record::Conversation(_))
    }
}

/// Why a split could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    #[error("cannot read {path}: {message}\nhint: the `data` input must be a data stage's output (train.parquet, val.parquet)")]
    Table { path: PathBuf, message: String },
    #[error("{path} has columns [{found}], none of the record shapes binarylm encodes\nhint: expected `text`, or `prompt` + `response`, or `prompt` + `chosen` + `rejected`, or `messages`")]
    Shape { path: PathBuf, found: String },
    #[error("{path}: row {row}: {source}\nhint: the data stage checks conversations as it reads them; was this file written by one?")]
    Messages {
        path: PathBuf,
        row: usize,
        #[source]
        source: messages::MessagesError,
    },
    #[error("{path}: column `{column}` is {found}, not text")]
    NotText {
        path: PathBuf,
        column: String,
        found: String,
    },
}

/// The file of split `name` (`train`, `val`) in a data stage's output.
pub fn split_path(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join(format!("{name}.parquet"))
}

/// Reads one split's Parquet file.
pub fn read_split(path: &Path) -> Result<Vec<Record>, RecordsError> {
    let table_error = |message: String| RecordsError::Table {
        path: path.to_path_buf(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| table_error(e.to_string()))?;
    let df = ParquetReader::new(file)
        .finish()
        .map_err(|e| table_error(e.to_string()))?;
    let names: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|c| c.to_string())
        .collect();
    let has = |c: &str| names.iter().any(|n| n == c);
    if has("text") {
        return Ok(column(&df, path, "text")?
            .into_iter()
            .map(Record::Text)
            .collect());
    }
    if has("messages") {
        return column(&df, path, "messages")?
            .iter()
            .enumerate()
            .map(|(row, text)| {
                messages::parse(text)
                    .map(Record::Conversation)
                    .map_err(|source| RecordsError::Messages {
                        path: path.to_path_buf(),
                        row,
                        source,
                    })
            })
            .collect();
    }
    let response_column = if has("response") {
        "response"
    } else if has("chosen") {
        "chosen"
    } else {
        ""
    };
    if !has("prompt") || response_column.is_empty() {
        return Err(RecordsError::Shape {
            path: path.to_path_buf(),
            found: names.join(", "),
        });
    }
    let prompts = column(&df, path, "prompt")?;
    let responses = column(&df, path, response_column)?;
    let rejected = if response_column == "chosen" && has("rejected") {
        column(&df, path, "rejected")?
            .into_iter()
            .map(Some)
            .collect()
    } else {
        vec![None; prompts.len()]
    };
    Ok(prompts
        .into_iter()
        .zip(responses)
        .zip(rejected)
        .map(|((prompt, response), rejected)| Record::Chat {
            prompt,
            response,
            rejected,
        })
        .collect())
}

/// A string column's values; nulls become empty strings (the data stage writes none).
fn column(df: &DataFrame, path: &Path, name: &str) -> Result<Vec<String>, RecordsError> {
    let col = df.column(name).map_err(|e| RecordsError::Table {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let values = col.str().map_err(|_| RecordsError::NotText {
        path: path.to_path_buf(),
        column: name.to_string(),
        found: col.dtype().to_string(),
    })?;
    Ok(values
        .iter()
        .map(|v| v.unwrap_or_default().to_string())
        .collect())
}
