//! A model's hyper-parameters and special ids, read from a Hub `config.json` (LLaDA/OLMo key
//! names) or from GGUF metadata, and checked so that later code may trust them. Which family
//! (architecture table, `arch.rs`) the model belongs to is part of the config.

use crate::error::{Error, Result};
use crate::model::arch::{Dim, Family};
use crate::model::gguf::{Gguf, Value};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelConfig {
    /// The family's name (`arch::Family::name`).
    pub family: String,
    pub d_model: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    /// Width of one attention head (`d_model / n_heads` unless the config says otherwise, as
    /// Qwen3's does).
    pub head_dim: usize,
    /// The dense MLP's hidden size (unused by a model whose every layer is MoE).
    pub mlp_hidden_size: usize,
    /// Routed experts per MoE layer (0: a dense model).
    pub n_experts: usize,
    /// Experts each position uses (top-k).
    pub n_experts_used: usize,
    /// One expert's hidden size.
    pub expert_hidden_size: usize,
    /// The top-k router weights are renormalised to sum to 1 (`norm_topk_prob`).
    pub norm_topk_prob: bool,
    /// How the router scores and groups experts (softmax, no groups, scale 1 unless LLaDA 2).
    pub routing: Routing,
    /// Shared experts per MoE layer (LLaDA 2): one dense SwiGLU of `n_shared_experts ·
    /// expert_hidden_size` that every position also runs.
    pub n_shared_experts: usize,
    /// Dimensions of each head that RoPE rotates (the first ones; `head_dim` unless the config
    /// has a `partial_rotary_factor`).
    pub rope_dims: usize,
    /// Block-causal attention in blocks of this many positions (the family's; 0 = bidirectional).
    pub attention_block: usize,
    /// Rows of the embedding and of the LM head (LLaDA's `embedding_size`, which may pad `vocab_size`).
    pub vocab_size: usize,
    pub rope_theta: f32,
    pub rms_norm_eps: f32,
    pub max_sequence_length: usize,
    pub mask_token_id: u32,
    pub eos_token_id: Option<u32>,
    pub bos_token_id: Option<u32>,
    pub eot_token_id: Option<u32>,
    /// The token at position i is predicted by the logits at i − 1 (Dream-style models).
    pub shift_logits: bool,
    /// The chat template stored with the model (GGUF `tokenizer.chat_template`), if any.
    pub chat_template: Option<String>,
}

/// How a MoE router turns its logits into experts and weights (`moe_route.wgsl`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Routing {
    /// Sigmoid scores per expert (LLaDA 2's `score_function`) instead of a softmax over them.
    pub sigmoid: bool,
    /// Group-limited top-k (`n_group`, `topk_group`): the experts form `groups` equal groups,
    /// and only the `topk_groups` groups with the largest sum of their two best scores are
    /// candidates. 1 and 1: no limit.
    pub groups: usize,
    pub topk_groups: usize,
    /// The chosen experts' weights are multiplied by this (`routed_scaling_factor`).
    pub scale: f32,
}

impl Routing {
    /// Softmax over all experts, weights unscaled (OLMoE, Qwen3-MoE).
    pub const SOFTMAX: Routing = Routing { sigmoid: false, groups: 1, topk_groups: 1, scale: 1.0 };
}

/// Keys of the HF config.json; every field optional so that we can say which one is missing.
#[derive(Deserialize)]
struct HfConfig {
    d_model: Option<usize>,
    hidden_size: Option<usize>,
    n_layers: Option<usize>,
    num_hidden_layers: Option<usize>,
    n_heads: Option<usize>,
    num_attention_heads: Option<usize>,
    n_kv_heads: Option<usize>,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    num_experts: Option<usize>,
    n_routed_experts: Option<usize>,
    num_experts_per_tok: Option<usize>,
    moe_intermediate_size: Option<usize>,
    expert_intermediate_size: Option<usize>,
    norm_topk_prob: Option<bool>,
    partial_rotary_factor: Option<f64>,
    score_function: Option<String>,
    n_group: Option<usize>,
    topk_group: Option<usize>,
    routed_scaling_factor: Option<f64>,
    num_shared_experts: Option<usize>,
    use_qkv_bias: Option<bool>,
    mlp_hidden_size: Option<usize>,
    intermediate_size: Option<usize>,
    dense_intermediate_size: Option<usize>,
    vocab_size: Option<usize>,
    embedding_size: Option<usize>,
    rope_theta: Option<f64>,
    rms_norm_eps: Option<f64>,
    max_sequence_length: Option<usize>,
    max_position_embeddings: Option<usize>,
    mask_token_id: Option<u32>,
    /// A number, or a list whose first entry is used (Qwen-style configs list several).
    eos_token_id: Option<serde_json::Value>,
    bos_token_id: Option<serde_json::Value>,
    eot_token_id: Option<serde_json::Value>,
    model_type: Option<String>,
}

