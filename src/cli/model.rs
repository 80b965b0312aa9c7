//! The CLI's model loading: `--model PATH` or the bundled demo model (`unmask::load`), the
//! `UNMASK_KERNELS`, `UNMASK_KV`, `UNMASK_COOP`, `UNMASK_FUSE`, `UNMASK_HALF_INPUTS`,
//! `UNMASK_COOP_SHORT`, `UNMASK_COOP_TILE`, `UNMASK_SPLIT_FILL`, `UNMASK_ROW_WORKGROUP`,
//! `UNMASK_REGISTER_TILE`, `UNMASK_LOOP_BOUNDING`, `UNMASK_BOUNDS_CHECKS` and `UNMASK_ATTENTION`
//! overrides, and a progress bar on a terminal while the weights stream.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use unmask::engine::{human, Session, SessionConfig};
use unmask::gpu::kernels::{KernelVariant, KvType};
use unmask::gpu::Gpu;
use unmask::load::{self as lib, OnGpu as LibOnGpu};
use unmask::model::files::LoadedModel;
use unmask::model::{ModelConfig, Quant, TextTokenizer};
use unmask::sampler::SamplerOptions;
use unmask::{Error, Result};

pub use unmask::load::resolve;

pub fn parse_quant(quant: Option<&str>, pure: bool) -> Result<Option<Quant>> {
    lib::parse_quant(quant, pure)
}

/// Loads the files into host memory and optionally converts the weights (no GPU involved).
pub fn load_host(model: Option<PathBuf>, quant: Option<&str>, pure: bool) -> Result<LoadedModel> {
    lib::load_host(model, parse_quant(quant, pure)?)
}

/// The kernel layout to run: `UNMASK_KERNELS=tiled|cpu-lanes` when set, else the adapter's own.
pub fn kernels(gpu: &Gpu) -> Result<KernelVariant> {
    match std::env::var("UNMASK_KERNELS") {
        Ok(v) => gpu.check_kernels(KernelVariant::parse(&v).ok_or_else(|| Error::Input(format!("UNMASK_KERNELS={v:?}: use tiled or cpu-lanes")))?),
        Err(_) => Ok(gpu.default_kernels()),
    }
}

/// How K/V are stored: `UNMASK_KV=f16|f32` when set, else the adapter's default (f16 on GPUs
/// with shader-f16).
pub fn kv(gpu: &Gpu) -> Result<KvType> {
    match std::env::var("UNMASK_KV") {
        Ok(v) => gpu.check_kv(KvType::parse(&v).ok_or_else(|| Error::Input(format!("UNMASK_KV={v:?}: use f16 or f32")))?),
        Err(_) => Ok(gpu.default_kv()),
    }
}

