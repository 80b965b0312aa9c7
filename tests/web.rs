//! The engine in a browser: headless Chromium's WebGPU (SwiftShader: no shader-f16, 256
//! invocations per workgroup) runs the same forward pass, compared with the CPU twin.
//! Run by `./build.sh test` through wasm-bindgen-test-runner and chromedriver.
#![cfg(target_arch = "wasm32")]

use std::sync::Arc;
use unmask::choice::Noise;
use unmask::engine::{GpuModel, SessionConfig};
use unmask::gpu::Gpu;
use unmask::model::{DType, ModelWeights};
use unmask::synth::{random_model, tiny_config, Rng};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

fn close(what: &str, got: &[f32], want: &[f32], rel: f32) {
    assert_eq!(got.len(), want.len());
    let scale = (want.iter().map(|x| x * x).sum::<f32>() / want.len() as f32).sqrt();
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let err = (g - w).abs() / w.abs().max(scale);
        assert!(err <= rel, "{what}: element {i} is {g}, the CPU twin gives {w}");
    }
}

#[wasm_bindgen_test]
async fn forward_in_the_browser_matches_the_cpu_twin() {
    #[allow(clippy::arc_with_non_send_sync)] // one thread in the page
    let gpu = Arc::new(Gpu::new().await.unwrap_or_else(|e| panic!("{e}")));
    web_sys::console::log_1(&format!("adapter: {:?}", gpu.report).into());
    for (i, (cfg, dtype, len)) in [
        (tiny_config(2, 4, 2, 16, 72, 101), DType::F32, 13),
        (tiny_config(1, 2, 1, 64, 96, 150), DType::F16, 9),
        (tiny_config(1, 4, 4, 16, 64, 90), DType::Q4_0, 11),
        (tiny_config(1, 4, 2, 16, 64, 90), DType::Q8_0, 7),
    ]
    .into_iter()
    .enumerate()
    {
        let w = random_model(&cfg, dtype, i as u64);
        let mut rng = Rng::new(i as u64);
        let toks: Vec<u32> = (0..len).map(|_| rng.below(cfg.vocab_size as u32)).collect();
        let want = unmask::cpu::forward::forward(&w, &toks);
        // Through the GGUF bytes, as the page loads a model.
        let loaded = ModelWeights::from_gguf("m.gguf", &w.to_gguf(vec![])).unwrap();
        let m = GpuModel::upload(gpu.clone(), &loaded).unwrap();
        let config = SessionConfig { logits: true, ..SessionConfig::new(toks.len(), gpu.default_kernels()) };
        let mut s = m.session(config).unwrap();
        let out = s.forward(&toks, Noise::GREEDY, true).await.unwrap();
        close(&format!("{} forward", dtype.name()), &out.logits.unwrap(), &want, 1e-3);
    }
}

#[wasm_bindgen_test]
async fn split_k_attention_in_the_browser_matches_the_cpu_twin() {
    // The flash layouts as GPUs run them (the page's default is the portable one): 140 positions of
    // 4 heads split each workgroup's keys in 2 slices and merge them, in a full pass and in a
    // cached step of 20 rows against stale K/V.
    use unmask::gpu::kernels::AttnShape;
    // Both flash kernels: K/V staged in workgroup memory (SwiftShader gives a workgroup the
    // 32 KB it needs) or read in the loops.
    let cfg = tiny_config(1, 4, 2, 16, 48, 70);
    let (len, rows) = (140, 100..120);
    assert_eq!(AttnShape { lq: rows.len(), lk: len, n_heads: 4, n_kv: 2, head_dim: 16 }.splits(), 2);
    let w = random_model(&cfg, DType::F32, 9);
    for tiles in [false, true] {
        #[allow(clippy::arc_with_non_send_sync)] // one thread in the page
        let gpu = Arc::new(Gpu::new().await.unwrap_or_else(|e| panic!("{e}")));
        gpu.set_flash_attention(true);
        gpu.set_tiled_attention(tiles).unwrap_or_else(|e| panic!("{e}"));
        full_pass_and_cached_step(&gpu, &w, len, rows.clone(), 9, if tiles { "split-K, tiles" } else { "split-K" }).await;
    }
}

/// Model `w` in a tiled-layout session of `len` positions with the dual cache: a full pass over
/// random tokens, then a cached step over `rows` (new tokens there, stale K/V elsewhere), each
/// against the CPU twin.
async fn full_pass_and_cached_step(gpu: &Arc<Gpu>, w: &ModelWeights, len: usize, rows: std::ops::Range<usize>, seed: u64, how: &str) {
    use unmask::cpu::forward::{forward_rows, KvCache};
    use unmask::gpu::kernels::KernelVariant;
    let vocab = w.config.vocab_size as u32;
    let mut rng = Rng::new(seed);
    let before: Vec<u32> = (0..len).map(|_| rng.below(vocab)).collect();
    let mut after = before.clone();
    for t in &mut after[rows.clone()] {
        *t = rng.below(vocab);
    }
    let m = GpuModel::upload(gpu.clone(), w).unwrap();
    let config = SessionConfig { logits: true, cache: unmask::sampler::CacheMode::Dual, ..SessionConfig::new(len, KernelVariant::Tiled) };
    let mut s = m.session(config).unwrap();
    let full = s.forward(&before, Noise::GREEDY, true).await.unwrap();
    close(&format!("full pass, {how}"), &full.logits.unwrap(), &unmask::cpu::forward::forward(w, &before), 1e-3);
    let part = s.forward_rows(&after, rows.clone(), Noise::GREEDY, true).await.unwrap();
    let mut kv = KvCache::default();
    forward_rows(w, &before, 0..len, &mut kv);
    close(&format!("cached step, {how}"), &part.logits.unwrap(), &forward_rows(w, &after, rows, &mut kv), 1e-3);
}