/// Largest value accepted for any single dimension: far above any real model, small enough that
/// products of two dimensions cannot overflow.
const MAX_DIM: usize = 1 << 24;

/// Most layers (real models have at most a few hundred).
pub const MAX_LAYERS: usize = 4096;

/// Most routed experts per layer (`moe_route.wgsl` keeps a row's router logits in registers).
pub const MAX_EXPERTS: usize = 256;
/// Most experts used per position.
pub const MAX_EXPERTS_USED: usize = 16;
/// Most expert groups (`moe_route.wgsl` keeps the chosen groups in one 32-bit mask).
pub const MAX_EXPERT_GROUPS: usize = 32;

impl ModelConfig {
    pub fn head_dim(&self) -> usize {
        self.head_dim
    }

    /// Width of the queries and of the attention output: n_heads · head_dim.
    pub fn q_dim(&self) -> usize {
        self.head_dim * self.n_heads
    }

    pub fn kv_dim(&self) -> usize {
        self.head_dim * self.n_kv_heads
    }

    /// A mixture-of-experts model.
    pub fn is_moe(&self) -> bool {
        self.n_experts > 0
    }

    /// A length of a shape rule (`arch::Dim`) for this model.
    pub fn dim(&self, d: Dim) -> usize {
        match d {
            Dim::One => 1,
            Dim::Model => self.d_model,
            Dim::Q => self.q_dim(),
            Dim::Kv => self.kv_dim(),
            Dim::Head => self.head_dim,
            Dim::Hidden => self.mlp_hidden_size,
            Dim::Vocab => self.vocab_size,
            Dim::Experts => self.n_experts,
            Dim::ExpertHidden => self.expert_hidden_size,
            Dim::ExpertsHidden => self.n_experts * self.expert_hidden_size,
            Dim::ExpertsModel => self.n_experts * self.d_model,
            Dim::SharedHidden => self.n_shared_experts * self.expert_hidden_size,
            Dim::Qkv => self.q_dim() + 2 * self.kv_dim(),
        }
    }

