//! The model on the GPU (`GpuModel`): immutable weights, shared by every session, and the one
//! way they get there: streamed from a `ByteSource` (files, a page's `File`s, or host tensors
//! in memory) tensor by tensor in pieces of a few MB, converted on the way by the family's
//! quantization policy, each matrix split by rows into chunks that fit one storage binding.

use crate::error::{Error, Result};
use crate::gpu::kernels::{Epilogue, KernelVariant, KvType, Launch, MatmulIo};
use crate::gpu::Gpu;
use crate::model::arch::{Key, Quant, TensorSpec, Tensors};
use crate::model::source::ByteSource;
use crate::model::{DType, HostTensor, ModelConfig, ModelIndex, ModelWeights, Role, RopeStyle, TensorRef};
use std::sync::Arc;

/// Source bytes read (and converted) at a time.
pub const PIECE_BYTES: usize = 8 << 20;

/// How a matrix of `rows` rows of `row_bytes` bytes is split into buffers of at most
/// `max_binding` bytes: (first row, row count) per chunk, each a whole number of `group` rows
/// (1, or one expert's rows of stacked experts, which the grouped kernel needs whole), at least
/// one group each (a group wider than a binding is refused by `check_row`). The memory plan and
/// the loader both use it, so the plan's weight bytes are the loader's.
pub fn chunk_rows(rows: usize, row_bytes: usize, max_binding: u64, group: usize) -> Vec<(usize, usize)> {
    let group = group.max(1);
    let groups = (max_binding / (row_bytes.max(1) as u64 * group as u64)).clamp(1, rows.div_ceil(group).max(1) as u64) as usize;
    let per_chunk = groups * group;
    (0..rows).step_by(per_chunk).map(|r| (r, per_chunk.min(rows - r))).collect()
}

/// Rows of `t` that one chunk must keep together (see `chunk_rows`).
pub fn chunk_group(spec: &TensorSpec, rows: usize, config: &ModelConfig) -> usize {
    if spec.experts {
        rows / config.n_experts.max(1)
    } else {
        1
    }
}

/// A row of `row_bytes` must fit one binding.
fn check_row(what: &str, row_bytes: usize, max_binding: u64) -> Result<()> {
    if row_bytes as u64 > max_binding {
        return Err(Error::Limits(format!("{what}: one row takes {row_bytes} bytes but the adapter binds at most {max_binding} bytes per buffer")));
    }
    Ok(())
}

/// A tensor on the GPU, split by rows into chunks that each fit one storage binding (a norm
/// vector is one chunk).
pub struct GpuWeight {
    pub dtype: DType,
    pub rows: usize,
    pub cols: usize,
    /// (buffer, first row, row count)
    pub chunks: Vec<(wgpu::Buffer, usize, usize)>,
}

impl GpuWeight {
    /// `t` on the GPU as it is (tests and benchmarks; models load through `GpuModel::load`),
    /// in chunks of at most `max_bytes` (and the adapter's binding limit).
    pub fn upload(gpu: &Gpu, what: &str, t: &HostTensor, max_bytes: u64) -> Result<Self> {
        let (rb, max) = (t.row_bytes(), max_bytes.min(gpu.max_binding()));
        check_row(what, rb, max)?;
        let mut chunks = Vec::new();
        for (r0, n) in chunk_rows(t.rows, rb, max, 1) {
            chunks.push((gpu.upload(what, &t.data[r0 * rb..(r0 + n) * rb])?, r0, n));
        }
        Ok(GpuWeight { dtype: t.dtype, rows: t.rows, cols: t.cols, chunks })
    }

    /// `y[m, :] (+)= x[m, :] · Wᵀ` (or gated: `epilogue`), one launch per chunk; `y_offset` is where output row 0
    /// starts (elements), `y_stride` the elements between output rows.
    #[allow(clippy::too_many_arguments)]
    pub fn matmul(
        &self,
        gpu: &Gpu,
        variant: KernelVariant,
        x: &wgpu::Buffer,
        x_offset: usize,
        m: usize,
        y: &wgpu::Buffer,
        y_offset: usize,
        y_stride: usize,
        epilogue: Epilogue,
    ) -> Result<Vec<Launch>> {
        let io = MatmulIo { x, x_offset, y, y_offset, y_stride, epilogue, norm: None, rope: None, x_f16: false, y_f16: false };
        self.matmul_split_k(gpu, variant, m, io, None)
    }

