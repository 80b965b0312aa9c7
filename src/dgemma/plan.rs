//! DiffusionGemma's GPU memory plan, from the index alone (before any weight is read): the
//! weights in the formats and binding-sized chunks the loader makes (`gpu.rs`), and a session's
//! buffers for a number of positions (`gpu_session.rs` allocates the same list), in the engine's
//! `MemoryPlan` so that its checks and summary apply.

use super::config::DgConfig;
use super::gpu::target_dtype;
use super::index::{DgIndex, Lt, T};
use crate::engine::weights::chunk_rows;
use crate::engine::MemoryPlan;
use crate::error::{Error, Result};
use crate::gpu::kernels::{AttnShape, KvType, MoeShape};
use crate::gpu::{Gpu, Limits};
use crate::model::DType;

/// The canvas rows whose logits each logits buffer holds: (first row, rows), each buffer within
/// one binding (the 26B's 256 × 262144 logits are 268 MB; WebGPU promises 128 MiB).
pub fn logit_chunks(c: &DgConfig, max_binding: u64) -> Vec<(usize, usize)> {
    chunk_rows(c.canvas_length, 4 * c.vocab, max_binding, 1)
}

/// A session's buffers for `positions` positions with K/V stored as `kv`: (what, bytes), in
/// allocation order. With f16 K/V a pass writes its rows' K and V in f32 ("new K rows" /
/// "new V rows", the widest layer's) and `kv_store.wgsl` rounds them into the cache. Split-K's
/// scratch (the tiled matmuls' and attention's, at least a word) comes after them.
pub fn session_buffers(c: &DgConfig, positions: usize, limits: Limits, kv: KvType) -> Vec<(String, u64)> {
    let max_binding = limits.max_binding;
    let rows = c.canvas_length;
    let max_q = c.layers.iter().map(|l| c.heads * l.head_dim).max().unwrap_or(0);
    let pairs = rows * c.top_k;
    let route = MoeShape { rows, experts: c.experts, k: c.top_k }.route_words();
    let mut v: Vec<(String, u64)> = [
        ("tokens", rows),
        ("positions", rows),
        ("residual", rows * c.hidden),
        ("normed", rows * c.hidden),
        ("branch", rows * c.hidden),
        ("ffn sum", rows * c.hidden),
        ("queries", rows * max_q),
        ("attention", rows * max_q),
        ("gate", rows * c.intermediate),
        ("router logits", rows * c.experts),
        ("route", route),
        ("expert gate", pairs * c.expert_hidden),
        ("expert out", pairs * c.hidden),
    ]
    .into_iter()
    .map(|(w, n)| (w.to_string(), 4 * n as u64))
    .collect();
    for (r0, n) in logit_chunks(c, max_binding) {
        v.push((format!("logits of rows {r0}.."), 4 * (n * c.vocab) as u64));
    }
    v.push(("step uniforms".into(), 4 * rows as u64));
    v.push(("choices".into(), 4 * 3 * rows as u64));
    if kv == KvType::F16 {
        let widest = c.layers.iter().map(|l| l.kv_heads * l.head_dim).max().unwrap_or(0);
        v.push(("new K rows".into(), 4 * (rows * widest) as u64));
        v.push(("new V rows".into(), 4 * (rows * widest) as u64));
    }
    v.push(("split-K scratch".into(), split_scratch(c, rows, positions, limits)));
    for (i, l) in c.layers.iter().enumerate() {
        // Whole words (two f16 values to a word).
        let bytes = ((positions * l.kv_heads * l.head_dim * kv.bytes()) as u64).next_multiple_of(4);
        v.push((format!("layer {i} keys"), bytes));
        v.push((format!("layer {i} values"), bytes));
    }
    v
}

/// Split-K's scratch for passes of up to `rows` rows over up to `positions` keys: the most a
/// tiled matmul of the model's shapes (outputs × k) or its attention asks for, within one binding.
fn split_scratch(c: &DgConfig, rows: usize, positions: usize, limits: Limits) -> u64 {
    let (h, ffn) = (c.hidden, c.intermediate);
    // Gate and up (the MLP's, self-conditioning's): one launch of their tiles' width or two.
    // The soft embedding: the vocabulary is its shared dimension (`Gpu::soft_embed_split`).
    let mut shapes = vec![(ffn, h), (crate::gpu::matmul::glu_width(ffn), h), (h, ffn), (c.experts, h), (h, c.vocab)];
    let mut attn = 0;
    for l in &c.layers {
        let (q, kv) = (c.heads * l.head_dim, l.kv_heads * l.head_dim);
        // Q/K/V one launch (`Gpu::matmul_qkv`) or three.
        shapes.extend([(q + 2 * kv, h), (q, h), (kv, h), (h, q)]);
        attn = attn.max(AttnShape::split_scratch_bound(positions.max(rows), c.heads, l.head_dim));
    }
    crate::gpu::matmul::split_scratch(rows, &shapes, limits.wide_tiles).max(attn).min(limits.max_binding / 256 * 256).max(4)
}

/// The plan for loading `index` converted to `quant` and running one session of `positions`
/// with K/V stored as `kv`.
pub fn plan(index: &DgIndex, quant: Option<DType>, positions: usize, limits: Limits, kv: KvType) -> Result<MemoryPlan> {
    let c = &index.config;
    let (mut weight_bytes, mut largest, mut widest) = (0u64, (String::new(), 0u64), (String::new(), 0u64));
    for (&t, r) in &index.tensors {
        // The layer scalars stay on the host (a launch parameter).
        if matches!(t, T::L(_, Lt::ScalarDecoder | Lt::ScalarEncoder)) {
            continue;
        }
        let what = format!("{t:?}");
        let d = if t.is_vector(c) { DType::F32 } else { target_dtype(t, c, r.dtype, r.cols, quant) };
        let row = d.row_bytes(r.cols).ok_or_else(|| Error::model(r.name.as_str(), "row length does not suit its format"))? as u64;
        let group = if t.is_experts() { r.rows / c.experts } else { 1 };
        for (_, n) in chunk_rows(r.rows, row as usize, limits.max_binding, group) {
            let bytes = Gpu::padded(n as u64 * row);
            weight_bytes = weight_bytes.saturating_add(bytes);
            if bytes > largest.1 {
                largest = (what.clone(), bytes);
            }
        }
        if row * group as u64 > widest.1 {
            widest = (what, row * group as u64);
        }
    }
    // The weightless norms' vector of ones.
    let max_hd = c.layers.iter().map(|l| l.head_dim).max().unwrap_or(0);
    weight_bytes += Gpu::padded(4 * c.hidden.max(max_hd) as u64);
    let (mut session_bytes, mut kv_bytes) = (0u64, 0u64);
    for (what, n) in session_buffers(c, positions, limits, kv) {
        let bytes = Gpu::padded(n);
        session_bytes = session_bytes.saturating_add(bytes);
        if what.ends_with("keys") || what.ends_with("values") {
            kv_bytes += bytes;
        }
        if bytes > largest.1 {
            largest = (what, bytes);
        }
    }
    let widest_kv = c.layers.iter().map(|l| kv.bytes() * l.kv_heads * l.head_dim).max().unwrap_or(1) as u64;
    Ok(MemoryPlan {
        quant: quant.map(|q| q.name()),
        canvas: positions,
        weight_bytes,
        session_bytes,
        kv_bytes,
        kv_type: kv.name(),
        file_bytes: index.file_bytes(),
        largest_buffer: largest,
        widest_row: widest,
        max_canvas: (limits.max_binding / widest_kv) as usize,
    })
}
