//! DiffusionGemma's `--visual` terminal view and `--json` step records: every cell holds a token
//! from the first step, so each step redraws the whole canvas with the model's current choice
//! per cell: cells whose sample the step accepted in colour by entropy (green confident, yellow,
//! red unsure), re-noised cells dim; a line with the canvas, step, temperature, accepted count.

use std::io::Write;
use unmask::dgemma::sampler::{DgGeneration, DgStep};
use unmask::model::TextTokenizer;

/// One step as `--json` records it.
pub fn step_json(e: &DgStep) -> serde_json::Value {
    serde_json::json!({
        "canvas": e.canvas,
        "step": e.step,
        "temperature": e.temperature,
        "accepted": e.accepted.iter().filter(|&&a| a).count(),
        "accepted_cells": e.accepted.iter().map(|&a| a as u8).collect::<Vec<_>>(),
        "entropy": e.entropy,
        "tokens": e.argmax,
        "stopped": e.stopped,
    })
}

pub struct DgVisual<'a> {
    tok: Option<&'a TextTokenizer>,
    /// Text of the canvases already committed.
    done: String,
    steps: usize,
    /// End-of-text and padding tokens: drawn as a dim `∅`.
    ends: Vec<u32>,
}

impl<'a> DgVisual<'a> {
    pub fn new(tok: Option<&'a TextTokenizer>, steps: usize, ends: Vec<u32>) -> Self {
        DgVisual { tok, done: String::new(), steps, ends }
    }

    fn piece(&self, t: u32) -> String {
        if self.ends.contains(&t) {
            return "\x1b[2m∅\x1b[22m".into();
        }
        match self.tok {
            Some(tok) => tok.decode(&[t], true).unwrap_or_default().replace('\n', "⏎"),
            None => format!("{t} "),
        }
    }

    pub fn step(&mut self, e: &DgStep) {
        let mut out = format!("\x1b[2J\x1b[H{}", self.done);
        for ((&t, &acc), &h) in e.argmax.iter().zip(&e.accepted).zip(&e.entropy) {
            let colour = match (acc, h) {
                (false, _) => "\x1b[2m",
                (true, h) if h < 0.1 => "\x1b[1;32m",
                (true, h) if h < 1.0 => "\x1b[1;33m",
                _ => "\x1b[1;31m",
            };
            out.push_str(colour);
            out.push_str(&self.piece(t));
            out.push_str("\x1b[0m");
        }
        let accepted = e.accepted.iter().filter(|&&a| a).count();
        let n = self.steps - e.step + 1;
        out.push_str(&format!(
            "\n\ncanvas {} · step {n}/{} · T {:.2} · accepted {accepted}/{} (dim: re-noised){}\n",
            e.canvas + 1,
            self.steps,
            e.temperature,
            e.accepted.len(),
            if e.stopped { " · stable and confident: stop" } else { "" }
        ));
        if e.stopped || e.step == 1 {
            self.done.push_str(&e.argmax.iter().map(|&t| self.piece(t)).collect::<String>());
        }
        let mut so = std::io::stdout();
        let _ = so.write_all(out.as_bytes());
        let _ = so.flush();
    }

    pub fn finish(&self, g: &DgGeneration, ms: f64) {
        println!("\n{} canvas(es), {} steps, stopped by {} · {ms:.0} ms", g.canvases, g.steps, g.stop);
    }
}