    /// `matmul` with `io` (its `y_offset`: where output column 0 of row 0 goes; a norm may be
    /// folded in), each chunk split across the shared dimension where the device splits it and
    /// `scratch` has room (`Gpu::matmul_auto`). RoPE (`io.rope`) is each launch's where the
    /// weight is one chunk, else a pass after them all (a pair's dimensions may lie in two).
    pub fn matmul_split_k(&self, gpu: &Gpu, variant: KernelVariant, m: usize, io: MatmulIo<'_>, scratch: Option<&wgpu::Buffer>) -> Result<Vec<Launch>> {
        let one = self.chunks.len() == 1;
        let mut out = Vec::new();
        for (buf, row0, rows) in &self.chunks {
            let chunk = MatmulIo { y_offset: io.y_offset + row0, rope: io.rope.filter(|_| one), ..io };
            out.extend(gpu.matmul_auto(variant, self.dtype, buf, m, *rows, self.cols, chunk, scratch)?);
        }
        if !one {
            out.extend(gpu.rope_output(&io, m, self.rows)?);
        }
        Ok(out)
    }

    /// The attention's Q, K and V projections `w` of one input (`io`: each part's; the same x
    /// and norm, stored, rows dense at the part's width; RoPE for Q and K alike): one launch
    /// (`Gpu::matmul_qkv`) where the layout fuses and each weight is one chunk, else three
    /// matmuls. With `f16_kv`, K's and V's outputs are half-precision K/V (offsets in their
    /// elements): the one launch stores them so, as do three matmuls' merges where they split;
    /// unsplit, they compute them into these two f32 buffers (rows from 0) and `kv_store`
    /// passes store them. With `bias` each output gets its bias before RoPE: in the one
    /// launch's store, else by passes of their own (then RoPE passes and, with f16 K/V, K/V
    /// stores).
    #[allow(clippy::too_many_arguments)]
    pub fn qkv(
        gpu: &Gpu,
        variant: KernelVariant,
        w: [&GpuWeight; 3],
        m: usize,
        io: [MatmulIo<'_>; 3],
        scratch: Option<&wgpu::Buffer>,
        f16_kv: Option<[&wgpu::Buffer; 2]>,
        bias: Option<QkvBias<'_>>,
    ) -> Result<Vec<Launch>> {
        let one_chunk = w.iter().all(|t| t.chunks.len() == 1 && t.cols == w[0].cols);
        // One launch turns Q and K alike (`io[0].rope`), never V.
        let rope_alike = io[0].rope.is_some() == io[1].rope.is_some() && io[2].rope.is_none();
        if gpu.fuses_qkv(variant) && one_chunk && rope_alike {
            let parts = w.map(|t| (&t.chunks[0].0, t.dtype, t.rows));
            let kv_type = if f16_kv.is_some() { KvType::F16 } else { KvType::F32 };
            let kv = [(io[1].y, io[1].y_offset), (io[2].y, io[2].y_offset)];
            return gpu.matmul_qkv(parts, m, w[0].cols, io[0], kv, kv_type, scratch, bias.map(|b| (b.joined, b.at)));
        }
        let mut out = Vec::new();
        if let Some(b) = bias {
            // Each output in f32 (K and V through the staging for f16 K/V), its bias, its RoPE,
            // then K/V stores.
            for (i, (t, io)) in w.into_iter().zip(io).enumerate() {
                let staging = f16_kv.filter(|_| i > 0).map(|s| s[i - 1]);
                let dst = match staging {
                    Some(s) => MatmulIo { y: s, y_offset: 0, ..io },
                    None => io,
                };
                out.extend(t.matmul_split_k(gpu, variant, m, MatmulIo { rope: None, ..dst }, scratch)?);
                out.push(gpu.bias(b.parts[i].vector(), dst.y, m, t.rows, dst.y_offset / t.rows)?);
                out.extend(gpu.rope_output(&dst, m, t.rows)?);
                if let Some(s) = staging {
                    out.push(gpu.kv_store(s, io.y, m * io.y_stride, io.y_offset)?);
                }
            }
            return Ok(out);
        }
        for (i, (t, io)) in w.into_iter().zip(io).enumerate() {
            match f16_kv.filter(|_| i > 0) {
                Some(staging) => {
                    // Split, the merge rounds into the K/V itself; else through the staging.
                    let direct = match (&t.chunks[..], gpu.split_room(variant, m, t.rows, t.cols, scratch)) {
                        ([(buf, _, _)], Some((split, s))) => Some(gpu.matmul_split(t.dtype, buf, m, t.rows, t.cols, io, s, split, KvType::F16)?),
                        _ => None,
                    };
                    match direct {
                        Some(ls) => out.extend(ls),
                        None => {
                            out.extend(t.matmul_split_k(gpu, variant, m, MatmulIo { y: staging[i - 1], y_offset: 0, ..io }, scratch)?);
                            out.push(gpu.kv_store(staging[i - 1], io.y, m * io.y_stride, io.y_offset)?);
                        }
                    }
                }
                None => out.extend(t.matmul_split_k(gpu, variant, m, io, scratch)?),
            }
        }
        Ok(out)
    }

    /// A gated MLP's gate and up projections `w` of one input into `io.y` (whose epilogue,
    /// `Epilogue::Gated`, names the activation): one launch (`Gpu::matmul_glu`, split across k
    /// where the device splits it) where the layout fuses, each weight is one chunk and the
    /// scratch has room for its split; else the gate projection, then the up projection gating
    /// it.
    pub fn gate_up(gpu: &Gpu, variant: KernelVariant, w: [&GpuWeight; 2], m: usize, io: MatmulIo<'_>, scratch: Option<&wgpu::Buffer>) -> Result<Vec<Launch>> {
        let [gate, up] = w;
        let same = gate.chunks.len() == 1 && up.chunks.len() == 1 && (gate.rows, gate.cols) == (up.rows, up.cols);
        // Fused where its split (if any) has room in the scratch: else two matmuls split.
        let width = crate::gpu::matmul::glu_width(gate.rows);
        let split = gpu.matmul_split_of(variant, m, width, gate.cols);
        let room = split.splits == 1 || scratch.is_some_and(|s| s.size() >= split.bytes(m, width));
        if gpu.fuses(variant) && same && room {
            return gpu.matmul_glu([(&gate.chunks[0].0, gate.dtype), (&up.chunks[0].0, up.dtype)], m, gate.rows, gate.cols, io, scratch);
        }
        if io.y_f16 {
            return Err(crate::error::Error::Gpu("internal: gate and up into f16 need the fused launch".into()));
        }
        let mut out = gate.matmul_split_k(gpu, variant, m, MatmulIo { epilogue: Epilogue::Store, ..io }, scratch)?;
        out.extend(up.matmul_split_k(gpu, variant, m, io, scratch)?);
        Ok(out)
    }

    /// The first chunk's buffer: the whole tensor for a vector (norms).
    pub fn vector(&self) -> &wgpu::Buffer {
        &self.chunks[0].0
    }

    pub fn bytes(&self) -> u64 {
        self.chunks.iter().map(|c| c.0.size()).sum()
    }
}

/// The q/k/v biases of `GpuWeight::qkv`: the three vectors, and the same one after another
/// from element `at` of `joined` (after the attention norm's weight: `GpuModel::qkv_bias`),
/// which the one launch reads.
#[derive(Clone, Copy)]
pub struct QkvBias<'a> {
    pub parts: [&'a GpuWeight; 3],
    pub joined: &'a wgpu::Buffer,
    pub at: usize,
}

/// The model's weights on the GPU. Immutable after loading: every generation runs in a
/// `Session` of its own (see `session.rs`), any number of them on one model.
pub struct GpuModel {
    pub gpu: Arc<Gpu>,
    pub config: ModelConfig,
    pub rope: RopeStyle,
    pub weights: Tensors<GpuWeight>,
    /// Per layer with q/k/v biases (Qwen2, Dream): the attention norm's weight, then the Q, K
    /// and V biases, in one buffer (what the one Q/K/V launch reads: `QkvBias`).
    pub qkv_bias: Vec<Option<wgpu::Buffer>>,
}

impl GpuModel {
    /// Host weights onto the GPU, each tensor in its stored format (norms as f32): the same
    /// streaming load as from files, over the tensors in memory.
    pub fn upload(gpu: Arc<Gpu>, w: &ModelWeights) -> Result<Self> {
        ready(Self::load(gpu, &w.index(), w, None, &mut |_, _| {}))
    }

