//! Where each DiffusionGemma tensor lies in its files, from the headers alone: the Hub's
//! safetensors (docs/diffusion_gemma.md §3) or llama.cpp's `diffusion-gemma` GGUF
//! (docs/diffusion_gemma_gguf.md), every shape checked against the config. The packed experts'
//! gate/up tensor is indexed as two stacked tensors (each expert's first Ie rows, then its
//! last), so loaders stream plain row ranges. Nothing here reads tensor data.

use super::config::DgConfig;
use super::gguf_config::rope_pairs;
use super::sampler::DgSettings;
use crate::error::{Error, Result};
use crate::model::gguf::Gguf;
use crate::model::index::{read_gguf_head, read_safetensors_headers, SafetensorsHeader, TensorRef};
use crate::model::source::ByteSource;
use crate::model::DType;
use std::collections::BTreeMap;

/// A tensor of one layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Lt {
    InputNorm,
    Q,
    K,
    /// Sliding layers only.
    V,
    O,
    QNorm,
    KNorm,
    PostAttnNorm,
    PreFfnNorm,
    PostFfnNorm1,
    PreFfnNorm2,
    PostFfnNorm2,
    PostFfnNorm,
    Gate,
    Up,
    Down,
    Router,
    RouterScale,
    ExpertScale,
    GateExps,
    UpExps,
    DownExps,
    ScalarDecoder,
    ScalarEncoder,
}

/// A tensor of the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum T {
    Embed,
    FinalNorm,
    ScNorm,
    ScGate,
    ScUp,
    ScDown,
    L(usize, Lt),
}

/// (tensor, HF name after `model.decoder.layers.N.`, GGUF name after `blk.N.`); GateExps and
/// UpExps come from the packed tensor (`PACKED`), the encoder's scalar has its own HF prefix.
pub(crate) const LAYER: [(Lt, &str, &str); 22] = [
    (Lt::InputNorm, "input_layernorm.weight", "attn_norm.weight"),
    (Lt::Q, "self_attn.q_proj.weight", "attn_q.weight"),
    (Lt::K, "self_attn.k_proj.weight", "attn_k.weight"),
    (Lt::V, "self_attn.v_proj.weight", "attn_v.weight"),
    (Lt::O, "self_attn.o_proj.weight", "attn_output.weight"),
    (Lt::QNorm, "self_attn.q_norm.weight", "attn_q_norm.weight"),
    (Lt::KNorm, "self_attn.k_norm.weight", "attn_k_norm.weight"),
    (Lt::PostAttnNorm, "post_attention_layernorm.weight", "post_attention_norm.weight"),
    (Lt::PreFfnNorm, "pre_feedforward_layernorm.weight", "ffn_norm.weight"),
    (Lt::PostFfnNorm1, "post_feedforward_layernorm_1.weight", "post_ffw_norm_1.weight"),
    (Lt::PreFfnNorm2, "pre_feedforward_layernorm_2.weight", "pre_ffw_norm_2.weight"),
    (Lt::PostFfnNorm2, "post_feedforward_layernorm_2.weight", "post_ffw_norm_2.weight"),
    (Lt::PostFfnNorm, "post_feedforward_layernorm.weight", "post_ffw_norm.weight"),
    (Lt::Gate, "mlp.gate_proj.weight", "ffn_gate.weight"),
    (Lt::Up, "mlp.up_proj.weight", "ffn_up.weight"),
    (Lt::Down, "mlp.down_proj.weight", "ffn_down.weight"),
    (Lt::Router, "router.proj.weight", "ffn_gate_inp.weight"),
    (Lt::RouterScale, "router.scale", "ffn_gate_inp.scale"),
    (Lt::ExpertScale, "router.per_expert_scale", "ffn_down_exps.scale"),
    (Lt::DownExps, "experts.down_proj", "ffn_down_exps.weight"),
    (Lt::ScalarDecoder, "layer_scalar", "layer_output_scale.weight"),
    (Lt::ScalarEncoder, "layer_scalar", "enc_layer_output_scale.weight"),
];

