//! One generation as the app shows it: the initial canvas plus the step events, so that the
//! canvas at any step (live, scrubbed or replayed) is the initial one with the commits of steps
//! 1..=s applied. No GPU and no UI here (the tests read it directly).

use serde::Serialize;

/// The canvas a run starts from (the worker sends it before the first step).
#[derive(Debug, Clone, Serialize)]
pub struct Start {
    pub tokens: Vec<u32>,
    /// Text of each position's token ("" for masks).
    pub pieces: Vec<String>,
    pub gen_start: usize,
    pub mask: u32,
    pub block_length: usize,
    /// Steps planned.
    pub steps: usize,
}

/// One committed position, with the text of its token.
#[derive(Debug, Clone, Serialize)]
pub struct Commit {
    pub pos: usize,
    pub token: u32,
    pub confidence: f32,
    pub text: String,
}

/// One step of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub step: usize,
    pub block: usize,
    pub masked_left: usize,
    pub ms: f64,
    pub early_stop: bool,
    pub committed: Vec<Commit>,
}

impl Step {
    pub fn mean_confidence(&self) -> f32 {
        if self.committed.is_empty() {
            return 0.0;
        }
        self.committed.iter().map(|c| c.confidence).sum::<f32>() / self.committed.len() as f32
    }
}

/// How a run ended.
#[derive(Debug, Clone, Serialize)]
pub struct Finish {
    pub tokens: Vec<u32>,
    pub gen_start: usize,
    pub text: String,
    pub steps: usize,
    pub model_passes: usize,
    pub ms: f64,
    pub tokens_per_second: f64,
    pub early_stopped: bool,
    pub cancelled: bool,
}

/// What one cell shows at some step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CellState {
    /// Part of the prompt (before the answer).
    Prompt,
    /// Fixed from the start inside the answer (an infill's text, a pin).
    Given,
    Masked,
    /// Committed at the step shown, with its confidence.
    Fresh(f32),
    /// Committed at an earlier step.
    Done,
}

/// Confidence bands of fresh commits (as on the page and in the terminal view).
pub fn band(confidence: f32) -> usize {
    if confidence < 0.3 {
        0
    } else if confidence < 0.7 {
        1
    } else {
        2
    }
}

#[derive(Debug, Clone)]
pub struct Run {
    pub start: Start,
    pub events: Vec<Step>,
    /// Per position: the step that committed it (0: given; `usize::MAX`: masked so far).
    pub when: Vec<usize>,
    pub token: Vec<u32>,
    pub piece: Vec<String>,
    pub conf: Vec<f32>,
    pub result: Option<Finish>,
}

impl Run {
    pub fn new(start: Start) -> Run {
        let when = start.tokens.iter().map(|&t| if t == start.mask { usize::MAX } else { 0 }).collect();
        let n = start.tokens.len();
        Run { token: start.tokens.clone(), piece: start.pieces.clone(), conf: vec![0.0; n], when, start, events: Vec::new(), result: None }
    }

    pub fn len(&self) -> usize {
        self.token.len()
    }

    pub fn is_empty(&self) -> bool {
        self.token.is_empty()
    }

    pub fn gen_start(&self) -> usize {
        self.start.gen_start
    }

    pub fn last_step(&self) -> usize {
        self.events.last().map_or(0, |e| e.step)
    }

    pub fn add(&mut self, ev: Step) {
        for c in &ev.committed {
            if c.pos < self.len() {
                self.when[c.pos] = ev.step;
                self.token[c.pos] = c.token;
                self.piece[c.pos] = c.text.clone();
                self.conf[c.pos] = c.confidence;
            }
        }
        self.events.push(ev);
    }

    pub fn cell(&self, p: usize, step: usize) -> CellState {
        match self.when[p] {
            0 if p < self.gen_start() => CellState::Prompt,
            0 => CellState::Given,
            w if w > step => CellState::Masked,
            w if w == step => CellState::Fresh(self.conf[p]),
            _ => CellState::Done,
        }
    }

    /// The canvas after `step`: `None` where a position is still masked.
    pub fn tokens_at(&self, step: usize) -> Vec<Option<u32>> {
        (0..self.len()).map(|p| (self.when[p] <= step).then_some(self.token[p])).collect()
    }

    pub fn masked_at(&self, step: usize) -> usize {
        self.when.iter().filter(|&&w| w > step).count()
    }

    /// Whether position `p` starts a block (a boundary is drawn before it).
    pub fn starts_block(&self, p: usize) -> bool {
        let (g, bl) = (self.gen_start(), self.start.block_length);
        p > 0 && p >= g && bl > 0 && (p - g).is_multiple_of(bl)
    }

    /// The word around answer position `p`: the run of tokens up to the next one that starts with
    /// whitespace (a whitespace token alone is its own word).
    pub fn word_at(&self, p: usize) -> std::ops::RangeInclusive<usize> {
        let piece = |q: usize| self.piece.get(q).map_or("", |s| s.as_str());
        let is_space = |q: usize| {
            let s = piece(q);
            !s.is_empty() && s.chars().all(char::is_whitespace)
        };
        if is_space(p) {
            return p..=p;
        }
        let starts_word = |q: usize| piece(q).starts_with(char::is_whitespace) || (q > 0 && is_space(q - 1));
        let mut a = p;
        while a > self.gen_start() && !starts_word(a) && !is_space(a - 1) {
            a -= 1;
        }
        let mut b = p;
        while b + 1 < self.len() && !starts_word(b + 1) && !is_space(b + 1) {
            b += 1;
        }
        a..=b
    }
}

/// How a token's text is shown in its cell: whitespace made visible with characters every
/// font has (`·` a space, `\n` a newline, `\t` a tab, `''` an empty piece).
pub fn cell_text(piece: &str) -> String {
    if piece.is_empty() {
        return "''".into();
    }
    let s = piece.replace('\n', "\\n").replace('\t', "\\t");
    if piece.chars().all(char::is_whitespace) {
        s.replace(' ', "·")
    } else {
        s
    }
}
