//! DiffusionGemma's CPU forward pass against transformers 5.23's own code: the tiny random model
//! of `tests/data/families/diffusion_gemma/` (3 sliding layers, 1 full layer with its own head
//! width and V = K, dense MLP beside a 4-expert MoE, sliding window 4, canvas 16), whose encoder
//! K/V and decoder logits (with and without self-conditioning, and after a committed canvas)
//! were computed by `tests/fixtures/make_diffusion_gemma.py`. Logits are compared relative to
//! each row's largest |logit| (the reference's own float32 vs float64 differ by ~5e-6 of it).

use pollster::block_on;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use unmask::dgemma::forward::{decode, encode, Cache, CpuDg};
use unmask::dgemma::gpu::DgGpuModel;
use unmask::dgemma::gpu_session::DgSession;
use unmask::dgemma::index::DgIndex;
use unmask::dgemma::sampler::{generate, DgModel, DgSettings, Draws};
use unmask::dgemma::{DgConfig, DgWeights};
use unmask::gpu::kernels::{KernelVariant, KvType};
use unmask::model::source::SliceSource;
use unmask::model::DType;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/families/diffusion_gemma")
}

fn reference() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join("reference.json")).unwrap()).unwrap()
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

fn floats(file: &str) -> Vec<f32> {
    bytemuck::pod_collect_to_vec(&std::fs::read(dir().join(file)).unwrap())
}

fn weights(config: &str) -> DgWeights {
    let st = std::fs::read(dir().join("model.safetensors")).unwrap();
    let json = std::fs::read_to_string(dir().join(config)).unwrap();
    DgWeights::from_safetensors(config, &json, &[("model.safetensors".into(), &st)]).unwrap_or_else(|e| panic!("{e}"))
}

/// Every row of `got` within `tol` of `want`'s row maximum |value|.
fn assert_rows_close(what: &str, got: &[f32], want: &[f32], cols: usize, tol: f32) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (r, (g, w)) in got.chunks(cols).zip(want.chunks(cols)).enumerate() {
        let scale = w.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
        let worst = g.iter().zip(w).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst <= tol * scale, "{what}: row {r} differs by {worst} (row max {scale})");
    }
}

#[test]
fn both_config_forms_give_the_same_geometry() {
    let hub = DgConfig::from_json("config.json", &std::fs::read_to_string(dir().join("config.json")).unwrap()).unwrap();
    let saved = DgConfig::from_json("c.json", &std::fs::read_to_string(dir().join("config.transformers-5.23.json")).unwrap()).unwrap();
    assert_eq!(hub, saved);
    let full: Vec<bool> = hub.layers.iter().map(|l| l.full).collect();
    assert_eq!(full, [false, false, false, true]);
    let l3 = hub.layers[3];
    assert_eq!((l3.head_dim, l3.kv_heads, l3.rope.pairs, l3.rope.denom), (28, 1, 3, 28), "proportional RoPE: 3 pairs, frequencies over the full 28");
    assert_eq!((hub.layers[0].head_dim, hub.layers[0].kv_heads, hub.layers[0].rope.pairs), (12, 2, 6));
    assert_eq!((hub.canvas_length, hub.sliding_window, hub.softcap), (16, 4, Some(30.0)));
}

#[test]
fn the_checkpoint_loads_skipping_the_vision_tower() {
    let w = weights("config.json");
    assert!(w.skipped_vision > 0, "the fixture has a vision tower to skip");
    assert!(w.layers[3].v.is_none() && w.layers[0].v.is_some(), "full layers have no v_proj");
    assert_ne!(w.layers[0].scalar_encoder, w.layers[0].scalar_decoder, "the two modes' layer scalars are separate tensors");
}

