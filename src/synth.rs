//! Random models of any family generated in memory (seeded), for tests and benchmarks:
//! no weights need to be downloaded or shipped to exercise the whole engine.

use crate::model::arch::{Dim, QuantPolicy, Role, Tensors, LLADA};
use crate::model::config::Routing;
use crate::model::{DType, HostTensor, ModelConfig, ModelWeights};
pub use crate::rng::Rng;

/// A small config for tests: `d_model = n_heads · head_dim`.
pub fn tiny_config(n_layers: usize, n_heads: usize, n_kv_heads: usize, head_dim: usize, mlp: usize, vocab: usize) -> ModelConfig {
    ModelConfig {
        family: LLADA.name.into(),
        d_model: n_heads * head_dim,
        n_layers,
        n_heads,
        n_kv_heads,
        head_dim,
        mlp_hidden_size: mlp,
        n_experts: 0,
        n_experts_used: 0,
        expert_hidden_size: 0,
        norm_topk_prob: false,
        routing: Routing::SOFTMAX,
        n_shared_experts: 0,
        rope_dims: head_dim,
        attention_block: 0,
        vocab_size: vocab,
        rope_theta: 10000.0,
        rms_norm_eps: 1e-5,
        max_sequence_length: 512,
        mask_token_id: (vocab - 1) as u32,
        eos_token_id: Some((vocab - 2) as u32),
        bos_token_id: None,
        eot_token_id: None,
        shift_logits: false,
        chat_template: None,
    }
}

/// Whether a model made here has a tensor of `role`: a MoE config's layers are all MoE, a dense
/// one's all dense (the families' tables allow either per layer).
fn generated(c: &ModelConfig, role: Role) -> bool {
    let dense = matches!(role, Role::Gate | Role::Up | Role::Down);
    let moe = matches!(role, Role::Router | Role::GateExps | Role::UpExps | Role::DownExps | Role::ExpertBias);
    let shared = matches!(role, Role::SharedGate | Role::SharedUp | Role::SharedDown);
    if shared {
        return c.is_moe() && c.n_shared_experts > 0;
    }
    !((c.is_moe() && dense) || (!c.is_moe() && moe))
}

/// Random weights (scaled like a trained model's, so activations stay O(1)) stored as `dtype`;
/// norm vectors are f32 around 1.
pub fn random_model(config: &ModelConfig, dtype: DType, seed: u64) -> ModelWeights {
    let c = config;
    let family = c.family();
    let mut rng = Rng::new(seed);
    let mut mat = |rows: usize, cols: usize| random_matrix(&mut rng, dtype, rows, cols, 1.7 / (cols as f32).sqrt());
    // Drawn in this order (embedding, head, then each layer's matrices) since the first version.
    let (embed, head) = (mat(c.vocab_size, c.d_model), mat(c.vocab_size, c.d_model));
    let mut norms = Rng::new(seed ^ 0x5eed);
    let tensors = Tensors::assemble(
        family,
        c.n_layers,
        |_, spec| {
            if !generated(c, spec.role) {
                return Ok(None);
            }
            let (rows, cols) = (c.dim(spec.shape[0]), c.dim(spec.shape[1]));
            Ok(Some(match spec.role {
                Role::Embed => embed.clone(),
                Role::LmHead => head.clone(),
                _ if spec.quant == QuantPolicy::F32 && spec.shape[0] == Dim::One => {
                    HostTensor::from_f32(1, cols, &(0..cols).map(|_| 1.0 + 0.2 * norms.sym()).collect::<Vec<f32>>())
                }
                _ => mat(rows, cols),
            }))
        },
        |_, _| unreachable!("every tensor is made"),
    )
    .expect("generated");
    ModelWeights { config: c.clone(), rope: family.hf_rope, tensors }
}

