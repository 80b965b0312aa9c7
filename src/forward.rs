//! The LLaDA forward pass on the GPU: weights uploaded once (`GpuModel::upload`), then
//! `tokens[L] → per-position (token, confidence)` and optionally `logits[L, V]`.
//!
//! The pass computes a range of rows `q0 .. q0 + n` of a canvas of `L` positions. Their K and V
//! are written into per-layer K/V buffers of all `L` positions, and attention reads those, so
//! a later pass may compute only some rows against K/V kept from an earlier one (Fast-dLLM's
//! caches). With the full range it is the exact forward of the reference.

use crate::cpu::ops::{Choice, Noise};
use crate::error::{Error, Result};
use crate::gpu::kernels::{Dispatch, MatmulIo, NoiseUniform};
use crate::gpu::Gpu;
use crate::model::{DType, HostTensor, LladaConfig, ModelWeights, RopeStyle};
use std::ops::Range;
use std::sync::{Arc, Mutex};

/// A weight matrix on the GPU, split by rows into chunks that each fit one storage binding.
pub struct GpuWeight {
    pub dtype: DType,
    pub rows: usize,
    pub cols: usize,
    /// (buffer, first row, row count)
    pub chunks: Vec<(wgpu::Buffer, usize, usize)>,
}

impl GpuWeight {
    pub fn upload(gpu: &Gpu, what: &str, t: &HostTensor) -> Result<Self> {
        Self::upload_chunked(gpu, what, t, gpu.max_binding())
    }

    /// Like `upload`, with chunks of at most `max_bytes` (tests use it to force splits).
    pub fn upload_chunked(gpu: &Gpu, what: &str, t: &HostTensor, max_bytes: u64) -> Result<Self> {
        let row_bytes = t.row_bytes();
        let per_chunk = (max_bytes.min(gpu.max_binding()) as usize / row_bytes.max(1)).min(t.rows);
        if per_chunk == 0 {
            return Err(Error::Limits(format!("{what}: one row takes {row_bytes} bytes, more than the adapter binds ({})", gpu.max_binding())));
        }
        let mut chunks = Vec::new();
        let mut r = 0;
        while r < t.rows {
            let n = per_chunk.min(t.rows - r);
            let buf = gpu.upload(what, &t.data[r * row_bytes..(r + n) * row_bytes])?;
            chunks.push((buf, r, n));
            r += n;
        }
        Ok(GpuWeight { dtype: t.dtype, rows: t.rows, cols: t.cols, chunks })
    }

    /// `y[m, :] (+)= x[m, :] · Wᵀ`, one dispatch per chunk; `y_row` is where output row 0 starts.
    #[allow(clippy::too_many_arguments)]
    pub fn matmul(&self, gpu: &Gpu, x: &wgpu::Buffer, x_offset: usize, m: usize, y: &wgpu::Buffer, y_offset: usize, y_stride: usize, accumulate: bool) -> Result<Vec<Dispatch>> {
        self.chunks
            .iter()
            .map(|(buf, row0, rows)| gpu.matmul(self.dtype, buf, m, *rows, self.cols, MatmulIo { x, x_offset, y, y_offset: y_offset + row0, y_stride, accumulate }))
            .collect()
    }

    pub fn bytes(&self) -> u64 {
        self.chunks.iter().map(|c| c.0.size()).sum()
    }
}

pub(crate) struct GpuLayer {
    pub(crate) attn_norm: wgpu::Buffer,
    pub(crate) wq: GpuWeight,
    pub(crate) wk: GpuWeight,
    pub(crate) wv: GpuWeight,
    pub(crate) wo: GpuWeight,
    pub(crate) ff_norm: wgpu::Buffer,
    pub(crate) w_gate: GpuWeight,
    pub(crate) w_up: GpuWeight,
    pub(crate) w_down: GpuWeight,
}

/// The model's weights on the GPU, ready to run forward passes.
pub struct GpuModel {
    pub gpu: Arc<Gpu>,
    pub config: LladaConfig,
    pub rope: RopeStyle,
    embed: GpuWeight,
    layers: Vec<GpuLayer>,
    ln_f: wgpu::Buffer,
    lm_head: GpuWeight,
    /// Plans by (canvas length, first row, end row), and the per-layer K/V buffers they share.
    plans: Mutex<Plans>,
}

#[derive(Default)]
struct Plans {
    len: usize,
    kv: Arc<Vec<(wgpu::Buffer, wgpu::Buffer)>>,
    by_rows: std::collections::HashMap<(usize, usize), Arc<Plan>>,
}

