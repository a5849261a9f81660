//! Preference pairs: a data stage's `prompt`/`chosen`/`rejected` records, each answer rendered
//! with the chat template as SFT renders a conversation, and batched as padded rows.

use std::path::{Path, PathBuf};

use records::Record;
use serve::chat::{ChatTemplate, Message, Role};
use tch::{Device, Tensor};

use crate::server::engine::TokenizerCodec;
use crate::sft::pack::{Example, IGNORE};

/// One preference record.
#[derive(Debug, Clone, PartialEq)]
pub struct Preference {
    pub prompt: String,
    pub chosen: String,
    pub rejected: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PairsError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: records::RecordsError,
    },
    #[error("{path} holds no preference pairs (records with `prompt`, `chosen` and `rejected`); dpo needs them: use a data stage with the `preferences` generator")]
    NotPreferences { path: PathBuf },
}

/// The preference records of `split` of the data stage in `dir`.
pub fn read_split(dir: &Path, split: &str) -> Result<Vec<Preference>, PairsError> {
    let path = dir.join(format!("{split}.parquet"));
    let recs = records::read_split(&path).map_err(|source| PairsError::Read {
        path: path.clone(),
        source,
    })?;
    let prefs: Option<Vec<Preference>> = recs
        .into_iter()
        .map(|r| match r {
            Record::Chat {
                prompt,
                response,
                rejected: Some(rejected),
            } => Some(Preference {
                prompt,
                chosen: response,
                rejected,
            }),
            _ => None,
        })
        .collect();
    match prefs {
        Some(p) if !p.is_empty() => Ok(p),
        _ => Err(PairsError::NotPreferences { path }),
    }
}

/// Tokenized pairs that fit in the context.
pub struct Pairs {
    pub chosen: Vec<Example>,
    pub rejected: Vec<Example>,
    /// The prompts of the kept pairs, with their answers (for greedy evaluation).
    pub records: Vec<Preference>,
    pub too_long: usize,
}

impl Pairs {
    pub fn encode(
        prefs: &[Preference],
        template: &ChatTemplate,
        codec: &TokenizerCodec,
        block: usize,
    ) -> Pairs {
        let render = |prompt: &str, answer: &str| {
            let messages = [
                Message {
                    role: Role::User,
                    content: prompt.to_string(),
                },
                Message {
                    role: Role::Assistant,
                    content: answer.to_string(),
                },
            ];
            template
                .render_training(codec, &messages)
                .map(|(tokens, targets)| Example { tokens, targets })
        };
        let mut p = Pairs {
            chosen: Vec::new(),
            rejected: Vec::new(),
            records: Vec::new(),
            too_long: 0,
        };
        for pref in prefs {
            let (Some(c), Some(r)) = (
                render(&pref.prompt, &pref.chosen),
                render(&pref.prompt, &pref.rejected),
            ) else {
                continue;
            };
            if c.pairs() > block || r.pairs() > block {
                p.too_long += 1;
                continue;
            }
            p.chosen.push(c);
            p.rejected.push(r);
            p.records.push(pref.clone());
        }
        p
    }

    pub fn len(&self) -> usize {
        self.chosen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chosen.is_empty()
    }

    /// Pairs `ids` as `(inputs, targets)` `(2B, T)`: the chosen answers, then the rejected
    /// ones, padded at the end to the longest (causal attention never looks ahead, so padding
    /// changes nothing before it), and the number of scored tokens.
    pub fn batch(&self, ids: &[usize], device: Device) -> (Tensor, Tensor, u64) {
        let rows: Vec<&Example> = ids
            .iter()
            .map(|&i| &self.chosen[i])
            .chain(ids.iter().map(|&i| &self.rejected[i]))
            .collect();
        let t = rows.iter().map(|e| e.pairs()).max().unwrap_or(1).max(1);
        let mut inputs = Vec::with_capacity(rows.len() * t);
        let mut targets = Vec::with_capacity(rows.len() * t);
        let mut scored = 0;
        for e in &rows {
            for i in 0..t {
                if i < e.pairs() {
                    inputs.push(i64::from(e.tokens[i]));
                    if e.targets[i + 1] {
                        targets.push(i64::from(e.tokens[i + 1]));
                        scored += 1;
                    } else {
                        targets.push(IGNORE);
                    }
                } else {
                    inputs.push(0);
                    targets.push(IGNORE);
                }
            }
        }
        let shape = [rows.len() as i64, t as i64];
        (
            Tensor::from_slice(&inputs).view(shape).to_device(device),
            Tensor::from_slice(&targets).view(shape).to_device(device),
            scored,
        )
    }
}
