//! What a task scores, as text: multiple-choice questions read from the published JSONL
//! layouts or from a data stage's preference records, and documents read from a data stage.
//! Tokenizing is left to the scorer, since each model has its own tokenizer.
//!
//! The prompts follow lm-evaluation-harness's task definitions (the field names of each
//! published file, `Question: …\nAnswer:` with the choice after a space), so scores compare
//! with the numbers people publish.

use std::path::{Path, PathBuf};

use common::rng::SplitMix64;
use pipelines::ChoiceFormat;
use records::Record;
use tokenizer::Segment;

/// Text or a special token (a chat marker), in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Text(String),
    Special(&'static str),
}

impl Piece {
    pub fn segment(&self) -> Segment<'_> {
        match self {
            Piece::Text(t) => Segment::Text(t),
            Piece::Special(s) => Segment::Special(s),
        }
    }
}

/// One multiple-choice question.
#[derive(Debug, Clone, PartialEq)]
pub struct Question {
    pub context: Vec<Piece>,
    pub choices: Vec<Vec<Piece>>,
    /// What `acc_norm` divides each choice's log-likelihood by: the characters of the choice
    /// itself, without the space that joins it to the prompt and without special tokens.
    /// lm-evaluation-harness divides by `len(choice)` of the choice before its target
    /// delimiter is prepended, so counting the space would change which choice wins.
    pub lengths: Vec<usize>,
    /// Index of the right choice.
    pub answer: usize,
}

/// The continuations of `choices` (each after a space, the target delimiter) and their
/// `acc_norm` lengths (without it).
fn spaced<S: AsRef<str>>(choices: &[S]) -> (Vec<Vec<Piece>>, Vec<usize>) {
    choices
        .iter()
        .map(|c| {
            let c = c.as_ref();
            (vec![Piece::Text(format!(" {c}"))], c.chars().count())
        })
        .unzip()
}

#[derive(Debug, thiserror::Error)]
pub enum ItemsError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {message}\nhint: {hint}", path.display())]
    Bad {
        path: PathBuf,
        line: usize,
        message: String,
        hint: String,
    },
    #[error(transparent)]
    Records(#[from] records::RecordsError),
    #[error("{what} has no items to score")]
    Empty { what: String },
    #[error("data stage `{stage}` holds {found} records; a `choice` task reads preference records (prompt, chosen, rejected)\nhint: use a data stage with the `preferences` generator or prompt/chosen/rejected columns, or a `perplexity` task for documents")]
    NotPreferences { stage: String, found: &'static str },
    #[error("data stage `{stage}` holds plain-text records; a `generate` task reads exchanges (prompt and response)\nhint: use a data stage with the `instructions` or `preferences` generator, or prompt/response columns")]
    NotExchanges { stage: String },
    #[error("{what}: {shots} shots need at least {} items (each question's shots are other questions)", shots + 1)]
    TooFewForShots { what: String, shots: usize },
}

/// Reads a JSONL file of questions in `format`.
pub fn read_jsonl(path: &Path, format: ChoiceFormat) -> Result<Vec<Question>, ItemsError> {
    read_lines(
        path,
        &format!("each line must be one JSON object with {}", fields(format)),
        |v| question(v, format),
    )
}

/// Each non-blank line of the JSONL file `path` through `parse`; a line that is not JSON, or
/// that `parse` refuses, is an error naming the file and line, with `hint`.
pub fn read_lines<T>(
    path: &Path,
    hint: &str,
    parse: impl Fn(&serde_json::Value) -> Result<T, String>,
) -> Result<Vec<T>, ItemsError> {
    let text = std::fs::read_to_string(path).map_err(|source| ItemsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |message: String| ItemsError::Bad {
            path: path.to_path_buf(),
            line: i + 1,
            message,
            hint: hint.to_string(),
        };
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| bad(format!("not JSON: {e}")))?;
        out.push(parse(&v).map_err(bad)?);
    }
    if out.is_empty() {
        return Err(ItemsError::Empty {
            what: path.display().to_string(),
        });
    }
    Ok(out)
}

