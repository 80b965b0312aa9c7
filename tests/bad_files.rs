//! Corrupt, truncated or inconsistent model files give errors that name the file and the
//! problem; nothing panics. Each case starts from a valid generated model and breaks one thing.

use unmask::model::gguf::Gguf;
use unmask::model::{DType, ModelWeights};
use unmask::synth::{random_model, tiny_config};

fn gguf_bytes() -> Vec<u8> {
    random_model(&tiny_config(1, 2, 2, 16, 32, 40), DType::F32, 1).to_gguf(vec![])
}

fn gguf_err(bytes: &[u8]) -> String {
    match ModelWeights::from_gguf("m.gguf", bytes) {
        Ok(_) => panic!("a broken GGUF file was accepted"),
        Err(e) => e.to_string(),
    }
}

fn assert_has(msg: &str, needles: &[&str]) {
    for n in needles {
        assert!(msg.contains(n), "message {msg:?} should mention {n:?}");
    }
}

#[test]
fn gguf_wrong_magic() {
    let mut b = gguf_bytes();
    b[..4].copy_from_slice(b"GGML");
    assert_has(&gguf_err(&b), &["m.gguf", "not a GGUF file"]);
}

#[test]
fn gguf_truncated_anywhere() {
    let b = gguf_bytes();
    // Cut in the header, in the tensor directory, and in the tensor data.
    for cut in [3, 10, 30, 200, b.len() / 2, b.len() - 1] {
        let msg = gguf_err(&b[..cut]);
        assert!(msg.starts_with("m.gguf: "), "{msg}");
        assert!(msg.contains("truncated") || msg.contains("impossible") || msg.contains("not a GGUF"), "cut at {cut}: {msg}");
    }
}

/// Byte offset of the first tensor-directory entry named `name` (its name string).
fn find(b: &[u8], name: &str) -> usize {
    b.windows(name.len()).position(|w| w == name.as_bytes()).expect("name present")
}

#[test]
fn gguf_unknown_dtype() {
    let mut b = gguf_bytes();
    // tensor entry: name, rank u32, dims u64 × rank, type u32, offset u64
    let at = find(&b, "blk.0.attn_q.weight") + "blk.0.attn_q.weight".len();
    let type_at = at + 4 + 2 * 8;
    b[type_at..type_at + 4].copy_from_slice(&13u32.to_le_bytes()); // Q5_K
    assert_has(&gguf_err(&b), &["blk.0.attn_q.weight", "Q5_K", "not supported"]);
}

#[test]
fn gguf_dimensions_that_overflow_or_exceed_the_file() {
    let mut b = gguf_bytes();
    let at = find(&b, "output.weight") + "output.weight".len();
    b[at + 4..at + 12].copy_from_slice(&u64::MAX.to_le_bytes());
    assert_has(&gguf_err(&b), &["output.weight"]);
    let mut b = gguf_bytes();
    b[at + 12..at + 20].copy_from_slice(&(1u64 << 31).to_le_bytes());
    assert_has(&gguf_err(&b), &["output.weight", "truncated"]);
}

#[test]
fn gguf_absurd_counts_are_refused_before_allocating() {
    let mut b = gguf_bytes();
    b[8..16].copy_from_slice(&(u64::MAX / 2).to_le_bytes()); // tensor count
    assert_has(&gguf_err(&b), &["tensor count", "impossible"]);
    let mut b = gguf_bytes();
    b[16..24].copy_from_slice(&(1u64 << 60).to_le_bytes()); // metadata count
    assert_has(&gguf_err(&b), &["metadata count", "impossible"]);
}

