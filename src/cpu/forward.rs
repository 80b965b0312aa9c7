//! The LLaDA forward pass on the CPU, written as plainly as possible: the reference that the GPU
//! forward pass (`crate::forward`) is tested against.

use super::ops;
use crate::model::ModelWeights;
use std::ops::Range;

/// `tokens[L] → logits[L, V]`, full bidirectional attention over the whole sequence.
pub fn forward(w: &ModelWeights, tokens: &[u32]) -> Vec<f32> {
    forward_rows(w, tokens, 0..tokens.len(), &mut KvCache::default())
}

/// Every layer's K and V (after RoPE) of every position of a canvas, as the last pass left them.
#[derive(Default)]
pub struct KvCache {
    len: usize,
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

/// `tokens[L] → logits[rows, V]` for the positions `rows` only: their K/V replace those rows of
/// `kv`, and their queries attend to all `L` positions, the others' K/V taken from `kv` as an
/// earlier pass left them (Fast-dLLM's prefix and dual cache; exact when `rows` is everything).
/// A cache of another canvas length starts over at zeros, as the GPU's does.
pub fn forward_rows(w: &ModelWeights, tokens: &[u32], rows: Range<usize>, kv: &mut KvCache) -> Vec<f32> {
    let c = &w.config;
    let (l, n, hd) = (tokens.len(), rows.len(), c.head_dim());
    let kv_dim = c.n_kv_heads * hd;
    if kv.len != l || kv.k.len() != w.layers.len() {
        *kv = KvCache { len: l, k: vec![vec![0.0; l * kv_dim]; w.layers.len()], v: vec![vec![0.0; l * kv_dim]; w.layers.len()] };
    }
    let positions: Vec<u32> = rows.clone().map(|p| p as u32).collect();
    let mut x = ops::embed(&w.embed, &tokens[rows.clone()]);
    for (i, layer) in w.layers.iter().enumerate() {
        let h = ops::rmsnorm(&x, &layer.attn_norm, c.rms_norm_eps);
        let mut q = ops::matmul(&h, &layer.wq, n);
        let mut k = ops::matmul(&h, &layer.wk, n);
        let v = ops::matmul(&h, &layer.wv, n);
        ops::rope(&mut q, &positions, c.n_heads, hd, c.rope_theta, w.rope);
        ops::rope(&mut k, &positions, c.n_kv_heads, hd, c.rope_theta, w.rope);
        let span = rows.start * kv_dim..rows.end * kv_dim;
        kv.k[i][span.clone()].copy_from_slice(&k);
        kv.v[i][span].copy_from_slice(&v);
        let a = ops::attention(&q, &kv.k[i], &kv.v[i], n, l, c.n_heads, c.n_kv_heads, hd);
        add(&mut x, &ops::matmul(&a, &layer.wo, n));
        let h = ops::rmsnorm(&x, &layer.ff_norm, c.rms_norm_eps);
        let g = ops::matmul(&h, &layer.w_gate, n);
        let u = ops::matmul(&h, &layer.w_up, n);
        add(&mut x, &ops::matmul(&ops::swiglu(&g, &u), &layer.w_down, n));
    }
    let x = ops::rmsnorm(&x, &w.ln_f, c.rms_norm_eps);
    ops::matmul(&x, &w.lm_head, n)
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

    fn choices(&self, logits: &[f32], first: usize, noise: ops::Noise) -> Vec<ops::Choice> {
        let v = self.weights.config.vocab_size;
        logits.chunks_exact(v).enumerate().map(|(i, row)| ops::select(row, (first + i) as u32, noise)).collect()
    }
}

impl crate::sampler::Denoiser for CpuModel<'_> {
    async fn choose(&mut self, canvas: &[u32], noise: ops::Noise) -> crate::Result<Vec<ops::Choice>> {
        let logits = forward_rows(self.weights, canvas, 0..canvas.len(), &mut self.kv);
        Ok(self.choices(&logits, 0, noise))
    }
    async fn logits(&mut self, canvas: &[u32]) -> crate::Result<Vec<f32>> {
        Ok(forward(self.weights, canvas))
    }
    fn vocab_size(&self) -> usize {
        self.weights.config.vocab_size
    }
    async fn choose_rows(&mut self, canvas: &[u32], rows: Range<usize>, noise: ops::Noise) -> crate::Result<Vec<ops::Choice>> {
        if rows.start >= rows.end || rows.end > canvas.len() {
            return Err(crate::Error::Input(format!("row range {rows:?} is not inside the canvas of {}", canvas.len())));
        }
        let logits = forward_rows(self.weights, canvas, rows.clone(), &mut self.kv);
        Ok(self.choices(&logits, rows.start, noise))
    }
}
