//! `generate` tasks: the model's greedy answer to each prompt, cut where it ends (the end of
//! its turn, its end-of-document token, or the first stop sequence), compared with the
//! references: `exact_match` (the trimmed answer equals a trimmed reference) and `contains` (a
//! reference appears in the answer, for models that say more than asked).
//!
//! Prompts are asked one at a time with the KV cache: answers are short, and a greedy decode
//! is the same whatever else is in the batch, so batching would change speed, not scores.

use std::path::Path;

use pipelines::{EvalTask, DEFAULT_MAX_NEW_TOKENS};
use records::Record;
use serve::chat::{ChatTemplate, Message, Role};
use serve::engine::Codec;

use super::items::ItemsError;
use super::stats;
use crate::generate::{generate, Sampling};
use crate::model::{Gpt, ModelError};
use crate::server::engine::TokenizerCodec;
use crate::train::Observer;
use pipelines::artifacts::Score;
use tokenizer::EOS_NAMES;

/// One prompt and the answers counted right.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    /// The text asked: the user's message (the last one, in a conversation).
    pub prompt: String,
    pub answers: Vec<String>,
    /// The turns before the answer, in a chat: `[user prompt]`, or a conversation's earlier
    /// turns up to the last assistant message, which is the reference.
    pub turns: Vec<Message>,
}

impl Prompt {
    fn asked(prompt: String, answers: Vec<String>) -> Prompt {
        let turns = vec![Message {
            role: Role::User,
            content: prompt.clone(),
        }];
        Prompt {
            prompt,
            answers,
            turns,
        }
    }
}

/// What the model answered to one prompt.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Answered {
    pub answer: String,
    pub exact_match: bool,
    pub contains: bool,
}

/// Reads a JSONL file of `{"prompt": …, "answer": …}` or `{"prompt": …, "answers": […]}`.
pub fn read_jsonl(path: &Path) -> Result<Vec<Prompt>, ItemsError> {
    super::items::read_lines(
        path,
        "each line must be one JSON object with `prompt` (a string) and `answer` (a string) or \
         `answers` (a list of strings)",
        prompt,
    )
}

fn prompt(v: &serde_json::Value) -> Result<Prompt, String> {
    let prompt = v
        .get("prompt")
        .and_then(|p| p.as_str())
        .ok_or("`prompt` is missing or not a string")?
        .to_string();
    let answers: Vec<String> = match (v.get("answer"), v.get("answers")) {
        (Some(a), None) => vec![a.as_str().ok_or("`answer` is not a string")?.to_string()],
        (None, Some(list)) => list
            .as_array()
            .ok_or("`answers` is not a list")?
            .iter()
            .map(|a| a.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or("`answers` holds something that is not a string")?,
        (Some(_), Some(_)) => return Err("give `answer` or `answers`, not both".into()),
        (None, None) => return Err("`answer` (or `answers`) is missing".into()),
    };
    if answers.iter().all(|a| a.trim().is_empty()) {
        return Err("no non-empty reference answer".into());
    }
    Ok(Prompt::asked(prompt, answers))
}

/// Prompts from a data stage's exchanges: the response (the chosen one, for preference
/// records; a conversation's last assistant message, after the turns before it) is the
/// reference.
pub fn from_exchanges(stage: &str, records: &[Record]) -> Result<Vec<Prompt>, ItemsError> {
    let out: Vec<Prompt> = records
        .iter()
        .map(|r| match r {
            Record::Chat {
                prompt, response, ..
            } => Ok(Prompt::asked(prompt.clone(), vec![response.clone()])),
            Record::Conversation(messages) => {
                // A conversation record holds at least one assistant turn (the data stage
                // checks); the last one is what the model is asked to say.
                let last = messages
                    .iter()
                    .rposition(|m| m.role == Role::Assistant)
                    .unwrap_or(messages.len());
                let turns = messages[..last].to_vec();
                let prompt = turns
                    .iter()
                    .rev()
                    .find(|m| m.role == Role::User)
                    .map(|m| m.content.clone())
                    .unwrap_or_default();
                let answers = messages
                    .get(last)
                    .map(|m| m.content.clone())
                    .into_iter()
                    .collect();
                Ok(Prompt {
                    prompt,
                    answers,
                    turns,
                })
            }
            Record::Text(_) => Err(ItemsError::NotExchanges {
                stage: stage.to_string(),
            }),
        })
        .collect::<Result<_, _>>()?;
    if out.is_empty() {
        return Err(ItemsError::Empty {
            what: format!("data stage `{stage}`"),
        });
    }
    Ok(out)
}

/// How one task asks its prompts.
pub struct Asking<'a> {
    pub codec: &'a TokenizerCodec,
    pub template: ChatTemplate,
    pub chat: bool,
    pub stop: Vec<String>,
    pub max_new_tokens: usize,
}