#[test]
fn encoder_kv_and_decoder_logits_match_the_reference() {
    let r = reference();
    let w = weights("config.json");
    let mut cache = Cache::default();
    let prompt = ids(&r["prompt"]);
    encode(&w, &mut cache, &prompt);
    assert_eq!(cache.len, prompt.len());
    // Encoder K/V per layer: the fixture stores [kv, T, hd]; the cache holds [T, kv·hd].
    let tensors = floats("tensors.bin");
    for t in r["tensors_bin"].as_array().unwrap() {
        let name = t["name"].as_str().unwrap();
        let Some(rest) = name.strip_prefix("encoder.layer") else { continue };
        let (layer, kind) = rest.split_once('.').unwrap();
        let layer: usize = layer.parse().unwrap();
        let shape: Vec<usize> = t["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        let (kv, n, hd) = (shape[0], shape[1], shape[2]);
        let at = t["offset"].as_u64().unwrap() as usize;
        let want = &tensors[at..at + kv * n * hd];
        let ours = if kind == "k" { &cache.k[layer] } else { &cache.v[layer] };
        let mut got = vec![0f32; want.len()];
        for h in 0..kv {
            for p in 0..n {
                got[(h * n + p) * hd..][..hd].copy_from_slice(&ours[(p * kv + h) * hd..][..hd]);
            }
        }
        assert_rows_close(name, &got, want, hd, 1e-4);
    }
    // Decoder logits of the canvas, without and with self-conditioning (input: the first logits).
    let canvas = ids(&r["canvas"]);
    let v = r["logits_cols"].as_u64().unwrap() as usize;
    let nosc = floats("logits_nosc.bin");
    let got = decode(&w, &cache, &canvas, None);
    assert_rows_close("decoder logits without self-conditioning", &got, &nosc, v, 1e-4);
    let got = decode(&w, &cache, &canvas, Some(&nosc));
    assert_rows_close("decoder logits with self-conditioning", &got, &floats("logits_sc.bin"), v, 1e-4);
    // A committed canvas is encoded causally at the next positions; the second canvas's logits
    // (vocab columns 0..512 stored) see the new cache.
    encode(&w, &mut cache, &ids(&r["committed_canvas"]));
    assert_eq!(cache.len, prompt.len() + canvas.len());
    let got = decode(&w, &cache, &ids(&r["canvas2"]), None);
    let cols = r["logits_canvas2_cols"].as_u64().unwrap() as usize;
    let want = floats("logits_canvas2.bin");
    let got_cols: Vec<f32> = got.chunks(v).flat_map(|row| row[..cols].to_vec()).collect();
    assert_rows_close("second canvas logits (columns 0..512)", &got_cols, &want, cols, 1e-4);
}

/// A device on the f32 path (cooperative matrices, where a GPU has them, off): the reference
/// comparisons' tolerances are for it.
fn gpu() -> Arc<unmask::gpu::Gpu> {
    let g = block_on(unmask::gpu::Gpu::new()).unwrap();
    g.set_coop_matmul(false).unwrap();
    Arc::new(g)
}

/// The fixture streamed onto `gpu` (matrices converted to `quant` when given).
fn gpu_model(gpu: Arc<unmask::gpu::Gpu>, quant: Option<DType>) -> DgGpuModel {
    let st = std::fs::read(dir().join("model.safetensors")).unwrap();
    let json = std::fs::read_to_string(dir().join("config.json")).unwrap();
    let src = SliceSource { files: vec![("model.safetensors".into(), &st[..])] };
    let index = block_on(DgIndex::read(&src, Some(("config.json", &json)))).unwrap();
    block_on(DgGpuModel::load(gpu, &index, &src, quant, &mut |_, _| {})).unwrap()
}

/// The decoder logits of the reference's three cases on a GPU model: the canvas without and
/// with self-conditioning (on the logits just made, temperature 1), and the second canvas after
/// a committed one (vocab columns 0..512).
fn gpu_cases(m: &DgGpuModel) -> [Vec<f32>; 3] {
    gpu_cases_in(m, m.gpu.default_kernels())
}

/// `gpu_cases` in kernel layout `kernels`.
fn gpu_cases_in(m: &DgGpuModel, kernels: KernelVariant) -> [Vec<f32>; 3] {
    let r = reference();
    let mut s = DgSession::new(m, 64, KvType::F32).unwrap();
    s.set_kernels(kernels).unwrap();
    let prompt = ids(&r["prompt"]);
    block_on(s.encode(&prompt)).unwrap();
    assert_eq!(s.encoded(), prompt.len());
    let canvas = ids(&r["canvas"]);
    let nosc = block_on(s.decode(&canvas, None)).unwrap();
    let sc = block_on(s.decode(&canvas, Some(1.0))).unwrap();
    block_on(s.encode(&ids(&r["committed_canvas"]))).unwrap();
    let v = m.config.vocab;
    let cols = r["logits_canvas2_cols"].as_u64().unwrap() as usize;
    let second = block_on(s.decode(&ids(&r["canvas2"]), None)).unwrap().chunks(v).flat_map(|row| row[..cols].to_vec()).collect();
    [nosc, sc, second]
}

fn assert_reference_cases(on: &str, got: &[Vec<f32>; 3]) {
    let r = reference();
    let (v, cols) = (r["logits_cols"].as_u64().unwrap() as usize, r["logits_canvas2_cols"].as_u64().unwrap() as usize);
    assert_rows_close(&format!("{on}: decoder logits without self-conditioning"), &got[0], &floats("logits_nosc.bin"), v, 1e-4);
    assert_rows_close(&format!("{on}: decoder logits with self-conditioning"), &got[1], &floats("logits_sc.bin"), v, 1e-4);
    assert_rows_close(&format!("{on}: second canvas logits (columns 0..512)"), &got[2], &floats("logits_canvas2.bin"), cols, 1e-4);
}

/// The GPU passes (every kernel the engine has for this family) against the reference.
#[test]
fn gpu_encoder_and_decoder_logits_match_the_reference() {
    let r = reference();
    let m = gpu_model(gpu(), None);
    // Both layouts: GPUs' (tiled matmuls, the tiled grouped expert matmul with its fused GeGLU)
    // and CPU adapters' where this one runs it.
    for v in [KernelVariant::Tiled, KernelVariant::CpuLanes].into_iter().filter(|&v| m.gpu.check_kernels(v).is_ok()) {
        assert_reference_cases(&format!("GPU, {} layout", v.name()), &gpu_cases_in(&m, v));
    }
    // Bad requests are refused before any work.
    let mut s = DgSession::new(&m, 64, KvType::F32).unwrap();
    let canvas = ids(&r["canvas"]);
    let v = m.config.vocab;
    assert!(block_on(s.decode(&[v as u32], None)).unwrap_err().to_string().contains("outside the vocabulary"));
    assert!(block_on(s.decode(&[1u32; 17], None)).is_err(), "a canvas longer than the model's");
    assert!(block_on(s.decode(&canvas, Some(0.5))).unwrap_err().to_string().contains("previous decode"));
    assert!(block_on(s.encode(&[1u32; 65])).is_err(), "more positions than the session holds");
    assert!(DgSession::new(&m, 0, KvType::F32).is_err());
}

/// f16 K/V (the default on GPUs with shader-f16): a GPU session against the CPU twin that rounds
/// every stored K and V the same way, through the reference's sequence (encode, decode without
/// and with self-conditioning, a committed canvas's encode, a second canvas).
///
/// Rounding to f16 is a step function: the GPU's f32 noise (about 1e-4 of these logits, as the
/// f32 session shows) moves the odd value to the neighbouring f16 value (1 of 1800 after the
/// prompt here), and this tiny random model is very sensitive to one such step (measured with
/// the twin: one K value of layer 0 or 1 moved by one f16 step moves the second canvas's logits
/// by up to 0.02; f16 as a whole moves them by 0.05). So the stored K/V are checked value by
/// value (at least 99 % equal to the twin's, each within a few f16 steps of the layer's typical
/// value), the twin then continues from the K/V the GPU stored, and the logits must be at least
/// twice as near the f16 twin as the f16 twin is to the f32 one (measured on lavapipe: 20×,
/// 8.5× and 3.9×), and near the f32 reference.
#[test]
fn f16_kv_sessions_match_the_twin_that_rounds_the_same_way() {
    let r = reference();
    let w = weights("config.json");
    let m = gpu_model(gpu(), None);
    let v = w.config.vocab;
    let mut s = DgSession::new(&m, 64, KvType::F16).unwrap();
    let (mut twin, mut f32_twin) = (Cache::new(KvType::F16), Cache::default());
    // The session's stored K/V against the twin's, then the twin's cache made the GPU's.
    let stored = |s: &DgSession, twin: &mut Cache| {
        let (mut same, mut all) = (0, 0);
        for i in 0..w.config.layers.len() {
            let (k, v) = block_on(s.read_kv(i)).unwrap();
            for (got, want) in [(&k, &twin.k[i]), (&v, &twin.v[i])] {
                assert_eq!(got.len(), want.len(), "layer {i}");
                let step = common_rms(want) * 2f32.powi(-10);
                for (a, b) in got.iter().zip(want.iter()) {
                    assert!((a - b).abs() <= 4.0 * step, "layer {i}: stored {a}, the twin {b}");
                    same += usize::from(a == b);
                    all += 1;
                }
            }
            (twin.k[i], twin.v[i]) = (k, v);
        }
        assert!(same as f64 >= 0.99 * all as f64, "only {same} of {all} stored K/V values equal the twin's");
    };
    let worst = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    let check = |what: &str, gpu: &[f32], twin16: &[f32], twin32: &[f32]| {
        let (err, effect) = (worst(gpu, twin16), worst(twin16, twin32));
        assert!(effect > 0.0, "{what}: the f16 twin rounds (else this test checks nothing)");
        assert!(err <= 0.5 * effect, "{what}: the GPU is {err} from the f16 twin; f16 itself moves the logits by {effect}");
    };
    let prompt = ids(&r["prompt"]);
    block_on(s.encode(&prompt)).unwrap();
    encode(&w, &mut twin, &prompt);
    encode(&w, &mut f32_twin, &prompt);
    stored(&s, &mut twin);
    let canvas = ids(&r["canvas"]);
    let want = decode(&w, &twin, &canvas, None);
    let got = block_on(s.decode(&canvas, None)).unwrap();
    check("decoder logits", &got, &want, &decode(&w, &f32_twin, &canvas, None));
    assert_rows_close("f16 K/V: the reference", &got, &floats("logits_nosc.bin"), v, 1e-2);
    // Self-conditioned on the GPU's own last logits (the twins too, so only this pass differs).
    let sc = block_on(s.decode(&canvas, Some(1.0))).unwrap();
    check("self-conditioned", &sc, &decode(&w, &twin, &canvas, Some(&got)), &decode(&w, &f32_twin, &canvas, Some(&got)));
    let committed = ids(&r["committed_canvas"]);
    block_on(s.encode(&committed)).unwrap();
    encode(&w, &mut twin, &committed);
    encode(&w, &mut f32_twin, &committed);
    stored(&s, &mut twin);
    let canvas2 = ids(&r["canvas2"]);
    check("second canvas", &block_on(s.decode(&canvas2, None)).unwrap(), &decode(&w, &twin, &canvas2, None), &decode(&w, &f32_twin, &canvas2, None));
}

fn common_rms(v: &[f32]) -> f32 {
    (v.iter().map(|x| x * x).sum::<f32>() / v.len().max(1) as f32).sqrt()
}

/// A GGUF index and source over `bytes`.
fn gguf(bytes: &[u8]) -> (DgIndex, SliceSource<'_>) {
    let src = SliceSource { files: vec![("model.gguf".into(), bytes)] };
    (block_on(DgIndex::read(&src, None)).unwrap_or_else(|e| panic!("{e}")), src)
}

/// The GGUF that llama.cpp's own converter (PR #24423, `tests/fixtures/make_diffusion_gemma_gguf.sh`)
/// wrote from the fixture: the same config (the full layers' partial RoPE read from its
/// `rope_freqs` tensor), its sampler keys, the same weights, and the reference's logits on the
/// GPU and the CPU twin.
#[test]
fn llama_cpp_gguf_loads_as_the_same_model() {
    let bytes = std::fs::read(dir().join("model-llamacpp-f32.gguf")).unwrap();
    let (index, src) = gguf(&bytes);
    let hub = DgConfig::from_json("config.json", &std::fs::read_to_string(dir().join("config.json")).unwrap()).unwrap();
    assert_eq!(index.config, hub);
    let s = index.settings.clone().unwrap();
    assert_eq!((s.steps, s.t_min, s.t_max, s.entropy_bound, s.stability_threshold, s.confidence_threshold), (10, 0.4, 0.8, 0.1, 1, 0.005));
    let w = block_on(DgWeights::load(&index, &src)).unwrap();
    let st = weights("config.json");
    assert_eq!(w.embed.to_f32(), st.embed.to_f32());
    assert_eq!(w.layers[1].gate_exps.to_f32(), st.layers[1].gate_exps.to_f32(), "the packed gate/up split the same way");
    assert_eq!(w.layers[3].up_exps.to_f32(), st.layers[3].up_exps.to_f32());
    assert_eq!((w.layers[2].scalar_encoder, w.layers[2].scalar_decoder), (st.layers[2].scalar_encoder, st.layers[2].scalar_decoder));
    let m = block_on(DgGpuModel::load(gpu(), &index, &src, None, &mut |_, _| {})).unwrap();
    assert_reference_cases("GPU from llama.cpp's GGUF", &gpu_cases(&m));
}

/// llama.cpp's F16 GGUF (F32 norms and router beside F16 matrices): the GPU equals the CPU twin
/// on the same file, and, its weights rounded to f16, stays near the reference.
#[test]
fn llama_cpp_f16_gguf_gpu_equals_its_cpu_twin() {
    let bytes = std::fs::read(dir().join("model-llamacpp-f16.gguf")).unwrap();
    let (index, src) = gguf(&bytes);
    assert_eq!(index.get(unmask::dgemma::index::T::Embed).unwrap().dtype, DType::F16);
    let w = block_on(DgWeights::load(&index, &src)).unwrap();
    let r = reference();
    let mut cache = Cache::default();
    encode(&w, &mut cache, &ids(&r["prompt"]));
    let cpu = decode(&w, &cache, &ids(&r["canvas"]), None);
    let m = block_on(DgGpuModel::load(gpu(), &index, &src, None, &mut |_, _| {})).unwrap();
    let got = gpu_cases(&m);
    assert_rows_close("F16 GGUF: GPU vs CPU twin", &got[0], &cpu, w.config.vocab, 1e-4);
    let want = floats("logits_nosc.bin");
    let agree = got[0].chunks(w.config.vocab).zip(want.chunks(w.config.vocab)).filter(|(a, b)| argmax(a) == argmax(b)).count();
    assert!(agree >= 12, "F16 weights: {agree} of 16 rows keep the reference's argmax");
}

fn argmax(row: &[f32]) -> usize {
    row.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, &v)| if v > b.1 { (i, v) } else { b }).0
}

