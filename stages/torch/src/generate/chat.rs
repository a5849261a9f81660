//! `binarylm chat`: a conversation with a fine-tuned model on the terminal.
//!
//! Each line of stdin is the user's next message (or the lines between two lines of `"""`, for
//! a message of several lines, as Ollama reads them). The whole conversation so far is rendered
//! with the chat template — as the server renders a `/v1/chat/completions` request, which
//! carries every earlier turn the same way — and the answer is sampled until `<|end|>` and
//! streamed. The model remembers nothing between turns except what the rendered conversation
//! holds, so when it no longer fits the model's window with room for an answer, its oldest
//! exchanges are dropped (the system message stays).

use std::io::{BufRead, IsTerminal, Write};
use std::time::Instant;

use serve::chat::{ChatTemplate, Message, Role};

use super::cli::{stream, GenerateArgs, GenerateError};
use crate::model::Gpt;
use crate::server::engine::TokenizerCodec;

/// The messages of a conversation: an optional system message, then user and assistant turns.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    messages: Vec<Message>,
    /// 1 when the first message is the system's (never dropped), else 0.
    kept: usize,
}

impl Conversation {
    pub fn new(system: Option<&str>) -> Conversation {
        let messages: Vec<Message> = system
            .map(|text| Message {
                role: Role::System,
                content: text.to_string(),
            })
            .into_iter()
            .collect();
        let kept = messages.len();
        Conversation { messages, kept }
    }

    pub fn ask(&mut self, text: &str) {
        self.push(Role::User, text);
    }

    pub fn answered(&mut self, text: &str) {
        self.push(Role::Assistant, text);
    }

    /// Forgets every turn; the system message stays.
    pub fn reset(&mut self) {
        self.messages.truncate(self.kept);
    }

    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    fn push(&mut self, role: Role, text: &str) {
        self.messages.push(Message {
            role,
            content: text.to_string(),
        });
    }

    /// The prompt for the next answer: the conversation rendered with `template`, its oldest
    /// exchanges (a user turn and its answer) dropped while the prompt is longer than `limit`
    /// tokens. Also returns whether it fits: the last message alone can be too long, and the
    /// model then sees only the end of the prompt.
    pub fn prompt(
        &mut self,
        template: &ChatTemplate,
        codec: &TokenizerCodec,
        limit: usize,
    ) -> (Vec<u32>, bool) {
        loop {
            let ids = template.render(codec, &self.messages);
            if ids.len() <= limit {
                return (ids, true);
            }
            if self.messages.len() < self.kept + 3 {
                return (ids, false);
            }
            self.messages.drain(self.kept..self.kept + 2);
        }
    }
}

/// How many of the window's tokens a prompt may take: the rest is room for the answer, up to
/// `max_tokens` but never more than half the window (a long answer on a short window would
/// leave no conversation at all).
pub fn prompt_limit(window: usize, max_tokens: usize) -> usize {
    window - max_tokens.min(window / 2)
}

/// A line of its own that opens and closes a message of several lines.
const MULTI_LINE: &str = "\"\"\"";

/// The lines up to the next `"""` line (or the end of input), joined by newlines.
fn read_until_fence(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
) -> Result<String, GenerateError> {
    let mut text = Vec::new();
    for line in lines {
        let line = line.map_err(GenerateError::Stdin)?;
        if line.trim() == MULTI_LINE {
            break;
        }
        text.push(line);
    }
    Ok(text.join("\n"))
}

