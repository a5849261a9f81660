//! Checking a request and resolving it into a [`GenPlan`]: every malformed or impossible request
//! stops here with a 400 that names the parameter and what would be accepted.

use serde_json::Value;

use crate::chat::{ChatTemplate, Message, Role};
use crate::engine::{Codec, ModelInfo, SpecialToken};
use crate::error::ApiError;
use crate::openai::{ChatMessageIn, ChatRequest, CompletionRequest, StreamOptions};
use crate::sampling::SamplingParams;
use crate::tokens::encode_with_specials;

/// Default `max_tokens` of `/v1/completions`, as in OpenAI's API.
pub const DEFAULT_COMPLETION_TOKENS: usize = 16;
/// Most stop strings one request may give.
pub const MAX_STOPS: usize = 16;

/// Request-shape limits of one server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most choices (`n`) per prompt.
    pub max_n: usize,
    /// Most alternatives per position (`logprobs`, `top_logprobs`).
    pub max_logprobs: usize,
    /// Most sequences (prompts × n) one request may start; never above the queue capacity,
    /// which would make it impossible to admit.
    pub max_sequences: usize,
}

/// What the server knows when it validates a request.
pub struct Context<'a> {
    pub codec: &'a dyn Codec,
    pub info: &'a ModelInfo,
    pub template: &'a ChatTemplate,
    /// Special tokens recognised by spelling in prompt text.
    pub specials: &'a [SpecialToken],
    pub limits: Limits,
}

/// A validated generation request.
#[derive(Debug, Clone, PartialEq)]
pub struct GenPlan {
    pub prompts: Vec<Vec<u32>>,
    pub n: usize,
    pub max_tokens: usize,
    pub sampling: SamplingParams,
    pub seed: Option<u64>,
    pub stop: Vec<String>,
    pub stop_tokens: Vec<u32>,
    /// Completions: put the prompt in front of the generated text.
    pub echo: bool,
    /// Log-probabilities of generated tokens, with this many alternatives.
    pub logprobs: Option<usize>,
    /// Log-probabilities of prompt tokens (completions with `echo`), with this many alternatives.
    pub prompt_logprobs: Option<usize>,
    pub stream: bool,
    pub include_usage: bool,
}

impl GenPlan {
    /// The sequences (choices) this request starts: prompts × n.
    pub fn sequences(&self) -> usize {
        self.prompts.len() * self.n
    }
}

/// The `model` parameter must name the served model.
pub fn check_model(asked: &str, info: &ModelInfo) -> Result<(), ApiError> {
    if asked == info.id {
        Ok(())
    } else {
        Err(ApiError::model_not_found(asked, &info.id))
    }
}

pub fn completion(req: &CompletionRequest, cx: &Context) -> Result<GenPlan, ApiError> {
    check_model(&req.model, cx.info)?;
    unsupported_neutral(
        req.presence_penalty,
        req.frequency_penalty,
        req.logit_bias.as_ref(),
    )?;
    if req.suffix.as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::param(
            "suffix",
            "`suffix` (insertion) is not supported by this model",
        ));
    }
    let prompts = prompts(&req.prompt, cx)?;
    let n = count_n(req.n, cx.limits.max_n)?;
    if let Some(b) = req.best_of {
        if b != n as i64 {
            return Err(ApiError::param(
                "best_of",
                format!("`best_of` other than `n` ({n}) is not supported"),
            ));
        }
    }
    let logprobs = match req.logprobs {
        None => None,
        Some(k) => Some(in_range("logprobs", k, 0, cx.limits.max_logprobs as i64)? as usize),
    };
    let echo = req.echo.unwrap_or(false);
    let max_tokens = match req.max_tokens {
        None => DEFAULT_COMPLETION_TOKENS,
        Some(m) => non_negative("max_tokens", m)?,
    };
    let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
    check_window(cx.info.context_length, longest, max_tokens, "prompt")?;
    let plan = GenPlan {
        n,
        max_tokens,
        sampling: sampling(req.temperature, req.top_p, req.top_k)?,
        seed: req.seed.map(|s| s as u64),
        stop: stops(req.stop.as_ref())?,
        stop_tokens: cx.info.eos_token.iter().map(|t| t.id).collect(),
        echo,
        prompt_logprobs: if echo { logprobs } else { None },
        logprobs,
        stream: req.stream.unwrap_or(false),
        include_usage: include_usage(req.stream, req.stream_options.as_ref())?,
        prompts,
    };
    check_sequences(&plan, cx.limits)?;
    Ok(plan)
}