/// The GPU model's weights and passes work with the expert and embedding matrices split into
/// many chunks, the logits in several buffers and either portable attention kernel (a binding cap far below their size), as the
/// 26B's are (its 268 MB of logits pass WebGPU's promised 128 MiB).
#[test]
fn gpu_logits_with_weights_in_many_chunks_equal_one_chunk() {
    let r = reference();
    let w = weights("config.json");
    let one = gpu_model(gpu(), None);
    let g = gpu();
    let expert_bytes = w.layers[0].down_exps.row_bytes() * w.config.hidden;
    g.cap_bindings(expert_bytes as u64);
    let many = gpu_model(g.clone(), None);
    // Sessions then keep the logits of 5 canvas rows per buffer (16 rows: 4 buffers), and run
    // the other attention kernel of the portable layout (the GPUs' flash one, or not).
    g.cap_bindings((5 * 4 * w.config.vocab) as u64);
    g.set_flash_attention(!g.flash_attention());
    assert!(many.embed.chunks.len() > 1 && many.layers[0].down_exps.chunks.len() == w.config.experts, "one expert per chunk");
    let run = |m: &DgGpuModel| {
        let mut s = DgSession::new(m, 64, KvType::F32).unwrap();
        block_on(s.encode(&ids(&r["prompt"]))).unwrap();
        block_on(s.decode(&ids(&r["canvas"]), None)).unwrap();
        block_on(s.decode(&ids(&r["canvas"]), Some(0.7))).unwrap()
    };
    let v = w.config.vocab;
    assert_rows_close("chunked vs whole", &run(&many), &run(&one), v, 1e-5);
}

