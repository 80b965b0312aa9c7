//! The sampler's settings, their defaults (those of LLaDA's reference `generate`), and the checks
//! that turn bad combinations into one-line errors saying what to change.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// How the positions to commit at a step are ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Remasking {
    /// softmax probability of the predicted token (the reference default)
    LowConfidence,
    /// a uniform random score
    Random,
    /// lower entropy of the predicted distribution ranks higher
    Entropy,
    /// top-1 minus top-2 probability
    Margin,
    /// Dream's `origin`: each masked position is committed with probability 1 − s/t of the
    /// timestep schedule, independently (no ranking; needs `--schedule timesteps`).
    Origin,
}

impl Remasking {
    pub const NAMES: &'static str = "low_confidence (Dream: maskgit_plus), random, entropy, margin (Dream: topk_margin), origin";

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "low_confidence" | "maskgit_plus" => Ok(Remasking::LowConfidence),
            "random" => Ok(Remasking::Random),
            "entropy" => Ok(Remasking::Entropy),
            "margin" | "topk_margin" => Ok(Remasking::Margin),
            "origin" => Ok(Remasking::Origin),
            other => Err(Error::Input(format!("unknown remasking {other:?}: use one of {}", Self::NAMES))),
        }
    }
}

/// How many masked positions of a block each step commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    /// LLaDA's: the block's masks split evenly over its steps (the first steps take the remainder).
    Even,
    /// Dream's: timesteps t linear from 1 to `eps`; step i commits ⌊m·(1 − t_{i+1}/t_i)⌋ of the m
    /// masks left, the last step all of them.
    Timesteps,
    /// RND1's: after step i of N, ⌊M·(N − 1 − i)/N⌋ of the block's M masks stay masked.
    Cutoff,
    /// LLaDA 2's: blocks aligned to multiples of the block length from position 0 (the first
    /// one ends the prompt's last block); `steps` is per block, and step i commits the even split
    /// of the whole block length, or with `threshold` every mask above it when that is more.
    Block,
}

impl Schedule {
    pub const NAMES: &'static str = "even (LLaDA), timesteps (Dream), cutoff (RND1), block (LLaDA 2)";

    pub const fn name(self) -> &'static str {
        match self {
            Schedule::Even => "even",
            Schedule::Timesteps => "timesteps",
            Schedule::Cutoff => "cutoff",
            Schedule::Block => "block",
        }
    }

    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "even" => Ok(Schedule::Even),
            "timesteps" => Ok(Schedule::Timesteps),
            "cutoff" => Ok(Schedule::Cutoff),
            "block" => Ok(Schedule::Block),
            other => Err(Error::Input(format!("unknown schedule {other:?}: use one of {}", Self::NAMES))),
        }
    }
}

/// The sampler a model family's reference code runs (its defaults when the user names none).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FamilySampler {
    pub schedule: Schedule,
    pub remasking: Remasking,
    /// The whole answer is one block (Dream and RND1 have no blocks).
    pub one_block: bool,
    /// Commit every mask above this confidence (LLaDA 2's default 0.95).
    pub threshold: Option<f32>,
}

impl FamilySampler {
    /// LLaDA's `generate`: blocks of 32, an even split, low-confidence remasking.
    pub const LLADA: FamilySampler = FamilySampler { schedule: Schedule::Even, remasking: Remasking::LowConfidence, one_block: false, threshold: None };

    /// What the reference code of a family (`model::Family::name`) runs: Dream's
    /// `diffusion_generate` (timesteps; entropy, as its README's example), RND1's
    /// `diffusion_sample` (cutoff; lowest entropy first), LLaDA 2's `generate` (aligned blocks of
    /// 32, threshold 0.95), and LLaDA's `generate` for LLaDA and LLaDA-MoE.
    pub fn of(family: &str) -> FamilySampler {
        match family {
            "dream" => FamilySampler { schedule: Schedule::Timesteps, remasking: Remasking::Entropy, one_block: true, threshold: None },
            "rnd1" => FamilySampler { schedule: Schedule::Cutoff, remasking: Remasking::Entropy, one_block: true, threshold: None },
            "llada2" => FamilySampler { schedule: Schedule::Block, remasking: Remasking::LowConfidence, one_block: false, threshold: Some(0.95) },
            _ => Self::LLADA,
        }
    }
}

