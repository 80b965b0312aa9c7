//! `unmask bench`: generation speed on this machine's GPU, as JSON lines (never a test).
//! A model path, or a synthetic model of a named shape with random weights made in memory.

use super::bench_kernels::{bench_kernels, KernelSet, Peak};
use super::model;
use clap::Args;
use std::path::PathBuf;
use unmask::engine::GpuModel;
use unmask::gpu::kernels::KernelVariant;
use unmask::model::{DType, ModelConfig};
use unmask::sampler::{self, Canvas, SamplerOptions};
use unmask::synth::{random_model, tiny_config};
use unmask::{Error, Result};

#[derive(Args)]
pub struct BenchArgs {
    /// A model to load (directory or .gguf). Without it, --synthetic is used.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Shape of a random model made in memory: tiny, demo, or a config.json path (e.g. the real LLaDA-8B config).
    #[arg(long, default_value = "demo")]
    pub synthetic: String,
    /// Prompt tokens (random ids) before the answer.
    #[arg(long, default_value_t = 32)]
    pub prompt_length: usize,
    /// A real user message instead of random ids (chat template applied; needs --model with a
    /// tokenizer). The confidence threshold only saves steps where the model is confident, so
    /// measure it on an in-domain prompt.
    #[arg(long)]
    pub prompt: Option<String>,
    /// Answer lengths to measure (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "64")]
    pub gen_length: Vec<usize>,
    /// Steps; 0 means one per answer token (the reference setting).
    #[arg(long, default_value_t = 0)]
    pub steps: usize,
    #[arg(long, default_value_t = 32)]
    pub block_length: usize,
    /// K/V reuse inside a block: none, prefix or dual.
    #[arg(long, default_value = unmask::sampler::CacheMode::DEFAULT.name())]
    pub cache: String,
    /// Classifier-free guidance scale (0: off; above 0 every step runs two passes).
    #[arg(long, default_value_t = 0.0)]
    pub cfg_scale: f32,
    /// Confidence threshold for parallel decoding (off by default).
    #[arg(long)]
    pub threshold: Option<f32>,
    /// Weight format: f32, f16, bf16, q8_0, q4_0 [default: as loaded; synthetic models: q4_0].
    #[arg(long)]
    pub quant: Option<String>,
    /// Runs per setting (the first is a warm-up and not reported when > 1).
    #[arg(long, default_value_t = 2)]
    pub runs: usize,
    /// Time kernels alone at the model's shapes (M = prompt + answer positions), instead of
    /// generating: the platform probes (a dispatch's own cost, streaming reads, f32 and
    /// tensor-core multiply-adds through wgpu, with naga's loop bounding off and on, and bounds checks off), attention,
    /// the matmuls in every weight format and, for MoE models, the grouped expert matmul; or only
    /// one of them (`--kernels probe`). Times are GPU timestamps where the adapter has them
    /// ("timed_by"). With --synthetic no model is made: only its config is read. `compile` runs
    /// nothing: it prints what the Vulkan driver's compiler made of each kernel (registers,
    /// spills, scratch memory), where the driver reports it. `phases` (not part of `all`) times
    /// the Q4_0 matmuls of the tiled layout whole and with parts of their k loop left out (the
    /// loads, the multiply-adds, the stores into workgroup memory): what each part costs. `soft`
    /// (not part of `all`) times DiffusionGemma's soft embedding (probability rows times the
    /// vocabulary × hidden embedding, Q8_0), unsplit and split across the vocabulary as GPUs run it.
    #[arg(long, num_args = 0..=1, default_missing_value = "all", value_name = "all|probe|attention|matmul|moe|phases|soft|compile")]
    pub kernels: Option<String>,
}

fn synthetic_config(name: &str) -> Result<ModelConfig> {
    match name {
        "tiny" => Ok(tiny_config(2, 4, 2, 16, 128, 512)),
        "demo" => {
            let mut c = tiny_config(6, 8, 4, 32, 768, 4096);
            c.max_sequence_length = 4096;
            Ok(c)
        }
        path => {
            let text =
                std::fs::read_to_string(path).map_err(|e| Error::Input(format!("--synthetic {path:?}: not tiny, demo or a readable config.json ({e})")))?;
            ModelConfig::from_hf_json(path, &text)
        }
    }
}

/// Most parameters of a synthetic model: it is made in host memory before upload, so a config
/// far beyond any real model is refused with its size rather than failing to allocate.
const MAX_SYNTHETIC_PARAMS: u128 = 1 << 36;

