//! DiffusionGemma's uniform-state sampler (docs/diffusion_gemma.md §6): canvases of random
//! tokens denoised for up to N steps each with the linear temperature schedule, the
//! entropy-bound acceptance rule (the rest re-noised every step), self-conditioning on the last
//! step's scaled logits, the stable-and-confident stop, and canvases committed through the
//! encoder until EOS or the length limit. It knows nothing about where logits come from
//! (`DgModel`) or where random draws come from (`Draws`: seeded here, recorded tapes in tests).

use crate::error::{Error, Result};
use crate::rng::Rng;
use serde::Deserialize;

/// The settings of `generation_config.json`, with the reference's defaults for what it leaves out.
#[derive(Debug, Clone, PartialEq)]
pub struct DgSettings {
    pub max_new_tokens: usize,
    /// N: denoising steps per canvas at most (`max_denoising_steps`).
    pub steps: usize,
    pub entropy_bound: f32,
    pub t_min: f32,
    pub t_max: f32,
    pub stability_threshold: usize,
    pub confidence_threshold: f32,
    pub eos: Vec<u32>,
    pub pad: Option<u32>,
}

impl Default for DgSettings {
    fn default() -> Self {
        DgSettings {
            max_new_tokens: 256,
            steps: 48,
            entropy_bound: 0.1,
            t_min: 0.4,
            t_max: 0.8,
            stability_threshold: 1,
            confidence_threshold: 0.005,
            eos: vec![],
            pad: None,
        }
    }
}

#[derive(Deserialize)]
struct GenConfig {
    max_new_tokens: Option<usize>,
    max_denoising_steps: Option<usize>,
    sampler_config: Option<serde_json::Value>,
    t_min: Option<f32>,
    t_max: Option<f32>,
    stability_threshold: Option<usize>,
    confidence_threshold: Option<f32>,
    eos_token_id: Option<serde_json::Value>,
    pad_token_id: Option<u32>,
}

impl DgSettings {
    /// From a `generation_config.json` (`file` names it in errors).
    pub fn from_json(file: &str, text: &str) -> Result<Self> {
        let bad = |m: String| Error::model(file, m);
        let g: GenConfig = serde_json::from_str(text).map_err(|e| bad(format!("not a valid generation_config.json: {e}")))?;
        let d = DgSettings::default();
        let entropy_bound = match g.sampler_config.as_ref().and_then(|s| s.get("entropy_bound")) {
            None => d.entropy_bound,
            Some(v) => {
                v.as_f64().filter(|_| v.is_f64()).ok_or_else(|| bad(format!("sampler_config.entropy_bound must be a number with a fraction, not {v}")))? as f32
            }
        };
        let eos = match g.eos_token_id {
            None | Some(serde_json::Value::Null) => vec![],
            Some(serde_json::Value::Array(a)) => {
                a.iter().map(|v| v.as_u64().map(|x| x as u32)).collect::<Option<_>>().ok_or_else(|| bad("eos_token_id is not a list of ids".into()))?
            }
            Some(v) => vec![v.as_u64().ok_or_else(|| bad(format!("eos_token_id {v} is not an id")))? as u32],
        };
        let s = DgSettings {
            max_new_tokens: g.max_new_tokens.unwrap_or(d.max_new_tokens),
            steps: g.max_denoising_steps.unwrap_or(d.steps),
            entropy_bound,
            t_min: g.t_min.unwrap_or(d.t_min),
            t_max: g.t_max.unwrap_or(d.t_max),
            stability_threshold: g.stability_threshold.unwrap_or(d.stability_threshold),
            confidence_threshold: g.confidence_threshold.unwrap_or(d.confidence_threshold),
            eos,
            pad: g.pad_token_id,
        };
        s.validate().map_err(|e| bad(e.to_string()))?;
        Ok(s)
    }

