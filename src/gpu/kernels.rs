//! The WGSL kernels of `shaders/` and one launcher per kernel. A launcher checks its shapes and
//! returns a `Launch`: the kernel, its parameters, its buffers and workgroup counts, with no GPU
//! memory of its own. `Gpu::bind` writes the parameters of a list of launches into slots of one
//! uniform buffer (a session's, so its memory is planned) and makes `Dispatch`es (pipeline, bind
//! group, counts) that can be recorded any number of times. Pipelines are built once per kernel
//! specialisation and cached on the `Gpu`.

pub use super::kernel_specs::{Activation, AttnMask, AttnShape, Epilogue, KvType, MatmulSplit, RopeParams, RopeSpec, GPU_SPLIT_FILL, MAX_SPLIT_FILL};
pub use super::matmul::{MatmulIo, QkRope, RowNorm};
use super::Gpu;
use crate::error::{Error, Result};
use crate::model::{DType, RopeStyle};
use bytemuck::{Pod, Zeroable};

/// Two layouts of the matmul and attention kernels: the same results, for GPUs or for CPU adapters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KernelVariant {
    /// `matmul.wgsl` (64×64 output tiles through workgroup memory) and `attention.wgsl` (16
    /// query rows a workgroup, 16 invocations a row): GPUs, and every adapter (the portable
    /// fallback).
    Tiled,
    /// For CPU adapters only (lavapipe: subgroups of exactly 8 lanes), not a GPU subgroup path:
    /// `matmul_cpu_lanes.wgsl` and `attention_cpu_lanes.wgsl` use no workgroup memory; values
    /// every lane needs are read once per 8 lanes and shared by `subgroupBroadcast`.
    CpuLanes,
}

impl KernelVariant {
    pub fn name(self) -> &'static str {
        match self {
            KernelVariant::Tiled => "tiled",
            KernelVariant::CpuLanes => "cpu-lanes",
        }
    }

    pub fn parse(s: &str) -> Option<KernelVariant> {
        match s {
            "tiled" => Some(KernelVariant::Tiled),
            // "subgroup": the name before issue 19.
            "cpu-lanes" | "subgroup" => Some(KernelVariant::CpuLanes),
            _ => None,
        }
    }
}

/// Which attention kernel a launch runs (`Gpu::attention` picks it from the session's layout and
/// the adapter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttnLayout {
    /// `attention.wgsl`: 64 query rows a workgroup, one invocation a row, keys staged 8 at a time.
    Portable,
    /// `attention_flash.wgsl`, for GPUs: 16 rows a workgroup, 16 invocations a row.
    Flash,
    /// `attention_tiles.wgsl`, for GPUs (heads up to 128): the flash layout with K/V staged
    /// in workgroup memory 16 keys a round, shared by the query heads of one K/V head.
    Tiles,
    /// `attention_cpu_lanes.wgsl` (head_dim a multiple of 8).
    CpuLanes,
}

impl AttnLayout {
    /// The layouts that take 16 query rows a workgroup and split their keys for few rows.
    pub fn is_flash(self) -> bool {
        matches!(self, AttnLayout::Flash | AttnLayout::Tiles)
    }

