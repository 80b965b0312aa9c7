//! Adapter and device selection, natively (any wgpu backend) and in the browser (WebGPU), with
//! the adapter's real limits requested and its optional features recorded for later fast paths.

use super::kernels::{KernelVariant, KvType};
use crate::error::{Error, Result};
use serde::Serialize;
use std::sync::{Arc, Mutex};

/// What `unmask info` and the page show about the adapter in use.
#[derive(Debug, Clone, Serialize)]
pub struct AdapterReport {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    pub driver: String,
    pub shader_f16: bool,
    pub subgroups: bool,
    pub timestamp_query: bool,
    /// Cooperative matrices (tensor cores) in the shape `matmul_coop.wgsl` needs (`coop_lanes`).
    pub cooperative_matrix: bool,
    pub max_storage_buffer_binding_size: u64,
    pub max_buffer_size: u64,
    pub max_compute_invocations_per_workgroup: u32,
    pub max_compute_workgroup_storage_size: u32,
}

/// The adapter limits a memory plan is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest buffer one kernel may bind as storage.
    pub max_binding: u64,
    /// Largest buffer at all.
    pub max_buffer: u64,
    /// Split-K may count tiles 128 wide (cooperative matrices: `Gpu::tiled_core`), so its scratch
    /// is planned for those too.
    pub wide_tiles: bool,
}

pub struct Gpu {
    /// The instance and adapter the device came from (a window on the same device, such as the
    /// desktop app's, draws through them).
    pub instance: wgpu::Instance,
    pub adapter: wgpu::Adapter,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub report: AdapterReport,
    pub limits: wgpu::Limits,
    /// First validation/out-of-memory error or device loss not caught elsewhere.
    pub(crate) fault: Arc<Mutex<Option<String>>>,
    pub(crate) pipelines: Mutex<std::collections::HashMap<super::kernels::Kernel, wgpu::ComputePipeline>>,
    /// Optional lower cap on bindings, to act like a smaller adapter (tests).
    binding_cap: std::sync::atomic::AtomicU64,
    /// Bytes of every buffer created (`bytes_created`).
    pub(crate) created: std::sync::atomic::AtomicU64,
    /// Whether `KernelVariant::CpuLanes` can run here (subgroups of exactly 8).
    pub subgroup_kernels: bool,
    /// The kernel layout that suits this adapter (`default_kernels`).
    preferred: KernelVariant,
    /// Portable-layout attention runs a flash kernel (on GPUs; `set_flash_attention`).
    flash: std::sync::atomic::AtomicBool,
    /// Flash attention over heads of up to 128 runs `attention_tiles.wgsl` (where the adapter
    /// gives it the workgroup memory; `set_tiled_attention`).
    tiles: std::sync::atomic::AtomicBool,
    /// Tiled matmuls with few output tiles split their shared dimension (GPUs natively; `set_split_matmul`).
    split: std::sync::atomic::AtomicBool,
    /// Workgroups a split tiled matmul aims for (`MatmulSplit::of`; `set_split_fill`).
    split_fill: std::sync::atomic::AtomicUsize,
    /// Invocations of a row kernel's workgroup (`row_workgroup`).
    row_wg: std::sync::atomic::AtomicU32,
    /// Native CPU-lanes adapters (lavapipe): storage buffers may be bound as uniform ones too, and
    /// the CPU-lanes matmul reads x through uniform windows (`x_windows`; matmul_window.rs).
    pub(super) windows_ok: bool,
    pub(super) x_window: std::sync::atomic::AtomicBool,
    /// A real GPU, as far as the adapter tells (`is_gpu`).
    gpu: bool,
    /// The fixed subgroup size `matmul_coop.wgsl` runs with (a workgroup is four subgroups);
    /// 0: the adapter has no cooperative matrices it can use (`coop_lanes_of`).
    pub(crate) coop_lanes: u32,
    /// Tiled matmuls run `matmul_coop.wgsl` (`set_coop_matmul`).
    coop: std::sync::atomic::AtomicBool,
    /// Its matrix operations are emulated (`with_emulated_coop`: tests).
    pub(crate) coop_emulated: bool,
    /// Shader modules keep naga's loop bounding (`set_loop_bounding`; off by default).
    pub(crate) loop_bounding: std::sync::atomic::AtomicBool,
    /// Shader modules keep naga's index clamps (`set_bounds_checks`; on by default).
    bounds_checks: std::sync::atomic::AtomicBool,
    /// The f32 tiled matmuls give each invocation 8×8 outputs (`matmul_wide.wgsl`) instead of
    /// 4×4 (`set_register_tile`).
    wide_tile: std::sync::atomic::AtomicBool,
    /// Parts of the tiled matmuls' k loop left out, for `unmask bench --kernels phases` only
    /// (`set_skip_phases`; 0: none).
    skip_phases: std::sync::atomic::AtomicU32,
    /// Tiled passes fuse norms into matmuls, Q/K/V and gate/up launches (`Gpu::fuses`; `set_fuse`).
    pub(super) fuse: std::sync::atomic::AtomicBool,
    /// Sessions on cooperative matrices keep the matmuls' inputs in f16 (`Gpu::half_inputs`;
    /// `set_half_inputs`).
    pub(super) half: std::sync::atomic::AtomicBool,
    /// Cooperative matmuls of at most 32 rows take 32×128 tiles (`Gpu::tiled_core`;
    /// `set_short_coop`).
    pub(super) short_coop: std::sync::atomic::AtomicBool,
    /// Cooperative matmuls of more than 32 rows take 64×128 tiles (`set_coop_tile`).
    pub(super) coop_wide: std::sync::atomic::AtomicBool,
}