    /// Parses config.json text; `file` names it in errors.
    pub fn from_hf_json(file: &str, text: &str) -> Result<Self> {
        let hf: HfConfig = serde_json::from_str(text).map_err(|e| Error::model(file, format!("not a valid config.json: {e}")))?;
        let need = |v: Option<usize>, key: &str| v.ok_or_else(|| Error::model(file, format!("missing key `{key}`")));
        // Configs without a model_type are taken as LLaDA (the family this format began with).
        let family = match hf.model_type.as_deref() {
            None => &crate::model::arch::LLADA,
            // LLaDA-MoE's checkpoints say "llada" too; their expert keys tell them apart.
            Some("llada") if hf.num_experts.is_some() => &crate::model::arch::LLADA_MOE,
            Some("diffusion_gemma") => {
                return Err(Error::model(file, "DiffusionGemma runs only through `unmask generate` and `unmask info` so far (on the CPU): no GPU path yet"))
            }
            Some(t) => Family::by_hf_model_type(t).ok_or_else(|| Error::model(file, format!("model_type {t:?} is not supported; {}", supported())))?,
        };
        let n_heads = need(hf.n_heads.or(hf.num_attention_heads), "n_heads")?;
        let d_model = need(hf.d_model.or(hf.hidden_size), "d_model")?;
        let n_experts = hf.num_experts.or(hf.n_routed_experts).unwrap_or(0);
        if family.name == crate::model::arch::LLADA2.name && hf.use_qkv_bias == Some(true) {
            return Err(Error::model(file, "use_qkv_bias = true is not supported for LLaDA 2 (no fused query_key_value bias)"));
        }
        let sigmoid = match hf.score_function.as_deref() {
            None => family.name == crate::model::arch::LLADA2.name,
            Some("sigmoid") => true,
            Some("softmax") => false,
            Some(f) => return Err(Error::model(file, format!("score_function {f:?} is not supported (softmax or sigmoid)"))),
        };
        let head_dim = match hf.head_dim {
            Some(h) => h,
            None => derived_head_dim(file, d_model, n_heads)?,
        };
        let rope_dims = match hf.partial_rotary_factor {
            None => head_dim,
            Some(f) if f > 0.0 && f <= 1.0 => (head_dim as f64 * f) as usize,
            Some(f) => return Err(Error::model(file, format!("partial_rotary_factor {f} must be in (0, 1]"))),
        };
        let n_experts_used = if n_experts > 0 { need(hf.num_experts_per_tok, "num_experts_per_tok")? } else { 0 };
        let cfg = ModelConfig {
            family: family.name.to_string(),
            d_model,
            n_layers: need(hf.n_layers.or(hf.num_hidden_layers), "n_layers")?,
            n_heads,
            n_kv_heads: hf.n_kv_heads.or(hf.num_key_value_heads).unwrap_or(n_heads),
            head_dim,
            mlp_hidden_size: match hf.mlp_hidden_size.or(hf.intermediate_size).or(hf.dense_intermediate_size) {
                None if n_experts > 0 => 0,
                v => need(v, "mlp_hidden_size")?,
            },
            n_experts,
            n_experts_used,
            expert_hidden_size: if n_experts > 0 { need(hf.moe_intermediate_size.or(hf.expert_intermediate_size), "moe_intermediate_size")? } else { 0 },
            // A sigmoid gate (BailingMoeV2's) renormalises whenever it picks more than one expert.
            norm_topk_prob: if sigmoid {
                n_experts_used > 1
            } else {
                hf.norm_topk_prob.filter(|_| !family.norm_topk_prob_fixed).unwrap_or(family.norm_topk_prob)
            },
            routing: Routing {
                sigmoid,
                groups: hf.n_group.unwrap_or(1),
                topk_groups: hf.topk_group.unwrap_or(1),
                scale: hf.routed_scaling_factor.unwrap_or(1.0) as f32,
            },
            n_shared_experts: if n_experts > 0 { hf.num_shared_experts.unwrap_or(0) } else { 0 },
            rope_dims,
            attention_block: family.attention_block,
            vocab_size: need(hf.embedding_size.or(hf.vocab_size), "vocab_size")?,
            rope_theta: hf.rope_theta.unwrap_or(10000.0) as f32,
            rms_norm_eps: hf.rms_norm_eps.unwrap_or(1e-5) as f32,
            max_sequence_length: hf.max_sequence_length.or(hf.max_position_embeddings).unwrap_or(4096),
            mask_token_id: hf.mask_token_id.unwrap_or(family.default_mask_token),
            eos_token_id: first_id(file, "eos_token_id", &hf.eos_token_id)?,
            bos_token_id: first_id(file, "bos_token_id", &hf.bos_token_id)?,
            eot_token_id: first_id(file, "eot_token_id", &hf.eot_token_id)?,
            shift_logits: family.shift_logits,
            chat_template: None,
        };
        cfg.validate(file)?;
        Ok(cfg)
    }