#[test]
fn bad_configs_are_one_line_errors() {
    let text = std::fs::read_to_string(dir().join("config.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        ("hidden_activation", "gelu".into(), "hidden_activation"),
        ("num_hidden_layers", 1_000_000.into(), "out of range"),
        ("layer_types", serde_json::json!(["sliding_attention"]), "layer_types has 1 entries"),
        ("num_attention_heads", 3.into(), "kv heads"),
        ("use_bidirectional_attention", "all".into(), "not supported"),
    ];
    for (key, value, needle) in cases {
        let old = v["text_config"][key].clone();
        v["text_config"][key] = value;
        let err = DgConfig::from_json("c.json", &v.to_string()).unwrap_err().to_string();
        assert!(err.contains(needle) && err.contains("c.json"), "{key}: {err}");
        v["text_config"][key] = old;
    }
    let st = std::fs::read(dir().join("model.safetensors")).unwrap();
    let err = DgWeights::from_safetensors("config.json", &text, &[("model.safetensors".into(), &st[..st.len() / 2])]).err().unwrap().to_string();
    assert!(err.contains("model.safetensors"), "a truncated shard: {err}");
    // A config that contradicts the tensors: the first tensor of another shape is named.
    for (key, value, needle) in [("num_experts", 8, "router"), ("moe_intermediate_size", 24, "experts"), ("intermediate_size", 50, "gate_proj")] {
        let old = v["text_config"][key].clone();
        v["text_config"][key] = value.into();
        let err = DgWeights::from_safetensors("config.json", &v.to_string(), &[("model.safetensors".into(), &st)]).err().unwrap().to_string();
        assert!(err.contains("has shape") && err.contains(needle), "{key}: {err}");
        v["text_config"][key] = old;
    }
    // GGUFs: truncated, another architecture, absurd counts; one clear line each.
    let g = std::fs::read(dir().join("model-llamacpp-f32.gguf")).unwrap();
    let read = |b: &[u8]| block_on(DgIndex::read(&SliceSource { files: vec![("m.gguf".into(), b)] }, None)).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(read(&g[..g.len() - 100]).contains("truncated"), "{}", read(&g[..g.len() - 100]));
    assert!(read(&g[..1000]).contains("m.gguf"), "{}", read(&g[..1000]));
    let demo = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("models/demo-q4_0.gguf")).unwrap();
    assert!(read(&demo).contains("not \"diffusion-gemma\""), "{}", read(&demo));
    let mut absurd = g.clone();
    let key = b"diffusion-gemma.block_count";
    // The key, its u32 type tag, then the value.
    let at = absurd.windows(key.len()).position(|w| w == key).unwrap() + key.len() + 4;
    absurd[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(read(&absurd).contains("out of range"), "{}", read(&absurd));
}

/// The reference's random draws, replayed in order: the canvases' initial tokens and each step's
/// re-noising draw (`uniform`, in the order the sampler asks), and each step's sampled tokens.
struct Tapes {
    uniform: std::collections::VecDeque<Vec<u32>>,
    sampled: std::collections::VecDeque<Vec<u32>>,
    init: std::collections::VecDeque<Vec<u32>>,
}

impl Draws for Tapes {
    fn start(&mut self, n: usize, _vocab: usize) -> Vec<u32> {
        let v = self.init.pop_front().expect("a canvas start is on the tape");
        assert_eq!(v.len(), n);
        v
    }
    fn uniform(&mut self, n: usize, _vocab: usize) -> Vec<u32> {
        let v = self.uniform.pop_front().expect("a re-noising draw is on the tape");
        assert_eq!(v.len(), n);
        v
    }
    fn sample(&mut self, probs: &[f32], vocab: usize) -> Vec<u32> {
        let v = self.sampled.pop_front().expect("a sample is on the tape");
        for (p, &t) in v.iter().enumerate() {
            assert!(probs[p * vocab + t as usize] > 0.0, "the tape's token {t} at {p} has probability 0 here");
        }
        v
    }
}

#[test]
fn generations_replayed_from_the_reference_draws_equal_it_step_for_step() {
    let w = weights("config.json");
    replay("CPU", &mut || CpuDg::new(&w));
}

#[test]
fn gpu_generations_replayed_from_the_reference_draws_equal_it_step_for_step() {
    let m = gpu_model(gpu(), None);
    replay("GPU", &mut || DgSession::new(&m, 64, KvType::F32).unwrap());
}

/// Every recorded generation through `generate` on models from `model`, step by step.
fn replay<M: DgModel>(on: &str, model: &mut dyn FnMut() -> M) {
    let r = reference();
    let base = DgSettings::from_json("generation_config.json", &std::fs::read_to_string(dir().join("generation_config.json")).unwrap()).unwrap();
    assert_eq!((base.steps, base.entropy_bound, base.eos.clone(), base.pad), (10, 0.1, vec![0, 5], Some(0)));
    for g in r["generations"].as_array().unwrap() {
        let name = format!("{on} {}", g["name"].as_str().unwrap());
        let e = &g["effective_generation_config"];
        let s = DgSettings {
            max_new_tokens: e["max_new_tokens"].as_u64().unwrap() as usize,
            entropy_bound: e["sampler_config"]["entropy_bound"].as_f64().unwrap() as f32,
            confidence_threshold: e["confidence_threshold"].as_f64().unwrap() as f32,
            stability_threshold: e["stability_threshold"].as_u64().unwrap() as usize,
            eos: ids(&e["eos_token_id"]),
            ..base.clone()
        };
        let tape = |k: &str| -> std::collections::VecDeque<Vec<u32>> { g["tapes"][k].as_array().unwrap().iter().map(ids).collect() };
        let mut draws = Tapes { uniform: tape("renoise"), sampled: tape("multinomial"), init: tape("init") };
        let want_steps: Vec<&serde_json::Value> = g["canvases"].as_array().unwrap().iter().flat_map(|c| c["steps"].as_array().unwrap()).collect();
        let mut seen = 0;
        let mut model = model();
        let got = block_on(generate(&mut model, &mut draws, &ids(&g["prompt"]), &s, &mut |ev| {
            let want = want_steps[seen];
            let what = format!("{name}: step {seen} (canvas {}, {})", ev.canvas, ev.step);
            assert_eq!(ev.step as u64, want["step"].as_u64().unwrap(), "{what}");
            assert_eq!(format!("{:08x}", ev.temperature.to_bits()), want["temperature_f32_hex"].as_str().unwrap(), "{what}: temperature");
            assert_eq!(ev.argmax, ids(&want["argmax"]), "{what}: argmax");
            let acc: Vec<bool> = want["accepted_mask"].as_array().unwrap().iter().map(|v| v.as_u64() == Some(1)).collect();
            assert_eq!(ev.accepted, acc, "{what}: accepted");
            assert_eq!(ev.next, ids(&want["next_canvas"]), "{what}: next canvas");
            assert_eq!(ev.stopped, want["finished"].as_bool().unwrap(), "{what}: stop");
            seen += 1;
            true
        }))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(seen, want_steps.len(), "{name}: steps run");
        assert_eq!(got.tokens, ids(&g["output"]), "{name}: output");
    }
}

/// Our `diffusion-gemma` GGUF writer (used for full-size sparse models) writes the keys, values
/// and tensor names and dimensions that llama.cpp's own converter wrote for the same model.
#[test]
fn our_gguf_layout_is_llama_cpps() {
    use unmask::dgemma::gguf_write::{metadata, rope_freqs, tensors};
    let bytes = std::fs::read(dir().join("model-llamacpp-f32.gguf")).unwrap();
    let g = unmask::model::gguf::Gguf::parse("llama.gguf", &bytes).unwrap();
    let c = DgConfig::from_json("config.json", &std::fs::read_to_string(dir().join("config.json")).unwrap()).unwrap();
    let s = DgSettings::from_json("generation_config.json", &std::fs::read_to_string(dir().join("generation_config.json")).unwrap()).unwrap();
    for (k, v) in metadata(&c, &s) {
        assert_eq!(g.get(&k), Some(&v), "key {k}");
    }
    let mut ours: Vec<(String, Vec<u64>)> = tensors(&c).into_iter().map(|(_, n, d)| (n, d)).collect();
    ours.push(("rope_freqs.weight".into(), vec![rope_freqs(&c).len() as u64]));
    let mut theirs: Vec<(String, Vec<u64>)> = g.tensors.iter().map(|t| (t.name.clone(), t.dims.clone())).collect();
    ours.sort();
    theirs.sort();
    assert_eq!(ours, theirs);
    let info = g.tensor("rope_freqs.weight").unwrap();
    let (_, _, _, range) = g.tensor_range(info).unwrap();
    let theirs: Vec<f32> = bytemuck::pod_collect_to_vec(&g.data[range]);
    assert_eq!(rope_freqs(&c), theirs);
}

/// The memory plan is what loading and a session allocate, byte for byte.
#[test]
fn the_memory_plan_is_what_the_gpu_gets() {
    let g = gpu();
    let st = std::fs::read(dir().join("model.safetensors")).unwrap();
    let json = std::fs::read_to_string(dir().join("config.json")).unwrap();
    let src = SliceSource { files: vec![("model.safetensors".into(), &st[..])] };
    let index = block_on(DgIndex::read(&src, Some(("config.json", &json)))).unwrap();
    let plan = unmask::dgemma::plan::plan(&index, None, 48, g.plan_limits(), KvType::F32).unwrap();
    let before = g.bytes_created();
    let m = block_on(DgGpuModel::load(g.clone(), &index, &src, None, &mut |_, _| {})).unwrap();
    assert_eq!(g.bytes_created() - before, plan.weight_bytes, "weights");
    // Both ways of storing K/V (f16: half the K/V, plus a pass's own K and V in f32).
    for kv in [KvType::F32, KvType::F16] {
        let plan = unmask::dgemma::plan::plan(&index, None, 47, g.plan_limits(), kv).unwrap();
        let before = g.bytes_created();
        let _s = DgSession::new(&m, 47, kv).unwrap();
        assert_eq!(g.bytes_created() - before, plan.session_bytes, "session with {} K/V", kv.name());
        assert_eq!(plan.kv_type, kv.name());
    }
    let [f32_kv, f16_kv] = [KvType::F32, KvType::F16].map(|kv| unmask::dgemma::plan::plan(&index, None, 48, g.plan_limits(), kv).unwrap().kv_bytes);
    assert_eq!(f16_kv * 2, f32_kv, "f16 halves the K/V");
    assert!(plan.check(g.plan_limits(), Some(plan.total_bytes() - 1)).unwrap_err().to_string().contains("GPU memory"));
}

/// The multiply-adds a session counts (what `unmask bench` divides by the time) are the config's
/// arithmetic: per layer Q/K/V (a full layer's V again at K's width), O, the dense MLP, the
/// router, `top_k` experts a row, and attention over the keys each query may see (the encoder
/// causal, sliding layers a window of 4 back; the decoder's canvas sees itself and, sliding, the
/// 3 encoded positions before it); the decoder adds the LM head, self-conditioning the soft
/// embedding and its MLP. A prompt of 19 tokens is two encoder chunks (16 + 3 rows).
#[test]
fn a_session_counts_the_multiply_adds_its_passes_ask() {
    let m = gpu_model(gpu(), None);
    let c = m.config.clone();
    let (h, w) = (c.hidden, c.sliding_window);
    let layers = |n: usize, keys: &dyn Fn(&unmask::dgemma::config::Layer, usize) -> usize, q0: usize| -> u64 {
        let mut sum = 0;
        for l in &c.layers {
            let proj = n * h * (c.heads + 2 * l.kv_heads) * l.head_dim + n * c.heads * l.head_dim * h;
            let ffn = 3 * n * h * c.intermediate + n * h * c.experts + 3 * n * c.top_k * h * c.expert_hidden;
            let seen: usize = (q0..q0 + n).map(|p| keys(l, p)).sum();
            sum += (proj + ffn + 2 * seen * c.heads * l.head_dim) as u64;
        }
        sum
    };
    let encoder = |l: &unmask::dgemma::config::Layer, p: usize| if l.full { p + 1 } else { (p + 1).min(w) };
    let mut s = DgSession::new(&m, 64, KvType::F32).unwrap();
    assert_eq!(s.multiply_adds_done(), 0);
    let prompt: Vec<u32> = (0..19).map(|i| (i * 37 + 5) % 4096).collect();
    block_on(s.encode(&prompt)).unwrap();
    let want = layers(16, &encoder, 0) + layers(3, &encoder, 16);
    assert_eq!(s.multiply_adds_done(), want, "encoder");
    // The canvas at 19..35: full layers see all 35 keys, sliding ones from 19 + 1 - 4 = 16 on.
    let canvas: Vec<u32> = (0..16).map(|i| (i * 11 + 3) % 4096).collect();
    let decoder = |l: &unmask::dgemma::config::Layer, _p: usize| if l.full { 35 } else { 35 - 16 };
    let head = (16 * c.vocab * h) as u64;
    block_on(s.decode(&canvas, None)).unwrap();
    let plain = layers(16, &decoder, 19) + head;
    assert_eq!(s.multiply_adds_done() - want, plain, "decoder");
    block_on(s.decode(&canvas, Some(1.0))).unwrap();
    let sc = head + (3 * 16 * h * c.intermediate) as u64;
    assert_eq!(s.multiply_adds_done() - want - plain, plain + sc, "self-conditioned decoder");
}

/// The fixture's config with other `widths` (text_config keys), and random weights for it,
/// written as a `diffusion-gemma` GGUF by our writer.
fn random_gguf(widths: &[(&str, u64)]) -> (DgConfig, Vec<u8>) {
    use unmask::dgemma::gguf_write::{metadata, rope_freqs, tensors};
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir().join("config.json")).unwrap()).unwrap();
    for &(k, x) in widths {
        v["text_config"][k] = x.into();
    }
    let c = DgConfig::from_json("c.json", &v.to_string()).unwrap();
    let mut w = unmask::model::gguf_write::GgufWriter::default();
    for (k, x) in metadata(&c, &DgSettings::default()) {
        w.meta(&k, x);
    }
    let f = rope_freqs(&c);
    w.tensor("rope_freqs.weight", vec![f.len() as u64], unmask::model::HostTensor::from_f32(1, f.len(), &f));
    let mut rng = unmask::rng::Rng::new(3);
    for (t, name, dims) in tensors(&c) {
        let n = dims.iter().product::<u64>() as usize;
        let vals: Vec<f32> = if t.is_vector(&c) || n == 1 { (0..n).map(|_| 0.5 + rng.unit()).collect() } else { (0..n).map(|_| rng.unit() - 0.5).collect() };
        w.tensor(&name, dims.clone(), unmask::model::HostTensor::from_f32(n / dims[0] as usize, dims[0] as usize, &vals));
    }
    (c, w.to_bytes())
}