fn fields(format: ChoiceFormat) -> &'static str {
    match format {
        ChoiceFormat::Generic => {
            "`question`, `choices` (a list of strings) and `answer` (an index)"
        }
        ChoiceFormat::Hellaswag => {
            "`ctx` (or `ctx_a` and `ctx_b`), `endings`, `label` and optionally `activity_label`"
        }
        ChoiceFormat::Arc => "`question`, `choices: {text: [...], label: [...]}` and `answerKey`",
        ChoiceFormat::Mmlu => "`question`, `choices` (a list of strings) and `answer` (an index)",
        ChoiceFormat::Piqa => "`goal`, `sol1`, `sol2` and `label`",
    }
}

fn text(v: &serde_json::Value, key: &str) -> Result<String, String> {
    v.get(key)
        .and_then(|x| x.as_str())
        .map(str::to_string)
        .ok_or_else(|| format!("`{key}` is missing or not a string"))
}

fn strings(v: &serde_json::Value, what: &str) -> Result<Vec<String>, String> {
    v.as_array()
        .ok_or_else(|| format!("`{what}` is not a list"))?
        .iter()
        .map(|x| {
            x.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("`{what}` holds a non-string"))
        })
        .collect()
}

/// An index given as a number or a numeric string (HellaSwag writes `"label": "2"`).
fn index(v: &serde_json::Value, key: &str) -> Result<usize, String> {
    match v.get(key) {
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .map(|n| n as usize)
            .ok_or_else(|| format!("`{key}` is not a non-negative integer")),
        Some(serde_json::Value::String(s)) => s
            .trim()
            .parse()
            .map_err(|_| format!("`{key}` is `{s}`, not an index")),
        _ => Err(format!("`{key}` is missing")),
    }
}

fn qa(question: &str) -> Vec<Piece> {
    vec![Piece::Text(format!("Question: {question}\nAnswer:"))]
}

fn question(v: &serde_json::Value, format: ChoiceFormat) -> Result<Question, String> {
    let q = match format {
        ChoiceFormat::Generic => {
            let (choices, lengths) = spaced(&strings(
                v.get("choices").unwrap_or(&serde_json::Value::Null),
                "choices",
            )?);
            Question {
                context: qa(&text(v, "question")?),
                choices,
                lengths,
                answer: index(v, "answer")?,
            }
        }
        ChoiceFormat::Mmlu => {
            let choices = strings(
                v.get("choices").unwrap_or(&serde_json::Value::Null),
                "choices",
            )?;
            if choices.len() > 26 {
                return Err("more than 26 choices cannot be lettered".into());
            }
            let mut prompt = text(v, "question")?.trim().to_string();
            for (i, c) in choices.iter().enumerate() {
                prompt.push_str(&format!("\n{}. {c}", letter(i)));
            }
            prompt.push_str("\nAnswer:");
            let letters: Vec<String> = (0..choices.len()).map(|i| letter(i).to_string()).collect();
            let (choices, lengths) = spaced(&letters);
            Question {
                context: vec![Piece::Text(prompt)],
                choices,
                lengths,
                answer: index(v, "answer")?,
            }
        }
        ChoiceFormat::Arc => {
            let choices = v
                .get("choices")
                .ok_or_else(|| "`choices` is missing".to_string())?;
            let texts = strings(
                choices.get("text").unwrap_or(&serde_json::Value::Null),
                "choices.text",
            )?;
            let labels = strings(
                choices.get("label").unwrap_or(&serde_json::Value::Null),
                "choices.label",
            )?;
            let key = text(v, "answerKey")?;
            let answer = labels
                .iter()
                .position(|l| *l == key)
                .ok_or_else(|| format!("`answerKey` {key} is not one of the labels {labels:?}"))?;
            let (choices, lengths) = spaced(&texts);
            Question {
                context: qa(&text(v, "question")?),
                choices,
                lengths,
                answer,
            }
        }
        ChoiceFormat::Piqa => {
            let (choices, lengths) = spaced(&[text(v, "sol1")?, text(v, "sol2")?]);
            Question {
                context: qa(&text(v, "goal")?),
                choices,
                lengths,
                answer: index(v, "label")?,
            }
        }
        ChoiceFormat::Hellaswag => {
            let ctx = match text(v, "ctx") {
                Ok(c) => c,
                Err(_) => {
                    let b = text(v, "ctx_b")?;
                    format!("{} {}", text(v, "ctx_a")?, capitalize(&b))
                }
            };
            let context = match v.get("activity_label").and_then(|a| a.as_str()) {
                Some(label) => format!("{label}: {ctx}"),
                None => ctx,
            };
            let endings = strings(
                v.get("endings").unwrap_or(&serde_json::Value::Null),
                "endings",
            )?;
            let endings: Vec<String> = endings.iter().map(|e| hellaswag_clean(e)).collect();
            let (choices, lengths) = spaced(&endings);
            Question {
                context: vec![Piece::Text(hellaswag_clean(&context))],
                choices,
                lengths,
                answer: index(v, "label")?,
            }
        }
    };
    if q.choices.len() < 2 {
        return Err(format!(
            "{} choice(s); a question needs at least 2",
            q.choices.len()
        ));
    }
    if q.answer >= q.choices.len() {
        return Err(format!(
            "answer {} is out of range for {} choices (answers count from 0)",
            q.answer,
            q.choices.len()
        ));
    }
    Ok(q)
}