/// The experts' packed gate/up: HF, GGUF.
const PACKED: (&str, &str) = ("experts.gate_up_proj", "ffn_gate_up_exps.weight");

/// (tensor, HF name, GGUF name) of the model-wide tensors.
const GLOBAL: [(T, &str, &str); 6] = [
    (T::Embed, "model.decoder.embed_tokens.weight", "token_embd.weight"),
    (T::FinalNorm, "model.decoder.norm.weight", "output_norm.weight"),
    (T::ScNorm, "model.decoder.self_conditioning.pre_norm.weight", "self_cond_pre_norm.weight"),
    (T::ScGate, "model.decoder.self_conditioning.gate_proj.weight", "self_cond_gate.weight"),
    (T::ScUp, "model.decoder.self_conditioning.up_proj.weight", "self_cond_up.weight"),
    (T::ScDown, "model.decoder.self_conditioning.down_proj.weight", "self_cond_down.weight"),
];

/// The GGUF name of `t` (GateExps and UpExps: the packed `ffn_gate_up_exps`).
pub fn gguf_name(t: T) -> String {
    match t {
        T::L(l, Lt::GateExps | Lt::UpExps) => format!("blk.{l}.{}", PACKED.1),
        T::L(l, lt) => format!("blk.{l}.{}", LAYER.iter().find(|x| x.0 == lt).expect("every layer tensor is listed").2),
        t => GLOBAL.iter().find(|x| x.0 == t).expect("every global tensor is listed").2.to_string(),
    }
}

impl T {
    /// [rows, cols] the config gives it (vectors: one row).
    pub fn shape(self, c: &DgConfig) -> [usize; 2] {
        let (h, i, e, ie) = (c.hidden, c.intermediate, c.experts, c.expert_hidden);
        match self {
            T::Embed => [c.vocab, h],
            T::FinalNorm | T::ScNorm => [1, h],
            T::ScGate | T::ScUp => [i, h],
            T::ScDown => [h, i],
            T::L(l, t) => {
                let (hd, kv, nh) = (c.layers[l].head_dim, c.layers[l].kv_heads, c.heads);
                match t {
                    Lt::Q => [nh * hd, h],
                    Lt::K | Lt::V => [kv * hd, h],
                    Lt::O => [h, nh * hd],
                    Lt::QNorm | Lt::KNorm => [1, hd],
                    Lt::Gate | Lt::Up => [i, h],
                    Lt::Down => [h, i],
                    Lt::Router => [e, h],
                    Lt::ExpertScale => [1, e],
                    Lt::GateExps | Lt::UpExps => [e * ie, h],
                    Lt::DownExps => [e * h, ie],
                    Lt::ScalarDecoder | Lt::ScalarEncoder => [1, 1],
                    _ => [1, h],
                }
            }
        }
    }

    /// A vector the kernels read as f32 (norms, scales), rather than a matrix.
    pub fn is_vector(self, c: &DgConfig) -> bool {
        self.shape(c)[0] == 1 && !matches!(self, T::L(_, Lt::Router))
    }

    /// Stacked experts (chunks keep whole experts).
    pub fn is_experts(self) -> bool {
        matches!(self, T::L(_, Lt::GateExps | Lt::UpExps | Lt::DownExps))
    }
}

/// The model's table of contents.
pub struct DgIndex {
    pub config: DgConfig,
    /// "safetensors" or "gguf".
    pub format: &'static str,
    pub tensors: BTreeMap<T, TensorRef>,
    /// Tensors of the vision tower that are not read.
    pub skipped_vision: usize,
    /// Sampler settings the file carries (GGUF; a Hub folder has generation_config.json).
    pub settings: Option<DgSettings>,
}

/// A tensor found in the files: its format, its shape flattened to [rows, cols], file and offset.
type Found = (DType, usize, usize, usize, u64);