/// The logits buffer holds at most this much (LLaDA-8B: 132 rows of 126464 logits).
pub const LOGIT_CHUNK_BYTES: u64 = 64 << 20;

/// Rows of logits computed at a time: the logits buffer fits one binding and `LOGIT_CHUNK_BYTES`.
pub fn head_rows(max_binding: u64, vocab: usize, rows: usize) -> usize {
    ((max_binding.min(LOGIT_CHUNK_BYTES) / (vocab as u64 * 4)).max(1) as usize).min(rows)
}

/// Choices as `select.wgsl` writes them: 4 words per row (token, prob, entropy, margin).
fn choices_from(bytes: &[u8]) -> Vec<Choice> {
    let words: Vec<u32> = bytemuck::pod_collect_to_vec(bytes);
    words.chunks_exact(4).map(|w| Choice { token: w[0], prob: f32::from_bits(w[1]), entropy: f32::from_bits(w[2]), margin: f32::from_bits(w[3]) }).collect()
}

/// What one forward pass returns for the rows it computed.
pub struct ForwardOutput {
    /// One per computed row.
    pub choices: Vec<Choice>,
    /// `[rows, vocab]`, only when asked for.
    pub logits: Option<Vec<f32>>,
}

/// Activation buffers and recorded dispatches for one (canvas length, computed rows): built once
/// and reused by every pass with the same shape.
struct Plan {
    tokens: wgpu::Buffer,
    positions: wgpu::Buffer,
    noise: wgpu::Buffer,
    choices: wgpu::Buffer,
    /// The final normalized activations (the LM head's input).
    h: wgpu::Buffer,
    logits: wgpu::Buffer,
    body: Vec<Dispatch>,
    /// LM head and token selection for row chunks: (dispatches, first row, row count).
    head: Vec<(Vec<Dispatch>, usize, usize)>,
    /// The guided head (classifier-free guidance) for one scale, built when first asked for.
    guided: Mutex<Option<(u32, Arc<GuidedHead>)>>,
}

/// Classifier-free guidance for a full-canvas plan: the unconditional pass's final activations
/// are kept in `h_uncond`; per row chunk, both LM heads run, `cfg_mix` mixes the logits in place
/// and `select` picks from the mix, so guided steps read back choices only.
struct GuidedHead {
    h_uncond: wgpu::Buffer,
    _logits_u: wgpu::Buffer,
    head: Vec<Vec<Dispatch>>,
}

impl GpuModel {
    /// Uploads `w` to the GPU (each matrix in its stored format).
    pub fn upload(gpu: Arc<Gpu>, w: &ModelWeights) -> Result<Self> {
        Self::upload_with_progress(gpu, w, &mut |_, _| {})
    }

    /// Like `upload`, calling `progress(bytes done, bytes total)` after each layer.
    pub fn upload_with_progress(gpu: Arc<Gpu>, w: &ModelWeights, progress: &mut dyn FnMut(u64, u64)) -> Result<Self> {
        let g = &gpu;
        let total: u64 = w.matrices().iter().map(|(_, t)| t.data.len() as u64).sum();
        let mut done = (w.embed.data.len() + w.lm_head.data.len()) as u64;
        let mut layers = Vec::with_capacity(w.layers.len());
        for (i, l) in w.layers.iter().enumerate() {
            progress(done, total);
            done += [&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down].iter().map(|t| t.data.len() as u64).sum::<u64>();
            let up = |name: &str, t: &HostTensor| GpuWeight::upload(g, &format!("layer {i} {name}"), t);
            layers.push(GpuLayer {
                attn_norm: g.upload_f32("attn_norm", &l.attn_norm)?,
                wq: up("q_proj", &l.wq)?,
                wk: up("k_proj", &l.wk)?,
                wv: up("v_proj", &l.wv)?,
                wo: up("attn_out", &l.wo)?,
                ff_norm: g.upload_f32("ff_norm", &l.ff_norm)?,
                w_gate: up("ff_proj", &l.w_gate)?,
                w_up: up("up_proj", &l.w_up)?,
                w_down: up("ff_out", &l.w_down)?,
            });
        }
        let model = GpuModel {
            embed: GpuWeight::upload(g, "embedding", &w.embed)?,
            lm_head: GpuWeight::upload(g, "LM head", &w.lm_head)?,
            ln_f: g.upload_f32("ln_f", &w.ln_f)?,
            layers,
            config: w.config.clone(),
            rope: w.rope,
            gpu: gpu.clone(),
            plans: Mutex::new(Plans::default()),
        };
        gpu.take_fault()?;
        progress(total, total);
        Ok(model)
    }