/// Holds the conversation: reads messages from stdin until end of input or `/exit`, answers
/// each on stdout (streamed text, or one JSON object per answer with `--json`).
pub fn converse(
    args: &GenerateArgs,
    model: &Gpt,
    window: usize,
    codec: &TokenizerCodec,
) -> Result<(), GenerateError> {
    let tok = &codec.0;
    let template = ChatTemplate::for_codec(codec);
    let end = template
        .end_token()
        .ok_or_else(|| GenerateError::Artifact {
            dir: args.model_dir.display().to_string(),
            message: "its tokenizer has no chat markers (<|user|>, <|assistant|>, <|end|>): a \
                  conversation needs a model fine-tuned in the chat template (an sft or dpo \
                  stage's); `binarylm generate --prompt` continues plain text"
                .into(),
        })?;
    let stdin = std::io::stdin();
    let terminal = stdin.is_terminal();
    if terminal && !args.quiet {
        eprintln!(
            "chatting with {} — one message per line; /reset forgets the conversation, /exit \
             or Ctrl-D ends it",
            args.model_dir.display()
        );
    }
    let limit = prompt_limit(window, args.sampling.max_tokens);
    let mut conversation = Conversation::new(args.system.as_deref());
    let mut stdout = std::io::stdout().lock();
    let mut turn: u64 = 0;
    let mut lines = stdin.lock().lines();
    loop {
        if terminal {
            eprint!("> ");
            std::io::stderr().flush()?;
        }
        let Some(line) = lines.next() else { break };
        let mut line = line.map_err(GenerateError::Stdin)?;
        if line.trim() == MULTI_LINE {
            line = read_until_fence(&mut lines)?;
        }
        match line.trim() {
            "" => continue,
            "/exit" | "/quit" => break,
            "/reset" => {
                conversation.reset();
                continue;
            }
            text => conversation.ask(text),
        }
        let (ids, fits) = conversation.prompt(&template, codec, limit);
        if !fits && !args.quiet {
            eprintln!(
                "(this message takes {} tokens of the model's {window}-token window: it sees only \
                 the end)",
                ids.len()
            );
        }
        let prompt: Vec<i64> = ids.iter().map(|&id| i64::from(id)).collect();
        let mut s = args.sampling.clone();
        s.seed = s.seed.wrapping_add(turn);
        s.stop = Some(i64::from(end));
        let start = Instant::now();
        let (tokens, pending) = stream(model, &prompt, &s, tok, !args.json, &mut stdout)?;
        let answer_ids: Vec<u32> = tokens.iter().map(|&t| t as u32).collect();
        let answer = tok.decode_lossy(&answer_ids);
        if args.json {
            let doc = serde_json::json!({
                "turn": turn,
                "user": line.trim(),
                "text": answer,
                "tokens": answer_ids,
                "prompt_tokens": prompt.len(),
                "finish_reason": if tokens.len() < s.max_tokens { "stop" } else { "length" },
                "seconds": start.elapsed().as_secs_f64(),
            });
            writeln!(stdout, "{doc}")?;
        } else {
            stdout.write_all(String::from_utf8_lossy(&pending).as_bytes())?;
            writeln!(stdout)?;
        }
        stdout.flush()?;
        conversation.answered(answer.trim());
        turn += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_leaves_room_for_an_answer_but_never_more_than_half_the_window() {
        assert_eq!(prompt_limit(256, 32), 224);
        assert_eq!(prompt_limit(256, 200), 128);
        assert_eq!(prompt_limit(64, 64), 32);
    }

    #[test]
    fn a_fenced_message_keeps_its_lines() {
        let input = [
            "Once, Ada was in the park.",
            "Question: Where was Ada?",
            "\"\"\"",
            "next",
        ];
        let mut lines = input.iter().map(|l| Ok(l.to_string()));
        assert_eq!(
            read_until_fence(&mut lines).unwrap(),
            "Once, Ada was in the park.\nQuestion: Where was Ada?"
        );
        assert_eq!(lines.next().unwrap().unwrap(), "next");
        // An unclosed fence ends with the input.
        let mut rest = ["a", "b"].iter().map(|l| Ok(l.to_string()));
        assert_eq!(read_until_fence(&mut rest).unwrap(), "a\nb");
    }

    #[test]
    fn reset_keeps_the_system_message() {
        let mut c = Conversation::new(Some("Be brief."));
        c.ask("Hi");
        c.answered("Hello.");
        c.reset();
        assert_eq!(c.messages().len(), 1);
        assert_eq!(c.messages()[0].role, Role::System);
        let mut plain = Conversation::new(None);
        plain.ask("Hi");
        plain.reset();
        assert!(plain.messages().is_empty());
    }
}
