//! The matmul launchers: one tiled (`matmul.wgsl`, or `matmul_coop.wgsl` on cooperative
//! matrices where the adapter has them) or CPU-lanes (`matmul_cpu_lanes.wgsl`)
//! launch per weight chunk, and split-K for tiled launches with too few output tiles to fill a
//! GPU: the shared dimension cut into slices across workgroups, then `matmul_merge.wgsl`.
//! A tiled launch may fold the RMSNorm of its input rows into the product (`RowNorm`).
//! The fused launches (Q/K/V in one, gate/up in one) are `matmul_fused.rs`'s.

use super::kernel_specs::{Epilogue, KvType, MatmulSplit, RopeParams, RopeSpec, MAX_SPLIT_FILL};
use super::kernels::{groups_1d, u32_of, Kernel, KernelVariant, Launch};
use super::Gpu;
use crate::error::{Error, Result};
use crate::model::{DType, RopeStyle};
use bytemuck::{Pod, Zeroable};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct MatmulParams {
    pub(super) m: u32,
    pub(super) n: u32,
    pub(super) k: u32,
    pub(super) x_offset: u32,
    pub(super) y_offset: u32,
    pub(super) y_stride: u32,
    pub(super) epilogue: u32,
    /// Split-K: the k each workgroup sums; 0: all.
    pub(super) k_slice: u32,
    /// 1: the rows of x are RMS-normalized first (binding 4 holds the norm's weight).
    pub(super) norm: u32,
    pub(super) eps: f32,
    /// `matmul_qkv.wgsl` only: the first column of K and of V, and the elements of y2 and y3
    /// where their output (0, 0) goes.
    pub(super) n1: u32,
    pub(super) n2: u32,
    pub(super) y2_offset: u32,
    pub(super) y3_offset: u32,
    /// `matmul_qkv.wgsl` only: where the q/k/v biases begin in binding `g` (0: none).
    pub(super) bias: u32,
    pub(super) pad: u32,
    /// `matmul_qkv.wgsl` only, unsplit: Q and K turned as they are stored.
    pub(super) rope: RopeParams,
}

/// `matmul_merge_common.wgsl`'s parameters.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(super) struct MergeParams {
    /// m, n, splits, y_offset, y_stride, epilogue, norm_k, eps, n_src, c0, pair, n1.
    pub(super) head: [u32; 12],
    pub(super) rope: RopeParams,
    /// n2, y2_offset, y3_offset, padding.
    pub(super) tail: [u32; 4],
}

impl MergeParams {
    /// Ending `split`'s slices: columns `src.1 ..` of rows `src.0` wide, `n` of them into `io`'s
    /// output (its epilogue, the norm folded over `k`, RoPE over all `n`); `glu`: gate and up
    /// paired. No parts (`with_parts`).
    pub(super) fn new(m: usize, n: usize, split: MatmulSplit, io: &MatmulIo<'_>, k: usize, src: (usize, usize), glu: bool) -> Result<Self> {
        let (norm, eps, _) = RowNorm::binding(io.norm, io.x);
        let rope = match io.rope {
            Some(r) => r.params(n)?,
            None => RopeParams::default(),
        };
        let head = [
            u32_of("rows", m)?,
            u32_of("columns", n)?,
            split.splits as u32,
            u32_of("y offset", io.y_offset)?,
            u32_of("y stride", io.y_stride)?,
            io.epilogue.code(),
            if norm { u32_of("inner dimension", k)? } else { 0 },
            eps.to_bits(),
            u32_of("columns", src.0)?,
            u32_of("columns", src.1)?,
            glu as u32,
            0,
        ];
        Ok(MergeParams { head, rope, tail: [0; 4] })
    }

    /// With `matmul_qkv`'s parts (`p`: where K's and V's columns begin, their outputs' offsets,
    /// the biases'), for `matmul_merge_qkv.wgsl`.
    pub(super) fn with_parts(mut self, p: &MatmulParams) -> Self {
        self.head[11] = p.n1;
        self.tail = [p.n2, p.y2_offset, p.y3_offset, p.bias];
        self
    }
}