/// Parameters of a model of config `c` (u128: no product of the dimensions can overflow).
fn parameters(c: &ModelConfig) -> u128 {
    let (d, kv, h, v, n) = (c.d_model as u128, c.kv_dim() as u128, c.mlp_hidden_size as u128, c.vocab_size as u128, c.n_layers as u128);
    2 * v * d + n * (2 * d * d + 2 * d * kv + 3 * d * h + 2 * d) + d
}

/// Positions of a canvas of `prompt` + `gen` tokens, refused unless the model's context holds them.
fn positions(prompt: usize, gen: usize, c: &ModelConfig) -> Result<usize> {
    match prompt.checked_add(gen) {
        Some(l) if l <= c.max_sequence_length => Ok(l),
        _ => Err(Error::Input(format!("prompt ({prompt} tokens) + --gen-length {gen} exceed the model's context of {}", c.max_sequence_length))),
    }
}

pub fn run(a: BenchArgs) -> Result<()> {
    if let Some(p) = a.model.as_deref().filter(|p| super::dgemma::is_dgemma(p)) {
        return super::dgemma::bench(&a, p);
    }
    let kernels = a.kernels.as_deref().map(KernelSet::parse).transpose()?;
    if kernels == Some(KernelSet::Compile) {
        // No model and no wgpu device: the kernels go straight to the Vulkan driver.
        return super::bench_compile::bench_compile();
    }
    let quant = model::parse_quant(a.quant.as_deref(), false)?;
    let cache = unmask::sampler::CacheMode::parse(&a.cache)?;
    let plan_opts = SamplerOptions { cache, cfg_scale: a.cfg_scale, ..Default::default() };
    let mut real_prompt = None;
    let (gm, name) = match &a.model {
        Some(p) => {
            let gen = a.gen_length.iter().max().copied().unwrap_or(0);
            // The longest canvas the memory plan must hold (a real prompt's length is not known
            // yet); saturating, as the lengths are checked against the context below.
            let canvas =
                |c: &ModelConfig| if a.prompt.is_some() { c.max_sequence_length.min(gen.saturating_add(1024)) } else { a.prompt_length.saturating_add(gen) };
            let loaded = model::load(Some(p.clone()), a.quant.as_deref(), false, &plan_opts, canvas)?;
            if let Some(text) = &a.prompt {
                let tok = loaded
                    .tokenizer
                    .as_ref()
                    .ok_or_else(|| Error::Input(format!("--prompt: {} has no tokenizer; use --prompt-length (random ids)", p.display())))?;
                real_prompt = Some(unmask::sampler::text::prompt_tokens(&loaded.config, tok, text, true)?);
            }
            (loaded.model, p.display().to_string())
        }
        None if a.prompt.is_some() => return Err(Error::Input("--prompt needs --model (a synthetic model has no tokenizer)".into())),
        None => {
            let cfg = synthetic_config(&a.synthetic)?;
            if let Some(set) = kernels {
                // Kernels need only the shapes: no model is made.
                let gen = a.gen_length.first().copied().unwrap_or(0);
                return bench_kernels(&*model::open_gpu()?, &cfg, positions(a.prompt_length, gen, &cfg)?, set);
            }
            let params = parameters(&cfg);
            if params > MAX_SYNTHETIC_PARAMS {
                return Err(Error::Input(format!(
                    "--synthetic {}: {params} parameters is more than a model made in memory may have here (at most {MAX_SYNTHETIC_PARAMS})",
                    a.synthetic
                )));
            }
            let w = random_model(&cfg, quant.map_or(DType::Q4_0, |q| q.dtype), 1);
            let gpu = model::open_gpu()?;
            (GpuModel::upload(gpu, &w)?, format!("synthetic:{}", a.synthetic))
        }
    };
    let c = gm.config.clone();
    if let Some(set) = kernels {
        let gen = a.gen_length.first().copied().unwrap_or(0);
        return bench_kernels(&gm.gpu, &c, positions(a.prompt_length, gen, &c)?, set);
    }
    for &gen in &a.gen_length {
        let steps = if a.steps == 0 { gen } else { a.steps };
        let o = SamplerOptions {
            steps,
            gen_length: gen,
            block_length: a.block_length.min(gen),
            threshold: a.threshold,
            cfg_scale: a.cfg_scale,
            early_stop: false,
            cache,
            ..Default::default()
        };
        o.validate()?;
        // Checked before the prompt is made: its length is the user's.
        positions(real_prompt.as_ref().map_or(a.prompt_length, Vec::len), gen, &c)?;
        let prompt: Vec<u32> = match &real_prompt {
            Some(p) => p.clone(),
            None => (0..a.prompt_length as u64).map(|i| ((i * 7919 + 13) % c.vocab_size as u64) as u32).filter(|&t| t != c.mask_token_id).collect(),
        };
        let l = prompt.len() + gen;
        let mut session = gm.session(model::session_config(&gm.gpu, l, &o)?)?;
        let (mut last, mut madds) = (None, 0);
        for _ in 0..a.runs.max(1) {
            let before = session.multiply_adds_done();
            let canvas = Canvas::after_prompt(&prompt, gen, c.mask_token_id, None);
            last = Some(pollster::block_on(sampler::run(&mut session, canvas, &o, &mut |_| true))?);
            madds = session.multiply_adds_done() - before;
        }
        let g = last.expect("one run");
        // The pass this cache mode's steps run (a block's first step is always a full pass).
        let (bs, be) = (prompt.len(), prompt.len() + o.block_length);
        let step_rows = match cache {
            unmask::sampler::CacheMode::None => 0..l,
            unmask::sampler::CacheMode::Prefix => bs..l,
            unmask::sampler::CacheMode::Dual => bs..be,
        };
        let (kernels, kv) = (session.config().kernels.name(), session.config().kv.name());
        let profile = pollster::block_on(session.profile(&g.tokens, step_rows.clone(), bs..be))?;
        let launches = session.pass_kernels(l, step_rows.clone(), bs..be)?.len();
        let encode_ms = session.encode_ms(l, step_rows.clone(), bs..be, 5)?;
        let ms_forward = g.ms / g.model_passes.max(1) as f64;
        let (gflops, of_peak) = Peak::achieved(&gm.gpu.report.name, gm.gpu.coop_matmul(), madds, g.ms);
        let line = serde_json::json!({
            "model": name, "adapter": gm.gpu.report.name, "backend": gm.gpu.report.backend, "kernels": kernels, "kv": kv, "coop": gm.gpu.coop_matmul(), "fused": gm.gpu.fuses(session.config().kernels), "half_inputs": session.half_inputs(), "coop_short": gm.gpu.coop_matmul() && gm.gpu.short_coop(), "coop_wide": gm.gpu.coop_matmul() && gm.gpu.coop_wide(), "loop_bounding": gm.gpu.loop_bounding(), "bounds_checks": gm.gpu.bounds_checks(), "register_tile": gm.gpu.register_tile(), "row_workgroup": gm.gpu.row_workgroup(), "x_windows": gm.gpu.x_windows(), "split_fill": (session.config().kernels == KernelVariant::Tiled && gm.gpu.split_matmul()).then(|| gm.gpu.split_fill()),
            "attention": model::attention_shader(&gm.gpu, session.config().kernels, &c),
            "quant": a.quant.clone().unwrap_or_else(|| if a.model.is_some() { "as-loaded".into() } else { "q4_0".into() }),
            "prompt": a.prompt, "prompt_length": prompt.len(), "gen_length": gen, "steps": g.steps, "block_length": o.block_length,
            "threshold": a.threshold, "cfg_scale": a.cfg_scale, "cache": a.cache,
            "tokens_per_second": gen as f64 / (g.ms / 1000.0),
            "ms_per_step": g.ms / g.steps.max(1) as f64,
            "ms_per_forward": ms_forward,
            // What the run's passes computed (their rows, heads and attention keys) over its time.
            "achieved_gflops": gflops,
            // Of the stated peak (BENCHMARKS.md) of the units the matmuls ran on, where known.
            "of_peak": of_peak,
            "model_passes": g.model_passes, "total_ms": g.ms,
            // GPU time per kernel of one step's pass (rows `step_rows`: the whole canvas without a
            // cache, the first block and what follows with prefix, the block alone with dual; the
            // LM head for the first block's rows), from timestamp queries; null without them.
            "profiled_rows": [step_rows.start, step_rows.end], "launches_per_pass": launches,
            // Host time to encode that pass (recorded and finished, not submitted), best of 5.
            "host_encode_ms": encode_ms,
            "gpu_ms_per_kernel": profile.map(|v| v.into_iter().map(|(k, t)| (k, serde_json::json!(t))).collect::<serde_json::Map<_, _>>()),
        });
        println!("{line}");
    }
    Ok(())
}
