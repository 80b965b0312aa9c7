//! DiffusionGemma's weights as its HF checkpoint stores them (docs/diffusion_gemma.md §3): the
//! decoder's copy of the shared text weights, both modes' `layer_scalar`s, the tied embedding;
//! every name and shape checked against the config. The vision tower is skipped (counted, so
//! that a caller can say so once).

use super::config::DgConfig;
use crate::error::{Error, Result};
use crate::model::index::SafetensorsHeader;
use crate::model::HostTensor;
use std::collections::HashMap;

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
    /// `[E · 2Ie, H]`: expert e's gate rows `2e·Ie ..`, then its up rows.
    pub gate_up_exps: HostTensor,
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

/// Tensors by name over safetensors files held in memory.
struct Files<'a> {
    map: HashMap<String, (usize, crate::model::index::SafetensorsEntry)>,
    headers: Vec<SafetensorsHeader>,
    bytes: &'a [(String, &'a [u8])],
}

impl Files<'_> {
    /// The tensor `name` with `shape` (its values in row-major order, as `[prod(shape[..-1]), last]`).
    fn get(&self, name: &str, shape: &[usize]) -> Result<HostTensor> {
        let (i, e) = self.map.get(name).ok_or_else(|| Error::model(&self.headers[0].file, format!("tensor `{name}` is missing")))?;
        let file = &self.headers[*i].file;
        if e.shape != shape {
            return Err(Error::model(file, format!("tensor `{name}` has shape {:?} but the config needs {shape:?}", e.shape)));
        }
        let dtype = e.dtype(file)?;
        let cols = *shape.last().unwrap_or(&1);
        let rows = shape[..shape.len().saturating_sub(1)].iter().product::<usize>().max(1);
        let want = dtype.row_bytes(cols).map(|rb| rb as u64 * rows as u64);
        if want != Some(e.end - e.start) {
            return Err(Error::model(file, format!("tensor `{name}` of shape {shape:?} holds {} bytes", e.end - e.start)));
        }
        let start = (self.headers[*i].data_offset + e.start) as usize;
        let data = self.bytes[*i].1.get(start..start + (e.end - e.start) as usize).ok_or_else(|| Error::model(file, "tensor data lies outside the file"))?;
        Ok(HostTensor { dtype, rows, cols, data: data.to_vec() })
    }

    fn vec(&self, name: &str, n: usize) -> Result<Vec<f32>> {
        Ok(self.get(name, &[n])?.to_f32())
    }
}

impl DgWeights {
    /// From config.json text and the safetensors shards held in memory (name, bytes).
    pub fn from_safetensors(config_file: &str, config_json: &str, shards: &[(String, &[u8])]) -> Result<Self> {
        let c = DgConfig::from_json(config_file, config_json)?;
        if shards.is_empty() {
            return Err(Error::Input("no safetensors files given".into()));
        }
        let headers = shards.iter().map(|(n, b)| SafetensorsHeader::parse(n, b, b.len() as u64)).collect::<Result<Vec<_>>>()?;
        let mut map = HashMap::new();
        let mut skipped_vision = 0;
        for (i, h) in headers.iter().enumerate() {
            for e in &h.tensors {
                if e.name.starts_with("model.encoder.vision_tower.") || e.name.starts_with("model.encoder.embed_vision.") {
                    skipped_vision += 1;
                    continue;
                }
                map.insert(e.name.clone(), (i, e.clone()));
            }
        }
        let f = Files { map, headers, bytes: shards };
        let (h, v, e, ie, i_) = (c.hidden, c.vocab, c.experts, c.expert_hidden, c.intermediate);
        let d = "model.decoder";
        let mut layers = Vec::with_capacity(c.layers.len());
        for (l, g) in c.layers.iter().enumerate() {
            let p = format!("{d}.layers.{l}");
            let (hd, kv, nh) = (g.head_dim, g.kv_heads, c.heads);
            let norm = |n: &str| f.vec(&format!("{p}.{n}.weight"), h);
            let scalar = |name: &str| -> Result<f32> { Ok(f.get(name, &[1])?.to_f32()[0]) };
            let v_name = format!("{p}.self_attn.v_proj.weight");
            let v_proj = match (g.full, f.map.contains_key(&v_name)) {
                (false, _) => Some(f.get(&v_name, &[kv * hd, h])?),
                (true, false) => None,
                (true, true) => return Err(Error::model(config_file, format!("layer {l} is a full-attention layer (V is K) but has `{v_name}`"))),
            };
            layers.push(LayerWeights {
                input_norm: norm("input_layernorm")?,
                q: f.get(&format!("{p}.self_attn.q_proj.weight"), &[nh * hd, h])?,
                k: f.get(&format!("{p}.self_attn.k_proj.weight"), &[kv * hd, h])?,
                v: v_proj,
                o: f.get(&format!("{p}.self_attn.o_proj.weight"), &[h, nh * hd])?,
                q_norm: f.vec(&format!("{p}.self_attn.q_norm.weight"), hd)?,
                k_norm: f.vec(&format!("{p}.self_attn.k_norm.weight"), hd)?,
                post_attn_norm: norm("post_attention_layernorm")?,
                pre_ffn_norm: norm("pre_feedforward_layernorm")?,
                post_ffn_norm_1: norm("post_feedforward_layernorm_1")?,
                pre_ffn_norm_2: norm("pre_feedforward_layernorm_2")?,
                post_ffn_norm_2: norm("post_feedforward_layernorm_2")?,
                post_ffn_norm: norm("post_feedforward_layernorm")?,
                gate: f.get(&format!("{p}.mlp.gate_proj.weight"), &[i_, h])?,
                up: f.get(&format!("{p}.mlp.up_proj.weight"), &[i_, h])?,
                down: f.get(&format!("{p}.mlp.down_proj.weight"), &[h, i_])?,
                router: f.get(&format!("{p}.router.proj.weight"), &[e, h])?,
                router_scale: f.vec(&format!("{p}.router.scale"), h)?,
                expert_scale: f.vec(&format!("{p}.router.per_expert_scale"), e)?,
                gate_up_exps: f.get(&format!("{p}.experts.gate_up_proj"), &[e, 2 * ie, h])?,
                down_exps: f.get(&format!("{p}.experts.down_proj"), &[e, h, ie])?,
                scalar_decoder: scalar(&format!("{p}.layer_scalar"))?,
                scalar_encoder: scalar(&format!("model.encoder.language_model.layers.{l}.layer_scalar"))?,
            });
        }
        let sc = format!("{d}.self_conditioning");
        Ok(DgWeights {
            embed: f.get(&format!("{d}.embed_tokens.weight"), &[v, h])?,
            final_norm: f.vec(&format!("{d}.norm.weight"), h)?,
            sc_norm: f.vec(&format!("{sc}.pre_norm.weight"), h)?,
            sc_gate: f.get(&format!("{sc}.gate_proj.weight"), &[i_, h])?,
            sc_up: f.get(&format!("{sc}.up_proj.weight"), &[i_, h])?,
            sc_down: f.get(&format!("{sc}.down_proj.weight"), &[h, i_])?,
            layers,
            skipped_vision,
            config: c,
        })
    }
}