#[test]
fn gguf_missing_tensor_and_wrong_shape() {
    let mut b = gguf_bytes();
    let at = find(&b, "blk.0.ffn_up.weight");
    b[at..at + 3].copy_from_slice(b"xxx");
    assert_has(&gguf_err(&b), &["blk.0.ffn_up.weight", "missing"]);
    let mut b = gguf_bytes();
    let at = find(&b, "blk.0.ffn_up.weight") + "blk.0.ffn_up.weight".len();
    b[at + 4..at + 12].copy_from_slice(&16u64.to_le_bytes()); // row length 32 → 16
    assert_has(&gguf_err(&b), &["blk.0.ffn_up.weight", "shape"]);
}

#[test]
fn gguf_wrong_architecture_and_bad_config() {
    let w = random_model(&tiny_config(1, 2, 2, 16, 32, 40), DType::F32, 1);
    let mut b = w.to_gguf(vec![]);
    let at = find(&b, "llada");
    b[at..at + 5].copy_from_slice(b"llama");
    assert_has(&gguf_err(&b), &["architecture", "llama"]);
    let mut b = w.to_gguf(vec![]);
    // head_count 2 → 3: d_model 32 is not a multiple of 3.
    let key = b"llada.attention.head_count";
    let pos = b.windows(key.len() + 4).position(|win| &win[..key.len()] == key && win[key.len()..] == 4u32.to_le_bytes()).unwrap();
    let v = pos + key.len() + 4;
    b[v..v + 4].copy_from_slice(&3u32.to_le_bytes());
    assert_has(&gguf_err(&b), &["m.gguf", "n_heads 3 is not a multiple of n_kv_heads 2"]);
    // block_count 1 → 10813441 (one flipped byte): refused before per-layer tables exist (it
    // once allocated tens of GB).
    let mut b = w.to_gguf(vec![]);
    let v = find(&b, "llada.block_count") + "llada.block_count".len() + 4;
    b[v + 2] ^= 0xa5;
    assert_has(&gguf_err(&b), &["m.gguf", "n_layers = 10813441 is out of range"]);
    // A file that says its logits are shifted (Dream-style) is run that way.
    let mut b = w.to_gguf(vec![]);
    let key = b"diffusion.shift_logits";
    let v = find(&b, "diffusion.shift_logits") + key.len() + 4; // after the key and its type (u32)
    assert_eq!(b[v], 0);
    b[v] = 1;
    assert!(ModelWeights::from_gguf("m.gguf", &b).unwrap().config.shift_logits);
}

/// The family fixtures (tests/data/families) broken one way at a time: an architecture nobody
/// supports names the supported ones; a config whose expert counts contradict the tensors, or a
/// layer with half a feed-forward, is refused while indexing (before any allocation).
#[test]
fn unsupported_architectures_and_configs_that_contradict_the_tensors() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/families/rnd1");
    let gguf = std::fs::read(dir.join("model.gguf")).unwrap();
    let mut b = gguf.clone();
    let at = find(&b, "rnd1");
    b[at..at + 4].copy_from_slice(b"qwe3");
    assert_has(&gguf_err(&b), &["m.gguf", "\"qwe3\"", "supported architectures: llada, dream, llada-moe, rnd1, llada2"]);

    let cfg = std::fs::read_to_string(dir.join("config.json")).unwrap();
    let st = std::fs::read(dir.join("model.safetensors")).unwrap();
    let load = |cfg: &str, st: &[u8]| {
        ModelWeights::from_safetensors("config.json", cfg, &[("model.safetensors".into(), st)]).err().map(|e| e.to_string()).expect("an error")
    };
    assert_has(&load(&cfg.replace("\"num_experts\": 8", "\"num_experts\": 16"), &st), &["mlp.gate.weight", "[8, 64]", "[16, 64]"]);
    assert_has(&load(&cfg.replace("\"num_experts\": 8", "\"num_experts\": 4"), &st), &["mlp.gate.weight", "shape"]);
    assert_has(&load(&cfg.replace("\"moe_intermediate_size\": 32", "\"moe_intermediate_size\": 48"), &st), &["gate_proj", "shape"]);
    assert_has(&load(&cfg.replace("\"num_experts_per_tok\": 2", "\"num_experts_per_tok\": 9"), &st), &["experts per token"]);
    assert_has(&load(&cfg.replace("\"head_dim\": 16", "\"head_dim\": 8"), &st), &["q_proj", "shape"]);
    // A config without experts for a file with a router.
    assert_has(&load(&cfg.replace("\"num_experts\": 8", "\"num_experts\": 0"), &st), &["mlp.gate.weight", "[0, 64]"]);
    // The expert tensors of layer 1 renamed away: layer 1 has half a MoE.
    let mut renamed = st.clone();
    let at = find(&renamed, "layers.1.mlp.experts.3.up_proj");
    renamed[at + "layers.1.mlp.experts.3.up".len()] = b'X';
    assert_has(&load(&cfg, &renamed), &["layers.1.mlp.experts.3.up_proj", "missing"]);
    // GGUF: the expert count in the metadata contradicts the stacked tensors.
    let mut b = gguf.clone();
    let key = b"rnd1.expert_count";
    let v = b.windows(key.len()).position(|w| w == key).unwrap() + key.len() + 4;
    assert_eq!(b[v..v + 4], 8u32.to_le_bytes());
    b[v..v + 4].copy_from_slice(&7u32.to_le_bytes());
    assert_has(&gguf_err(&b), &["m.gguf", "ffn_gate_inp", "shape"]);
}