    /// Assembles a model from weights already on the GPU (see `load.rs`).
    pub(crate) fn from_parts(gpu: Arc<Gpu>, config: LladaConfig, rope: RopeStyle, embed: GpuWeight, layers: Vec<GpuLayer>, ln_f: wgpu::Buffer, lm_head: GpuWeight) -> Self {
        GpuModel { gpu, config, rope, embed, layers, ln_f, lm_head, plans: Mutex::new(Plans::default()) }
    }

    /// Bytes of weights on the GPU.
    pub fn weight_bytes(&self) -> u64 {
        let mut b = self.embed.bytes() + self.lm_head.bytes() + self.ln_f.size();
        for l in &self.layers {
            b += l.attn_norm.size() + l.ff_norm.size();
            b += [&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down].iter().map(|w| w.bytes()).sum::<u64>();
        }
        b
    }

    /// Full forward over `tokens`: every row computed.
    pub async fn forward(&self, tokens: &[u32], noise: Noise, want_logits: bool) -> Result<ForwardOutput> {
        self.forward_rows(tokens, 0..tokens.len(), noise, want_logits).await
    }

    fn check_tokens(&self, tokens: &[u32]) -> Result<()> {
        let c = &self.config;
        if tokens.is_empty() {
            return Err(Error::Input("the token sequence is empty".into()));
        }
        if tokens.len() > c.max_sequence_length {
            return Err(Error::Input(format!("{} tokens exceed the model's context of {} positions", tokens.len(), c.max_sequence_length)));
        }
        if let Some(bad) = tokens.iter().find(|&&t| t as usize >= c.vocab_size) {
            return Err(Error::Input(format!("token id {bad} is outside the vocabulary (0..{})", c.vocab_size)));
        }
        Ok(())
    }

    /// Classifier-free guidance, entirely on the GPU: a full pass over `uncond` (its final
    /// activations kept), a full pass over `cond`, then per position the choice from
    /// `u + (scale + 1)(c − u)`. Two submissions, one readback of the choices. The K/V left
    /// behind are `cond`'s.
    pub async fn forward_guided(&self, cond: &[u32], uncond: &[u32], scale: f32, noise: Noise) -> Result<Vec<Choice>> {
        self.check_tokens(cond)?;
        self.check_tokens(uncond)?;
        if cond.len() != uncond.len() {
            return Err(Error::Input(format!("guided canvases differ in length ({} and {})", cond.len(), uncond.len())));
        }
        let n = cond.len();
        let plan = self.plan_for(n, 0..n)?;
        let guided = self.guided_head(&plan, n, scale)?;
        let gpu = &self.gpu;
        let positions: Vec<u32> = (0..n as u32).collect();
        gpu.queue.write_buffer(&plan.positions, 0, bytemuck::cast_slice(&positions));
        gpu.queue.write_buffer(&plan.noise, 0, bytemuck::bytes_of(&NoiseUniform::from(noise)));
        gpu.queue.write_buffer(&plan.tokens, 0, bytemuck::cast_slice(uncond));
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        gpu.record(&mut enc, &plan.body);
        enc.copy_buffer_to_buffer(&plan.h, 0, &guided.h_uncond, 0, plan.h.size());
        gpu.queue.submit(Some(enc.finish()));

        gpu.queue.write_buffer(&plan.tokens, 0, bytemuck::cast_slice(cond));
        let choice_bytes = (n * 16) as u64;
        let staging = gpu.staging(choice_bytes);
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        gpu.record(&mut enc, &plan.body);
        for ds in &guided.head {
            gpu.record(&mut enc, ds);
        }
        enc.copy_buffer_to_buffer(&plan.choices, 0, &staging, 0, choice_bytes);
        let bytes = gpu.submit_and_map(enc, &staging, choice_bytes).await?;
        Ok(choices_from(&bytes))
    }

