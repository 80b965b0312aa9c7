//! DiffusionGemma's config (`model_type` `diffusion_gemma`, docs/diffusion_gemma.md §2): the
//! top-level `canvas_length` and the Gemma 4 `text_config`, in the Hub's form (`global_head_dim`,
//! `num_global_key_value_heads`) or the form transformers 5.23 saves (`per_layer_config`),
//! resolved into one geometry per layer and checked so that later code may trust it.

use crate::error::{Error, Result};
use serde::Deserialize;
use std::collections::BTreeMap;

/// RoPE of one layer type: pair i (dimensions i and i + head_dim/2) turns at
/// `1 / theta^(2i / denom) / factor` for i < `pairs`; the other pairs stay still.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rope {
    pub theta: f32,
    pub pairs: usize,
    pub denom: usize,
    pub factor: f32,
}

impl Rope {
    /// The RoPE kernel's description of it for heads of `hd`.
    pub fn spec(&self, hd: usize) -> crate::gpu::kernels::RopeSpec {
        crate::gpu::kernels::RopeSpec { theta: self.theta, pairs: self.pairs, half: hd / 2, denom: self.denom, freq_scale: 1.0 / self.factor }
    }

    /// Inverse frequency of pair `i` (0 for the pairs that do not turn).
    pub fn inv_freq(&self, i: usize) -> f32 {
        if i >= self.pairs {
            return 0.0;
        }
        1.0 / self.theta.powf((2 * i) as f32 / self.denom as f32) / self.factor
    }
}

/// One layer's attention geometry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Layer {
    /// Full attention (causal in the encoder, everything in the decoder; V is K's projection)
    /// rather than a sliding window.
    pub full: bool,
    pub head_dim: usize,
    pub kv_heads: usize,
    pub rope: Rope,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DgConfig {
    pub hidden: usize,
    pub heads: usize,
    pub layers: Vec<Layer>,
    /// Dense MLP and self-conditioning MLP width.
    pub intermediate: usize,
    pub experts: usize,
    pub top_k: usize,
    pub expert_hidden: usize,
    pub vocab: usize,
    pub sliding_window: usize,
    pub canvas_length: usize,
    pub rms_eps: f32,
    /// `final_logit_softcapping` (30 unless the config says otherwise; None: no cap).
    pub softcap: Option<f32>,
    pub max_positions: usize,
}

#[derive(Deserialize)]
struct Top {
    model_type: Option<String>,
    canvas_length: Option<usize>,
    text_config: Option<Text>,
}

#[derive(Deserialize)]
struct LayerOverride {
    head_dim: Option<usize>,
    num_key_value_heads: Option<usize>,
}

#[derive(Deserialize)]
struct RopeParams {
    rope_type: Option<String>,
    rope_theta: Option<f64>,
    partial_rotary_factor: Option<f64>,
    factor: Option<f64>,
}

#[derive(Deserialize)]
struct Text {
    hidden_size: Option<usize>,
    num_hidden_layers: Option<usize>,
    num_attention_heads: Option<usize>,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    global_head_dim: Option<usize>,
    num_global_key_value_heads: Option<usize>,
    per_layer_config: Option<BTreeMap<String, LayerOverride>>,
    intermediate_size: Option<usize>,
    moe_intermediate_size: Option<usize>,
    num_experts: Option<usize>,
    top_k_experts: Option<usize>,
    vocab_size: Option<usize>,
    layer_types: Option<Vec<String>>,
    sliding_window: Option<usize>,
    rope_parameters: Option<BTreeMap<String, RopeParams>>,
    #[serde(default = "default_softcap")]
    final_logit_softcapping: Option<f64>,
    rms_norm_eps: Option<f64>,
    hidden_activation: Option<String>,
    attention_bias: Option<bool>,
    use_bidirectional_attention: Option<String>,
    max_position_embeddings: Option<usize>,
}

fn default_softcap() -> Option<f64> {
    Some(30.0)
}

/// Largest value accepted for a dimension (as `ModelConfig`'s).
const MAX_DIM: usize = 1 << 24;

