//! The diffusion sampler (LLaDA's reference `generate`, Dream's timestep schedule and
//! algorithms, RND1's cutoff schedule, plus threshold decoding, infilling and early stop). It owns the canvas, the block schedule and the remasking rule, asks a `Denoiser`
//! for per-position predictions, and reports every step through a callback. It knows nothing
//! about GPUs: a GPU session (`engine::denoise`) is one `Denoiser`, the CPU twin another, the
//! tests' scripted fakes more.

pub mod final_text;
pub mod options;
pub mod remask;
pub mod schedule;
pub mod text;

pub use options::{CacheMode, FamilySampler, Remasking, SamplerOptions, Schedule};

use crate::choice::{self, Choice, Noise};
use crate::clock::now_ms;
use crate::error::{Error, Result};
use crate::rng::Rng;
use serde::Serialize;

/// Something that predicts every position of a canvas.
#[allow(async_fn_in_trait)]
pub trait Denoiser {
    /// Per position: the chosen token (argmax, or Gumbel-max under `noise`) and its statistics.
    async fn choose(&mut self, canvas: &[u32], noise: Noise) -> Result<Vec<Choice>>;
    /// Raw logits `[canvas.len(), vocab]` (used for classifier-free guidance).
    async fn logits(&mut self, canvas: &[u32]) -> Result<Vec<f32>>;
    fn vocab_size(&self) -> usize;
    /// Per position of `want`: the choice from guided logits `u + (scale + 1)(c − u)`, where c
    /// are the logits of `cond` and u those of `uncond` (same length). By default from `logits`;
    /// the GPU model mixes and selects on the GPU, for `want`'s rows only.
    async fn choose_guided(&mut self, cond: &[u32], uncond: &[u32], scale: f32, want: std::ops::Range<usize>, noise: Noise) -> Result<Vec<Choice>> {
        let v = self.vocab_size();
        let c = self.logits(cond).await?;
        let u = self.logits(uncond).await?;
        if c.len() != cond.len() * v || u.len() != uncond.len() * v || want.end > cond.len() {
            return Err(Error::Gpu(format!("the model returned {} and {} logits for {} positions of {v}", c.len(), u.len(), cond.len())));
        }
        Ok(want.map(|p| choice::select(&choice::cfg_mix(&c[p * v..(p + 1) * v], &u[p * v..(p + 1) * v], scale), p as u32, noise)).collect())
    }
    /// Choices for `rows` only, reusing the K/V of the other positions from the last full pass
    /// (`choose`) of this canvas length. Models without a cache compute everything.
    async fn choose_rows(&mut self, canvas: &[u32], rows: std::ops::Range<usize>, noise: Noise) -> Result<Vec<Choice>> {
        Ok(self.choose(canvas, noise).await?[rows].to_vec())
    }
    /// Choices for the positions `want` alone (the block the sampler commits in), from a pass
    /// over the whole canvas (`rows` None) or over `rows` (a range holding `want`). A model may
    /// then compute logits for `want` only (the GPU session's LM head does); by default this is
    /// `choose` or `choose_rows`, cut to `want`.
    async fn choose_in(&mut self, canvas: &[u32], rows: Option<std::ops::Range<usize>>, want: std::ops::Range<usize>, noise: Noise) -> Result<Vec<Choice>> {
        let (all, r0) = match rows {
            None => (self.choose(canvas, noise).await?, 0),
            Some(r) => (self.choose_rows(canvas, r.clone(), noise).await?, r.start),
        };
        let part = want.start.checked_sub(r0).and_then(|a| all.get(a..want.end - r0));
        part.map(<[Choice]>::to_vec)
            .ok_or_else(|| Error::Gpu(format!("the model returned {} predictions from position {r0}, not covering {want:?}", all.len())))
    }
}

/// One committed position.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Commit {
    pub pos: usize,
    pub token: u32,
    /// Probability the model gave the token when it was committed (1 for early-stop padding).
    pub confidence: f32,
}

/// What happened at one step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepEvent {
    /// 1-based step number over the whole generation.
    pub step: usize,
    /// 0-based block index.
    pub block: usize,
    /// Positions committed at this step, in position order.
    pub committed: Vec<Commit>,
    /// Masked positions left on the canvas after this step.
    pub masked_left: usize,
    /// Milliseconds the step took (model passes included).
    pub ms: f64,
    /// This step filled the rest of the canvas with end-of-text padding without the model.
    pub early_stop: bool,
}