impl<'a> Asking<'a> {
    pub fn new(codec: &'a TokenizerCodec, task: &EvalTask) -> Asking<'a> {
        let template = ChatTemplate::for_codec(codec);
        let chat = task.chat.unwrap_or(true);
        let mut stop = task.stop.clone();
        if chat {
            // A turn marker in the answer means the model went on to the next turn.
            stop.extend(template.stop_strings());
        }
        Asking {
            codec,
            template,
            chat,
            stop,
            max_new_tokens: task.max_new_tokens.unwrap_or(DEFAULT_MAX_NEW_TOKENS),
        }
    }

    /// The prompt's token ids: its turns in the chat template (then the assistant's marker),
    /// or the raw text of the prompt.
    fn encode(&self, prompt: &Prompt) -> Vec<i64> {
        let ids = if self.chat {
            self.template.render(self.codec, &prompt.turns)
        } else {
            self.codec.encode(&prompt.prompt)
        };
        ids.into_iter().map(i64::from).collect()
    }

    /// The token that ends an answer: the end of the assistant's turn in a chat, else the
    /// end-of-document token.
    fn end_token(&self) -> Option<i64> {
        let end = if self.chat {
            self.template.end_token()
        } else {
            self.codec.0.find_special(EOS_NAMES).map(|(_, id)| id)
        };
        end.map(i64::from)
    }

    /// The greedy answer to `prompt`, cut before the first stop sequence.
    pub fn answer(&self, model: &Gpt, prompt: &Prompt) -> Result<String, ModelError> {
        let sampling = Sampling {
            temperature: 0.0,
            max_tokens: self.max_new_tokens,
            stop: self.end_token(),
            ..Sampling::default()
        };
        let ids = generate(model, &self.encode(prompt), &sampling, |_| {})?;
        let ids: Vec<u32> = ids.iter().map(|&t| t as u32).collect();
        let text = String::from_utf8_lossy(&self.codec.decode(&ids)).into_owned();
        Ok(cut_at_stop(&text, &self.stop).to_string())
    }
}

/// `text` up to the earliest occurrence of any of `stop`.
pub fn cut_at_stop<'t>(text: &'t str, stop: &[String]) -> &'t str {
    let end = stop
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()))
        .min()
        .unwrap_or(text.len());
    &text[..end]
}

/// Whether `answer` is right by each measure.
pub fn judge(answer: &str, references: &[String]) -> Answered {
    let trimmed = answer.trim();
    Answered {
        answer: answer.to_string(),
        exact_match: references.iter().any(|r| r.trim() == trimmed),
        contains: references
            .iter()
            .map(|r| r.trim())
            .any(|r| !r.is_empty() && trimmed.contains(r)),
    }
}

