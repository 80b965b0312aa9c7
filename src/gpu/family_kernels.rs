//! Launchers of the kernels the families beyond LLaDA need: q/k/v biases (`bias.wgsl`),
//! the head pass (`head_pass.wgsl`: QK-norm, RoPE and the f16 K/V store in one launch),
//! mixture-of-experts routing, grouped expert matmul (one kernel per layout, gate fused like
//! the dense matmuls') and combination (`moe_*.wgsl`, with the layout of
//! the route buffer they share, `MoeShape`), and DiffusionGemma's row softmax, soft embedding,
//! logit soft-capping, scaled embedding and accumulating RMSNorm.

use super::kernels::{
    groups_1d, groups_per_row, u32_of, Epilogue, Kernel, KernelVariant, KvType, Launch, MatmulIo, MatmulSplit, RopeParams, RopeSpec, RowNorm,
};
use super::Gpu;
use crate::error::{Error, Result};
use crate::model::config::Routing;
use crate::model::{DType, RopeStyle};
use bytemuck::{Pod, Zeroable};

/// What a head pass (`Gpu::head_pass`) does to a pass's rows of Q, or of K and V.
pub struct HeadPass<'a> {
    /// f32 rows of Q or K, `heads` heads of `head_dim` each: rows `row0 .. row0 + rows`.
    pub x: &'a wgpu::Buffer,
    pub row0: usize,
    pub rows: usize,
    pub heads: usize,
    pub head_dim: usize,
    /// RMSNorm of every group of `dim` values (a head, or a whole row) with weight `w` first,
    /// if any: `(w, dim)`.
    pub norm: Option<(&'a wgpu::Buffer, usize)>,
    pub eps: f32,
    /// V's rows (as many values a row as K's, at the same rows), and whether they are normed
    /// without a weight over heads (DiffusionGemma; K's norm must then be per head too).
    pub v: Option<(&'a wgpu::Buffer, bool)>,
    /// f16 K and V to write, from row `.2`, instead of writing in place (needs `v`).
    pub store: Option<(&'a wgpu::Buffer, &'a wgpu::Buffer, usize)>,
    /// One u32 position per pass row.
    pub positions: &'a wgpu::Buffer,
    pub spec: RopeSpec,
    pub style: RopeStyle,
}

/// Where a grouped expert matmul reads and writes.
pub struct MoeIo<'a> {
    pub x: &'a wgpu::Buffer,
    /// x has a row per (position, slot) pair (the down projection), not per position.
    pub by_pair: bool,
    /// The routing (`moe_route.wgsl`).
    pub route: &'a wgpu::Buffer,
    pub y: &'a wgpu::Buffer,
    /// `Store`, or `Gated` (the up projection with the gate projection in y).
    pub epilogue: Epilogue,
    /// Normalize x's rows first (the tiled layout only: `Gpu::fuses`).
    pub norm: Option<RowNorm<'a>>,
}

/// Where the MoE kernels find things in a route buffer (`moe_route.wgsl`).
#[derive(Debug, Clone, Copy)]
pub struct MoeShape {
    /// Positions in the pass.
    pub rows: usize,
    /// Experts in the model.
    pub experts: usize,
    /// Experts per position.
    pub k: usize,
}

impl MoeShape {
    /// Pairs a workgroup of the tiled grouped matmul computes: the smallest of 8, 16, 32 and 64
    /// that holds the pairs an expert gets on average (`rows · k / experts`).
    pub fn tile(&self) -> u8 {
        match (self.rows * self.k).div_ceil(self.experts.max(1)) {
            0..=8 => 8,
            9..=16 => 16,
            17..=32 => 32,
            _ => 64,
        }
    }

