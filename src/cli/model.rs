//! Finding and loading the model for a command: `--model PATH`, else the bundled demo model.
//! GPU loads stream from the files (never the whole model in memory) after the memory plan
//! has accepted them.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use unmask::forward::GpuModel;
use unmask::gpu::Gpu;
use unmask::model::files::{load_path, open_path, LoadedModel};
use unmask::model::{DType, LladaConfig, TextTokenizer};
use unmask::plan::{human, MemoryPlan};
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

pub fn parse_quant(quant: Option<&str>) -> Result<Option<DType>> {
    quant.map(|q| DType::parse(q).ok_or_else(|| Error::Input(format!("--quant {q:?}: use one of f32, f16, bf16, q8_0, q4_0")))).transpose()
}

/// Loads the files into host memory and optionally converts the weights (no GPU involved).
pub fn load_host(model: Option<PathBuf>, quant: Option<&str>) -> Result<LoadedModel> {
    let path = resolve(model)?;
    let mut loaded = load_path(&path)?;
    if let Some(d) = parse_quant(quant)? {
        loaded.weights.convert(d)?;
    }
    Ok(loaded)
}

/// A model streamed onto the GPU, with its tokenizer.
pub struct OnGpu {
    pub model: GpuModel,
    pub tokenizer: Option<TextTokenizer>,
    pub config: LladaConfig,
}

/// Reads the headers, plans the GPU memory for a canvas of `canvas(config)` positions, refuses
/// early if it cannot fit, then streams the weights (converted to `quant`) onto the GPU with a
/// progress line on a terminal.
pub fn load(model: Option<PathBuf>, quant: Option<&str>, canvas: impl Fn(&LladaConfig) -> usize) -> Result<OnGpu> {
    let path = resolve(model)?;
    let quant = parse_quant(quant)?;
    let files = open_path(&path)?;
    let (index, tokenizer) = files.index()?;
    let gpu = Arc::new(pollster::block_on(Gpu::new())?);
    let plan = MemoryPlan::new(&index, quant, canvas(&index.config).clamp(1, index.config.max_sequence_length), gpu.max_binding())?;
    plan.check(gpu.max_binding(), None)?;
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