    /// The settings a model runs with: those its file carries (a GGUF's keys), else those of its
    /// generation_config.json text, else the reference's defaults.
    pub fn resolve(from_file: Option<&DgSettings>, generation_json: Option<&str>) -> Result<Self> {
        match (from_file, generation_json) {
            (Some(s), _) => Ok(s.clone()),
            (None, Some(t)) => DgSettings::from_json("generation_config.json", t),
            (None, None) => Ok(DgSettings::default()),
        }
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Input(m));
        if self.steps == 0 || self.steps > 100_000 {
            return bad(format!("max_denoising_steps {} must be between 1 and 100000", self.steps));
        }
        if self.max_new_tokens == 0 {
            return bad("max_new_tokens must be at least 1".into());
        }
        if !(self.entropy_bound > 0.0 && self.entropy_bound.is_finite()) {
            return bad(format!("entropy_bound {} must be positive", self.entropy_bound));
        }
        if !(self.t_min >= 0.0 && self.t_max > self.t_min && self.t_max.is_finite()) {
            return bad(format!("the temperatures need t_max > t_min ≥ 0 (got {} and {})", self.t_max, self.t_min));
        }
        if !(self.confidence_threshold > 0.0 && self.confidence_threshold.is_finite()) {
            return bad(format!("confidence_threshold {} must be positive", self.confidence_threshold));
        }
        Ok(())
    }

    /// The temperature of the step counted `step` = N, N − 1, …, 1 (the first step is t_max).
    pub fn temperature(&self, step: usize) -> f32 {
        (self.t_min as f64 + (self.t_max as f64 - self.t_min as f64) * (step as f64 / self.steps as f64)) as f32
    }
}

/// A model in DiffusionGemma's two modes (async: on the GPU results are read back).
#[allow(async_fn_in_trait)]
pub trait DgModel {
    /// Runs `tokens` causally at the next positions and keeps their K/V.
    async fn encode(&mut self, tokens: &[u32]) -> Result<()>;
    /// Logits `[canvas.len(), vocab]` of a canvas after everything encoded; with `sc` = Some(t),
    /// self-conditioned on the previous decode's logits divided by t (the model keeps them, so
    /// a GPU never uploads them again).
    async fn decode(&mut self, canvas: &[u32], sc: Option<f32>) -> Result<Vec<f32>>;
    /// The same pass as `decode`, returning per canvas row only (argmax, entropy, sample) of
    /// softmax(logits / t), the sample drawn with `u[row]` (`sample_with`'s rule), when the
    /// model can (a GPU reads back 3 words a row instead of the logits); None: use `decode`.
    async fn choose(&mut self, canvas: &[u32], sc: Option<f32>, t: f32, u: &[f32]) -> Result<Option<Vec<(u32, f32, u32)>>> {
        let _ = (canvas, sc, t, u);
        Ok(None)
    }
    fn vocab(&self) -> usize;
    fn canvas_length(&self) -> usize;
    /// Positions the model can hold (prompt and canvases).
    fn max_positions(&self) -> usize;
}

/// Where the sampler's random draws come from.
pub trait Draws {
    /// A canvas's starting tokens: `n` uniform over the vocabulary.
    fn start(&mut self, n: usize, vocab: usize) -> Vec<u32> {
        self.uniform(n, vocab)
    }
    /// A step's re-noising draw: `n` tokens uniform over the vocabulary.
    fn uniform(&mut self, n: usize, vocab: usize) -> Vec<u32>;
    /// One token per row of `probs` (`[n, vocab]`), drawn from that row.
    fn sample(&mut self, probs: &[f32], vocab: usize) -> Vec<u32>;
    /// `n` uniforms in [0, 1) for sampling `n` rows with `sample_with`, when these draws are
    /// made that way (then the model may sample on its own device); None: `sample` is used.
    fn uniforms(&mut self, n: usize) -> Option<Vec<f32>> {
        let _ = n;
        None
    }
}

