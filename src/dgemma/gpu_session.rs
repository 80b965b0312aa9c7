//! One DiffusionGemma generation on the GPU (`DgSession`, the model/context split): the
//! activation buffers of a pass of up to one canvas of rows, every layer's K/V of all positions
//! (the encoded ones, then the canvas's, which the decoder writes past the encoded end and the
//! next encode overwrites), and the last logits, which the next step's self-conditioning reads
//! in place. K/V are stored in f32 or f16 (`KvType`; f16: each pass computes its rows' K and V
//! in f32 and `kv_store.wgsl` rounds them into the cache). Passes follow
//! docs/diffusion_gemma.md §4 op for op, as `forward.rs` (the CPU twin)
//! does; the encoder takes the prompt a canvas of rows at a time.

use super::config::Layer;
use super::forward::{mask, Mode};
use super::gpu::{DgGpuModel, GpuLayer};
use super::plan::{logit_chunks, session_buffers};
use super::sampler::DgModel;
use crate::engine::weights::GpuWeight;
use crate::error::{Error, Result};
use crate::gpu::kernels::{Activation, AttnShape, Dispatch, Epilogue, HeadPass, KernelVariant, KvType, Launch, MatmulIo, MoeIo, MoeShape, RowNorm};

/// The dense MLP's GeGLU, fused into the up projection: gate = gelu_tanh(gate) · up.
const GEGLU: Epilogue = Epilogue::Gated(Activation::GeluTanh);
use crate::model::config::Routing;
use crate::model::RopeStyle;

/// A pass's buffers (rows: at most one canvas).
struct Bufs {
    tokens: wgpu::Buffer,
    positions: wgpu::Buffer,
    /// The residual stream, normed activations, and `[rows, H]` scratch for branch outputs.
    x: wgpu::Buffer,
    h: wgpu::Buffer,
    t: wgpu::Buffer,
    d: wgpu::Buffer,
    q: wgpu::Buffer,
    attn: wgpu::Buffer,
    /// The dense MLPs' gate projection, gated in place by the up projection's epilogue.
    gate: wgpu::Buffer,
    router: wgpu::Buffer,
    route: wgpu::Buffer,
    /// The experts' gate projection, gated in place by the up projection's epilogue.
    moe_gate: wgpu::Buffer,
    moe_out: wgpu::Buffer,
    /// `[canvas, vocab]` in buffers of some rows each (buffer, first row, rows): the last
    /// decode's logits; self-conditioning turns them into probabilities in place before the
    /// next decode overwrites them.
    logits: Vec<(wgpu::Buffer, usize, usize)>,
    /// A step's uniform per canvas row, and its choices (3 words a row: `dg_choose.wgsl`).
    uniforms: wgpu::Buffer,
    choices: wgpu::Buffer,
    /// f16 K/V: a pass's own K and V in f32, before `kv_store.wgsl` (None with f32 K/V).
    new_kv: Option<(wgpu::Buffer, wgpu::Buffer)>,
    /// Split-K's partial results (tiled matmuls and attention with few output tiles).
    split: wgpu::Buffer,
}

/// A matmul's input: a buffer, and the norm folded into the matmul (its weight), if any.
type Input<'a> = (&'a wgpu::Buffer, Option<&'a wgpu::Buffer>);

pub struct DgSession<'m> {
    model: &'m DgGpuModel,
    kernels: KernelVariant,
    kv: KvType,
    /// Rows a pass takes at most (the canvas length).
    rows: usize,
    /// Positions the K/V hold: the prompt and every canvas.
    capacity: usize,
    /// Positions encoded so far.
    len: usize,
    b: Bufs,
    keys: Vec<wgpu::Buffer>,
    values: Vec<wgpu::Buffer>,
    /// The logits buffer holds a decode's logits.
    have_logits: bool,
    /// The decoder's layers and head for a canvas of `n` rows at `q0`, bound once and replayed
    /// by every step of that canvas: (q0, n, dispatches).
    decoder: Option<(usize, usize, Vec<Dispatch>)>,
    /// Multiply-adds of the passes run so far (`multiply_adds_done`).
    done: u64,
}