    /// Its shader's name (`unmask bench`).
    pub fn shader(self) -> &'static str {
        match self {
            AttnLayout::Portable => "attention",
            AttnLayout::Flash => "attention_flash",
            AttnLayout::Tiles => "attention_tiles",
            AttnLayout::CpuLanes => "attention_cpu_lanes",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// `short`: 32-row tiles for inputs of at most 32 rows (tiled variant only); `x`: the
    /// activations' element type (f16: a session that keeps the cooperative-matrix matmuls'
    /// inputs in half precision, `MatmulIo::x_f16`; in this kernel where a launch's shape does
    /// not suit cooperative matrices); CPU-lanes variant only: `x4`, every x row starts at a
    /// multiple of 4 elements and `w4`, every weight row 16 bytes aligned, so the kernel reads
    /// them as vec4s (`kernel_specs::cpu_vec4_rows`, `cpu_vec4_weights`), and `xw`, the vec4s
    /// from a uniform-buffer window of x (`matmul_window.rs`).
    Matmul {
        dtype: DType,
        variant: KernelVariant,
        short: bool,
        x: KvType,
        x4: bool,
        w4: bool,
        xw: bool,
    },
    /// The tiled matmul over the Q, K and V weights (formats `dtypes`) at once, into three
    /// outputs (`matmul_qkv.wgsl`; K and V stored as `kv`); `coop`: on cooperative matrices
    /// (`matmul_coop.wgsl`'s core); `short` and `x` as for `Matmul` and `MatmulCoop`.
    MatmulQkv {
        dtypes: [DType; 3],
        short: bool,
        kv: KvType,
        coop: bool,
        x: KvType,
    },
    /// The tiled matmul over a gated MLP's gate and up weights (formats `dtypes`) at once,
    /// storing act(gate) · up (`matmul_glu.wgsl`); `short`, `coop` and `x` as for `MatmulQkv`;
    /// `out`: the element type of act(gate) · up (f16 only unsplit: split-K's slices are f32).
    MatmulGlu {
        dtypes: [DType; 2],
        short: bool,
        coop: bool,
        x: KvType,
        out: KvType,
    },
    /// `matmul_coop.wgsl`: the tiled matmul on cooperative matrices (tensor cores), where the
    /// adapter has them (`Gpu::coop_matmul`); `x` as for `Matmul`; `short`: 32×128 tiles for
    /// inputs of at most 32 rows (else 64×64).
    MatmulCoop {
        dtype: DType,
        x: KvType,
        short: bool,
    },
    Embed(DType),
    /// `out`: the element type of the normed rows (f16: a cooperative-matrix matmul's input);
    /// `wg` (and `Select`'s and `Softmax`'s number): a row's workgroup (`Gpu::row_workgroup`).
    RmsNorm {
        out: KvType,
        wg: u32,
    },
    Rope,
    CfgMix,
    /// `wide`: head_dim 257..=512; `split`: split-K's ending (flash and tiles layouts only); `kv`: how
    /// the keys and values it reads are stored; `out`: the element type of its output (f16: a
    /// cooperative-matrix matmul's input; the split ending's is `AttentionMerge`'s).
    Attention {
        layout: AttnLayout,
        wide: bool,
        split: bool,
        kv: KvType,
        out: KvType,
    },
    /// f32 rows into f16 K/V (`kv_store.wgsl`).
    KvStore,
    /// Split-K's ending for the tiled matmul (`matmul_merge.wgsl`), its output's elements
    /// stored as `out` (f16: K or V into half-precision K/V).
    MatmulMerge {
        out: KvType,
    },
    /// Split-K's ending for `matmul_qkv.wgsl`'s slices: Q, K and V in one launch
    /// (`matmul_merge_qkv.wgsl`), K and V stored as `kv`.
    MatmulMergeQkv {
        kv: KvType,
    },
    /// Split-K attention's ending (`attention_merge.wgsl`), its output's elements `out`.
    AttentionMerge {
        out: KvType,
    },
    Select(u32),
    Bias,
    /// `head_pass.wgsl`: QK-norm, RoPE and, for K, V's rows in one launch; `v`: with V beside K;
    /// `store`: from f32 rows into f16 K/V (else in place).
    HeadPass {
        v: bool,
        store: bool,
    },
    MoeRoute,
    /// The grouped expert matmul: `moe_matmul.wgsl` (`tile` 0, the CPU-lanes layout) or
    /// `moe_matmul_tiled.wgsl` with tiles of `tile` pairs (8, 16, 32 or 64; the tiled layout);
    /// `x4` and `w4` as for `Matmul` (CPU-lanes layout only).
    MoeMatmul {
        dtype: DType,
        tile: u8,
        x4: bool,
        w4: bool,
    },
    /// The grouped expert matmul on cooperative matrices (`moe_coop.wgsl` around
    /// `matmul_coop.wgsl`'s core; 32-pair × 128-column tiles; `Gpu::moe_coop`).
    MoeMatmulCoop {
        dtype: DType,
    },
    MoeCombine,
    SoftCap,
    Softmax(u32),
    SoftEmbed(DType),
    DgChoose,
    /// A platform probe (`probe.rs`: `unmask bench --kernels probe`).
    Probe(super::probe::Probe),
}

pub use super::kernel_source::{pipeline_constants, source};

/// Bytes between the parameter slots of consecutive launches in a uniform buffer (WebGPU's
/// largest allowed `minUniformBufferOffsetAlignment`, so it suits every adapter).
pub const PARAM_SLOT: u64 = 256;
/// Bytes of one launch's parameters (every kernel's `Params` fits).
const PARAM_BYTES: usize = 128;

/// A kernel launch described but not yet bound: see `Gpu::bind`.
pub struct Launch {
    pub kernel: Kernel,
    params: [u8; PARAM_BYTES],
    /// Bindings 1.. in order: (buffer, byte range within it; None: all of it).
    buffers: Vec<(wgpu::Buffer, Option<(u64, u64)>)>,
    groups: [u32; 3],
}

impl Launch {
    /// The launch with binding `i + 1` (its buffer `i`) bound from byte `offset`, `size` bytes.
    pub(super) fn with_range(mut self, i: usize, offset: u64, size: u64) -> Launch {
        self.buffers[i].1 = Some((offset, size));
        self
    }
}

/// One kernel launch ready to record.
pub struct Dispatch {
    pub kernel: Kernel,
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    groups: [u32; 3],
}

impl Dispatch {
    pub fn record(&self, pass: &mut wgpu::ComputePass<'_>) {
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind_group, &[]);
        pass.dispatch_workgroups(self.groups[0], self.groups[1], self.groups[2]);
    }
}

