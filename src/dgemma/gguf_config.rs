//! DiffusionGemma's config from llama.cpp's `diffusion-gemma` GGUF metadata
//! (docs/diffusion_gemma_gguf.md §3): the `diffusion-gemma.*` hyperparameters, the per-layer
//! kv-head array and sliding-window pattern, `diffusion.canvas_length`, and the full layers'
//! partial RoPE, which the file carries as a `rope_freqs` tensor (1 for a turning pair, 1e30
//! for a still one) rather than as a key.

use super::config::{DgConfig, Layer, Rope};
use super::sampler::DgSettings;
use crate::error::{Error, Result};
use crate::model::gguf::{Gguf, Value};

/// The architecture name llama.cpp's converter writes.
pub const ARCH: &str = "diffusion-gemma";

/// The turning pairs a `rope_freqs` tensor describes: its leading run of 1.0.
pub fn rope_pairs(freqs: &[f32]) -> usize {
    freqs.iter().take_while(|&&f| f == 1.0).count()
}

impl DgConfig {
    /// From a GGUF header whose architecture is `diffusion-gemma`; `rope_pairs`: the full layers'
    /// turning pairs from `rope_freqs` (None: the reference's default factor of 0.25).
    pub fn from_gguf(g: &Gguf, rope_pairs: Option<usize>) -> Result<Self> {
        let bad = |m: String| Error::model(&g.file, m);
        let arch = g.get("general.architecture").and_then(Value::as_str).unwrap_or("");
        if arch != ARCH {
            return Err(bad(format!("general.architecture is {arch:?}, not {ARCH:?}")));
        }
        let key = |k: &str| format!("{ARCH}.{k}");
        let num = |k: &str| -> Result<usize> {
            g.get(&key(k)).and_then(Value::as_u64).map(|v| v as usize).ok_or_else(|| bad(format!("missing or non-integer `{}`", key(k))))
        };
        let float = |k: &str| g.get(&key(k)).and_then(Value::as_f64);
        let n = num("block_count")?;
        if n == 0 || n > crate::model::config::MAX_LAYERS {
            return Err(bad(format!("block_count = {n} is out of range")));
        }
        // Per layer: an array, or one value for every layer.
        let per_layer = |k: &str, f: &dyn Fn(&Value) -> Option<u64>| -> Result<Option<Vec<u64>>> {
            match g.get(&key(k)) {
                None => Ok(None),
                Some(Value::Array(a)) if a.len() == n => {
                    a.iter().map(f).collect::<Option<Vec<_>>>().map(Some).ok_or_else(|| bad(format!("`{}` has a bad entry", key(k))))
                }
                Some(Value::Array(a)) => Err(bad(format!("`{}` has {} entries for {n} layers", key(k), a.len()))),
                Some(v) => f(v).map(|x| Some(vec![x; n])).ok_or_else(|| bad(format!("`{}` is not a number", key(k)))),
            }
        };
        let sliding = per_layer("attention.sliding_window_pattern", &|v| v.as_bool().map(u64::from))?
            .ok_or_else(|| bad(format!("missing `{}`", key("attention.sliding_window_pattern"))))?;
        let kv = per_layer("attention.head_count_kv", &Value::as_u64)?.ok_or_else(|| bad(format!("missing `{}`", key("attention.head_count_kv"))))?;
        let (hd_full, hd_swa) = (num("attention.key_length")?, num("attention.key_length_swa")?);
        for (k, want) in [("rope.dimension_count", hd_full), ("rope.dimension_count_swa", hd_swa)] {
            if g.get(&key(k)).and_then(Value::as_u64).is_some_and(|d| d as usize != want) {
                return Err(bad(format!("`{}` differs from the head width {want}: partial RoPE that way is not supported", key(k))));
            }
        }
        let theta = |k: &str, default: f64| float(k).unwrap_or(default) as f32;
        let pairs = rope_pairs.unwrap_or(hd_full / 8);
        if pairs == 0 || pairs > hd_full / 2 {
            return Err(bad(format!("rope_freqs turns {pairs} pairs of a {hd_full}-wide head")));
        }
        let layers = (0..n)
            .map(|i| {
                // The reference makes the last layer full whatever the pattern says.
                let full = sliding[i] == 0 || i + 1 == n;
                let kv_heads = kv[i] as usize;
                if full {
                    Layer { full, head_dim: hd_full, kv_heads, rope: Rope { theta: theta("rope.freq_base", 1e6), pairs, denom: hd_full, factor: 1.0 } }
                } else {
                    Layer {
                        full,
                        head_dim: hd_swa,
                        kv_heads,
                        rope: Rope { theta: theta("rope.freq_base_swa", 1e4), pairs: hd_swa / 2, denom: hd_swa, factor: 1.0 },
                    }
                }
            })
            .collect();
        let vocab = g.tensor("token_embd.weight").and_then(|t| t.dims.get(1).copied()).ok_or_else(|| bad("tensor `token_embd.weight` is missing".into()))?;
        let c = DgConfig {
            hidden: num("embedding_length")?,
            heads: num("attention.head_count")?,
            layers,
            intermediate: num("feed_forward_length")?,
            experts: num("expert_count")?,
            top_k: num("expert_used_count")?,
            expert_hidden: num("expert_feed_forward_length")?,
            vocab: usize::try_from(vocab).unwrap_or(usize::MAX),
            sliding_window: num("attention.sliding_window")?,
            canvas_length: g.get("diffusion.canvas_length").and_then(Value::as_u64).map_or(256, |v| v as usize),
            rms_eps: float("attention.layer_norm_rms_epsilon").unwrap_or(1e-6) as f32,
            softcap: Some(float("final_logit_softcapping").unwrap_or(30.0) as f32),
            max_positions: num("context_length").unwrap_or(131072),
        };
        c.validate(&g.file)?;
        Ok(c)
    }
}

impl DgSettings {
    /// The sampler settings a `diffusion-gemma` GGUF carries: the converter's `diffusion.eb_*`
    /// keys (the published files lack them; then the reference's defaults, which equal the
    /// published generation_config.json) and the tokenizer's end and padding ids.
    pub fn from_gguf(g: &Gguf) -> Result<Self> {
        let d = DgSettings::default();
        let f = |k: &str, v: f32| g.get(&format!("diffusion.eb_{k}")).and_then(Value::as_f64).map_or(v, |x| x as f32);
        let n = |k: &str, v: usize| g.get(&format!("diffusion.eb_{k}")).and_then(Value::as_u64).map_or(v, |x| x as usize);
        let id = |k: &str| g.get(&format!("tokenizer.ggml.{k}")).and_then(Value::as_u64).map(|x| x as u32);
        let s = DgSettings {
            steps: n("max_steps", d.steps),
            t_min: f("t_min", d.t_min),
            t_max: f("t_max", d.t_max),
            entropy_bound: f("entropy_bound", d.entropy_bound),
            stability_threshold: n("stability_threshold", d.stability_threshold),
            confidence_threshold: f("confidence_threshold", d.confidence_threshold),
            eos: id("eos_token_id").into_iter().collect(),
            pad: id("padding_token_id"),
            ..d
        };
        s.validate().map_err(|e| Error::model(&g.file, e.to_string()))?;
        Ok(s)
    }
}