impl<'m> DgSession<'m> {
    /// Run this session's passes in kernel layout `v` (the adapter's own by default; the CLI
    /// follows `UNMASK_KERNELS`): refused where the adapter cannot run it.
    pub fn set_kernels(&mut self, v: KernelVariant) -> Result<()> {
        self.kernels = self.model.gpu.check_kernels(v)?;
        self.decoder = None;
        Ok(())
    }

    /// A session whose K/V hold `capacity` positions (prompt plus canvases), stored as `kv`
    /// (`Gpu::default_kv` unless told otherwise; `plan::plan` with the same `kv` plans it).
    pub fn new(model: &'m DgGpuModel, capacity: usize, kv: KvType) -> Result<Self> {
        let (g, c) = (&*model.gpu, &model.config);
        let kernels = g.default_kernels();
        g.check_kv(kv)?;
        let rows = c.canvas_length;
        if capacity == 0 || capacity > c.max_positions {
            return Err(Error::Input(format!("{capacity} positions do not suit the model's context of {}", c.max_positions)));
        }
        // Every buffer of `plan::session_buffers`, in its order (the plan counts the same list).
        let chunks = logit_chunks(c, g.max_binding());
        let mut made =
            session_buffers(c, capacity, g.plan_limits(), kv).into_iter().map(|(what, n)| g.storage(&what, n)).collect::<Result<Vec<_>>>()?.into_iter();
        let mut f = || made.next().expect("one buffer per planned entry");
        let b = Bufs {
            tokens: f(),
            positions: f(),
            x: f(),
            h: f(),
            t: f(),
            d: f(),
            q: f(),
            attn: f(),
            gate: f(),
            router: f(),
            route: f(),
            moe_gate: f(),
            moe_out: f(),
            logits: chunks.iter().map(|&(r0, n)| (f(), r0, n)).collect(),
            uniforms: f(),
            choices: f(),
            new_kv: (kv == KvType::F16).then(|| (f(), f())),
            split: f(),
        };
        let (mut keys, mut values) = (Vec::with_capacity(c.layers.len()), Vec::with_capacity(c.layers.len()));
        for _ in &c.layers {
            keys.push(f());
            values.push(f());
        }
        g.take_fault()?;
        Ok(DgSession { model, kernels, kv, rows, capacity, len: 0, b, keys, values, have_logits: false, decoder: None, done: 0 })
    }

    /// Positions encoded so far.
    pub fn encoded(&self) -> usize {
        self.len
    }

    /// Layer `layer`'s stored K and V of the encoded positions, as f32 (tests compare them with
    /// the CPU twin's cache).
    pub async fn read_kv(&self, layer: usize) -> Result<(Vec<f32>, Vec<f32>)> {
        let l = self.model.config.layers.get(layer).ok_or_else(|| Error::Input(format!("no layer {layer}")))?;
        let n = self.len * l.kv_heads * l.head_dim;
        let bytes = (n * self.kv.bytes()).next_multiple_of(4) as u64;
        let g = &*self.model.gpu;
        let enc = g.device.create_command_encoder(&Default::default());
        let raw = g.submit_and_read(enc, &[(&self.keys[layer], 0, bytes), (&self.values[layer], 0, bytes)]).await?;
        let (k, v) = raw.split_at(bytes as usize);
        let decode = |b: &[u8]| -> Vec<f32> {
            match self.kv {
                KvType::F32 => bytemuck::pod_collect_to_vec(&b[..4 * n]),
                KvType::F16 => b[..2 * n].chunks_exact(2).map(|h| half::f16::from_le_bytes([h[0], h[1]]).to_f32()).collect(),
            }
        };
        Ok((decode(k), decode(v)))
    }

