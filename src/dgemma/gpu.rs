//! DiffusionGemma's weights on the GPU (`DgGpuModel`: uploaded once, immutable, shared by any
//! number of generations). Matrices are split by rows into chunks of one storage binding (the
//! experts' by whole experts), the packed experts' gate/up rows are separated into two stacked
//! tensors for the grouped matmul, and the router's `scale / √H` becomes the weight of its norm.
//! A generation's state and passes are in `gpu_session.rs`.

use super::config::DgConfig;
use super::forward::embed_scale;
use super::weights::{DgWeights, LayerWeights};
use crate::engine::weights::{chunk_rows, GpuWeight};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::model::{DType, HostTensor};
use std::sync::Arc;

/// One layer's tensors on the GPU (norm weights as f32 vectors).
pub struct GpuLayer {
    pub input_norm: wgpu::Buffer,
    pub q: GpuWeight,
    pub k: GpuWeight,
    /// Sliding layers; full layers take V from K's projection.
    pub v: Option<GpuWeight>,
    pub o: GpuWeight,
    pub q_norm: wgpu::Buffer,
    pub k_norm: wgpu::Buffer,
    pub post_attn_norm: wgpu::Buffer,
    pub pre_ffn_norm: wgpu::Buffer,
    pub post_ffn_norm_1: wgpu::Buffer,
    pub pre_ffn_norm_2: wgpu::Buffer,
    pub post_ffn_norm_2: wgpu::Buffer,
    pub post_ffn_norm: wgpu::Buffer,
    pub gate: GpuWeight,
    pub up: GpuWeight,
    pub down: GpuWeight,
    pub router: GpuWeight,
    /// `router.scale / √H`: the weight of the router's own norm.
    pub router_norm: wgpu::Buffer,
    pub expert_scale: wgpu::Buffer,
    /// `[E · Ie, H]` each: the gate rows and the up rows of `experts.gate_up_proj`.
    pub gate_exps: GpuWeight,
    pub up_exps: GpuWeight,
    /// `[E · H, Ie]`.
    pub down_exps: GpuWeight,
    pub scalar_decoder: f32,
    pub scalar_encoder: f32,
}

pub struct DgGpuModel {
    pub gpu: Arc<Gpu>,
    pub config: DgConfig,
    /// The token embedding, also the LM head.
    pub embed: GpuWeight,
    /// `√H` as the reference rounds it.
    pub embed_scale: f32,
    pub final_norm: wgpu::Buffer,
    pub sc_norm: wgpu::Buffer,
    pub sc_gate: GpuWeight,
    pub sc_up: GpuWeight,
    pub sc_down: GpuWeight,
    /// Ones: the weight of the weightless norms (V's, the decoder input's).
    pub ones: wgpu::Buffer,
    pub layers: Vec<GpuLayer>,
}

/// Rows `[e·2Ie .. e·2Ie + Ie)` (`second`: the next Ie) of every expert of a packed gate/up.
fn half_of_packed(t: &HostTensor, experts: usize, second: bool) -> HostTensor {
    let (per, rb) = (t.rows / experts, t.row_bytes());
    let half = per / 2;
    let mut data = Vec::with_capacity(t.data.len() / 2);
    for e in 0..experts {
        let r0 = e * per + if second { half } else { 0 };
        data.extend_from_slice(&t.data[r0 * rb..(r0 + half) * rb]);
    }
    HostTensor { dtype: t.dtype, rows: half * experts, cols: t.cols, data }
}

/// A matrix converted to `quant` when given (and its row length suits it), as `DgGpuModel::upload` stores it.
fn target(t: &HostTensor, quant: Option<DType>) -> Result<HostTensor> {
    match quant {
        Some(q) if q != t.dtype && q.row_bytes(t.cols).is_some() => {
            t.convert(q).ok_or_else(|| Error::Input(format!("cannot convert a {} tensor to {}", t.dtype.name(), q.name())))
        }
        _ => Ok(t.clone()),
    }
}

/// Stacked experts on the GPU in chunks of whole experts.
fn upload_experts(gpu: &Gpu, what: &str, t: &HostTensor, experts: usize) -> Result<GpuWeight> {
    let (rb, per) = (t.row_bytes(), t.rows / experts.max(1));
    if (rb * per) as u64 > gpu.max_binding() {
        return Err(Error::Limits(format!("{what}: one expert takes {} bytes but the adapter binds at most {}", rb * per, gpu.max_binding())));
    }
    let mut chunks = Vec::new();
    for (r0, n) in chunk_rows(t.rows, rb, gpu.max_binding(), per) {
        chunks.push((gpu.upload(what, &t.data[r0 * rb..(r0 + n) * rb])?, r0, n));
    }
    Ok(GpuWeight { dtype: t.dtype, rows: t.rows, cols: t.cols, chunks })
}

