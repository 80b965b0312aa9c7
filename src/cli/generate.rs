//! `unmask generate` and `unmask infill`: run the sampler on the GPU model and show the result
//! as text, as JSON, or as a live terminal animation of the denoising.

use super::model;
use clap::Args;
use std::io::Write;
use std::path::PathBuf;
use unmask::cpu::forward::CpuModel;
use unmask::model::TextTokenizer;
use unmask::request::Request;
use unmask::sampler::text::{parse_infill, parse_pin};
use unmask::sampler::{self, CacheMode, Canvas, Remasking, SamplerOptions, Schedule, StepEvent};
use unmask::{Error, Result};

/// Sampler settings shared by `generate` and `infill`.
#[derive(Args, Clone)]
pub struct SamplerArgs {
    /// Model directory (config.json + safetensors + tokenizer.json) or .gguf file [default: the bundled demo model].
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Denoising steps in all (divided evenly among the blocks; must be a multiple of their
    /// number) [default: 64]. With --schedule block (LLaDA 2's) they count per block;
    /// DiffusionGemma: the most steps per canvas [default: the checkpoint's].
    #[arg(long)]
    pub steps: Option<usize>,
    /// Positions per block; blocks are filled left to right (semi-autoregressive when smaller than the answer) [default: 32, or the answer length if shorter; one block for Dream and RND1; LLaDA 2 needs 32, its attention's blocks].
    #[arg(long)]
    pub block_length: Option<usize>,
    /// 0 = greedy (argmax); above 0, Gumbel-max sampling at this temperature.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.0)]
    pub temperature: f32,
    /// Dream's top_k: each position chooses among its N most likely tokens only (ties with the
    /// N-th kept), and its confidence (probability, entropy, margin) is renormalised over them,
    /// at every temperature, so it also changes which positions greedy decoding commits first.
    #[arg(long)]
    pub top_k: Option<usize>,
    /// Dream's top_p (nucleus): each position keeps its most likely tokens until their
    /// probability at --temperature reaches P (0 < P ≤ 1; 1 = off), chooses among them and
    /// renormalises its confidence over them, at every temperature. With --top-k: both filters.
    #[arg(long, allow_negative_numbers = true)]
    pub top_p: Option<f32>,
    /// Classifier-free guidance scale; 0 turns it off (above 0 doubles the work per step).
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.0)]
    pub cfg_scale: f32,
    /// Which masked positions to commit first: low_confidence (Dream: maskgit_plus), random,
    /// entropy, margin (Dream: topk_margin) or origin (Dream's random transfer) [default: the
    /// model family's: low_confidence for LLaDA and LLaDA-MoE, entropy for Dream and RND1].
    #[arg(long)]
    pub remasking: Option<String>,
    /// How many positions each step commits: even (LLaDA), timesteps (Dream: linear from 1 to
    /// --eps), cutoff (RND1) or block (LLaDA 2: blocks aligned to the canvas, the even split of
    /// the block per step, or every mask above --threshold when more) [default: the model family's].
    #[arg(long)]
    pub schedule: Option<String>,
    /// The last timestep of --schedule timesteps (Dream's eps).
    #[arg(long, allow_negative_numbers = true, default_value_t = 1e-3)]
    pub eps: f32,
    /// 0: commit the best-scored positions; above 0, draw them from softmax(score / alg_temp) (Dream's alg_temp).
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.0)]
    pub alg_temp: f32,
    /// Commit every masked position of the block whose probability is at least this (0 < τ ≤ 1),
    /// at least one per step (Fast-dLLM) [default: off; 0.95 for LLaDA 2, as its generate].
    #[arg(long, allow_negative_numbers = true)]
    pub threshold: Option<f32>,
    /// K/V reuse inside a block (Fast-dLLM): none (every step runs the whole canvas: the
    /// reference), prefix (steps skip the prompt and earlier blocks) or dual (steps run only the
    /// block; K/V of the rest come from the block's first step). Dual is several times faster
    /// and kept the demo model's eval accuracy (BENCHMARKS.md).
    #[arg(long, default_value = unmask::sampler::CacheMode::DEFAULT.name())]
    pub cache: String,
    /// Seed for temperature sampling and random remasking.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Keep denoising blocks of pure end-of-text padding instead of stopping early.
    #[arg(long)]
    pub no_early_stop: bool,
    /// Convert the weights while loading: f32, f16, bf16, q8_0 or q4_0. A Q4_0 load keeps the
    /// embedding and LM head in Q8_0, as `unmask convert` and llama.cpp do (see --pure).
    #[arg(long)]
    pub quant: Option<String>,
    /// With --quant q4_0: the embedding and LM head in Q4_0 too (smaller, measurably worse).
    #[arg(long)]
    pub pure: bool,
    /// Print one JSON object: settings, final tokens and text, and every step's commits and timings.
    #[arg(long, conflicts_with = "visual")]
    pub json: bool,
    /// Redraw the canvas in the terminal at every step (masks, fresh tokens coloured by confidence).
    #[arg(long)]
    pub visual: bool,
    /// Run on the CPU twin instead of the GPU: slow, but the reference the GPU is checked against.
    #[arg(long)]
    pub cpu: bool,
}

