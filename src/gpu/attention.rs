//! The attention launchers: which layout a launch runs (`attention.wgsl`, `attention_flash.wgsl`,
//! `attention_tiles.wgsl`, `attention_cpu_lanes.wgsl`), and split-K for launches of few query
//! rows (cached steps) in the flash layouts: the keys cut into slices across workgroups, then `attention_merge.wgsl`; and
//! the store of new K/V rows into half-precision K/V (`kv_store.wgsl`).

use super::kernel_specs::{AttnMask, AttnShape, CPU_LANES_ATTENTION_ROWS, FLASH_ROWS, TILES_HEAD_DIM};
use super::kernels::{groups_1d, u32_of, AttnLayout, Kernel, KernelVariant, KvType, Launch};
use super::Gpu;
use crate::error::{Error, Result};
use bytemuck::{Pod, Zeroable};

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params(u32, u32, u32, u32, u32, f32, [u32; 10]);

fn params(s: &AttnShape, mask: &AttnMask, splits: usize) -> Result<Params> {
    if s.head_dim > 512 || s.n_kv == 0 || !s.n_heads.is_multiple_of(s.n_kv) {
        return Err(Error::Input(format!(
            "attention needs head_dim ≤ 512 and n_heads a multiple of n_kv_heads (got {}, {}, {})",
            s.head_dim, s.n_heads, s.n_kv
        )));
    }
    let scale = mask.scale.unwrap_or(1.0 / (s.head_dim as f32).sqrt());
    let m = [
        u32_of("q0", mask.q0)?,
        u32_of("block", mask.block)?,
        mask.causal as u32,
        u32_of("window", mask.window)?,
        u32_of("key_lo", mask.key_lo)?,
        splits as u32,
        u32_of("q_row", mask.q_row)?,
        0,
        0,
        0,
    ];
    Ok(Params(u32_of("lq", s.lq)?, u32_of("lk", s.lk)?, s.n_heads as u32, s.n_kv as u32, s.head_dim as u32, scale, m))
}

/// The workgroups of an attention launch in `layout` with `splits` key slices: a head and 16
/// query rows each (64 in the portable layout, `CPU_LANES_ATTENTION_ROWS` in the CPU-lanes
/// one), or in the tiles layout a K/V head and 16 (row, head) slots of the query heads that
/// share it (`AttnShape::tiles_groups`).
fn grid(layout: AttnLayout, s: &AttnShape, splits: usize) -> Result<[u32; 3]> {
    let (x, y) = match layout {
        AttnLayout::Tiles => s.tiles_groups(),
        AttnLayout::Flash => (s.n_heads, s.lq.div_ceil(FLASH_ROWS)),
        AttnLayout::Portable => (s.n_heads, s.lq.div_ceil(64)),
        AttnLayout::CpuLanes => (s.n_heads, s.lq.div_ceil(CPU_LANES_ATTENTION_ROWS)),
    };
    Ok([u32_of("heads", x)?, u32_of("query rows", y)?, u32_of("splits", splits)?])
}

impl Gpu {
    /// Attention of the `lq` query rows of `q` against the `lk` rows of `k` and `v` (stored as
    /// `kv`) into `out` (elements `out_t`: f16, rounded as stored, for a cooperative-matrix
    /// matmul's input), each query over the keys `mask` gives it. In the flash layouts, a launch
    /// of few rows is split across its keys when `scratch` has room (`AttnShape::splits`): two
    /// launches.
    #[allow(clippy::too_many_arguments)]
    pub fn attention(
        &self,
        variant: KernelVariant,
        q: &wgpu::Buffer,
        k: &wgpu::Buffer,
        v: &wgpu::Buffer,
        out: &wgpu::Buffer,
        s: AttnShape,
        mask: AttnMask,
        kv: KvType,
        out_t: KvType,
        scratch: Option<&wgpu::Buffer>,
    ) -> Result<Vec<Launch>> {
        let p = params(&s, &mask, 1)?;
        self.check_kv(kv)?;
        self.check_kv(out_t)?;
        let layout = self.attention_layout(variant, &s);
        let flash = layout.is_flash();
        if flash {
            let splits = s.splits();
            if let Some(scratch) = scratch.filter(|b| splits > 1 && b.size() >= s.split_bytes(splits)) {
                return self.attention_split(q, k, v, out, s, mask, [kv, out_t], scratch, splits);
            }
        }
        let kernel = Kernel::Attention { layout, wide: s.head_dim > 256, split: false, kv, out: out_t };
        Ok(vec![self.launch(kernel, &p, &[q, k, v, out], grid(layout, &s, 1)?)?])
    }

