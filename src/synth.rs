//! Random LLaDA-architecture models generated in memory (seeded), for tests and benchmarks:
//! no weights need to be downloaded or shipped to exercise the whole engine.

use crate::model::{DType, HostTensor, LladaConfig, ModelWeights, RopeStyle};
use crate::model::weights::LayerWeights;
pub use crate::rng::Rng;

/// A small config for tests: `d_model = n_heads · head_dim`.
pub fn tiny_config(n_layers: usize, n_heads: usize, n_kv_heads: usize, head_dim: usize, mlp: usize, vocab: usize) -> LladaConfig {
    LladaConfig {
        d_model: n_heads * head_dim,
        n_layers,
        n_heads,
        n_kv_heads,
        mlp_hidden_size: mlp,
        vocab_size: vocab,
        rope_theta: 10000.0,
        rms_norm_eps: 1e-5,
        max_sequence_length: 512,
        mask_token_id: (vocab - 1) as u32,
        eos_token_id: Some((vocab - 2) as u32),
        bos_token_id: None,
        eot_token_id: None,
    }
}

/// Random weights (scaled like a trained model's, so activations stay O(1)) stored as `dtype`.
pub fn random_model(config: &LladaConfig, dtype: DType, seed: u64) -> ModelWeights {
    let mut rng = Rng::new(seed);
    let c = config;
    let mut mat = |rows: usize, cols: usize| {
        let v = rng.vec(rows * cols, 1.7 / (cols as f32).sqrt());
        HostTensor::encode(dtype, rows, cols, &v).expect("dims suit dtype")
    };
    let embed = mat(c.vocab_size, c.d_model);
    let lm_head = mat(c.vocab_size, c.d_model);
    let layers = (0..c.n_layers)
        .map(|_| LayerWeights {
            attn_norm: vec![],
            wq: mat(c.d_model, c.d_model),
            wk: mat(c.kv_dim(), c.d_model),
            wv: mat(c.kv_dim(), c.d_model),
            wo: mat(c.d_model, c.d_model),
            ff_norm: vec![],
            w_gate: mat(c.mlp_hidden_size, c.d_model),
            w_up: mat(c.mlp_hidden_size, c.d_model),
            w_down: mat(c.d_model, c.mlp_hidden_size),
        })
        .collect::<Vec<_>>();
    let mut rng = Rng::new(seed ^ 0x5eed);
    let mut norm = || (0..c.d_model).map(|_| 1.0 + 0.2 * rng.sym()).collect::<Vec<f32>>();
    let layers = layers.into_iter().map(|l| LayerWeights { attn_norm: norm(), ff_norm: norm(), ..l }).collect();
    ModelWeights { config: c.clone(), rope: RopeStyle::NeoX, embed, layers, ln_f: norm(), lm_head }
}
