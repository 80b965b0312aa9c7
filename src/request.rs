//! A generation request as a user states it (prompt text or ids, chat template, pins, or infill
//! text with mask spans, and the sampler options), checked and turned into a canvas. The CLI and
//! the web page both go through here, so they build the same canvas for the same request.

use crate::error::{Error, Result};
use crate::model::{ModelConfig, TextTokenizer};
use crate::sampler::text::{self, apply_pins, end_tokens, infill_canvas, parse_infill, parse_pin, prompt_tokens};
use crate::sampler::{Canvas, SamplerOptions};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Request {
    /// Prompt text (generate mode).
    pub prompt: Option<String>,
    /// Prompt token ids, instead of text.
    pub prompt_tokens: Option<Vec<u32>>,
    /// Wrap the prompt in the chat template.
    pub chat: bool,
    /// A conversation in the chat template, instead of `prompt` (the answer is the next turn).
    pub messages: Option<Vec<text::Message>>,
    /// `OFFSET:WORD` pins in the answer.
    pub pins: Vec<String>,
    /// Infill text with `[MASK]` / `<mask:N>` spans (infill mode when set).
    pub infill: Option<String>,
    /// Tokens per `[MASK]` span.
    pub span_length: Option<usize>,
    /// Sampler options; for infill, `gen_length` is ignored, one block covers the canvas unless
    /// `block_length` is smaller, and `steps` is capped at the number of masks.
    pub options: SamplerOptions,
}

/// The canvas and the options that will run it.
pub struct Prepared {
    pub canvas: Canvas,
    pub options: SamplerOptions,
    /// Tokens that end an answer (EOS padding, EOT), stripped from counts.
    pub ends: [Option<u32>; 2],
}

fn need(t: Option<&TextTokenizer>) -> Result<&TextTokenizer> {
    t.ok_or_else(|| Error::Input("this model has no tokenizer: give prompt token ids, or load tokenizer.json with the model".into()))
}

impl Request {
    pub fn prepare(&self, cfg: &ModelConfig, tok: Option<&TextTokenizer>) -> Result<Prepared> {
        let (eos, eot) = end_tokens(cfg, tok);
        let ends = [eos, eot];
        if let Some(t) = &self.infill {
            let span = self.span_length.unwrap_or(4);
            if span == 0 || span > text::MAX_SPAN {
                return Err(Error::Input(format!("--span-length must be between 1 and {}", text::MAX_SPAN)));
            }
            let canvas = infill_canvas(need(tok)?, &parse_infill(t, span)?, cfg.mask_token_id, eos)?;
            let len = canvas.tokens.len();
            if len > cfg.max_sequence_length {
                return Err(Error::Input(format!("the text is {len} tokens, more than the model's context of {}", cfg.max_sequence_length)));
            }
            let o = one_block(SamplerOptions { gen_length: len, early_stop: false, ..self.options.clone() }, len, canvas.masked());
            o.check_common()?;
            return Ok(Prepared { canvas, options: o, ends });
        }
        let mut o = self.options.clone();
        o.validate()?;
        if cfg.attention_block > 0 && o.block_length != cfg.attention_block {
            return Err(Error::Input(format!(
                "this model attends block-causally in blocks of {0}: its sampler's blocks must be those (--block-length {0})",
                cfg.attention_block
            )));
        }
        let pins = self.pins.iter().map(|p| parse_pin(p)).collect::<Result<Vec<_>>>()?;
        let prompt = match (&self.messages, &self.prompt, &self.prompt_tokens) {
            (Some(messages), _, _) => need(tok)?.encode(&text::chat_messages(&cfg.family().chat, messages)?)?,
            (None, Some(text), _) => prompt_tokens(cfg, need(tok)?, text, self.chat)?,
            (None, None, Some(ids)) if !ids.is_empty() => ids.clone(),
            _ => return Err(Error::Input("the prompt is empty: give prompt text or prompt token ids".into())),
        };
        if let Some(bad) = prompt.iter().find(|&&t| t as usize >= cfg.vocab_size) {
            return Err(Error::Input(format!("prompt token id {bad} is outside the vocabulary (0..{})", cfg.vocab_size)));
        }
        // Saturating: a gen length near usize::MAX is refused below, not wrapped around.
        if o.schedule == crate::sampler::Schedule::Block && prompt.len().saturating_add(o.gen_length) <= cfg.max_sequence_length {
            // LLaDA 2 fills whole blocks: the canvas ends at a block boundary.
            o.gen_length = (prompt.len() + o.gen_length).next_multiple_of(o.block_length.max(1)) - prompt.len();
        }
        let total = prompt.len().saturating_add(o.gen_length);
        if total > cfg.max_sequence_length {
            return Err(Error::Input(format!(
                "the prompt ({} tokens) plus gen length {} is {total} positions, more than the model's context of {}: shorten the prompt or the answer",
                prompt.len(),
                o.gen_length,
                cfg.max_sequence_length
            )));
        }
        let mut canvas = Canvas::after_prompt(&prompt, o.gen_length, cfg.mask_token_id, eos);
        if !pins.is_empty() {
            apply_pins(&mut canvas, need(tok)?, &pins)?;
        }
        Ok(Prepared { canvas, options: o, ends })
    }
}

/// A block at least as long as the `len` positions to fill makes them one block, whose steps
/// are capped at its `masked` positions (an infill, a remask).
fn one_block(mut o: SamplerOptions, len: usize, masked: usize) -> SamplerOptions {
    if o.block_length >= len {
        o.block_length = len;
        o.steps = o.steps.min(masked).max(1);
    }
    o
}

/// Regenerating some positions of a finished canvas (the page's "click words to remask"):
/// `tokens` is the whole canvas with the mask id at the positions to redo (all at or after
/// `gen_start`). The answer is one block and `steps` is capped at the number of masks.
pub fn prepare_remask(cfg: &ModelConfig, tok: Option<&TextTokenizer>, tokens: Vec<u32>, gen_start: usize, options: SamplerOptions) -> Result<Prepared> {
    let (eos, eot) = end_tokens(cfg, tok);
    let len = tokens.len();
    if gen_start >= len || len > cfg.max_sequence_length {
        return Err(Error::Input(format!("remask: the canvas has {len} positions and the answer starts at {gen_start} (context {})", cfg.max_sequence_length)));
    }
    if let Some(bad) = tokens.iter().find(|&&t| t as usize >= cfg.vocab_size) {
        return Err(Error::Input(format!("remask: token id {bad} is outside the vocabulary (0..{})", cfg.vocab_size)));
    }
    let canvas = Canvas { tokens, gen_start, mask: cfg.mask_token_id, eos };
    let masked = canvas.masked();
    if masked == 0 {
        return Err(Error::Input("nothing to regenerate: select some positions of the answer first".into()));
    }
    let gen = len - gen_start;
    let o = one_block(SamplerOptions { gen_length: gen, block_length: SamplerOptions::ONE_BLOCK, early_stop: false, ..options }, gen, masked);
    o.check_common()?;
    Ok(Prepared { canvas, options: o, ends: [eos, eot] })
}
