//! Streaming a model from its files onto the GPU: tensor by tensor, in pieces of a few MB,
//! quantizing on the way when asked (e.g. the bf16 safetensors release → Q4_0), so the whole
//! model is never in host (or wasm) memory. Progress is reported in bytes read; a GPU error
//! (out of memory, device lost) stops the load at the tensor where it happened.

use crate::error::{Error, Result};
use crate::forward::{GpuLayer, GpuModel, GpuWeight};
use crate::gpu::Gpu;
use crate::model::source::ByteSource;
use crate::model::tensor::decode;
use crate::model::{DType, HostTensor, ModelIndex, TensorRef};
use crate::plan::target_dtype;
use std::sync::Arc;

/// Source bytes read (and converted) at a time.
const PIECE_BYTES: usize = 8 << 20;

struct Loader<'a, S: ByteSource> {
    gpu: &'a Gpu,
    src: &'a S,
    quant: Option<DType>,
    piece_bytes: usize,
    done: u64,
    total: u64,
    progress: &'a mut dyn FnMut(u64, u64),
}

impl<S: ByteSource> Loader<'_, S> {
    /// A norm vector, as f32.
    async fn norm(&mut self, t: &TensorRef) -> Result<wgpu::Buffer> {
        let bytes = self.src.read(t.file, t.offset, t.bytes() as usize).await?;
        self.done += t.bytes();
        self.gpu.upload_f32(&t.name, &decode(t.dtype, &bytes, t.cols))
    }

    /// A weight matrix, converted to its target format, split into chunks of one binding.
    async fn matrix(&mut self, what: &str, t: &TensorRef) -> Result<GpuWeight> {
        let dtype = target_dtype(t, self.quant)?;
        let (src_row, row) = (t.row_bytes(), dtype.row_bytes(t.cols).expect("checked by target_dtype"));
        let per_chunk = (self.gpu.max_binding() as usize / row).min(t.rows);
        if per_chunk == 0 {
            return Err(Error::Limits(format!("{what}: one row takes {row} bytes, more than the adapter binds ({})", self.gpu.max_binding())));
        }
        // Rows per piece: a multiple of `align` keeps every write at a 4-byte boundary.
        let align = 4 / gcd(row, 4);
        let per_piece = ((self.piece_bytes / src_row).max(1).div_ceil(align) * align).min(per_chunk.div_ceil(align) * align);
        let mut chunks = Vec::new();
        let mut r0 = 0;
        while r0 < t.rows {
            let n = per_chunk.min(t.rows - r0);
            let buf = self.gpu.storage(what, (n * row) as u64)?;
            let mut r = 0;
            while r < n {
                let k = per_piece.min(n - r);
                let bytes = self.src.read(t.file, t.offset + ((r0 + r) * src_row) as u64, k * src_row).await?;
                let piece = HostTensor { dtype: t.dtype, rows: k, cols: t.cols, data: bytes };
                let mut data = if dtype == t.dtype { piece.data } else { piece.convert(dtype).expect("checked by target_dtype").data };
                data.resize(data.len().div_ceil(4) * 4, 0);
                self.gpu.queue.write_buffer(&buf, (r * row) as u64, &data);
                r += k;
                self.done += (k * src_row) as u64;
                (self.progress)(self.done, self.total);
                self.flush()?;
            }
            chunks.push((buf, r0, n));
            r0 += n;
        }
        self.gpu.take_fault().map_err(|e| Error::Gpu(format!("while loading {what}: {e}")))?;
        Ok(GpuWeight { dtype, rows: t.rows, cols: t.cols, chunks })
    }

    /// Hands the written pieces to the GPU so their staging memory is freed as we go.
    fn flush(&self) -> Result<()> {
        self.gpu.queue.submit([]);
        #[cfg(not(target_arch = "wasm32"))]
        self.gpu.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| Error::Gpu(format!("waiting for the GPU failed: {e}")))?;
        Ok(())
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl GpuModel {
    /// Streams the model of `index` from `src` onto `gpu`, matrices converted to `quant` when
    /// given; `progress(bytes read, bytes total)` after each piece.
    pub async fn load<S: ByteSource>(gpu: Arc<Gpu>, index: &ModelIndex, src: &S, quant: Option<DType>, progress: &mut dyn FnMut(u64, u64)) -> Result<GpuModel> {
        Self::load_in_pieces(gpu, index, src, quant, PIECE_BYTES, progress).await
    }

    /// `load` reading at most `piece_bytes` of a tensor at a time (tests use tiny pieces).
    pub async fn load_in_pieces<S: ByteSource>(gpu: Arc<Gpu>, index: &ModelIndex, src: &S, quant: Option<DType>, piece_bytes: usize, progress: &mut dyn FnMut(u64, u64)) -> Result<GpuModel> {
        let total = index.file_bytes();
        let mut l = Loader { gpu: &gpu, src, quant, piece_bytes, done: 0, total, progress };
        (l.progress)(0, total);
        let embed = l.matrix("the embedding", &index.embed).await?;
        let mut layers = Vec::with_capacity(index.layers.len());
        for (i, t) in index.layers.iter().enumerate() {
            let name = |n: &str| format!("layer {i} {n}");
            layers.push(GpuLayer {
                attn_norm: l.norm(&t.attn_norm).await?,
                wq: l.matrix(&name("q_proj"), &t.wq).await?,
                wk: l.matrix(&name("k_proj"), &t.wk).await?,
                wv: l.matrix(&name("v_proj"), &t.wv).await?,
                wo: l.matrix(&name("attn_out"), &t.wo).await?,
                ff_norm: l.norm(&t.ff_norm).await?,
                w_gate: l.matrix(&name("ff_proj"), &t.w_gate).await?,
                w_up: l.matrix(&name("up_proj"), &t.w_up).await?,
                w_down: l.matrix(&name("ff_out"), &t.w_down).await?,
            });
        }
        let ln_f = l.norm(&index.ln_f).await?;
        let lm_head = l.matrix("the LM head", &index.lm_head).await?;
        gpu.take_fault()?;
        (l.progress)(total, total);
        Ok(GpuModel::from_parts(gpu.clone(), index.config.clone(), index.rope, embed, layers, ln_f, lm_head))
    }
}
