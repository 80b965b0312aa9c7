//! DiffusionGemma behind the server: loaded with its memory planned for `--ctx` positions, a
//! request becomes a prompt (Gemma's turn format) and the checkpoint's sampler settings with
//! the request's `max_tokens`, `steps` and `seed`. Uniform-state canvases rewrite every cell at
//! every step, so a canvas's text is final only when the canvas is: the stream sends each
//! canvas as it finishes (through the same `FinalText` as the masked families).

use super::api::{self, ApiError, Body, Kind};
use super::worker::{now, tokenizer, Engine, Feed, Outcome};
use super::{InfoKind, ModelInfo};
use crate::cli::dgview::step_json;
use serde_json::Value;
use std::path::Path;
use unmask::dgemma::files::DgFiles;
use unmask::dgemma::gpu::DgGpuModel;
use unmask::dgemma::gpu_session::DgSession;
use unmask::dgemma::sampler::{generate, positions_needed, DgSettings, SeededDraws};
use unmask::model::TextTokenizer;
use unmask::rng::Rng;
use unmask::sampler::final_text::{FinalText, Finish};
use unmask::sampler::{Canvas, Commit, StepEvent};
use unmask::{Error, Result};

pub struct DgWork {
    prompt: Vec<u32>,
    settings: DgSettings,
    seed: u64,
}

pub struct DgEngine {
    model: DgGpuModel,
    tokenizer: Option<TextTokenizer>,
    /// The positions planned for (prompt + canvases).
    positions: usize,
}

impl DgEngine {
    pub fn gpu(&self) -> &unmask::gpu::Gpu {
        &self.model.gpu
    }
}

pub fn load(path: &Path, quant: Option<&str>, limit: usize, id: String) -> Result<(Engine, ModelInfo)> {
    let DgFiles { files, index, settings, tokenizer } = DgFiles::open(path)?;
    let quant = unmask::dgemma::parse_quant(quant)?;
    let c = &index.config;
    let positions = limit.min(c.max_positions);
    let gpu = crate::cli::model::open_gpu()?;
    // Refused with the numbers before any weight is read when it cannot fit.
    unmask::dgemma::plan::plan(&index, quant, positions, gpu.plan_limits(), crate::cli::model::kv(&gpu)?)?.check(gpu.plan_limits(), None)?;
    let mut bar = super::super::model::progress_bar();
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr()) && index.file_bytes() > 64 << 20;
    let model = pollster::block_on(DgGpuModel::load(gpu, &index, &files.source, quant, &mut |d, t| {
        if tty {
            bar(d, t)
        }
    }))?;
    if tty {
        eprintln!();
    }
    let info = ModelInfo {
        id,
        family: "diffusion-gemma",
        vocab: c.vocab,
        kind: InfoKind::Dg { settings, canvas: c.canvas_length, max_positions: positions },
        tokenizer: tokenizer.clone(),
        ctx: positions,
        adapter: model.gpu.report.name.clone(),
        created: now(),
    };
    Ok((Engine::Dg(Box::new(DgEngine { model, tokenizer, positions })), info))
}

