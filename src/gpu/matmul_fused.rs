//! The fused tiled matmul launches (either core: `matmul.wgsl` or `matmul_coop.wgsl`): the
//! attention's Q, K and V projections in one launch (`matmul_qkv.wgsl`, its RoPE, biases and
//! f16 K/V in the store; split-K ending in `matmul_merge_qkv.wgsl`), a gated MLP's gate and up
//! in one (`matmul_glu.wgsl`).

use super::kernel_specs::{Epilogue, KvType, RopeParams};
use super::kernels::{groups_1d, u32_of, Kernel, KernelVariant, Launch};
use super::matmul::{glu_width, MatmulIo, MatmulParams, MergeParams, RowNorm};
use super::Gpu;
use crate::error::{Error, Result};
use crate::model::DType;

impl Gpu {
    /// The Q, K and V projections of one input in one tiled launch (`matmul_qkv.wgsl`): `w` the
    /// three weights (buffer, format, rows), each `k` wide; `io` the input (a norm may be folded
    /// in) and Q's output (rows dense: `y_stride` is Q's rows; stored, no epilogue); `kv` the
    /// buffers and element offsets of K's and V's outputs, rows dense likewise, their elements
    /// `kv_type` (f16: straight into half-precision K/V); `io.rope` turns Q and K as they are
    /// stored; `bias` (a buffer and the element where Q's, K's and V's biases begin, one after
    /// another; the norm's weight before them when one is folded: `io.norm` must then name the
    /// same buffer) adds each output's bias first. Split across the shared dimension as
    /// `matmul_auto` would split one matmul of all their rows, when `scratch` has room: the
    /// slices, then one merge for the three parts (`matmul_merge_qkv.wgsl`, adding the biases
    /// and turning Q and K).
    #[allow(clippy::too_many_arguments)]
    pub fn matmul_qkv(
        &self,
        w: [(&wgpu::Buffer, DType, usize); 3],
        m: usize,
        k: usize,
        io: MatmulIo<'_>,
        kv: [(&wgpu::Buffer, usize); 2],
        kv_type: KvType,
        scratch: Option<&wgpu::Buffer>,
        bias: Option<(&wgpu::Buffer, usize)>,
    ) -> Result<Vec<Launch>> {
        self.check_kv(kv_type)?;
        self.check_io(&io, false)?;
        let [nq, nk, nv] = w.map(|p| p.2);
        if io.epilogue != Epilogue::Store || io.y_stride != nq {
            return Err(Error::Gpu("internal: the Q/K/V matmul stores rows dense at each part's width".into()));
        }
        let n = nq + nk + nv;
        let room = self.split_room(KernelVariant::Tiled, m, n, k, scratch);
        let kv_bytes = if kv_type == KvType::F16 { 2 } else { 4 };
        for (what, (buf, off), width, bytes) in [("Q", (io.y, io.y_offset), nq, 4), ("K", kv[0], nk, kv_bytes), ("V", kv[1], nv, kv_bytes)] {
            let need = bytes * (off + m * width) as u64;
            if buf.size() < need {
                return Err(Error::Gpu(format!("internal: the {what} output needs {need} bytes; its buffer has {}", buf.size())));
            }
        }
        let (_, _, mut g) = RowNorm::binding(io.norm, io.x);
        if let Some((b, at)) = bias {
            let fits = at > 0 && b.size() >= 4 * (at + n) as u64 && io.norm.is_none_or(|nw| nw.w == b && at >= k);
            if !fits {
                return Err(Error::Gpu("internal: the Q/K/V biases go after the norm's weight in one buffer".into()));
            }
            g = b;
        }
        // RoPE over Q's and K's columns (each part's heads must fit too): the store's unsplit,
        // else the merge's.
        let rope = match io.rope {
            Some(r) => {
                r.params(nq)?;
                r.params(nk)?;
                r.params(nq + nk)?
            }
            None => RopeParams::default(),
        };
        let p = MatmulParams {
            n1: nq as u32,
            n2: (nq + nk) as u32,
            y2_offset: u32_of("K offset", kv[0].1)?,
            y3_offset: u32_of("V offset", kv[1].1)?,
            bias: u32_of("bias offset", bias.map_or(0, |b| b.1))?,
            rope: if room.is_none() { rope } else { RopeParams::default() },
            ..MatmulParams::new(m, n, k, &io, room.map_or(0, |r| r.0.k_slice))?
        };
        let core = self.tiled_core(m, room.map_or(0, |r| r.0.k_slice), io.norm.is_some());
        let kernel = Kernel::MatmulQkv { dtypes: w.map(|p| p.1), short: core.short, kv: kv_type, coop: core.coop, x: io.x_type() };
        let groups = core.groups(m, n, room.map_or(1, |r| r.0.splits))?;
        let y = room.map_or(io.y, |r| r.1);
        // The norm's weight and the biases are the last binding (both cores read the biases).
        let mut out = vec![self.launch(kernel, &p, &[w[0].0, io.x, y, kv[0].0, kv[1].0, w[1].0, w[2].0, g], groups)?];
        if let Some((split, s)) = room {
            // One merge for the three parts.
            let mp = MergeParams { rope, ..MergeParams::new(m, n, split, &MatmulIo { rope: None, ..io }, k, (n, 0), false)? }.with_parts(&p);
            let b = bias.map_or(s, |b| b.0);
            out.push(self.launch(Kernel::MatmulMergeQkv { kv: kv_type }, &mp, &[s, io.y, kv[0].0, kv[1].0, b], groups_1d(m * n))?);
        }
        Ok(out)
    }