impl MatmulParams {
    /// The parameters of a launch over `m` × `n` × `k` with `io`, each workgroup z summing
    /// `k_slice` of k (0: all); no parts (`matmul_qkv` sets them).
    pub(super) fn new(m: usize, n: usize, k: usize, io: &MatmulIo<'_>, k_slice: usize) -> Result<Self> {
        let (norm, eps, _) = RowNorm::binding(io.norm, io.x);
        Ok(MatmulParams {
            m: u32_of("rows", m)?,
            n: u32_of("columns", n)?,
            k: u32_of("inner dimension", k)?,
            x_offset: u32_of("x offset", io.x_offset)?,
            y_offset: u32_of("y offset", io.y_offset)?,
            y_stride: u32_of("y stride", io.y_stride)?,
            epilogue: io.epilogue.code(),
            k_slice: u32_of("k slice", k_slice)?,
            norm: norm as u32,
            eps,
            ..Zeroable::zeroed()
        })
    }
}

/// An RMSNorm folded into a matmul: `y = rmsnorm(x, w, eps) · Wᵀ` with no pass or buffer for the
/// normed rows (the tiled kernel without cooperative matrices; `Gpu::fuses`).
#[derive(Clone, Copy)]
pub struct RowNorm<'a> {
    /// The norm's weight, k values.
    pub w: &'a wgpu::Buffer,
    pub eps: f32,
}

/// Where a matmul reads its activations and writes its output.
#[derive(Clone, Copy)]
pub struct MatmulIo<'a> {
    pub x: &'a wgpu::Buffer,
    /// First element of x (row `r` of a `[*, K]` buffer starts at `r·K`).
    pub x_offset: usize,
    pub y: &'a wgpu::Buffer,
    /// Element of y where output (0, 0) goes.
    pub y_offset: usize,
    /// Elements between output rows.
    pub y_stride: usize,
    /// Overwrite y, add into it (fused residual), or gate it (fused SwiGLU/GeGLU).
    pub epilogue: Epilogue,
    /// Normalize the rows of x first (the prologue).
    pub norm: Option<RowNorm<'a>>,
    /// Turn the output (Q or K) by RoPE before anything reads it.
    pub rope: Option<QkRope<'a>>,
    /// x holds f16 (`shader-f16`): a session that keeps the cooperative-matrix matmuls' inputs in
    /// half precision (`Session`'s `half_inputs`); read as f32, every core gives the product of
    /// the rounded values.
    pub x_f16: bool,
    /// y holds f16: only act(gate) · up (`matmul_glu`), a cooperative-matrix matmul's input too.
    pub y_f16: bool,
}

impl MatmulIo<'_> {
    /// The element type of x.
    pub fn x_type(&self) -> KvType {
        if self.x_f16 {
            KvType::F16
        } else {
            KvType::F32
        }
    }
}

/// RoPE that a matmul's output (Q or K, rows dense) gets: turned by the store where it can
/// (`matmul_qkv` unsplit, split-K's merge), else by a `rope.wgsl` pass right after.
#[derive(Clone, Copy)]
pub struct QkRope<'a> {
    pub spec: RopeSpec,
    pub style: RopeStyle,
    pub head_dim: usize,
    /// The position of output row 0 (the stores); `positions` holds each row's (the pass).
    pub pos0: usize,
    pub positions: &'a wgpu::Buffer,
}

impl QkRope<'_> {
    /// The kernels' parameters for turning the first `cols` columns (heads of `head_dim`): an
    /// error unless the pairs fit the head, and in NeoX style lie within it twice (the fused
    /// store keeps each pair in neighbouring tile columns).
    pub(super) fn params(&self, cols: usize) -> Result<RopeParams> {
        let d = self.head_dim;
        let neox_in_head = self.style != RopeStyle::NeoX || 2 * self.spec.half <= d;
        if d == 0 || !d.is_multiple_of(2) || !cols.is_multiple_of(d) || !self.spec.fits(self.style, d) || !neox_in_head {
            return Err(Error::Input(format!("RoPE of {} pairs {} apart does not fit {cols} columns in heads of {d}", self.spec.pairs, self.spec.half)));
        }
        Ok(self.spec.params(self.style, d, self.pos0, cols))
    }
}