/// One token per row of `probs`: the first whose cumulative probability reaches `u[row]` times
/// the row's total (the last when rounding leaves it short).
pub fn sample_with(probs: &[f32], vocab: usize, u: &[f32]) -> Vec<u32> {
    probs
        .chunks_exact(vocab)
        .zip(u)
        .map(|(row, &u)| {
            let mut left = u * row.iter().sum::<f32>();
            for (i, p) in row.iter().enumerate() {
                left -= p;
                if left <= 0.0 {
                    return i as u32;
                }
            }
            (vocab - 1) as u32
        })
        .collect()
}

/// Seeded draws (this engine's own: not torch's generator).
pub struct SeededDraws(pub Rng);

impl Draws for SeededDraws {
    fn uniform(&mut self, n: usize, vocab: usize) -> Vec<u32> {
        (0..n).map(|_| self.0.below(vocab as u32)).collect()
    }
    fn sample(&mut self, probs: &[f32], vocab: usize) -> Vec<u32> {
        let u = self.uniforms(probs.len() / vocab).expect("seeded draws have uniforms");
        sample_with(probs, vocab, &u)
    }
    fn uniforms(&mut self, n: usize) -> Option<Vec<f32>> {
        Some((0..n).map(|_| self.0.unit()).collect())
    }
}

/// What one denoising step did.
#[derive(Debug, Clone, PartialEq)]
pub struct DgStep {
    pub canvas: usize,
    /// Counted down from N.
    pub step: usize,
    pub temperature: f32,
    pub entropy: Vec<f32>,
    pub accepted: Vec<bool>,
    /// The canvas the next step starts from (accepted samples, re-noised elsewhere).
    pub next: Vec<u32>,
    pub argmax: Vec<u32>,
    /// The stable-and-confident stop fired.
    pub stopped: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DgGeneration {
    /// Prompt and every canvas (the last step's argmax each); after the first EOS of the last
    /// canvas, padding.
    pub tokens: Vec<u32>,
    pub canvases: usize,
    pub steps: usize,
    /// Why it ended: "eos" or "length".
    pub stop: &'static str,
}

/// Positions accepted by the entropy bound: sorted by entropy, each whose predecessors' entropies
/// sum to at most `bound` (always at least the lowest).
pub fn accept(entropy: &[f32], bound: f32) -> Vec<bool> {
    let mut order: Vec<usize> = (0..entropy.len()).collect();
    order.sort_by(|&a, &b| entropy[a].total_cmp(&entropy[b]).then(a.cmp(&b)));
    let mut out = vec![false; entropy.len()];
    let mut before = 0f64;
    for &p in &order {
        if before > bound as f64 {
            break;
        }
        out[p] = true;
        before += entropy[p] as f64;
    }
    out
}

/// Softmax of each row of `z` in place; returns the rows' entropies (natural log).
fn softmax_entropy(z: &mut [f32], vocab: usize) -> Vec<f32> {
    z.chunks_exact_mut(vocab)
        .map(|row| {
            let mx = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let sum: f64 = row.iter().map(|v| ((v - mx) as f64).exp()).sum();
            let mut h = 0f64;
            for v in row.iter_mut() {
                let lp = (*v - mx) as f64 - sum.ln();
                let p = lp.exp();
                h -= p * lp;
                *v = p as f32;
            }
            h as f32
        })
        .collect()
}

fn argmax(row: &[f32]) -> u32 {
    row.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, &v)| if v > b.1 { (i, v) } else { b }).0 as u32
}

/// Positions a generation after a prompt of `prompt` tokens needs (the prompt and every canvas),
/// refused when more than `max` (the model's context).
pub fn positions_needed(prompt: usize, s: &DgSettings, canvas: usize, max: usize) -> Result<usize> {
    let canvases = s.max_new_tokens.div_ceil(canvas.max(1));
    match canvases.checked_mul(canvas).and_then(|c| c.checked_add(prompt)) {
        Some(n) if n <= max => Ok(n),
        _ => Err(Error::Input(format!(
            "the prompt ({prompt} tokens) and {canvases} canvases of {canvas} pass the model's context of {max} positions: ask for fewer new tokens"
        ))),
    }
}