fn letter(i: usize) -> char {
    (b'A' + i as u8) as char
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// HellaSwag's WikiHow texts carry `[title]`-style markers; the usual preprocessing turns
/// ` [title]` into `. `, drops other bracketed markers and doubled spaces.
fn hellaswag_clean(s: &str) -> String {
    let s = s.trim().replace(" [title]", ". ");
    let mut out = String::with_capacity(s.len());
    let mut depth = 0usize;
    for c in s.chars() {
        match c {
            '[' => depth += 1,
            ']' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.replace("  ", " ")
}

/// Questions from a data stage's preference records: the prompt in the chat template, the
/// chosen answer right and the rejected one wrong.
pub fn from_preferences(stage: &str, records: &[Record]) -> Result<Vec<Question>, ItemsError> {
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        match r {
            Record::Chat {
                prompt,
                response,
                rejected: Some(rejected),
            } => out.push(Question {
                // The user's turn as the chat template lays it out, then the assistant's
                // marker: what the served model sees before it answers.
                context: serve::chat::layout(&[(serve::chat::Role::User, prompt.as_str())])
                    .into_iter()
                    .map(|p| match p {
                        serve::chat::Piece::Marker(m) => Piece::Special(m),
                        serve::chat::Piece::Text(t) => Piece::Text(t.to_string()),
                    })
                    .chain(std::iter::once(Piece::Special(records::ASSISTANT)))
                    .collect(),
                choices: vec![
                    vec![Piece::Text(response.clone()), Piece::Special(records::END)],
                    vec![Piece::Text(rejected.clone()), Piece::Special(records::END)],
                ],
                // No delimiter here: the answer follows the assistant marker directly.
                lengths: vec![response.chars().count(), rejected.chars().count()],
                answer: 0,
            }),
            Record::Chat { rejected: None, .. } => {
                return Err(ItemsError::NotPreferences {
                    stage: stage.to_string(),
                    found: "instruction",
                })
            }
            Record::Text(_) => {
                return Err(ItemsError::NotPreferences {
                    stage: stage.to_string(),
                    found: "plain-text",
                })
            }
            Record::Conversation(_) => {
                return Err(ItemsError::NotPreferences {
                    stage: stage.to_string(),
                    found: "conversation (messages)",
                })
            }
        }
    }
    if out.is_empty() {
        return Err(ItemsError::Empty {
            what: format!("data stage `{stage}`"),
        });
    }
    Ok(out)
}

/// Puts `shots` solved examples before each question, drawn (seeded) from the other questions;
/// examples end with their right answer and are separated by a blank line. The shot pool is
/// the whole source, so limiting the scored questions does not change their prompts.
pub fn with_shots(
    pool: &[Question],
    scored: usize,
    shots: usize,
    seed: u64,
    what: &str,
) -> Result<Vec<Question>, ItemsError> {
    if shots == 0 {
        return Ok(pool[..scored].to_vec());
    }
    if pool.len() <= shots {
        return Err(ItemsError::TooFewForShots {
            what: what.to_string(),
            shots,
        });
    }
    let mut rng = SplitMix64::new(seed);
    let mut out = Vec::with_capacity(scored);
    for (i, q) in pool[..scored].iter().enumerate() {
        let mut picked: Vec<usize> = Vec::with_capacity(shots);
        while picked.len() < shots {
            let j = (rng.next_u64() % pool.len() as u64) as usize;
            if j != i && !picked.contains(&j) {
                picked.push(j);
            }
        }
        let mut context = Vec::new();
        for j in picked {
            let shot = &pool[j];
            context.extend(shot.context.iter().cloned());
            context.extend(shot.choices[shot.answer].iter().cloned());
            context.push(Piece::Text("\n\n".to_string()));
        }
        context.extend(q.context.iter().cloned());
        out.push(Question {
            context,
            choices: q.choices.clone(),
            lengths: q.lengths.clone(),
            answer: q.answer,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str, format: ChoiceFormat) -> Result<Question, String> {
        question(&serde_json::from_str(line).unwrap(), format)
    }

    fn texts(p: &[Piece]) -> String {
        p.iter()
            .map(|p| match p {
                Piece::Text(t) => t.clone(),
                Piece::Special(s) => s.to_string(),
            })
            .collect()
    }

    #[test]
    fn published_layouts_become_prompts_and_choices() {
        let arc = one(
            r#"{"question":"Which is a gas?","choices":{"text":["ice","steam"],"label":["A","B"]},"answerKey":"B"}"#,
            ChoiceFormat::Arc,
        )
        .unwrap();
        assert_eq!(texts(&arc.context), "Question: Which is a gas?\nAnswer:");
        assert_eq!(texts(&arc.choices[1]), " steam");
        // acc_norm divides by the choice's own characters, not the joining space.
        assert_eq!(arc.lengths, vec![3, 5]);
        assert_eq!(arc.answer, 1);

        let mmlu = one(
            r#"{"question":"2+2?","choices":["3","4","5","6"],"answer":1}"#,
            ChoiceFormat::Mmlu,
        )
        .unwrap();
        assert_eq!(
            texts(&mmlu.context),
            "2+2?\nA. 3\nB. 4\nC. 5\nD. 6\nAnswer:"
        );
        assert_eq!(texts(&mmlu.choices[3]), " D");

        let hs = one(
            r#"{"activity_label":"Baking","ctx_a":"She mixes flour.","ctx_b":"then she","endings":["bakes it [title] done.","sings"],"label":"0"}"#,
            ChoiceFormat::Hellaswag,
        )
        .unwrap();
        assert_eq!(texts(&hs.context), "Baking: She mixes flour. Then she");
        assert_eq!(texts(&hs.choices[0]), " bakes it. done.");

        let piqa = one(
            r#"{"goal":"Open a jar","sol1":"twist","sol2":"kick","label":0}"#,
            ChoiceFormat::Piqa,
        )
        .unwrap();
        assert_eq!(piqa.choices.len(), 2);
    }

    #[test]
    fn bad_items_say_what_is_wrong() {
        let e = one(
            r#"{"question":"q","choices":["a"],"answer":0}"#,
            ChoiceFormat::Generic,
        )
        .unwrap_err();
        assert!(e.contains("at least 2"), "{e}");
        let e = one(
            r#"{"question":"q","choices":["a","b"],"answer":2}"#,
            ChoiceFormat::Generic,
        )
        .unwrap_err();
        assert!(e.contains("out of range"), "{e}");
        let e = one(r#"{"choices":["a","b"],"answer":0}"#, ChoiceFormat::Generic).unwrap_err();
        assert!(e.contains("`question`"), "{e}");
    }

    #[test]
    fn shots_are_other_questions_with_their_answers() {
        let pool: Vec<Question> = (0..5)
            .map(|i| Question {
                context: vec![Piece::Text(format!("Q{i}"))],
                choices: vec![
                    vec![Piece::Text(format!(" right{i}"))],
                    vec![Piece::Text(" wrong".into())],
                ],
                lengths: vec![format!("right{i}").len(), 5],
                answer: 0,
            })
            .collect();
        let shot = with_shots(&pool, 3, 2, 7, "t").unwrap();
        assert_eq!(shot.len(), 3);
        for (i, q) in shot.iter().enumerate() {
            let t = texts(&q.context);
            assert!(t.ends_with(&format!("Q{i}")), "{t}");
            assert_eq!(t.matches("\n\n").count(), 2, "{t}");
            assert!(!t[..t.len() - 2].contains(&format!("Q{i} right")), "{t}");
        }
        assert_eq!(shot, with_shots(&pool, 3, 2, 7, "t").unwrap(), "seeded");
        assert!(with_shots(&pool[..2], 2, 2, 7, "t").is_err());
    }
}
