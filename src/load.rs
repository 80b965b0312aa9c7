//! Finding and loading a model natively, shared by the CLI and the desktop app: the bundled demo
//! model's places, `--quant` parsing, and the planned, streamed load onto a GPU (the memory plan
//! accepts the model and one session before any weight is read).

use crate::engine::{GpuModel, MemoryPlan, Session, SessionConfig};
use crate::gpu::kernels::{KernelVariant, KvType};
use crate::gpu::Gpu;
use crate::model::files::{load_path, open_path, LoadedModel};
use crate::model::{DType, ModelConfig, Quant, TextTokenizer};
use crate::sampler::SamplerOptions;
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the bundled demo model is looked for, in order (`UNMASK_DEMO_MODEL`, when set, is
/// the only place): beside the executable, then in this source tree.
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

/// `model`, or the bundled demo model when none is given.
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

/// `--quant` (and `--pure`) as the loaders take them. K-quants (Q4_K, Q6_K) are read from GGUF
/// files but not made here: asking for one says so before any model is read.
pub fn parse_quant(quant: Option<&str>, pure: bool) -> Result<Option<Quant>> {
    if let Some((q, d @ (DType::Q4K | DType::Q6K))) = quant.and_then(|q| Some((q, DType::parse(q)?))) {
        return Err(Error::Input(format!(
            "--quant {q}: {} is a k-quant, which is read from GGUF files (e.g. llama.cpp's) but not made here; use q4_0 or q8_0, or leave --quant out to keep the model's own formats",
            d.name()
        )));
    }
    let q = quant.map(|q| DType::parse(q).ok_or_else(|| Error::Input(format!("--quant {q:?}: use one of f32, f16, bf16, q8_0, q4_0")))).transpose()?;
    if pure && q.is_none() {
        return Err(Error::Input("--pure changes what --quant does to the embedding and LM head: give --quant too".into()));
    }
    Ok(q.map(|dtype| Quant { dtype, pure }))
}

/// Loads the files into host memory and optionally converts the weights (no GPU involved).
pub fn load_host(model: Option<PathBuf>, quant: Option<Quant>) -> Result<LoadedModel> {
    let path = resolve(model)?;
    let mut loaded = load_path(&path)?;
    if let Some(q) = quant {
        loaded.weights.convert(q)?;
    }
    Ok(loaded)
}

/// What a session must hold to run `opts` on canvases of up to `canvas` positions, with kernel
/// layout `kernels` and K/V stored as `kv`.
pub fn session_config(canvas: usize, opts: &SamplerOptions, kernels: KernelVariant, kv: KvType) -> SessionConfig {
    SessionConfig { canvas, cache: opts.cache, cfg: opts.cfg_scale > 0.0, logits: false, kernels, kv }
}

/// A model streamed onto the GPU, with its tokenizer.
pub struct OnGpu {
    pub model: GpuModel,
    pub tokenizer: Option<TextTokenizer>,
    pub config: ModelConfig,
}

impl OnGpu {
    /// A session for canvases of up to `canvas` positions running `opts`.
    pub fn session(&self, canvas: usize, opts: &SamplerOptions, kernels: KernelVariant, kv: KvType) -> Result<Session<'_>> {
        self.model.session(session_config(canvas, opts, kernels, kv))
    }
}

/// Reads the headers of the model at `path`, plans the GPU memory for the weights (converted to
/// `quant`) plus a session `session(config)`, refuses early if that cannot fit on `gpu` (within
/// `budget` bytes when given), shows the plan to `on_plan`, then streams the weights onto the
/// GPU, calling `progress(bytes done, bytes total)` as they go.
pub fn load_on(
    gpu: Arc<Gpu>,
    path: &Path,
    quant: Option<Quant>,
    session: impl Fn(&ModelConfig) -> SessionConfig,
    budget: Option<u64>,
    on_plan: &mut dyn FnMut(&MemoryPlan),
    progress: &mut dyn FnMut(u64, u64),
) -> Result<OnGpu> {
    let files = open_path(path)?;
    let (index, tokenizer) = files.index()?;
    let tokenizer = tokenizer?;
    let mut s = session(&index.config);
    s.canvas = s.canvas.clamp(1, index.config.max_sequence_length);
    let plan = MemoryPlan::new(&index, quant, &s, gpu.plan_limits())?;
    plan.check(gpu.plan_limits(), budget)?;
    on_plan(&plan);
    let model = pollster::block_on(GpuModel::load(gpu, &index, &files.source, quant, progress))?;
    Ok(OnGpu { model, tokenizer, config: index.config })
}