    /// Multiply-adds of the passes this session has run: every matmul at the rows it takes
    /// (a full layer's V counted as its own projection, which the pass repeats with K's weight),
    /// the experts at `top_k` a row, attention's two products over the keys each query sees; the
    /// decoder's LM head and, self-conditioned, the soft embedding and its MLP. Norms, RoPE,
    /// softmaxes and routing are not counted. A benchmark's achieved GFLOP/s is twice a run's
    /// share over its time.
    pub fn multiply_adds_done(&self) -> u64 {
        self.done
    }

    /// The multiply-adds of every layer over `n` rows at `q0` (keys 0 .. q0 + n) in `mode`.
    fn layers_madds(&self, n: usize, q0: usize, mode: Mode) -> u64 {
        let (m, c) = (self.model, &self.model.config);
        let mm = |w: &GpuWeight, rows: usize| (rows * w.rows * w.cols) as u64;
        let mut sum = 0;
        for (l, lw) in c.layers.iter().zip(&m.layers) {
            let keys = mask(mode, l, c.sliding_window, q0);
            let seen: usize = (q0..q0 + n).map(|q| keys.keys(q, q0 + n).len()).sum();
            sum += [&lw.q, &lw.k, lw.v.as_ref().unwrap_or(&lw.k), &lw.o, &lw.gate, &lw.up, &lw.down, &lw.router].into_iter().map(|w| mm(w, n)).sum::<u64>();
            sum += (2 * seen * c.heads * l.head_dim) as u64;
            sum += [&lw.gate_exps, &lw.up_exps, &lw.down_exps].into_iter().map(|w| mm(w, n * c.top_k) / c.experts.max(1) as u64).sum::<u64>();
        }
        sum
    }

    fn write_rows(&self, tokens: &[u32], q0: usize) {
        let q = &self.model.gpu.queue;
        let pos: Vec<u32> = (q0..q0 + tokens.len()).map(|p| p as u32).collect();
        q.write_buffer(&self.b.tokens, 0, bytemuck::cast_slice(tokens));
        q.write_buffer(&self.b.positions, 0, bytemuck::cast_slice(&pos));
    }

    fn check(&self, tokens: &[u32], q0: usize) -> Result<()> {
        let c = &self.model.config;
        if let Some(bad) = tokens.iter().find(|&&t| t as usize >= c.vocab) {
            return Err(Error::Input(format!("token id {bad} is outside the vocabulary (0..{})", c.vocab)));
        }
        if q0 + tokens.len() > self.capacity {
            return Err(Error::Input(format!("{} positions pass this session's {}", q0 + tokens.len(), self.capacity)));
        }
        Ok(())
    }

    /// `y (+)= x · Wᵀ` (or gated: `e`) for `m` rows, output rows `y_row ..` of width W.rows, x
    /// normed first where the input says; split-K where the device splits it.
    fn mm(&self, w: &GpuWeight, (x, norm): Input<'_>, m: usize, y: &wgpu::Buffer, y_row: usize, e: Epilogue) -> Result<Vec<Launch>> {
        let norm = norm.map(|w| RowNorm { w, eps: self.model.config.rms_eps });
        let io = MatmulIo { x, x_offset: 0, y, y_offset: y_row * w.rows, y_stride: w.rows, epilogue: e, norm, rope: None, x_f16: false, y_f16: false };
        w.matmul_split_k(&self.model.gpu, self.kernels, m, io, Some(&self.b.split))
    }

    /// GeGLU of the input's `n` rows by `w` = [gate, up] into the gate buffer: one launch where
    /// the layout fuses (`GpuWeight::gate_up`), else two.
    fn gate_up(&self, w: [&GpuWeight; 2], (x, norm): Input<'_>, n: usize) -> Result<Vec<Launch>> {
        let norm = norm.map(|w| RowNorm { w, eps: self.model.config.rms_eps });
        let io = MatmulIo { x, x_offset: 0, y: &self.b.gate, y_offset: 0, y_stride: w[0].rows, epilogue: GEGLU, norm, rope: None, x_f16: false, y_f16: false };
        GpuWeight::gate_up(&self.model.gpu, self.kernels, w, n, io, Some(&self.b.split))
    }

