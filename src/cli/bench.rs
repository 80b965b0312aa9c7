//! `unmask bench`: generation speed on this machine's GPU, as JSON lines (never a test).
//! A model path, or a synthetic model of a named shape with random weights made in memory.

use super::model;
use clap::Args;
use std::path::PathBuf;
use unmask::engine::GpuModel;
use unmask::gpu::kernels::{AttnShape, KernelVariant, KvType, MatmulSplit};
use unmask::gpu::Gpu;
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
    /// generating: attention, the matmuls in every weight format and, for MoE models, the
    /// grouped expert matmul; or only one of them (`--kernels moe`). With --synthetic no model
    /// is made: only its config is read.
    #[arg(long, num_args = 0..=1, default_missing_value = "all", value_name = "all|attention|matmul|moe")]
    pub kernels: Option<String>,
}

/// Which kernels `--kernels` times.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KernelSet {
    All,
    Attention,
    Matmul,
    Moe,
}

impl KernelSet {
    fn parse(s: &str) -> Result<KernelSet> {
        match s {
            "all" => Ok(KernelSet::All),
            "attention" => Ok(KernelSet::Attention),
            "matmul" => Ok(KernelSet::Matmul),
            "moe" => Ok(KernelSet::Moe),
            _ => Err(Error::Input(format!("--kernels {s:?}: use all, attention, matmul or moe"))),
        }
    }

    fn has(self, k: KernelSet) -> bool {
        self == KernelSet::All || self == k
    }
}

/// GFLOP/s of one matmul dispatch (best of 5 after a warm-up) for each weight format and each
/// matmul layout that runs on this adapter; attention; and for MoE configs the grouped expert matmul.
fn bench_kernels(gpu: &Gpu, c: &ModelConfig, m: usize, set: KernelSet) -> Result<()> {
    if set == KernelSet::Moe && !c.is_moe() {
        return Err(Error::Input("--kernels moe: the model has no experts".into()));
    }
    for v in [KernelVariant::Tiled, KernelVariant::CpuLanes] {
        if gpu.check_kernels(v).is_ok() {
            bench_kernels_with(gpu, v, c, m, set)?;
        }
    }
    Ok(())
}

/// The best of 5 timed runs (after a warm-up) of `ds`, in ms.
fn best_ms(gpu: &Gpu, ds: &[unmask::gpu::kernels::Dispatch], probe: &wgpu::Buffer) -> Result<f64> {
    let mut best = f64::MAX;
    for i in 0..6 {
        let t = unmask::clock::now_ms();
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        gpu.record(&mut enc, ds);
        pollster::block_on(gpu.submit_and_read(enc, &[(probe, 0, 4)]))?;
        if i > 0 {
            best = best.min(unmask::clock::now_ms() - t);
        }
    }
    Ok(best)
}

