//! The small value types that describe what a launch computes: the gated MLP's activation, what
//! a matmul does with its result (`Epilogue`),
//! which keys an attention query sees (`AttnMask`), an attention launch's sizes and split-K
//! slices (`AttnShape`), a tiled matmul's split-K (`MatmulSplit`), how K/V are stored
//! (`KvType`), and which pairs RoPE turns (`RopeSpec`, and the kernels' `RopeParams`).
//! Shared by the launchers (`kernels.rs`) and their CPU twins (`cpu/ops.rs`).

use crate::model::{DType, RopeStyle};

/// The gated MLP's activation (`glu.wgsl`'s `act`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Activation {
    /// x · sigmoid(x) (SwiGLU).
    Silu = 0,
    /// GELU, tanh approximation (`gelu_pytorch_tanh`; GeGLU).
    GeluTanh = 1,
}

impl Activation {
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::Silu => x / (1.0 + (-x).exp()),
            Activation::GeluTanh => 0.5 * x * (1.0 + ((2.0 / std::f32::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh()),
        }
    }
}

/// What a matmul does with its result v at an output element y (`matmul*.wgsl`'s `epilogue`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Epilogue {
    /// y = v.
    Store,
    /// y = y + v (the residual add, fused).
    Add,
    /// y = act(y) · v: the gated MLP fused into the up projection (y holds the gate
    /// projection), dense or experts, rather than a separate elementwise pass.
    Gated(Activation),
}

impl Epilogue {
    /// The shader's code for it.
    pub fn code(self) -> u32 {
        match self {
            Epilogue::Store => 0,
            Epilogue::Add => 1,
            Epilogue::Gated(a) => 2 + a as u32,
        }
    }

    /// The CPU twin: the new y from the old one and the result.
    pub fn apply(self, y: f32, v: f32) -> f32 {
        match self {
            Epilogue::Store => v,
            Epilogue::Add => y + v,
            Epilogue::Gated(a) => a.apply(y) * v,
        }
    }
}

/// How a session stores its K/V: f32, or f16 on adapters with `shader-f16` (half the memory
/// and the attention kernels' reads; the values are computed in f32 and rounded once when
/// stored, `kv_store.wgsl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum KvType {
    #[default]
    F32,
    F16,
}

impl KvType {
    pub fn name(self) -> &'static str {
        match self {
            KvType::F32 => "f32",
            KvType::F16 => "f16",
        }
    }

    pub fn parse(s: &str) -> Option<KvType> {
        match s {
            "f32" => Some(KvType::F32),
            "f16" => Some(KvType::F16),
            _ => None,
        }
    }

    /// Bytes of one stored value.
    pub fn bytes(self) -> usize {
        match self {
            KvType::F32 => 4,
            KvType::F16 => 2,
        }
    }

    /// The CPU twin of storing `x`: f16 rounds to nearest even.
    pub fn round(self, x: f32) -> f32 {
        match self {
            KvType::F32 => x,
            KvType::F16 => half::f16::from_f32(x).to_f32(),
        }
    }
}

/// Which pairs of a head RoPE turns and how fast (`rope.wgsl`): pair i < `pairs` (dimensions
/// i and i + `half` in NeoX style) at `freq_scale / theta^(2i / denom)` per position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RopeSpec {
    pub theta: f32,
    pub pairs: usize,
    pub half: usize,
    pub denom: usize,
    pub freq_scale: f32,
}

impl RopeSpec {
    /// RoPE over the first `rot` dimensions of each head (all of them when `rot` = head_dim).
    pub fn first(rot: usize, theta: f32) -> RopeSpec {
        RopeSpec { theta, pairs: rot / 2, half: rot / 2, denom: rot, freq_scale: 1.0 }
    }

    /// Inverse frequency of pair `i`.
    pub fn inv_freq(&self, i: usize) -> f32 {
        1.0 / self.theta.powf((2 * i) as f32 / self.denom as f32) * self.freq_scale
    }