    /// Pairs of an expert's list the grouped matmul in layout `v` multiplies at a time: the
    /// tiled kernel's `tile`, or the CPU-lanes kernel's R (`moe_matmul.wgsl`: as many pairs as
    /// the dense CPU-lanes matmul takes rows, `CPU_LANES_ROWS`).
    pub fn pairs_per_tile(&self, v: KernelVariant) -> usize {
        match v {
            KernelVariant::Tiled => self.tile() as usize,
            KernelVariant::CpuLanes => super::kernel_specs::CPU_LANES_ROWS,
        }
    }

    /// u32 words of the route buffer.
    pub fn route_words(&self) -> usize {
        2 * self.rows * self.k + self.experts + self.experts * self.rows
    }
}

impl Gpu {
    /// `y[row0 + r, :] += b` for `rows` rows of `dim` values.
    pub fn bias(&self, b: &wgpu::Buffer, y: &wgpu::Buffer, rows: usize, dim: usize, row0: usize) -> Result<Launch> {
        let p = [u32_of("rows", rows)?, u32_of("dim", dim)?, u32_of("row0", row0)?, 0];
        u32_of("bias output size", (row0 + rows) * dim)?;
        self.launch(Kernel::Bias, &p, &[b, y], groups_1d(rows * dim))
    }

    /// QK-norm, RoPE and, for K, V (normed or not) and the f16 K/V store in one launch.
    pub fn head_pass(&self, h: &HeadPass) -> Result<Launch> {
        let width = h.heads * h.head_dim;
        let dim = h.norm.map_or(h.head_dim, |n| n.1);
        // head_pass.wgsl's slots: two dimensions each, the NeoX pairs' 2 · half first.
        let slots_fit = h.head_dim.is_multiple_of(2) && (h.style == RopeStyle::Interleaved || 2 * h.spec.half <= h.head_dim);
        if !h.spec.fits(h.style, h.head_dim) || !slots_fit {
            return Err(Error::Input(format!("RoPE of {} pairs {} apart does not fit a head of {}", h.spec.pairs, h.spec.half, h.head_dim)));
        }
        let v_normed = h.v.is_some_and(|v| v.1);
        if h.head_dim == 0 || dim == 0 || !dim.is_multiple_of(h.head_dim) || !width.is_multiple_of(dim) || (v_normed && dim != h.head_dim) {
            return Err(Error::Input(format!("a QK-norm over {dim} values does not fit rows of {} heads of {}", h.heads, h.head_dim)));
        }
        if h.store.is_some() && h.v.is_none() {
            return Err(Error::Gpu("internal: the head pass stores K and V together".into()));
        }
        #[repr(C)]
        #[derive(Clone, Copy, Pod, Zeroable)]
        struct P([u32; 4], f32, [u32; 3], RopeParams);
        let dst_row0 = h.store.map_or(h.row0, |s| s.2);
        u32_of("head pass size", (h.row0.max(dst_row0) + h.rows) * width)?;
        let head = [u32_of("rows", h.rows)?, width as u32, dim as u32, h.norm.is_some() as u32];
        let p = P(head, h.eps, [h.row0 as u32, dst_row0 as u32, v_normed as u32], h.spec.params(h.style, h.head_dim, 0, 0));
        // Without a norm weight any read-only buffer fills its binding.
        let mut bufs = vec![h.norm.map_or(h.positions, |n| n.0), h.positions, h.x];
        bufs.extend(h.store.map(|s| s.0));
        if let Some((v, _)) = h.v {
            bufs.push(v);
        }
        bufs.extend(h.store.map(|s| s.1));
        let kernel = Kernel::HeadPass { v: h.v.is_some(), store: h.store.is_some() };
        self.launch(kernel, &p, &bufs, groups_per_row(h.rows * width / dim))
    }

    /// Router scores, top-k and per-expert lists of `logits` `[rows, experts]` into `route`
    /// (`bias`: the expert bias added for choosing; `norm`: renormalise the top-k weights).
    pub fn moe_route(&self, logits: &wgpu::Buffer, bias: Option<&wgpu::Buffer>, route: &wgpu::Buffer, s: MoeShape, norm: bool, r: Routing) -> Result<Launch> {
        self.moe_route_scaled(logits, bias, None, route, s, norm, r)
    }