    /// Streams the model of `index` from `src` onto `gpu`, tensors converted to `quant` by the
    /// family's policy (a Q4_0 load keeps the embedding and LM head in Q8_0, as `unmask convert`
    /// does); `progress(bytes read, bytes total)` after each piece.
    pub async fn load<S: ByteSource>(gpu: Arc<Gpu>, index: &ModelIndex, src: &S, quant: Option<Quant>, progress: &mut dyn FnMut(u64, u64)) -> Result<Self> {
        Self::load_in_pieces(gpu, index, src, quant, PIECE_BYTES, progress).await
    }

    /// `load` reading at most `piece_bytes` of a tensor at a time (tests use tiny pieces).
    pub async fn load_in_pieces<S: ByteSource>(
        gpu: Arc<Gpu>,
        index: &ModelIndex,
        src: &S,
        quant: Option<Quant>,
        piece_bytes: usize,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Self> {
        let mut p = Progress { done: 0, total: index.file_bytes(), report: progress };
        (p.report)(0, p.total);
        let mut loaded = Vec::new();
        // Each tensor converted to its target format, split into chunks of one binding.
        for (key, spec, t) in index.tensors.iter() {
            let dtype = target_dtype(key, spec, t, quant)?;
            let group = chunk_group(spec, t.rows, &index.config);
            loaded.push(stream_tensor(&gpu, src, t, &spec.describe(key.layer), dtype, group, piece_bytes, &mut p).await?);
        }
        gpu.take_fault()?;
        (p.report)(p.total, p.total);
        let mut it = loaded.into_iter();
        let weights = index.tensors.map(|_, _, _| it.next().expect("one per tensor"));
        let qkv_bias = joined_biases(&gpu, index.config.n_layers, &weights)?;
        Ok(GpuModel { gpu: gpu.clone(), config: index.config.clone(), rope: index.rope, weights, qkv_bias })
    }

    /// Layer `i`'s q/k/v biases for `GpuWeight::qkv`, where it has them.
    pub fn qkv_bias(&self, i: usize) -> Option<QkvBias<'_>> {
        let joined = self.qkv_bias.get(i)?.as_ref()?;
        let at = self.weights.get(Key::at(i, Role::AttnNorm))?.cols;
        let parts = [Role::QBias, Role::KBias, Role::VBias].map(|r| self.weights.get(Key::at(i, r)));
        Some(QkvBias { parts: [parts[0]?, parts[1]?, parts[2]?], joined, at })
    }