/// The canvas to denoise: fixed tokens anywhere, `mask` where the model must write.
#[derive(Debug, Clone)]
pub struct Canvas {
    pub tokens: Vec<u32>,
    /// Blocks start here (the prompt's length for a plain generation, 0 for infilling).
    pub gen_start: usize,
    pub mask: u32,
    /// End-of-text padding token (early stop fills with it), if the model has one.
    pub eos: Option<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Generation {
    /// The whole final canvas.
    pub tokens: Vec<u32>,
    pub gen_start: usize,
    pub steps: usize,
    pub model_passes: usize,
    pub ms: f64,
    pub early_stopped: bool,
    pub cancelled: bool,
}

impl Generation {
    /// The text shown for a run: the answer after the prompt (the whole canvas for an infill),
    /// or its token ids without a tokenizer.
    pub fn text(&self, tok: Option<&crate::model::TextTokenizer>) -> Result<String> {
        let shown = if self.gen_start == 0 { &self.tokens[..] } else { &self.tokens[self.gen_start..] };
        match tok {
            Some(t) => t.decode(shown, false),
            None => Ok(shown.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(",")),
        }
    }

    /// Answer tokens per second, not counting the end tokens `ends` (padding).
    pub fn tokens_per_second(&self, ends: &[Option<u32>]) -> f64 {
        let generated = self.tokens[self.gen_start..].iter().filter(|t| !ends.contains(&Some(**t))).count();
        generated as f64 / (self.ms / 1000.0).max(1e-9)
    }
}

impl Canvas {
    /// A prompt followed by `gen_length` masks (pins may then be written into the masks).
    pub fn after_prompt(prompt: &[u32], gen_length: usize, mask: u32, eos: Option<u32>) -> Canvas {
        let mut tokens = prompt.to_vec();
        tokens.extend(std::iter::repeat_n(mask, gen_length));
        Canvas { tokens, gen_start: prompt.len(), mask, eos }
    }

    pub fn masked(&self) -> usize {
        self.tokens.iter().filter(|&&t| t == self.mask).count()
    }
}

/// Runs the denoising loop on `canvas`. `on_step` sees every step; returning false cancels.
pub async fn run<D: Denoiser>(model: &mut D, mut canvas: Canvas, opts: &SamplerOptions, on_step: &mut dyn FnMut(&StepEvent) -> bool) -> Result<Generation> {
    opts.check_common()?;
    let len = canvas.tokens.len();
    if canvas.gen_start > len {
        return Err(Error::Input("the generation start is past the end of the canvas".into()));
    }
    if canvas.tokens[..canvas.gen_start].contains(&canvas.mask) {
        return Err(Error::Input("masks before the generation start would never be filled".into()));
    }
    if opts.block_length == 0 {
        return Err(Error::Input("--block-length must be at least 1".into()));
    }
    let aligned = opts.schedule == Schedule::Block;
    let blocks = match aligned {
        true => schedule::aligned_blocks(canvas.gen_start, len, opts.block_length),
        false => schedule::blocks(canvas.gen_start, len, opts.block_length),
    };
    if blocks.is_empty() || canvas.masked() == 0 {
        return Err(Error::Input("nothing to generate: the canvas has no masked positions".into()));
    }
    // LLaDA 2 counts its steps per block.
    let steps_per_block = if aligned {
        opts.steps.max(1)
    } else {
        opts.check_steps(blocks.len())?;
        opts.steps / blocks.len()
    };
    // Threshold mode runs until the block is full, so a position the model fills with the mask
    // token itself (random or broken weights) is no commit: committing it would repeat the step
    // forever. Such positions are left out, and when only they are left the block ends with
    // them masked (as a fixed-step loop would leave them).
    let until_full = opts.threshold.is_some() && !aligned;
    let block_quota = if aligned { schedule::tokens_per_step(opts.block_length, steps_per_block) } else { vec![] };
    // The prompt, for classifier-free guidance: every position fixed at the start.
    let fixed: Vec<bool> = canvas.tokens.iter().map(|&t| t != canvas.mask).collect();
    let mut rng = Rng::new(opts.seed ^ 0x72656d61736b);
    let seed32 = (opts.seed ^ (opts.seed >> 32)) as u32;
    let start = now_ms();
    let mut gen = Generation { tokens: vec![], gen_start: canvas.gen_start, steps: 0, model_passes: 0, ms: 0.0, early_stopped: false, cancelled: false };

    'blocks: for (b, &(bs, be)) in blocks.iter().enumerate() {
        let masked_in_block = |c: &Canvas| (bs..be).filter(|&p| c.tokens[p] == c.mask).count();
        let initial = masked_in_block(&canvas);
        let mut s = 0;
        let mut fresh = true;
        while masked_in_block(&canvas) > 0 {
            // Fixed count: the schedule's quota of this step (threshold mode runs until the block is full).
            let k = match opts.threshold {
                _ if aligned && s >= steps_per_block => break,
                _ if aligned => block_quota[s],
                Some(_) => 0,
                None if s >= steps_per_block => break,
                None => schedule::quota(opts.schedule, s, steps_per_block, masked_in_block(&canvas), initial, opts.eps),
            };
            // Dream's `origin`: each mask is committed with the probability of this timestep.
            let transfer_p = (opts.remasking == Remasking::Origin).then(|| {
                let ts = schedule::timesteps(steps_per_block, opts.eps);
                if s + 1 >= steps_per_block {
                    1.0
                } else {
                    1.0 - ts[s + 1] / ts[s]
                }
            });
            s += 1;
            if k == 0 && opts.threshold.is_none() && transfer_p.is_none() {
                continue;
            }
            let t0 = now_ms();
            gen.steps += 1;
            let noise = opts.noise(seed32, gen.steps as u32);
            // With a cache, the block's first step is a full pass that refreshes every K/V. Aligned
            // blocks recompute from their aligned start: the prompt's tail shares the first block
            // (and, under block-causal attention, sees its masks), so its K/V change too.
            let from = if aligned { bs - bs % opts.block_length.max(1) } else { bs };
            let rows = match (opts.cache, fresh) {
                (CacheMode::None, _) | (_, true) => None,
                (CacheMode::Prefix, false) => Some(from..len),
                (CacheMode::Dual, false) => Some(from..be),
            };
            fresh = false;
            let choices = predict(model, &canvas, &fixed, opts, noise, bs..be, rows, &mut gen.model_passes).await?;
            let candidates: Vec<(usize, f32, f32)> = (bs..be)
                .filter(|&p| canvas.tokens[p] == canvas.mask && !(until_full && choices[p].token == canvas.mask))
                .map(|p| (p, remask::score(opts.remasking, &choices[p], &mut rng), choices[p].prob))
                .collect();
            let chosen = match transfer_p {
                Some(p) => candidates.iter().filter(|_| rng.unit() < p).map(|c| c.0).collect(),
                None if opts.alg_temp > 0.0 => remask::draw(&candidates, k.min(candidates.len()), opts.alg_temp, &mut rng),
                None if aligned => remask::pick_at_least(&candidates, k.min(candidates.len()), opts.threshold),
                None => remask::pick(&candidates, k.min(candidates.len()), opts.threshold),
            };
            let committed: Vec<Commit> = chosen
                .iter()
                .map(|&p| {
                    canvas.tokens[p] = choices[p].token;
                    Commit { pos: p, token: choices[p].token, confidence: choices[p].prob }
                })
                .collect();
            let ev = StepEvent { step: gen.steps, block: b, committed, masked_left: canvas.masked(), ms: now_ms() - t0, early_stop: false };
            if !on_step(&ev) {
                gen.cancelled = true;
                break 'blocks;
            }
            if until_full && chosen.is_empty() {
                break;
            }
        }
        // Early stop: a finished block of pure padding, and nothing but masks after it.
        if let (true, Some(eos)) = (opts.early_stop, canvas.eos) {
            let rest_masked = canvas.tokens[be..].iter().all(|&t| t == canvas.mask);
            if be < len && rest_masked && canvas.tokens[bs..be].iter().all(|&t| t == eos) {
                let committed: Vec<Commit> = (be..len).map(|p| Commit { pos: p, token: eos, confidence: 1.0 }).collect();
                canvas.tokens[be..].fill(eos);
                gen.steps += 1;
                gen.early_stopped = true;
                let ev = StepEvent { step: gen.steps, block: b + 1, committed, masked_left: 0, ms: 0.0, early_stop: true };
                on_step(&ev);
                break;
            }
        }
    }
    gen.ms = now_ms() - start;
    gen.tokens = canvas.tokens;
    Ok(gen)
}