/// `exact_match` and `contains` of `prompts`, each with a bootstrap standard error, and every
/// answer (for `samples.jsonl`).
pub fn score(
    model: &Gpt,
    asking: &Asking,
    prompts: &[Prompt],
    bootstrap: usize,
    seed: u64,
    obs: &dyn Observer,
) -> Result<(super::Metrics, Vec<Answered>), ModelError> {
    let mut answered = Vec::with_capacity(prompts.len());
    for (i, p) in prompts.iter().enumerate() {
        if obs.cancelled() {
            break;
        }
        answered.push(judge(&asking.answer(model, p)?, &p.answers));
        obs.progress(i as u64 + 1, Some(prompts.len() as u64));
    }
    let n = answered.len();
    let rate = |hits: &[f64], idx: &[usize]| {
        idx.iter().map(|&i| hits[i]).sum::<f64>() / idx.len().max(1) as f64
    };
    let all: Vec<usize> = (0..n).collect();
    let metric = |name: &str, hit: fn(&Answered) -> bool| {
        let hits: Vec<f64> = answered
            .iter()
            .map(|a| f64::from(u8::from(hit(a))))
            .collect();
        (
            name.to_string(),
            Score {
                value: rate(&hits, &all),
                stderr: stats::bootstrap_stderr(n, bootstrap, seed, |i| rate(&hits, i)),
            },
        )
    };
    let metrics = vec![
        metric("exact_match", |a| a.exact_match),
        metric("contains", |a| a.contains),
    ];
    Ok((metrics, answered))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_cut_at_the_earliest_stop_sequence() {
        let stop = vec!["\n".to_string(), "Question:".to_string()];
        assert_eq!(cut_at_stop("the barn.\nQuestion: x", &stop), "the barn.");
        assert_eq!(cut_at_stop("the barn. Question:\n", &stop), "the barn. ");
        assert_eq!(cut_at_stop("no stop here", &stop), "no stop here");
        assert_eq!(cut_at_stop("x", &[String::new()]), "x");
    }

    #[test]
    fn exact_match_trims_and_contains_looks_inside() {
        let refs = vec!["Ada is in the barn.".to_string()];
        let a = judge("  Ada is in the barn. ", &refs);
        assert!(a.exact_match && a.contains);
        let a = judge("I think Ada is in the barn. Yes.", &refs);
        assert!(!a.exact_match && a.contains);
        let a = judge("Ada is in the park.", &refs);
        assert!(!a.exact_match && !a.contains);
        // Any of several references counts; an empty one never "is contained".
        let refs = vec![String::new(), "barn".to_string()];
        assert!(judge("barn", &refs).exact_match);
        assert!(!judge("park", &refs).contains);
    }

    #[test]
    fn a_conversation_is_asked_for_its_last_assistant_turn_after_the_turns_before_it() {
        let m = |role, content: &str| Message {
            role,
            content: content.to_string(),
        };
        let records = vec![
            Record::Chat {
                prompt: "Where is Ada?".into(),
                response: "In the barn.".into(),
                rejected: None,
            },
            Record::Conversation(vec![
                m(Role::System, "Be brief."),
                m(Role::User, "Hi."),
                m(Role::Assistant, "Hello."),
                m(Role::User, "Where is Ben?"),
                m(Role::Assistant, "In the park."),
            ]),
        ];
        let prompts = from_exchanges("chats", &records).expect("prompts");
        assert_eq!(prompts[0].turns, [m(Role::User, "Where is Ada?")]);
        assert_eq!(prompts[0].answers, ["In the barn."]);
        assert_eq!(prompts[1].prompt, "Where is Ben?");
        assert_eq!(prompts[1].answers, ["In the park."]);
        assert_eq!(prompts[1].turns.len(), 4);
        assert_eq!(prompts[1].turns[3], m(Role::User, "Where is Ben?"));
        let err = from_exchanges("corpus", &[Record::Text("x".into())]).expect_err("text");
        assert!(err.to_string().contains("plain-text"), "{err}");
    }

    #[test]
    fn prompt_lines_take_one_answer_or_a_list_and_say_what_is_wrong() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("qa.jsonl");
        std::fs::write(
            &path,
            "{\"prompt\": \"2+2=\", \"answer\": \"4\"}\n\n{\"prompt\": \"hi\", \"answers\": [\"hello\", \"hey\"]}\n",
        )
        .expect("write");
        let prompts = read_jsonl(&path).expect("read");
        assert_eq!(prompts.len(), 2);
        assert_eq!(prompts[1].answers, ["hello", "hey"]);

        for (line, wanted) in [
            ("{\"prompt\": 1, \"answer\": \"4\"}", "`prompt`"),
            ("{\"prompt\": \"x\"}", "missing"),
            (
                "{\"prompt\": \"x\", \"answer\": \"a\", \"answers\": [\"b\"]}",
                "not both",
            ),
            (
                "{\"prompt\": \"x\", \"answers\": [\"a\", 2]}",
                "not a string",
            ),
            ("{\"prompt\": \"x\", \"answer\": \" \"}", "non-empty"),
            ("not json", "not JSON"),
        ] {
            std::fs::write(
                &path,
                format!("{{\"prompt\": \"ok\", \"answer\": \"a\"}}\n{line}\n"),
            )
            .expect("write");
            let err = read_jsonl(&path).expect_err(line).to_string();
            assert!(err.contains(":2:") && err.contains(wanted), "{line}: {err}");
        }
    }
}