    /// Bytes of weights on the GPU.
    pub fn weight_bytes(&self) -> u64 {
        self.weights.iter().map(|(_, _, w)| w.bytes()).sum()
    }

    /// Whether every layer's MLP is a dense gated one whose gate and up fit the one gate/up
    /// launch (a chunk each, one shape): where a session may keep its matmuls' inputs in f16
    /// (`Gpu::half_inputs`; the expert kernels and the unfused gated epilogue read f32).
    pub fn dense_fused_mlps(&self) -> bool {
        let fits = |i: usize| match (self.weights.get(Key::at(i, Role::Gate)), self.weights.get(Key::at(i, Role::Up))) {
            (Some(g), Some(u)) => g.chunks.len() == 1 && u.chunks.len() == 1 && (g.rows, g.cols) == (u.rows, u.cols),
            _ => false,
        };
        self.config.n_experts == 0 && (0..self.config.n_layers).all(fits)
    }

    /// Chunks per tensor (what the memory layout of a session depends on).
    pub fn chunk_counts(&self) -> Tensors<usize> {
        self.weights.map(|_, _, w| w.chunks.len())
    }
}

/// Per layer with an attention norm and q/k/v biases: one buffer holding the norm's weight, then
/// the three biases (copied on the GPU).
fn joined_biases(gpu: &Gpu, layers: usize, w: &Tensors<GpuWeight>) -> Result<Vec<Option<wgpu::Buffer>>> {
    let mut enc = gpu.device.create_command_encoder(&Default::default());
    let mut out = Vec::with_capacity(layers);
    for i in 0..layers {
        let parts: Vec<&GpuWeight> = [Role::AttnNorm, Role::QBias, Role::KBias, Role::VBias].iter().filter_map(|&r| w.get(Key::at(i, r))).collect();
        if parts.len() < 4 {
            out.push(None);
            continue;
        }
        let bytes: Vec<u64> = parts.iter().map(|t| 4 * (t.rows * t.cols) as u64).collect();
        let joined = gpu.storage("attention norm and q/k/v biases", bytes.iter().sum())?;
        let mut at = 0;
        for (t, b) in parts.iter().zip(&bytes) {
            enc.copy_buffer_to_buffer(t.vector(), 0, &joined, at, *b);
            at += b;
        }
        out.push(Some(joined));
    }
    gpu.queue.submit([enc.finish()]);
    Ok(out)
}

/// The format tensor `t` takes on the GPU under `quant`.
pub fn target_dtype(key: Key, spec: &TensorSpec, t: &TensorRef, quant: Option<Quant>) -> Result<DType> {
    spec.target_dtype(key.layer, t.dtype, t.cols, quant)
}

/// The result of a future that never waits (a load from memory reads nothing asynchronously).
pub(crate) fn ready<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::pin::pin!(f).poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => Err(Error::Gpu("internal: a load from memory had to wait".into())),
    }
}

