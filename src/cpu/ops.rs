//! CPU twins of the WGSL kernels in `shaders/`, one function per kernel.

// How a choice is made from logits (`select.wgsl`, `cfg_mix.wgsl`) is defined beside `Choice`,
// since the sampler uses it too; these are the twins' names for it.
pub use crate::choice::{cfg_mix, hash_u32, select, uniform};
pub use crate::gpu::kernels::{Activation, AttnMask, RopeSpec};
use crate::model::config::Routing;
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

/// `matmul` with both inputs rounded to f16 first (x clamped to ±65504), sums in f32. Twin of
/// `matmul_coop.wgsl` (cooperative matrices multiply f16 values).
pub fn matmul_f16_inputs(x: &[f32], w: &HostTensor, m: usize) -> Vec<f32> {
    let f16 = |v: f32| half::f16::from_f32(v.clamp(-65504.0, 65504.0)).to_f32();
    let xh: Vec<f32> = x.iter().map(|&v| f16(v)).collect();
    let wh: Vec<f32> = w.to_f32().into_iter().map(f16).collect();
    matmul(&xh, &HostTensor::from_f32(w.rows, w.cols, &wh), m)
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

/// `out = scale · (acc · out + rms(x) · w)` (`rmsnorm.wgsl` with its accumulate flag and scale).
pub fn rmsnorm_into(out: &mut [f32], x: &[f32], w: &[f32], eps: f32, accumulate: bool, scale: f32) {
    for (o, n) in out.iter_mut().zip(rmsnorm(x, w, eps)) {
        *o = scale * (if accumulate { *o } else { 0.0 } + n);
    }
}

/// Rotates the pairs `spec` names of each head of each row in place; `positions[r]` is row r's
/// position. Twin of `rope.wgsl`.
pub fn rope(x: &mut [f32], positions: &[u32], n_heads: usize, head_dim: usize, spec: RopeSpec, style: RopeStyle) {
    let row = n_heads * head_dim;
    for (r, &pos) in positions.iter().enumerate() {
        for h in 0..n_heads {
            let base = r * row + h * head_dim;
            for i in 0..spec.pairs {
                let angle = pos as f32 * spec.inv_freq(i);
                let (s, c) = angle.sin_cos();
                let (a, b) = match style {
                    RopeStyle::NeoX => (base + i, base + i + spec.half),
                    RopeStyle::Interleaved => (base + 2 * i, base + 2 * i + 1),
                };
                let (x0, x1) = (x[a], x[b]);
                x[a] = x0 * c - x1 * s;
                x[b] = x0 * s + x1 * c;
            }
        }
    }
}

/// `silu(gate) · up`, elementwise. Twin of `swiglu.wgsl` (act 0).
pub fn swiglu(gate: &[f32], up: &[f32]) -> Vec<f32> {
    glu(gate, up, Activation::Silu)
}

/// `act(gate) · up`, elementwise. Twin of `swiglu.wgsl`.
pub fn glu(gate: &[f32], up: &[f32], act: Activation) -> Vec<f32> {
    gate.iter().zip(up).map(|(&g, u)| act.apply(g) * u).collect()
}

/// Softmax of each row of `n` values, in place. Twin of `softmax.wgsl`.
pub fn softmax_rows(x: &mut [f32], n: usize) {
    for row in x.chunks_exact_mut(n) {
        let mx = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = row.iter().map(|v| (v - mx).exp()).sum();
        row.iter_mut().for_each(|v| *v = (*v - mx).exp() / sum);
    }
}

/// `scale · probs · E` for probability rows `probs` `[m, V]` and an embedding table `[V, H]`:
/// the expected embedding under each row. Twin of `soft_embed.wgsl` (all chunks).
pub fn soft_embed(probs: &[f32], table: &HostTensor, scale: f32) -> Vec<f32> {
    let (v, h) = (table.rows, table.cols);
    let t = table.to_f32();
    let mut out = vec![0f32; probs.len() / v * h];
    for (row, o) in probs.chunks_exact(v).zip(out.chunks_exact_mut(h)) {
        for (tok, p) in row.iter().enumerate() {
            for (oc, e) in o.iter_mut().zip(&t[tok * h..(tok + 1) * h]) {
                *oc += p * e;
            }
        }
        o.iter_mut().for_each(|x| *x *= scale);
    }
    out
}

/// `cap · tanh(x / cap)` in place. Twin of `softcap.wgsl`.
pub fn softcap(x: &mut [f32], cap: f32) {
    x.iter_mut().for_each(|v| *v = cap * (*v / cap).tanh());
}

/// Rows of the embedding table for each token. Twin of `embed.wgsl`.
pub fn embed(table: &HostTensor, tokens: &[u32]) -> Vec<f32> {
    tokens.iter().flat_map(|&t| table.row_f32(t as usize)).collect()
}

/// Multi-head attention with GQA; query row i (canvas position `mask.q0 + i`) sees the keys
/// `mask.keys` gives it (all of them with `AttnMask::FULL`). q: `[mask.q_row + lq, n_heads·d]`
/// (queries from row `mask.q_row`), k and v:
/// `[lk, n_kv·d]`; returns `[lq, n_heads·d]`. Twin of `attention.wgsl`.
#[allow(clippy::too_many_arguments)]
pub fn attention(q: &[f32], k: &[f32], v: &[f32], lq: usize, lk: usize, n_heads: usize, n_kv: usize, d: usize, mask: &AttnMask) -> Vec<f32> {
    let scale = mask.scale.unwrap_or(1.0 / (d as f32).sqrt());
    let group = n_heads / n_kv;
    let mut out = vec![0f32; lq * n_heads * d];
    for i in 0..lq {
        let keys = mask.keys(mask.q0 + i, lk);
        for h in 0..n_heads {
            let kh = h / group;
            let qv = &q[((mask.q_row + i) * n_heads + h) * d..][..d];
            let scores: Vec<f32> = keys.clone().map(|j| qv.iter().zip(&k[(j * n_kv + kh) * d..][..d]).map(|(a, b)| a * b).sum::<f32>() * scale).collect();
            let m = scores.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let e: Vec<f32> = scores.iter().map(|s| (s - m).exp()).collect();
            let sum: f32 = e.iter().sum();
            let o = &mut out[(i * n_heads + h) * d..][..d];
            for (j, p) in keys.clone().zip(&e) {
                for (od, vd) in o.iter_mut().zip(&v[(j * n_kv + kh) * d..][..d]) {
                    *od += p / sum * vd;
                }
            }
        }
    }
    out
}

/// `y[row0 + r, :] += b` for every row of `y` from `row0`. Twin of `bias.wgsl`.
pub fn add_bias(y: &mut [f32], b: &[f32], row0: usize) {
    for row in y.chunks_exact_mut(b.len()).skip(row0) {
        for (v, bb) in row.iter_mut().zip(b) {
            *v += bb;
        }
    }
}

/// QK-norm: RMSNorm of every `w.len()`-long group of `x`, in place. Twin of `head_pass.wgsl`'s
/// norm.
pub fn qk_norm(x: &mut [f32], w: &[f32], eps: f32) {
    let normed = rmsnorm(x, w, eps);
    x.copy_from_slice(&normed);
}

/// The routing of one MoE layer's positions (`moe_route.wgsl`'s route buffer, unpacked).
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// Experts per position.
    pub k: usize,
    /// Expert of (position, slot) at `position·k + slot`.
    pub experts: Vec<u32>,
    /// Its router weight.
    pub weights: Vec<f32>,
    /// Per expert, the (position·k + slot) pairs that picked it, in order.
    pub lists: Vec<Vec<u32>>,
}

