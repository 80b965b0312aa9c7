//! Finding and loading the model for a command: `--model PATH`, else the bundled demo model.
//! GPU loads stream from the files (never the whole model in memory) after the memory plan
//! has accepted them.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use unmask::engine::{human, GpuModel, MemoryPlan, Session, SessionConfig};
use unmask::gpu::kernels::KernelVariant;
use unmask::gpu::Gpu;
use unmask::model::files::{load_path, open_path, LoadedModel};
use unmask::model::{DType, ModelConfig, Quant, TextTokenizer};
use unmask::sampler::SamplerOptions;
use unmask::{Error, Result};

/// Where the bundled demo model is looked for, in order (`UNMASK_DEMO_MODEL`, when set, is
/// the only place).
pub fn demo_candidates() -> Vec<PathBuf> {
    if let Ok(p) = std::env::var("UNMASK_DEMO_MODEL") {
        return vec![PathBuf::from(p)];
    }
    let mut v = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            v.push(dir.join("models/demo-q4_0.gguf"));
        }
    }
    v.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/demo-q4_0.gguf"));
    v
}

pub fn resolve(model: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(m) = model {
        return Ok(m);
    }
    let c = demo_candidates();
    c.iter().find(|p| p.exists()).cloned().ok_or_else(|| {
        Error::Input(format!(
            "no --model given and no bundled demo model found (looked at {}): pass --model PATH (a model directory or a .gguf file)",
            c.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        ))
    })
}

/// K-quants (Q4_K, Q6_K) are read from GGUF files (llama.cpp's) but not made here: asking for
/// one says so, before any model is read, instead of failing on the first matrix.
fn refuse_k_quant(quant: Option<&str>) -> Result<()> {
    match quant.and_then(|q| Some((q, DType::parse(q)?))) {
        Some((q, d @ (DType::Q4K | DType::Q6K))) => Err(Error::Input(format!(
            "--quant {q}: {} is a k-quant, which is read from GGUF files (e.g. llama.cpp's) but not made here; use q4_0 or q8_0, or leave --quant out to keep the model's own formats",
            d.name()
        ))),
        _ => Ok(()),
    }
}

/// `--quant` (and `--pure`) as the loaders take them; k-quants are refused before any file is read.
pub fn parse_quant(quant: Option<&str>, pure: bool) -> Result<Option<Quant>> {
    refuse_k_quant(quant)?;
    let q = quant.map(|q| DType::parse(q).ok_or_else(|| Error::Input(format!("--quant {q:?}: use one of f32, f16, bf16, q8_0, q4_0")))).transpose()?;
    if pure && q.is_none() {
        return Err(Error::Input("--pure changes what --quant does to the embedding and LM head: give --quant too".into()));
    }
    Ok(q.map(|dtype| Quant { dtype, pure }))
}

/// Loads the files into host memory and optionally converts the weights (no GPU involved).
pub fn load_host(model: Option<PathBuf>, quant: Option<&str>, pure: bool) -> Result<LoadedModel> {
    let path = resolve(model)?;
    let mut loaded = load_path(&path)?;
    if let Some(q) = parse_quant(quant, pure)? {
        loaded.weights.convert(q)?;
    }
    Ok(loaded)
}

/// The kernel layout to run: `UNMASK_KERNELS=tiled|subgroup` when set, else the adapter's own.
pub fn kernels(gpu: &Gpu) -> Result<KernelVariant> {
    match std::env::var("UNMASK_KERNELS") {
        Ok(v) => gpu.check_kernels(KernelVariant::parse(&v).ok_or_else(|| Error::Input(format!("UNMASK_KERNELS={v:?}: use tiled or subgroup")))?),
        Err(_) => Ok(gpu.default_kernels()),
    }
}

/// What a session must hold to run `opts` on canvases of up to `canvas` positions.
pub fn session_config(gpu: &Gpu, canvas: usize, opts: &SamplerOptions) -> Result<SessionConfig> {
    Ok(SessionConfig { canvas, cache: opts.cache, cfg: opts.cfg_scale > 0.0, logits: false, kernels: kernels(gpu)? })
}

/// A model streamed onto the GPU, with its tokenizer.
pub struct OnGpu {
    pub model: GpuModel,
    pub tokenizer: Option<TextTokenizer>,
    pub config: ModelConfig,
}

impl OnGpu {
    /// A session for canvases of up to `canvas` positions running `opts`.
    pub fn session(&self, canvas: usize, opts: &SamplerOptions) -> Result<Session<'_>> {
        self.model.session(session_config(&self.model.gpu, canvas, opts)?)
    }
}

/// Reads the headers, plans the GPU memory for the weights (converted to `quant`) and a
/// session running `opts` on a canvas of `canvas(config)` positions, refuses early if it cannot
/// fit, then streams the weights onto the GPU with a progress line on a terminal.
pub fn load(model: Option<PathBuf>, quant: Option<&str>, pure: bool, opts: &SamplerOptions, canvas: impl Fn(&ModelConfig) -> usize) -> Result<OnGpu> {
    let path = resolve(model)?;
    let quant = parse_quant(quant, pure)?;
    let files = open_path(&path)?;
    let (index, tokenizer) = files.index()?;
    let tokenizer = tokenizer?;
    let gpu = Arc::new(pollster::block_on(Gpu::new())?);
    let session = session_config(&gpu, canvas(&index.config).clamp(1, index.config.max_sequence_length), opts)?;
    let plan = MemoryPlan::new(&index, quant, &session, gpu.plan_limits())?;
    plan.check(gpu.plan_limits(), None)?;
    let tty = std::io::stderr().is_terminal() && plan.file_bytes > 64 << 20;
    let start = std::time::Instant::now();
    let mut last = 0.0;
    let model = pollster::block_on(GpuModel::load(gpu, &index, &files.source, quant, &mut |done, total| {
        let t = start.elapsed().as_secs_f64();
        if tty && (t - last > 0.2 || done == total) {
            last = t;
            let pct = if total == 0 { 100.0 } else { 100.0 * done as f64 / total as f64 };
            let bar = "█".repeat((pct / 5.0) as usize) + &"░".repeat(20 - (pct / 5.0) as usize);
            eprint!("\rloading {bar} {pct:5.1}%  {} of {}  {:.0} MB/s ", human(done), human(total), done as f64 / 1e6 / t.max(1e-3));
        }
    }));
    if tty {
        eprintln!();
    }
    Ok(OnGpu { model: model?, tokenizer, config: index.config })
}