    /// The input of the projections that read `x`'s `n` rows normed by `w`: folded into them
    /// where this layout folds norms (`Gpu::folds_norms`), else normed into `h` by a pass first.
    fn normed<'a>(&'a self, out: &mut Vec<Launch>, w: &'a wgpu::Buffer, x: &'a wgpu::Buffer, n: usize) -> Result<Input<'a>> {
        let (g, c) = (&*self.model.gpu, &self.model.config);
        if g.folds_norms(self.kernels) {
            return Ok((x, Some(w)));
        }
        out.push(g.rmsnorm(w, x, &self.b.h, n, c.hidden, c.rms_eps)?);
        Ok((&self.b.h, None))
    }

    /// The logits buffers' rows that a pass of `n` rows fills: (buffer, first row, rows).
    fn logit_rows(&self, n: usize) -> impl Iterator<Item = (&wgpu::Buffer, usize, usize)> {
        self.b.logits.iter().filter(move |c| c.1 < n).map(move |(b, r0, rows)| (b, *r0, (*rows).min(n - r0)))
    }

    /// The embedding of this pass's `n` tokens, times √H, into `out`.
    fn embed(&self, n: usize, out: &wgpu::Buffer) -> Result<Vec<Launch>> {
        let (m, g) = (self.model, &*self.model.gpu);
        let e = &m.embed;
        e.chunks.iter().map(|(buf, r0, rows)| g.embed_scaled(e.dtype, buf, *r0, *rows, e.cols, &self.b.tokens, n, out, m.embed_scale)).collect()
    }

    /// One layer over `n` rows at positions `q0 ..` (keys 0 .. q0 + n).
    fn layer(&self, i: usize, l: &Layer, lw: &GpuLayer, n: usize, q0: usize, mode: Mode) -> Result<Vec<Launch>> {
        let (m, g, b) = (self.model, &*self.model.gpu, &self.b);
        let c = &m.config;
        let (hsz, eps, hd, kvh) = (c.hidden, c.rms_eps, l.head_dim, l.kv_heads);
        let (keys, vals) = (&self.keys[i], &self.values[i]);
        let spec = l.rope.spec(hd);
        let moe = MoeShape { rows: n, experts: c.experts, k: c.top_k };
        // This pass's K and V rows: in the cache at q0 (f32), or in f32 rows of their own first.
        let (k_rows, v_rows, r0) = match &b.new_kv {
            Some((nk, nv)) => (nk, nv, 0),
            None => (keys, vals, q0),
        };
        let mut out = Vec::new();
        let h = self.normed(&mut out, &lw.input_norm, &b.x, n)?;
        // Full layers: V is K's raw projection (normed without a weight, no RoPE).
        let qkv = [&lw.q, &lw.k, lw.v.as_ref().unwrap_or(&lw.k)];
        let io = |w: &GpuWeight, y, y_row: usize| MatmulIo {
            x: h.0,
            x_offset: 0,
            y,
            y_offset: y_row * w.rows,
            y_stride: w.rows,
            epilogue: Epilogue::Store,
            norm: h.1.map(|w| RowNorm { w, eps }),
            x_f16: false,
            y_f16: false,
            rope: None,
        };
        let io = [io(qkv[0], &b.q, 0), io(qkv[1], k_rows, r0), io(qkv[2], v_rows, r0)];
        out.extend(GpuWeight::qkv(g, self.kernels, qkv, n, io, Some(&b.split), None, None)?);
        // Q normed and turned; K too, V normed without a weight, both stored in f16 if so kept.
        let head = |x, row0, heads, norm, v, store| HeadPass {
            x,
            row0,
            rows: n,
            heads,
            head_dim: hd,
            norm: Some((norm, hd)),
            eps,
            v,
            store,
            positions: &b.positions,
            spec,
            style: RopeStyle::NeoX,
        };
        let store = b.new_kv.is_some().then_some((keys, vals, q0));
        out.extend([
            g.head_pass(&head(&b.q, 0, c.heads, &lw.q_norm, None, None))?,
            g.head_pass(&head(k_rows, r0, kvh, &lw.k_norm, Some((v_rows, true)), store))?,
        ]);
        let shape = AttnShape { lq: n, lk: q0 + n, n_heads: c.heads, n_kv: kvh, head_dim: hd };
        let attn_mask = mask(mode, l, c.sliding_window, q0);
        out.extend(g.attention(self.kernels, &b.q, keys, vals, &b.attn, shape, attn_mask, self.kv, KvType::F32, Some(&b.split))?);
        out.extend(self.mm(&lw.o, (&b.attn, None), n, &b.t, 0, Epilogue::Store)?);
        out.push(g.rmsnorm_into(&lw.post_attn_norm, (&b.t, 0), &b.x, n, hsz, eps, true, 1.0, KvType::F32)?);
        // The dense MLP and the experts beside it on the same residual, each with its norms.
        let h = self.normed(&mut out, &lw.pre_ffn_norm, &b.x, n)?;
        out.extend(self.gate_up([&lw.gate, &lw.up], h, n)?);
        out.extend(self.mm(&lw.down, (&b.gate, None), n, &b.t, 0, Epilogue::Store)?);
        out.push(g.rmsnorm(&lw.post_ffn_norm_1, &b.t, &b.d, n, hsz, eps)?);
        let h = self.normed(&mut out, &lw.router_norm, &b.x, n)?;
        out.extend(self.mm(&lw.router, h, n, &b.router, 0, Epilogue::Store)?);
        out.push(g.moe_route_scaled(&b.router, None, Some(&lw.expert_scale), &b.route, moe, true, Routing::SOFTMAX)?);
        let h = self.normed(&mut out, &lw.pre_ffn_norm_2, &b.x, n)?;
        out.extend(self.experts(&lw.gate_exps, h, false, &b.moe_gate, Epilogue::Store, moe)?);
        out.extend(self.experts(&lw.up_exps, h, false, &b.moe_gate, GEGLU, moe)?);
        out.extend(self.experts(&lw.down_exps, (&b.moe_gate, None), true, &b.moe_out, Epilogue::Store, moe)?);
        out.push(g.moe_combine_into(&b.route, &b.moe_out, (&b.t, 0), moe, hsz, true)?);
        out.push(g.rmsnorm_into(&lw.post_ffn_norm_2, (&b.t, 0), &b.d, n, hsz, eps, true, 1.0, KvType::F32)?);
        let scalar = match mode {
            Mode::Encoder => lw.scalar_encoder,
            Mode::Decoder { .. } => lw.scalar_decoder,
        };
        out.push(g.rmsnorm_into(&lw.post_ffn_norm, (&b.d, 0), &b.x, n, hsz, eps, true, scalar, KvType::F32)?);
        Ok(out)
    }

    /// The grouped matmul of stacked experts `w` on `x` (normed first where the input says), one
    /// launch per chunk of whole experts.
    fn experts(&self, w: &GpuWeight, (x, norm): Input<'_>, by_pair: bool, y: &wgpu::Buffer, epilogue: Epilogue, s: MoeShape) -> Result<Vec<Launch>> {
        let per = w.rows / s.experts;
        let norm = norm.map(|w| RowNorm { w, eps: self.model.config.rms_eps });
        w.chunks
            .iter()
            .map(|(buf, r0, rows)| {
                let io = MoeIo { x, by_pair, route: &self.b.route, y, epilogue, norm };
                self.model.gpu.moe_matmul(self.kernels, w.dtype, buf, r0 / per, rows / per, per, w.cols, io, s)
            })
            .collect()
    }

    /// Every layer, then runs the launches.
    async fn run(&self, mut launches: Vec<Launch>, n: usize, q0: usize, mode: Mode) -> Result<()> {
        let m = self.model;
        for (i, (l, lw)) in m.config.layers.iter().zip(&m.layers).enumerate() {
            launches.extend(self.layer(i, l, lw, n, q0, mode)?);
        }
        self.submit(launches)
    }

    fn submit(&self, launches: Vec<Launch>) -> Result<()> {
        let g = &*self.model.gpu;
        let dispatches = g.bind(&launches, None)?;
        let mut enc = g.device.create_command_encoder(&Default::default());
        g.record(&mut enc, &dispatches);
        g.queue.submit([enc.finish()]);
        g.take_fault()
    }
}