/// A `rows × cols` matrix of `rng.vec(rows · cols, scale)` stored as `dtype`. Large ones are
/// drawn and encoded in row bands on all cores (an 8B model took 75 s on one): each band's
/// generator is skipped ahead to its first value and rows encode independently, so the bytes
/// are the single-threaded ones.
fn random_matrix(rng: &mut Rng, dtype: DType, rows: usize, cols: usize, scale: f32) -> HostTensor {
    let threads = if cfg!(target_arch = "wasm32") { 1 } else { std::thread::available_parallelism().map_or(1, |n| n.get()) };
    random_matrix_in(rng, dtype, rows, cols, scale, threads.min(rows * cols / (1 << 20)))
}

/// `random_matrix` in (at most) `bands` row bands drawn on threads of their own.
fn random_matrix_in(rng: &mut Rng, dtype: DType, rows: usize, cols: usize, scale: f32, bands: usize) -> HostTensor {
    let encode = |mut r: Rng, n_rows: usize| HostTensor::encode(dtype, n_rows, cols, &r.vec(n_rows * cols, scale)).expect("dims suit dtype");
    let bands = bands.min(rows).max(1);
    let whole = if bands == 1 {
        encode(rng.clone(), rows)
    } else {
        let per = rows.div_ceil(bands);
        let parts: Vec<HostTensor> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..rows)
                .step_by(per)
                .map(|r0| {
                    let mut r = rng.clone();
                    r.skip((r0 * cols) as u64);
                    s.spawn(move || encode(r, per.min(rows - r0)))
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("a band encodes")).collect()
        });
        let mut data = Vec::with_capacity(parts.iter().map(|p| p.data.len()).sum());
        for p in parts {
            data.extend_from_slice(&p.data);
        }
        HostTensor { dtype, rows, cols, data }
    };
    rng.skip((rows * cols) as u64);
    whole
}

/// Special tokens of the byte-level test tokenizer, in id order after the 256 byte tokens.
pub const SPECIALS: [&str; 6] = ["<|mdm_mask|>", "<|startoftext|>", "<|endoftext|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"];

/// A byte-level BPE `tokenizer.json` with no merges: ids 0..256 are bytes, then `SPECIALS`.
/// Any text encodes (one token per byte), so tests can use real prompts with tiny models.
pub fn byte_tokenizer_json() -> String {
    let specials: Vec<(usize, &str)> = SPECIALS.iter().enumerate().map(|(i, s)| (256 + i, *s)).collect();
    byte_tokenizer_with(&(0..256).collect::<Vec<_>>(), &specials, &[])
}

/// `byte_tokenizer_json`'s tokenizer for a model of `c`'s vocabulary: the config's mask, BOS,
/// EOS and EOT tokens at its ids, the 256 byte tokens at the first ids they leave free, and
/// every other id a filler token that no text encodes to, so that the token list is as long as
/// the embedding. Full-size synthetic GGUFs carry it for programs that need a tokenizer
/// (llama.cpp's `llama-diffusion-cli` in bench/gpu.sh).
pub fn byte_tokenizer_json_for(c: &ModelConfig) -> String {
    let mut specials = vec![(c.mask_token_id as usize, SPECIALS[0])];
    for (id, name) in [(c.bos_token_id, SPECIALS[1]), (c.eos_token_id, SPECIALS[2]), (c.eot_token_id, SPECIALS[5])] {
        specials.extend(id.map(|id| (id as usize, name)));
    }
    specials.retain(|s| s.0 < c.vocab_size);
    specials.sort_by_key(|s| s.0);
    specials.dedup_by_key(|s| s.0);
    let mut free = (0..c.vocab_size.max(256 + specials.len())).filter(|id| !specials.iter().any(|s| s.0 == *id));
    let bytes: Vec<usize> = free.by_ref().take(256).collect();
    let fillers: Vec<(usize, String)> = free.filter(|id| *id < c.vocab_size).map(|id| (id, format!("<|filler_{id}|>"))).collect();
    byte_tokenizer_with(&bytes, &specials, &fillers)
}