/// Which K/V a step reuses from the full pass at its block's start (Fast-dLLM).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheMode {
    /// Every step runs the whole canvas (the reference).
    None,
    /// Steps run the block and everything after it; the prefix's K/V are reused.
    Prefix,
    /// Steps run only the block; K/V before and after it are reused.
    Dual,
}

impl CacheMode {
    /// The default: the fastest mode whose `unmask eval` accuracy on the demo model stays within
    /// 2 points of `None` (measured in BENCHMARKS.md; `caching_keeps_the_eval_accuracy` checks it).
    pub const DEFAULT: CacheMode = CacheMode::Dual;

    pub const fn name(self) -> &'static str {
        match self {
            CacheMode::None => "none",
            CacheMode::Prefix => "prefix",
            CacheMode::Dual => "dual",
        }
    }

    pub fn parse(s: &str) -> crate::Result<Self> {
        match s {
            "none" => Ok(CacheMode::None),
            "prefix" => Ok(CacheMode::Prefix),
            "dual" => Ok(CacheMode::Dual),
            other => Err(Error::Input(format!("unknown cache {other:?}: use none, prefix or dual"))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplerOptions {
    /// Denoising steps over the whole answer (divided evenly among the blocks).
    pub steps: usize,
    /// Masked positions appended after the prompt.
    pub gen_length: usize,
    /// Positions per block; blocks are filled left to right.
    pub block_length: usize,
    /// 0 = greedy; otherwise Gumbel-max sampling at this temperature.
    pub temperature: f32,
    /// Dream's `top_k`: only the k largest logits of a position can be chosen, and its
    /// confidence is the softmax over them (at every temperature). None = off.
    pub top_k: Option<usize>,
    /// Dream's `top_p`: only the smallest most-likely set of tokens whose probability (at the
    /// temperature) reaches `top_p` can be chosen, confidence renormalised over them. None or 1 = off.
    pub top_p: Option<f32>,
    /// Classifier-free guidance scale (0 = off): a second pass with the prompt masked.
    pub cfg_scale: f32,
    pub remasking: Remasking,
    /// Confidence-threshold parallel decoding: commit every masked position of the block whose
    /// probability is ≥ τ (at least one per step), instead of a fixed count.
    pub threshold: Option<f32>,
    pub seed: u64,
    /// When a finished block is all end-of-text padding, fill the rest with it and stop.
    pub early_stop: bool,
    /// K/V reuse between the steps of a block.
    pub cache: CacheMode,
    /// How many positions each step commits.
    pub schedule: Schedule,
    /// The last timestep of `Schedule::Timesteps` (Dream's `eps`).
    pub eps: f32,
    /// 0: commit the best-scored positions; above 0, draw them (without replacement) from
    /// softmax(score / alg_temp), as Dream's `alg_temp`.
    pub alg_temp: f32,
}

impl Default for SamplerOptions {
    fn default() -> Self {
        SamplerOptions {
            steps: 64,
            gen_length: 64,
            block_length: 32,
            temperature: 0.0,
            top_k: None,
            top_p: None,
            cfg_scale: 0.0,
            remasking: Remasking::LowConfidence,
            threshold: None,
            seed: 0,
            early_stop: true,
            cache: CacheMode::DEFAULT,
            schedule: Schedule::Even,
            eps: 1e-3,
            alg_temp: 0.0,
        }
    }
}

impl SamplerOptions {
    /// A `block_length` this large means "the whole answer is one block" (infill and remask
    /// requests from the CLI and the page; the page gets it from `unmask.oneBlock()`).
    pub const ONE_BLOCK: usize = 0x7fff_ffff;

    /// Checks the settings for a plain generation (answer appended after the prompt).
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Input(m));
        if self.gen_length == 0 {
            return bad("--gen-length must be at least 1".into());
        }
        if self.block_length == 0 {
            return bad("--block-length must be at least 1".into());
        }
        // LLaDA 2's blocks are aligned to the canvas, not to the answer (see `Schedule::Block`).
        if self.schedule == Schedule::Block {
            if self.steps == 0 {
                return bad("--steps (per block with --schedule block) must be at least 1".into());
            }
            return self.check_common();
        }
        if !self.gen_length.is_multiple_of(self.block_length) {
            return bad(format!(
                "--gen-length {} is not a multiple of --block-length {}: pick a block length that divides it (e.g. {})",
                self.gen_length,
                self.block_length,
                largest_divisor_at_most(self.gen_length, self.block_length)
            ));
        }
        let blocks = self.gen_length / self.block_length;
        self.check_steps(blocks)?;
        self.check_common()
    }

    pub(crate) fn check_steps(&self, blocks: usize) -> Result<()> {
        if self.steps == 0 || !self.steps.is_multiple_of(blocks) {
            return Err(Error::Input(format!(
                "--steps {} must be a positive multiple of the number of blocks ({blocks}): try --steps {}",
                self.steps,
                // The next multiple, or the one below where the next would overflow.
                self.steps.max(1).div_ceil(blocks).checked_mul(blocks).unwrap_or(self.steps / blocks * blocks)
            )));
        }
        Ok(())
    }

    pub fn check_common(&self) -> Result<()> {
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return Err(Error::Input(format!("--temperature {} must be 0 or more", self.temperature)));
        }
        if !(self.cfg_scale >= 0.0 && self.cfg_scale.is_finite()) {
            return Err(Error::Input(format!("--cfg-scale {} must be 0 or more", self.cfg_scale)));
        }
        if self.top_k == Some(0) {
            return Err(Error::Input("--top-k must be at least 1 (leave it out to keep every token)".into()));
        }
        if let Some(p) = self.top_p {
            if !(p > 0.0 && p <= 1.0) {
                return Err(Error::Input(format!("--top-p {p} must be in (0, 1] (1 keeps every token)")));
            }
        }
        if let Some(t) = self.threshold {
            if !(t > 0.0 && t <= 1.0) {
                return Err(Error::Input(format!("--threshold {t} must be in (0, 1]")));
            }
        }
        if !(self.eps > 0.0 && self.eps < 1.0) {
            return Err(Error::Input(format!("--eps {} must be between 0 and 1 (Dream uses 0.001)", self.eps)));
        }
        if !(self.alg_temp >= 0.0 && self.alg_temp.is_finite()) {
            return Err(Error::Input(format!("--alg-temp {} must be 0 or more", self.alg_temp)));
        }
        if self.remasking == Remasking::Origin && self.schedule != Schedule::Timesteps {
            return Err(Error::Input("--remasking origin commits by the timestep schedule: add --schedule timesteps".into()));
        }
        if self.threshold.is_some() && !matches!(self.schedule, Schedule::Even | Schedule::Block) {
            return Err(Error::Input(format!("--threshold works with --schedule even or block (not {})", self.schedule.name())));
        }
        if self.threshold.is_some() && self.schedule == Schedule::Even && self.alg_temp > 0.0 {
            return Err(Error::Input("--alg-temp draws a fixed number of positions a step, --threshold commits every one above it: use one of them".into()));
        }
        Ok(())
    }

    /// The sampling settings of step `salt` (the filters as `Noise` holds them: 0 and 1 = off).
    pub fn noise(&self, seed: u32, salt: u32) -> crate::choice::Noise {
        crate::choice::Noise {
            temperature: self.temperature,
            seed,
            salt,
            top_k: self.top_k.map_or(0, |k| u32::try_from(k).unwrap_or(u32::MAX)),
            top_p: self.top_p.unwrap_or(1.0),
        }
    }
}

fn largest_divisor_at_most(n: usize, at_most: usize) -> usize {
    // Bounded, so that absurd lengths get a quick answer (a divisor, if not the largest).
    (1..=at_most.min(n).min(1 << 16)).rev().find(|d| n.is_multiple_of(*d)).unwrap_or(1)
}
