//! CPU twins of the WGSL kernels in `shaders/`, one function per kernel.

// How a choice is made from logits (`select.wgsl`, `cfg_mix.wgsl`) is defined beside `Choice`,
// since the sampler uses it too; these are the twins' names for it.
pub use crate::choice::{cfg_mix, hash_u32, select, uniform};
use crate::model::{HostTensor, RopeStyle};

/// `y[m, n] = Σ_k x[m, k] · w[n, k]` (weights stored `[N, K]`, any dtype, dequantized).
/// Twin of `matmul.wgsl`.
pub fn matmul(x: &[f32], w: &HostTensor, m: usize) -> Vec<f32> {
    let (n, k) = (w.rows, w.cols);
    let wf = w.to_f32();
    let mut y = vec![0f32; m * n];
    for i in 0..m {
        let xr = &x[i * k..(i + 1) * k];
        for j in 0..n {
            let wr = &wf[j * k..(j + 1) * k];
            y[i * n + j] = xr.iter().zip(wr).map(|(a, b)| a * b).sum();
        }
    }
    y
}

/// RMSNorm per row of `dim` values: `x / sqrt(mean(x²) + eps) · w`. Twin of `rmsnorm.wgsl`.
pub fn rmsnorm(x: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
    let dim = w.len();
    let mut out = vec![0f32; x.len()];
    for (xr, or) in x.chunks_exact(dim).zip(out.chunks_exact_mut(dim)) {
        let ms = xr.iter().map(|v| v * v).sum::<f32>() / dim as f32;
        let inv = 1.0 / (ms + eps).sqrt();
        for ((o, v), g) in or.iter_mut().zip(xr).zip(w) {
            *o = v * inv * g;
        }
    }
    out
}

/// Rotates each head of each row in place; `positions[r]` is row r's position. Twin of `rope.wgsl`.
pub fn rope(x: &mut [f32], positions: &[u32], n_heads: usize, head_dim: usize, theta: f32, style: RopeStyle) {
    let row = n_heads * head_dim;
    let half = head_dim / 2;
    for (r, &pos) in positions.iter().enumerate() {
        for h in 0..n_heads {
            let base = r * row + h * head_dim;
            for i in 0..half {
                let inv_freq = 1.0 / theta.powf((2 * i) as f32 / head_dim as f32);
                let angle = pos as f32 * inv_freq;
                let (s, c) = angle.sin_cos();
                let (a, b) = match style {
                    RopeStyle::NeoX => (base + i, base + i + half),
                    RopeStyle::Interleaved => (base + 2 * i, base + 2 * i + 1),
                };
                let (x0, x1) = (x[a], x[b]);
                x[a] = x0 * c - x1 * s;
                x[b] = x0 * s + x1 * c;
            }
        }
    }
}

/// `silu(gate) · up`, elementwise. Twin of `swiglu.wgsl`.
pub fn swiglu(gate: &[f32], up: &[f32]) -> Vec<f32> {
    gate.iter().zip(up).map(|(g, u)| g / (1.0 + (-g).exp()) * u).collect()
}

/// Rows of the embedding table for each token. Twin of `embed.wgsl`.
pub fn embed(table: &HostTensor, tokens: &[u32]) -> Vec<f32> {
    tokens.iter().flat_map(|&t| table.row_f32(t as usize)).collect()
}

/// Bidirectional (no causal mask) multi-head attention with GQA.
/// q: `[lq, n_heads·d]`, k and v: `[lk, n_kv·d]`; returns `[lq, n_heads·d]`. Twin of `attention.wgsl`.
#[allow(clippy::too_many_arguments)]
pub fn attention(q: &[f32], k: &[f32], v: &[f32], lq: usize, lk: usize, n_heads: usize, n_kv: usize, d: usize) -> Vec<f32> {
    let scale = 1.0 / (d as f32).sqrt();
    let group = n_heads / n_kv;
    let mut out = vec![0f32; lq * n_heads * d];
    for i in 0..lq {
        for h in 0..n_heads {
            let kh = h / group;
            let qv = &q[(i * n_heads + h) * d..][..d];
            let scores: Vec<f32> = (0..lk).map(|j| qv.iter().zip(&k[(j * n_kv + kh) * d..][..d]).map(|(a, b)| a * b).sum::<f32>() * scale).collect();
            let m = scores.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let e: Vec<f32> = scores.iter().map(|s| (s - m).exp()).collect();
            let sum: f32 = e.iter().sum();
            let o = &mut out[(i * n_heads + h) * d..][..d];
            for (j, p) in e.iter().enumerate() {
                for (od, vd) in o.iter_mut().zip(&v[(j * n_kv + kh) * d..][..d]) {
                    *od += p / sum * vd;
                }
            }
        }
    }
    out
}
