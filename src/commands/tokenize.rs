//! `binarylm tokenize <tokenizer> "text"`: the pieces a tokenizer cuts text into, with their
//! ids — colour-coded on a terminal, one row per token otherwise.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;
use tokenizer::Tokenizer;

use crate::cli::{GlobalArgs, ShowArgs, TokenizeArgs};
use crate::error::CliError;

#[derive(Serialize)]
struct TokenDoc {
    id: u32,
    /// The token's bytes as text (invalid UTF-8 replaced).
    text: String,
    bytes: Vec<u8>,
    special: bool,
}

#[derive(Serialize)]
struct TokenizeDoc {
    tokenizer: String,
    vocab_size: usize,
    bytes: usize,
    tokens: Vec<TokenDoc>,
}

/// Background colours cycled over the pieces (256-colour palette, readable with black text).
const COLOURS: [u8; 6] = [153, 187, 224, 151, 218, 229];

pub fn tokenize(args: &TokenizeArgs, g: &GlobalArgs) -> Result<ExitCode, CliError> {
    let path = locate(args, g)?;
    let tok = Tokenizer::from_file(&path).map_err(|e| CliError::input(e.to_string()))?;
    let text = match args.text.as_deref() {
        Some(t) if t != "-" => t.to_string(),
        _ => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| CliError::input(format!("reading the text from stdin: {e}")))?;
            s
        }
    };
    let ids = if args.ordinary {
        tok.encode_ordinary(&text)
    } else {
        tok.encode(&text)
    };
    let tokens: Vec<TokenDoc> = ids
        .iter()
        .map(|&id| {
            let bytes = tok.token_bytes(id).unwrap_or_default().to_vec();
            TokenDoc {
                id,
                text: String::from_utf8_lossy(&bytes).into_owned(),
                bytes,
                special: tok.is_added(id),
            }
        })
        .collect();
    let doc = TokenizeDoc {
        tokenizer: path.display().to_string(),
        vocab_size: tok.vocab_size(),
        bytes: text.len(),
        tokens,
    };
    if args.json {
        super::print_json(&doc)?;
        return Ok(ExitCode::SUCCESS);
    }
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    print!("{}", render(&doc.tokens, colour));
    println!(
        "{} tokens, {} bytes ({:.2} bytes/token), vocab {}",
        doc.tokens.len(),
        doc.bytes,
        doc.bytes as f64 / doc.tokens.len().max(1) as f64,
        doc.vocab_size
    );
    Ok(ExitCode::SUCCESS)
}

/// The pieces: on a terminal the text itself with a background colour per token, then a row
/// of ids; otherwise one `id  "piece"` row per token.
fn render(tokens: &[TokenDoc], colour: bool) -> String {
    let mut out = String::new();
    if colour {
        for (i, t) in tokens.iter().enumerate() {
            let c = COLOURS[i % COLOURS.len()];
            let style = if t.special { "1;30" } else { "30" };
            out.push_str(&format!(
                "\x1b[{style};48;5;{c}m{}\x1b[0m",
                visible(&t.text)
            ));
        }
        out.push('\n');
        let ids: Vec<String> = tokens.iter().map(|t| t.id.to_string()).collect();
        out.push_str(&ids.join(" "));
        out.push('\n');
    } else {
        for t in tokens {
            let mark = if t.special { "  (special)" } else { "" };
            out.push_str(&format!(
                "{:>7}  {}{mark}\n",
                t.id,
                tokenizer::quoted(&t.bytes)
            ));
        }
    }
    out
}

/// Whitespace made visible inside a coloured piece (a newline would break the line of pieces).
fn visible(s: &str) -> String {
    s.replace('\n', "↵").replace('\t', "→")
}

/// The tokenizer.json to use: a file, a directory holding one (a tokenizer stage's artifact),
/// or a stage name / digest resolved in the workspace.
fn locate(args: &TokenizeArgs, g: &GlobalArgs) -> Result<PathBuf, CliError> {
    let given = Path::new(&args.tokenizer);
    if given.is_file() {
        return Ok(given.to_path_buf());
    }
    if given.is_dir() {
        let file = given.join("tokenizer.json");
        return if file.is_file() {
            Ok(file)
        } else {
            Err(CliError::input(format!(
                "{} has no tokenizer.json\nhint: give a tokenizer.json, a tokenizer stage's name, or its artifact digest",
                given.display()
            )))
        };
    }
    let show = ShowArgs {
        target: args.tokenizer.clone(),
        manifest: args.manifest.clone(),
        json: false,
    };
    let (_opened, resolved) = super::show::resolve(&show, g)?;
    let file = resolved.path.join("tokenizer.json");
    if !file.is_file() {
        return Err(CliError::input(format!(
            "artifact {} ({}) has no tokenizer.json\nhint: name a stage of kind `tokenizer`",
            resolved.digest, args.tokenizer
        )));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_escapes_controls_quotes_and_invalid_bytes() {
        assert_eq!(tokenizer::quoted(b"a \"b\"\n\xff"), r#""a \"b\"\n\xff""#);
        assert_eq!(tokenizer::quoted("Ġé".as_bytes()), "\"Ġé\"");
    }

    #[test]
    fn terminal_rendering_colours_each_piece_and_lists_the_ids() {
        let tokens = [
            TokenDoc {
                id: 7,
                text: "a\n".into(),
                bytes: b"a\n".to_vec(),
                special: false,
            },
            TokenDoc {
                id: 300,
                text: "<|eos|>".into(),
                bytes: b"<|eos|>".to_vec(),
                special: true,
            },
        ];
        let out = render(&tokens, true);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert!(lines[0].contains("\x1b[30;48;5;153ma↵\x1b[0m"), "{out}");
        assert!(
            lines[0].contains("\x1b[1;30;48;5;187m<|eos|>\x1b[0m"),
            "{out}"
        );
        assert_eq!(lines[1], "7 300");
        let plain = render(&tokens, false);
        assert_eq!(
            plain,
            "      7  \"a\\n\"\n    300  \"<|eos|>\"  (special)\n"
        );
    }
}