/// Workgroup counts for `n` invocations of a 256-wide 1-D kernel, folded into 2-D when `n` is large.
/// Workgroup counts for one workgroup per row of `rows` (at least one), folded into 2-D.
pub(crate) fn groups_per_row(rows: usize) -> [u32; 3] {
    groups_1d(rows.saturating_mul(256))
}

pub(crate) fn groups_1d(n: usize) -> [u32; 3] {
    let total = n.div_ceil(256).max(1) as u32;
    let x = total.min(32768);
    [x, total.div_ceil(x), 1]
}

impl Kernel {
    /// Whether it runs on cooperative matrices.
    pub fn is_coop(self) -> bool {
        matches!(self, Kernel::MatmulQkv { coop: true, .. } | Kernel::MatmulGlu { coop: true, .. })
            || matches!(self, Kernel::MatmulCoop { .. } | Kernel::MoeMatmulCoop { .. } | Kernel::Probe(super::probe::Probe::Coop))
    }
}

impl Gpu {
    fn pipeline(&self, k: Kernel) -> wgpu::ComputePipeline {
        let mut cache = self.pipelines.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .entry(k)
            .or_insert_with(|| {
                let coop = k.is_coop();
                // The wider tile: the f32 cores' register tile, the cooperative ones' output tile.
                let wide = if coop { self.coop_wide() } else { self.wide_tile() };
                let src = super::kernel_source::source_for(k, wide, self.coop_lanes);
                let src = match coop && self.coop_emulated {
                    // (An emulation that no longer fits the kernel fails the tests that use it.)
                    true => super::coop_emulation::emulate(&src, self.coop_lanes).unwrap_or_else(|e| format!("// {e}")),
                    false => src,
                };
                let desc = wgpu::ShaderModuleDescriptor { label: Some(&format!("{k:?}")), source: wgpu::ShaderSource::Wgsl(src.into()) };
                let checks = wgpu::ShaderRuntimeChecks { force_loop_bounding: self.loop_bounding(), bounds_checks: self.bounds_checks(), ..Default::default() };
                let module = match (checks.force_loop_bounding, checks.bounds_checks) {
                    (true, true) => self.device.create_shader_module(desc),
                    // SAFETY: without loop bounding: every loop in shaders/ counts towards a
                    // bound by a stride of at least 1 (a constant, the workgroup or subgroup
                    // size) or halves a stride to 0, so none is infinite (tests/code_layout.rs
                    // reads them); naga's added counter would only keep the drivers from
                    // unrolling them (gfx-rs/wgpu#7698). Without bounds checks (an opt-in A/B,
                    // `set_bounds_checks`): every index of a kernel's arrays is meant to stay
                    // inside them by the kernel's own bounds (the CLI test generates the same
                    // tokens without them; the kernel suites can be run so by hand).
                    _ => unsafe { self.device.create_shader_module_trusted(desc, checks) },
                };
                let constants = pipeline_constants(k, self.coop_lanes, self.skip_phases(), wide);
                self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(&format!("{k:?}")),
                    layout: None,
                    module: &module,
                    entry_point: Some("main"),
                    compilation_options: wgpu::PipelineCompilationOptions { constants: &constants, ..Default::default() },
                    cache: None,
                })
            })
            .clone()
    }

    /// Binding 0 is the uniform `params`; bindings 1.. are `buffers` in order.
    pub(crate) fn launch<P: Pod>(&self, k: Kernel, params: &P, buffers: &[&wgpu::Buffer], groups: [u32; 3]) -> Result<Launch> {
        let max = self.limits.max_compute_workgroups_per_dimension;
        if groups.iter().any(|&g| g > max) {
            return Err(Error::Limits(format!("{k:?} needs {groups:?} workgroups; the adapter allows {max} per dimension")));
        }
        let bytes = bytemuck::bytes_of(params);
        let mut p = [0u8; PARAM_BYTES];
        p[..bytes.len()].copy_from_slice(bytes);
        Ok(Launch { kernel: k, params: p, buffers: buffers.iter().map(|&b| (b.clone(), None)).collect(), groups })
    }

    /// Makes `launches` recordable. Their parameters go to `slots` (a uniform buffer and the
    /// byte offset of the first slot; launch i uses `offset + i·PARAM_SLOT`, and the caller
    /// planned room for all of them), or, when None, to a uniform buffer made for them here
    /// (tests and benchmarks).
    pub fn bind(&self, launches: &[Launch], slots: Option<(&wgpu::Buffer, u64)>) -> Result<Vec<Dispatch>> {
        let owned;
        let (params, base) = match slots {
            Some((buf, offset)) => {
                let end = offset + launches.len() as u64 * PARAM_SLOT;
                if end > buf.size() {
                    return Err(Error::Gpu(format!("internal: {} launches need {end} bytes of parameter slots; {} were planned", launches.len(), buf.size())));
                }
                (buf, offset)
            }
            None => {
                owned = self.uniform("kernel parameters", launches.len().max(1) as u64 * PARAM_SLOT);
                (&owned, 0)
            }
        };
        let mut out = Vec::with_capacity(launches.len());
        for (i, l) in launches.iter().enumerate() {
            let at = base + i as u64 * PARAM_SLOT;
            self.queue.write_buffer(params, at, &l.params);
            let pipeline = self.pipeline(l.kernel);
            let mut entries = vec![wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding { buffer: params, offset: at, size: wgpu::BufferSize::new(PARAM_BYTES as u64) }),
            }];
            for (j, (b, range)) in l.buffers.iter().enumerate() {
                let resource = match range {
                    None => b.as_entire_binding(),
                    Some((offset, size)) => {
                        wgpu::BindingResource::Buffer(wgpu::BufferBinding { buffer: b, offset: *offset, size: wgpu::BufferSize::new(*size) })
                    }
                };
                entries.push(wgpu::BindGroupEntry { binding: j as u32 + 1, resource });
            }
            let bind_group =
                self.device.create_bind_group(&wgpu::BindGroupDescriptor { label: None, layout: &pipeline.get_bind_group_layout(0), entries: &entries });
            out.push(Dispatch { kernel: l.kernel, pipeline, bind_group, groups: l.groups });
        }
        Ok(out)
    }

    /// Records `dispatches` in one compute pass of `encoder`.
    pub fn record(&self, encoder: &mut wgpu::CommandEncoder, dispatches: &[Dispatch]) {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
        for d in dispatches {
            d.record(&mut pass);
        }
    }

    /// Runs `dispatches` once, each in its own compute pass between two GPU timestamps, and
    /// returns each one's GPU time in ms; None when the device has no timestamp queries.
    pub async fn time_dispatches(&self, dispatches: &[&Dispatch]) -> Result<Option<Vec<f64>>> {
        if !self.device.features().contains(wgpu::Features::TIMESTAMP_QUERY) {
            return Ok(None);
        }
        let period_ns = self.queue.get_timestamp_period() as f64;
        let mut out = Vec::with_capacity(dispatches.len());
        // A query set holds at most 4096 timestamps: 2048 dispatches per submission.
        for chunk in dispatches.chunks(2048) {
            let n = chunk.len() as u32;
            let set = self.device.create_query_set(&wgpu::QuerySetDescriptor { label: Some("kernel times"), ty: wgpu::QueryType::Timestamp, count: 2 * n });
            let resolved = self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("timestamps"),
                size: 16 * n as u64,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let mut enc = self.device.create_command_encoder(&Default::default());
            for (i, d) in chunk.iter().enumerate() {
                let i = i as u32;
                let writes =
                    wgpu::ComputePassTimestampWrites { query_set: &set, beginning_of_pass_write_index: Some(2 * i), end_of_pass_write_index: Some(2 * i + 1) };
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: Some(writes) });
                d.record(&mut pass);
            }
            enc.resolve_query_set(&set, 0..2 * n, &resolved, 0);
            let bytes = self.submit_and_read(enc, &[(&resolved, 0, 16 * n as u64)]).await?;
            let ticks: Vec<u64> = bytemuck::pod_collect_to_vec(&bytes);
            out.extend(ticks.chunks_exact(2).map(|t| t[1].saturating_sub(t[0]) as f64 * period_ns / 1e6));
        }
        Ok(Some(out))
    }
}

