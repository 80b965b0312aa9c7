//! A session: everything one generation needs on top of the immutable model (llama.cpp's
//! context beside its model): the activation buffers and per-layer K/V of its canvas, the
//! kernel parameters of its passes, and a readback buffer, all allocated once by `Session::new`
//! from `SessionLayout` (so the memory plan is what it allocates), then reused by every pass.
//! Sessions on one model never share state.
//!
//! A pass runs `graph::body` for rows `q0 .. q0 + n` of a canvas of `L` positions (its last
//! layer, after K/V, and the final norm for the rows it is asked to predict: the sampler's
//! block) and `graph::head` for those rows, and returns their choices (and logits when asked).
//! Passes are recorded once per shape into one of two slots (the full canvas; the latest row
//! range) and replayed.

use crate::choice::{Choice, Noise};
use crate::engine::graph::{self, Buf, Op};
use crate::engine::layout::{SessionConfig, SessionLayout};
use crate::engine::plan::{check_budget, human};
use crate::engine::weights::{GpuModel, GpuWeight};
use crate::error::{Error, Result};
use crate::gpu::kernels::{
    AttnMask, AttnShape, Dispatch, Epilogue, HeadPass, KvType, Launch, MatmulIo, MoeIo, MoeShape, NoiseUniform, QkRope, RopeSpec, RowNorm,
};
use crate::model::arch::Role;
use std::collections::HashMap;
use std::ops::Range;

mod bench;

/// What one forward pass returns for the rows it computed.
pub struct ForwardOutput {
    /// One per computed row.
    pub choices: Vec<Choice>,
    /// `[rows, vocab]`, only when asked for.
    pub logits: Option<Vec<f32>>,
}

/// A recorded pass: rows `rows` of a canvas of `len`, logits and choices for rows `out`.
struct Pass {
    len: usize,
    rows: Range<usize>,
    out: Range<usize>,
    body: Vec<Dispatch>,
    /// LM head and token selection per chunk of `out`: (dispatches, first row, row count).
    head: Vec<(Vec<Dispatch>, usize, usize)>,
    /// Multiply-adds of the body and of the head (`graph::multiply_adds`).
    madds: (u64, u64),
}

impl Pass {
    /// Its dispatches in order: the body, then each head chunk's.
    fn dispatches(&self) -> impl Iterator<Item = &Dispatch> {
        self.body.iter().chain(self.head.iter().flat_map(|h| h.0.iter()))
    }
}

/// The guided head (classifier-free guidance) for a canvas length, scale and rows `out`.
struct Guided {
    len: usize,
    scale_bits: u32,
    out: Range<usize>,
    head: Vec<Vec<Dispatch>>,
    madds: u64,
}

pub struct Session<'m> {
    model: &'m GpuModel,
    config: SessionConfig,
    layout: SessionLayout,
    bufs: HashMap<Buf, wgpu::Buffer>,
    /// Noise uniform, then the parameter slots of each pass (`SessionLayout::pass_slot`).
    params: wgpu::Buffer,
    staging: wgpu::Buffer,
    /// The canvas length whose K/V the per-layer buffers hold (0: none yet).
    kv_len: usize,
    /// Slot 0: the full pass; slot 1: the latest row-range pass.
    passes: [Option<Pass>; 2],
    guided: Option<Guided>,
    /// The matmuls' inputs (normed rows, attention's output, act(gate) · up) are f16
    /// (`Gpu::half_inputs`, `GpuModel::dense_fused_mlps`).
    half: bool,
    /// Multiply-adds of the passes run so far (benchmarks' GFLOP/s).
    done: u64,
}

impl GpuModel {
    /// A session for `config` (see `Session::new`).
    pub fn session(&self, config: SessionConfig) -> Result<Session<'_>> {
        Session::new(self, config, None)
    }
}