    fn guided_head(&self, plan: &Plan, n: usize, scale: f32) -> Result<Arc<GuidedHead>> {
        let mut slot = plan.guided.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((bits, gh)) = &*slot {
            if *bits == scale.to_bits() {
                return Ok(gh.clone());
            }
        }
        let (g, c) = (&*self.gpu, &self.config);
        let (d, v) = (c.d_model, c.vocab_size);
        let h_uncond = g.storage("unconditional activations", (n * d * 4) as u64)?;
        let rows = head_rows(g.max_binding(), v, n);
        let logits_u = g.storage("unconditional logits", (rows * v * 4) as u64)?;
        let mut head = Vec::new();
        for r0 in (0..n).step_by(rows) {
            let rc = rows.min(n - r0);
            let mut ds = self.lm_head.matmul(g, &h_uncond, r0 * d, rc, &logits_u, 0, v, false)?;
            ds.extend(self.lm_head.matmul(g, &plan.h, r0 * d, rc, &plan.logits, 0, v, false)?);
            ds.push(g.cfg_mix(&plan.logits, &logits_u, rc * v, scale)?);
            ds.push(g.select(&plan.logits, &plan.choices, &plan.noise, rc, v, r0, r0)?);
            head.push(ds);
        }
        g.take_fault()?;
        let gh = Arc::new(GuidedHead { h_uncond, _logits_u: logits_u, head });
        *slot = Some((scale.to_bits(), gh.clone()));
        Ok(gh)
    }

    /// Computes rows `rows` of the canvas `tokens` (see the module comment); K/V of the other
    /// rows are those left by the previous pass of the same canvas length.
    pub async fn forward_rows(&self, tokens: &[u32], rows: Range<usize>, noise: Noise, want_logits: bool) -> Result<ForwardOutput> {
        self.check_tokens(tokens)?;
        let c = &self.config;
        if rows.start >= rows.end || rows.end > tokens.len() {
            return Err(Error::Input(format!("row range {rows:?} is not inside the canvas of {}", tokens.len())));
        }
        let plan = self.plan_for(tokens.len(), rows.clone())?;
        let gpu = &self.gpu;
        let n = rows.len();
        let positions: Vec<u32> = rows.clone().map(|p| p as u32).collect();
        gpu.queue.write_buffer(&plan.tokens, 0, bytemuck::cast_slice(&tokens[rows.clone()]));
        gpu.queue.write_buffer(&plan.positions, 0, bytemuck::cast_slice(&positions));
        gpu.queue.write_buffer(&plan.noise, 0, bytemuck::bytes_of(&NoiseUniform::from(noise)));

        let v = c.vocab_size;
        let choice_bytes = (n * 16) as u64;
        let logit_bytes = if want_logits { (n * v * 4) as u64 } else { 0 };
        let staging = gpu.staging(choice_bytes + logit_bytes);
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        gpu.record(&mut enc, &plan.body);
        for (dispatches, r0, rc) in &plan.head {
            gpu.record(&mut enc, dispatches);
            if want_logits {
                enc.copy_buffer_to_buffer(&plan.logits, 0, &staging, choice_bytes + (r0 * v * 4) as u64, (rc * v * 4) as u64);
            }
        }
        enc.copy_buffer_to_buffer(&plan.choices, 0, &staging, 0, choice_bytes);
        let bytes = gpu.submit_and_map(enc, &staging, choice_bytes + logit_bytes).await?;
        let choices = choices_from(&bytes[..choice_bytes as usize]);
        let logits = want_logits.then(|| bytemuck::pod_collect_to_vec(&bytes[choice_bytes as usize..]));
        Ok(ForwardOutput { choices, logits })
    }

    /// GPU time per kernel kind (ms, summed over the pass) of one full forward over `tokens`,
    /// from timestamp queries; None when the adapter has none. For benchmarks: every kernel
    /// runs in its own pass, so the total is a little above a normal pass's.
    pub async fn profile(&self, tokens: &[u32]) -> Result<Option<Vec<(String, f64)>>> {
        self.forward(tokens, Noise { temperature: 0.0, seed: 0, salt: 0 }, false).await?; // checks, plan, K/V
        let plan = self.plan_for(tokens.len(), 0..tokens.len())?;
        let all: Vec<&Dispatch> = plan.body.iter().chain(plan.head.iter().flat_map(|h| h.0.iter())).collect();
        let Some(ms) = self.gpu.time_dispatches(&all).await? else { return Ok(None) };
        let mut by_kind: Vec<(String, f64)> = Vec::new();
        for (d, t) in all.iter().zip(ms) {
            let name = match d.kernel {
                crate::gpu::kernels::Kernel::Matmul { dtype, .. } => format!("matmul {}", dtype.name()),
                crate::gpu::kernels::Kernel::Attention { .. } => "attention".into(),
                k => format!("{k:?}").to_lowercase(),
            };
            match by_kind.iter_mut().find(|(n, _)| *n == name) {
                Some(e) => e.1 += t,
                None => by_kind.push((name, t)),
            }
        }
        Ok(Some(by_kind))
    }

