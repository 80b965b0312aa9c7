//! `unmask generate` for DiffusionGemma checkpoints (a HF folder whose config.json says
//! `diffusion_gemma`): uniform-state denoising of whole canvases with the settings of the
//! checkpoint's `generation_config.json` (beside the model), on the GPU (`--cpu`: the CPU twin),
//! from a Hub folder (safetensors) or llama.cpp's `diffusion-gemma` GGUF, streamed.

use super::bench_kernels::Peak;
use super::generate::GenerateArgs;
use super::model::progress_bar;
use std::io::IsTerminal;
use std::path::Path;
use unmask::dgemma::files::DgFiles;
use unmask::dgemma::forward::CpuDg;
use unmask::dgemma::gpu::DgGpuModel;
use unmask::dgemma::gpu_session::DgSession;
use unmask::dgemma::plan::plan;
use unmask::dgemma::sampler::{generate as dg_generate, positions_needed, DgModel, DgStep, SeededDraws};
use unmask::dgemma::DgWeights;
use unmask::engine::human;
use unmask::rng::Rng;
use unmask::{Error, Result};

pub use unmask::dgemma::files::is_dgemma;
use unmask::dgemma::parse_quant;

pub fn generate(a: &GenerateArgs, path: &Path) -> Result<()> {
    let DgFiles { files, index, settings: mut s, tokenizer: tok } = DgFiles::open(path)?;
    if index.skipped_vision > 0 {
        eprintln!("note: skipped the {} tensors of the vision tower (text only)", index.skipped_vision);
    }
    // The answer length asked for, in whole canvases.
    s.max_new_tokens = a.gen_length;
    s.steps = a.s.steps.unwrap_or(s.steps);
    let prompt = match (&a.prompt, &a.prompt_tokens) {
        (Some(text), _) => {
            let t = tok.as_ref().ok_or_else(|| Error::Input("this model has no tokenizer.json: give --prompt-tokens".into()))?;
            unmask::dgemma::prompt_tokens(t, text, a.chat)?
        }
        (None, Some(ids)) => ids.clone(),
        (None, None) => vec![],
    };
    let quant = parse_quant(a.s.quant.as_deref())?;
    let mut draws = SeededDraws(Rng::new(a.s.seed ^ 0x6467656d6d61));
    let mut steps = Vec::new();
    let mut view = a.s.visual.then(|| super::dgview::DgVisual::new(tok.as_ref(), s.steps, s.eos.iter().copied().chain(s.pad).collect()));
    let t0 = unmask::clock::now_ms();
    let mut on_step = |ev: &DgStep| {
        if a.s.json {
            steps.push(super::dgview::step_json(ev));
        }
        if let Some(v) = view.as_mut() {
            v.step(ev);
        }
        true
    };
    let (gen, adapter) = if a.s.cpu {
        let w = pollster::block_on(DgWeights::load(&index, &files.source))?;
        let mut model = CpuDg::new(&w);
        (pollster::block_on(dg_generate(&mut model, &mut draws, &prompt, &s, &mut on_step))?, "CPU twin".to_string())
    } else {
        let c = &index.config;
        let positions = positions_needed(prompt.len().max(1), &s, c.canvas_length, c.max_positions)?;
        let gpu = super::model::open_gpu()?;
        let name = gpu.report.name.clone();
        // Refused with the numbers before any weight is read when it cannot fit.
        let kv = super::model::kv(&gpu)?;
        let plan = plan(&index, quant, positions, gpu.plan_limits(), kv)?;
        plan.check(gpu.plan_limits(), None)?;
        let tty = std::io::stderr().is_terminal() && index.file_bytes() > 64 << 20;
        let mut bar = progress_bar();
        let m = pollster::block_on(DgGpuModel::load(gpu, &index, &files.source, quant, &mut |d, t| {
            if tty {
                bar(d, t)
            }
        }))?;
        if tty {
            eprintln!();
        }
        let mut session = DgSession::new(&m, positions, kv)?;
        session.set_kernels(super::model::kernels(&m.gpu)?)?;
        (pollster::block_on(dg_generate(&mut session, &mut draws, &prompt, &s, &mut on_step))?, name)
    };
    let answer = &gen.tokens[prompt.len()..];
    let text = match &tok {
        Some(t) => Some(t.decode(answer, false)?),
        None => None,
    };
    if a.s.json {
        let v = serde_json::json!({"prompt_tokens": prompt, "tokens": answer, "text": text, "canvases": gen.canvases, "steps": steps, "stop": gen.stop, "adapter": adapter});
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
    } else if let Some(v) = &view {
        v.finish(&gen, unmask::clock::now_ms() - t0);
    } else {
        match text {
            Some(t) => println!("{}", t.trim_end()),
            None => println!("{}", answer.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(",")),
        }
    }
    Ok(())
}