/// The subgroup size `matmul_coop.wgsl` would run with on this adapter, or 0 where it cannot
/// run: it needs wgpu's experimental cooperative matrices with 16×16×16 f16 inputs and an f32
/// accumulator (NVIDIA and AMD through Vulkan; Metal's are 8×8), shader-f16, subgroups, and
/// one fixed subgroup size of 8 to 64 with four subgroups fitting a workgroup.
fn coop_lanes_of(adapter: &wgpu::Adapter, info: &wgpu::AdapterInfo, features: wgpu::Features, limits: &wgpu::Limits) -> u32 {
    use wgpu::{CooperativeScalarType as T, Features as F};
    if !features.contains(F::EXPERIMENTAL_COOPERATIVE_MATRIX | F::SHADER_F16 | F::SUBGROUP) {
        return 0;
    }
    let shape =
        adapter.cooperative_matrix_properties().iter().any(|c| (c.m_size, c.n_size, c.k_size) == (16, 16, 16) && c.ab_type == T::F16 && c.cr_type == T::F32);
    let lanes = info.subgroup_min_size;
    // (8 to 64 lanes: a workgroup's invocations each stage at most 32 groups of four k of a
    // slice (`XR`, `WR`), and at least one of the short tiles' 256 x groups.)
    if !shape || !(8..=64).contains(&lanes) || lanes != info.subgroup_max_size || 4 * lanes > limits.max_compute_invocations_per_workgroup {
        return 0;
    }
    lanes
}

/// Whether an adapter is a real GPU, which gets the GPUs' defaults (flash attention, split-K
/// matmuls, f16 K/V): natively, one that says it is a discrete or integrated GPU; in a browser,
/// which says only whether an adapter is its software fallback (`GPUAdapterInfo.
/// isFallbackAdapter`, which wgpu reports as a CPU: Chromium's SwiftShader), any other adapter,
/// and any that offers shader-f16 (real GPUs do, SwiftShader does not). Browsers on GPUs
/// without shader-f16 (Firefox; some mobile GPUs) thus get flash attention too, with f32 K/V.
pub fn is_gpu(in_browser: bool, device_type: wgpu::DeviceType, shader_f16: bool) -> bool {
    if in_browser {
        device_type != wgpu::DeviceType::Cpu || shader_f16
    } else {
        matches!(device_type, wgpu::DeviceType::DiscreteGpu | wgpu::DeviceType::IntegratedGpu)
    }
}