/// Attention of `lq` query rows against `lk` positions at the model's head shape (bidirectional:
/// every row sees every key), K/V stored as `kvt`. Few rows in the flash layout: split-K, as a
/// cached step runs it.
fn bench_attention(gpu: &Gpu, v: KernelVariant, c: &ModelConfig, lq: usize, lk: usize, kvt: KvType) -> Result<()> {
    use unmask::gpu::kernels::AttnMask;
    let (h, kv, d) = (c.n_heads, c.n_kv_heads, c.head_dim());
    let mut rng = unmask::rng::Rng::new(2);
    let q = gpu.upload_f32("q", &rng.vec(lq * h * d, 1.0))?;
    let upload_kv = |what: &str, x: &[f32]| match kvt {
        KvType::F32 => gpu.upload_f32(what, x),
        KvType::F16 => gpu.upload(what, bytemuck::cast_slice(&x.iter().map(|&a| half::f16::from_f32(a)).collect::<Vec<_>>())),
    };
    let k = upload_kv("k", &rng.vec(lk * kv * d, 1.0))?;
    let vv = upload_kv("v", &rng.vec(lk * kv * d, 1.0))?;
    let out = gpu.storage("out", (lq * h * d * 4) as u64)?;
    let shape = AttnShape { lq, lk, n_heads: h, n_kv: kv, head_dim: d };
    let scratch = gpu.storage("split-K scratch", AttnShape::split_scratch_bound(lk, h, d).max(4))?;
    let ds = gpu.bind(&gpu.attention(v, &q, &k, &vv, &out, shape, AttnMask::FULL, kvt, Some(&scratch))?, None)?;
    let best = best_ms(gpu, &ds, &out)?;
    let gflops = 4.0 * (lq * lk * h * d) as f64 / best / 1e6;
    let gbs = (4 * 2 * lq * h * d + kvt.bytes() * 2 * lk * kv * d) as f64 / best / 1e6;
    let peak = Peak::of(&gpu.report.name);
    let layout = gpu.attention_layout(v, &shape);
    let splits = if layout.is_flash() && ds.len() == 2 { shape.splits() } else { 1 };
    let name = layout.shader();
    let line = serde_json::json!({"kernel": name, "variant": v.name(), "adapter": gpu.report.name, "lq": lq, "lk": lk, "heads": h, "kv_heads": kv, "head_dim": d,
        "kv": kvt.name(), "splits": splits, "ms": best, "gflops": gflops, "gbps": gbs, "of_f32_peak": peak.map(|p| gflops / p.f32_gflops)});
    println!("{line}");
    Ok(())
}

fn bench_kernels_with(gpu: &Gpu, v: KernelVariant, c: &ModelConfig, m: usize, set: KernelSet) -> Result<()> {
    // The portable layout's attention kernels (the GPUs' flash ones, K/V staged in workgroup
    // memory where the adapter allows, and the other), as (flash, tiles).
    let was = (gpu.flash_attention(), gpu.tiled_attention());
    let mut kernels = vec![was];
    if v == KernelVariant::Tiled {
        kernels = vec![(false, false), (true, false)];
        if gpu.set_tiled_attention(true).is_ok() {
            kernels.push((true, true));
        }
    }
    for (flash, tiles) in if set.has(KernelSet::Attention) { kernels } else { vec![] } {
        gpu.set_flash_attention(flash);
        gpu.set_tiled_attention(tiles)?;
        // K/V in f32, and in f16 where the adapter has shader-f16.
        for kvt in [KvType::F32, KvType::F16].into_iter().filter(|&t| gpu.check_kv(t).is_ok()) {
            bench_attention(gpu, v, c, m, m, kvt)?;
            // A cached step: one block's rows against the whole canvas.
            let rows = m.min(32);
            if rows < m {
                bench_attention(gpu, v, c, rows, m, kvt)?;
            }
        }
    }
    gpu.set_flash_attention(was.0);
    gpu.set_tiled_attention(was.1)?;
    if c.is_moe() && set.has(KernelSet::Moe) {
        for dtype in [DType::Q8_0, DType::Q4_0] {
            // Gate (and up: the same shape) and down projections of the experts, for a full pass
            // and a cached step's 32 rows.
            for (name, n, k, by_pair) in [("experts_gate", c.expert_hidden_size, c.d_model, false), ("experts_down", c.d_model, c.expert_hidden_size, true)] {
                for rows in [m, m.min(32)].into_iter().collect::<std::collections::BTreeSet<_>>() {
                    bench_moe(gpu, v, c, dtype, (name, n, k, by_pair), rows)?;
                }
            }
        }
    }
    use unmask::engine::GpuWeight;
    use unmask::model::HostTensor;
    let shapes = [
        ("q_proj", c.d_model, c.d_model),
        ("ff_proj", c.mlp_hidden_size, c.d_model),
        ("ff_out", c.d_model, c.mlp_hidden_size),
        ("lm_head", c.vocab_size, c.d_model),
    ];
    let mut rng = unmask::rng::Rng::new(1);
    let dtypes = if set.has(KernelSet::Matmul) { vec![DType::F32, DType::F16, DType::Q8_0, DType::Q4_0] } else { vec![] };
    for dtype in dtypes {
        for (name, n, k) in shapes {
            let w = HostTensor::encode(dtype, n, k, &rng.vec(n * k, 0.1))
                .ok_or_else(|| Error::Input(format!("{name}: {k} columns do not suit {}", dtype.name())))?;
            let gw = GpuWeight::upload(gpu, name, &w, u64::MAX)?;
            // In the tiled layout where the adapter has cooperative matrices: every row on f32
            // ALUs, then again on tensor cores ("coop" in the JSON says which ran).
            let was = gpu.coop_matmul();
            let coops: &[bool] = if v == KernelVariant::Tiled && gpu.report.cooperative_matrix { &[false, true] } else { &[was] };
            for &coop in coops {
                gpu.set_coop_matmul(coop)?;
                // A full pass and a cached step (one block of 32 rows) in the tiled layout: as
                // it is, and split across k where that makes more workgroups (`MatmulSplit` for
                // `Gpu::split_fill`; GPUs run it so).
                let rows: &[usize] = if v == KernelVariant::Tiled && m > 32 { &[m, 32] } else { &[m] };
                for &r in rows {
                    bench_matmul(gpu, v, &gw, w.data.len(), name, r, None)?;
                    let split = gpu.matmul_split_of(v, r, n, k);
                    if v == KernelVariant::Tiled && split.splits > 1 {
                        bench_matmul(gpu, v, &gw, w.data.len(), name, r, Some(split))?;
                    }
                }
            }
            gpu.set_coop_matmul(was)?;
        }
    }
    Ok(())
}