    /// A gated MLP's gate and up projections in one tiled launch (`matmul_glu.wgsl`): `y =
    /// act(x·Gateᵀ) ⊙ (x·Upᵀ)` for `m` rows, `w` the two weights (buffer, format), `n` rows
    /// each, `k` wide; `io` the input (a norm may be folded in) and the output, whose epilogue
    /// names the activation (`Epilogue::Gated`). Split across the shared dimension as
    /// `matmul_auto` would split a matmul of its tiles' width (`glu_width`), when `scratch` has
    /// room: the slices, then a merge that pairs gate and up. `io.y_f16`: the output in f16.
    pub fn matmul_glu(
        &self,
        w: [(&wgpu::Buffer, DType); 2],
        m: usize,
        n: usize,
        k: usize,
        io: MatmulIo<'_>,
        scratch: Option<&wgpu::Buffer>,
    ) -> Result<Vec<Launch>> {
        if !matches!(io.epilogue, Epilogue::Gated(_)) || io.rope.is_some() {
            return Err(Error::Gpu("internal: the gate/up matmul's epilogue is the activation".into()));
        }
        self.check_io(&io, true)?;
        u32_of("output size", io.y_offset + m.saturating_sub(1) * io.y_stride + n)?;
        let width = glu_width(n);
        let room = self.split_room(KernelVariant::Tiled, m, width, k, scratch);
        let p = MatmulParams { n1: u32_of("columns", n)?, ..MatmulParams::new(m, width, k, &io, room.map_or(0, |r| r.0.k_slice))? };
        let (_, _, g) = RowNorm::binding(io.norm, io.x);
        let core = self.tiled_core(m, room.map_or(0, |r| r.0.k_slice), io.norm.is_some());
        let (coop, short) = (core.coop, core.short);
        let groups = core.groups(m, width, room.map_or(1, |r| r.0.splits))?;
        // act(gate) · up in f16 where asked, by the store unsplit, else by the merge.
        let y_type = if io.y_f16 { KvType::F16 } else { KvType::F32 };
        let out_type = if room.is_none() { y_type } else { KvType::F32 };
        let kernel = Kernel::MatmulGlu { dtypes: w.map(|p| p.1), short, coop, x: io.x_type(), out: out_type };
        // The norm's weight is the last binding, and only the f32 core's.
        let buffers = [w[0].0, io.x, room.map_or(io.y, |r| r.1), w[1].0, g];
        let mut out = vec![self.launch(kernel, &p, &buffers[..buffers.len() - coop as usize], groups)?];
        if let Some((split, s)) = room {
            out.push(self.matmul_merge(m, n, split, io, k, (width, 0), s, true, y_type)?);
        }
        Ok(out)
    }
}