#[derive(Args)]
pub struct GenerateArgs {
    /// The prompt text.
    #[arg(long, conflicts_with = "prompt_tokens", required_unless_present = "prompt_tokens")]
    pub prompt: Option<String>,
    /// The prompt as token ids, comma-separated (no tokenizer needed).
    #[arg(long, value_delimiter = ',')]
    pub prompt_tokens: Option<Vec<u32>>,
    /// Wrap the prompt in the model's chat template (LLaDA-Instruct's user/assistant headers).
    #[arg(long)]
    pub chat: bool,
    /// Masked positions to generate after the prompt.
    #[arg(long, default_value_t = 64)]
    pub gen_length: usize,
    /// Pin a word at an answer position, OFFSET:WORD (repeatable), like the official demo's word constraints.
    #[arg(long)]
    pub pin: Vec<String>,
    #[command(flatten)]
    pub s: SamplerArgs,
}

#[derive(Args)]
pub struct InfillArgs {
    /// Text with spans to fill: `[MASK]` (a span of --span-length tokens) or `<mask:N>` (N tokens).
    #[arg(long)]
    pub text: String,
    /// Tokens in each `[MASK]` span.
    #[arg(long, default_value_t = 4)]
    pub span_length: usize,
    #[command(flatten)]
    pub s: SamplerArgs,
}

pub fn options(s: &SamplerArgs, gen_length: usize, default_block: usize) -> Result<SamplerOptions> {
    Ok(SamplerOptions {
        steps: s.steps.unwrap_or(64),
        gen_length,
        block_length: s.block_length.unwrap_or(default_block),
        temperature: s.temperature,
        top_k: s.top_k,
        top_p: s.top_p,
        cfg_scale: s.cfg_scale,
        remasking: s.remasking.as_deref().map(Remasking::parse).transpose()?.unwrap_or(Remasking::LowConfidence),
        threshold: s.threshold,
        seed: s.seed,
        early_stop: !s.no_early_stop,
        cache: CacheMode::parse(&s.cache)?,
        schedule: s.schedule.as_deref().map(Schedule::parse).transpose()?.unwrap_or(Schedule::Even),
        eps: s.eps,
        alg_temp: s.alg_temp,
    })
}

/// The model family's sampler for every setting the user left out (Dream's timesteps and
/// entropy over one block, RND1's cutoff schedule, LLaDA 2's aligned blocks and threshold,
/// LLaDA's blocks).
pub fn family_defaults(o: &mut SamplerOptions, s: &SamplerArgs, family: &unmask::model::arch::Family) {
    let f = sampler::FamilySampler::of(family.name);
    if s.remasking.is_none() {
        o.remasking = f.remasking;
    }
    if s.schedule.is_none() && s.threshold.is_none() {
        o.schedule = f.schedule;
    }
    if s.block_length.is_none() && f.one_block && o.gen_length > 0 {
        o.block_length = o.gen_length;
    }
    if s.threshold.is_none() && (s.schedule.is_none() || o.schedule == f.schedule) {
        o.threshold = f.threshold;
    }
}

