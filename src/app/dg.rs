//! The app's engine for DiffusionGemma (docs/diffusion_gemma.md), as the CLI runs it: detecting
//! such a model, loading it (planned, streamed, with its sampler settings and tokenizer), and a
//! request run as uniform-state denoising whose steps become the run's events: every cell of the
//! current canvas at every step (the step's argmax, re-noised cells flagged).

use super::run::{Commit, Finish, Start, Step, NO_MASK};
use super::worker::{piece, DgSummary, Event, ModelInfo};
use crate::dgemma::files::DgFiles;
use crate::dgemma::gpu::DgGpuModel;
use crate::dgemma::gpu_session::DgSession;
use crate::dgemma::plan::plan;
use crate::dgemma::sampler::{generate as dg_generate, positions_needed, DgSettings, DgStep, SeededDraws};
use crate::gpu::Gpu;
use crate::model::{DType, Quant, TextTokenizer};
use crate::request::Request;
use crate::rng::Rng;
use crate::{Error, Result};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A DiffusionGemma model on the GPU, with its tokenizer and the checkpoint's sampler settings.
pub struct DgLoaded {
    pub model: DgGpuModel,
    pub tokenizer: Option<TextTokenizer>,
    pub settings: DgSettings,
}

pub use crate::dgemma::files::is_dgemma;

/// The app's weight choice as DiffusionGemma's loader takes it: as stored, q8_0 or q4_0.
fn dg_quant(q: Option<Quant>) -> Result<Option<DType>> {
    match q {
        None => Ok(None),
        Some(Quant { dtype: d @ (DType::Q8_0 | DType::Q4_0), pure: false }) => Ok(Some(d)),
        Some(q) => Err(Error::Input(format!(
            "DiffusionGemma loads as stored, or converted to q8_0 or q4_0 (not {}{})",
            q.dtype.name(),
            if q.pure { " everywhere" } else { "" }
        ))),
    }
}

/// Plans (for a prompt of one canvas and one canvas), checks, then streams the model at `path`
/// onto `gpu`. The info's path and name are the caller's to fill.
pub fn load(
    gpu: Arc<Gpu>,
    path: &Path,
    quant: Option<Quant>,
    on_plan: &mut dyn FnMut(&str),
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(DgLoaded, ModelInfo)> {
    let quant = dg_quant(quant)?;
    let DgFiles { files, index, settings, tokenizer } = DgFiles::open(path)?;
    let c = index.config.clone();
    let p = plan(&index, quant, (2 * c.canvas_length).min(c.max_positions), gpu.plan_limits(), gpu.default_kv())?;
    p.check(gpu.plan_limits(), None)?;
    let summary = p.summary();
    on_plan(&summary);
    let model = pollster::block_on(DgGpuModel::load(gpu, &index, &files.source, quant, progress))?;
    let info = ModelInfo {
        path: Default::default(),
        name: String::new(),
        plan: summary,
        family: format!("diffusion-gemma · {} layers · {} experts, top-{} · canvas {}", c.layers.len(), c.experts, c.top_k, c.canvas_length),
        config: None,
        diffusion: Some(DgSummary { canvas_length: c.canvas_length, steps: settings.steps }),
        has_tokenizer: tokenizer.is_some(),
    };
    Ok((DgLoaded { model, tokenizer, settings }, info))
}

/// Runs `req` (its prompt, chat, gen length, seed, and steps per canvas when above 0) on `m`,
/// sending the canvas, every step and the result; `cancel` stops it after a step.
pub fn generate(m: &DgLoaded, req: &Request, cancel: &AtomicBool, send: &dyn Fn(Event)) -> Result<()> {
    if req.infill.is_some() {
        return Err(Error::Input("DiffusionGemma writes after a prompt: infill needs a masked model".into()));
    }
    let tok = m.tokenizer.as_ref();
    let prompt = match (&req.prompt, &req.prompt_tokens) {
        (Some(text), _) => {
            let t = tok.ok_or_else(|| Error::Input("this model has no tokenizer: it cannot read a text prompt".into()))?;
            crate::dgemma::prompt_tokens(t, text, req.chat)?
        }
        (None, Some(ids)) => ids.clone(),
        (None, None) => vec![],
    };
    let mut s = m.settings.clone();
    s.max_new_tokens = req.options.gen_length;
    if req.options.steps > 0 {
        s.steps = req.options.steps;
    }
    s.validate()?;
    let c = &m.model.config;
    let l = c.canvas_length;
    let positions = positions_needed(prompt.len().max(1), &s, l, c.max_positions)?;
    let canvases = s.max_new_tokens.div_ceil(l);
    let mut session = DgSession::new(&m.model, positions, m.model.gpu.default_kv())?;
    let g0 = prompt.len();
    let mut tokens = prompt.clone();
    tokens.resize(g0 + canvases * l, NO_MASK);
    let pieces = tokens.iter().map(|&t| if t == NO_MASK { String::new() } else { piece(tok, t) }).collect();
    let ends = s.eos.iter().copied().chain(s.pad).collect();
    send(Event::Started(Start { tokens, pieces, gen_start: g0, mask: NO_MASK, block_length: l, steps: canvases * s.steps, ends }));
    let mut draws = SeededDraws(Rng::new(req.options.seed ^ 0x6467656d6d61));
    let t0 = crate::clock::now_ms();
    let (mut last, mut n, mut cancelled, mut early) = (t0, 0, false, false);
    // Each canvas's newest argmax (what a cancelled run keeps).
    let mut latest: Vec<Vec<u32>> = Vec::new();
    let r = pollster::block_on(dg_generate(&mut session, &mut draws, &prompt, &s, &mut |e: &DgStep| {
        let now = crate::clock::now_ms();
        n += 1;
        early |= e.stopped;
        let base = g0 + e.canvas * l;
        let committed = (0..l)
            .map(|i| Commit { pos: base + i, token: e.argmax[i], confidence: (-e.entropy[i]).exp(), text: piece(tok, e.argmax[i]), renoised: !e.accepted[i] })
            .collect();
        let renoised = e.accepted.iter().filter(|a| !**a).count();
        send(Event::Step(Step {
            step: n,
            block: e.canvas,
            masked_left: renoised + (canvases - 1 - e.canvas) * l,
            ms: now - last,
            early_stop: false,
            committed,
        }));
        last = now;
        latest.resize(e.canvas + 1, Vec::new());
        latest[e.canvas] = e.argmax.clone();
        cancelled = cancel.load(Ordering::Relaxed);
        !cancelled
    }));
    let ms = crate::clock::now_ms() - t0;
    let (tokens, stop, steps, done) = match r {
        Ok(g) => (g.tokens, Some(g.stop.to_string()), g.steps, g.canvases),
        Err(_) if cancelled => ([prompt, latest.concat()].concat(), None, n, latest.len()),
        Err(e) => return Err(e),
    };
    let answer = &tokens[g0..];
    let text = match tok {
        Some(t) => t.decode(answer, false)?,
        None => answer.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(","),
    };
    send(Event::Finished(Finish {
        gen_start: g0,
        text,
        steps,
        // Every step's decoder pass, and the encoder's: the prompt, then each canvas but the last.
        model_passes: steps + done,
        ms,
        tokens_per_second: answer.len() as f64 / (ms / 1000.0).max(1e-9),
        early_stopped: early,
        cancelled,
        stop,
        tokens,
    }));
    Ok(())
}