impl DgIndex {
    /// Every tensor through `get(name)`, checked against the config; `gguf` picks the names.
    fn assemble(config: DgConfig, format: &'static str, file: &str, skipped_vision: usize, get: impl Fn(&str) -> Result<Option<Found>>) -> Result<Self> {
        let gguf = format == "gguf";
        let c = &config;
        let mut tensors = BTreeMap::new();
        let check = |t: T, name: String, found: Option<Found>, required: bool| -> Result<Option<TensorRef>> {
            let Some((dtype, rows, cols, file_i, offset)) = found else {
                return if required { Err(Error::model(file, format!("tensor `{name}` is missing"))) } else { Ok(None) };
            };
            let [r, k] = t.shape(c);
            if (rows, cols) != (r, k) {
                return Err(Error::model(file, format!("tensor `{name}` has shape [{rows}, {cols}] but the config needs [{r}, {k}]")));
            }
            Ok(Some(TensorRef { name, dtype, rows, cols, file: file_i, offset, more: vec![] }))
        };
        let put = |tensors: &mut BTreeMap<T, TensorRef>, t: T, name: String, found: Option<Found>, required: bool| -> Result<()> {
            if let Some(r) = check(t, name, found, required)? {
                tensors.insert(t, r);
            }
            Ok(())
        };
        for (t, hf, gg) in GLOBAL {
            let name = if gguf { gg } else { hf };
            put(&mut tensors, t, name.to_string(), get(name)?, true)?;
        }
        for (l, g) in c.layers.iter().enumerate() {
            for (lt, hf, gg) in LAYER {
                let name = match (gguf, lt) {
                    (true, _) => format!("blk.{l}.{gg}"),
                    (false, Lt::ScalarEncoder) => format!("model.encoder.language_model.layers.{l}.{hf}"),
                    (false, _) => format!("model.decoder.layers.{l}.{hf}"),
                };
                let found = get(&name)?;
                if lt == Lt::V && g.full && found.is_some() {
                    return Err(Error::model(file, format!("layer {l} is a full-attention layer (V is K) but has `{name}`")));
                }
                put(&mut tensors, T::L(l, lt), name, found, !(lt == Lt::V && g.full))?;
            }
            let packed = if gguf { format!("blk.{l}.{}", PACKED.1) } else { format!("model.decoder.layers.{l}.{}", PACKED.0) };
            let (ie, e) = (c.expert_hidden, c.experts);
            let Some((dtype, rows, cols, fi, offset)) = get(&packed)? else {
                return Err(Error::model(file, format!("tensor `{packed}` is missing")));
            };
            if (rows, cols) != (2 * e * ie, c.hidden) {
                return Err(Error::model(file, format!("tensor `{packed}` has shape [{rows}, {cols}] but the config needs [{}, {}]", 2 * e * ie, c.hidden)));
            }
            // Expert e's gate rows start at row 2e·Ie, its up rows Ie later.
            let rb = dtype.row_bytes(cols).expect("checked by the header reader") as u64;
            for (lt, skip) in [(Lt::GateExps, 0), (Lt::UpExps, ie)] {
                let at = |ex: usize| offset + ((2 * ex * ie + skip) as u64) * rb;
                let more = (1..e).map(|ex| (fi, at(ex))).collect();
                tensors.insert(T::L(l, lt), TensorRef { name: packed.clone(), dtype, rows: e * ie, cols, file: fi, offset: at(0), more });
            }
        }
        Ok(DgIndex { config, format, tensors, skipped_vision, settings: None })
    }