/// `--quant q8_0|q4_0` while streaming: a random model whose widths suit the block formats
/// (written as a `diffusion-gemma` GGUF by our writer), loaded as stored and converted. The
/// matrices shrink, the embedding stays Q8_0 under Q4_0 and the router as stored, and the GPU's
/// logits equal the CPU twin's on the same converted weights.
#[test]
fn quantized_loads_equal_the_twin_on_the_same_weights() {
    let (c, bytes) = random_gguf(&[("hidden_size", 64), ("intermediate_size", 96), ("moe_intermediate_size", 32), ("head_dim", 32), ("global_head_dim", 64)]);
    let (index, src) = gguf(&bytes);
    let r = reference();
    let (prompt, canvas) = (ids(&r["prompt"]), ids(&r["canvas"]));
    let stored = block_on(DgGpuModel::load(gpu(), &index, &src, None, &mut |_, _| {})).unwrap().weight_bytes();
    for q in [DType::Q8_0, DType::Q4_0] {
        let m = block_on(DgGpuModel::load(gpu(), &index, &src, Some(q), &mut |_, _| {})).unwrap();
        assert_eq!((m.embed.dtype, m.layers[0].router.dtype, m.layers[0].gate_exps.dtype, m.sc_down.dtype), (DType::Q8_0, DType::F32, q, q));
        assert!((m.weight_bytes() as f64) < 0.35 * stored as f64, "{}: {} bytes vs {stored} stored", q.name(), m.weight_bytes());
        let mut s = DgSession::new(&m, 64, KvType::F32).unwrap();
        block_on(s.encode(&prompt)).unwrap();
        let got = block_on(s.decode(&canvas, None)).unwrap();
        // The twin on the same converted weights.
        let mut hw = block_on(DgWeights::load(&index, &src)).unwrap();
        let conv = |t: &mut unmask::model::HostTensor, d: DType| *t = t.convert(d).unwrap();
        conv(&mut hw.embed, DType::Q8_0);
        for t in [&mut hw.sc_gate, &mut hw.sc_up, &mut hw.sc_down] {
            conv(t, q);
        }
        for l in &mut hw.layers {
            for t in [&mut l.q, &mut l.k, &mut l.o, &mut l.gate, &mut l.up, &mut l.down, &mut l.gate_exps, &mut l.up_exps, &mut l.down_exps] {
                conv(t, q);
            }
            if let Some(t) = l.v.as_mut() {
                conv(t, q);
            }
        }
        let mut cache = Cache::default();
        encode(&hw, &mut cache, &prompt);
        assert_rows_close(&format!("{}: GPU vs CPU twin", q.name()), &got, &decode(&hw, &cache, &canvas, None), c.vocab, 1e-4);
    }
}