    /// `moe_route` with each expert's weight also multiplied by `expert_scale[e]` when given.
    #[allow(clippy::too_many_arguments)]
    pub fn moe_route_scaled(
        &self,
        logits: &wgpu::Buffer,
        bias: Option<&wgpu::Buffer>,
        expert_scale: Option<&wgpu::Buffer>,
        route: &wgpu::Buffer,
        s: MoeShape,
        norm: bool,
        r: Routing,
    ) -> Result<Launch> {
        use crate::model::config::{MAX_EXPERTS, MAX_EXPERTS_USED, MAX_EXPERT_GROUPS};
        let groups_ok = r.groups >= 1
            && r.groups <= MAX_EXPERT_GROUPS
            && s.experts.is_multiple_of(r.groups)
            && (r.groups == 1 || s.experts / r.groups >= 2)
            && (1..=r.groups).contains(&r.topk_groups)
            && s.k <= r.topk_groups * (s.experts / r.groups);
        if s.experts == 0 || s.experts > MAX_EXPERTS || s.k == 0 || s.k > MAX_EXPERTS_USED.min(s.experts) || !groups_ok {
            return Err(Error::Input(format!("MoE routing of top-{} among {} experts in {} groups is not supported", s.k, s.experts, r.groups)));
        }
        u32_of("route size", s.route_words())?;
        #[repr(C)]
        #[derive(Clone, Copy, Pod, Zeroable)]
        struct P([u32; 8], f32, [u32; 3]);
        let head = [
            u32_of("rows", s.rows)?,
            s.experts as u32,
            s.k as u32,
            norm as u32,
            r.sigmoid as u32,
            r.groups as u32,
            r.topk_groups as u32,
            bias.is_some() as u32,
        ];
        // Without a bias any read-only buffer fills the binding.
        let tail = [expert_scale.is_some() as u32, 0, 0];
        self.launch(Kernel::MoeRoute, &P(head, r.scale, tail), &[logits, bias.unwrap_or(logits), route, expert_scale.unwrap_or(logits)], [1, 1, 1])
    }

    /// The grouped expert matmul for a chunk of stacked expert weights holding experts
    /// `e0 .. e0 + experts_in_chunk` (`n` rows each, `kdim` columns): `y[pair, :] = x[src] · W_eᵀ`
    /// (or gated, `io.epilogue`) for every pair on those experts' lists, in the layout `variant`.
    #[allow(clippy::too_many_arguments)]
    pub fn moe_matmul(
        &self,
        variant: KernelVariant,
        dtype: DType,
        w: &wgpu::Buffer,
        e0: usize,
        experts_in_chunk: usize,
        n: usize,
        kdim: usize,
        io: MoeIo<'_>,
        s: MoeShape,
    ) -> Result<Launch> {
        #[repr(C)]
        #[derive(Clone, Copy, Pod, Zeroable)]
        struct P(u32, u32, u32, u32, u32, u32, u32, u32, u32, f32);
        if io.epilogue == Epilogue::Add {
            return Err(Error::Gpu("internal: the grouped expert matmul stores or gates, it does not add".into()));
        }
        if io.norm.is_some() && variant != KernelVariant::Tiled {
            return Err(Error::Gpu("internal: only the tiled grouped expert matmul folds a norm into its input".into()));
        }
        u32_of("expert output size", s.rows * s.k * n.max(kdim))?;
        let (norm, eps, g) = RowNorm::binding(io.norm, io.x);
        let p = P(
            u32_of("n", n)?,
            u32_of("k", kdim)?,
            e0 as u32,
            s.k as u32,
            io.by_pair as u32,
            u32_of("rows", s.rows)?,
            s.experts as u32,
            io.epilogue.code(),
            norm as u32,
            eps,
        );
        // An expert's list holds at most one pair per position.
        let experts = u32_of("experts", experts_in_chunk)?;
        if self.moe_coop(variant, io.norm.is_some()) {
            // Tiles of 32 pairs × 128 columns (`kernel_source::coop_tile(true, _)`).
            let groups = [u32_of("n", n)?.div_ceil(128), experts, u32_of("rows", s.rows.div_ceil(32))?];
            return self.launch(Kernel::MoeMatmulCoop { dtype }, &p, &[w, io.x, io.route, io.y], groups);
        }
        // Along an expert's list: on GPUs (`split_matmul`) a workgroup a tile of pairs, as many as
        // an expert could get (those past its count exit at once); on CPU adapters, whose threads
        // a column tile per expert already fills, one workgroup that walks the whole list.
        let spread = variant == KernelVariant::Tiled && self.split_matmul();
        let along = if spread { s.rows.div_ceil(s.pairs_per_tile(variant)) } else { 1 };
        let groups = [u32_of("n", n)?.div_ceil(64), experts, u32_of("rows", along)?];
        match variant {
            // Binding 5: the tiled kernel's norm weight.
            KernelVariant::Tiled => self.launch(Kernel::MoeMatmul { dtype, tile: s.tile(), x4: false, w4: false }, &p, &[w, io.x, io.route, io.y, g], groups),
            // Bindings 5 and 6: x and the weights again, as vec4s.
            KernelVariant::CpuLanes => {
                let (x4, w4) = (super::kernel_specs::cpu_vec4_rows(kdim, 0), super::kernel_specs::cpu_vec4_weights(dtype, kdim));
                self.launch(Kernel::MoeMatmul { dtype, tile: 0, x4, w4 }, &p, &[w, io.x, io.route, io.y, io.x, w], groups)
            }
        }
    }