/// Per row of router `logits` `[rows, experts]`: the experts' scores (softmax over the row, or
/// a sigmoid each), the top `k` by score + `bias` (ties to the lower index; with groups, only in
/// the best `topk_groups` groups by the sum of their two best biased scores), weighted by their
/// unbiased scores, renormalised to sum 1 when `norm`, times the scale. Twin of `moe_route.wgsl`.
pub fn moe_route(logits: &[f32], experts: usize, k: usize, norm: bool, routing: Routing, bias: Option<&[f32]>) -> Route {
    moe_route_scaled(logits, experts, k, norm, routing, bias, None)
}

/// `moe_route` with each chosen expert's weight also multiplied by `expert_scale[e]` when given
/// (DiffusionGemma's per_expert_scale). Twin of `moe_route.wgsl`.
pub fn moe_route_scaled(logits: &[f32], experts: usize, k: usize, norm: bool, routing: Routing, bias: Option<&[f32]>, expert_scale: Option<&[f32]>) -> Route {
    let rows = logits.len() / experts;
    let gsize = experts / routing.groups.max(1);
    let mut r = Route { k, experts: Vec::with_capacity(rows * k), weights: Vec::with_capacity(rows * k), lists: vec![vec![]; experts] };
    for row in logits.chunks_exact(experts) {
        let mx = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        let sum: f32 = row.iter().map(|l| (l - mx).exp()).sum();
        let score = |e: usize| if routing.sigmoid { 1.0 / (1.0 + (-row[e]).exp()) } else { (row[e] - mx).exp() / sum };
        let biased = |e: usize| score(e) + bias.map_or(0.0, |b| b[e]);
        // Best of `items` not yet taken by `key`, ties to the lower index.
        let best = |items: &mut dyn Iterator<Item = usize>, key: &dyn Fn(usize) -> f32| {
            items.fold(None, |b: Option<usize>, e| match b {
                Some(b) if key(b) >= key(e) => Some(b),
                _ => Some(e),
            })
        };
        let mut groups: Vec<usize> = (0..routing.groups).collect();
        if routing.groups > 1 {
            let gscore = |g: usize| {
                let mut s: Vec<f32> = (g * gsize..(g + 1) * gsize).map(biased).collect();
                s.sort_by(|a, b| b.total_cmp(a));
                s[0] + s[1]
            };
            groups.clear();
            for _ in 0..routing.topk_groups {
                let g = best(&mut (0..routing.groups).filter(|g| !groups.contains(g)), &gscore).expect("topk_groups ≤ groups");
                groups.push(g);
            }
        }
        let mut taken: Vec<usize> = Vec::with_capacity(k);
        for _ in 0..k {
            let e = best(&mut (0..experts).filter(|e| !taken.contains(e) && groups.contains(&(e / gsize))), &biased).expect("k fits the groups");
            taken.push(e);
        }
        let w: Vec<f32> = taken.iter().map(|&e| score(e)).collect();
        let total: f32 = w.iter().sum();
        r.experts.extend(taken.iter().map(|&e| e as u32));
        let es = |e: usize| expert_scale.map_or(1.0, |s| s[e]);
        r.weights.extend(w.iter().zip(&taken).map(|(&v, &e)| if norm { v / total } else { v } * routing.scale * es(e)));
    }
    for (pair, &e) in r.experts.iter().enumerate() {
        r.lists[e as usize].push(pair as u32);
    }
    r
}