impl DgGpuModel {
    /// The weights of `w` onto `gpu`, matrices converted to `quant` (Q8_0 / Q4_0) when given;
    /// the embedding (also the LM head) and norms keep their precision apart from Q4_0, which
    /// keeps the embedding in Q8_0 as the other families do.
    pub fn upload(gpu: Arc<Gpu>, w: &DgWeights, quant: Option<DType>) -> Result<Self> {
        let c = &w.config;
        let g = &*gpu;
        let mat = |what: &str, t: &HostTensor| GpuWeight::upload(g, what, &target(t, quant)?, u64::MAX);
        let vec = |what: &str, v: &[f32]| g.upload_f32(what, v);
        let inv = 1.0 / (c.hidden as f32).sqrt();
        let max_hd = c.layers.iter().map(|l| l.head_dim).max().unwrap_or(0);
        let mut layers = Vec::with_capacity(c.layers.len());
        for (i, lw) in w.layers.iter().enumerate() {
            let LayerWeights { gate_up_exps: gu, .. } = lw;
            let name = |n: &str| format!("layer {i} {n}");
            let experts = |n: &str, t: &HostTensor| upload_experts(g, &name(n), &target(t, quant)?, c.experts);
            let router_norm: Vec<f32> = lw.router_scale.iter().map(|s| s * inv).collect();
            layers.push(GpuLayer {
                input_norm: vec(&name("input norm"), &lw.input_norm)?,
                q: mat(&name("q"), &lw.q)?,
                k: mat(&name("k"), &lw.k)?,
                v: lw.v.as_ref().map(|v| mat(&name("v"), v)).transpose()?,
                o: mat(&name("o"), &lw.o)?,
                q_norm: vec(&name("q norm"), &lw.q_norm)?,
                k_norm: vec(&name("k norm"), &lw.k_norm)?,
                post_attn_norm: vec(&name("post-attention norm"), &lw.post_attn_norm)?,
                pre_ffn_norm: vec(&name("pre-ffn norm"), &lw.pre_ffn_norm)?,
                post_ffn_norm_1: vec(&name("post-ffn norm 1"), &lw.post_ffn_norm_1)?,
                pre_ffn_norm_2: vec(&name("pre-ffn norm 2"), &lw.pre_ffn_norm_2)?,
                post_ffn_norm_2: vec(&name("post-ffn norm 2"), &lw.post_ffn_norm_2)?,
                post_ffn_norm: vec(&name("post-ffn norm"), &lw.post_ffn_norm)?,
                gate: mat(&name("gate"), &lw.gate)?,
                up: mat(&name("up"), &lw.up)?,
                down: mat(&name("down"), &lw.down)?,
                router: GpuWeight::upload(g, &name("router"), &lw.router, u64::MAX)?,
                router_norm: vec(&name("router norm"), &router_norm)?,
                expert_scale: vec(&name("expert scale"), &lw.expert_scale)?,
                gate_exps: experts("expert gate", &half_of_packed(gu, c.experts, false))?,
                up_exps: experts("expert up", &half_of_packed(gu, c.experts, true))?,
                down_exps: experts("expert down", &lw.down_exps)?,
                scalar_decoder: lw.scalar_decoder,
                scalar_encoder: lw.scalar_encoder,
            });
            g.take_fault()?;
        }
        let embed_q = match quant {
            Some(DType::Q4_0) => Some(DType::Q8_0),
            q => q,
        };
        let model = DgGpuModel {
            embed: GpuWeight::upload(g, "token embedding", &target(&w.embed, embed_q)?, u64::MAX)?,
            embed_scale: embed_scale(w),
            final_norm: vec("final norm", &w.final_norm)?,
            sc_norm: vec("self-conditioning norm", &w.sc_norm)?,
            sc_gate: mat("self-conditioning gate", &w.sc_gate)?,
            sc_up: mat("self-conditioning up", &w.sc_up)?,
            sc_down: mat("self-conditioning down", &w.sc_down)?,
            ones: vec("ones", &vec![1.0; c.hidden.max(max_hd)])?,
            layers,
            config: c.clone(),
            gpu: gpu.clone(),
        };
        gpu.take_fault()?;
        Ok(model)
    }

    /// Bytes of weights on the GPU.
    pub fn weight_bytes(&self) -> u64 {
        let mut n = self.embed.bytes() + self.sc_gate.bytes() + self.sc_up.bytes() + self.sc_down.bytes();
        for l in &self.layers {
            for w in [&l.q, &l.k, &l.o, &l.gate, &l.up, &l.down, &l.router, &l.gate_exps, &l.up_exps, &l.down_exps] {
                n += w.bytes();
            }
            n += l.v.as_ref().map_or(0, |v| v.bytes());
        }
        n
    }
}