impl DgModel for DgSession<'_> {
    async fn encode(&mut self, tokens: &[u32]) -> Result<()> {
        self.check(tokens, self.len)?;
        for chunk in tokens.chunks(self.rows) {
            let q0 = self.len;
            self.write_rows(chunk, q0);
            let first = self.embed(chunk.len(), &self.b.x)?;
            self.run(first, chunk.len(), q0, Mode::Encoder).await?;
            self.done += self.layers_madds(chunk.len(), q0, Mode::Encoder);
            self.len += chunk.len();
        }
        Ok(())
    }

    async fn decode(&mut self, canvas: &[u32], sc: Option<f32>) -> Result<Vec<f32>> {
        let enc = self.record(canvas, sc)?;
        let (g, v) = (&*self.model.gpu, self.model.config.vocab);
        let parts: Vec<_> = self.logit_rows(canvas.len()).map(|(lb, _, rows)| (lb, 0, (4 * rows * v) as u64)).collect();
        let bytes = g.submit_and_read(enc, &parts).await?;
        Ok(bytemuck::pod_collect_to_vec(&bytes))
    }

    async fn choose(&mut self, canvas: &[u32], sc: Option<f32>, t: f32, u: &[f32]) -> Result<Option<Vec<(u32, f32, u32)>>> {
        let n = canvas.len();
        if u.len() != n || !(t.is_finite() && t > 0.0) {
            return Err(Error::Input(format!("choosing {n} rows needs {n} uniforms and a positive temperature (got {} and {t})", u.len())));
        }
        let mut enc = self.record(canvas, sc)?;
        let (g, b, v) = (&*self.model.gpu, &self.b, self.model.config.vocab);
        g.queue.write_buffer(&b.uniforms, 0, bytemuck::cast_slice(u));
        let picks = self.logit_rows(n).map(|(lb, r0, rows)| g.dg_choose(lb, &b.uniforms, &b.choices, rows, v, 1.0 / t, r0)).collect::<Result<Vec<_>>>()?;
        g.record(&mut enc, &g.bind(&picks, None)?);
        let words: Vec<u32> = bytemuck::pod_collect_to_vec(&g.submit_and_read(enc, &[(&b.choices, 0, (12 * n) as u64)]).await?);
        Ok(Some(words.chunks_exact(3).map(|w| (w[0], f32::from_bits(w[1]), w[2])).collect()))
    }

    fn vocab(&self) -> usize {
        self.model.config.vocab
    }
    fn canvas_length(&self) -> usize {
        self.model.config.canvas_length
    }
    fn max_positions(&self) -> usize {
        self.capacity
    }
}