    /// The kernel an attention launch of shape `s` runs in session layout `variant`.
    pub fn attention_layout(&self, variant: KernelVariant, s: &AttnShape) -> AttnLayout {
        match variant {
            KernelVariant::CpuLanes if s.head_dim.is_multiple_of(8) => AttnLayout::CpuLanes,
            _ if self.flash_attention() => self.flash_layout(s),
            _ => AttnLayout::Portable,
        }
    }

    /// The flash kernel for heads of `s`: K/V staged in workgroup memory where it can
    /// (`tiled_attention`, heads up to 128), else read from memory in the loops.
    pub fn flash_layout(&self, s: &AttnShape) -> AttnLayout {
        if self.tiled_attention() && s.head_dim <= TILES_HEAD_DIM {
            AttnLayout::Tiles
        } else {
            AttnLayout::Flash
        }
    }

    /// Split-K attention in the flash layouts (`flash_layout`): `splits` workgroups share each (head, 16 rows),
    /// each walking one slice of the keys into `scratch` (`attention_split_out.wgsl`), then
    /// `attention_merge.wgsl` writes `out`. `types`: how K/V are stored and `out`'s elements.
    #[allow(clippy::too_many_arguments)]
    pub fn attention_split(
        &self,
        q: &wgpu::Buffer,
        k: &wgpu::Buffer,
        v: &wgpu::Buffer,
        out: &wgpu::Buffer,
        s: AttnShape,
        mask: AttnMask,
        types: [KvType; 2],
        scratch: &wgpu::Buffer,
        splits: usize,
    ) -> Result<Vec<Launch>> {
        let [kv, out_t] = types;
        self.check_kv(kv)?;
        self.check_kv(out_t)?;
        if !(1..=64).contains(&splits) {
            return Err(Error::Input(format!("split-K attention takes 1 to 64 key slices, not {splits}")));
        }
        let need = s.split_bytes(splits);
        if scratch.size() < need {
            return Err(Error::Gpu(format!("internal: split-K attention needs {need} bytes of scratch; {} were planned", scratch.size())));
        }
        let p = params(&s, &mask, splits)?;
        let layout = self.flash_layout(&s);
        let kernel = Kernel::Attention { layout, wide: s.head_dim > 256, split: true, kv, out: KvType::F32 };
        let split = self.launch(kernel, &p, &[q, k, v, scratch], grid(layout, &s, splits)?)?;
        let mp = [u32_of("lq", s.lq)?, s.n_heads as u32, s.head_dim as u32, splits as u32];
        let n = s.lq * s.n_heads * s.head_dim;
        let merge = self.launch(Kernel::AttentionMerge { out: out_t }, &mp, &[scratch, out], groups_1d(n))?;
        Ok(vec![split, merge])
    }

    /// `dst[dst0 + i] = f16(src[i])` for `n` values: new K or V rows into half-precision K/V.
    pub fn kv_store(&self, src: &wgpu::Buffer, dst: &wgpu::Buffer, n: usize, dst0: usize) -> Result<Launch> {
        self.check_kv(KvType::F16)?;
        u32_of("K/V size", dst0 + n)?;
        self.launch(Kernel::KvStore, &[u32_of("n", n)?, u32_of("dst0", dst0)?, 0, 0], &[src, dst], groups_1d(n))
    }

    /// `kv` if this adapter can store and read it, else an error saying why.
    pub fn check_kv(&self, kv: KvType) -> Result<KvType> {
        if kv == KvType::F16 && !self.report.shader_f16 {
            return Err(Error::Gpu(format!("{}: f16 K/V needs the shader-f16 feature, which this adapter lacks; use f32 K/V", self.report.name)));
        }
        Ok(kv)
    }
}