    /// Reads the `<arch>.*` metadata of a GGUF file (the tensors' shapes are checked later,
    /// by the index).
    pub fn from_gguf(g: &Gguf) -> Result<Self> {
        let file = g.file.as_str();
        let arch = g.get("general.architecture").and_then(Value::as_str).unwrap_or("");
        let family = Family::by_gguf_arch(arch).ok_or_else(|| Error::model(file, format!("general.architecture is {arch:?}; {}", supported())))?;
        let num = |key: &str| g.get(key).and_then(Value::as_u64).map(|v| v.min(usize::MAX as u64) as usize);
        let key = |k: &str| format!("{arch}.{k}");
        let need = |k: &str| num(&key(k)).ok_or_else(|| Error::model(file, format!("metadata `{}` is missing", key(k))));
        let embed = family.spec(crate::model::arch::Role::Embed).map(|s| s.gguf).unwrap_or("token_embd.weight");
        let vocab =
            g.tensor(embed).and_then(|t| t.dims.get(1).copied()).ok_or_else(|| Error::model(file, format!("tensor `{embed}` is missing or not 2-D")))?;
        let n_heads = need("attention.head_count")?;
        let id = |k: &str| num(k).map(|v| v.min(u32::MAX as usize) as u32);
        let float = |k: &str, default: f64| g.get(&key(k)).and_then(Value::as_f64).unwrap_or(default) as f32;
        let d_model = need("embedding_length")?;
        let n_experts = num(&key("expert_count")).unwrap_or(0);
        let head_dim = match num(&key("attention.key_length")) {
            Some(h) => h,
            None => derived_head_dim(file, d_model, n_heads)?,
        };
        // llama.cpp's expert_gating_func: 1 softmax, 2 sigmoid.
        let sigmoid = match num(&key("expert_gating_func")) {
            None | Some(1) => false,
            Some(2) => true,
            Some(f) => return Err(Error::model(file, format!("{} = {f} is not supported (1 softmax, 2 sigmoid)", key("expert_gating_func")))),
        };
        let cfg = ModelConfig {
            family: family.name.to_string(),
            d_model,
            n_layers: need("block_count")?,
            n_heads,
            n_kv_heads: num(&key("attention.head_count_kv")).unwrap_or(n_heads),
            head_dim,
            // MoE-only models may omit the dense size.
            mlp_hidden_size: if n_experts > 0 { num(&key("feed_forward_length")).unwrap_or(0) } else { need("feed_forward_length")? },
            n_experts,
            n_experts_used: if n_experts > 0 { need("expert_used_count")? } else { 0 },
            expert_hidden_size: if n_experts > 0 { need("expert_feed_forward_length")? } else { 0 },
            norm_topk_prob: g
                .get(&key("expert_weights_norm"))
                .and_then(Value::as_bool)
                .filter(|_| !family.norm_topk_prob_fixed)
                .unwrap_or(family.norm_topk_prob),
            routing: Routing {
                sigmoid,
                groups: num(&key("expert_group_count")).unwrap_or(1),
                topk_groups: num(&key("expert_group_used_count")).unwrap_or(1),
                scale: float("expert_weights_scale", 1.0),
            },
            n_shared_experts: if n_experts > 0 { num(&key("expert_shared_count")).unwrap_or(0) } else { 0 },
            rope_dims: num(&key("rope.dimension_count")).unwrap_or(head_dim),
            attention_block: family.attention_block,
            vocab_size: vocab.min(usize::MAX as u64) as usize,
            rope_theta: float("rope.freq_base", 10000.0),
            rms_norm_eps: float("attention.layer_norm_rms_epsilon", 1e-5),
            max_sequence_length: num(&key("context_length")).unwrap_or(4096),
            mask_token_id: id("tokenizer.ggml.mask_token_id").unwrap_or(family.default_mask_token),
            eos_token_id: id("tokenizer.ggml.eos_token_id"),
            bos_token_id: id("tokenizer.ggml.bos_token_id"),
            eot_token_id: id("tokenizer.ggml.eot_token_id"),
            shift_logits: g.get("diffusion.shift_logits").and_then(Value::as_bool).unwrap_or(family.shift_logits),
            chat_template: g.get("tokenizer.chat_template").and_then(Value::as_str).map(str::to_string),
        };
        cfg.validate(file)?;
        Ok(cfg)
    }

