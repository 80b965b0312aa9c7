//! DiffusionGemma's weights in host memory (the CPU twin's): the decoder's copy of the shared
//! text weights, both modes' `layer_scalar`s, the tied embedding, read tensor by tensor from
//! where the index (`index.rs`) found them in safetensors or GGUF files. The vision tower is
//! skipped (counted, so that a caller can say so once).

use super::config::DgConfig;
use super::index::{DgIndex, Lt, T};
use crate::engine::weights::ready;
use crate::error::{Error, Result};
use crate::model::index::read_safetensors_headers;
use crate::model::source::{ByteSource, SliceSource};
use crate::model::HostTensor;
use std::collections::BTreeMap;

/// One layer's tensors (`Option`: V exists on sliding layers only).
pub struct LayerWeights {
    pub input_norm: Vec<f32>,
    pub q: HostTensor,
    pub k: HostTensor,
    pub v: Option<HostTensor>,
    pub o: HostTensor,
    pub q_norm: Vec<f32>,
    pub k_norm: Vec<f32>,
    pub post_attn_norm: Vec<f32>,
    pub pre_ffn_norm: Vec<f32>,
    pub post_ffn_norm_1: Vec<f32>,
    pub pre_ffn_norm_2: Vec<f32>,
    pub post_ffn_norm_2: Vec<f32>,
    pub post_ffn_norm: Vec<f32>,
    pub gate: HostTensor,
    pub up: HostTensor,
    pub down: HostTensor,
    pub router: HostTensor,
    pub router_scale: Vec<f32>,
    pub expert_scale: Vec<f32>,
    /// `[E · Ie, H]` each: the experts' gate rows and up rows (of the packed `gate_up_proj`).
    pub gate_exps: HostTensor,
    pub up_exps: HostTensor,
    /// `[E · H, Ie]`.
    pub down_exps: HostTensor,
    pub scalar_decoder: f32,
    pub scalar_encoder: f32,
}

pub struct DgWeights {
    pub config: DgConfig,
    pub embed: HostTensor,
    pub final_norm: Vec<f32>,
    pub sc_norm: Vec<f32>,
    pub sc_gate: HostTensor,
    pub sc_up: HostTensor,
    pub sc_down: HostTensor,
    pub layers: Vec<LayerWeights>,
    /// Tensors of the vision tower that were skipped.
    pub skipped_vision: usize,
}

impl DgWeights {
    /// Every tensor of `index` read whole from `src` (the CPU twin's weights; vectors as f32).
    pub async fn load<S: ByteSource>(index: &DgIndex, src: &S) -> Result<Self> {
        let mut host = BTreeMap::new();
        for (&t, r) in &index.tensors {
            let mut data = Vec::with_capacity(r.bytes() as usize);
            for (file, offset, len) in r.spans(0, r.rows) {
                data.extend(src.read(file, offset, len).await?);
            }
            host.insert(t, HostTensor { dtype: r.dtype, rows: r.rows, cols: r.cols, data });
        }
        let c = index.config.clone();
        let mut take = |t: T| host.remove(&t).ok_or_else(|| Error::Input(format!("internal: {t:?} was not read")));
        let mut layers = Vec::with_capacity(c.layers.len());
        for l in 0..c.layers.len() {
            let mut m = |lt: Lt| take(T::L(l, lt));
            let mut v = |lt: Lt| m(lt).map(|t| t.to_f32());
            let scalar = |t: Vec<f32>| t[0];
            layers.push(LayerWeights {
                input_norm: v(Lt::InputNorm)?,
                q_norm: v(Lt::QNorm)?,
                k_norm: v(Lt::KNorm)?,
                post_attn_norm: v(Lt::PostAttnNorm)?,
                pre_ffn_norm: v(Lt::PreFfnNorm)?,
                post_ffn_norm_1: v(Lt::PostFfnNorm1)?,
                pre_ffn_norm_2: v(Lt::PreFfnNorm2)?,
                post_ffn_norm_2: v(Lt::PostFfnNorm2)?,
                post_ffn_norm: v(Lt::PostFfnNorm)?,
                router_scale: v(Lt::RouterScale)?,
                expert_scale: v(Lt::ExpertScale)?,
                scalar_decoder: scalar(v(Lt::ScalarDecoder)?),
                scalar_encoder: scalar(v(Lt::ScalarEncoder)?),
                q: m(Lt::Q)?,
                k: m(Lt::K)?,
                v: if c.layers[l].full { None } else { Some(m(Lt::V)?) },
                o: m(Lt::O)?,
                gate: m(Lt::Gate)?,
                up: m(Lt::Up)?,
                down: m(Lt::Down)?,
                router: m(Lt::Router)?,
                gate_exps: m(Lt::GateExps)?,
                up_exps: m(Lt::UpExps)?,
                down_exps: m(Lt::DownExps)?,
            });
        }
        Ok(DgWeights {
            embed: take(T::Embed)?,
            final_norm: take(T::FinalNorm)?.to_f32(),
            sc_norm: take(T::ScNorm)?.to_f32(),
            sc_gate: take(T::ScGate)?,
            sc_up: take(T::ScUp)?,
            sc_down: take(T::ScDown)?,
            layers,
            skipped_vision: index.skipped_vision,
            config: c,
        })
    }

    /// From config.json text and the safetensors shards held in memory (name, bytes).
    pub fn from_safetensors(config_file: &str, config_json: &str, shards: &[(String, &[u8])]) -> Result<Self> {
        if shards.is_empty() {
            return Err(Error::Input("no safetensors files given".into()));
        }
        let src = SliceSource { files: shards.to_vec() };
        ready(async {
            let index = DgIndex::from_safetensors(config_file, config_json, &read_safetensors_headers(&src).await?)?;
            Self::load(&index, &src).await
        })
    }
}