pub fn chat(req: &ChatRequest, cx: &Context) -> Result<GenPlan, ApiError> {
    check_model(&req.model, cx.info)?;
    unsupported_neutral(
        req.presence_penalty,
        req.frequency_penalty,
        req.logit_bias.as_ref(),
    )?;
    let messages = messages(&req.messages)?;
    let prompt = cx.template.render(cx.codec, &messages);
    let n = count_n(req.n, cx.limits.max_n)?;
    let want_logprobs = req.logprobs.unwrap_or(false);
    let logprobs = match (want_logprobs, req.top_logprobs) {
        (false, Some(k)) if k > 0 => {
            return Err(ApiError::param(
                "top_logprobs",
                "`top_logprobs` needs `logprobs: true`",
            ))
        }
        (false, _) => None,
        (true, k) => Some(in_range(
            "top_logprobs",
            k.unwrap_or(0),
            0,
            cx.limits.max_logprobs as i64,
        )? as usize),
    };
    let room = cx.info.context_length.saturating_sub(prompt.len());
    let max_tokens = match (req.max_completion_tokens, req.max_tokens) {
        (Some(m), _) => non_negative("max_completion_tokens", m)?,
        (None, Some(m)) => non_negative("max_tokens", m)?,
        // OpenAI's default for chat: as much as the context window leaves.
        (None, None) => room,
    };
    check_window(cx.info.context_length, prompt.len(), max_tokens, "messages")?;
    let mut stop = stops(req.stop.as_ref())?;
    stop.extend(cx.template.stop_strings());
    let mut stop_tokens: Vec<u32> = cx.info.eos_token.iter().map(|t| t.id).collect();
    stop_tokens.extend(cx.template.stop_tokens());
    let plan = GenPlan {
        prompts: vec![prompt],
        n,
        max_tokens,
        sampling: sampling(req.temperature, req.top_p, req.top_k)?,
        seed: req.seed.map(|s| s as u64),
        stop,
        stop_tokens,
        echo: false,
        logprobs,
        prompt_logprobs: None,
        stream: req.stream.unwrap_or(false),
        include_usage: include_usage(req.stream, req.stream_options.as_ref())?,
    };
    check_sequences(&plan, cx.limits)?;
    Ok(plan)
}

/// Chat messages as the template takes them.
pub fn messages(raw: &[ChatMessageIn]) -> Result<Vec<Message>, ApiError> {
    if raw.is_empty() {
        return Err(ApiError::param(
            "messages",
            "`messages` must hold at least one message",
        ));
    }
    raw.iter()
        .enumerate()
        .map(|(i, m)| {
            let role = Role::parse(&m.role).ok_or_else(|| {
                ApiError::param(
                    format!("messages[{i}].role"),
                    format!(
                        "unknown role `{}`: use `system`, `user` or `assistant`",
                        m.role
                    ),
                )
            })?;
            let content = content_text(&m.content)
                .map_err(|e| ApiError::param(format!("messages[{i}].content"), e))?;
            Ok(Message { role, content })
        })
        .collect()
}

fn content_text(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        Value::Array(parts) => {
            let mut text = String::new();
            for p in parts {
                match (
                    p.get("type").and_then(Value::as_str),
                    p.get("text").and_then(Value::as_str),
                ) {
                    (Some("text"), Some(t)) => text.push_str(t),
                    (Some(other), _) if other != "text" => {
                        return Err(format!(
                            "content part of type `{other}` is not supported: this model reads text only"
                        ))
                    }
                    _ => {
                        return Err(
                            "a content part must be {\"type\": \"text\", \"text\": \"…\"}".into()
                        )
                    }
                }
            }
            Ok(text)
        }
        _ => Err("`content` must be a string or an array of text parts".into()),
    }
}

/// The prompt(s) of a completion request as token ids.
fn prompts(v: &Value, cx: &Context) -> Result<Vec<Vec<u32>>, ApiError> {
    let bad = || {
        ApiError::param(
            "prompt",
            "`prompt` must be a string, an array of strings, an array of token ids, or an array of token-id arrays",
        )
    };
    let prompts = match v {
        Value::String(s) => vec![encode_with_specials(cx.codec, cx.specials, s)],
        Value::Array(items) if items.is_empty() => {
            return Err(ApiError::param(
                "prompt",
                "`prompt` must not be an empty array",
            ))
        }
        Value::Array(items) => {
            if items.iter().all(Value::is_string) {
                items
                    .iter()
                    .map(|s| {
                        encode_with_specials(cx.codec, cx.specials, s.as_str().unwrap_or_default())
                    })
                    .collect()
            } else if items.iter().all(Value::is_number) {
                vec![token_ids(items, "prompt", cx)?]
            } else if items.iter().all(Value::is_array) {
                items
                    .iter()
                    .enumerate()
                    .map(|(i, a)| match a {
                        Value::Array(ids) => token_ids(ids, &format!("prompt[{i}]"), cx),
                        _ => Err(bad()),
                    })
                    .collect::<Result<_, _>>()?
            } else {
                return Err(bad());
            }
        }
        _ => return Err(bad()),
    };
    prompts
        .into_iter()
        .map(|p| {
            if !p.is_empty() {
                return Ok(p);
            }
            // An empty prompt means "start of a document": what the model saw before every
            // training document is the end-of-sequence token of the previous one.
            match (&cx.info.bos_token, &cx.info.eos_token) {
                (Some(t), _) | (None, Some(t)) => Ok(vec![t.id]),
                (None, None) => Err(ApiError::param(
                    "prompt",
                    "`prompt` is empty and this model has no BOS/EOS token to start from",
                )),
            }
        })
        .collect()
}