    /// Whether the pairs fit a head of `head_dim` in `style`.
    pub fn fits(&self, style: RopeStyle, head_dim: usize) -> bool {
        let fits = match style {
            RopeStyle::NeoX => self.pairs <= self.half && self.half + self.pairs <= head_dim,
            RopeStyle::Interleaved => 2 * self.pairs <= head_dim,
        };
        self.pairs > 0 && self.denom > 0 && fits
    }

    /// rope_common.wgsl's `Rope` for heads of `head_dim` in `style`; for a matmul store, the
    /// position of output row 0 and the columns it turns (`cols` 0: none).
    pub fn params(&self, style: RopeStyle, head_dim: usize, pos0: usize, cols: usize) -> RopeParams {
        RopeParams {
            on: (cols > 0) as u32,
            style: matches!(style, RopeStyle::Interleaved) as u32,
            pairs: self.pairs as u32,
            half: self.half as u32,
            denom: self.denom as u32,
            head_dim: head_dim as u32,
            pos0: pos0 as u32,
            cols: cols as u32,
            theta: self.theta,
            freq_scale: self.freq_scale,
            pad: [0; 2],
        }
    }
}

/// rope_common.wgsl's `Rope`, in the parameters of `rope.wgsl` and of the matmul stores that
/// turn Q and K (`RopeSpec::params`; zeroed: none).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
pub struct RopeParams {
    on: u32,
    style: u32,
    pairs: u32,
    half: u32,
    denom: u32,
    head_dim: u32,
    pos0: u32,
    cols: u32,
    theta: f32,
    freq_scale: f32,
    pad: [u32; 2],
}

/// Which keys each query row of an attention launch sees, and the score scale
/// (`attention.wgsl`'s `Params`; `AttnMask::FULL` is plain bidirectional attention).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttnMask {
    /// Canvas position of query row 0 (keys are canvas positions 0 ..).
    pub q0: usize,
    /// Block-causal in blocks of this many positions (LLaDA 2); 0 = off.
    pub block: usize,
    /// Keys at or before the query's position only.
    pub causal: bool,
    /// Sliding window: keys after query − window only; 0 = off.
    pub window: usize,
    /// Keys before this position are never seen.
    pub key_lo: usize,
    /// Scores are q·k times this (None: 1/√head_dim).
    pub scale: Option<f32>,
    /// The row of the query buffer that holds query row 0 (a pass's last layer attends for the
    /// rows the sampler predicts alone; the rows before are not read).
    pub q_row: usize,
}

impl AttnMask {
    pub const FULL: AttnMask = AttnMask { q0: 0, block: 0, causal: false, window: 0, key_lo: 0, scale: None, q_row: 0 };

    /// The keys `[start, end)` that the query at canvas position `q` sees among `lk`.
    pub fn keys(&self, q: usize, lk: usize) -> std::ops::Range<usize> {
        let mut end = q.checked_div(self.block).map_or(lk, |b| lk.min((b + 1) * self.block));
        if self.causal {
            end = end.min(q + 1);
        }
        let mut start = self.key_lo;
        if self.window > 0 && q + 1 > self.window {
            start = start.max(q + 1 - self.window);
        }
        start..end
    }
}

/// The sizes of an attention launch: `lq` query rows of `n_heads` heads against `lk` key/value
/// rows of `n_kv` heads, `head_dim` wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttnShape {
    pub lq: usize,
    pub lk: usize,
    pub n_heads: usize,
    pub n_kv: usize,
    pub head_dim: usize,
}

/// Query rows per workgroup of the flash layout (BQ of `attention_flash.wgsl` and
/// `attention_tiles.wgsl`).
pub const FLASH_ROWS: usize = 16;
/// Workgroup memory of `attention_tiles.wgsl`: 16 query rows, 16 key rows (one spare vec4
/// each) and 16 value rows of 128 f32, and 16×16 scores and their weights.
pub const TILES_BYTES: u32 = (16 * 32 + 16 * 33) * 16 + 16 * 128 * 4 + 2 * 256 * 4;
/// Widest head `attention_tiles.wgsl` takes.
pub const TILES_HEAD_DIM: usize = 128;
/// Split-K fills the GPU up to this many workgroups (`AttnShape::splits`).
const SPLIT_FILL: usize = 256;
/// Most key slices of one split-K launch, and fewest keys a slice.
const MAX_SPLITS: usize = 16;
const MIN_SLICE_KEYS: usize = 64;