/// The model's choices for the block's positions (placeholders elsewhere: the sampler commits
/// in the block alone), with classifier-free guidance when asked:
/// logits = u + (cfg + 1)(c − u), where u comes from the canvas with every position that was
/// fixed at the start (the prompt) masked, as in the reference.
#[allow(clippy::too_many_arguments)]
async fn predict<D: Denoiser>(
    model: &mut D,
    canvas: &Canvas,
    fixed: &[bool],
    opts: &SamplerOptions,
    noise: Noise,
    block: std::ops::Range<usize>,
    rows: Option<std::ops::Range<usize>>,
    passes: &mut usize,
) -> Result<Vec<Choice>> {
    let placeholder = Choice { token: canvas.mask, prob: 0.0, entropy: 0.0, margin: 0.0 };
    let mut out = vec![placeholder; canvas.tokens.len()];
    if opts.cfg_scale <= 0.0 {
        *passes += 1;
        let part = model.choose_in(&canvas.tokens, rows, block.clone(), noise).await?;
        if part.len() != block.len() {
            return Err(Error::Gpu(format!("the model returned {} predictions for {} positions", part.len(), block.len())));
        }
        out[block].copy_from_slice(&part);
        return Ok(out);
    }
    let uncond_canvas: Vec<u32> = canvas.tokens.iter().zip(fixed).map(|(&t, &f)| if f { canvas.mask } else { t }).collect();
    let guided = model.choose_guided(&canvas.tokens, &uncond_canvas, opts.cfg_scale, block.clone(), noise).await?;
    *passes += 2;
    if guided.len() != block.len() {
        return Err(Error::Gpu(format!("the model returned {} predictions for {} positions", guided.len(), block.len())));
    }
    out[block].copy_from_slice(&guided);
    Ok(out)
}
