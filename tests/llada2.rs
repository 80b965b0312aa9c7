//! LLaDA 2 (`llada2_moe`) against its own PyTorch code: the tiny random model of
//! `tests/data/families/llada2/` (HF safetensors with a fused query_key_value, a dense first
//! layer, then sigmoid-routed MoE layers with an expert bias, groups and a shared expert),
//! whose block-causal logits and greedy generations with LLaDA 2's sampler were computed by
//! the model's reference modeling code (`tests/fixtures/make_llada2.py`). llama.cpp has no
//! LLaDA 2 graph, so the GGUF layout is the one `unmask convert` writes, made here.

mod common;
use common::{assert_close, gpu, session};
use std::path::{Path, PathBuf};
use unmask::choice::Noise;
use unmask::cpu::forward::CpuModel;
use unmask::engine::GpuModel;
use unmask::model::files::load_path;
use unmask::model::{Key, ModelWeights, Role};
use unmask::sampler::{self, CacheMode, Canvas, Remasking, SamplerOptions, Schedule};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/families/llada2")
}

fn reference() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join("reference.json")).unwrap()).unwrap()
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect()
}

/// The HF fixture, and the same weights written to GGUF and read back.
fn layouts() -> [(&'static str, ModelWeights); 2] {
    let hf = load_path(&dir()).unwrap_or_else(|e| panic!("llada2 (HF): {e}"));
    assert_eq!(hf.format, "safetensors");
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("llada2.gguf");
    std::fs::write(&path, hf.weights.to_gguf(vec![])).unwrap();
    let gguf = load_path(&path).unwrap_or_else(|e| panic!("llada2 (GGUF): {e}"));
    [("safetensors", hf.weights), ("gguf", gguf.weights)]
}

#[test]
fn both_layouts_read_the_llada2_config() {
    let r = reference();
    for (layout, w) in layouts() {
        let c = &w.config;
        assert_eq!(c.family, "llada2", "{layout}");
        assert_eq!(c.mask_token_id as u64, r["mask_token_id"].as_u64().unwrap(), "{layout}");
        assert!(!c.shift_logits);
        assert_eq!((c.n_experts, c.n_experts_used, c.expert_hidden_size, c.n_shared_experts), (8, 2, 32, 1), "{layout}");
        assert!(c.routing.sigmoid && c.norm_topk_prob, "{layout}");
        assert_eq!((c.routing.groups, c.routing.topk_groups, c.routing.scale), (4, 2, 2.5), "{layout}");
        assert_eq!((c.head_dim, c.rope_dims, c.attention_block), (16, 8, 32), "{layout}: RoPE on half of each head, blocks of 32");
        // first_k_dense_replace = 1: a dense first layer, then MoE layers with a shared expert.
        let has = |i: usize, r: Role| w.tensors.get(Key::at(i, r)).is_some();
        assert!(has(0, Role::Gate) && !has(0, Role::Router), "{layout}: layer 0 is dense");
        for i in 1..c.n_layers {
            assert!(has(i, Role::Router) && has(i, Role::ExpertBias) && has(i, Role::SharedGate) && !has(i, Role::Gate), "{layout}: layer {i} is MoE");
        }
    }
}

#[test]
fn fused_query_key_value_round_trips_through_safetensors() {
    // The index splits query_key_value into q, k and v; the export fuses them back.
    let w = load_path(&dir()).unwrap().weights;
    let again = ModelWeights::from_safetensors("config.json", &w.config.to_hf_json(), &[("m.safetensors".into(), &w.to_safetensors().unwrap())]).unwrap();
    assert_eq!(again.config, w.config);
    for (k, _, t) in w.tensors.iter() {
        assert_eq!(again.tensors.get(k).map(|t| &t.data), Some(&t.data), "{k:?}");
    }
}

#[test]
fn block_causal_logits_match_the_pytorch_reference_on_cpu_and_gpu() {
    let r = reference();
    let toks = ids(&r["tokens"]);
    let bytes = std::fs::read(dir().join(r["logits_file"].as_str().unwrap())).unwrap();
    let want: Vec<f32> = bytemuck::pod_collect_to_vec(&bytes);
    assert_eq!(want.len(), toks.len() * r["vocab"].as_u64().unwrap() as usize);
    for (layout, w) in layouts() {
        assert_close(&format!("llada2 ({layout}) CPU twin"), &unmask::cpu::forward::forward(&w, &toks), &want, 1e-4);
        let m = GpuModel::upload(gpu(), &w).unwrap();
        let out = pollster::block_on(session(&m, toks.len()).forward(&toks, Noise::GREEDY, true)).unwrap();
        assert_close(&format!("llada2 ({layout}) GPU"), &out.logits.unwrap(), &want, 1e-4);
        // GPUs' layout too (its norms folded into the matmuls, the shared experts' included).
        let kernels = unmask::gpu::kernels::KernelVariant::Tiled;
        let mut s = m.session(unmask::engine::SessionConfig { kernels, ..session(&m, toks.len()).config().clone() }).unwrap();
        let out = pollster::block_on(s.forward(&toks, Noise::GREEDY, true)).unwrap();
        assert_close(&format!("llada2 ({layout}) GPU, tiled layout"), &out.logits.unwrap(), &want, 1e-4);
    }
    // The bidirectional logits differ from these (the mask is real): rows of the first block
    // see the second block's masks there.
    let cols = r["logits_bidirectional_cols"].as_u64().unwrap() as usize;
    let bi: Vec<f32> = bytemuck::pod_collect_to_vec(&std::fs::read(dir().join(r["logits_bidirectional_file"].as_str().unwrap())).unwrap());
    let diff = (0..cols).map(|c| (bi[c] - want[c]).abs()).fold(0f32, f32::max);
    assert!(diff > 1e-2, "row 0's logits change with the mask (max diff {diff})");
}

/// The canvas and settings of one reference run of LLaDA 2's sampler.
fn setup(g: &serde_json::Value) -> (Canvas, SamplerOptions) {
    let prompt = ids(&g["prompt"]);
    let total = g["total_len"].as_u64().unwrap() as usize;
    let mask = g["mask_token_id"].as_u64().unwrap() as u32;
    assert_eq!(g["temperature"].as_f64(), Some(0.0));
    let canvas = Canvas::after_prompt(&prompt, total - prompt.len(), mask, None);
    let o = SamplerOptions {
        steps: g["steps_per_block"].as_u64().unwrap() as usize,
        gen_length: total - prompt.len(),
        block_length: g["block_size"].as_u64().unwrap() as usize,
        schedule: Schedule::Block,
        remasking: Remasking::LowConfidence,
        threshold: g["threshold"].as_f64().map(|t| t as f32),
        cache: CacheMode::None,
        early_stop: false,
        ..Default::default()
    };
    (canvas, o)
}

#[test]
fn greedy_generations_equal_the_reference_token_for_token() {
    let r = reference();
    let gens = r["generations"].as_array().unwrap();
    assert!(gens.len() >= 3);
    for (layout, w) in layouts() {
        let m = GpuModel::upload(gpu(), &w).unwrap();
        for g in gens {
            let what = format!("llada2 ({layout}) run {} (steps {}, threshold {})", g["name"], g["steps_per_block"], g["threshold"]);
            let want = ids(&g["output"]);
            let (canvas, o) = setup(g);
            let mut s = session(&m, canvas.tokens.len());
            let got = pollster::block_on(sampler::run(&mut s, canvas.clone(), &o, &mut |_| true)).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(got.tokens, want, "{what} on the GPU");
            if layout == "safetensors" {
                let cpu = pollster::block_on(sampler::run(&mut CpuModel::new(&w), canvas.clone(), &o, &mut |_| true)).unwrap();
                assert_eq!(cpu.tokens, want, "{what} on the CPU twin");
                // Block-causal attention makes the caches exact: earlier blocks never see later ones.
                for cache in [CacheMode::Prefix, CacheMode::Dual] {
                    let o = SamplerOptions { cache, ..o.clone() };
                    let got = pollster::block_on(sampler::run(&mut session(&m, canvas.tokens.len()), canvas.clone(), &o, &mut |_| true)).unwrap();
                    assert_eq!(got.tokens, want, "{what} with the {} cache", cache.name());
                }
            }
        }
    }
}