/// One line for the grouped expert matmul of `rows` positions (top-k of the model's experts,
/// routed from random logits) through stacked experts of `n` × `k` each, x a row per position or
/// per pair (`by_pair`, the down projection): GFLOP/s of the pairs' products, GB/s of the
/// weights of the experts picked.
fn bench_moe(gpu: &Gpu, v: KernelVariant, c: &ModelConfig, dtype: DType, (name, n, k, by_pair): (&str, usize, usize, bool), rows: usize) -> Result<()> {
    use unmask::engine::GpuWeight;
    use unmask::gpu::kernels::{Epilogue, MoeIo, MoeShape};
    use unmask::model::HostTensor;
    let (experts, top) = (c.n_experts, c.n_experts_used);
    let s = MoeShape { rows, experts, k: top };
    let mut rng = unmask::rng::Rng::new(4);
    let w = HostTensor::encode(dtype, experts * n, k, &rng.vec(experts * n * k, 0.1))
        .ok_or_else(|| Error::Input(format!("{name}: {k} columns do not suit {}", dtype.name())))?;
    let gw = GpuWeight::upload(gpu, name, &w, u64::MAX)?;
    let logits = rng.vec(rows * experts, 2.0);
    let picked = unmask::cpu::ops::moe_route(&logits, experts, top, true, c.routing, None).lists.iter().filter(|l| !l.is_empty()).count();
    let lb = gpu.upload_f32("router logits", &logits)?;
    let route = gpu.storage("route", (s.route_words() * 4) as u64)?;
    let x = gpu.upload_f32("x", &rng.vec(rows * if by_pair { top } else { 1 } * k, 1.0))?;
    let y = gpu.storage("y", (rows * top * n * 4) as u64)?;
    // The routing once, then the timed matmul on it.
    let ds = gpu.bind(&[gpu.moe_route(&lb, None, &route, s, true, c.routing)?], None)?;
    let mut enc = gpu.device.create_command_encoder(&Default::default());
    gpu.record(&mut enc, &ds);
    pollster::block_on(gpu.submit_and_read(enc, &[(&route, 0, 4)]))?;
    let mut launches = Vec::new();
    for (buf, r0, count) in &gw.chunks {
        let io = MoeIo { x: &x, by_pair, route: &route, y: &y, epilogue: Epilogue::Store, norm: None };
        launches.push(gpu.moe_matmul(v, dtype, buf, r0 / n, count / n, n, k, io, s)?);
    }
    let ds = gpu.bind(&launches, None)?;
    let best = best_ms(gpu, &ds, &y)?;
    let pairs = rows * top;
    let gflops = 2.0 * (pairs * n * k) as f64 / best / 1e6;
    let gbs = (picked * w.data.len() / experts + 4 * pairs * (k + n)) as f64 / best / 1e6;
    let peak = Peak::of(&gpu.report.name);
    let tile = s.pairs_per_workgroup(v);
    let line = serde_json::json!({"kernel": "moe_matmul", "variant": v.name(), "adapter": gpu.report.name, "dtype": dtype.name(), "shape": name, "rows": rows,
        "experts": experts, "top_k": top, "experts_picked": picked, "pairs_per_tile": tile, "n": n, "k": k, "ms": best, "gflops": gflops, "gbps": gbs,
        "of_f32_peak": peak.map(|p| gflops / p.f32_gflops), "of_bandwidth": peak.map(|p| gbs / p.gbps)});
    println!("{line}");
    Ok(())
}