impl DgConfig {
    /// Parses a DiffusionGemma config.json; `file` names it in errors.
    pub fn from_json(file: &str, text: &str) -> Result<Self> {
        let bad = |m: String| Error::model(file, m);
        let top: Top = serde_json::from_str(text).map_err(|e| bad(format!("not a valid config.json: {e}")))?;
        if top.model_type.as_deref() != Some("diffusion_gemma") {
            return Err(bad(format!("model_type is {:?}, not \"diffusion_gemma\"", top.model_type)));
        }
        let t = top.text_config.ok_or_else(|| bad("missing `text_config`".into()))?;
        let need = |v: Option<usize>, key: &str| v.ok_or_else(|| bad(format!("missing text_config key `{key}`")));
        let n_layers = need(t.num_hidden_layers, "num_hidden_layers")?;
        if n_layers == 0 || n_layers > crate::model::config::MAX_LAYERS {
            return Err(bad(format!("num_hidden_layers = {n_layers} is out of range")));
        }
        if let Some(a) = t.hidden_activation.as_deref().filter(|a| *a != "gelu_pytorch_tanh") {
            return Err(bad(format!("hidden_activation {a:?} is not supported (gelu_pytorch_tanh)")));
        }
        if t.attention_bias == Some(true) {
            return Err(bad("attention_bias = true is not supported".into()));
        }
        if t.use_bidirectional_attention.as_deref() == Some("all") {
            return Err(bad("use_bidirectional_attention = \"all\" (a bidirectional encoder) is not supported".into()));
        }
        let (head_dim, kv) = (t.head_dim.unwrap_or(256), t.num_key_value_heads.unwrap_or(4));
        let mut global = (t.global_head_dim.unwrap_or(512), t.num_global_key_value_heads.unwrap_or(kv));
        // transformers 5.23's form: the full layers' geometry per layer index.
        let overrides = t.per_layer_config.unwrap_or_default();
        if let Some(o) = overrides.values().next() {
            global = (o.head_dim.unwrap_or(global.0), o.num_key_value_heads.unwrap_or(global.1));
        }
        let types: Vec<bool> = match t.layer_types {
            Some(v) if v.len() != n_layers => return Err(bad(format!("layer_types has {} entries for {n_layers} layers", v.len()))),
            Some(v) => v
                .iter()
                .map(|s| match s.as_str() {
                    "full_attention" => Ok(true),
                    "sliding_attention" => Ok(false),
                    other => Err(bad(format!("layer type {other:?} is not supported (sliding_attention, full_attention)"))),
                })
                .collect::<Result<_>>()?,
            None => (0..n_layers).map(|i| (i + 1) % 6 == 0).collect(),
        };
        let rope_of = |kind: &str, hd: usize| -> Result<Rope> {
            let p = t.rope_parameters.as_ref().and_then(|m| m.get(kind));
            let full = kind == "full_attention";
            let rtype = p.and_then(|p| p.rope_type.clone()).unwrap_or(if full { "proportional" } else { "default" }.into());
            let theta = p.and_then(|p| p.rope_theta).unwrap_or(if full { 1e6 } else { 1e4 }) as f32;
            let factor = p.and_then(|p| p.factor).unwrap_or(1.0) as f32;
            match rtype.as_str() {
                "default" => {
                    if p.and_then(|p| p.partial_rotary_factor).is_some_and(|f| f != 1.0) {
                        return Err(bad(format!("{kind}: partial_rotary_factor with default RoPE is not supported")));
                    }
                    Ok(Rope { theta, pairs: hd / 2, denom: hd, factor: 1.0 })
                }
                "proportional" => {
                    let f = p.and_then(|p| p.partial_rotary_factor).unwrap_or(0.25);
                    if !(f > 0.0 && f <= 1.0) {
                        return Err(bad(format!("{kind}: partial_rotary_factor {f} must be in (0, 1]")));
                    }
                    Ok(Rope { theta, pairs: ((f * hd as f64) / 2.0).floor() as usize, denom: hd, factor })
                }
                other => Err(bad(format!("{kind}: rope_type {other:?} is not supported (default, proportional)"))),
            }
        };
        let mut layers = Vec::with_capacity(n_layers);
        for (i, &full) in types.iter().enumerate() {
            // The reference makes the last layer full whatever the list says.
            let full = full || i + 1 == n_layers;
            let (hd, kvh) = if full { global } else { (head_dim, kv) };
            let (hd, kvh) = match overrides.get(&i.to_string()) {
                Some(o) if full => (o.head_dim.unwrap_or(hd), o.num_key_value_heads.unwrap_or(kvh)),
                _ => (hd, kvh),
            };
            let kind = if full { "full_attention" } else { "sliding_attention" };
            layers.push(Layer { full, head_dim: hd, kv_heads: kvh, rope: rope_of(kind, hd)? });
        }
        let c = DgConfig {
            hidden: need(t.hidden_size, "hidden_size")?,
            heads: need(t.num_attention_heads, "num_attention_heads")?,
            layers,
            intermediate: need(t.intermediate_size, "intermediate_size")?,
            experts: need(t.num_experts, "num_experts")?,
            top_k: need(t.top_k_experts, "top_k_experts")?,
            expert_hidden: need(t.moe_intermediate_size, "moe_intermediate_size")?,
            vocab: t.vocab_size.unwrap_or(262144),
            sliding_window: t.sliding_window.unwrap_or(512),
            canvas_length: top.canvas_length.unwrap_or(256),
            rms_eps: t.rms_norm_eps.unwrap_or(1e-6) as f32,
            softcap: t.final_logit_softcapping.map(|v| v as f32),
            max_positions: t.max_position_embeddings.unwrap_or(131072),
        };
        c.validate(file)?;
        Ok(c)
    }

    pub(crate) fn validate(&self, file: &str) -> Result<()> {
        let bad = |m: String| Err(Error::model(file, m));
        for (name, v) in [
            ("hidden_size", self.hidden),
            ("num_attention_heads", self.heads),
            ("intermediate_size", self.intermediate),
            ("moe_intermediate_size", self.expert_hidden),
            ("vocab_size", self.vocab),
            ("sliding_window", self.sliding_window),
            ("canvas_length", self.canvas_length),
        ] {
            if v == 0 || v > MAX_DIM {
                return bad(format!("{name} = {v} is out of range (1..={MAX_DIM})"));
            }
        }
        if self.experts == 0
            || self.experts > crate::model::config::MAX_EXPERTS
            || self.top_k == 0
            || self.top_k > self.experts.min(crate::model::config::MAX_EXPERTS_USED)
        {
            return bad(format!("top-{} of {} experts is not supported", self.top_k, self.experts));
        }
        for (i, l) in self.layers.iter().enumerate() {
            if l.head_dim == 0 || l.head_dim % 2 == 1 || l.head_dim > 512 || l.kv_heads == 0 || !self.heads.is_multiple_of(l.kv_heads) {
                return bad(format!("layer {i}: head_dim {} and {} kv heads do not fit {} heads", l.head_dim, l.kv_heads, self.heads));
            }
        }
        if let Some(s) = self.softcap.filter(|s| !(s.is_finite() && *s > 0.0)) {
            return bad(format!("final_logit_softcapping {s} must be positive"));
        }
        if !(self.rms_eps.is_finite() && self.rms_eps > 0.0) {
            return bad(format!("rms_norm_eps {} must be positive", self.rms_eps));
        }
        Ok(())
    }
}