/// The adapter, with `UNMASK_COOP=on|off|emulate` applied when set: whether the tiled matmuls
/// run on cooperative matrices (tensor cores; on by default where the adapter has them;
/// `emulate`: on, with their matrix operations emulated where the adapter has none, to run the
/// tensor-core path's numbers anywhere with shader-f16 and fixed subgroups, slowly); and
/// `UNMASK_ATTENTION=tiles|flash|portable`: the tiled layout's attention kernel;
/// `UNMASK_FUSE=on|off`: whether tiled passes fuse (norms folded into matmuls, Q/K/V and
/// gate/up each in one launch); `UNMASK_HALF_INPUTS=on|off`: whether sessions on cooperative
/// matrices keep the matmuls' inputs in f16 (`Gpu::half_inputs`); `UNMASK_COOP_SHORT=on|off`:
/// whether cooperative matmuls of at most 32 rows take 32×128 tiles (`Gpu::set_short_coop`);
/// `UNMASK_X_WINDOWS=on|off`: whether the CPU-lanes matmul reads x through uniform windows
/// (`Gpu::set_x_windows`);
/// `UNMASK_COOP_TILE=64x64|64x128`: the cooperative matmuls' tiles for more rows
/// (`Gpu::set_coop_tile`); `UNMASK_SPLIT_FILL=N`: the workgroups a split tiled matmul
/// aims for on GPUs (`Gpu::set_split_fill`); `UNMASK_ROW_WORKGROUP=N`: the invocations of the
/// row kernels' workgroups (norms, token choice, softmax: `Gpu::set_row_workgroup`);
/// `UNMASK_REGISTER_TILE=4x4|8x8`: the outputs an invocation of the f32 tiled matmuls computes
/// (`Gpu::set_register_tile`);
/// `UNMASK_LOOP_BOUNDING=on|off`, `UNMASK_BOUNDS_CHECKS=on|off`: naga's runtime checks in the
/// kernels (`Gpu::set_loop_bounding`, `Gpu::set_bounds_checks`).
pub fn open_gpu() -> Result<Arc<Gpu>> {
    let mut gpu = pollster::block_on(Gpu::new())?;
    match std::env::var("UNMASK_COOP").as_deref() {
        Err(_) => {}
        Ok("on") => gpu.set_coop_matmul(true)?,
        Ok("off") => gpu.set_coop_matmul(false)?,
        Ok("emulate") => gpu = gpu.with_emulated_coop()?,
        Ok(v) => return Err(Error::Input(format!("UNMASK_COOP={v:?}: use on, off or emulate"))),
    }
    // naga's loop bounding in the kernels (off by default; an A/B switch).
    if let Some(on) = on_off("UNMASK_LOOP_BOUNDING")? {
        gpu.set_loop_bounding(on);
    }
    // naga's bounds checks in the kernels (on by default; an A/B switch).
    if let Some(on) = on_off("UNMASK_BOUNDS_CHECKS")? {
        gpu.set_bounds_checks(on);
    }
    // The f32 tiled matmuls' register tile (4×4 by default; 8×8 an A/B switch).
    match std::env::var("UNMASK_REGISTER_TILE").as_deref() {
        Err(_) | Ok("4x4") => {}
        Ok("8x8") => gpu.set_register_tile(8)?,
        Ok(v) => return Err(Error::Input(format!("UNMASK_REGISTER_TILE={v:?}: use 4x4 or 8x8"))),
    }
    // Whether tiled passes fuse (on by default; an A/B switch).
    if let Some(on) = on_off("UNMASK_FUSE")? {
        gpu.set_fuse(on);
    }
    // Whether sessions on cooperative matrices keep the matmuls' inputs in f16 (on by default;
    // an A/B switch).
    if let Some(on) = on_off("UNMASK_HALF_INPUTS")? {
        gpu.set_half_inputs(on);
    }
    // Whether cooperative matmuls of at most 32 rows take 32×128 tiles (on by default; an A/B
    // switch).
    if let Some(on) = on_off("UNMASK_COOP_SHORT")? {
        gpu.set_short_coop(on);
    }
    // Whether the CPU-lanes matmul reads x through uniform windows (on where it can; an A/B
    // switch).
    if let Some(on) = on_off("UNMASK_X_WINDOWS")? {
        gpu.set_x_windows(on)?;
    }
    // The cooperative matmuls' tiles for more than 32 rows (64×64 by default; an A/B switch).
    match std::env::var("UNMASK_COOP_TILE").as_deref() {
        Err(_) | Ok("64x64") => {}
        Ok("64x128") => gpu.set_coop_tile(128)?,
        Ok(v) => return Err(Error::Input(format!("UNMASK_COOP_TILE={v:?}: use 64x64 or 64x128"))),
    }
    // Workgroups a split tiled matmul aims for (GPUs; an A/B switch).
    if let Ok(v) = std::env::var("UNMASK_SPLIT_FILL") {
        let fill = v.parse().map_err(|_| Error::Input(format!("UNMASK_SPLIT_FILL={v:?}: use a number of workgroups")))?;
        gpu.set_split_fill(fill).map_err(|e| Error::Input(format!("UNMASK_SPLIT_FILL: {e}")))?;
    }
    // Invocations of the row kernels' workgroups (256 on GPUs, 8 on CPU adapters; an A/B switch).
    if let Ok(v) = std::env::var("UNMASK_ROW_WORKGROUP") {
        let wg = v.parse().map_err(|_| Error::Input(format!("UNMASK_ROW_WORKGROUP={v:?}: use a number of invocations")))?;
        gpu.set_row_workgroup(wg).map_err(|e| Error::Input(format!("UNMASK_ROW_WORKGROUP: {e}")))?;
    }
    // The tiled layout's attention kernel (an A/B switch): flash with K/V staged in workgroup
    // memory (GPUs' default), flash reading K/V in its loops, or the portable one.
    match std::env::var("UNMASK_ATTENTION").as_deref() {
        Err(_) => {}
        Ok("tiles") => {
            gpu.set_flash_attention(true);
            gpu.set_tiled_attention(true)?;
        }
        Ok("flash") => {
            gpu.set_flash_attention(true);
            gpu.set_tiled_attention(false)?;
        }
        Ok("portable") => gpu.set_flash_attention(false),
        Ok(v) => return Err(Error::Input(format!("UNMASK_ATTENTION={v:?}: use tiles, flash or portable"))),
    }
    Ok(Arc::new(gpu))
}