fn token_ids(items: &[Value], param: &str, cx: &Context) -> Result<Vec<u32>, ApiError> {
    let vocab = cx.codec.vocab_size();
    items
        .iter()
        .map(|v| match v.as_u64() {
            Some(id) if (id as usize) < vocab => Ok(id as u32),
            _ => Err(ApiError::param(
                param,
                format!("token ids must be integers in 0..{vocab} (the vocabulary size); got {v}"),
            )),
        })
        .collect()
}

fn count_n(n: Option<i64>, max: usize) -> Result<usize, ApiError> {
    Ok(in_range("n", n.unwrap_or(1), 1, max as i64)? as usize)
}

fn sampling(
    temperature: Option<f64>,
    top_p: Option<f64>,
    top_k: Option<i64>,
) -> Result<SamplingParams, ApiError> {
    let temperature = temperature.unwrap_or(1.0);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(ApiError::param(
            "temperature",
            format!("`temperature` must be between 0 and 2; got {temperature}"),
        ));
    }
    let top_p = top_p.unwrap_or(1.0);
    if !(top_p > 0.0 && top_p <= 1.0) {
        return Err(ApiError::param(
            "top_p",
            format!("`top_p` must be in (0, 1]; got {top_p}"),
        ));
    }
    let top_k = match top_k.unwrap_or(0) {
        // -1 is how vLLM and lm-evaluation-harness spell "no top-k".
        -1 | 0 => 0,
        k if k > 0 => k as usize,
        k => {
            return Err(ApiError::param(
                "top_k",
                format!("`top_k` must be a positive integer, or 0 / -1 for no limit; got {k}"),
            ))
        }
    };
    Ok(SamplingParams {
        temperature: temperature as f32,
        top_p: top_p as f32,
        top_k,
    })
}

fn stops(v: Option<&Value>) -> Result<Vec<String>, ApiError> {
    let list = match v {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|s| {
                s.as_str().map(str::to_string).ok_or_else(|| {
                    ApiError::param("stop", "`stop` must be a string or an array of strings")
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(ApiError::param(
                "stop",
                "`stop` must be a string or an array of strings",
            ))
        }
    };
    if list.len() > MAX_STOPS {
        return Err(ApiError::param(
            "stop",
            format!("at most {MAX_STOPS} stop strings; got {}", list.len()),
        ));
    }
    if list.iter().any(String::is_empty) {
        return Err(ApiError::param("stop", "stop strings must not be empty"));
    }
    Ok(list)
}

fn include_usage(stream: Option<bool>, opts: Option<&StreamOptions>) -> Result<bool, ApiError> {
    match opts {
        None => Ok(false),
        Some(_) if stream != Some(true) => Err(ApiError::param(
            "stream_options",
            "`stream_options` is only allowed with `stream: true`",
        )),
        Some(o) => Ok(o.include_usage),
    }
}

fn unsupported_neutral(
    presence: Option<f64>,
    frequency: Option<f64>,
    bias: Option<&serde_json::Map<String, Value>>,
) -> Result<(), ApiError> {
    for (name, v) in [
        ("presence_penalty", presence),
        ("frequency_penalty", frequency),
    ] {
        if v.is_some_and(|x| x != 0.0) {
            return Err(ApiError::param(
                name,
                format!("`{name}` is not supported by this server (only 0)"),
            ));
        }
    }
    if bias.is_some_and(|b| !b.is_empty()) {
        return Err(ApiError::param(
            "logit_bias",
            "`logit_bias` is not supported by this server",
        ));
    }
    Ok(())
}

fn in_range(name: &str, v: i64, min: i64, max: i64) -> Result<i64, ApiError> {
    if v < min || v > max {
        Err(ApiError::param(
            name,
            format!("`{name}` must be between {min} and {max}; got {v}"),
        ))
    } else {
        Ok(v)
    }
}

fn non_negative(name: &str, v: i64) -> Result<usize, ApiError> {
    usize::try_from(v)
        .map_err(|_| ApiError::param(name, format!("`{name}` must be 0 or more; got {v}")))
}

fn check_window(
    context: usize,
    prompt: usize,
    max_tokens: usize,
    prompt_param: &str,
) -> Result<(), ApiError> {
    if prompt + max_tokens > context {
        let param = if prompt > context {
            prompt_param
        } else {
            "max_tokens"
        };
        return Err(ApiError::param(
            param,
            format!(
                "this model's context window is {context} tokens, but {} were requested ({prompt} in the prompt + {max_tokens} max_tokens); shorten the prompt or lower max_tokens",
                prompt + max_tokens
            ),
        ));
    }
    Ok(())
}

fn check_sequences(plan: &GenPlan, limits: Limits) -> Result<(), ApiError> {
    let seqs = plan.sequences();
    if seqs > limits.max_sequences {
        return Err(ApiError::invalid(format!(
            "this request starts {seqs} sequences (prompts × n); the server accepts at most {} per request",
            limits.max_sequences
        )));
    }
    Ok(())
}