/// One line for a matmul of `m` rows by the weight `gw` (`bytes` of it), split-K when `split`.
fn bench_matmul(gpu: &Gpu, v: KernelVariant, gw: &unmask::engine::GpuWeight, bytes: usize, name: &str, m: usize, split: Option<MatmulSplit>) -> Result<()> {
    use unmask::gpu::kernels::{Epilogue, MatmulIo};
    let (n, k) = (gw.rows, gw.cols);
    let mut rng = unmask::rng::Rng::new(3);
    let x = gpu.upload_f32("x", &rng.vec(m * k, 1.0))?;
    let y = gpu.storage("y", (m * n * 4) as u64)?;
    let launches = match split {
        Some(s) => {
            let scratch = gpu.storage("split-K scratch", s.bytes(m, n))?;
            let io = MatmulIo { x: &x, x_offset: 0, y: &y, y_offset: 0, y_stride: n, epilogue: Epilogue::Store, norm: None, rope: None };
            gpu.matmul_split(gw.dtype, &gw.chunks[0].0, m, n, k, io, &scratch, s, KvType::F32)?
        }
        None => gw.matmul(gpu, v, &x, 0, m, &y, 0, n, Epilogue::Store)?,
    };
    let ds = gpu.bind(&launches, None)?;
    let best = best_ms(gpu, &ds, &y)?;
    let gflops = 2.0 * (m * n * k) as f64 / best / 1e6;
    // Bytes a matmul must move at least: the weights once, x and y once.
    let gbs = (bytes + 4 * m * k + 4 * m * n) as f64 / best / 1e6;
    let peak = Peak::of(&gpu.report.name);
    // Whether this launch ran on cooperative matrices (tiled launches where `coop_matmul` is on).
    let coop = launches.iter().any(|l| matches!(l.kernel, unmask::gpu::kernels::Kernel::MatmulCoop(_)));
    let line = serde_json::json!({"kernel": "matmul", "variant": v.name(), "coop": coop, "adapter": gpu.report.name, "dtype": gw.dtype.name(), "shape": name, "m": m, "n": n, "k": k,
        "splits": split.map_or(1, |s| s.splits), "ms": best, "gflops": gflops, "gbps": gbs, "of_f32_peak": peak.map(|p| gflops / p.f32_gflops),
        "of_f16_tensor_peak": peak.filter(|_| coop).map(|p| gflops / p.f16_tensor_gflops), "of_bandwidth": peak.map(|p| gbs / p.gbps)});
    println!("{line}");
    Ok(())
}

/// The peaks a kernel's figures are compared with (BENCHMARKS.md states them), for the GPUs
/// this project measures on, matched by adapter name.
#[derive(Clone, Copy)]
struct Peak {
    f32_gflops: f64,
    /// Dense f16 products with f32 sums on tensor cores.
    f16_tensor_gflops: f64,
    gbps: f64,
}

