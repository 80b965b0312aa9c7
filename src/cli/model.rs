//! Finding and loading the model for a command: `--model PATH`, else the bundled demo model.

use std::path::PathBuf;
use std::sync::Arc;
use unmask::forward::GpuModel;
use unmask::gpu::Gpu;
use unmask::model::files::{load_path, LoadedModel};
use unmask::model::DType;
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

/// Loads the files and optionally converts the weights (no GPU involved).
pub fn load_host(model: Option<PathBuf>, quant: Option<&str>) -> Result<LoadedModel> {
    let path = resolve(model)?;
    let mut loaded = load_path(&path)?;
    if let Some(q) = quant {
        let d = DType::parse(q).ok_or_else(|| Error::Input(format!("--quant {q:?}: use one of f32, f16, bf16, q8_0, q4_0")))?;
        loaded.weights.convert(d)?;
    }
    Ok(loaded)
}

/// Loads the files, optionally converts the weights, and uploads them to the GPU.
pub fn load(model: Option<PathBuf>, quant: Option<&str>) -> Result<(LoadedModel, GpuModel)> {
    let loaded = load_host(model, quant)?;
    let gpu = Arc::new(pollster::block_on(Gpu::new())?);
    let gpu_model = GpuModel::upload(gpu, &loaded.weights)?;
    Ok((loaded, gpu_model))
}