#[test]
fn gguf_parser_survives_every_single_byte_corruption_of_the_header() {
    // Flip each header byte in turn: every outcome is Ok or a clean error, never a panic.
    let b = gguf_bytes();
    let data_start = Gguf::parse("m.gguf", &b).unwrap().data.as_ptr() as usize - b.as_ptr() as usize;
    for i in 0..data_start {
        let mut c = b.clone();
        c[i] ^= 0xa5;
        let _ = ModelWeights::from_gguf("m.gguf", &c);
        let _ = Gguf::parse("m.gguf", &c);
    }
}

#[test]
fn safetensors_corrupt_missing_and_misshapen() {
    let w = random_model(&tiny_config(1, 2, 2, 16, 32, 40), DType::F16, 2);
    let cfg = w.config.to_hf_json();
    let st = w.to_safetensors().unwrap();
    let load = |cfg: &str, st: &[u8]| {
        ModelWeights::from_safetensors("config.json", cfg, &[("model.safetensors".into(), st)]).err().map(|e| e.to_string()).expect("an error")
    };
    assert_has(&load(&cfg, &st[..st.len() / 2]), &["model.safetensors", "not a valid safetensors"]);
    assert_has(&load(&cfg, b"garbage"), &["model.safetensors"]);
    assert_has(&load("{ not json", &st), &["config.json", "not a valid config.json"]);
    assert_has(&load(&cfg.replace("\"n_layers\"", "\"n_layerz\""), &st), &["config.json", "n_layers"]);
    assert_has(&load(&cfg.replace("\"n_layers\": 1", "\"n_layers\": 2"), &st), &["blocks.1", "missing"]);
    assert_has(&load(&cfg.replace("\"mlp_hidden_size\": 32", "\"mlp_hidden_size\": 64"), &st), &["ff_proj", "shape"]);
    assert_has(&load(&cfg.replace("\"d_model\": 32", "\"d_model\": 100000000000"), &st), &["d_model", "out of range"]);
}

#[test]
fn a_model_too_big_for_the_adapter_is_an_error() {
    let w = random_model(&tiny_config(1, 2, 2, 16, 32, 40), DType::F32, 3);
    let g = std::sync::Arc::new(pollster::block_on(unmask::gpu::Gpu::new()).unwrap());
    g.cap_bindings(64); // smaller than one 32-float row (128 bytes)
    let e = unmask::engine::GpuModel::upload(g, &w).err().expect("an error").to_string();
    assert_has(&e, &["does not fit this GPU", "bytes", "binds at most 64"]);
}