/// `matmul_cpu_lanes.wgsl` hard-codes subgroups of 8 invocations.
fn subgroups_of_8(info: &wgpu::AdapterInfo, features: wgpu::Features) -> bool {
    features.contains(wgpu::Features::SUBGROUP) && info.subgroup_min_size == 8 && info.subgroup_max_size == 8
}

impl Gpu {
    /// Picks the highest-performance adapter (native: `WGPU_BACKEND` may name one) and opens a
    /// device with the adapter's own limits.
    pub async fn new() -> Result<Gpu> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions { power_preference: wgpu::PowerPreference::HighPerformance, ..Default::default() })
            .await
            .map_err(|e| {
                Error::Gpu(format!(
                    "no GPU adapter found ({e}). Natively, install a Vulkan driver (on Debian/Ubuntu without a GPU: `apt-get install mesa-vulkan-drivers` for the lavapipe CPU adapter); in a browser, use one with WebGPU enabled (Chrome/Edge 113+, or Firefox/Safari with WebGPU on)"
                ))
            })?;
        let info = adapter.get_info();
        let features = adapter.features();
        let limits = adapter.limits();
        let coop_lanes = coop_lanes_of(&adapter, &info, features, &limits);
        let mut required_features = features & (wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::SUBGROUP | wgpu::Features::SHADER_F16);
        if coop_lanes > 0 {
            required_features |= wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX;
        }
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("unmask"),
                // Timestamps only feed `unmask bench`'s per-kernel times; subgroups allow the CPU
                // adapters' matmul (`KernelVariant::CpuLanes`); shader-f16 allows f16 K/V
                // (`KvType::F16`); cooperative matrices allow `matmul_coop.wgsl`. Nothing needs
                // any of them.
                required_features,
                required_limits: limits.clone(),
                // SAFETY: the one experimental feature requested is cooperative matrices, and
                // only where the adapter lists the 16×16×16 f16 shape the one kernel using them
                // was written for; wgpu asks users to accept that its experimental features
                // may have bugs.
                experimental_features: if coop_lanes > 0 { unsafe { wgpu::ExperimentalFeatures::enabled() } } else { wgpu::ExperimentalFeatures::disabled() },
                ..Default::default()
            })
            .await
            .map_err(|e| Error::Gpu(format!("the adapter {} refused a device: {e}", info.name)))?;
        let fault = Arc::new(Mutex::new(None::<String>));
        let f = fault.clone();
        device.on_uncaptured_error(Arc::new(move |e| {
            let msg = e.to_string();
            // The desktop app draws its window on the engine's device: a window surface that
            // cannot be reconfigured at once (lavapipe busy with a long pass while the window
            // resizes) is the window's problem, retried at the next frame, not the engine's.
            if msg.contains("In Surface::") {
                eprintln!("window surface: {}", msg.replace('\n', " "));
                return;
            }
            let mut slot = f.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert(msg);
        }));
        let f = fault.clone();
        device.set_device_lost_callback(move |reason, msg| {
            let mut slot = f.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert_with(|| format!("the GPU device was lost ({reason:?}): {msg}"));
        });
        let report = AdapterReport {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: format!("{} {}", info.driver, info.driver_info).trim().to_string(),
            shader_f16: features.contains(wgpu::Features::SHADER_F16),
            subgroups: features.contains(wgpu::Features::SUBGROUP),
            timestamp_query: features.contains(wgpu::Features::TIMESTAMP_QUERY),
            cooperative_matrix: coop_lanes > 0,
            max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size as u64,
            max_buffer_size: limits.max_buffer_size,
            max_compute_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
            max_compute_workgroup_storage_size: limits.max_compute_workgroup_storage_size,
        };
        let subgroup_kernels = subgroups_of_8(&info, features);
        // CPU adapters with subgroups of 8 run the subgroup layouts faster (README, "Kernel layouts").
        let preferred = if subgroup_kernels && info.device_type == wgpu::DeviceType::Cpu { KernelVariant::CpuLanes } else { KernelVariant::Tiled };
        let gpu = is_gpu(cfg!(target_arch = "wasm32"), info.device_type, features.contains(wgpu::Features::SHADER_F16));
        let tiles = limits.max_compute_workgroup_storage_size >= super::kernel_specs::TILES_BYTES;
        let windows_ok = preferred == KernelVariant::CpuLanes
            && !cfg!(target_arch = "wasm32")
            && limits.max_uniform_buffer_binding_size as u64 >= super::matmul_window::X_WINDOW_BYTES;
        Ok(Gpu {
            instance,
            adapter,
            device,
            queue,
            report,
            limits,
            fault,
            pipelines: Default::default(),
            binding_cap: Default::default(),
            created: Default::default(),
            subgroup_kernels,
            preferred,
            flash: gpu.into(),
            tiles: tiles.into(),
            split: gpu.into(),
            split_fill: super::kernel_specs::GPU_SPLIT_FILL.into(),
            row_wg: if gpu { super::kernel_specs::GPU_ROW_WORKGROUP } else { super::kernel_specs::CPU_ROW_WORKGROUP }.into(),
            gpu,
            windows_ok,
            x_window: windows_ok.into(),
            coop_lanes,
            coop: (coop_lanes > 0).into(),
            coop_emulated: false,
            loop_bounding: false.into(),
            bounds_checks: true.into(),
            wide_tile: false.into(),
            skip_phases: 0.into(),
            fuse: true.into(),
            half: true.into(),
            short_coop: true.into(),
            coop_wide: false.into(),
        })
    }

    /// Largest buffer that one kernel may bind as storage: the smaller of the binding and buffer limits.
    pub fn max_binding(&self) -> u64 {
        let real = self.limits.max_storage_buffer_binding_size.min(self.limits.max_buffer_size);
        match self.binding_cap.load(std::sync::atomic::Ordering::Relaxed) {
            0 => real,
            cap => real.min(cap),
        }
    }

    /// Acts as if the adapter bound at most `bytes` per buffer (0 lifts the cap).
    pub fn cap_bindings(&self, bytes: u64) {
        self.binding_cap.store(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    /// The kernel layout sessions use unless told otherwise: the CPU-lanes one on CPU adapters
    /// that can run it, the tiled one elsewhere.
    pub fn default_kernels(&self) -> KernelVariant {
        self.preferred
    }

    /// Whether attention outside the CPU-lanes layout runs a flash kernel (`flash_layout`; on GPUs,
    /// `is_gpu`) rather than the portable one (one invocation a row, faster on CPU adapters).
    pub fn flash_attention(&self) -> bool {
        self.flash.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How sessions store K/V unless told otherwise: f16 on GPUs with shader-f16 (`is_gpu`; half
    /// the K/V memory and attention reads); adapters that are not GPUs (lavapipe) keep f32 so
    /// that the pinned demo outputs and reference comparisons of the tests hold there
    /// (`UNMASK_KV=f16` opts in; its attention is no slower there: BENCHMARKS.md).
    pub fn default_kv(&self) -> KvType {
        if self.report.shader_f16 && self.gpu {
            KvType::F16
        } else {
            KvType::F32
        }
    }

    /// Whether tiled matmuls with too few output tiles to fill a GPU split their shared
    /// dimension across workgroups (`Gpu::matmul_auto`): on GPUs (`is_gpu`); CPU adapters,
    /// whose threads a few tiles already fill, do not.
    pub fn split_matmul(&self) -> bool {
        self.split.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Chooses `split_matmul` (tests, benchmarks).
    pub fn set_split_matmul(&self, on: bool) {
        self.split.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Workgroups a split tiled matmul aims for (`MatmulSplit::of`): `GPU_SPLIT_FILL` unless
    /// `set_split_fill` chose another.
    pub fn split_fill(&self) -> usize {
        self.split_fill.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Chooses `split_fill` (benchmarks, `UNMASK_SPLIT_FILL`): from 1 to `MAX_SPLIT_FILL`, which
    /// session plans size their split-K scratch for.
    pub fn set_split_fill(&self, fill: usize) -> Result<()> {
        let most = super::kernel_specs::MAX_SPLIT_FILL;
        if !(1..=most).contains(&fill) {
            return Err(Error::Input(format!("a split-K fill of {fill} workgroups: use 1 to {most}")));
        }
        self.split_fill.store(fill, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Invocations of a row kernel's workgroup (rmsnorm.wgsl, select.wgsl, softmax.wgsl):
    /// `GPU_ROW_WORKGROUP` on GPUs (`is_gpu`), `CPU_ROW_WORKGROUP` elsewhere, unless
    /// `set_row_workgroup` chose another.
    pub fn row_workgroup(&self) -> u32 {
        self.row_wg.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Chooses `row_workgroup` (tests, benchmarks): a power of two from 2 to 256 (the kernels
    /// reduce by halving; 256 is the most invocations WebGPU promises a workgroup).
    pub fn set_row_workgroup(&self, wg: u32) -> Result<()> {
        if !(2..=256).contains(&wg) || !wg.is_power_of_two() {
            return Err(Error::Input(format!("a row workgroup of {wg} invocations: use a power of two from 2 to 256")));
        }
        self.row_wg.store(wg, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Whether tiled matmuls (split-K slices too, when a multiple of 32 deep) run on cooperative
    /// matrices (`matmul_coop.wgsl`: f16 inputs, f32 sums): where the adapter has them, unless
    /// turned off.
    pub fn coop_matmul(&self) -> bool {
        self.coop.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether the kernels are compiled with naga's loop bounding: a 64-bit counter in every
    /// loop that breaks after 2^64 rounds, which keeps GPU drivers from unrolling loops of a
    /// known trip count (gfx-rs/wgpu#7698). Off by default (our loops all end; the bounds
    /// checks stay); `UNMASK_LOOP_BOUNDING=on` turns it on to compare. Pipelines made before
    /// are dropped.
    pub fn set_loop_bounding(&self, on: bool) {
        self.set_compile_switch(&self.loop_bounding, on);
    }

    /// Sets a switch that changes how kernels compile, dropping the pipelines made before if
    /// it changed.
    pub(super) fn set_compile_switch(&self, switch: &std::sync::atomic::AtomicBool, on: bool) {
        if switch.swap(on, std::sync::atomic::Ordering::Relaxed) != on {
            self.pipelines.lock().unwrap_or_else(|p| p.into_inner()).clear();
        }
    }

    /// Whether naga clamps the kernels' array indices (workgroup and register arrays; buffer
    /// indices too where the driver's robust buffer access does not cover them). On by default;
    /// `UNMASK_BOUNDS_CHECKS=off` (an A/B for GPUs, natively only) compiles the kernels without,
    /// which is sound only while no kernel indexes past an array (README: "Bounds checks").
    /// Pipelines made before are dropped.
    pub fn set_bounds_checks(&self, on: bool) {
        self.set_compile_switch(&self.bounds_checks, on);
    }

    /// Whether the kernels keep naga's bounds checks (`set_bounds_checks`).
    pub fn bounds_checks(&self) -> bool {
        self.bounds_checks.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The outputs an invocation of the f32 tiled matmuls (Q/K/V and gate/up too) computes: 4
    /// (4×4, `matmul.wgsl`, the default) or 8 (8×8 from a quarter of the invocations,
    /// `matmul_wide.wgsl`; `UNMASK_REGISTER_TILE=8x8`, an A/B for GPUs). Pipelines made before
    /// are dropped.
    pub fn set_register_tile(&self, side: usize) -> Result<()> {
        if side != 4 && side != 8 {
            return Err(Error::Input(format!("a register tile of {side}×{side}: use 4 or 8")));
        }
        self.set_compile_switch(&self.wide_tile, side == 8);
        Ok(())
    }

    /// The side of the f32 tiled matmuls' register tile (`set_register_tile`).
    pub fn register_tile(&self) -> usize {
        if self.wide_tile() {
            8
        } else {
            4
        }
    }

    /// For timing only: the parts of the tiled matmuls' k loop (f32 cores and cooperative
    /// matrices, Q/K/V and gate/up stores too) that their kernels leave out, as
    /// `matmul_common.wgsl`'s `SKIP` bits: 1 the loads of the next slice, 2 the multiply-adds
    /// (and their reads of workgroup memory), 4 the stores into workgroup memory. Any bit makes
    /// the matmuls' results wrong (`unmask bench --kernels phases` sets them one run at a time
    /// and back to 0). Pipelines made before are dropped.
    pub fn set_skip_phases(&self, bits: u32) -> Result<()> {
        if bits > 7 {
            return Err(Error::Input(format!("skip bits {bits}: use 0 to 7 (1 loads, 2 multiply-adds, 4 workgroup stores)")));
        }
        if self.skip_phases.swap(bits, std::sync::atomic::Ordering::Relaxed) != bits {
            self.pipelines.lock().unwrap_or_else(|p| p.into_inner()).clear();
        }
        Ok(())
    }

    /// The tiled matmuls' skipped parts (`set_skip_phases`).
    pub fn skip_phases(&self) -> u32 {
        self.skip_phases.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn wide_tile(&self) -> bool {
        self.wide_tile.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether the kernels keep naga's loop bounding (`set_loop_bounding`).
    pub fn loop_bounding(&self) -> bool {
        self.loop_bounding.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether the tiled matmuls can run on cooperative matrices here: the adapter's, or
    /// emulated (`with_emulated_coop`).
    pub fn can_coop(&self) -> bool {
        self.coop_lanes != 0
    }

    /// Chooses `coop_matmul` (tests, benchmarks, `UNMASK_COOP=off`); refused where the adapter
    /// has no cooperative matrices this kernel can use.
    pub fn set_coop_matmul(&self, on: bool) -> Result<()> {
        if on && !self.can_coop() {
            return Err(Error::Gpu(format!(
                "{}: no cooperative matrices of 16×16×16 f16 with f32 sums (wgpu's experimental cooperative-matrix feature, shader-f16 and one fixed subgroup size are needed)",
                self.report.name
            )));
        }
        self.coop.store(on, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Chooses the attention kernel of `flash_attention` (tests, benchmarks).
    pub fn set_flash_attention(&self, on: bool) {
        self.flash.store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether flash attention over heads of up to 128 dimensions stages its keys and values in
    /// workgroup memory (`attention_tiles.wgsl`) rather than reading them from memory in its
    /// loops (`attention_flash.wgsl`, which also takes wider heads): wherever the adapter
    /// gives a workgroup `TILES_BYTES`.
    pub fn tiled_attention(&self) -> bool {
        self.tiles.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Chooses `tiled_attention` (tests, benchmarks); refused where the adapter gives a
    /// workgroup too little memory.
    pub fn set_tiled_attention(&self, on: bool) -> Result<()> {
        let need = super::kernel_specs::TILES_BYTES;
        if on && self.report.max_compute_workgroup_storage_size < need {
            return Err(Error::Gpu(format!(
                "{}: attention_tiles.wgsl needs {need} bytes of workgroup memory; the adapter gives {}",
                self.report.name, self.report.max_compute_workgroup_storage_size
            )));
        }
        self.tiles.store(on, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// `v` if this adapter can run it, else an error saying why.
    pub fn check_kernels(&self, v: KernelVariant) -> Result<KernelVariant> {
        if v == KernelVariant::CpuLanes && !self.subgroup_kernels {
            return Err(Error::Gpu(format!("{}: the CPU-lanes kernels need subgroups of exactly 8 invocations", self.report.name)));
        }
        Ok(v)
    }

    /// The limits a memory plan is checked against.
    pub fn plan_limits(&self) -> Limits {
        Limits { max_binding: self.max_binding(), max_buffer: self.limits.max_buffer_size, wide_tiles: self.coop_matmul() }
    }

    /// Returns (and clears) an error the device reported outside any call's own checks.
    pub fn take_fault(&self) -> Result<()> {
        let mut slot = self.fault.lock().unwrap_or_else(|p| p.into_inner());
        match slot.take() {
            Some(m) => Err(Error::Gpu(m)),
            None => Ok(()),
        }
    }
}