pub fn generate(a: GenerateArgs) -> Result<()> {
    if let Some(dir) = a.s.model.as_deref().filter(|m| super::dgemma::is_dgemma(m)) {
        return super::dgemma::generate(&a, dir);
    }
    let req = Request {
        prompt: a.prompt.clone(),
        prompt_tokens: a.prompt_tokens.clone(),
        chat: a.chat,
        pins: a.pin.clone(),
        options: options(&a.s, a.gen_length, a.gen_length.min(32))?,
        ..Default::default()
    };
    // Check what can be checked before the (slow) model load; the block arithmetic waits for
    // the model, whose family may align blocks differently (LLaDA 2).
    if req.options.gen_length == 0 {
        return Err(Error::Input("--gen-length must be at least 1".into()));
    }
    req.options.check_common()?;
    for p in &req.pins {
        parse_pin(p)?;
    }
    if req.prompt.as_deref().is_some_and(|p| p.trim().is_empty()) {
        return Err(Error::Input("the prompt is empty: give some text with --prompt".into()));
    }
    execute(req, &a.s)
}

pub fn infill(a: InfillArgs) -> Result<()> {
    parse_infill(&a.text, a.span_length.max(1))?;
    let req =
        Request { infill: Some(a.text.clone()), span_length: Some(a.span_length), options: options(&a.s, 0, SamplerOptions::ONE_BLOCK)?, ..Default::default() };
    execute(req, &a.s)
}

fn execute(mut req: Request, s: &SamplerArgs) -> Result<()> {
    if s.cpu {
        let loaded = model::load_host(s.model.clone(), s.quant.as_deref(), s.pure)?;
        family_defaults(&mut req.options, s, loaded.weights.config.family());
        let tok = loaded.tokenizer.as_ref();
        let p = req.prepare(&loaded.weights.config, tok)?;
        let settings = serde_json::json!({"request": req, "options": p.options});
        return run(CpuModel::new(&loaded.weights), "CPU twin", tok, p.canvas, &p.options, s, settings, p.ends);
    }
    // Canvas planned for: an upper bound (byte-level BPE makes at most one token per byte,
    // plus the chat template; infill spans at most span_length tokens per mask).
    let text_len = req.prompt.as_ref().or(req.infill.as_ref()).map_or(0, |t| t.len()) + req.prompt_tokens.as_ref().map_or(0, |t| t.len());
    let est = text_len * (1 + req.span_length.unwrap_or(0)) + req.options.gen_length + 64;
    let m = model::load(s.model.clone(), s.quant.as_deref(), s.pure, &req.options, |_| est)?;
    family_defaults(&mut req.options, s, m.config.family());
    let tok = m.tokenizer.as_ref();
    let p = req.prepare(&m.config, tok)?;
    let settings = serde_json::json!({"request": req, "options": p.options});
    let session = m.session(p.canvas.tokens.len(), &p.options)?;
    run(session, &m.model.gpu.report.name, tok, p.canvas, &p.options, s, settings, p.ends)
}