impl<'a> RowNorm<'a> {
    /// Whether a kernel folds a norm, the norm's epsilon and the buffer bound to the kernel's
    /// norm-weight binding: the norm's weight, or the input `x` again when there is none.
    pub(crate) fn binding(norm: Option<RowNorm<'a>>, x: &'a wgpu::Buffer) -> (bool, f32, &'a wgpu::Buffer) {
        match norm {
            Some(n) => (true, n.eps, n.w),
            None => (false, 0.0, x),
        }
    }
}

/// The tiled kernel's rows per workgroup for `m` rows (32-row tiles for short inputs), and
/// whether that is the short specialisation.
fn tile_rows(variant: KernelVariant, m: usize) -> (bool, usize) {
    match variant {
        KernelVariant::Tiled if m <= 32 => (true, 32),
        KernelVariant::Tiled => (false, 64),
        KernelVariant::CpuLanes => (false, super::kernel_specs::CPU_LANES_ROWS),
    }
}

/// Output tiles of a tiled matmul of `m` × `n` in layout `variant` with tiles `cols` wide
/// (what split-K fills up).
fn tiles(variant: KernelVariant, m: usize, n: usize, cols: usize) -> usize {
    n.div_ceil(cols) * m.div_ceil(tile_rows(variant, m).1)
}

/// The core and tile of a tiled launch (`Gpu::tiled_core`).
#[derive(Clone, Copy, Debug)]
pub(super) struct TiledCore {
    /// On cooperative matrices (`matmul_coop.wgsl`), else f32 ALUs (`matmul.wgsl`).
    pub coop: bool,
    /// The short specialisation for inputs of at most 32 rows: 32×64 tiles on f32 ALUs, 32×128
    /// on cooperative matrices.
    pub short: bool,
    /// Output rows and columns a workgroup computes.
    pub rows: usize,
    pub cols: usize,
}

impl TiledCore {
    /// Workgroups for an `m` × `n` output in `splits` slices of k.
    pub(super) fn groups(&self, m: usize, n: usize, splits: usize) -> Result<[u32; 3]> {
        Ok([u32_of("columns", n.div_ceil(self.cols))?, u32_of("rows", m.div_ceil(self.rows))?, splits as u32])
    }
}

/// The most split-K scratch a tiled matmul of any row count up to `canvas` asks for, over the
/// weight shapes `(n, k)`, at any split fill up to `MAX_SPLIT_FILL` (a session's plan; 0: none
/// splits); with `wide_tiles` for tiles 128 wide too (`Limits::wide_tiles`).
pub fn split_scratch(canvas: usize, shapes: &[(usize, usize)], wide_tiles: bool) -> u64 {
    let mut most = 0;
    let widths: &[usize] = if wide_tiles { &[64, 128] } else { &[64] };
    for &(n, k) in shapes {
        // (Cooperative matrices' short and wide tiles are 128 wide: fewer tiles, more slices.)
        for (m, &cols) in (1..=canvas).flat_map(|m| widths.iter().map(move |c| (m, c))) {
            let split = MatmulSplit::of(tiles(KernelVariant::Tiled, m, n, cols), k, MAX_SPLIT_FILL);
            if split.splits > 1 {
                most = most.max(split.bytes(m, n));
            }
        }
    }
    most
}