#[wasm_bindgen_test]
async fn moe_in_the_browser_matches_the_cpu_twin() {
    // A LLaDA-MoE-family model (8 experts, top-2) in GPUs' layout: the tiled grouped expert
    // matmul (tiles of 16 pairs in the full pass, 8 in the cached step) with the experts' SwiGLU
    // fused into the up projection.
    #[allow(clippy::arc_with_non_send_sync)] // one thread in the page
    let gpu = Arc::new(Gpu::new().await.unwrap_or_else(|e| panic!("{e}")));
    let mut cfg = tiny_config(2, 4, 2, 16, 48, 70);
    cfg.family = "llada-moe".into();
    (cfg.n_experts, cfg.n_experts_used, cfg.expert_hidden_size) = (8, 2, 64);
    let w = random_model(&cfg, DType::Q8_0, 4);
    full_pass_and_cached_step(&gpu, &w, 37, 20..30, 4, "MoE").await;
}

#[wasm_bindgen_test]
async fn f16_kv_and_the_gpu_kernels_follow_the_adapter() {
    // In a browser, an adapter that is not the browser's software fallback is a real GPU, and
    // shader-f16 means one too: flash attention and split-K matmuls, and sessions keep f16 K/V
    // by default where shader-f16 is. Without it (SwiftShader), the default is f32 and asking
    // for f16 is refused with the reason. (`is_gpu`'s whole rule: tests/kernels.rs.)
    use unmask::gpu::kernels::KvType;
    #[allow(clippy::arc_with_non_send_sync)] // one thread in the page
    let gpu = Arc::new(Gpu::new().await.unwrap_or_else(|e| panic!("{e}")));
    let w = random_model(&tiny_config(1, 2, 1, 16, 32, 40), DType::F32, 3);
    let m = GpuModel::upload(gpu.clone(), &w).unwrap();
    let f16 = SessionConfig { kv: KvType::F16, ..SessionConfig::new(8, gpu.default_kernels()) };
    // This suite runs in headless Chromium on SwiftShader, which has no shader-f16 and says it
    // is the fallback (wgpu: a CPU adapter; wgpu's web backend leaves the name empty): the CPU
    // adapters' kernels there, the GPUs' elsewhere.
    let fallback = gpu.report.device_type == "Cpu";
    if !gpu.report.shader_f16 {
        assert!(fallback, "an adapter without shader-f16 that is not the browser's fallback: run this suite in headless Chromium (SwiftShader)");
    }
    let real = !fallback || gpu.report.shader_f16;
    assert_eq!(gpu.flash_attention(), real);
    assert_eq!(gpu.split_matmul(), real);
    if gpu.report.shader_f16 {
        assert_eq!(gpu.default_kv(), KvType::F16);
        assert!(m.session(f16).is_ok());
    } else {
        assert_eq!(gpu.default_kv(), KvType::F32);
        let e = m.session(f16).err().expect("f16 K/V without shader-f16").to_string();
        assert!(e.contains("shader-f16") && e.contains("f32 K/V"), "{e}");
    }
}

/// A field of a JS object as a string (or "null"/"undefined").
fn field(v: &wasm_bindgen::JsValue, key: &str) -> String {
    let f = js_sys::Reflect::get(v, &key.into()).unwrap();
    f.as_string().unwrap_or_else(|| format!("{f:?}"))
}

#[wasm_bindgen_test]
fn options_are_validated_with_the_field_at_fault() {
    let check = |json: &str, infill: bool| unmask::web::validate_options(js_sys::JSON::parse(json).unwrap(), Some(infill));
    // Fine: the defaults, nothing, an infill's options whatever its lengths.
    assert!(check("{}", false).is_null());
    let defaults = unmask::web::defaults().unwrap();
    let options = js_sys::Reflect::get(&defaults, &"options".into()).unwrap();
    assert!(unmask::web::validate_options(options.clone(), None).is_null());
    assert_eq!(field(&options, "steps"), format!("{:?}", wasm_bindgen::JsValue::from(unmask::sampler::SamplerOptions::default().steps as f64)));
    assert!(check(r#"{"gen_length": 50, "block_length": 16}"#, true).is_null());
    for (json, want, says) in [
        (r#"{"steps": 0}"#, "steps", "steps 0 must be a positive multiple"),
        (r#"{"temperature": -1}"#, "temperature", "temperature -1 must be 0 or more"),
        (r#"{"gen_length": 50, "block_length": 16}"#, "gen_length", "gen_length 50 is not a multiple of block_length 16"),
        (r#"{"steps": "many"}"#, "steps", "bad options: invalid type"),
        (r#"{"temprature": 1}"#, "temprature", "unknown option \"temprature\""),
        (r#"{"remasking": "best"}"#, "remasking", "bad options"),
    ] {
        let e = check(json, false);
        assert_eq!(field(&e, "kind"), "input", "{json}");
        assert_eq!(field(&e, "field"), want, "{json}");
        let message = field(&e, "message");
        assert!(message.contains(says) && !message.contains("--"), "{json}: {message}");
    }
    // An infill's checks leave its lengths alone but not its sampling.
    assert_eq!(field(&check(r#"{"temperature": -1}"#, true), "field"), "temperature");
}
