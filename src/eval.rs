//! The held-out task suite of the demo model: items `{task, prompt, answer}` in JSONL files, a
//! scoring rule per task, and accuracy per task. The CLI's `unmask eval` runs it through the real
//! engine and sampler.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Item {
    pub task: String,
    pub prompt: String,
    pub answer: String,
}

/// Reads a JSONL file of items; `file` names it in errors.
pub fn parse_items(file: &str, text: &str) -> Result<Vec<Item>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| Error::model(file, format!("line {}: {e}", i + 1))))
        .collect()
}

/// Whether `response` answers `item`:
/// - arithmetic: the number after the last "The answer is" equals the answer;
/// - infill: the response, trimmed of spaces and a final period, is the answer;
/// - otherwise (reversal): the response contains the answer.
pub fn is_correct(item: &Item, response: &str) -> bool {
    let r = response.trim();
    if item.task.starts_with("arithmetic") {
        let Some(at) = r.rfind("The answer is") else { return false };
        let num: String = r[at + "The answer is".len()..].trim_start().chars().take_while(|c| c.is_ascii_digit() || *c == '-').collect();
        return num == item.answer;
    }
    if item.task.starts_with("infill") {
        return r.trim_end_matches('.').trim() == item.answer;
    }
    r.contains(&item.answer)
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