pub(crate) fn u32_of(what: &str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::Limits(format!("{what} = {v} does not fit the kernels' 32-bit indices")))
}

impl Gpu {
    /// Gathers embedding rows for `m` tokens from a table chunk holding rows `row0 .. row0 + rows`.
    #[allow(clippy::too_many_arguments)]
    pub fn embed(
        &self,
        dtype: DType,
        table: &wgpu::Buffer,
        row0: usize,
        rows: usize,
        dim: usize,
        tokens: &wgpu::Buffer,
        m: usize,
        out: &wgpu::Buffer,
    ) -> Result<Launch> {
        self.embed_scaled(dtype, table, row0, rows, dim, tokens, m, out, 1.0)
    }

    pub fn rmsnorm(&self, w: &wgpu::Buffer, x: &wgpu::Buffer, out: &wgpu::Buffer, rows: usize, dim: usize, eps: f32) -> Result<Launch> {
        self.rmsnorm_into(w, (x, 0), out, rows, dim, eps, false, 1.0, KvType::F32)
    }

    /// Rotates the pairs `spec` names of each head of rows `row0 .. row0 + rows` of `x` in
    /// place; `positions` holds one u32 per row.
    #[allow(clippy::too_many_arguments)]
    pub fn rope(
        &self,
        x: &wgpu::Buffer,
        positions: &wgpu::Buffer,
        row0: usize,
        rows: usize,
        n_heads: usize,
        head_dim: usize,
        spec: RopeSpec,
        style: RopeStyle,
    ) -> Result<Launch> {
        if !spec.fits(style, head_dim) {
            return Err(Error::Input(format!("RoPE of {} pairs {} apart does not fit a head of {head_dim}", spec.pairs, spec.half)));
        }
        #[repr(C)]
        #[derive(Clone, Copy, Pod, Zeroable)]
        struct P([u32; 4], RopeParams);
        let p = P([u32_of("rows", rows)?, n_heads as u32, u32_of("row0", row0)?, 0], spec.params(style, head_dim, 0, 0));
        let pairs = spec.pairs;
        self.launch(Kernel::Rope, &p, &[positions, x], groups_1d(rows * n_heads * pairs))
    }