#[allow(clippy::too_many_arguments)]
fn run<D: sampler::Denoiser>(
    mut model: D,
    engine: &str,
    tok: Option<&TextTokenizer>,
    canvas: Canvas,
    opts: &SamplerOptions,
    s: &SamplerArgs,
    settings: serde_json::Value,
    ends: [Option<u32>; 2],
) -> Result<()> {
    let gen_start = canvas.gen_start;
    let prompt: Vec<u32> = canvas.tokens[..gen_start].to_vec();
    let mut events: Vec<StepEvent> = Vec::new();
    let mut view = s.visual.then(|| Visual::new(&canvas, tok, opts.steps, ends));
    let gen = pollster::block_on(sampler::run(&mut model, canvas, opts, &mut |e| {
        if let Some(v) = view.as_mut() {
            v.step(e);
        }
        if s.json {
            events.push(e.clone());
        }
        true
    }))?;
    let answer = &gen.tokens[gen.gen_start..];
    let text = match tok {
        Some(t) => Some(t.decode(if gen_start == 0 { &gen.tokens } else { answer }, false)?),
        None => None,
    };
    let generated = answer.iter().filter(|t| !ends.contains(&Some(**t))).count();
    if s.json {
        let v = serde_json::json!({
            "settings": settings,
            "prompt_tokens": prompt,
            "tokens": answer,
            "text": text,
            "steps": events,
            "model_passes": gen.model_passes,
            "early_stopped": gen.early_stopped,
            "total_ms": gen.ms,
            "tokens_per_second": generated as f64 / (gen.ms / 1000.0).max(1e-9),
            "adapter": engine,
        });
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
    } else if let Some(v) = view.as_mut() {
        v.finish(&gen);
    } else {
        match text {
            Some(t) => println!("{}", t.trim_end()),
            None => println!("{}", answer.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(",")),
        }
    }
    Ok(())
}

/// The `--visual` terminal animation: the answer redrawn after every step.
struct Visual<'a> {
    tok: Option<&'a TextTokenizer>,
    tokens: Vec<u32>,
    start: usize,
    mask: u32,
    /// End-of-text tokens: drawn as a dim `∅`, not as `<|endoftext|>`.
    ends: [Option<u32>; 2],
    /// The step at which each position was committed (0: not yet or fixed) and its confidence.
    when: Vec<(usize, f32)>,
    total_steps: usize,
}

impl<'a> Visual<'a> {
    fn new(c: &Canvas, tok: Option<&'a TextTokenizer>, total_steps: usize, ends: [Option<u32>; 2]) -> Self {
        let start = if c.gen_start == 0 { 0 } else { c.gen_start };
        Visual { tok, tokens: c.tokens.clone(), start, mask: c.mask, ends, when: vec![(0, 0.0); c.tokens.len()], total_steps }
    }

    fn piece(&self, t: u32) -> String {
        match self.tok {
            Some(tok) => tok.decode(&[t], true).unwrap_or_default().replace('\n', "⏎"),
            None => format!("{t} "),
        }
    }

    /// `fresh`: the step whose commits are coloured by confidence; `step`: the counter shown.
    fn draw(&self, fresh: usize, step: usize, left: usize, note: &str) {
        let mut out = String::from("\x1b[2J\x1b[H");
        for p in self.start..self.tokens.len() {
            let t = self.tokens[p];
            if t == self.mask {
                out.push_str("\x1b[2m░\x1b[0m");
                continue;
            }
            if self.ends.contains(&Some(t)) {
                out.push_str("\x1b[2m∅\x1b[0m");
                continue;
            }
            let (w, conf) = self.when[p];
            let colour = if w == 0 {
                ""
            } else if w == fresh {
                if conf < 0.3 {
                    "\x1b[1;31m"
                } else if conf < 0.7 {
                    "\x1b[1;33m"
                } else {
                    "\x1b[1;32m"
                }
            } else {
                "\x1b[34m"
            };
            out.push_str(colour);
            out.push_str(&self.piece(t));
            out.push_str("\x1b[0m");
        }
        let width = 30;
        let done = (step * width / self.total_steps.max(1).max(step)).min(width);
        out.push_str(&format!("\n\n[{}{}] step {step}/{} · {left} masked{note}\n", "█".repeat(done), "·".repeat(width - done), self.total_steps.max(step)));
        let mut so = std::io::stdout();
        let _ = so.write_all(out.as_bytes());
        let _ = so.flush();
    }

    fn step(&mut self, e: &StepEvent) {
        for c in &e.committed {
            self.tokens[c.pos] = c.token;
            self.when[c.pos] = (e.step, c.confidence);
        }
        let note = if e.early_stop { " · rest is padding (early stop)" } else { "" };
        self.draw(e.step, e.step, e.masked_left, note);
    }

    fn finish(&mut self, g: &sampler::Generation) {
        self.draw(0, g.steps, 0, &format!(" · done in {:.0} ms", g.ms));
    }
}