/// The model in `src` on `g` in the tiled layout: the reference's prompt encoded, then its
/// canvas decoded without and with self-conditioning (temperature 1): (prompt, canvas, logits,
/// self-conditioned logits).
fn tiled_decodes(g: Arc<unmask::gpu::Gpu>, index: &DgIndex, src: &SliceSource<'_>) -> (Vec<u32>, Vec<u32>, Vec<f32>, Vec<f32>) {
    let m = block_on(DgGpuModel::load(g, index, src, None, &mut |_, _| {})).unwrap();
    let mut s = DgSession::new(&m, 64, KvType::F32).unwrap();
    s.set_kernels(KernelVariant::Tiled).unwrap();
    let r = reference();
    let (prompt, canvas) = (ids(&r["prompt"]), ids(&r["canvas"]));
    block_on(s.encode(&prompt)).unwrap();
    let nosc = block_on(s.decode(&canvas, None)).unwrap();
    let sc = block_on(s.decode(&canvas, Some(1.0))).unwrap();
    (prompt, canvas, nosc, sc)
}

/// GPUs split the shared dimension of tiled matmuls with few output tiles: a random model 512
/// wide, whose projections and soft embedding split for a canvas's 16 rows, in the tiled layout
/// (its norms folded into the matmuls, split-K on), through encode, decode and a
/// self-conditioned decode, against the CPU twin.
#[test]
fn split_k_sessions_equal_the_twin() {
    let (c, bytes) = random_gguf(&[("hidden_size", 512), ("intermediate_size", 512), ("moe_intermediate_size", 32), ("head_dim", 32), ("global_head_dim", 64)]);
    let (index, src) = gguf(&bytes);
    let g = gpu();
    g.set_split_matmul(true);
    for n in [c.heads * 32, c.hidden, c.intermediate, c.experts] {
        assert!(g.matmul_split_of(KernelVariant::Tiled, c.canvas_length, n, 512).splits > 1, "{n} columns over k = 512 split");
    }
    // The soft embedding too (16 rows × 512 over the vocabulary of 4096), in the scratch the plan
    // gives a session.
    let soft = g.soft_embed_split(c.canvas_length, c.hidden, c.vocab);
    let buffers = unmask::dgemma::plan::session_buffers(&c, 64, g.plan_limits(), KvType::F32);
    let scratch = buffers.iter().find(|(what, _)| what == "split-K scratch").unwrap().1;
    assert!(soft.splits > 1 && scratch >= soft.bytes(c.canvas_length, c.hidden), "{soft:?} in {scratch} bytes");
    assert!(g.fuses(KernelVariant::Tiled));
    let (prompt, canvas, nosc, sc) = tiled_decodes(g, &index, &src);
    let w = block_on(DgWeights::load(&index, &src)).unwrap();
    let mut cache = Cache::default();
    encode(&w, &mut cache, &prompt);
    assert_rows_close("split-K decode", &nosc, &decode(&w, &cache, &canvas, None), c.vocab, 1e-4);
    assert_rows_close("split-K self-conditioned decode", &sc, &decode(&w, &cache, &canvas, Some(&nosc)), c.vocab, 1e-4);
}

