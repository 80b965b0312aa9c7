//! A model's config written back out: the GGUF metadata and the config.json that
//! `ModelConfig::from_gguf` and `ModelConfig::from_hf_json` (config.rs) read back, for
//! `unmask convert` and the exports.

use super::config::{ModelConfig, Routing};
use crate::model::gguf::Value;

impl ModelConfig {
    /// The GGUF metadata that `from_gguf` reads back (llama.cpp's keys for the family).
    pub fn gguf_metadata(&self) -> Vec<(String, Value)> {
        let arch = self.family().gguf_arch;
        let mut out = vec![("general.architecture".to_string(), Value::Str(arch.into()))];
        for (key, v) in [
            ("block_count", Value::U32(self.n_layers as u32)),
            ("context_length", Value::U32(self.max_sequence_length as u32)),
            ("embedding_length", Value::U32(self.d_model as u32)),
            ("feed_forward_length", Value::U32(self.mlp_hidden_size as u32)),
            ("attention.head_count", Value::U32(self.n_heads as u32)),
            ("attention.head_count_kv", Value::U32(self.n_kv_heads as u32)),
            ("attention.key_length", Value::U32(self.head_dim as u32)),
            ("attention.value_length", Value::U32(self.head_dim as u32)),
            ("rope.freq_base", Value::F32(self.rope_theta)),
            ("rope.dimension_count", Value::U32(self.rope_dims as u32)),
            ("attention.layer_norm_rms_epsilon", Value::F32(self.rms_norm_eps)),
            ("attention.causal", Value::Bool(false)),
        ] {
            out.push((format!("{arch}.{key}"), v));
        }
        if self.is_moe() {
            for (key, v) in [
                ("expert_count", Value::U32(self.n_experts as u32)),
                ("expert_used_count", Value::U32(self.n_experts_used as u32)),
                ("expert_feed_forward_length", Value::U32(self.expert_hidden_size as u32)),
                ("expert_weights_norm", Value::Bool(self.norm_topk_prob)),
            ] {
                out.push((format!("{arch}.{key}"), v));
            }
            let r = self.routing;
            if r != Routing::SOFTMAX || self.n_shared_experts > 0 {
                for (key, v) in [
                    ("expert_gating_func", Value::U32(if r.sigmoid { 2 } else { 1 })),
                    ("expert_group_count", Value::U32(r.groups as u32)),
                    ("expert_group_used_count", Value::U32(r.topk_groups as u32)),
                    ("expert_weights_scale", Value::F32(r.scale)),
                    ("expert_shared_count", Value::U32(self.n_shared_experts as u32)),
                ] {
                    out.push((format!("{arch}.{key}"), v));
                }
            }
        }
        out.push(("diffusion.shift_logits".into(), Value::Bool(self.shift_logits)));
        out.push(("tokenizer.ggml.mask_token_id".into(), Value::U32(self.mask_token_id)));
        for (key, id) in [
            ("tokenizer.ggml.eos_token_id", self.eos_token_id),
            ("tokenizer.ggml.bos_token_id", self.bos_token_id),
            ("tokenizer.ggml.eot_token_id", self.eot_token_id),
        ] {
            if let Some(id) = id {
                out.push((key.into(), Value::U32(id)));
            }
        }
        out
    }

    /// A config.json that `from_hf_json` reads back (LLaDA key names).
    pub fn to_hf_json(&self) -> String {
        let family = self.family();
        let mut v = if family.name == crate::model::arch::LLADA.name {
            serde_json::json!({
                "architectures": ["LLaDAModelLM"],
                "model_type": self.family,
                "d_model": self.d_model,
                "n_layers": self.n_layers,
                "n_heads": self.n_heads,
                "n_kv_heads": self.n_kv_heads,
                "mlp_hidden_size": self.mlp_hidden_size,
                "vocab_size": self.vocab_size,
                "embedding_size": self.vocab_size,
                "max_sequence_length": self.max_sequence_length,
                "block_type": "llama",
                "layer_norm_type": "rms",
                "weight_tying": false,
                "include_bias": false,
            })
        } else {
            // The Qwen-style keys of the other families' configs.
            serde_json::json!({
                "model_type": family.hf_model_types[0],
                "hidden_size": self.d_model,
                "num_hidden_layers": self.n_layers,
                "num_attention_heads": self.n_heads,
                "num_key_value_heads": self.n_kv_heads,
                "intermediate_size": self.mlp_hidden_size,
                "vocab_size": self.vocab_size,
                "max_position_embeddings": self.max_sequence_length,
                "tie_word_embeddings": false,
            })
        };
        v["head_dim"] = self.head_dim.into();
        v["rope_theta"] = self.rope_theta.into();
        v["rms_norm_eps"] = self.rms_norm_eps.into();
        v["mask_token_id"] = self.mask_token_id.into();
        if self.is_moe() {
            v["num_experts"] = self.n_experts.into();
            v["num_experts_per_tok"] = self.n_experts_used.into();
            v["moe_intermediate_size"] = self.expert_hidden_size.into();
            v["norm_topk_prob"] = self.norm_topk_prob.into();
            v["score_function"] = if self.routing.sigmoid { "sigmoid" } else { "softmax" }.into();
            v["n_group"] = self.routing.groups.into();
            v["topk_group"] = self.routing.topk_groups.into();
            v["routed_scaling_factor"] = self.routing.scale.into();
            v["num_shared_experts"] = self.n_shared_experts.into();
        }
        if self.rope_dims != self.head_dim {
            v["partial_rotary_factor"] = (self.rope_dims as f64 / self.head_dim as f64).into();
        }
        for (key, id) in [("eos_token_id", self.eos_token_id), ("bos_token_id", self.bos_token_id), ("eot_token_id", self.eot_token_id)] {
            if let Some(id) = id {
                v[key] = id.into();
            }
        }
        serde_json::to_string_pretty(&v).expect("json")
    }
}
