//! The LLaDA forward pass on the CPU, written as plainly as possible: the reference that the GPU
//! forward pass (`crate::forward`) is tested against.

use super::ops;
use crate::model::ModelWeights;

/// `tokens[L] → logits[L, V]`, full bidirectional attention over the whole sequence.
pub fn forward(w: &ModelWeights, tokens: &[u32]) -> Vec<f32> {
    let c = &w.config;
    let (l, hd) = (tokens.len(), c.head_dim());
    let positions: Vec<u32> = (0..l as u32).collect();
    let mut x = ops::embed(&w.embed, tokens);
    for layer in &w.layers {
        let h = ops::rmsnorm(&x, &layer.attn_norm, c.rms_norm_eps);
        let mut q = ops::matmul(&h, &layer.wq, l);
        let mut k = ops::matmul(&h, &layer.wk, l);
        let v = ops::matmul(&h, &layer.wv, l);
        ops::rope(&mut q, &positions, c.n_heads, hd, c.rope_theta, w.rope);
        ops::rope(&mut k, &positions, c.n_kv_heads, hd, c.rope_theta, w.rope);
        let a = ops::attention(&q, &k, &v, l, l, c.n_heads, c.n_kv_heads, hd);
        add(&mut x, &ops::matmul(&a, &layer.wo, l));
        let h = ops::rmsnorm(&x, &layer.ff_norm, c.rms_norm_eps);
        let g = ops::matmul(&h, &layer.w_gate, l);
        let u = ops::matmul(&h, &layer.w_up, l);
        add(&mut x, &ops::matmul(&ops::swiglu(&g, &u), &layer.w_down, l));
    }
    let x = ops::rmsnorm(&x, &w.ln_f, c.rms_norm_eps);
    ops::matmul(&x, &w.lm_head, l)
}

fn add(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

/// The CPU twin as a sampler model: generations through it are the reference that GPU
/// generations are checked against.
pub struct CpuModel<'a>(pub &'a ModelWeights);

impl crate::sampler::Denoiser for CpuModel<'_> {
    async fn choose(&mut self, canvas: &[u32], noise: ops::Noise) -> crate::Result<Vec<ops::Choice>> {
        let v = self.0.config.vocab_size;
        let logits = forward(self.0, canvas);
        Ok((0..canvas.len()).map(|p| ops::select(&logits[p * v..(p + 1) * v], p as u32, noise)).collect())
    }
    async fn logits(&mut self, canvas: &[u32]) -> crate::Result<Vec<f32>> {
        Ok(forward(self.0, canvas))
    }
    fn vocab_size(&self) -> usize {
        self.0.config.vocab_size
    }
}