/// An on/off switch from the environment: None when unset, else its value or a one-line error.
pub(super) fn on_off(var: &str) -> Result<Option<bool>> {
    match std::env::var(var).as_deref() {
        Err(_) => Ok(None),
        Ok("on") => Ok(Some(true)),
        Ok("off") => Ok(Some(false)),
        Ok(v) => Err(Error::Input(format!("{var}={v:?}: use on or off"))),
    }
}

/// The attention kernel a session in layout `kernels` runs at `c`'s heads on `gpu` (its shader's
/// name).
pub fn attention_shader(gpu: &Gpu, kernels: KernelVariant, c: &unmask::model::ModelConfig) -> &'static str {
    let shape = unmask::gpu::kernels::AttnShape { lq: 1, lk: 1, n_heads: c.n_heads, n_kv: c.n_kv_heads, head_dim: c.head_dim() };
    gpu.attention_layout(kernels, &shape).shader()
}

/// What a session must hold to run `opts` on canvases of up to `canvas` positions.
pub fn session_config(gpu: &Gpu, canvas: usize, opts: &SamplerOptions) -> Result<SessionConfig> {
    Ok(lib::session_config(canvas, opts, kernels(gpu)?, kv(gpu)?))
}

/// A model streamed onto the GPU, with its tokenizer.
pub struct OnGpu {
    pub model: unmask::engine::GpuModel,
    pub tokenizer: Option<TextTokenizer>,
    pub config: ModelConfig,
}

impl OnGpu {
    /// A session for canvases of up to `canvas` positions running `opts`.
    pub fn session(&self, canvas: usize, opts: &SamplerOptions) -> Result<Session<'_>> {
        self.model.session(session_config(&self.model.gpu, canvas, opts)?)
    }
}

/// A loading progress line on stderr, redrawn at most 5 times a second: call it with (bytes
/// done, bytes total); end the line with `eprintln!()` after.
pub fn progress_bar() -> impl FnMut(u64, u64) {
    let start = std::time::Instant::now();
    let mut last = 0.0;
    move |done, total| {
        let t = start.elapsed().as_secs_f64();
        if t - last > 0.2 || done == total {
            last = t;
            let pct = if total == 0 { 100.0 } else { 100.0 * done as f64 / total as f64 };
            let bar = "█".repeat((pct / 5.0) as usize) + &"░".repeat(20 - (pct / 5.0) as usize);
            eprint!("\rloading {bar} {pct:5.1}%  {} of {}  {:.0} MB/s ", human(done), human(total), done as f64 / 1e6 / t.max(1e-3));
        }
    }
}

/// Reads the headers, plans the GPU memory for the weights (converted to `quant`) and a
/// session running `opts` on a canvas of `canvas(config)` positions, refuses early if it cannot
/// fit, then streams the weights onto the GPU with a progress line on a terminal.
pub fn load(model: Option<PathBuf>, quant: Option<&str>, pure: bool, opts: &SamplerOptions, canvas: impl Fn(&ModelConfig) -> usize) -> Result<OnGpu> {
    let path = resolve(model)?;
    let quant = parse_quant(quant, pure)?;
    let gpu = open_gpu()?;
    let (kernels, kv) = (kernels(&gpu)?, kv(&gpu)?);
    let tty = std::cell::Cell::new(false);
    let mut bar = progress_bar();
    let LibOnGpu { model, tokenizer, config } = lib::load_on(
        gpu,
        &path,
        quant,
        |c| lib::session_config(canvas(c), opts, kernels, kv),
        None,
        &mut |plan| tty.set(std::io::stderr().is_terminal() && plan.file_bytes > 64 << 20),
        &mut |done, total| {
            if tty.get() {
                bar(done, total)
            }
        },
    )?;
    if tty.get() {
        eprintln!();
    }
    Ok(OnGpu { model, tokenizer, config })
}