/// Generates after `prompt`; `on_step` sees every step and may cancel (false).
pub async fn generate(
    model: &mut impl DgModel,
    draws: &mut impl Draws,
    prompt: &[u32],
    s: &DgSettings,
    on_step: &mut dyn FnMut(&DgStep) -> bool,
) -> Result<DgGeneration> {
    s.validate()?;
    if prompt.is_empty() {
        return Err(Error::Input("the prompt is empty".into()));
    }
    let (l, v) = (model.canvas_length(), model.vocab());
    let canvases = s.max_new_tokens.div_ceil(l);
    positions_needed(prompt.len(), s, l, model.max_positions())?;
    model.encode(prompt).await?;
    let mut tokens = prompt.to_vec();
    let mut gen = DgGeneration { tokens: vec![], canvases: 0, steps: 0, stop: "length" };
    for c in 0..canvases {
        let mut canvas = draws.start(l, v);
        let mut sc: Option<f32> = None;
        let mut history: Vec<Vec<u32>> = Vec::new();
        let mut out = Vec::new();
        for step in (1..=s.steps).rev() {
            let t = s.temperature(step);
            let u = draws.uniforms(l);
            let on_device = match &u {
                Some(u) => model.choose(&canvas, sc, t, u).await?,
                None => None,
            };
            let (argmax, entropy, sampled): (Vec<u32>, Vec<f32>, Vec<u32>) = match on_device {
                Some(c) if c.len() == l => (c.iter().map(|x| x.0).collect(), c.iter().map(|x| x.1).collect(), c.iter().map(|x| x.2).collect()),
                Some(c) => return Err(Error::Gpu(format!("the model chose for {} rows of a canvas of {l}", c.len()))),
                None => {
                    let raw = model.decode(&canvas, sc).await?;
                    if raw.len() != l * v {
                        return Err(Error::Gpu(format!("the model returned {} logits for a canvas of {l} × {v}", raw.len())));
                    }
                    let z: Vec<f32> = raw.iter().map(|x| x / t).collect();
                    let argmax: Vec<u32> = z.chunks_exact(v).map(argmax).collect();
                    let mut probs = z;
                    let entropy = softmax_entropy(&mut probs, v);
                    let sampled = match &u {
                        Some(u) => sample_with(&probs, v, u),
                        None => draws.sample(&probs, v),
                    };
                    (argmax, entropy, sampled)
                }
            };
            let accepted = accept(&entropy, s.entropy_bound);
            let noise = draws.uniform(l, v);
            canvas = (0..l).map(|p| if accepted[p] { sampled[p] } else { noise[p] }).collect();
            let stable = history.len() >= s.stability_threshold && history.iter().rev().take(s.stability_threshold).all(|h| *h == argmax);
            let confident = entropy.iter().map(|&e| e as f64).sum::<f64>() / (l as f64) < s.confidence_threshold as f64;
            let stopped = stable && confident;
            gen.steps += 1;
            let ev = DgStep { canvas: c, step, temperature: t, entropy, accepted, next: canvas.clone(), argmax: argmax.clone(), stopped };
            if !on_step(&ev) {
                return Err(Error::Input("cancelled".into()));
            }
            history.push(argmax.clone());
            out = argmax;
            sc = Some(t);
            if stopped {
                break;
            }
        }
        tokens.extend_from_slice(&out);
        gen.canvases += 1;
        if let Some(first) = out.iter().position(|t| s.eos.contains(t)) {
            if let Some(pad) = s.pad {
                let at = tokens.len() - l + first + 1;
                tokens[at..].fill(pad);
            }
            gen.stop = "eos";
            break;
        }
        if tokens.len() >= prompt.len() + s.max_new_tokens {
            break;
        }
        model.encode(&out).await?;
    }
    gen.tokens = tokens;
    Ok(gen)
}
