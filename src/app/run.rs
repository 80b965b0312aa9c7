//! One generation as the app shows it: the initial canvas plus the step events, so that the
//! canvas at any step (live, scrubbed or replayed) is the initial one with the commits of steps
//! 1..=s applied (a masked model commits a cell once; DiffusionGemma re-decides every cell of
//! its canvas each step, some re-noised). No GPU and no UI here (the tests read it directly).

use serde::Serialize;

/// The `mask` of a canvas that has no mask token (DiffusionGemma): its answer cells start
/// empty until their canvas's first step.
pub const NO_MASK: u32 = u32::MAX;

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
    /// Tokens that end an answer (EOS padding, EOT): drawn as a dim `PADDING` placeholder.
    pub ends: Vec<u32>,
}

/// What an end-of-text cell shows instead of its token's text (`<|endoftext|>` and kin).
pub const PADDING: &str = "∅";

/// One committed position, with the text of its token.
#[derive(Debug, Clone, Serialize)]
pub struct Commit {
    pub pos: usize,
    pub token: u32,
    pub confidence: f32,
    pub text: String,
    /// DiffusionGemma: the step re-noised this cell (its sample was not accepted; the token is
    /// the step's argmax). Always false for the masked families.
    pub renoised: bool,
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
    /// The commits the step kept (all of them but DiffusionGemma's re-noised cells).
    pub fn accepted(&self) -> impl Iterator<Item = &Commit> {
        self.committed.iter().filter(|c| !c.renoised)
    }

    /// The mean confidence of the accepted commits.
    pub fn mean_confidence(&self) -> f32 {
        let (n, sum) = self.accepted().fold((0usize, 0f32), |(n, s), c| (n + 1, s + c.confidence));
        if n == 0 {
            0.0
        } else {
            sum / n as f32
        }
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
    /// Why it ended, where the family says (DiffusionGemma: "eos" or "length").
    pub stop: Option<String>,
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
    /// DiffusionGemma: re-noised at the step shown (shown with the step's argmax, dim).
    Renoised,
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

/// One cell as it stood after some step.
#[derive(Debug, Clone, Copy)]
pub struct Shown<'a> {
    pub state: CellState,
    pub token: u32,
    pub text: &'a str,
    /// The step that last set it (0: the start).
    pub when: usize,
    pub confidence: f32,
}

#[derive(Debug, Clone)]
pub struct Run {
    pub start: Start,
    pub events: Vec<Step>,
    /// Per position, as of the newest step: the step that last committed it (0: given;
    /// `usize::MAX`: masked so far), and its token, text and confidence.
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

    /// Whether `token` ends the answer (shown as `PADDING`).
    pub fn is_padding(&self, token: u32) -> bool {
        self.start.ends.contains(&token)
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

    /// Every cell after `step`: the start with the commits of steps 1..=step applied in order.
    pub fn view(&self, step: usize) -> Vec<Shown<'_>> {
        let g = self.gen_start();
        let mut v: Vec<Shown> = (0..self.len())
            .map(|p| {
                let t = self.start.tokens[p];
                let state = match t == self.start.mask {
                    true => CellState::Masked,
                    false if p < g => CellState::Prompt,
                    false => CellState::Given,
                };
                Shown { state, token: t, text: &self.start.pieces[p], when: 0, confidence: 0.0 }
            })
            .collect();
        for e in self.events.iter().take_while(|e| e.step <= step) {
            for c in &e.committed {
                if let Some(s) = v.get_mut(c.pos) {
                    let state = match (e.step == step, c.renoised) {
                        (true, true) => CellState::Renoised,
                        (true, false) => CellState::Fresh(c.confidence),
                        (false, _) => CellState::Done,
                    };
                    *s = Shown { state, token: c.token, text: &c.text, when: e.step, confidence: c.confidence };
                }
            }
        }
        v
    }

    /// The canvas after `step`: `None` where a position is still masked.
    pub fn tokens_at(&self, step: usize) -> Vec<Option<u32>> {
        self.view(step).iter().map(|s| (s.state != CellState::Masked).then_some(s.token)).collect()
    }

    pub fn masked_at(&self, step: usize) -> usize {
        self.view(step).iter().filter(|s| s.state == CellState::Masked).count()
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
