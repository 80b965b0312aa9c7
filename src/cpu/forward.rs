//! The forward pass of every family on the CPU, written as plainly as possible: the reference that the GPU
//! forward pass (`crate::forward`) is tested against.

use super::ops;
use crate::choice::{Choice, Noise};
use crate::engine::graph;
use crate::gpu::kernels::KvType;
use crate::model::arch::Key;
use crate::model::{ModelWeights, Role};
use std::ops::Range;

/// `tokens[L] → logits[L, V]`, full bidirectional attention over the whole sequence.
pub fn forward(w: &ModelWeights, tokens: &[u32]) -> Vec<f32> {
    forward_rows(w, tokens, 0..tokens.len(), &mut KvCache::default())
}

/// Every layer's K and V (after RoPE) of every position of a canvas, as the last pass left them,
/// stored as `kv` stores them (f16: rounded once, as `kv_store.wgsl` does); and whether the
/// passes round the matmuls' inputs to f16 (`f16_inputs`), as cooperative matrices do.
#[derive(Default)]
pub struct KvCache {
    len: usize,
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    kv: KvType,
    f16_inputs: bool,
}

impl KvCache {
    /// An empty cache whose values are stored as `kv`.
    pub fn new(kv: KvType) -> Self {
        KvCache { kv, ..KvCache::default() }
    }

    /// The twin of sessions whose tiled matmuls run on cooperative matrices
    /// (`ops::matmul_f16_inputs` for every dense projection and the head,
    /// `ops::moe_matmul_f16_inputs` for the experts).
    pub fn with_f16_matmul_inputs(self) -> Self {
        KvCache { f16_inputs: true, ..self }
    }
}

/// `tokens[L] → logits[rows, V]` for the positions `rows` only: their K/V replace those rows of
/// `kv`, and their queries attend to all `L` positions, the others' K/V taken from `kv` as an
/// earlier pass left them (Fast-dLLM's prefix and dual cache; exact when `rows` is everything).
/// A cache of another canvas length starts over at zeros, as the GPU's does.
pub fn forward_rows(w: &ModelWeights, tokens: &[u32], rows: Range<usize>, kv: &mut KvCache) -> Vec<f32> {
    forward_part(w, tokens, rows.clone(), rows, kv)
}

/// `forward_rows`, with the logits of the rows `out` (inside `rows`) alone, as a GPU session's
/// `forward_part` computes them: the LM head runs for those rows only.
pub fn forward_part(w: &ModelWeights, tokens: &[u32], rows: Range<usize>, out: Range<usize>, kv: &mut KvCache) -> Vec<f32> {
    let c = &w.config;
    let (l, n, hd) = (tokens.len(), rows.len(), c.head_dim());
    let kv_dim = c.n_kv_heads * hd;
    let layers = c.n_layers;
    if kv.len != l || kv.k.len() != layers {
        *kv = KvCache { len: l, k: vec![vec![0.0; l * kv_dim]; layers], v: vec![vec![0.0; l * kv_dim]; layers], ..*kv };
    }
    let f16_inputs = kv.f16_inputs;
    let mm = |x: &[f32], w: &crate::model::HostTensor, m: usize| if f16_inputs { ops::matmul_f16_inputs(x, w, m) } else { ops::matmul(x, w, m) };
    let positions: Vec<u32> = rows.clone().map(|p| p as u32).collect();
    let mut x = ops::embed(&w.tensors[Role::Embed], &tokens[rows.clone()]);
    for i in 0..layers {
        let t = |r: Role| w.layer(i, r);
        let opt = |r: Role| w.tensors.get(Key::at(i, r));
        let h = ops::rmsnorm(&x, &t(Role::AttnNorm).to_f32(), c.rms_norm_eps);
        let mut q = mm(&h, t(Role::Q), n);
        let mut k = mm(&h, t(Role::K), n);
        let mut v = mm(&h, t(Role::V), n);
        for (role, y) in [(Role::QBias, &mut q), (Role::KBias, &mut k), (Role::VBias, &mut v)] {
            if let Some(b) = opt(role) {
                ops::add_bias(y, &b.to_f32(), 0);
            }
        }
        for (role, y) in [(Role::QNorm, &mut q), (Role::KNorm, &mut k)] {
            if let Some(nw) = opt(role) {
                ops::qk_norm(y, &nw.to_f32(), c.rms_norm_eps);
            }
        }
        ops::rope(&mut q, &positions, c.n_heads, hd, ops::RopeSpec::first(c.rope_dims, c.rope_theta), w.rope);
        ops::rope(&mut k, &positions, c.n_kv_heads, hd, ops::RopeSpec::first(c.rope_dims, c.rope_theta), w.rope);
        let span = rows.start * kv_dim..rows.end * kv_dim;
        let store = kv.kv;
        kv.k[i][span.clone()].iter_mut().zip(&k).for_each(|(d, &x)| *d = store.round(x));
        kv.v[i][span].iter_mut().zip(&v).for_each(|(d, &x)| *d = store.round(x));
        let mask = ops::AttnMask { q0: rows.start, block: c.attention_block, ..ops::AttnMask::FULL };
        let a = ops::attention(&q, &kv.k[i], &kv.v[i], n, l, c.n_heads, c.n_kv_heads, hd, &mask);
        add(&mut x, &mm(&a, t(Role::O), n));
        if let Some(b) = opt(Role::OBias) {
            ops::add_bias(&mut x, &b.to_f32(), 0);
        }
        let h = ops::rmsnorm(&x, &t(Role::FfnNorm).to_f32(), c.rms_norm_eps);
        match opt(Role::Router) {
            Some(router) => {
                let bias = opt(Role::ExpertBias).map(|b| b.to_f32());
                let route = ops::moe_route(&mm(&h, router, n), c.n_experts, c.n_experts_used, c.norm_topk_prob, c.routing, bias.as_deref());
                let experts = |x: &[f32], by_pair: bool, r: Role| match f16_inputs {
                    true => ops::moe_matmul_f16_inputs(x, by_pair, t(r), c.n_experts, &route),
                    false => ops::moe_matmul(x, by_pair, t(r), c.n_experts, &route),
                };
                let (g, u) = (experts(&h, false, Role::GateExps), experts(&h, false, Role::UpExps));
                let y = experts(&ops::swiglu(&g, &u), true, Role::DownExps);
                ops::moe_combine(&mut x, &y, &route);
                if let Some(sg) = opt(Role::SharedGate) {
                    let (g, u) = (mm(&h, sg, n), mm(&h, t(Role::SharedUp), n));
                    add(&mut x, &mm(&ops::swiglu(&g, &u), t(Role::SharedDown), n));
                }
            }
            None => {
                let g = mm(&h, t(Role::Gate), n);
                let u = mm(&h, t(Role::Up), n);
                add(&mut x, &mm(&ops::swiglu(&g, &u), t(Role::Down), n));
            }
        }
    }
    let d = c.d_model;
    let x = ops::rmsnorm(&x[(out.start - rows.start) * d..(out.end - rows.start) * d], &w.tensors[Role::FinalNorm].to_f32(), c.rms_norm_eps);
    mm(&x, &w.tensors[Role::LmHead], out.len())
}