/// GPUs with tensor cores run every DiffusionGemma matmul on cooperative matrices (the dense
/// ones, the router, the head, and the experts: moe_coop.wgsl): a random model (the matrix
/// operations emulated where the adapter has none) through encode, decode and a self-conditioned
/// decode, against the twin that rounds every matmul's inputs to f16
/// (`Cache::with_f16_matmul_inputs`). Every expert is on every position's list (top 4 of 4): with
/// fewer, one rounding moves a router logit across another and that position's logits by O(1)
/// (measured: 0.7–1.2 either way). Even so one f32 sum that lands on the other side of an f16
/// rounding boundary moves these logits by about 5e-3 (the twins with f16 and f32 inputs are
/// 2–3.5e-2 apart), so: within 1e-2 of each row's largest logit, and at least 3× nearer the
/// f16-input twin than the f32 one (measured on lavapipe: 5× and 6×).
#[test]
fn coop_sessions_equal_the_twin_that_rounds_matmul_inputs_to_f16() {
    let (c, bytes) = random_gguf(&[
        ("hidden_size", 64),
        ("intermediate_size", 96),
        ("moe_intermediate_size", 32),
        ("head_dim", 32),
        ("global_head_dim", 64),
        ("top_k_experts", 4),
    ]);
    let (index, src) = gguf(&bytes);
    let g = Arc::new(block_on(unmask::gpu::Gpu::new()).unwrap().with_emulated_coop().unwrap());
    // The row kernels as on GPUs, the adapters with cooperative matrices: which f16 roundings
    // the normed rows meet depends on the order of the f32 sums before them, and at CPU adapters'
    // 8 (as accurate: tests/kernels.rs) the self-conditioned decode meets some that put it
    // 1.5e-2 from the f16-input twin and 3.9e-2 from the f32 one (measured on lavapipe).
    g.set_row_workgroup(unmask::gpu::kernel_specs::GPU_ROW_WORKGROUP).unwrap();
    let (prompt, canvas, nosc, sc) = tiled_decodes(g, &index, &src);
    let w = block_on(DgWeights::load(&index, &src)).unwrap();
    let twin = |cache: Cache| {
        let mut cache = cache;
        encode(&w, &mut cache, &prompt);
        (decode(&w, &cache, &canvas, None), decode(&w, &cache, &canvas, Some(&nosc)))
    };
    let (want, f32_twin) = (twin(Cache::new(KvType::F32).with_f16_matmul_inputs()), twin(Cache::new(KvType::F32)));
    let worst = |got: &[f32], want: &[f32]| {
        let scale = common_rms(want);
        got.iter().zip(want).map(|(g, w)| (g - w).abs() / w.abs().max(scale)).fold(0f32, f32::max)
    };
    for (what, got, want, far) in [("decode", &nosc, &want.0, &f32_twin.0), ("self-conditioned decode", &sc, &want.1, &f32_twin.1)] {
        let (near, far) = (worst(got, want), worst(got, far));
        assert!(3.0 * near < far, "coop {what}: {near:.2e} from the f16-input twin, {far:.2e} from the f32 one");
        assert_rows_close(&format!("coop {what}"), got, want, c.vocab, 1e-2);
    }
}