    /// From config.json and the parsed headers of its safetensors shards (file i = shard i).
    pub fn from_safetensors(config_file: &str, config_json: &str, shards: &[SafetensorsHeader]) -> Result<Self> {
        let config = DgConfig::from_json(config_file, config_json)?;
        let mut by_name = BTreeMap::new();
        let mut skipped = 0;
        for (i, h) in shards.iter().enumerate() {
            for e in &h.tensors {
                if e.name.starts_with("model.encoder.vision_tower.") || e.name.starts_with("model.encoder.embed_vision.") {
                    skipped += 1;
                } else {
                    by_name.insert(e.name.as_str(), (i, e));
                }
            }
        }
        let get = |name: &str| -> Result<Option<Found>> {
            let Some(&(i, e)) = by_name.get(name) else { return Ok(None) };
            let file = &shards[i].file;
            let dtype = e.dtype(file)?;
            let cols = *e.shape.last().unwrap_or(&1);
            let rows = e.shape[..e.shape.len().saturating_sub(1)].iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            let bytes = rows.and_then(|r| dtype.row_bytes(cols).and_then(|rb| (rb as u64).checked_mul(r as u64)));
            match (rows, bytes) {
                (Some(rows), Some(b)) if b == e.end - e.start => Ok(Some((dtype, rows, cols, i, shards[i].data_offset + e.start))),
                _ => Err(Error::model(file, format!("tensor `{name}` of shape {:?} holds {} bytes", e.shape, e.end - e.start))),
            }
        };
        let file = shards.first().map_or("model.safetensors", |s| s.file.as_str());
        Self::assemble(config, "safetensors", file, skipped, get)
    }

    /// From a parsed GGUF header (`rope_pairs`: the full layers' turning pairs, read from its
    /// `rope_freqs` tensor; see `super::gguf_config`).
    pub fn from_gguf(g: &Gguf, rope_pairs: Option<usize>) -> Result<Self> {
        let config = DgConfig::from_gguf(g, rope_pairs)?;
        let get = |name: &str| -> Result<Option<Found>> {
            let Some(info) = g.tensor(name) else { return Ok(None) };
            let (dtype, rows, cols, range) = g.tensor_range(info)?;
            Ok(Some((dtype, rows, cols, 0, g.data_offset + range.start as u64)))
        };
        let mut index = Self::assemble(config, "gguf", &g.file, 0, get)?;
        index.settings = Some(DgSettings::from_gguf(g)?);
        Ok(index)
    }

    /// The model in `src`: safetensors shards with `config` = (file name, config.json text), or
    /// a GGUF (file 0). Reads the headers, and a GGUF's small `rope_freqs` tensor.
    pub async fn read<S: ByteSource>(src: &S, config: Option<(&str, &str)>) -> Result<Self> {
        if let Some((file, json)) = config {
            return Self::from_safetensors(file, json, &read_safetensors_headers(src).await?);
        }
        let head = read_gguf_head(src).await?;
        let g = Gguf::parse_prefix(&src.name(0), &head, src.len(0))?.ok_or_else(|| Error::model(src.name(0), "truncated GGUF header"))?;
        let pairs = match g.tensor("rope_freqs.weight") {
            None => None,
            Some(info) => {
                let (dtype, rows, cols, range) = g.tensor_range(info)?;
                if dtype != DType::F32 || rows != 1 {
                    return Err(Error::model(&g.file, format!("tensor `rope_freqs.weight` is {} [{rows}, {cols}], not one row of F32", dtype.name())));
                }
                let bytes = src.read(0, g.data_offset + range.start as u64, range.len()).await?;
                Some(rope_pairs(&bytemuck::pod_collect_to_vec::<u8, f32>(&bytes)))
            }
        };
        Self::from_gguf(&g, pairs)
    }

    pub fn get(&self, t: T) -> Result<&TensorRef> {
        self.tensors.get(&t).ok_or_else(|| Error::Input(format!("internal: {t:?} is not in the index")))
    }

    /// Bytes of tensor data read from the files.
    pub fn file_bytes(&self) -> u64 {
        self.tensors.values().map(|t| t.bytes()).sum()
    }

    /// Parameters (values of every tensor).
    pub fn params(&self) -> u64 {
        self.tensors.values().map(|t| t.rows as u64 * t.cols as u64).sum()
    }
}
