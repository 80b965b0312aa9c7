//! DiffusionGemma written as llama.cpp's `diffusion-gemma` GGUF (docs/diffusion_gemma_gguf.md):
//! the metadata its converter writes for a config and sampler settings, and every tensor's
//! GGUF name and dimensions. Tests build full-size sparse models with it; `tests/` checks its
//! keys against a GGUF that llama.cpp's own converter wrote.

use super::config::DgConfig;
use super::gguf_config::ARCH;
use super::index::{gguf_name, Lt, T};
use super::sampler::DgSettings;
use crate::model::gguf::Value;

/// The metadata of a `diffusion-gemma` GGUF for `c` and `s` (tokenizer keys not included).
pub fn metadata(c: &DgConfig, s: &DgSettings) -> Vec<(String, Value)> {
    let full = c.layers.iter().find(|l| l.full).copied().unwrap_or(c.layers[0]);
    let swa = c.layers.iter().find(|l| !l.full).copied().unwrap_or(full);
    let k = |n: &str| format!("{ARCH}.{n}");
    let u = |v: usize| Value::U32(v as u32);
    let mut m = vec![
        ("general.architecture".to_string(), Value::Str(ARCH.into())),
        (k("block_count"), u(c.layers.len())),
        (k("context_length"), u(c.max_positions)),
        (k("embedding_length"), u(c.hidden)),
        (k("feed_forward_length"), u(c.intermediate)),
        (k("attention.head_count"), u(c.heads)),
        (k("attention.head_count_kv"), Value::Array(c.layers.iter().map(|l| Value::I32(l.kv_heads as i32)).collect())),
        (k("attention.key_length"), u(full.head_dim)),
        (k("attention.value_length"), u(full.head_dim)),
        (k("attention.key_length_swa"), u(swa.head_dim)),
        (k("attention.value_length_swa"), u(swa.head_dim)),
        (k("attention.sliding_window"), u(c.sliding_window)),
        (k("attention.sliding_window_pattern"), Value::Array(c.layers.iter().map(|l| Value::Bool(!l.full)).collect())),
        (k("attention.layer_norm_rms_epsilon"), Value::F32(c.rms_eps)),
        (k("rope.freq_base"), Value::F32(full.rope.theta)),
        (k("rope.freq_base_swa"), Value::F32(swa.rope.theta)),
        (k("rope.dimension_count"), u(full.head_dim)),
        (k("rope.dimension_count_swa"), u(swa.head_dim)),
        (k("expert_count"), u(c.experts)),
        (k("expert_used_count"), u(c.top_k)),
        (k("expert_feed_forward_length"), u(c.expert_hidden)),
        ("diffusion.canvas_length".into(), u(c.canvas_length)),
        ("diffusion.eb_max_steps".into(), u(s.steps)),
        ("diffusion.eb_t_min".into(), Value::F32(s.t_min)),
        ("diffusion.eb_t_max".into(), Value::F32(s.t_max)),
        ("diffusion.eb_entropy_bound".into(), Value::F32(s.entropy_bound)),
        ("diffusion.eb_stability_threshold".into(), u(s.stability_threshold)),
        ("diffusion.eb_confidence_threshold".into(), Value::F32(s.confidence_threshold)),
    ];
    if let Some(cap) = c.softcap {
        m.push((k("final_logit_softcapping"), Value::F32(cap)));
    }
    m
}

/// `rope_freqs`: 1 for each of the full layers' turning pairs, 1e30 for the still ones.
pub fn rope_freqs(c: &DgConfig) -> Vec<f32> {
    let full = c.layers.iter().find(|l| l.full).copied().unwrap_or(c.layers[0]);
    (0..full.head_dim / 2).map(|i| if i < full.rope.pairs { 1.0 } else { 1e30 }).collect()
}

/// Every tensor of the model in GGUF: (tensor, name, dimensions innermost first). The packed
/// experts' gate/up appears once, as `T::L(l, Lt::GateExps)` with dimensions [H, 2Ie, E].
pub fn tensors(c: &DgConfig) -> Vec<(T, String, Vec<u64>)> {
    let mut out = Vec::new();
    let mut all = vec![T::Embed, T::FinalNorm, T::ScNorm, T::ScGate, T::ScUp, T::ScDown];
    for (l, g) in c.layers.iter().enumerate() {
        for lt in super::index::LAYER.iter().map(|x| x.0).chain([Lt::GateExps]) {
            if !(lt == Lt::V && g.full) {
                all.push(T::L(l, lt));
            }
        }
    }
    let (h, e, ie) = (c.hidden as u64, c.experts as u64, c.expert_hidden as u64);
    for t in all {
        let [rows, cols] = t.shape(c).map(|x| x as u64);
        let dims = match t {
            T::L(_, Lt::GateExps) => vec![h, 2 * ie, e],
            T::L(_, Lt::DownExps) => vec![ie, h, e],
            _ if rows == 1 => vec![cols],
            _ => vec![cols, rows],
        };
        out.push((t, gguf_name(t), dims));
    }
    out
}