impl AttnShape {
    /// Workgroups of the flash layout: one per head and 16 query rows.
    pub fn flash_groups(&self) -> usize {
        self.n_heads * self.lq.div_ceil(FLASH_ROWS)
    }

    /// Workgroups of `attention_tiles.wgsl` (x, y): one per K/V head and 16 query slots, the
    /// (position, head) pairs of the n_heads / n_kv query heads that read it, which share its
    /// staged K/V. As many as `flash_groups` when the heads per K/V head divide 16.
    pub fn tiles_groups(&self) -> (usize, usize) {
        (self.n_kv, (self.lq * (self.n_heads / self.n_kv.max(1))).div_ceil(FLASH_ROWS))
    }

    /// Key slices for split-K in the flash layout: 1 (no split) when the launch has 128 or more
    /// workgroups of its own; else enough slices to make about 256 (each of at least 64 keys,
    /// 16 at most). A cached step of LLaDA-8B (32 rows, 32 heads: 64 workgroups) takes 4.
    pub fn splits(&self) -> usize {
        let wgs = self.flash_groups().max(1);
        if wgs >= SPLIT_FILL / 2 {
            return 1;
        }
        SPLIT_FILL.div_ceil(wgs).min(self.lk / MIN_SLICE_KEYS).clamp(1, MAX_SPLITS)
    }

    /// Bytes of split-K's scratch for `splits` slices: m, l and head_dim outputs per slice, query
    /// row and head (`attention_split_out.wgsl`).
    pub fn split_bytes(&self, splits: usize) -> u64 {
        (splits * self.lq * self.n_heads * (self.head_dim + 2) * 4) as u64
    }

    /// The most scratch that `splits()` asks of any launch of at most `canvas` query rows and
    /// keys with these heads (a session's plan; 0: none splits): slices × workgroups stays
    /// under 384, so at most 384·16 (row, head) records, and each row has at most 16 slices and
    /// one per 64 keys.
    pub fn split_scratch_bound(canvas: usize, n_heads: usize, head_dim: usize) -> u64 {
        let most = (canvas / MIN_SLICE_KEYS).min(MAX_SPLITS);
        if most < 2 {
            return 0;
        }
        let records = (SPLIT_FILL * 3 / 2 * FLASH_ROWS).min(most * canvas * n_heads);
        (records * (head_dim + 2) * 4) as u64
    }
}

/// Split-K for a tiled matmul launch whose output tiles are too few to fill a GPU (cached steps,
/// small models): `splits` workgroups per tile, each summing `k_slice` of the shared dimension
/// (`matmul.wgsl`), then `matmul_merge.wgsl`. `splits == 1`: no split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatmulSplit {
    pub splits: usize,
    pub k_slice: usize,
}

/// Fewest values of the shared dimension a matmul slice sums.
const MIN_SLICE_K: usize = 256;

/// Activation rows an invocation of `matmul_cpu_lanes.wgsl` multiplies (its `R`; the host's
/// workgroup rows): 16 runs lavapipe's matmuls 1.3–1.45× faster than 8 and 32 (BENCHMARKS.md).
pub const CPU_LANES_ROWS: usize = 16;

/// Whether the CPU-lanes matmuls read x rows of `k` elements from element `x_offset` as vec4s
/// (`Kernel::Matmul::x4`, `MoeMatmul::x4`): where every row starts at a multiple of 4. A vec4
/// read costs lavapipe little more than one value's, and made its matmuls ~1.3× faster.
pub fn cpu_vec4_rows(k: usize, x_offset: usize) -> bool {
    k.is_multiple_of(4) && x_offset.is_multiple_of(4)
}