/// The GPU's per-row choice (what a seeded generation uses: 3 words a row read back instead of
/// the logits) equals the twin's choice from the same pass's logits, with and without
/// self-conditioning.
#[test]
fn gpu_choices_equal_the_choices_from_its_logits() {
    let r = reference();
    let m = gpu_model(gpu(), None);
    let mut s = DgSession::new(&m, 64, KvType::F32).unwrap();
    block_on(s.encode(&ids(&r["prompt"]))).unwrap();
    let canvas = ids(&r["canvas"]);
    let mut rng = unmask::rng::Rng::new(11);
    let v = m.config.vocab;
    for (sc, t) in [(None, 0.8f32), (Some(0.8), 0.6)] {
        let u: Vec<f32> = (0..canvas.len()).map(|_| rng.unit()).collect();
        // The same pass twice, once for its logits and once for its choices; a self-conditioned
        // pass reads the logits before it, which a plain pass makes again in between.
        if sc.is_some() {
            block_on(s.decode(&canvas, None)).unwrap();
        }
        let logits = block_on(s.decode(&canvas, sc)).unwrap();
        if sc.is_some() {
            block_on(s.decode(&canvas, None)).unwrap();
        }
        let got = block_on(s.choose(&canvas, sc, t, &u)).unwrap().unwrap();
        let want = unmask::cpu::ops::dg_choose(&logits, v, 1.0 / t, &u);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!((g.0, g.2), (w.0, w.2), "row {i} ({sc:?}): argmax and sample");
            assert!((g.1 - w.1).abs() < 1e-4, "row {i}: entropy {} vs {}", g.1, w.1);
        }
    }
}

/// Prompts start with `<bos>` as Gemma's chat template writes them, when the vocabulary has it
/// (the fixture's does not: its prompts are the text alone).
#[test]
fn prompts_start_with_bos_when_the_vocabulary_has_it() {
    let json = r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],"normalizer":null,
        "pre_tokenizer":{"type":"Whitespace"},"post_processor":null,"decoder":null,
        "model":{"type":"WordLevel","vocab":{"<unk>":0,"<bos>":2,"hi":5,"there":6},"unk_token":"<unk>"}}"#;
    let tok = unmask::model::TextTokenizer::from_bytes("tokenizer.json", json.as_bytes()).unwrap();
    assert_eq!(unmask::dgemma::prompt_tokens(&tok, "hi there", false).unwrap(), [2, 5, 6]);
    let demo = unmask::model::TextTokenizer::from_bytes("t", &std::fs::read(dir().join("tokenizer.json")).unwrap()).unwrap();
    assert_eq!(unmask::dgemma::prompt_tokens(&demo, "The cat sat", false).unwrap(), demo.encode("The cat sat").unwrap());
}