    /// `cond = uncond + (scale + 1)(cond − uncond)` over `n` logits (classifier-free guidance).
    pub fn cfg_mix(&self, cond: &wgpu::Buffer, uncond: &wgpu::Buffer, n: usize, scale: f32) -> Result<Launch> {
        #[repr(C)]
        #[derive(Clone, Copy, Pod, Zeroable)]
        struct P(u32, f32, u32, u32);
        self.launch(Kernel::CfgMix, &P(u32_of("size", n)?, scale, 0, 0), &[uncond, cond], groups_1d(n))
    }

    /// Token choice and confidence for `rows` rows of logits (positions `pos0 ..`), written to
    /// `out` rows `out_row0 ..` as 4 words each: token, prob, entropy, margin. `noise` is a
    /// uniform holding a `NoiseUniform` (the first `NOISE_BYTES` of buffer `noise`), rewritten
    /// before each run.
    #[allow(clippy::too_many_arguments)]
    pub fn select(
        &self,
        logits: &wgpu::Buffer,
        out: &wgpu::Buffer,
        noise: &wgpu::Buffer,
        rows: usize,
        vocab: usize,
        pos0: usize,
        out_row0: usize,
    ) -> Result<Launch> {
        let p = [u32_of("rows", rows)?, u32_of("vocab", vocab)?, u32_of("pos0", pos0)?, u32_of("out_row0", out_row0)?];
        let mut l = self.launch(Kernel::Select(self.row_workgroup()), &p, &[logits, out, noise], [u32_of("rows", rows)?, 1, 1])?;
        l.buffers[2].1 = Some((0, NOISE_BYTES));
        Ok(l)
    }
}

pub use super::family_kernels::{HeadPass, MoeIo, MoeShape};

/// Bytes of a `NoiseUniform`.
pub const NOISE_BYTES: u64 = std::mem::size_of::<NoiseUniform>() as u64;

/// The sampling settings of one step as `select.wgsl` reads them.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct NoiseUniform {
    pub temperature: f32,
    pub seed: u32,
    pub salt: u32,
    pub top_k: u32,
    pub top_p: f32,
    pub _pad: [u32; 3],
}

impl From<crate::choice::Noise> for NoiseUniform {
    fn from(n: crate::choice::Noise) -> Self {
        NoiseUniform { temperature: n.temperature, seed: n.seed, salt: n.salt, top_k: n.top_k, top_p: n.top_p, _pad: [0; 3] }
    }
}