/// The byte-level tokenizer with byte `b` at id `bytes[b]`, `specials` (id, text) as special
/// added tokens and `fillers` as plain vocabulary entries (without merges no text reaches them).
fn byte_tokenizer_with(bytes: &[usize], specials: &[(usize, &str)], fillers: &[(usize, String)]) -> String {
    // GPT-2's byte ↔ printable character table.
    let printable: Vec<u32> = ('!' as u32..='~' as u32).chain('¡' as u32..='¬' as u32).chain('®' as u32..='ÿ' as u32).collect();
    let mut vocab = serde_json::Map::new();
    let mut extra = 0;
    for b in 0..256u32 {
        let c = if printable.contains(&b) {
            b
        } else {
            extra += 1;
            255 + extra
        };
        vocab.insert(char::from_u32(c).expect("a printable character").to_string(), bytes[b as usize].into());
    }
    for (id, s) in fillers {
        vocab.insert(s.clone(), (*id).into());
    }
    let added: Vec<serde_json::Value> = specials
        .iter()
        .map(|&(id, s)| {
            vocab.insert(s.to_string(), id.into());
            serde_json::json!({"id": id, "content": s, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let byte_level = serde_json::json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true});
    serde_json::json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": added,
        "normalizer": null, "pre_tokenizer": byte_level, "post_processor": null, "decoder": byte_level,
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null, "end_of_word_suffix": null,
                  "fuse_unk": false, "byte_fallback": false, "ignore_merges": false, "vocab": vocab, "merges": []}
    })
    .to_string()
}

/// A tiny config whose special ids match `byte_tokenizer_json` (vocab 262 + `extra`).
pub fn tiny_config_with_tokenizer(n_layers: usize, n_heads: usize, n_kv_heads: usize, head_dim: usize, mlp: usize) -> ModelConfig {
    let mut c = tiny_config(n_layers, n_heads, n_kv_heads, head_dim, mlp, 256 + SPECIALS.len());
    c.mask_token_id = 256;
    c.bos_token_id = Some(257);
    c.eos_token_id = Some(258);
    c.eot_token_id = Some(261);
    c
}

/// LLaDA-8B-Instruct's config (`../shared/docs/llada-8b-instruct.config.json`, the fields the
/// engine reads), for full-size shapes without the weights.
pub fn llada_8b_config() -> ModelConfig {
    ModelConfig {
        family: LLADA.name.into(),
        d_model: 4096,
        n_layers: 32,
        n_heads: 32,
        n_kv_heads: 32,
        head_dim: 128,
        mlp_hidden_size: 12288,
        n_experts: 0,
        n_experts_used: 0,
        expert_hidden_size: 0,
        norm_topk_prob: false,
        routing: Routing::SOFTMAX,
        n_shared_experts: 0,
        rope_dims: 128,
        attention_block: 0,
        vocab_size: 126464,
        rope_theta: 500000.0,
        rms_norm_eps: 1e-5,
        max_sequence_length: 4096,
        mask_token_id: 126336,
        eos_token_id: Some(126081),
        bos_token_id: None,
        eot_token_id: None,
        shift_logits: false,
        chat_template: None,
    }
}

