//! The held-out task suite of the demo model: items `{task, prompt, answer}` in JSONL files, a
//! scoring rule per task, and accuracy per task. The CLI's `unmask eval` runs it through the real
//! engine and sampler.

use crate::error::{Error, Result};
use crate::model::{ModelConfig, TextTokenizer};
use crate::request::Request;
use crate::sampler::{self, Denoiser, Generation, SamplerOptions};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Item {
    pub task: String,
    /// A user message (asked through the chat template), or with `infill`, a text with
    /// `<mask:N>` spans that the model fills in place (no chat template).
    pub prompt: String,
    pub answer: String,
    #[serde(default)]
    pub infill: bool,
}

/// Reads a JSONL file of items; `file` names it in errors.
pub fn parse_items(file: &str, text: &str) -> Result<Vec<Item>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| Error::model(file, format!("line {}: {e}", i + 1))))
        .collect()
}

/// The engine's response to `item` under `options`, and the generation: for a chat item the
/// text after the prompt, for an infill item the text written into its mask spans.
pub async fn respond<D: Denoiser>(
    model: &mut D,
    cfg: &ModelConfig,
    tok: &TextTokenizer,
    item: &Item,
    options: &SamplerOptions,
) -> Result<(String, Generation)> {
    let req = match item.infill {
        true => Request { infill: Some(item.prompt.clone()), options: options.clone(), ..Default::default() },
        false => Request { prompt: Some(item.prompt.clone()), chat: true, options: options.clone(), ..Default::default() },
    };
    let p = req.prepare(cfg, Some(tok))?;
    let filled: Vec<usize> = (p.canvas.gen_start..p.canvas.tokens.len()).filter(|&i| p.canvas.tokens[i] == p.canvas.mask).collect();
    let g = sampler::run(model, p.canvas, &p.options, &mut |_| true).await?;
    let ids: Vec<u32> = filled.iter().map(|&i| g.tokens[i]).collect();
    Ok((tok.decode(&ids, false)?, g))
}

/// Whether `response` answers `item`:
/// - arithmetic (and a free-form item whose answer is a number): the number after the last
///   "The answer is" equals the answer;
/// - free-form with a word answer: the word after the last "The answer is" equals it, ignoring
///   case; without such a statement, the reversal rule below;
/// - infill: the response, trimmed of spaces and a final period, is the answer;
/// - cloze (reversal asked as a fill-in of the statement): the filled text holds the answer as a
///   whole word;
/// - otherwise (reversal): the response's first sentence (up to the first '.') holds the answer
///   as a whole word, so a response that lists several names gets no credit for a later one.
pub fn is_correct(item: &Item, response: &str) -> bool {
    let r = response.trim();
    let after_last_statement = |keep: &dyn Fn(char) -> bool| -> Option<String> {
        let at = r.rfind("The answer is")?;
        Some(r[at + "The answer is".len()..].trim_start().chars().take_while(|&c| keep(c)).collect())
    };
    let numeric = |a: &str| !a.is_empty() && a.strip_prefix('-').unwrap_or(a).chars().all(|c| c.is_ascii_digit()) && a != "-";
    if item.task.starts_with("arithmetic") || (item.task == "freeform" && numeric(&item.answer)) {
        return after_last_statement(&|c| c.is_ascii_digit() || c == '-').is_some_and(|n| n == item.answer);
    }
    if item.task == "freeform" {
        if let Some(word) = after_last_statement(&|c| c.is_alphanumeric() || c == '\'' || c == '-' || c == '_') {
            return word.to_lowercase() == item.answer.to_lowercase();
        }
    }
    if item.task.starts_with("infill") {
        return r.trim_end_matches('.').trim() == item.answer;
    }
    if item.task.contains("cloze") {
        return holds_word(r, &item.answer);
    }
    let first = r.split('.').next().unwrap_or("");
    holds_word(first, &item.answer)
}

/// Whether `answer` occurs in `text` with no letter or digit right before or after it.
fn holds_word(text: &str, answer: &str) -> bool {
    if answer.is_empty() {
        return false;
    }
    let word_char = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric());
    text.match_indices(answer).any(|(at, _)| !word_char(text[..at].chars().next_back()) && !word_char(text[at + answer.len()..].chars().next()))
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TaskScore {
    pub task: String,
    pub n: usize,
    pub correct: usize,
}

impl TaskScore {
    pub fn accuracy(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            100.0 * self.correct as f64 / self.n as f64
        }
    }
}
