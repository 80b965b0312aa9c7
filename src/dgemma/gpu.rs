//! DiffusionGemma's weights on the GPU (`DgGpuModel`: streamed once, immutable, shared by any
//! number of generations). Matrices are split by rows into chunks of one storage binding (the
//! experts' by whole experts; the packed gate/up arrives as two stacked tensors, see
//! `index.rs`), vectors become f32, and the router's `scale / √H` becomes the weight of its norm.
//! A generation's state and passes are in `gpu_session.rs`.

use super::config::DgConfig;
use super::forward::embed_scale;
use super::index::{DgIndex, Lt, T};
use crate::engine::weights::{stream_tensor, GpuWeight, Progress, PIECE_BYTES};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::model::source::ByteSource;
use crate::model::{DType, HostTensor};
use std::collections::BTreeMap;
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
    /// Ones: the weight of the decoder input's weightless norm (V's is the head pass's).
    pub ones: wgpu::Buffer,
    pub layers: Vec<GpuLayer>,
}

/// The format tensor `t` (stored as `stored`) takes on the GPU under `quant`: vectors f32;
/// matrices converted to `quant` when their rows suit it, the embedding (also the LM head) to
/// Q8_0 under Q4_0 as the other families do, the router and already quantized tensors as stored.
pub fn target_dtype(t: T, c: &DgConfig, stored: DType, cols: usize, quant: Option<DType>) -> DType {
    if t.is_vector(c) {
        return DType::F32;
    }
    let q = match (t, quant) {
        (T::L(_, Lt::Router), _) | (_, None) => return stored,
        (T::Embed, Some(DType::Q4_0)) => DType::Q8_0,
        (_, Some(q)) => q,
    };
    let float = matches!(stored, DType::F32 | DType::F16 | DType::BF16);
    if float && q.row_bytes(cols).is_some() {
        q
    } else {
        stored
    }
}

impl DgGpuModel {
    /// Streams the model of `index` from `src` onto `gpu`, matrices converted to `quant` (Q8_0
    /// or Q4_0) when given (`target_dtype`), a few MB read at a time; `progress(bytes read,
    /// bytes total)` after each piece.
    pub async fn load<S: ByteSource>(gpu: Arc<Gpu>, index: &DgIndex, src: &S, quant: Option<DType>, progress: &mut dyn FnMut(u64, u64)) -> Result<Self> {
        let c = &index.config;
        let g = &*gpu;
        let mut p = Progress { done: 0, total: index.file_bytes(), report: progress };
        (p.report)(0, p.total);
        let mut mats = BTreeMap::new();
        let mut vecs = BTreeMap::new();
        for (&t, r) in &index.tensors {
            let what = match t {
                T::L(l, lt) => format!("layer {l} {lt:?}"),
                t => format!("{t:?}"),
            };
            if t.is_vector(c) {
                let mut data = Vec::with_capacity(r.bytes() as usize);
                for (file, offset, len) in r.spans(0, r.rows) {
                    data.extend(src.read(file, offset, len).await?);
                }
                p.done += data.len() as u64;
                vecs.insert(t, HostTensor { dtype: r.dtype, rows: r.rows, cols: r.cols, data }.to_f32());
                continue;
            }
            let dtype = target_dtype(t, c, r.dtype, r.cols, quant);
            let group = if t.is_experts() { r.rows / c.experts } else { 1 };
            mats.insert(t, stream_tensor(g, src, r, &what, dtype, group, PIECE_BYTES, &mut p).await?);
        }
        (p.report)(p.total, p.total);
        let inv = 1.0 / (c.hidden as f32).sqrt();
        let mut mat = |t: T| mats.remove(&t).ok_or_else(|| Error::Input(format!("internal: {t:?} was not loaded")));
        let vec_of = |t: T| vecs.get(&t).cloned().ok_or_else(|| Error::Input(format!("internal: {t:?} was not loaded")));
        let buf = |t: T| g.upload_f32(&format!("{t:?}"), &vec_of(t)?);
        let mut layers = Vec::with_capacity(c.layers.len());
        for (l, geom) in c.layers.iter().enumerate() {
            let router_norm: Vec<f32> = vec_of(T::L(l, Lt::RouterScale))?.iter().map(|s| s * inv).collect();
            let mut m = |lt: Lt| mat(T::L(l, lt));
            let b = |lt: Lt| buf(T::L(l, lt));
            layers.push(GpuLayer {
                input_norm: b(Lt::InputNorm)?,
                q: m(Lt::Q)?,
                k: m(Lt::K)?,
                v: if geom.full { None } else { Some(m(Lt::V)?) },
                o: m(Lt::O)?,
                q_norm: b(Lt::QNorm)?,
                k_norm: b(Lt::KNorm)?,
                post_attn_norm: b(Lt::PostAttnNorm)?,
                pre_ffn_norm: b(Lt::PreFfnNorm)?,
                post_ffn_norm_1: b(Lt::PostFfnNorm1)?,
                pre_ffn_norm_2: b(Lt::PreFfnNorm2)?,
                post_ffn_norm_2: b(Lt::PostFfnNorm2)?,
                post_ffn_norm: b(Lt::PostFfnNorm)?,
                gate: m(Lt::Gate)?,
                up: m(Lt::Up)?,
                down: m(Lt::Down)?,
                router: m(Lt::Router)?,
                router_norm: g.upload_f32("router norm", &router_norm)?,
                expert_scale: b(Lt::ExpertScale)?,
                gate_exps: m(Lt::GateExps)?,
                up_exps: m(Lt::UpExps)?,
                down_exps: m(Lt::DownExps)?,
                scalar_decoder: vec_of(T::L(l, Lt::ScalarDecoder))?[0],
                scalar_encoder: vec_of(T::L(l, Lt::ScalarEncoder))?[0],
            });
        }
        let embed = mat(T::Embed)?;
        let model = DgGpuModel {
            embed_scale: embed_scale(c.hidden, index.get(T::Embed)?.dtype),
            embed,
            final_norm: buf(T::FinalNorm)?,
            sc_norm: buf(T::ScNorm)?,
            sc_gate: mat(T::ScGate)?,
            sc_up: mat(T::ScUp)?,
            sc_down: mat(T::ScDown)?,
            ones: g.upload_f32("ones", &vec![1.0; c.hidden])?,
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