fn add(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// The CPU twin as a sampler model: generations through it are the reference that GPU
/// generations are checked against, with the same K/V cache semantics as the GPU model.
pub struct CpuModel<'a> {
    pub weights: &'a ModelWeights,
    kv: KvCache,
}

impl<'a> CpuModel<'a> {
    pub fn new(weights: &'a ModelWeights) -> Self {
        CpuModel { weights, kv: KvCache::default() }
    }

    /// Choices for positions `want` from a pass over the rows `computed_rows` gives for `rows`
    /// (the LM head for `want`'s alone); each row is sampled with the noise of the position it
    /// predicts, as on the GPU.
    fn predict(&mut self, canvas: &[u32], rows: Range<usize>, want: Range<usize>, noise: Noise) -> crate::Result<Vec<Choice>> {
        let (v, shift) = (self.weights.config.vocab_size, self.weights.config.shift_logits);
        let (computed, out) = graph::part_rows(&rows, &want, shift)?;
        let logits = forward_part(self.weights, canvas, computed, out.clone(), &mut self.kv);
        let per_row: Vec<Choice> =
            logits.chunks_exact(v).enumerate().map(|(i, row)| ops::select(row, (out.start + i + shift as usize) as u32, noise)).collect();
        Ok(graph::align(&per_row, 1, &want, &out, shift))
    }

    /// The same checks as a GPU session's: tokens from a tokenizer or infill/pin text must be
    /// ids of this model's vocabulary.
    fn check(&self, canvas: &[u32]) -> crate::Result<()> {
        let v = self.weights.config.vocab_size;
        if canvas.is_empty() {
            return Err(crate::Error::Input("the token sequence is empty".into()));
        }
        if let Some(bad) = canvas.iter().find(|&&t| t as usize >= v) {
            return Err(crate::Error::Input(format!("token id {bad} is outside the vocabulary (0..{v})")));
        }
        Ok(())
    }
}

impl crate::sampler::Denoiser for CpuModel<'_> {
    async fn choose(&mut self, canvas: &[u32], noise: Noise) -> crate::Result<Vec<Choice>> {
        self.check(canvas)?;
        self.predict(canvas, 0..canvas.len(), 0..canvas.len(), noise)
    }
    /// Logits per position: row p − 1's for position p in a model with shifted logits.
    async fn logits(&mut self, canvas: &[u32]) -> crate::Result<Vec<f32>> {
        self.check(canvas)?;
        let all = 0..canvas.len();
        Ok(graph::align(&forward(self.weights, canvas), self.weights.config.vocab_size, &all, &all, self.weights.config.shift_logits))
    }
    fn vocab_size(&self) -> usize {
        self.weights.config.vocab_size
    }
    async fn choose_rows(&mut self, canvas: &[u32], rows: Range<usize>, noise: Noise) -> crate::Result<Vec<Choice>> {
        self.choose_in(canvas, Some(rows.clone()), rows, noise).await
    }
    async fn choose_in(&mut self, canvas: &[u32], rows: Option<Range<usize>>, want: Range<usize>, noise: Noise) -> crate::Result<Vec<Choice>> {
        self.check(canvas)?;
        let rows = rows.unwrap_or(0..canvas.len());
        if rows.start >= rows.end || rows.end > canvas.len() {
            return Err(crate::Error::Input(format!("row range {rows:?} is not inside the canvas of {}", canvas.len())));
        }
        self.predict(canvas, rows, want, noise)
    }
}