/// Random Q4_0 blocks for a `[rows, cols]` matrix (scale 1/64, random nibbles).
pub fn random_q4_0_bytes(rows: usize, cols: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(rows * cols / 32 * 18);
    let scale = half::f16::from_f32(1.0 / 64.0).to_le_bytes();
    for _ in 0..rows * cols / 32 {
        out.extend_from_slice(&scale);
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
        out.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    out
}

/// A full-size GGUF (llama.cpp names and metadata of the config's family, Q4_0) whose answer is
/// checkable: every block matrix (and bias, and router) is zero (written as holes by
/// `GgufWriter::write_sparse`), norms are ones and the LM head equals a random embedding, so
/// each position's argmax is its own token (the previous position's, where logits are shifted).
/// A MoE family's layers are all MoE.
pub fn identity_gguf(c: &ModelConfig) -> crate::model::gguf_write::GgufWriter {
    let mut g = crate::model::gguf_write::GgufWriter::default();
    for (k, v) in c.gguf_metadata() {
        g.meta(&k, v);
    }
    let v = c.vocab_size;
    let emb = HostTensor { dtype: DType::Q4_0, rows: v, cols: c.d_model, data: random_q4_0_bytes(v, c.d_model, 1) };
    for (key, spec) in c.family().keys(c.n_layers) {
        if !generated(c, spec.role) {
            continue;
        }
        let (rows, cols) = (c.dim(spec.shape[0]), c.dim(spec.shape[1]));
        let name = spec.name(true, key.layer);
        let dims = if spec.experts { vec![cols as u64, (rows / c.n_experts) as u64, c.n_experts as u64] } else { vec![cols as u64, rows as u64] };
        match (spec.role, spec.quant) {
            (Role::Embed | Role::LmHead, _) => g.tensor(&name, dims, emb.clone()),
            (Role::QBias | Role::KBias | Role::VBias | Role::OBias | Role::ExpertBias, _) => g.zeros(&name, vec![cols as u64], DType::F32),
            (Role::Router, _) => g.zeros(&name, dims, DType::F32),
            (_, QuantPolicy::F32) => g.tensor(&name, vec![cols as u64], HostTensor::from_f32(1, cols, &vec![1.0; cols])),
            _ => g.zeros(&name, dims, DType::Q4_0),
        };
    }
    g
}

/// A `rows` × `cols` k-quant tensor (Q4_K or Q6_K: `rows · cols` a multiple of 256) of random blocks
/// with small positive f16 scales (no encoder makes k-quants here; tests and `bench --kernels`
/// take these).
pub fn random_blocks(dtype: DType, rows: usize, cols: usize, seed: u64) -> HostTensor {
    let mut rng = Rng::new(seed);
    let (size, scale_at): (usize, &[usize]) = match dtype {
        DType::Q4K => (144, &[0, 2]),
        _ => (210, &[208]),
    };
    let blocks = rows * cols / 256;
    let mut data = Vec::with_capacity(blocks * size);
    for _ in 0..blocks {
        // Eight random bytes a draw (an LM head of LLaDA-8B's shape is 2 million blocks).
        let mut b: Vec<u8> = (0..size.div_ceil(8)).flat_map(|_| rng.next_u64().to_le_bytes()).take(size).collect();
        for &p in scale_at {
            b[p..p + 2].copy_from_slice(&half::f16::from_f32(0.001 + 0.01 * rng.sym().abs()).to_le_bytes());
        }
        data.extend(b);
    }
    HostTensor { dtype, rows, cols, data }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Row bands drawn on threads give the bytes of one thread's draw, and leave the generator
    /// where one draw would (the next matrix is the same too).
    #[test]
    fn banded_matrices_equal_one_draw() {
        for (dtype, rows, cols, bands) in [(DType::Q4_0, 37, 64, 3), (DType::Q8_0, 10, 96, 4), (DType::F16, 5, 7, 2), (DType::F32, 9, 3, 9)] {
            let (mut one, mut banded) = (Rng::new(7), Rng::new(7));
            let want = HostTensor::encode(dtype, rows, cols, &one.vec(rows * cols, 0.3)).unwrap();
            let got = random_matrix_in(&mut banded, dtype, rows, cols, 0.3, bands);
            assert_eq!((got.rows, got.cols, got.dtype), (rows, cols, dtype));
            assert!(got.data == want.data, "{dtype:?} in {bands} bands differs from one draw");
            assert_eq!(one.next_u64(), banded.next_u64(), "{dtype:?}: the generator moved on differently");
        }
    }
}