    /// The family's architecture table.
    pub fn family(&self) -> &'static Family {
        Family::named(&self.family).unwrap_or(&crate::model::arch::LLADA)
    }

    /// Checks the relations the forward pass relies on.
    pub fn validate(&self, file: &str) -> Result<()> {
        let bad = |p: String| Err(Error::model(file, p));
        for (name, v) in [
            ("d_model", self.d_model),
            ("n_layers", self.n_layers),
            ("n_heads", self.n_heads),
            ("n_kv_heads", self.n_kv_heads),
            ("head_dim", self.head_dim),
            ("mlp_hidden_size", if self.is_moe() { self.mlp_hidden_size.max(1) } else { self.mlp_hidden_size }),
            ("vocab_size", self.vocab_size),
            ("max_sequence_length", self.max_sequence_length),
        ] {
            if v == 0 || v > MAX_DIM {
                return bad(format!("{name} = {v} is out of range (1..={MAX_DIM})"));
            }
        }
        // Per-layer tables are allocated before the tensors are looked up: bound the count.
        if self.n_layers > MAX_LAYERS {
            return bad(format!("n_layers = {} is out of range (1..={MAX_LAYERS})", self.n_layers));
        }
        if self.is_moe() {
            if self.n_experts > MAX_EXPERTS {
                return bad(format!("{} experts: at most {MAX_EXPERTS} are supported", self.n_experts));
            }
            if self.n_experts_used == 0 || self.n_experts_used > self.n_experts.min(MAX_EXPERTS_USED) {
                return bad(format!("{} experts per token must be between 1 and {}", self.n_experts_used, self.n_experts.min(MAX_EXPERTS_USED)));
            }
            if self.expert_hidden_size == 0 || self.expert_hidden_size > MAX_DIM {
                return bad(format!("expert hidden size {} is out of range (1..={MAX_DIM})", self.expert_hidden_size));
            }
            let r = self.routing;
            if r.groups == 0 || r.groups > MAX_EXPERT_GROUPS || !self.n_experts.is_multiple_of(r.groups) {
                return bad(format!("{} expert groups must divide the {} experts (at most {MAX_EXPERT_GROUPS} groups)", r.groups, self.n_experts));
            }
            if r.groups > 1 && self.n_experts / r.groups < 2 {
                return bad(format!("expert groups of {} cannot be ranked by their two best scores", self.n_experts / r.groups));
            }
            if r.topk_groups == 0 || r.topk_groups > r.groups || self.n_experts_used > r.topk_groups * (self.n_experts / r.groups) {
                return bad(format!("top-{} groups of {} cannot hold {} experts per token", r.topk_groups, r.groups, self.n_experts_used));
            }
            if !(r.scale.is_finite() && r.scale > 0.0) {
                return bad(format!("routed_scaling_factor {} must be a positive number", r.scale));
            }
            if self.n_shared_experts > 64 {
                return bad(format!("{} shared experts is out of range (at most 64)", self.n_shared_experts));
            }
        }
        if self.rope_dims == 0 || !self.rope_dims.is_multiple_of(2) || self.rope_dims > self.head_dim {
            return bad(format!("RoPE over {} of each head's {} dimensions: it must be an even number, at most the head width", self.rope_dims, self.head_dim));
        }
        if !self.n_heads.is_multiple_of(self.n_kv_heads) {
            return bad(format!("n_heads {} is not a multiple of n_kv_heads {}", self.n_heads, self.n_kv_heads));
        }
        let hd = self.head_dim();
        if !hd.is_multiple_of(2) || hd > 256 {
            return bad(format!("head_dim {hd} must be even and at most 256"));
        }
        if (self.mask_token_id as usize) >= self.vocab_size {
            return bad(format!("mask_token_id {} is outside the vocabulary ({})", self.mask_token_id, self.vocab_size));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 1.0) {
            return bad(format!("rope_theta {} must be a finite number above 1", self.rope_theta));
        }
        if Family::named(&self.family).is_none() {
            return bad(format!("unknown model family {:?}; {}", self.family, supported()));
        }
        for (name, id) in [("eos_token_id", self.eos_token_id), ("bos_token_id", self.bos_token_id), ("eot_token_id", self.eot_token_id)] {
            if let Some(id) = id.filter(|&id| id as usize >= self.vocab_size) {
                return bad(format!("{name} {id} is outside the vocabulary ({})", self.vocab_size));
            }
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps > 0.0) {
            return bad(format!("rms_norm_eps {} must be positive", self.rms_norm_eps));
        }
        Ok(())
    }
}

/// d_model / n_heads, for configs that do not state the head width.
fn derived_head_dim(file: &str, d_model: usize, n_heads: usize) -> Result<usize> {
    if n_heads == 0 || !d_model.is_multiple_of(n_heads) {
        return Err(Error::model(file, format!("d_model {d_model} is not a multiple of n_heads {n_heads} (and no head_dim is given)")));
    }
    Ok(d_model / n_heads)
}

/// A special id given as a number or a list of numbers (the first counts); null is none.
fn first_id(file: &str, key: &str, v: &Option<serde_json::Value>) -> Result<Option<u32>> {
    let v = match v {
        Some(serde_json::Value::Array(a)) => a.first(),
        other => other.as_ref(),
    };
    match v {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(x) => x.as_u64().and_then(|n| u32::try_from(n).ok()).map(Some).ok_or_else(|| Error::model(file, format!("`{key}` is not a token id: {x}"))),
    }
}

fn supported() -> String {
    let names: Vec<&str> = crate::model::arch::FAMILIES.iter().map(|f| f.gguf_arch).collect();
    format!("supported architectures: {}", names.join(", "))
}