impl Gpu {
    /// Whether a session's passes in layout `variant` fuse: the Q, K and V projections in one
    /// launch (`matmul_qkv`), a gated MLP's gate and up in one (`matmul_glu`), on f32 ALUs or
    /// cooperative matrices; each RMSNorm folded into the matmuls that read its output where
    /// `folds_norms` says so too. In the tiled layout, unless `set_fuse(false)` turned it off.
    pub fn fuses(&self, variant: KernelVariant) -> bool {
        variant == KernelVariant::Tiled && self.fuse.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether a session's passes in layout `variant` fold each RMSNorm into the matmuls that
    /// read its output (`RowNorm`): where they fuse, unless the matmuls run on cooperative
    /// matrices (which round x to f16 as they stage it, so x must be normed before).
    pub fn folds_norms(&self, variant: KernelVariant) -> bool {
        self.fuses(variant) && !self.coop_matmul()
    }

    /// Whether a session in layout `variant` keeps the inputs of its matmuls in f16: the normed
    /// rows, attention's output and act(gate) · up, each rounded once by the pass that writes it
    /// instead of by every cooperative-matrix workgroup that stages it (the same values: x
    /// clamped to ±65504 and rounded either way), so the matmuls read half the bytes of x and
    /// convert none. Where the matmuls run on cooperative matrices (so `fuses`, norms not
    /// folded) and the adapter has shader-f16, unless `set_half_inputs(false)`.
    pub fn half_inputs(&self, variant: KernelVariant) -> bool {
        self.fuses(variant) && self.coop_matmul() && self.report.shader_f16 && self.half.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether `matmul_qkv` runs here: where `fuses`, on adapters that bind the 8 storage
    /// buffers it needs (WebGPU's default; some downlevel adapters bind fewer).
    pub fn fuses_qkv(&self, variant: KernelVariant) -> bool {
        self.fuses(variant) && self.limits.max_storage_buffers_per_shader_stage >= 8
    }

    /// The kernel a matmul of `m` rows runs in layout `variant`, with split-K slices `k_slice`
    /// deep (0: unsplit), and its tile: tiled launches on cooperative matrices where
    /// `coop_matmul` is on and no norm is folded in (`tiled_core`). `x`: the activations'
    /// element type.
    fn matmul_kernel(&self, variant: KernelVariant, dtype: DType, m: usize, k_slice: usize, norm: bool, x: KvType) -> (Kernel, TiledCore) {
        match variant {
            KernelVariant::Tiled => match self.tiled_core(m, k_slice, norm) {
                t if t.coop => (Kernel::MatmulCoop { dtype, x, short: t.short }, t),
                t => (Kernel::Matmul { dtype, variant, short: t.short, x, x4: false, w4: false, xw: false }, t),
            },
            _ => (
                Kernel::Matmul { dtype, variant, short: false, x, x4: false, w4: false, xw: false },
                TiledCore { coop: false, short: false, rows: tile_rows(variant, m).1, cols: 64 },
            ),
        }
    }

    /// An error unless this adapter reads the element types `io` asks for (f16: `shader-f16`)
    /// and y is f32 (`glu`: or act(gate) · up in f16).
    pub(super) fn check_io(&self, io: &MatmulIo<'_>, glu: bool) -> Result<()> {
        if io.y_f16 && !glu {
            return Err(Error::Gpu("internal: only the gate/up matmul stores f16".into()));
        }
        if io.x_f16 || io.y_f16 {
            self.check_kv(KvType::F16)?;
        }
        Ok(())
    }

    /// The core a tiled launch of `m` rows runs (slices `k_slice` deep, 0: unsplit; `norm`:
    /// one folded in): on cooperative matrices where `coop_matmul` is on, no norm is folded in
    /// and the slices do not cut its 32-deep steps (64×64 tiles, or 64×128 with
    /// `set_coop_tile(128)`; 32×128 for at most 32 rows unless `set_short_coop(false)`), else on
    /// f32 ALUs (64×64; 32×64 for at most 32 rows).
    pub(super) fn tiled_core(&self, m: usize, k_slice: usize, norm: bool) -> TiledCore {
        if self.coop_matmul() && k_slice.is_multiple_of(32) && !norm {
            let short = m <= 32 && self.short_coop();
            let (rows, cols) = super::kernel_source::coop_tile(short, self.coop_wide());
            return TiledCore { coop: true, short, rows: rows as usize, cols: cols as usize };
        }
        let (short, rows) = tile_rows(KernelVariant::Tiled, m);
        TiledCore { coop: false, short, rows, cols: 64 }
    }

    /// `y[m, n] (+)= Σ_k x[m, k] · w[n, k]` for a weight chunk of `n` rows, `k` columns, in the
    /// layout `variant`; tiled launches run on cooperative matrices where `coop_matmul` is on.
    #[allow(clippy::too_many_arguments)]
    pub fn matmul(&self, variant: KernelVariant, dtype: DType, w: &wgpu::Buffer, m: usize, n: usize, k: usize, io: MatmulIo<'_>) -> Result<Vec<Launch>> {
        if io.norm.is_some() && variant != KernelVariant::Tiled {
            return Err(Error::Gpu("internal: only the tiled matmul folds a norm into its input".into()));
        }
        if io.rope.is_some() {
            return Err(Error::Gpu("internal: a matmul's RoPE is its merge's or a pass of its own (`matmul_auto`)".into()));
        }
        self.check_io(&io, false)?;
        let (norm, _, g) = RowNorm::binding(io.norm, io.x);
        let p = MatmulParams::new(m, n, k, &io, 0)?;
        u32_of("output size", io.y_offset + m.saturating_sub(1) * io.y_stride + n)?;
        let (kernel, core) = self.matmul_kernel(variant, dtype, m, 0, norm, io.x_type());
        let groups = core.groups(m, n, 1)?;
        // Binding 4: matmul.wgsl's norm weight, matmul_cpu_lanes.wgsl's x as vec4s (and 5 its
        // weights as vec4s; matmul_window.rs); none in matmul_coop.wgsl.
        match kernel {
            Kernel::Matmul { variant: KernelVariant::Tiled, .. } => Ok(vec![self.launch(kernel, &p, &[w, io.x, io.y, g], groups)?]),
            Kernel::Matmul { .. } => self.cpu_lanes_matmul(dtype, w, m, n, k, &io, core),
            _ => Ok(vec![self.launch(kernel, &p, &[w, io.x, io.y], groups)?]),
        }
    }

    /// The split-K a tiled matmul of `m` × `n` over `k` takes on this device (`MatmulSplit::of`
    /// for `split_fill` workgroups; none where `split_matmul` is off, or in the CPU-lanes layout).
    pub fn matmul_split_of(&self, variant: KernelVariant, m: usize, n: usize, k: usize) -> MatmulSplit {
        if variant != KernelVariant::Tiled || !self.split_matmul() {
            return MatmulSplit { splits: 1, k_slice: k };
        }
        // The tiles' width `tiled_core` picks (slices are multiples of 32 deep; no norm decides it).
        MatmulSplit::of(tiles(variant, m, n, self.tiled_core(m, 0, false).cols), k, self.split_fill())
    }

    /// The split a tiled matmul of `m` × `n` over `k` takes here and the scratch it takes it in:
    /// None where it does not split or `scratch` has no room for the slices.
    pub fn split_room<'s>(
        &self,
        variant: KernelVariant,
        m: usize,
        n: usize,
        k: usize,
        scratch: Option<&'s wgpu::Buffer>,
    ) -> Option<(MatmulSplit, &'s wgpu::Buffer)> {
        let split = self.matmul_split_of(variant, m, n, k);
        scratch.filter(|s| split.splits > 1 && s.size() >= split.bytes(m, n)).map(|s| (split, s))
    }

    /// `matmul`, split across the shared dimension (`MatmulSplit::of`) when `scratch` has room
    /// for the slices: two launches then. RoPE (`io.rope`) is the merge's, or unsplit a pass
    /// after the matmul.
    #[allow(clippy::too_many_arguments)]
    pub fn matmul_auto(
        &self,
        variant: KernelVariant,
        dtype: DType,
        w: &wgpu::Buffer,
        m: usize,
        n: usize,
        k: usize,
        io: MatmulIo<'_>,
        scratch: Option<&wgpu::Buffer>,
    ) -> Result<Vec<Launch>> {
        match self.split_room(variant, m, n, k, scratch) {
            Some((split, s)) => self.matmul_split(dtype, w, m, n, k, io, s, split, KvType::F32),
            None => {
                let mut out = self.matmul(variant, dtype, w, m, n, k, MatmulIo { rope: None, ..io })?;
                out.extend(self.rope_output(&io, m, n)?);
                Ok(out)
            }
        }
    }

    /// The RoPE pass over the `m` × `n` output of `io` (rows dense) where it asks for one.
    pub fn rope_output(&self, io: &MatmulIo<'_>, m: usize, n: usize) -> Result<Option<Launch>> {
        let Some(r) = io.rope else { return Ok(None) };
        r.params(n)?;
        if io.y_stride != n || !io.y_offset.is_multiple_of(n) {
            return Err(Error::Gpu("internal: RoPE turns outputs whose rows are dense".into()));
        }
        Ok(Some(self.rope(io.y, r.positions, io.y_offset / n, m, n / r.head_dim, r.head_dim, r.spec, r.style)?))
    }

    /// Split-K in the tiled layout: `split.splits` workgroups per output tile, each summing its
    /// slice of k into `scratch` (`[splits, m, n]`, then with a norm each slice's Σ x² of each
    /// row, `[splits, m]`), then `matmul_merge.wgsl` writes y, whose elements are `out` (f16: K
    /// or V into half-precision K/V, `io.y_offset` in its elements; the merge rounds).
    #[allow(clippy::too_many_arguments)]
    pub fn matmul_split(
        &self,
        dtype: DType,
        w: &wgpu::Buffer,
        m: usize,
        n: usize,
        k: usize,
        io: MatmulIo<'_>,
        scratch: &wgpu::Buffer,
        split: MatmulSplit,
        out: KvType,
    ) -> Result<Vec<Launch>> {
        self.check_kv(out)?;
        self.check_io(&io, false)?;
        let MatmulSplit { splits, k_slice } = split;
        if !(1..=64).contains(&splits) || k_slice == 0 || !k_slice.is_multiple_of(16) || splits * k_slice < k || (splits - 1) * k_slice >= k {
            return Err(Error::Input(format!("a matmul split of {splits} slices of {k_slice} does not cover k = {k}")));
        }
        let need = split.bytes(m, n);
        if scratch.size() < need {
            return Err(Error::Gpu(format!("internal: split-K matmul needs {need} bytes of scratch; {} were planned", scratch.size())));
        }
        u32_of("output size", io.y_offset + m.saturating_sub(1) * io.y_stride + n)?;
        let (norm, _, g) = RowNorm::binding(io.norm, io.x);
        // The slices store dense [splits, m, n] partial results; the merge applies the epilogue.
        let p = MatmulParams { y_offset: 0, y_stride: n as u32, epilogue: Epilogue::Store.code(), ..MatmulParams::new(m, n, k, &io, k_slice)? };
        let (kernel, core) = self.matmul_kernel(KernelVariant::Tiled, dtype, m, k_slice, norm, io.x_type());
        let groups = core.groups(m, n, splits)?;
        let slices = match kernel {
            Kernel::MatmulCoop { .. } => self.launch(kernel, &p, &[w, io.x, scratch], groups)?,
            _ => self.launch(kernel, &p, &[w, io.x, scratch, g], groups)?,
        };
        let merge = self.matmul_merge(m, n, split, io, k, (n, 0), scratch, false, out)?;
        Ok(vec![slices, merge])
    }

    /// Split-K's ending: columns `c0 .. c0 + n` of the slices' results in `scratch` (rows of
    /// `n_src`; `src` is `(n_src, c0)`) summed into y of `io`, with its epilogue, the norm
    /// folded over `k` and its RoPE; or with `glu`, `matmul_glu`'s tiles of gate and up columns
    /// paired into `n` outputs. y's elements are `out` (f16: K or V into half-precision K/V).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn matmul_merge(
        &self,
        m: usize,
        n: usize,
        split: MatmulSplit,
        io: MatmulIo<'_>,
        k: usize,
        src: (usize, usize),
        scratch: &wgpu::Buffer,
        glu: bool,
        out: KvType,
    ) -> Result<Launch> {
        let p = MergeParams::new(m, n, split, &io, k, src, glu)?;
        self.launch(Kernel::MatmulMerge { out }, &p, &[scratch, io.y], groups_1d(m * n))
    }
}

/// The columns of `matmul_glu`'s tiles for `n` outputs: a gate and an up column each (what its
/// split-K scratch holds per row).
pub fn glu_width(n: usize) -> usize {
    2 * n
}