impl Peak {
    fn of(adapter: &str) -> Option<Peak> {
        let a = adapter.to_ascii_uppercase();
        if a.contains("H200") {
            Some(Peak { f32_gflops: 67_000.0, f16_tensor_gflops: 990_000.0, gbps: 4_800.0 })
        } else if a.contains("H100") {
            Some(Peak { f32_gflops: 67_000.0, f16_tensor_gflops: 990_000.0, gbps: 3_350.0 })
        } else {
            None
        }
    }
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

/// Multiply-adds of one forward pass over `l` positions (matmuls and attention).
fn forward_flops(c: &ModelConfig, l: usize) -> f64 {
    let (d, kv, h, v) = (c.d_model as f64, c.kv_dim() as f64, c.mlp_hidden_size as f64, c.vocab_size as f64);
    let per_token = c.n_layers as f64 * (2.0 * d * d + 2.0 * d * kv + 3.0 * d * h) + d * v;
    let attention = c.n_layers as f64 * 2.0 * (l as f64) * d;
    2.0 * l as f64 * (per_token + attention)
}

pub fn run(a: BenchArgs) -> Result<()> {
    if let Some(p) = a.model.as_deref().filter(|p| super::dgemma::is_dgemma(p)) {
        return super::dgemma::bench(&a, p);
    }
    let kernels = a.kernels.as_deref().map(KernelSet::parse).transpose()?;
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
        let mut last = None;
        for _ in 0..a.runs.max(1) {
            let canvas = Canvas::after_prompt(&prompt, gen, c.mask_token_id, None);
            last = Some(pollster::block_on(sampler::run(&mut session, canvas, &o, &mut |_| true))?);
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
        let profile = pollster::block_on(session.profile(&g.tokens, step_rows.clone()))?;
        let launches = session.pass_kernels(l, step_rows.clone())?.len();
        let encode_ms = session.encode_ms(l, step_rows.clone(), 5)?;
        let ms_forward = g.ms / g.model_passes.max(1) as f64;
        let line = serde_json::json!({
            "model": name, "adapter": gm.gpu.report.name, "backend": gm.gpu.report.backend, "kernels": kernels, "kv": kv, "coop": gm.gpu.coop_matmul(), "fused": gm.gpu.fuses(session.config().kernels), "loop_bounding": gm.gpu.loop_bounding(), "split_fill": (session.config().kernels == KernelVariant::Tiled && gm.gpu.split_matmul()).then(|| gm.gpu.split_fill()),
            "attention": gm.gpu.attention_layout(session.config().kernels, &AttnShape { lq: 1, lk: 1, n_heads: c.n_heads, n_kv: c.n_kv_heads, head_dim: c.head_dim() }).shader(),
            "quant": a.quant.clone().unwrap_or_else(|| if a.model.is_some() { "as-loaded".into() } else { "q4_0".into() }),
            "prompt": a.prompt, "prompt_length": prompt.len(), "gen_length": gen, "steps": g.steps, "block_length": o.block_length,
            "threshold": a.threshold, "cfg_scale": a.cfg_scale, "cache": a.cache,
            "tokens_per_second": gen as f64 / (g.ms / 1000.0),
            "ms_per_step": g.ms / g.steps.max(1) as f64,
            "ms_per_forward": ms_forward,
            "forward_gflops": forward_flops(&c, l) / (ms_forward / 1000.0) / 1e9,
            "model_passes": g.model_passes, "total_ms": g.ms,
            // GPU time per kernel of one step's pass (rows `step_rows`: the whole canvas without a
            // cache, the first block and what follows with prefix, the block alone with dual),
            // from timestamp queries; null without them.
            "profiled_rows": [step_rows.start, step_rows.end], "launches_per_pass": launches,
            // Host time to encode that pass (recorded and finished, not submitted), best of 5.
            "host_encode_ms": encode_ms,
            "gpu_ms_per_kernel": profile.map(|v| v.into_iter().map(|(k, t)| (k, serde_json::json!(t))).collect::<serde_json::Map<_, _>>()),
        });
        println!("{line}");
    }
    Ok(())
}