/// The grouped expert matmul: for every (position, slot) pair, `y[pair, :] = x[src] · W_eᵀ` with
/// `W_e` expert e's rows of the stacked `w` and `src` the pair's own row of `x` (`by_pair`) or its
/// position's. Returns `[pairs, n]`. Twin of `moe_matmul.wgsl`.
pub fn moe_matmul(x: &[f32], by_pair: bool, w: &HostTensor, experts: usize, route: &Route) -> Vec<f32> {
    let (n, kdim) = (w.rows / experts, w.cols);
    let wf = w.to_f32();
    let mut y = vec![0f32; route.experts.len() * n];
    for (pair, &e) in route.experts.iter().enumerate() {
        let src = if by_pair { pair } else { pair / route.k };
        let xr = &x[src * kdim..(src + 1) * kdim];
        for c in 0..n {
            let wr = &wf[(e as usize * n + c) * kdim..][..kdim];
            y[pair * n + c] = xr.iter().zip(wr).map(|(a, b)| a * b).sum();
        }
    }
    y
}

/// `moe_matmul` with both inputs rounded to f16 first (x clamped to ±65504), sums in f32: the
/// twin of the grouped expert matmul on cooperative matrices (`moe_coop.wgsl`).
pub fn moe_matmul_f16_inputs(x: &[f32], by_pair: bool, w: &HostTensor, experts: usize, route: &Route) -> Vec<f32> {
    let f16 = |v: f32| half::f16::from_f32(v.clamp(-65504.0, 65504.0)).to_f32();
    let xh: Vec<f32> = x.iter().map(|&v| f16(v)).collect();
    let wh: Vec<f32> = w.to_f32().into_iter().map(f16).collect();
    moe_matmul(&xh, by_pair, &HostTensor::from_f32(w.rows, w.cols, &wh), experts, route)
}

/// `x[r, :] += Σ_slot weight(r, slot) · y[r·k + slot, :]`. Twin of `moe_combine.wgsl`.
pub fn moe_combine(x: &mut [f32], y: &[f32], route: &Route) {
    let dim = x.len() / (route.experts.len() / route.k).max(1);
    for (r, xr) in x.chunks_exact_mut(dim).enumerate() {
        for (c, v) in xr.iter_mut().enumerate() {
            let mut s = 0.0;
            for j in 0..route.k {
                let pair = r * route.k + j;
                s += route.weights[pair] * y[pair * dim + c];
            }
            *v += s;
        }
    }
}

/// Twin of `dg_choose.wgsl`: per row of `logits` (`vocab` each) and its uniform `u`, the argmax
/// of z = logits · inv_t (the first of equal maxima), the entropy of softmax(z), and the first
/// token whose cumulative probability reaches u (the last token when rounding leaves u past it).
pub fn dg_choose(logits: &[f32], vocab: usize, inv_t: f32, u: &[f32]) -> Vec<(u32, f32, u32)> {
    logits
        .chunks_exact(vocab)
        .zip(u)
        .map(|(row, &u)| {
            let z: Vec<f32> = row.iter().map(|x| x * inv_t).collect();
            let (mi, mx) = z.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, &v)| if v > b.1 { (i, v) } else { b });
            let e: Vec<f64> = z.iter().map(|&v| ((v - mx) as f64).exp()).collect();
            let total: f64 = e.iter().sum();
            let sed: f64 = e.iter().zip(&z).map(|(e, &v)| e * (v - mx) as f64).sum();
            let target = u as f64 * total;
            let mut acc = 0.0;
            let pick = e.iter().position(|x| {
                acc += x;
                acc >= target
            });
            (mi as u32, (total.ln() - sed / total) as f32, pick.unwrap_or(vocab - 1) as u32)
        })
        .collect()
}