/// Bytes read so far of a load of `total`, reported after each piece.
pub struct Progress<'a> {
    pub done: u64,
    pub total: u64,
    pub report: &'a mut dyn FnMut(u64, u64),
}

/// Streams tensor `t` from `src` onto `gpu` in pieces of about `piece_bytes`, converted to
/// `dtype` on the way, split by rows into chunks of one binding that keep `group` rows together.
#[allow(clippy::too_many_arguments)]
pub async fn stream_tensor<S: ByteSource>(
    gpu: &Gpu,
    src: &S,
    t: &TensorRef,
    what: &str,
    dtype: DType,
    group: usize,
    piece_bytes: usize,
    progress: &mut Progress<'_>,
) -> Result<GpuWeight> {
    let src_row = t.row_bytes();
    let row = dtype.row_bytes(t.cols).ok_or_else(|| Error::model(t.name.as_str(), "row length does not suit its format"))?;
    check_row(what, row * group, gpu.max_binding())?;
    let chunks = chunk_rows(t.rows, row, gpu.max_binding(), group);
    // Rows per piece: a multiple of `align` keeps every write at a 4-byte boundary.
    let align = 4 / gcd(row, 4);
    let per_piece = (piece_bytes.max(1) / src_row.max(1)).max(1).div_ceil(align) * align;
    let mut out = Vec::with_capacity(chunks.len());
    for (r0, n) in chunks {
        let buf = gpu.storage(what, (n * row) as u64)?;
        let mut r = 0;
        while r < n {
            let k = per_piece.min(n - r);
            let mut bytes = Vec::with_capacity(k * src_row);
            for (file, offset, len) in t.spans(r0 + r, k) {
                bytes.extend(src.read(file, offset, len).await?);
            }
            let piece = HostTensor { dtype: t.dtype, rows: k, cols: t.cols, data: bytes };
            let mut data = if dtype == t.dtype {
                piece.data
            } else {
                piece.convert(dtype).ok_or_else(|| Error::Input(format!("cannot convert {what} to {}", dtype.name())))?.data
            };
            data.resize(data.len().div_ceil(4) * 4, 0);
            gpu.queue.write_buffer(&buf, (r * row) as u64, &data);
            r += k;
            progress.done += (k * src_row) as u64;
            (progress.report)(progress.done, progress.total);
            flush(gpu)?;
        }
        out.push((buf, r0, n));
    }
    gpu.take_fault().map_err(|e| Error::Gpu(format!("while loading {what}: {e}")))?;
    Ok(GpuWeight { dtype, rows: t.rows, cols: t.cols, chunks: out })
}

/// Hands the written pieces to the GPU so their staging memory is freed as we go.
fn flush(gpu: &Gpu) -> Result<()> {
    gpu.queue.submit([]);
    #[cfg(not(target_arch = "wasm32"))]
    gpu.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| Error::Gpu(format!("waiting for the GPU failed: {e}")))?;
    Ok(())
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}