    fn plan_for(&self, len: usize, rows: Range<usize>) -> Result<Arc<Plan>> {
        let mut plans = self.plans.lock().unwrap_or_else(|p| p.into_inner());
        if plans.len != len {
            // A new canvas length: new K/V buffers, and no plan made for the old one still fits.
            *plans = Plans::default();
            let bytes = (len * self.config.kv_dim() * 4) as u64;
            let kv = (0..self.layers.len()).map(|_| Ok((self.gpu.storage("keys", bytes)?, self.gpu.storage("values", bytes)?))).collect::<Result<Vec<_>>>()?;
            *plans = Plans { len, kv: Arc::new(kv), by_rows: Default::default() };
        }
        if let Some(p) = plans.by_rows.get(&(rows.start, rows.end)) {
            return Ok(p.clone());
        }
        let plan = Arc::new(self.build_plan(len, rows.clone(), &plans.kv)?);
        self.gpu.take_fault()?;
        plans.by_rows.insert((rows.start, rows.end), plan.clone());
        Ok(plan)
    }

    /// Allocates the activations and records the whole pass, top to bottom.
    fn build_plan(&self, len: usize, rows: Range<usize>, kv_bufs: &[(wgpu::Buffer, wgpu::Buffer)]) -> Result<Plan> {
        let (g, c) = (&*self.gpu, &self.config);
        let (n, q0) = (rows.len(), rows.start);
        let (d, kv, hd, hid, v) = (c.d_model, c.kv_dim(), c.head_dim(), c.mlp_hidden_size, c.vocab_size);
        let f = |what: &str, elems: usize| g.storage(what, (elems * 4) as u64);
        let tokens = f("tokens", n)?;
        let positions = f("positions", n)?;
        let x = f("residual stream", n * d)?;
        let h = f("normed activations", n * d)?;
        let q = f("queries", n * d)?;
        let attn = f("attention output", n * d)?;
        let gate = f("MLP gate", n * hid)?;
        let up = f("MLP up", n * hid)?;
        let choices = f("choices", n * 4)?;
        let noise = g.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("noise"),
            size: std::mem::size_of::<NoiseUniform>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let head_rows = head_rows(g.max_binding(), v, n);
        let logits = f("logits", head_rows * v)?;

        let mut body = Vec::new();
        for (buf, row0, count) in &self.embed.chunks {
            body.push(g.embed(self.embed.dtype, buf, *row0, *count, d, &tokens, n, &x)?);
        }
        for (layer, (k_all, v_all)) in self.layers.iter().zip(kv_bufs) {
            // k_all, v_all: the K/V of all `len` positions; this pass writes rows q0 .. q0 + n.
            body.push(g.rmsnorm(&layer.attn_norm, &x, &h, n, d, c.rms_norm_eps)?);
            body.extend(layer.wq.matmul(g, &h, 0, n, &q, 0, d, false)?);
            body.extend(layer.wk.matmul(g, &h, 0, n, k_all, q0 * kv, kv, false)?);
            body.extend(layer.wv.matmul(g, &h, 0, n, v_all, q0 * kv, kv, false)?);
            body.push(g.rope(&q, &positions, 0, n, c.n_heads, hd, c.rope_theta, self.rope)?);
            body.push(g.rope(k_all, &positions, q0, n, c.n_kv_heads, hd, c.rope_theta, self.rope)?);
            body.push(g.attention(&q, k_all, v_all, &attn, n, len, c.n_heads, c.n_kv_heads, hd)?);
            body.extend(layer.wo.matmul(g, &attn, 0, n, &x, 0, d, true)?);
            body.push(g.rmsnorm(&layer.ff_norm, &x, &h, n, d, c.rms_norm_eps)?);
            body.extend(layer.w_gate.matmul(g, &h, 0, n, &gate, 0, hid, false)?);
            body.extend(layer.w_up.matmul(g, &h, 0, n, &up, 0, hid, false)?);
            body.push(g.swiglu(&gate, &up, n * hid)?);
            body.extend(layer.w_down.matmul(g, &gate, 0, n, &x, 0, d, true)?);
        }
        body.push(g.rmsnorm(&self.ln_f, &x, &h, n, d, c.rms_norm_eps)?);

        let mut head = Vec::new();
        for r0 in (0..n).step_by(head_rows) {
            let rc = head_rows.min(n - r0);
            let mut ds = self.lm_head.matmul(g, &h, r0 * d, rc, &logits, 0, v, false)?;
            ds.push(g.select(&logits, &choices, &noise, rc, v, q0 + r0, r0)?);
            head.push((ds, r0, rc));
        }
        Ok(Plan { tokens, positions, noise, choices, h, logits, body, head, guided: Mutex::new(None) })
    }
}