/// `unmask info` for a DiffusionGemma model: what the config says, layer by layer kind.
pub fn info(path: &Path, quant: Option<&str>) -> Result<()> {
    let quant = parse_quant(quant)?;
    let DgFiles { files, index, .. } = DgFiles::open(path)?;
    let c = &index.config;
    let full = c.layers.iter().filter(|l| l.full).count();
    let params = index.params() as f64;
    let params = if params >= 1e9 { format!("{:.2} B", params / 1e9) } else { format!("{:.2} M", params / 1e6) };
    println!("model      {} ({}, {params} parameters, {} of tensor data)", path.display(), files.format, human(index.file_bytes()));
    println!("family     diffusion-gemma (encoder/decoder over one Gemma 4 MoE stack)");
    println!(
        "layers     {}  hidden {}  heads {}  ({} sliding, window {}; {} full)",
        c.layers.len(),
        c.hidden,
        c.heads,
        c.layers.len() - full,
        c.sliding_window,
        full
    );
    for (kind, l) in [("sliding", c.layers.iter().find(|l| !l.full)), ("full", c.layers.iter().find(|l| l.full))] {
        if let Some(l) = l {
            println!("  {kind:<8} head_dim {} kv heads {}  RoPE θ {} on {} of {} pairs", l.head_dim, l.kv_heads, l.rope.theta, l.rope.pairs, l.head_dim / 2);
        }
    }
    println!("ffn        dense GELU-tanh MLP {} beside {} experts, top-{}, expert hidden {}", c.intermediate, c.experts, c.top_k, c.expert_hidden);
    println!("canvas     {} tokens  vocab {}  logit soft-cap {:?}", c.canvas_length, c.vocab, c.softcap);
    // The plan for one canvas after a prompt of up to one canvas, on the adapter's limits when
    // there is one (else unbounded).
    let gpu = pollster::block_on(unmask::gpu::Gpu::new());
    let limits = match &gpu {
        Ok(g) => g.plan_limits(),
        Err(_) => unmask::gpu::Limits { max_binding: u64::MAX, max_buffer: u64::MAX, wide_tiles: true },
    };
    let kv = gpu.as_ref().ok().map(super::model::kv).transpose()?.unwrap_or_default();
    let p = plan(&index, quant, (2 * c.canvas_length).min(c.max_positions), limits, kv)?;
    println!("memory     {}", p.summary());
    Ok(())
}

/// `unmask bench --model <DiffusionGemma>`: whole generations of random-id prompts on the GPU,
/// as JSON lines: ms per denoising step (decoder), tokens per second, the encoder's share.
pub fn bench(a: &super::bench::BenchArgs, path: &Path) -> Result<()> {
    let quant = parse_quant(a.quant.as_deref())?;
    let DgFiles { files, index, settings, .. } = DgFiles::open(path)?;
    let c = index.config.clone();
    let gpu = super::model::open_gpu()?;
    let m = pollster::block_on(DgGpuModel::load(gpu.clone(), &index, &files.source, quant, &mut |_, _| {}))?;
    let kv = super::model::kv(&gpu)?;
    for &gen in &a.gen_length {
        let mut s = settings.clone();
        s.max_new_tokens = gen;
        if a.steps > 0 {
            s.steps = a.steps;
        }
        // Every step runs: the adaptive stop off, so the figure is per step.
        s.confidence_threshold = f32::MIN_POSITIVE;
        s.eos = vec![];
        let prompt: Vec<u32> = (0..a.prompt_length.max(1) as u64).map(|i| ((i * 7919 + 13) % c.vocab as u64) as u32).collect();
        let positions = positions_needed(prompt.len(), &s, c.canvas_length, c.max_positions)?;
        let (mut best, mut steps, mut madds) = (f64::MAX, 0, 0);
        for _ in 0..a.runs.max(1) {
            let mut session = DgSession::new(&m, positions, kv)?;
            session.set_kernels(super::model::kernels(&m.gpu)?)?;
            let mut draws = SeededDraws(Rng::new(1));
            let t0 = unmask::clock::now_ms();
            let g = pollster::block_on(dg_generate(&mut session, &mut draws, &prompt, &s, &mut |_| true))?;
            best = best.min(unmask::clock::now_ms() - t0);
            (steps, madds) = (g.steps, session.multiply_adds_done());
        }
        // GPU time per kernel kind of one self-conditioned decoder step (a generation's steps
        // after a canvas's first) over a canvas after the prompt, from timestamp queries.
        let profile = {
            let mut session = DgSession::new(&m, prompt.len() + c.canvas_length, kv)?;
            session.set_kernels(super::model::kernels(&m.gpu)?)?;
            pollster::block_on(session.encode(&prompt))?;
            let canvas: Vec<u32> = (0..c.canvas_length as u64).map(|i| ((i * 104729 + 7) % c.vocab as u64) as u32).collect();
            pollster::block_on(session.decode(&canvas, None))?;
            pollster::block_on(session.profile(&canvas, Some(1.0)))?
        };
        let tokens = gen.div_ceil(c.canvas_length) * c.canvas_length;
        // What the run multiplied (`DgSession::multiply_adds_done`) over its time; the share of
        // the peak as `unmask bench`'s other families give it.
        let (gflops, peak) = Peak::achieved(&gpu.report.name, gpu.coop_matmul(), madds, best);
        let line = serde_json::json!({
            "model": path.display().to_string(), "family": "diffusion-gemma", "adapter": gpu.report.name, "backend": gpu.report.backend,
            "kv": kv.name(), "coop": gpu.coop_matmul(),
            "quant": a.quant.clone().unwrap_or_else(|| "as-loaded".into()), "prompt_length": prompt.len(), "gen_length": gen,
            "canvas_tokens": tokens, "steps": steps, "total_ms": best, "ms_per_step": best / steps.max(1) as f64,
            "tokens_per_second": tokens as f64 / (best / 1000.0),
            "multiply_adds": madds, "achieved_gflops": gflops, "of_peak": peak,
            "gpu_ms_per_kernel": profile.map(|v| v.into_iter().map(|(k, t)| (k, serde_json::json!(t))).collect::<serde_json::Map<_, _>>()),
        });
        println!("{line}");
    }
    Ok(())
}
