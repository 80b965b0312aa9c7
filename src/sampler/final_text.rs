//! The answer's final text while a generation runs, for streaming it (the server's SSE chunks).
//! The masked-diffusion samplers only ever commit tokens, never take one back, so every position
//! from the answer's start up to the first mask is final: its text can be sent at once. The text
//! ends at the first end token (EOS padding, EOT) or stop string; a tail that may still change
//! (an unfinished UTF-8 character, the start of a stop string) is held back until it is settled.

use super::{Canvas, StepEvent};
use crate::error::Result;
use crate::model::TextTokenizer;

/// Why the answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// An end token or a stop string.
    Stop,
    /// The canvas ran out: the answer was cut at the generation length.
    Length,
}

impl Finish {
    /// OpenAI's `finish_reason`.
    pub fn name(self) -> &'static str {
        match self {
            Finish::Stop => "stop",
            Finish::Length => "length",
        }
    }
}

pub struct FinalText {
    tokens: Vec<u32>,
    start: usize,
    mask: u32,
    ends: Vec<u32>,
    stops: Vec<String>,
    /// The most answer tokens shown (the answer is cut there).
    limit: usize,
    /// Bytes of the text sent so far.
    sent: String,
    finish: Option<Finish>,
}

impl FinalText {
    /// `ends`: the tokens that end an answer; `stops`: strings that end it too (not sent).
    pub fn new(canvas: &Canvas, ends: Vec<u32>, stops: Vec<String>) -> Self {
        let stops = stops.into_iter().filter(|s| !s.is_empty()).collect();
        FinalText {
            tokens: canvas.tokens.clone(),
            start: canvas.gen_start,
            mask: canvas.mask,
            ends,
            stops,
            limit: usize::MAX,
            sent: String::new(),
            finish: None,
        }
    }

    /// Shows at most `limit` answer tokens: the answer ends (`Finish::Length`) once they are final.
    pub fn with_limit(self, limit: usize) -> Self {
        FinalText { limit, ..self }
    }

    /// Applies a step's commits; returns the text that became final (empty if none).
    pub fn step(&mut self, e: &StepEvent, tok: &TextTokenizer) -> Result<String> {
        for c in &e.committed {
            if let Some(t) = self.tokens.get_mut(c.pos) {
                *t = c.token;
            }
        }
        self.advance(tok, false)
    }

    /// The rest of the text once the generation is over (`tokens`: the final canvas).
    pub fn finish(&mut self, tokens: &[u32], tok: &TextTokenizer) -> Result<String> {
        self.tokens = tokens.to_vec();
        self.advance(tok, true)
    }

    /// Why the answer ended (after `finish`); `None` while it runs.
    pub fn reason(&self) -> Option<Finish> {
        self.finish
    }

    /// The canvas as the steps so far left it.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// All the text sent so far.
    pub fn text(&self) -> &str {
        &self.sent
    }

    fn advance(&mut self, tok: &TextTokenizer, over: bool) -> Result<String> {
        if self.finish.is_some() {
            return Ok(String::new());
        }
        let answer = &self.tokens[self.start.min(self.tokens.len())..];
        let answer = &answer[..answer.len().min(self.limit)];
        let settled = answer.iter().position(|&t| t == self.mask).unwrap_or(answer.len());
        let end = answer[..settled].iter().position(|t| self.ends.contains(t));
        let ids = &answer[..end.unwrap_or(settled)];
        let mut text = tok.decode(ids, false)?;
        let cut = settled == answer.len() && answer.len() == self.limit;
        let mut finish = end.map(|_| Finish::Stop).or((over || cut).then_some(Finish::Length));
        if let Some(cut) = self.stops.iter().filter_map(|s| text.find(s.as_str())).min() {
            text.truncate(cut);
            finish = Some(Finish::Stop);
        }
        let mut shown = text.len();
        if finish.is_none() {
            // Hold back what more tokens may still change: an unfinished character (decoded as
            // U+FFFD) and a tail that could begin a stop string.
            shown = text.trim_end_matches('\u{FFFD}').len();
            let held = self.stops.iter().map(|s| partial_suffix(&text[..shown], s)).max().unwrap_or(0);
            shown -= held;
        }
        let delta = match text[..shown].strip_prefix(self.sent.as_str()) {
            Some(d) => d.to_string(),
            // Decoding a longer prefix rewrote text already sent (a tokenizer whose decoder
            // looks ahead): send nothing more until the end, which sends what it can.
            None => String::new(),
        };
        self.sent.push_str(&delta);
        self.finish = finish;
        Ok(delta)
    }
}

/// The length of the longest tail of `text` that is a proper beginning of `stop`: what a stream
/// holds back in case a stop string is still arriving.
pub fn partial_suffix(text: &str, stop: &str) -> usize {
    (1..stop.len().min(text.len() + 1))
        .rev()
        .find(|&n| stop.is_char_boundary(n) && text.is_char_boundary(text.len() - n) && text.ends_with(&stop[..n]))
        .unwrap_or(0)
}