/// The vec4 reader `slice_w8` (cpu_lanes_weights.wgsl) has for weight format `dtype`, as (its
/// code, the override `WIDE`; the row length in elements that rows must be a multiple of to start
/// 16 bytes aligned): the plain formats, Q4_K (144-byte super-blocks: always aligned; its scalar
/// reader took 16 word loads for 8 weights, the vec4 one 2: 1.35× faster on lavapipe) and Q6_K
/// (the vec4s around its bytes: 6 loads for 14, ~1.1×). Q4_0 and Q8_0 readers picking their
/// bytes out of vec4s measured no faster than their word reads (BENCHMARKS.md): none.
pub fn cpu_vec4_reader(dtype: DType) -> Option<(u32, usize)> {
    match dtype {
        DType::F32 => Some((1, 4)),
        DType::F16 => Some((2, 8)),
        DType::BF16 => Some((3, 8)),
        DType::Q4K => Some((4, 256)),
        DType::Q6K => Some((5, 256)),
        DType::Q8_0 | DType::Q4_0 => None,
    }
}

/// Whether the CPU-lanes matmuls read a lane's 8 weights of a row of `k` in format `dtype` as
/// vec4s (`Kernel::Matmul::w4`): where the format has a vec4 reader and its rows start aligned.
pub fn cpu_vec4_weights(dtype: DType, k: usize) -> bool {
    cpu_vec4_reader(dtype).is_some_and(|(_, align)| k.is_multiple_of(align))
}

/// Query rows a workgroup of `attention_cpu_lanes.wgsl` takes (its `WG · QR`: one subgroup of 8
/// invocations, two rows each): on lavapipe a cached step's attention took half the time of
/// 64-row workgroups, and full passes 15–20 % less (BENCHMARKS.md).
pub const CPU_LANES_ATTENTION_ROWS: usize = 16;

/// Invocations of a row kernel's workgroup (rmsnorm.wgsl, select.wgsl, softmax.wgsl: one
/// workgroup a row, reduced in workgroup memory between barriers), `Gpu::row_workgroup`: GPUs
/// keep 256; CPU adapters run 8 (one SIMD-wide coroutine on lavapipe: no barrier switches
/// between 32 of them), which made the demo model's norms 5× faster there (BENCHMARKS.md).
pub const GPU_ROW_WORKGROUP: u32 = 256;
pub const CPU_ROW_WORKGROUP: u32 = 8;

/// Workgroups a split tiled matmul aims for before `Gpu::set_split_fill` (`UNMASK_SPLIT_FILL`).
/// On an H200 (132 multiprocessors), aiming for the 256 that attention aims for left
/// LLaDA-8B's cached-step matmuls at 1–5 % of the memory bandwidth; a cached step (dual cache,
/// threshold 0.9) took 118.5 ms at 256, 84.2 at 1024 and 78.9 at 2048 (BENCHMARKS.md, "H200").
pub const GPU_SPLIT_FILL: usize = 2048;
/// The most workgroups `Gpu::set_split_fill` may aim for; session plans size the matmuls'
/// split-K scratch for it.
pub const MAX_SPLIT_FILL: usize = 4096;

impl MatmulSplit {
    /// For `tiles` output tiles over a shared dimension `k`, aiming for `fill` workgroups: none
    /// with `fill / 2` tiles or more; else enough slices to make about `fill` workgroups, each
    /// at least 256 deep (a multiple of 32: the tiled kernel steps through k 16 at a time, the
    /// cooperative one 32), 16 at most. LLaDA-8B's cached step (32 rows, q_proj 4096 × 4096: 64
    /// tiles) takes 4 for a fill of 256, 16 for `GPU_SPLIT_FILL`.
    pub fn of(tiles: usize, k: usize, fill: usize) -> MatmulSplit {
        let want = if tiles >= fill / 2 { 1 } else { fill.div_ceil(tiles.max(1)).min(k / MIN_SLICE_K).clamp(1, MAX_SPLITS) };
        if want == 1 {
            return MatmulSplit { splits: 1, k_slice: k };
        }
        let k_slice = k.div_ceil(want).next_multiple_of(32);
        MatmulSplit { splits: k.div_ceil(k_slice), k_slice }
    }

    /// Bytes of scratch for an `m` × `n` output: each slice's partial product, then each slice's
    /// Σ x² of each row (a folded norm's).
    pub fn bytes(&self, m: usize, n: usize) -> u64 {
        (self.splits * m * (n + 1) * 4) as u64
    }
}