impl DgSession<'_> {
    /// Records a decoder pass over `canvas` (self-conditioned on the last logits / t with
    /// `sc` = Some(t)) into a command encoder; its logits are then in the logits buffers.
    fn record(&mut self, canvas: &[u32], sc: Option<f32>) -> Result<wgpu::CommandEncoder> {
        let (first, madds) = self.prepare(canvas, sc)?;
        let g = &*self.model.gpu;
        let body = &self.decoder.as_ref().expect("bound by prepare").2;
        let mut enc = g.device.create_command_encoder(&Default::default());
        g.record(&mut enc, &first);
        g.record(&mut enc, body);
        self.have_logits = true;
        self.done += madds;
        Ok(enc)
    }

    /// GPU time per kernel kind (ms, summed over the pass) of a decoder pass over `canvas`
    /// (self-conditioned as `record`'s), from timestamp queries; None when the adapter has none.
    /// For benchmarks: every kernel runs in its own compute pass. Its logits are then in the
    /// logits buffers; its multiply-adds are not counted in `multiply_adds_done`.
    pub async fn profile(&mut self, canvas: &[u32], sc: Option<f32>) -> Result<Option<Vec<(String, f64)>>> {
        let (first, _) = self.prepare(canvas, sc)?;
        let body = &self.decoder.as_ref().expect("bound by prepare").2;
        let all: Vec<&Dispatch> = first.iter().chain(body).collect();
        let Some(ms) = self.model.gpu.time_dispatches(&all).await? else { return Ok(None) };
        self.have_logits = true;
        Ok(Some(crate::engine::profile::by_kind(all.iter().map(|d| &d.kernel).zip(ms))))
    }

    /// A decoder pass's input launches (embedding, self-conditioning), bound, and its
    /// multiply-adds; the layers' and head's launches bound into `self.decoder` unless they are
    /// there for this canvas already.
    fn prepare(&mut self, canvas: &[u32], sc: Option<f32>) -> Result<(Vec<Dispatch>, u64)> {
        let (m, g, b) = (self.model, &*self.model.gpu, &self.b);
        let c = &m.config;
        let (n, hsz, eps, q0) = (canvas.len(), c.hidden, c.rms_eps, self.len);
        if n == 0 || n > self.rows {
            return Err(Error::Input(format!("a canvas of {n} tokens; this model's is {}", self.rows)));
        }
        self.check(canvas, q0)?;
        self.write_rows(canvas, q0);
        // The input: rms(√H · E[canvas] + self-conditioning), the latter from softmax(last / t).
        let mut first = self.embed(n, &b.t)?;
        let head = (n * m.embed.rows * m.embed.cols) as u64;
        let mut madds = self.layers_madds(n, q0, Mode::Decoder { cached: q0 }) + head;
        if let Some(t) = sc {
            if !(self.have_logits && t.is_finite() && t > 0.0) {
                return Err(Error::Input(format!("self-conditioning at temperature {t} needs a previous decode")));
            }
            let e = &m.embed;
            for (lb, r0, rows) in self.logit_rows(n) {
                first.push(g.softmax_scaled(lb, rows, c.vocab, 1.0 / t)?);
                for (j, (buf, e0, erows)) in e.chunks.iter().enumerate() {
                    first.extend(g.soft_embed(e.dtype, buf, *e0, *erows, e.cols, lb, c.vocab, rows, &b.d, r0, m.embed_scale, j > 0, Some(&b.split))?);
                }
            }
            let h = self.normed(&mut first, &m.sc_norm, &b.d, n)?;
            first.extend(self.gate_up([&m.sc_gate, &m.sc_up], h, n)?);
            first.extend(self.mm(&m.sc_down, (&b.gate, None), n, &b.t, 0, Epilogue::Add)?);
            madds += head + [&m.sc_gate, &m.sc_up, &m.sc_down].into_iter().map(|w| (n * w.rows * w.cols) as u64).sum::<u64>();
        }
        first.push(g.rmsnorm(&m.ones, &b.t, &b.x, n, hsz, eps)?);
        let first = g.bind(&first, None)?;
        if !matches!(&self.decoder, Some((at, rows, _)) if (*at, *rows) == (q0, n)) {
            let mut body = Vec::new();
            for (i, (l, lw)) in c.layers.iter().zip(&m.layers).enumerate() {
                body.extend(self.layer(i, l, lw, n, q0, Mode::Decoder { cached: q0 })?);
            }
            body.push(g.rmsnorm(&m.final_norm, &b.x, &b.h, n, hsz, eps)?);
            for (lb, r0, rows) in self.logit_rows(n) {
                body.extend(m.embed.matmul(g, self.kernels, &b.h, r0 * hsz, rows, lb, 0, c.vocab, Epilogue::Store)?);
                if let Some(cap) = c.softcap {
                    body.push(g.softcap(lb, rows * c.vocab, cap)?);
                }
            }
            self.decoder = Some((q0, n, g.bind(&body, None)?));
        }
        Ok((first, madds))
    }
}
