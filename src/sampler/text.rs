//! From user text to a canvas: the family's chat format, infill text with `[MASK]` / `<mask:N>`
//! spans, and pinned words ("word constraints" of the official demo).

use super::Canvas;
use crate::error::{Error, Result};
use crate::model::arch::ChatFormat;
use crate::model::{ModelConfig, TextTokenizer};

/// Special tokens of LLaDA's tokenizer (and of the demo model's).
pub const BOS: &str = "<|startoftext|>";
pub const EOS: &str = "<|endoftext|>";
pub const EOT: &str = "<|eot_id|>";
pub const MASK: &str = "<|mdm_mask|>";

/// One user message in a family's chat format, ending where the answer starts.
pub fn chat_prompt(format: &ChatFormat, message: &str) -> String {
    let turn = |role: usize| format.header.replace("{role}", format.roles[role]);
    format!("{}{}{message}{}{}", format.bos, turn(1), format.end, turn(2))
}

/// One turn of a conversation, as OpenAI's chat API sends it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Message {
    /// `system` (or `developer`), `user` or `assistant`.
    pub role: String,
    pub content: String,
}

/// A conversation in a family's chat format, ending where the assistant's answer starts.
pub fn chat_messages(format: &ChatFormat, messages: &[Message]) -> Result<String> {
    if messages.is_empty() {
        return Err(Error::Input("messages is empty: give at least one message".into()));
    }
    if messages.iter().all(|m| m.content.trim().is_empty()) {
        return Err(Error::Input("the messages have no text: give some content".into()));
    }
    let turn = |role: usize| format.header.replace("{role}", format.roles[role]);
    let mut out = String::from(format.bos);
    for m in messages {
        let role = match m.role.as_str() {
            "system" | "developer" => 0,
            "user" => 1,
            "assistant" => 2,
            other => return Err(Error::Input(format!("message role {other:?} is not one of system, developer, user, assistant"))),
        };
        out += &turn(role);
        out += &m.content;
        out += format.end;
    }
    Ok(out + &turn(2))
}

/// The ids that end an answer: EOS (padding) and EOT, from the config or the tokenizer.
pub fn end_tokens(cfg: &ModelConfig, tok: Option<&TextTokenizer>) -> (Option<u32>, Option<u32>) {
    let eos = cfg.eos_token_id.or_else(|| tok.and_then(|t| t.token_to_id(EOS)));
    let eot = cfg.eot_token_id.or_else(|| tok.and_then(|t| t.token_to_id(EOT)));
    (eos, eot)
}

/// Tokens of a prompt: rejects empty text and text that leaves no room for the answer.
/// With `chat`, the text is wrapped in the chat format of `cfg`'s family.
pub fn prompt_tokens(cfg: &ModelConfig, tok: &TextTokenizer, text: &str, chat: bool) -> Result<Vec<u32>> {
    if text.trim().is_empty() {
        return Err(Error::Input("the prompt is empty: give some text with --prompt".into()));
    }
    tok.encode(&if chat { chat_prompt(&cfg.family().chat, text) } else { text.to_string() })
}

/// A piece of infill text: literal text or a run of masks.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Text(String),
    Masks(usize),
}

/// Largest span a single marker may ask for.
pub const MAX_SPAN: usize = 1024;

/// Splits text with `[MASK]` (a span of `default_span` masks) and `<mask:N>` (exactly N masks).
pub fn parse_infill(text: &str, default_span: usize) -> Result<Vec<Piece>> {
    let mut pieces = Vec::new();
    let mut rest = text;
    let mut lit = String::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("[MASK]") {
            push_text(&mut pieces, &mut lit);
            pieces.push(Piece::Masks(default_span));
            rest = after;
        } else if rest.starts_with("[MASK") {
            return Err(Error::Input("unclosed `[MASK`: write `[MASK]`".into()));
        } else if let Some(after) = rest.strip_prefix("<mask:") {
            let end = after.find('>').ok_or_else(|| Error::Input("unclosed `<mask:`: write `<mask:N>` with N the number of tokens".into()))?;
            let n: usize = after[..end].trim().parse().map_err(|_| Error::Input(format!("`<mask:{}>`: N must be a whole number of tokens", &after[..end])))?;
            if n == 0 || n > MAX_SPAN {
                return Err(Error::Input(format!("`<mask:{n}>`: N must be between 1 and {MAX_SPAN}")));
            }
            push_text(&mut pieces, &mut lit);
            pieces.push(Piece::Masks(n));
            rest = &after[end + 1..];
        } else {
            let c = rest.chars().next().unwrap();
            lit.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    push_text(&mut pieces, &mut lit);
    if !pieces.iter().any(|p| matches!(p, Piece::Masks(_))) {
        return Err(Error::Input("the text has no `[MASK]` or `<mask:N>` span to fill".into()));
    }
    Ok(pieces)
}

fn push_text(pieces: &mut Vec<Piece>, lit: &mut String) {
    if !lit.is_empty() {
        pieces.push(Piece::Text(std::mem::take(lit)));
    }
}

/// The infill canvas: text tokenized piece by piece, masks where the spans are; gen_start is 0
/// so that the blocks cover the whole canvas.
pub fn infill_canvas(tok: &TextTokenizer, pieces: &[Piece], mask: u32, eos: Option<u32>) -> Result<Canvas> {
    let mut tokens = Vec::new();
    for p in pieces {
        match p {
            Piece::Text(t) => tokens.extend(tok.encode(t)?),
            Piece::Masks(n) => tokens.extend(std::iter::repeat_n(mask, *n)),
        }
    }
    Ok(Canvas { tokens, gen_start: 0, mask, eos })
}

/// Parses `--pin OFFSET:WORD` (offset counted in answer tokens from 0).
pub fn parse_pin(s: &str) -> Result<(usize, String)> {
    let (pos, word) = s.split_once(':').ok_or_else(|| Error::Input(format!("--pin {s:?}: write OFFSET:WORD, e.g. --pin 0:Once")))?;
    let pos = pos.trim().parse().map_err(|_| Error::Input(format!("--pin {s:?}: OFFSET must be a whole number")))?;
    if word.is_empty() {
        return Err(Error::Input(format!("--pin {s:?}: the word is empty")));
    }
    Ok((pos, word.to_string()))
}

/// Writes pinned words into the answer part of a canvas (their tokens are then fixed).
pub fn apply_pins(canvas: &mut Canvas, tok: &TextTokenizer, pins: &[(usize, String)]) -> Result<()> {
    let gen_len = canvas.tokens.len() - canvas.gen_start;
    for (off, word) in pins {
        let ids = tok.encode(word)?;
        if off.checked_add(ids.len()).is_none_or(|end| end > gen_len) {
            return Err(Error::Input(format!("--pin {off}:{word} does not fit in --gen-length {gen_len} ({} tokens)", ids.len())));
        }
        for (i, id) in ids.into_iter().enumerate() {
            canvas.tokens[canvas.gen_start + off + i] = id;
        }
    }
    Ok(())
}