impl<'m> Session<'m> {
    /// Lays out and allocates a session; refuses (before allocating anything) a canvas the
    /// model cannot take, buffers the adapter cannot bind, or weights plus session over `budget`.
    pub fn new(model: &'m GpuModel, config: SessionConfig, budget: Option<u64>) -> Result<Self> {
        let (gpu, c) = (&*model.gpu, &model.config);
        gpu.check_kernels(config.kernels)?;
        gpu.check_kv(config.kv)?;
        if config.canvas == 0 || config.canvas > c.max_sequence_length {
            return Err(Error::Input(format!("a canvas of {} positions does not suit the model's context of {}", config.canvas, c.max_sequence_length)));
        }
        let limits = gpu.plan_limits();
        let layout = SessionLayout::new(c, &model.chunk_counts(), &config, limits);
        let (what, bytes) = layout.largest();
        if bytes > limits.max_binding {
            let max_canvas = crate::engine::layout::max_canvas(c, limits.max_binding);
            return Err(Error::Limits(format!("{what} need {} in one buffer but the adapter binds at most {}: use a canvas of at most {max_canvas} positions (shorter prompt or --gen-length)", human(bytes), human(limits.max_binding))));
        }
        if layout.staging_bytes > limits.max_buffer {
            return Err(Error::Limits(format!(
                "reading back {} of logits needs a larger buffer than the adapter allows ({})",
                human(layout.staging_bytes),
                human(limits.max_buffer)
            )));
        }
        check_budget(model.weight_bytes(), layout.total(), config.canvas, None, budget)?;
        let mut bufs = HashMap::new();
        for &(b, bytes) in &layout.buffers {
            bufs.insert(b, gpu.storage(&format!("{b:?}"), bytes)?);
        }
        let params = gpu.uniform("kernel parameters", layout.params_bytes);
        let staging = gpu.staging(layout.staging_bytes);
        gpu.take_fault()?;
        let half = gpu.half_inputs(config.kernels) && model.dense_fused_mlps();
        Ok(Session { model, config, layout, bufs, params, staging, kv_len: 0, passes: [None, None], guided: None, half, done: 0 })
    }

    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    pub fn model(&self) -> &'m GpuModel {
        self.model
    }

    /// Bytes of the session's buffers (what the memory plan's `session_bytes` promises).
    pub fn allocated_bytes(&self) -> u64 {
        self.bufs.values().map(|b| b.size()).sum::<u64>() + self.params.size() + self.staging.size()
    }

    /// Whether the matmuls' inputs are f16 here (`Gpu::half_inputs`).
    pub fn half_inputs(&self) -> bool {
        self.half
    }

    /// How buffer `b`'s elements are stored: f16 for the matmuls' inputs where `half`.
    fn elem(&self, b: Buf) -> KvType {
        match b {
            Buf::H | Buf::HUncond | Buf::Attn | Buf::Gate if self.half => KvType::F16,
            _ => KvType::F32,
        }
    }

    fn buf(&self, b: Buf) -> Result<&wgpu::Buffer> {
        self.bufs.get(&b).ok_or_else(|| Error::Input(format!("this session has no {b:?} buffer: make it with SessionConfig::cfg for guided passes")))
    }

    fn check_tokens(&self, tokens: &[u32]) -> Result<()> {
        let c = &self.model.config;
        if tokens.is_empty() {
            return Err(Error::Input("the token sequence is empty".into()));
        }
        if tokens.len() > self.config.canvas {
            return Err(Error::Input(format!(
                "a canvas of {} positions is longer than this session's {} (the memory was planned for that)",
                tokens.len(),
                self.config.canvas
            )));
        }
        if let Some(bad) = tokens.iter().find(|&&t| t as usize >= c.vocab_size) {
            return Err(Error::Input(format!("token id {bad} is outside the vocabulary (0..{})", c.vocab_size)));
        }
        Ok(())
    }

    /// Full forward over `tokens`: every row computed.
    pub async fn forward(&mut self, tokens: &[u32], noise: Noise, want_logits: bool) -> Result<ForwardOutput> {
        self.forward_rows(tokens, 0..tokens.len(), noise, want_logits).await
    }

    /// Computes rows `rows` of the canvas `tokens`; K/V of the other rows are those left by
    /// the previous pass of the same canvas length in this session (zeros if there was none).
    pub async fn forward_rows(&mut self, tokens: &[u32], rows: Range<usize>, noise: Noise, want_logits: bool) -> Result<ForwardOutput> {
        self.forward_part(tokens, rows.clone(), rows, noise, want_logits).await
    }

    /// `forward_rows`, with choices (and logits) for the positions `want` alone, a range inside
    /// `rows`: the LM head and token selection run for those rows only (the sampler commits in
    /// one block, and the head is the largest matmul of a small model).
    pub async fn forward_part(&mut self, tokens: &[u32], rows: Range<usize>, want: Range<usize>, noise: Noise, want_logits: bool) -> Result<ForwardOutput> {
        self.check_tokens(tokens)?;
        let len = tokens.len();
        if rows.start >= rows.end || rows.end > len {
            return Err(Error::Input(format!("row range {rows:?} is not inside the canvas of {len}")));
        }
        if want_logits && !self.config.logits {
            return Err(Error::Input("this session reads back choices only: make it with SessionConfig::logits to read logits".into()));
        }
        // Shifted logits: the rows computed start one before the rows predicted.
        let shift = self.model.config.shift_logits;
        let (rows, out) = graph::part_rows(&rows, &want, shift)?;
        let slot = self.pass_for(len, rows.clone(), out.clone())?;
        let gpu = &*self.model.gpu;
        let positions: Vec<u32> = rows.clone().map(|p| p as u32).collect();
        gpu.queue.write_buffer(self.buf(Buf::Tokens)?, 0, bytemuck::cast_slice(&tokens[rows.clone()]));
        gpu.queue.write_buffer(self.buf(Buf::Positions)?, 0, bytemuck::cast_slice(&positions));
        gpu.queue.write_buffer(&self.params, 0, bytemuck::bytes_of(&NoiseUniform::from(noise)));
        let (n, v) = (out.len(), self.model.config.vocab_size);
        let choice_bytes = (n * 16) as u64;
        let logit_bytes = if want_logits { (n * v * 4) as u64 } else { 0 };
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        self.clear_kv_unless(len, &mut enc);
        let pass = self.passes[slot].as_ref().expect("built by pass_for");
        self.done += pass.madds.0 + pass.madds.1;
        gpu.record(&mut enc, &pass.body);
        for (dispatches, r0, rc) in &pass.head {
            gpu.record(&mut enc, dispatches);
            if want_logits {
                enc.copy_buffer_to_buffer(self.buf(Buf::Logits)?, 0, &self.staging, choice_bytes + (r0 * v * 4) as u64, (rc * v * 4) as u64);
            }
        }
        enc.copy_buffer_to_buffer(self.buf(Buf::Choices)?, 0, &self.staging, 0, choice_bytes);
        let bytes = gpu.submit_and_map(enc, &self.staging, choice_bytes + logit_bytes).await?;
        let choices = self.choices_from(&bytes[..choice_bytes as usize], out.start)?;
        let choices = graph::align(&choices, 1, &want, &out, shift);
        let logits = want_logits.then(|| graph::align(&bytemuck::pod_collect_to_vec::<u8, f32>(&bytes[choice_bytes as usize..]), v, &want, &out, shift));
        Ok(ForwardOutput { choices, logits })
    }

    /// Classifier-free guidance, entirely on the GPU: a full pass over `uncond` (its final
    /// activations kept), a full pass over `cond`, then per position the choice from
    /// `u + (scale + 1)(c − u)`, for the positions `want` (the LM heads run for those rows
    /// only). Two submissions, one readback of the choices. The K/V left behind are `cond`'s.
    pub async fn forward_guided(&mut self, cond: &[u32], uncond: &[u32], scale: f32, want: Range<usize>, noise: Noise) -> Result<Vec<Choice>> {
        self.check_tokens(cond)?;
        self.check_tokens(uncond)?;
        if cond.len() != uncond.len() {
            return Err(Error::Input(format!("guided canvases differ in length ({} and {})", cond.len(), uncond.len())));
        }
        if !self.config.cfg {
            return Err(Error::Input("this session was made without classifier-free guidance (SessionConfig::cfg)".into()));
        }
        let n = cond.len();
        let (_, out) = graph::part_rows(&(0..n), &want, self.model.config.shift_logits)?;
        let slot = self.pass_for(n, 0..n, out.clone())?;
        self.guided_for(n, scale, out.clone())?;
        let gpu = &*self.model.gpu;
        let positions: Vec<u32> = (0..n as u32).collect();
        gpu.queue.write_buffer(self.buf(Buf::Positions)?, 0, bytemuck::cast_slice(&positions));
        gpu.queue.write_buffer(&self.params, 0, bytemuck::bytes_of(&NoiseUniform::from(noise)));
        gpu.queue.write_buffer(self.buf(Buf::Tokens)?, 0, bytemuck::cast_slice(uncond));
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        self.clear_kv_unless(n, &mut enc);
        let pass = self.passes[slot].as_ref().expect("built by pass_for");
        self.done += 2 * pass.madds.0 + self.guided.as_ref().map_or(0, |g| g.madds);
        gpu.record(&mut enc, &pass.body);
        let h = self.buf(Buf::H)?;
        enc.copy_buffer_to_buffer(h, 0, self.buf(Buf::HUncond)?, 0, (out.len() * self.model.config.d_model * 4) as u64);
        gpu.queue.submit(Some(enc.finish()));

        gpu.queue.write_buffer(self.buf(Buf::Tokens)?, 0, bytemuck::cast_slice(cond));
        let choice_bytes = (out.len() * 16) as u64;
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        gpu.record(&mut enc, &pass.body);
        for ds in &self.guided.as_ref().expect("built by guided_for").head {
            gpu.record(&mut enc, ds);
        }
        enc.copy_buffer_to_buffer(self.buf(Buf::Choices)?, 0, &self.staging, 0, choice_bytes);
        let bytes = gpu.submit_and_map(enc, &self.staging, choice_bytes).await?;
        let choices = self.choices_from(&bytes, out.start)?;
        Ok(graph::align(&choices, 1, &want, &out, self.model.config.shift_logits))
    }

    /// A new canvas length: the K/V of the old one mean nothing for it, so start from zeros
    /// (as the CPU twin's cache does).
    fn clear_kv_unless(&mut self, len: usize, enc: &mut wgpu::CommandEncoder) {
        if self.kv_len != len {
            for (b, buf) in &self.bufs {
                if matches!(b, Buf::Keys(_) | Buf::Values(_)) {
                    enc.clear_buffer(buf, 0, None);
                }
            }
            self.kv_len = len;
        }
    }

    /// The slot holding the pass for (len, rows, out), recorded into it if it holds another.
    fn pass_for(&mut self, len: usize, rows: Range<usize>, out: Range<usize>) -> Result<usize> {
        let slot = if rows == (0..len) { 0 } else { 1 };
        if slot == 1 && self.layout.pass_slots < 2 {
            return Err(Error::Input("this session runs full passes only: make it with a cache (SessionConfig::cache) for row-range passes".into()));
        }
        if let Some(p) = &self.passes[slot] {
            if p.len == len && p.rows == rows && p.out == out {
                return Ok(slot);
            }
        }
        self.passes[slot] = None;
        let c = &self.model.config;
        let fold = self.model.gpu.folds_norms(self.config.kernels);
        let body_ops = graph::body(c, &self.model.chunk_counts(), len, rows.clone(), out.clone(), self.config.kv, fold);
        let mut launches = self.launches(&body_ops)?;
        let body_count = launches.len();
        let mut chunks = Vec::new();
        let mut madds = (self.multiply_adds(&body_ops), 0);
        for (ops, (r0, rc)) in graph::head(out.clone(), self.layout.head_rows, c.shift_logits).iter().zip(graph::head_chunks(out.len(), self.layout.head_rows))
        {
            madds.1 += self.multiply_adds(ops);
            let ls = self.launches(ops)?;
            chunks.push((ls.len(), r0, rc));
            launches.extend(ls);
        }
        let gpu = &*self.model.gpu;
        let mut bound = gpu.bind(&launches, Some((&self.params, self.layout.checked_slot(slot, launches.len())?)))?.into_iter();
        let body: Vec<Dispatch> = bound.by_ref().take(body_count).collect();
        let head = chunks.into_iter().map(|(k, r0, rc)| (bound.by_ref().take(k).collect(), r0, rc)).collect();
        gpu.take_fault()?;
        self.passes[slot] = Some(Pass { len, rows, out, body, head, madds });
        Ok(slot)
    }

    fn guided_for(&mut self, len: usize, scale: f32, out: Range<usize>) -> Result<()> {
        if let Some(g) = &self.guided {
            if g.len == len && g.scale_bits == scale.to_bits() && g.out == out {
                return Ok(());
            }
        }
        self.guided = None;
        let ops = graph::guided_head(out.clone(), self.layout.head_rows, scale, self.model.config.shift_logits);
        let mut launches = Vec::new();
        let mut sizes = Vec::new();
        let madds = ops.iter().map(|o| self.multiply_adds(o)).sum();
        for o in &ops {
            let ls = self.launches(o)?;
            sizes.push(ls.len());
            launches.extend(ls);
        }
        let gpu = &*self.model.gpu;
        let mut bound = gpu.bind(&launches, Some((&self.params, self.layout.guided_slot())))?.into_iter();
        let head = sizes.into_iter().map(|k| bound.by_ref().take(k).collect()).collect();
        gpu.take_fault()?;
        self.guided = Some(Guided { len, scale_bits: scale.to_bits(), out, head, madds });
        Ok(())
    }

    /// Multiply-adds of `ops` with the model's weights (`graph::multiply_adds`).
    fn multiply_adds(&self, ops: &[Op]) -> u64 {
        graph::multiply_adds(ops, &self.model.config, |k| self.model.weights.get(k).map_or((0, 0), |w| (w.rows, w.cols)))
    }

    /// The kernel launches of `ops` on this session's buffers and the model's weights.
    fn launches(&self, ops: &[Op]) -> Result<Vec<Launch>> {
        let (m, g, c) = (self.model, &*self.model.gpu, &self.model.config);
        let w = &m.weights;
        let kv = self.config.kernels;
        let (hd, v) = (c.head_dim(), c.vocab_size);
        let moe = |rows: usize| MoeShape { rows, experts: c.n_experts, k: c.n_experts_used };
        let mut out = Vec::new();
        for op in ops {
            match *op {
                Op::Embed { rows } => {
                    let e = &w[Role::Embed];
                    for (buf, row0, count) in &e.chunks {
                        out.push(g.embed(e.dtype, buf, *row0, *count, e.cols, self.buf(Buf::Tokens)?, rows, self.buf(Buf::X)?)?);
                    }
                }
                Op::RmsNorm { w: key, x, x_row, out: o, rows } => out.push(g.rmsnorm_into(
                    w[key].vector(),
                    (self.buf(x)?, x_row),
                    self.buf(o)?,
                    rows,
                    w[key].cols,
                    c.rms_norm_eps,
                    false,
                    1.0,
                    self.elem(o),
                )?),
                Op::Matmul { w: key, x, x_row, m: rows, y, y_row, epilogue, norm } => {
                    let t = &w[key];
                    let scratch = self.bufs.get(&Buf::SplitK);
                    let norm = norm.map(|nk| RowNorm { w: w[nk].vector(), eps: c.rms_norm_eps });
                    let io = MatmulIo {
                        x: self.buf(x)?,
                        x_offset: x_row * t.cols,
                        y: self.buf(y)?,
                        y_offset: y_row * t.rows,
                        y_stride: t.rows,
                        epilogue,
                        norm,
                        x_f16: self.elem(x) == KvType::F16,
                        y_f16: false,
                        rope: None,
                    };
                    out.extend(t.matmul_split_k(g, kv, rows, io, scratch)?);
                }
                Op::Qkv { w: keys, x, norm, m: rows, y, rope_at, f16_kv, bias } => {
                    let ts = keys.map(|key| &w[key]);
                    let scratch = self.bufs.get(&Buf::SplitK);
                    let bias = match bias {
                        true => {
                            Some(keys[0].layer.and_then(|i| m.qkv_bias(i)).ok_or_else(|| Error::Gpu("internal: a layer's q/k/v biases are missing".into()))?)
                        }
                        false => None,
                    };
                    // With biases the norm's weight is read from the buffer that holds them too.
                    let norm = norm.map(|nk| RowNorm { w: bias.map_or(w[nk].vector(), |b| b.joined), eps: c.rms_norm_eps });
                    let positions = self.buf(Buf::Positions)?;
                    let rope = rope_at.map(|pos0| QkRope { spec: RopeSpec::first(c.rope_dims, c.rope_theta), style: m.rope, head_dim: hd, pos0, positions });
                    let (xb, x_f16) = (self.buf(x)?, self.elem(x) == KvType::F16);
                    let io = |(t, (y, y_row)): (&GpuWeight, (Buf, usize)), rope| -> Result<MatmulIo<'_>> {
                        let (y, y_offset, e) = (self.buf(y)?, y_row * t.rows, Epilogue::Store);
                        Ok(MatmulIo { x: xb, x_offset: 0, y, y_offset, y_stride: t.rows, epilogue: e, norm, rope, x_f16, y_f16: false })
                    };
                    let ios = [io((ts[0], y[0]), rope)?, io((ts[1], y[1]), rope)?, io((ts[2], y[2]), None)?];
                    let staging = if f16_kv { Some([self.buf(Buf::KNew)?, self.buf(Buf::VNew)?]) } else { None };
                    out.extend(GpuWeight::qkv(g, kv, ts, rows, ios, scratch, staging, bias)?);
                }
                Op::GateUp { w: keys, x, norm, m: rows, y, epilogue } => {
                    let ts = keys.map(|key| &w[key]);
                    let norm = norm.map(|nk| RowNorm { w: w[nk].vector(), eps: c.rms_norm_eps });
                    let (x_f16, y_f16) = (self.elem(x) == KvType::F16, self.elem(y) == KvType::F16);
                    let io =
                        MatmulIo { x: self.buf(x)?, x_offset: 0, y: self.buf(y)?, y_offset: 0, y_stride: ts[0].rows, epilogue, norm, rope: None, x_f16, y_f16 };
                    out.extend(GpuWeight::gate_up(g, kv, ts, rows, io, self.bufs.get(&Buf::SplitK))?);
                }
                Op::HeadPass { x, row0, rows, heads, norm, kv } => {
                    let (v, store) = match kv {
                        Some((v, k16, v16, r0)) => (Some((self.buf(v)?, false)), Some((self.buf(k16)?, self.buf(v16)?, r0))),
                        None => (None, None),
                    };
                    let norm = norm.map(|key| (w[key].vector(), w[key].cols));
                    let (positions, spec) = (self.buf(Buf::Positions)?, RopeSpec::first(c.rope_dims, c.rope_theta));
                    let h = HeadPass { x: self.buf(x)?, row0, rows, heads, head_dim: hd, norm, eps: c.rms_norm_eps, v, store, positions, spec, style: m.rope };
                    out.push(g.head_pass(&h)?)
                }
                Op::Attention { q, q_row, k, v: vb, out: o, lq, lk, q0, block } => {
                    let mask = AttnMask { q0, block, q_row, ..AttnMask::FULL };
                    let shape = AttnShape { lq, lk, n_heads: c.n_heads, n_kv: c.n_kv_heads, head_dim: hd };
                    out.extend(g.attention(
                        kv,
                        self.buf(q)?,
                        self.buf(k)?,
                        self.buf(vb)?,
                        self.buf(o)?,
                        shape,
                        mask,
                        self.config.kv,
                        self.elem(o),
                        self.bufs.get(&Buf::SplitK),
                    )?)
                }
                Op::Bias { w: key, x, row0, rows } => out.push(g.bias(w[key].vector(), self.buf(x)?, rows, w[key].cols, row0)?),
                Op::MoeRoute { rows, bias } => {
                    let bias = bias.map(|key| w[key].vector());
                    out.push(g.moe_route(self.buf(Buf::RouterLogits)?, bias, self.buf(Buf::Route)?, moe(rows), c.norm_topk_prob, c.routing)?)
                }
                Op::MoeMatmul { w: key, x, by_pair, y, rows, epilogue, norm } => {
                    let t = &w[key];
                    let per_expert = t.rows / c.n_experts;
                    let norm = norm.map(|nk| RowNorm { w: w[nk].vector(), eps: c.rms_norm_eps });
                    for (buf, row0, count) in &t.chunks {
                        let io = MoeIo { x: self.buf(x)?, by_pair, route: self.buf(Buf::Route)?, y: self.buf(y)?, epilogue, norm };
                        out.push(g.moe_matmul(kv, t.dtype, buf, row0 / per_expert, count / per_expert, per_expert, t.cols, io, moe(rows))?);
                    }
                }
                Op::MoeCombine { rows, x_row } => {
                    out.push(g.moe_combine_into(self.buf(Buf::Route)?, self.buf(Buf::MoeOut)?, (self.buf(Buf::X)?, x_row), moe(rows), c.d_model, false)?)
                }
                Op::CfgMix { rows, scale } => out.push(g.cfg_mix(self.buf(Buf::Logits)?, self.buf(Buf::LogitsU)?, rows * v, scale)?),
                Op::Select { rows, pos0, out_row0 } => {
                    out.push(g.select(self.buf(Buf::Logits)?, self.buf(Buf::Choices)?, &self.params, rows, v, pos0, out_row0)?)
                }
            }
        }
        Ok(out)
    }

    /// Choices as `select.wgsl` writes them (4 words per row: token, prob, entropy, margin) for
    /// rows starting at canvas position `pos0`. Non-finite logits (a broken model or kernel, not
    /// the user's input) leave no valid token: that is reported as a numeric fault.
    fn choices_from(&self, bytes: &[u8], pos0: usize) -> Result<Vec<Choice>> {
        let words: Vec<u32> = bytemuck::pod_collect_to_vec(bytes);
        let v = self.model.config.vocab_size;
        words
            .chunks_exact(4)
            .enumerate()
            .map(|(i, w)| {
                let c = Choice { token: w[0], prob: f32::from_bits(w[1]), entropy: f32::from_bits(w[2]), margin: f32::from_bits(w[3]) };
                if c.token as usize >= v || !c.prob.is_finite() {
                    return Err(Error::Gpu(format!(
                        "numeric fault: the model produced no valid prediction at canvas position {} (non-finite logits, NaN or infinity); the weights may be corrupt or a kernel failed",
                        pos0 + i
                    )));
                }
                Ok(c)
            })
            .collect()
    }
}