    /// Whether the grouped expert matmul in layout `variant` runs on cooperative matrices
    /// (`moe_coop.wgsl`): where the tiled layout's dense matmuls do (`coop_matmul`), unless a norm
    /// is folded into it (sessions on cooperative matrices norm in a pass of its own).
    pub fn moe_coop(&self, variant: KernelVariant, folded_norm: bool) -> bool {
        variant == KernelVariant::Tiled && self.coop_matmul() && !folded_norm
    }

    /// The shader the grouped expert matmul runs in layout `variant` (`folded_norm` as for
    /// `moe_coop`), without ".wgsl" (`unmask info`).
    pub fn moe_shader(&self, variant: KernelVariant, folded_norm: bool) -> &'static str {
        match variant {
            _ if self.moe_coop(variant, folded_norm) => "moe_coop",
            KernelVariant::Tiled => "moe_matmul_tiled",
            KernelVariant::CpuLanes => "moe_matmul",
        }
    }

    /// `x[x_row + r, :] += Σ_slot weight · y[r·k + slot, :]` for `rows` rows of `dim`, or with
    /// `overwrite` `x[x_row + r, :] = Σ_slot …` (x's old values unread).
    pub fn moe_combine_into(
        &self,
        route: &wgpu::Buffer,
        y: &wgpu::Buffer,
        (x, x_row): (&wgpu::Buffer, usize),
        s: MoeShape,
        dim: usize,
        overwrite: bool,
    ) -> Result<Launch> {
        let p = [u32_of("rows", s.rows)?, u32_of("dim", dim)?, s.k as u32, overwrite as u32, u32_of("x row", x_row)?, 0, 0, 0];
        self.launch(Kernel::MoeCombine, &p, &[route, y, x], groups_1d(s.rows * dim))
    }

    /// Softmax of each of `rows` rows of `n` values of `x`, in place.
    pub fn softmax(&self, x: &wgpu::Buffer, rows: usize, n: usize) -> Result<Launch> {
        self.softmax_scaled(x, rows, n, 1.0)
    }

    /// Softmax of `scale · x` row by row, in place (`scale` = 1 / temperature).
    pub fn softmax_scaled(&self, x: &wgpu::Buffer, rows: usize, n: usize, scale: f32) -> Result<Launch> {
        #[repr(C)]
        #[derive(Clone, Copy, Pod, Zeroable)]
        struct P(u32, u32, f32, u32);
        let r = u32_of("rows", rows)?.max(1);
        self.launch(Kernel::Softmax(self.row_workgroup()), &P(r, u32_of("n", n)?, scale, 0), &[x], groups_per_row(rows))
    }

    /// `out = scale · (acc · out + rms(x) · w)` for `rows` rows of `dim`, x's from row `x_row`
    /// and out's from row 0 (`rmsnorm` is row 0, acc 0, scale 1, f32), `out`'s elements `out_t`
    /// (f16: rounded as stored, a cooperative-matrix matmul's input).
    #[allow(clippy::too_many_arguments)]
    pub fn rmsnorm_into(
        &self,
        w: &wgpu::Buffer,
        (x, x_row): (&wgpu::Buffer, usize),
        out: &wgpu::Buffer,
        rows: usize,
        dim: usize,
        eps: f32,
        accumulate: bool,
        scale: f32,
        out_t: KvType,
    ) -> Result<Launch> {
        self.check_kv(out_t)?;
        #[repr(C)]
        #[derive(Clone, Copy, Pod, Zeroable)]
        struct P(u32, u32, f32, u32, f32, [u32; 3]);
        let p = P(u32_of("rows", rows)?, u32_of("dim", dim)?, eps, accumulate as u32, scale, [u32_of("x row", x_row)?, 0, 0]);
        self.launch(Kernel::RmsNorm { out: out_t, wg: self.row_workgroup() }, &p, &[w, x, out], [u32_of("rows", rows)?, 1, 1])
    }

    /// `embed` with every value times `scale` (Gemma's √hidden).
    #[allow(clippy::too_many_arguments)]
    pub fn embed_scaled(
        &self,
        dtype: DType,
        table: &wgpu::Buffer,
        row0: usize,
        rows: usize,
        dim: usize,
        tokens: &wgpu::Buffer,
        m: usize,
        out: &wgpu::Buffer,
        scale: f32,
    ) -> Result<Launch> {
        #[repr(C)]
        #[derive(Clone, Copy, Pod, Zeroable)]
        struct P([u32; 4], f32, [u32; 3]);
        let p = P([u32_of("rows", m)?, u32_of("dim", dim)?, u32_of("row0", row0)?, u32_of("rows", rows)?], scale, [0; 3]);
        self.launch(Kernel::Embed(dtype), &p, &[table, tokens, out], groups_1d(m * dim))
    }

    /// `out[out_row0 + m, :] (+)= scale · probs[m, row0 .. row0 + rows] · E_chunk` for `m` rows:
    /// one chunk (`rows` rows from `row0`) of an embedding table of `dim` columns; `vocab` is
    /// probs' row length. Split across the chunk's rows (`soft_embed_split`) when `scratch` has
    /// room for the slices: then two launches, the slices and `matmul_merge.wgsl`'s sum.
    #[allow(clippy::too_many_arguments)]
    pub fn soft_embed(
        &self,
        dtype: DType,
        table: &wgpu::Buffer,
        row0: usize,
        rows: usize,
        dim: usize,
        probs: &wgpu::Buffer,
        vocab: usize,
        m: usize,
        out: &wgpu::Buffer,
        out_row0: usize,
        scale: f32,
        accumulate: bool,
        scratch: Option<&wgpu::Buffer>,
    ) -> Result<Vec<Launch>> {
        if row0 + rows > vocab {
            return Err(Error::Input(format!("soft embedding: table rows {row0}..{} past the vocabulary of {vocab}", row0 + rows)));
        }
        u32_of("probabilities", m * vocab)?;
        u32_of("soft embedding size", (out_row0 + m) * dim)?;
        let split = self.soft_embed_split(m, dim, rows);
        let scratch = scratch.filter(|s| split.splits > 1 && s.size() >= split.bytes(m, dim));
        #[repr(C)]
        #[derive(Clone, Copy, Pod, Zeroable)]
        struct P(u32, u32, u32, u32, u32, f32, u32, u32, u32, [u32; 3]);
        let k_slice = if scratch.is_some() { split.k_slice } else { 0 };
        let p = P(
            u32_of("m", m)?,
            u32_of("dim", dim)?,
            u32_of("row0", row0)?,
            u32_of("rows", rows)?,
            u32_of("vocab", vocab)?,
            scale,
            accumulate as u32,
            out_row0 as u32,
            k_slice as u32,
            [0; 3],
        );
        let groups = [u32_of("dim", dim)?.div_ceil(64), u32_of("m", m)?.div_ceil(32), if scratch.is_some() { split.splits as u32 } else { 1 }];
        let Some(scratch) = scratch else {
            return Ok(vec![self.launch(Kernel::SoftEmbed(dtype), &p, &[table, probs, out], groups)?]);
        };
        let slices = self.launch(Kernel::SoftEmbed(dtype), &p, &[table, probs, scratch], groups)?;
        // The merge adds the slices (each already times `scale`) into `out`, or over it.
        let epilogue = if accumulate { Epilogue::Add } else { Epilogue::Store };
        let io =
            MatmulIo { x: probs, x_offset: 0, y: out, y_offset: out_row0 * dim, y_stride: dim, epilogue, norm: None, rope: None, x_f16: false, y_f16: false };
        Ok(vec![slices, self.matmul_merge(m, dim, split, io, rows, (dim, 0), scratch, false, KvType::F32)?])
    }

    /// The split a soft embedding of `m` rows × `dim` columns over `rows` table rows takes here
    /// (`MatmulSplit::of` its 32 × 64 tiles, for `split_fill` workgroups): on GPUs, where a
    /// chunk's few tiles would each walk its rows alone (DiffusionGemma-26B-A4B's 256 canvas rows
    /// × 2816: 352 workgroups over 262 144 table rows); none where `split_matmul` is off.
    pub fn soft_embed_split(&self, m: usize, dim: usize, rows: usize) -> MatmulSplit {
        if !self.split_matmul() {
            return MatmulSplit { splits: 1, k_slice: rows };
        }
        MatmulSplit::of(dim.div_ceil(64) * m.div_ceil(32), rows, self.split_fill())
    }

    /// DiffusionGemma's choice for `rows` rows of logits (canvas rows `row0 ..`): argmax, entropy
    /// and a sample with `u[row]` of softmax(logits · inv_t), 3 words a row into `out`.
    #[allow(clippy::too_many_arguments)]
    pub fn dg_choose(&self, logits: &wgpu::Buffer, u: &wgpu::Buffer, out: &wgpu::Buffer, rows: usize, vocab: usize, inv_t: f32, row0: usize) -> Result<Launch> {
        #[repr(C)]
        #[derive(Clone, Copy, Pod, Zeroable)]
        struct P(u32, u32, f32, u32);
        u32_of("logits", rows * vocab)?;
        let r = u32_of("rows", rows)?.max(1);
        self.launch(Kernel::DgChoose, &P(r, u32_of("vocab", vocab)?, inv_t, u32_of("row0", row0)?), &[logits, u, out], groups_per_row(rows))
    }

    /// `x = cap · tanh(x / cap)` over `n` values in place (Gemma's final logit soft-capping).
    pub fn softcap(&self, x: &wgpu::Buffer, n: usize, cap: f32) -> Result<Launch> {
        if !(cap.is_finite() && cap > 0.0) {
            return Err(Error::Input(format!("logit soft-cap {cap} must be positive")));
        }
        #[repr(C)]
        #[derive(Clone, Copy, Pod, Zeroable)]
        struct P(u32, f32, u32, u32);
        self.launch(Kernel::SoftCap, &P(u32_of("size", n)?, cap, 0, 0), &[x], groups_1d(n))
    }
}