pub fn prepare(body: &Body, kind: Kind, info: &ModelInfo, max_tokens: usize) -> std::result::Result<DgWork, ApiError> {
    let InfoKind::Dg { settings, canvas, max_positions } = &info.kind else {
        return Err(Error::Gpu("a DiffusionGemma request for another kind of model".into()).into());
    };
    let masked_only = [
        ("block_length", body.block_length.is_some()),
        ("remasking", body.remasking.is_some()),
        ("schedule", body.schedule.is_some()),
        ("threshold", body.threshold.is_some()),
        ("cache", body.cache.is_some()),
        ("cfg_scale", body.cfg_scale.is_some()),
    ];
    if let Some((field, _)) = masked_only.iter().find(|f| f.1) {
        return Err(ApiError::bad(
            format!("`{field}` does not apply to DiffusionGemma (uniform-state canvases with the checkpoint's own schedule)"),
            Some(field),
        ));
    }
    let tok = tokenizer(info.tokenizer.as_ref())?;
    let prompt = match kind {
        Kind::Infill => return Err(ApiError::bad("DiffusionGemma does not fill masks: use /v1/chat/completions or /v1/completions", None)),
        Kind::Chat => unmask::dgemma::messages_tokens(tok, &api::messages(body)?)?,
        Kind::Completion => match &body.prompt {
            Some(Value::String(p)) if !p.trim().is_empty() => unmask::dgemma::prompt_tokens(tok, p, false)?,
            _ => return Err(ApiError::bad("`prompt` must be a non-empty string", Some("prompt"))),
        },
    };
    let mut s = settings.clone();
    s.max_new_tokens = max_tokens;
    s.steps = body.steps.unwrap_or(s.steps);
    s.validate().map_err(|e| ApiError { param: Some("steps".into()), ..ApiError::from(e) })?;
    positions_needed(prompt.len(), &s, *canvas, *max_positions).map_err(|e| ApiError { param: Some("max_tokens".into()), ..ApiError::from(e) })?;
    Ok(DgWork { prompt, settings: s, seed: body.seed.unwrap_or(0) })
}

/// Marks a canvas's cells not yet final in `FinalText`'s canvas.
const NOT_FINAL: u32 = u32::MAX;

pub fn run(m: &DgEngine, w: DgWork, feed: &Feed) -> Result<Outcome> {
    let tok = tokenizer(m.tokenizer.as_ref())?;
    let DgWork { prompt, settings: s, seed } = w;
    let l = m.model.config.canvas_length;
    let positions = positions_needed(prompt.len(), &s, l, m.positions)?;
    let mut session = DgSession::new(&m.model, positions, crate::cli::model::kv(&m.model.gpu)?)?;
    let answer = s.max_new_tokens.div_ceil(l) * l;
    let canvas = Canvas { tokens: [prompt.clone(), vec![NOT_FINAL; answer]].concat(), gen_start: prompt.len(), mask: NOT_FINAL, eos: None };
    let ends: Vec<u32> = s.eos.iter().copied().chain(s.pad).collect();
    let mut text = FinalText::new(&canvas, ends.clone(), feed.stops.clone()).with_limit(feed.limit);
    let mut draws = SeededDraws(Rng::new(seed ^ 0x6467656d6d61));
    let (t0, mut steps, mut stopped, mut failed) = (unmask::clock::now_ms(), 0, false, None);
    let result = pollster::block_on(generate(&mut session, &mut draws, &prompt, &s, &mut |ev| {
        steps += 1;
        // A canvas's last step: its argmax is the canvas's text.
        let delta = if ev.stopped || ev.step == 1 {
            let at = prompt.len() + ev.canvas * l;
            let committed = ev.argmax.iter().enumerate().map(|(i, &token)| Commit { pos: at + i, token, confidence: 1.0 }).collect();
            text.step(&StepEvent { step: steps, block: ev.canvas, committed, masked_left: 0, ms: 0.0, early_stop: false }, tok)
        } else {
            Ok(String::new())
        };
        let go = feed.step(|| step_json(ev), delta, &mut failed) && text.reason().is_none();
        stopped |= !go;
        go
    }));
    if let Some(e) = failed {
        return Err(e);
    }
    match result {
        // The answer ended or the client left: the sampler reports it as cancelled.
        Err(_) if stopped => {}
        Err(e) => return Err(e),
        Ok(_) => {}
    }
    let tokens = text.tokens().to_vec();
    feed.finish(text.finish(&tokens, tok)?, steps);
    let completion_tokens = tokens[prompt.len()..].iter().take(feed.limit).take_while(|t| !ends.contains(t) && **t != NOT_FINAL).count();
    let finish = text.reason().unwrap_or(Finish::Length);
    Ok(Outcome { text: text.text().to_string(), finish, prompt_tokens: prompt.len(), completion_tokens, tokens, steps, ms: unmask::clock::now_ms() - t0 })
}
