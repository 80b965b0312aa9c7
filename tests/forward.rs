//! The GPU forward pass against the CPU twin forward pass on random tiny LLaDA models (several
//! configs, odd sizes, GQA), loaded through safetensors and through GGUF.

mod common;
use common::{assert_close, gpu, session};
use unmask::choice::Noise;
use unmask::engine::GpuModel;
use unmask::model::{DType, Key, ModelConfig, ModelWeights, Quant, Role, RopeStyle};
use unmask::synth::{random_model, tiny_config, Rng};

const ARGMAX: Noise = Noise::GREEDY;

fn gpu_logits(w: &ModelWeights, tokens: &[u32]) -> (Vec<f32>, Vec<u32>) {
    let m = GpuModel::upload(gpu(), w).unwrap();
    let out = pollster::block_on(session(&m, tokens.len()).forward(tokens, ARGMAX, true)).unwrap();
    (out.logits.unwrap(), out.choices.iter().map(|c| c.token).collect())
}

fn tokens(cfg: &ModelConfig, n: usize, seed: u64) -> Vec<u32> {
    let mut rng = Rng::new(seed);
    (0..n).map(|i| if i % 3 == 2 { cfg.mask_token_id } else { rng.below(cfg.vocab_size as u32) }).collect()
}

fn argmax(row: &[f32]) -> u32 {
    row.iter().enumerate().fold((0, f32::NEG_INFINITY), |b, (i, &v)| if v > b.1 { (i, v) } else { b }).0 as u32
}

/// GPU logits match the CPU twin within 1e-3 relative (a whole forward is many f32 kernels
/// whose rounding differs; 1e-3 of the logits' scale), and the on-GPU argmax is the argmax of
/// the GPU's own logits.
fn check(name: &str, w: &ModelWeights, len: usize) {
    let toks = tokens(&w.config, len, len as u64);
    let want = unmask::cpu::forward::forward(w, &toks);
    let (got, choice) = gpu_logits(w, &toks);
    assert_close(name, &got, &want, 1e-3);
    let v = w.config.vocab_size;
    for (r, c) in choice.iter().enumerate() {
        assert_eq!(*c, argmax(&got[r * v..(r + 1) * v]), "{name}: on-GPU argmax of row {r}");
    }
}

#[test]
fn tiny_models_match_the_cpu_twin() {
    check("2 layers, 4 heads of 16, vocab 101", &random_model(&tiny_config(2, 4, 4, 16, 72, 101), DType::F32, 1), 13);
    check("GQA 6/2 heads of 64, vocab 257", &random_model(&tiny_config(1, 6, 2, 64, 200, 257), DType::F32, 2), 70);
    check("GQA 4/1 heads of 32, f16", &random_model(&tiny_config(2, 4, 1, 32, 96, 300), DType::F16, 3), 9);
    check("bf16, one position", &random_model(&tiny_config(1, 2, 2, 16, 40, 50), DType::BF16, 4), 1);
}

#[test]
fn quantized_models_match_the_cpu_twin_on_the_same_weights() {
    check("Q8_0", &random_model(&tiny_config(2, 3, 1, 32, 160, 211), DType::Q8_0, 5), 11);
    check("Q4_0", &random_model(&tiny_config(2, 4, 2, 16, 96, 150), DType::Q4_0, 6), 17);
}

#[test]
fn safetensors_and_gguf_give_the_same_logits() {
    for (dtype, seed) in [(DType::F32, 7), (DType::F16, 8), (DType::BF16, 9)] {
        let w = random_model(&tiny_config(2, 4, 2, 16, 72, 97), dtype, seed);
        let toks = tokens(&w.config, 12, seed);
        let st = w.to_safetensors().unwrap();
        let from_st = ModelWeights::from_safetensors("config.json", &w.config.to_hf_json(), &[("model.safetensors".into(), &st)]).unwrap();
        assert_eq!(from_st.rope, RopeStyle::NeoX);
        let gguf = w.to_gguf(vec![]);
        let from_gguf = ModelWeights::from_gguf("model.gguf", &gguf).unwrap();
        assert_eq!(from_gguf.rope, RopeStyle::Interleaved, "GGUF q/k rows are llama.cpp-permuted");
        assert_ne!(from_gguf.layer(0, Role::Q).data, from_st.layer(0, Role::Q).data, "the GGUF file holds permuted q rows");
        let (a, _) = gpu_logits(&from_st, &toks);
        let (b, _) = gpu_logits(&from_gguf, &toks);
        assert_close(&format!("{} safetensors vs GGUF", dtype.name()), &b, &a, 1e-4);
        assert_close("safetensors vs CPU twin", &a, &unmask::cpu::forward::forward(&w, &toks), 1e-3);
    }
}

#[test]
fn quantized_gguf_round_trip_and_load_time_quantization_agree() {
    let mut w = random_model(&tiny_config(1, 4, 4, 16, 64, 120), DType::F32, 10);
    w.convert(Quant { dtype: DType::Q4_0, pure: true }).unwrap();
    let toks = tokens(&w.config, 10, 10);
    let from_gguf = ModelWeights::from_gguf("q4.gguf", &w.to_gguf(vec![])).unwrap();
    assert_eq!(from_gguf.tensors[Role::Embed].dtype, DType::Q4_0);
    let (a, _) = gpu_logits(&w, &toks);
    let (b, _) = gpu_logits(&from_gguf, &toks);
    assert_close("Q4_0 in memory vs from GGUF", &b, &a, 1e-4);
}

/// One quantization policy for files (`unmask convert`) and loads (`--quant`, the page): Q4_0
/// keeps the embedding and LM head in Q8_0 unless pure; norms stay f32.
#[test]
fn q4_0_keeps_the_embedding_and_lm_head_in_q8_0_unless_pure() {
    let w = random_model(&tiny_config(1, 4, 4, 16, 64, 120), DType::F32, 12);
    let kinds = |w: &ModelWeights| {
        (w.tensors[Role::Embed].dtype, w.layer(0, Role::Q).dtype, w.layer(0, Role::Down).dtype, w.tensors[Role::LmHead].dtype, w.layer(0, Role::AttnNorm).dtype)
    };
    let (q4, q4_pure, q8) = (Quant::new(DType::Q4_0), Quant { dtype: DType::Q4_0, pure: true }, Quant::new(DType::Q8_0));
    let mut m = w.clone();
    m.convert(q4).unwrap();
    assert_eq!(kinds(&m), (DType::Q8_0, DType::Q4_0, DType::Q4_0, DType::Q8_0, DType::F32));
    // Quantized once from the source, not Q4_0 → Q8_0.
    assert_eq!(m.tensors[Role::Embed].data, w.tensors[Role::Embed].convert(DType::Q8_0).unwrap().data);
    let mut m = w.clone();
    m.convert(q4_pure).unwrap();
    assert_eq!(kinds(&m), (DType::Q4_0, DType::Q4_0, DType::Q4_0, DType::Q4_0, DType::F32));
    let mut m = w.clone();
    m.convert(q8).unwrap();
    assert_eq!(kinds(&m), (DType::Q8_0, DType::Q8_0, DType::Q8_0, DType::Q8_0, DType::F32));
    // A model already all Q4_0 stays Q4_0 (nothing wider to keep).
    let mut m = w.clone();
    m.convert(q4_pure).unwrap();
    m.convert(q4).unwrap();
    assert_eq!(kinds(&m), (DType::Q4_0, DType::Q4_0, DType::Q4_0, DType::Q4_0, DType::F32));
    // A load-time --quant q4_0 streams the same formats onto the GPU.
    let g = pollster::block_on(GpuModel::load_in_pieces(gpu(), &w.index(), &w, Some(q4), 1000, &mut |_, _| {})).unwrap();
    let on_gpu = |k: Key| g.weights[k].dtype;
    assert_eq!((on_gpu(Key::global(Role::Embed)), on_gpu(Key::at(0, Role::Q)), on_gpu(Key::global(Role::LmHead))), (DType::Q8_0, DType::Q4_0, DType::Q8_0));
    let mut host = w.clone();
    host.convert(q4).unwrap();
    let toks = tokens(&w.config, 7, 12);
    let want = gpu_logits(&host, &toks).0;
    let got = pollster::block_on(session(&g, 7).forward(&toks, ARGMAX, true)).unwrap().logits.unwrap();
    assert_close("load-time Q4_0 vs converted on the host", &got, &want, 1e-5);
}

#[test]
fn split_tensors_still_work_under_a_small_binding_limit() {
    // The LM head and embedding (97 × 64 f32 = 24.8 KB) are split into chunks of ≤ 8 KB, and the
    // logits are computed a few rows at a time: the same logits must come out.
    let w = random_model(&tiny_config(1, 4, 4, 16, 64, 97), DType::F32, 11);
    let toks = tokens(&w.config, 9, 11);
    let want = unmask::cpu::forward::forward(&w, &toks);
    let g = common::own_gpu();
    g.cap_bindings(8192);
    let m = GpuModel::upload(g, &w).unwrap();
    assert!(m.weights[Role::LmHead].chunks.len() > 1, "the head was split");
    let out = pollster::block_on(session(&m, toks.len()).forward(&toks, ARGMAX, true)).unwrap();
    assert_close("forward with split tensors", &out.logits.unwrap(), &want, 1e-3);
}

#[test]
fn a_sub_range_against_the_kept_kv_equals_the_full_pass() {
    // Computing rows 4..9 after a full pass of the same canvas reuses the K/V of the other rows:
    // exact when those tokens did not change.
    let w = random_model(&tiny_config(2, 4, 2, 16, 64, 90), DType::F32, 12);
    let toks = tokens(&w.config, 14, 12);
    let m = GpuModel::upload(gpu(), &w).unwrap();
    let mut s = session(&m, toks.len());
    let full = pollster::block_on(s.forward(&toks, ARGMAX, true)).unwrap().logits.unwrap();
    let part = pollster::block_on(s.forward_rows(&toks, 4..9, ARGMAX, true)).unwrap().logits.unwrap();
    let v = w.config.vocab_size;
    assert_close("rows 4..9", &part, &full[4 * v..9 * v], 1e-5);
}

#[test]
fn a_sub_range_against_stale_kv_matches_the_cached_cpu_twin() {
    // The approximate case (a block's later steps): the rows' tokens changed since the full
    // pass, the other rows' K/V are kept from it. The CPU twin keeps the same cache.
    use unmask::cpu::forward::{forward_rows, KvCache};
    let w = random_model(&tiny_config(2, 4, 2, 16, 64, 90), DType::F16, 15);
    let before = tokens(&w.config, 14, 15);
    let mut after = before.clone();
    for (i, t) in after[4..9].iter_mut().enumerate() {
        *t = (*t + 3 + i as u32) % 90;
    }
    let m = GpuModel::upload(gpu(), &w).unwrap();
    let mut s = session(&m, 14);
    pollster::block_on(s.forward(&before, ARGMAX, false)).unwrap();
    let part = pollster::block_on(s.forward_rows(&after, 4..9, ARGMAX, true)).unwrap().logits.unwrap();
    let mut kv = KvCache::default();
    let full = forward_rows(&w, &before, 0..14, &mut kv);
    let v = w.config.vocab_size;
    assert_close("CPU twin: unchanged rows from the cache", &forward_rows(&w, &before, 4..9, &mut kv), &full[4 * v..9 * v], 1e-6);
    forward_rows(&w, &before, 0..14, &mut kv);
    let twin = forward_rows(&w, &after, 4..9, &mut kv);
    assert_close("rows 4..9 against stale K/V", &part, &twin, 1e-3);
    let exact = &unmask::cpu::forward::forward(&w, &after)[4 * v..9 * v];
    assert!(twin.iter().zip(exact).any(|(a, b)| (a - b).abs() > 1e-3), "stale K/V must differ from a fresh pass (else this test checks nothing)");
}

#[test]
fn a_cached_step_in_the_flash_layout_splits_its_keys_and_matches_the_cpu_twin() {
    // GPUs run the flash layout: a full pass and a cached step of 32 rows (4 heads against 200
    // keys: 8 workgroups of their own) both take split-K attention with 3 key slices; the
    // logits are the CPU twin's, fresh and against stale K/V. An adapter of its own, so that no
    // other test sees the flash switch.
    use unmask::cpu::forward::{forward_rows, KvCache};
    use unmask::engine::SessionConfig;
    use unmask::gpu::kernels::{AttnShape, KernelVariant};
    let g = common::own_gpu();
    g.set_flash_attention(true);
    let w = random_model(&tiny_config(2, 4, 2, 16, 64, 90), DType::F32, 21);
    let (len, rows) = (200, 160..192);
    assert_eq!(AttnShape { lq: rows.len(), lk: len, n_heads: 4, n_kv: 2, head_dim: 16 }.splits(), 3);
    assert_eq!(AttnShape { lq: len, lk: len, n_heads: 4, n_kv: 2, head_dim: 16 }.splits(), 3);
    let before = tokens(&w.config, len, 21);
    let mut after = before.clone();
    for (i, t) in after[rows.clone()].iter_mut().enumerate() {
        *t = (*t + 5 + i as u32) % 90;
    }
    let m = GpuModel::upload(g, &w).unwrap();
    let config =
        SessionConfig { canvas: len, cache: unmask::sampler::CacheMode::Dual, cfg: false, logits: true, kernels: KernelVariant::Tiled, kv: Default::default() };
    let mut s = m.session(config).unwrap();
    let full = pollster::block_on(s.forward(&before, ARGMAX, true)).unwrap().logits.unwrap();
    assert_close("full pass, split-K", &full, &unmask::cpu::forward::forward(&w, &before), 1e-3);
    let part = pollster::block_on(s.forward_rows(&after, rows.clone(), ARGMAX, true)).unwrap().logits.unwrap();
    let mut kv = KvCache::default();
    forward_rows(&w, &before, 0..len, &mut kv);
    assert_close("cached step, split-K", &part, &forward_rows(&w, &after, rows, &mut kv), 1e-3);
}

#[test]
fn sampling_noise_is_seeded_and_matches_the_cpu_twin() {
    let w = random_model(&tiny_config(1, 2, 2, 16, 40, 64), DType::F32, 13);
    let toks = tokens(&w.config, 8, 13);
    let m = GpuModel::upload(gpu(), &w).unwrap();
    let mut s = session(&m, toks.len());
    // Plain, and with Dream's filters (they reach the kernel through the session's noise uniform).
    for noise in [Noise::new(1.0, 1234, 5), Noise { top_k: 5, top_p: 0.8, ..Noise::new(1.0, 1234, 5) }] {
        let a = pollster::block_on(s.forward(&toks, noise, true)).unwrap();
        let b = pollster::block_on(s.forward(&toks, noise, false)).unwrap();
        assert_eq!(a.choices, b.choices, "same seed, same choices");
        let logits = a.logits.unwrap();
        let v = w.config.vocab_size;
        for (r, c) in a.choices.iter().enumerate() {
            let twin = unmask::cpu::ops::select(&logits[r * v..(r + 1) * v], r as u32, noise);
            assert_eq!(c.token, twin.token, "row {r} under {noise:?}");
            assert!((c.prob - twin.prob).abs() <= 1e-4 * twin.prob, "row {r} under {noise:?}: {c:?} vs {twin:?}");
        }
    }
}

#[test]
fn bad_tokens_are_errors_not_panics() {
    let w = random_model(&tiny_config(1, 2, 2, 16, 40, 64), DType::F32, 14);
    let m = GpuModel::upload(gpu(), &w).unwrap();
    let mut s = session(&m, 512);
    for (toks, needle) in [(vec![], "empty"), (vec![1, 64], "outside the vocabulary"), (vec![0; 513], "longer than this session")] {
        let e = pollster::block_on(s.forward(&toks, ARGMAX, false)).err().expect("an error");
        assert!(e.to_string().contains(needle), "{e}");
    }
    let e = m.session(unmask::engine::SessionConfig::new(513, m.gpu.default_kernels())).err().expect("a canvas over the context");
    assert!(e.to_string().contains("context of 512"), "{e}");
}

/// With timestamp queries (lavapipe has them; SwiftShader in Chromium may not), a profiled pass
/// times every kernel kind of the forward; without them the adapter says so.
#[test]
fn kernel_times_come_from_timestamp_queries() {
    let cfg = tiny_config(2, 4, 2, 16, 96, 77);
    let w = random_model(&cfg, DType::Q4_0, 21);
    let m = GpuModel::upload(gpu(), &w).unwrap();
    let toks = tokens(&cfg, 9, 3);
    let mut s = session(&m, 9);
    match pollster::block_on(s.profile(&toks, 0..9, 0..9)).unwrap() {
        Some(times) => {
            assert!(m.gpu.report.timestamp_query);
            let names: Vec<&str> = times.iter().map(|t| t.0.as_str()).collect();
            for k in ["matmul Q4_0", "attention", "rmsnorm", "rope", "select"] {
                assert!(names.iter().any(|n| n.starts_with(k)), "{k} missing from {names:?}");
            }
            assert!(!names.contains(&"swiglu"), "the gated MLP runs in the up projection's epilogue: {names:?}");
            assert!(times.iter().all(|t| t.1 >= 0.0 && t.1.is_finite()), "{times:?}");
            assert!(times.iter().map(|t| t.1).sum::<f64>() > 0.0, "{times:?}");
        }
        None => assert!(!m.gpu.report.timestamp_query),
    }
    // Profiling leaves the model usable: the same pass gives the same logits as before.
    let a = gpu_logits(&w, &toks).0;
    let b = pollster::block_on(s.forward(&toks, ARGMAX, true)).unwrap().logits.unwrap();
    assert_eq!(a, b);
}

/// Non-finite logits (broken weights, not the user's input) are a numeric fault with the
/// position, not a token the sampler would commit.
#[test]
fn nan_logits_are_a_numeric_fault() {
    let mut w = random_model(&tiny_config(1, 2, 2, 16, 40, 64), DType::F32, 16);
    let head = w.tensors.get_mut(Key::global(Role::LmHead)).unwrap();
    let nan = f32::NAN.to_le_bytes();
    for v in head.data.chunks_exact_mut(4).skip(16 * 5).take(16) {
        v.copy_from_slice(&nan); // row 5 of the head: every logit of token 5 is NaN
    }
    let m = GpuModel::upload(gpu(), &w).unwrap();
    let e = pollster::block_on(session(&m, 4).forward(&[1, 2, 3, 4], ARGMAX, false)).err().expect("a numeric fault");
    let msg = e.to_string();
    assert!(matches!(e, unmask::Error::Gpu(_)) && msg.contains("numeric fault") && msg.contains("position 0"), "{msg}");
}

#[test]
fn f16_kv_sessions_match_the_cpu_twin_that_stores_f16() {
    // K/V kept in half precision (GPUs with shader-f16 default to it): in each attention layout
    // (lavapipe's CPU lanes, the portable tiled one, both flash ones with split-K), a full pass and
    // a cached step against stale K/V give the logits of the CPU twin whose cache rounds to f16
    // the same way (`tests/session.rs` checks the plan and allocation of f16 sessions).
    use unmask::cpu::forward::{forward_rows, KvCache};
    use unmask::engine::SessionConfig;
    use unmask::gpu::kernels::{KernelVariant, KvType};
    let w = random_model(&tiny_config(2, 4, 2, 16, 64, 90), DType::F32, 31);
    let (len, rows) = (200, 160..192);
    let before = tokens(&w.config, len, 31);
    let mut after = before.clone();
    for (i, t) in after[rows.clone()].iter_mut().enumerate() {
        *t = (*t + 5 + i as u32) % 90;
    }
    let mut twin = KvCache::new(KvType::F16);
    let full_want = forward_rows(&w, &before, 0..len, &mut twin);
    let part_want = forward_rows(&w, &after, rows.clone(), &mut twin);
    let f32_full = unmask::cpu::forward::forward(&w, &before);
    assert!(full_want.iter().zip(&f32_full).any(|(a, b)| a != b), "the f16 twin rounds (else this test checks nothing)");
    // (layout, flash, K/V staged in workgroup memory): every attention kernel.
    let layouts = [
        (KernelVariant::CpuLanes, false, false),
        (KernelVariant::Tiled, false, false),
        (KernelVariant::Tiled, true, false),
        (KernelVariant::Tiled, true, true),
    ];
    for (kernels, flash, tiles) in layouts {
        let g = common::own_gpu();
        g.set_flash_attention(flash);
        g.set_tiled_attention(tiles).unwrap();
        let m = GpuModel::upload(g, &w).unwrap();
        let config = SessionConfig { canvas: len, cache: unmask::sampler::CacheMode::Dual, logits: true, kv: KvType::F16, ..SessionConfig::new(len, kernels) };
        let mut s = m.session(config).unwrap();
        let name = format!("{}{}{}, f16 K/V", kernels.name(), if flash { " flash" } else { "" }, if tiles { " tiles" } else { "" });
        let full = pollster::block_on(s.forward(&before, ARGMAX, true)).unwrap().logits.unwrap();
        assert_close(&format!("{name}: full pass"), &full, &full_want, 1e-3);
        let part = pollster::block_on(s.forward_rows(&after, rows.clone(), ARGMAX, true)).unwrap().logits.unwrap();
        assert_close(&format!("{name}: cached step against stale K/V"), &part, &part_want, 1e-3);
    }
}

#[test]
fn split_k_matmuls_in_a_session_match_the_cpu_twin() {
    // GPUs split the shared dimension of tiled matmuls with few output tiles: this model's
    // projections (k = 512) and down projection (k = 608) split in a full pass of 40 rows and a
    // cached step of 8, with the residual add and the gated MLP applied in the merge; the logits
    // are the CPU twin's, fresh and against stale K/V.
    use unmask::cpu::forward::{forward_rows, KvCache};
    use unmask::engine::SessionConfig;
    use unmask::gpu::kernels::KernelVariant;
    let g = common::own_gpu();
    g.set_split_matmul(true);
    let w = random_model(&tiny_config(2, 4, 2, 128, 608, 90), DType::Q4_0, 41);
    let (len, rows) = (40, 24..32);
    for (m, n, k) in [(len, 512, 512), (8, 256, 512), (8, 512, 608)] {
        assert!(g.matmul_split_of(KernelVariant::Tiled, m, n, k).splits > 1, "{m}×{k}×{n} splits");
    }
    let before = tokens(&w.config, len, 41);
    let mut after = before.clone();
    for (i, t) in after[rows.clone()].iter_mut().enumerate() {
        *t = (*t + 7 + i as u32) % 90;
    }
    let m = GpuModel::upload(g, &w).unwrap();
    let config = SessionConfig { cache: unmask::sampler::CacheMode::Dual, logits: true, ..SessionConfig::new(len, KernelVariant::Tiled) };
    let mut s = m.session(config).unwrap();
    let full = pollster::block_on(s.forward(&before, ARGMAX, true)).unwrap().logits.unwrap();
    assert_close("full pass, split-K matmuls", &full, &unmask::cpu::forward::forward(&w, &before), 1e-3);
    let part = pollster::block_on(s.forward_rows(&after, rows.clone(), ARGMAX, true)).unwrap().logits.unwrap();
    let mut kv = KvCache::default();
    forward_rows(&w, &before, 0..len, &mut kv);
    assert_close("cached step, split-K matmuls", &part, &forward_rows(&w, &after, rows.clone(), &mut kv), 1e-3);
    // The merges ran (timestamps name every kernel of a pass where the adapter has them).
    if let Some(times) = pollster::block_on(s.profile(&after, rows.clone(), rows)).unwrap() {
        assert!(times.iter().any(|t| t.0 == "matmul split-K merge"), "{times:?}");
    } else {
        assert!(!m.gpu.report.timestamp_query);
    }
}

#[test]
fn coop_sessions_match_the_cpu_twin_that_rounds_matmul_inputs_to_f16() {
    // The path GPUs with tensor cores take by default (the H200's): every tiled matmul on
    // cooperative matrices (emulated here where the adapter has none), Q/K/V in one launch with
    // RoPE and the f16 K/V store in its store, gate and up in one, norms as passes of their own,
    // split-K on (its merges). A full pass and a cached step against stale K/V:
    // - give the logits of the same session with the fusions off (three matmuls, RoPE passes,
    //   K/V stores, gate and up apart: the same rounded products) within 1e-5;
    // - and those of the twin that rounds the matmuls' inputs to f16 and stores K/V in f16,
    //   within 3e-3, at least twice as close as to the twin with f32 inputs. Not 1e-3 as for f32
    //   sessions: rounding every input to f16 makes this random model's logits move by 1.6e-3
    //   when one norm's weights move by 1e-7 (a value lands on the other side of an f16
    //   rounding boundary), so f32 rounding differences alone reach that far.
    use unmask::cpu::forward::{forward_rows, KvCache};
    use unmask::engine::SessionConfig;
    use unmask::gpu::kernels::{Kernel, KernelVariant, KvType};
    let w = random_model(&tiny_config(2, 4, 2, 128, 608, 90), DType::Q4_0, 51);
    let (len, rows) = (72, 40..48);
    let before = tokens(&w.config, len, 51);
    let mut after = before.clone();
    for (i, t) in after[rows.clone()].iter_mut().enumerate() {
        *t = (*t + 3 + i as u32) % 90;
    }
    let twin = |f16: bool| {
        let mut kv = if f16 { KvCache::new(KvType::F16).with_f16_matmul_inputs() } else { KvCache::new(KvType::F16) };
        (forward_rows(&w, &before, 0..len, &mut kv), forward_rows(&w, &after, rows.clone(), &mut kv))
    };
    let (want, f32_inputs) = (twin(true), twin(false));
    let g = common::coop_gpu();
    g.set_split_matmul(true);
    let m = GpuModel::upload(g.clone(), &w).unwrap();
    let config = SessionConfig { cache: unmask::sampler::CacheMode::Dual, logits: true, kv: KvType::F16, ..SessionConfig::new(len, KernelVariant::Tiled) };
    let mut runs = Vec::new();
    for fuse in [true, false] {
        g.set_fuse(fuse);
        let mut s = m.session(config.clone()).unwrap();
        for (what, r) in [("full pass", 0..len), ("cached step", rows.clone())] {
            let ks = s.pass_kernels(len, r.clone(), r).unwrap();
            let f32_core =
                ks.iter().filter(|k| matches!(k, Kernel::Matmul { .. } | Kernel::MatmulQkv { coop: false, .. } | Kernel::MatmulGlu { coop: false, .. }));
            assert_eq!(f32_core.count(), 0, "{what}, fused {fuse}: every matmul on cooperative matrices: {ks:?}");
            assert!(ks.iter().any(|k| matches!(k, Kernel::MatmulMerge { .. })), "{what}, fused {fuse}: some matmul splits: {ks:?}");
            let qkv_merges = ks.iter().filter(|k| matches!(k, Kernel::MatmulMergeQkv { .. })).count();
            assert_eq!(qkv_merges, if fuse { w.config.n_layers } else { 0 }, "{what}, fused {fuse}: one Q/K/V merge a layer: {ks:?}");
            let one = ks.iter().any(|k| matches!(k, Kernel::MatmulQkv { .. })) && ks.iter().any(|k| matches!(k, Kernel::MatmulGlu { .. }));
            assert_eq!(one, fuse, "{what}, fused {fuse}: Q/K/V and gate/up in one launch each: {ks:?}");
        }
        let full = pollster::block_on(s.forward(&before, ARGMAX, true)).unwrap().logits.unwrap();
        let part = pollster::block_on(s.forward_rows(&after, rows.clone(), ARGMAX, true)).unwrap().logits.unwrap();
        runs.push((full, part));
    }
    let worst = |got: &[f32], want: &[f32]| {
        let scale = common::rms(want);
        got.iter().zip(want).map(|(g, w)| (g - w).abs() / w.abs().max(scale)).fold(0f32, f32::max)
    };
    for (what, got, unfused, want, f32_twin) in
        [("full pass", &runs[0].0, &runs[1].0, &want.0, &f32_inputs.0), ("cached step against stale K/V", &runs[0].1, &runs[1].1, &want.1, &f32_inputs.1)]
    {
        assert_close(&format!("coop session, {what}: fused against unfused"), got, unfused, 1e-5);
        assert_close(&format!("coop session, {what}"), got, want, 3e-3);
        let (near, far) = (worst(got, want), worst(got, f32_twin));
        assert!(2.0 * near <= far, "coop session, {what}: {near:.2e} from the twin with f16 inputs, {far:.2e} from the one with f32 inputs");
    }
}

#[test]
fn f16_matmul_inputs_leave_a_coop_sessions_logits_bit_for_bit() {
    // A session on cooperative matrices keeps the matmuls' inputs in f16 (`Gpu::half_inputs`):
    // the norms, attention (split-K in the cached step) and gate/up write them rounded, where
    // the cooperative workgroups rounded f32 ones as they staged them. The logits of a full pass
    // and of a cached step against stale K/V, and a guided pass's choices, are those of the same
    // session without them, bit for bit; the passes do run the f16 kernels (and without them, none); and a session on the
    // f32 cores never keeps f16 inputs.
    use unmask::engine::SessionConfig;
    use unmask::gpu::kernels::{Kernel, KernelVariant, KvType};
    let w = random_model(&tiny_config(2, 4, 2, 128, 608, 90), DType::Q4_0, 52);
    // (Keys enough for a cached step's attention to split.)
    let (len, rows) = (200, 160..176);
    let before = tokens(&w.config, len, 52);
    let mut after = before.clone();
    for (i, t) in after[rows.clone()].iter_mut().enumerate() {
        *t = (*t + 5 + i as u32) % 90;
    }
    // GPUs' attention too: flash, K/V tiles in workgroup memory, split-K for few rows.
    let g = common::coop_gpu();
    g.set_split_matmul(true);
    g.set_flash_attention(true);
    g.set_tiled_attention(true).unwrap();
    let m = GpuModel::upload(g.clone(), &w).unwrap();
    let config =
        SessionConfig { cache: unmask::sampler::CacheMode::Dual, logits: true, kv: KvType::F16, cfg: true, ..SessionConfig::new(len, KernelVariant::Tiled) };
    let half = |k: &Kernel| {
        matches!(
            k,
            Kernel::RmsNorm { out: KvType::F16, .. }
                | Kernel::AttentionMerge { out: KvType::F16 }
                | Kernel::Attention { out: KvType::F16, .. }
                | Kernel::MatmulCoop { x: KvType::F16, .. }
                | Kernel::Matmul { x: KvType::F16, .. }
                | Kernel::MatmulQkv { x: KvType::F16, .. }
                | Kernel::MatmulGlu { x: KvType::F16, .. }
        )
    };
    let mut runs = Vec::new();
    for on in [true, false] {
        g.set_half_inputs(on);
        let mut s = m.session(config.clone()).unwrap();
        assert_eq!(s.half_inputs(), on);
        for (what, r) in [("full pass", 0..len), ("cached step", rows.clone())] {
            let ks = s.pass_kernels(len, r.clone(), r).unwrap();
            assert!(ks.iter().all(|k| !matches!(k, Kernel::Matmul { .. })), "{what}: every matmul on cooperative matrices: {ks:?}");
            let count = ks.iter().filter(|k| half(k)).count();
            // Per layer: the two norms, attention, Q/K/V, output, gate/up, down; the final norm and the head.
            let want = if on { 7 * w.config.n_layers + 2 } else { 0 };
            assert!(count >= want && (count == 0) != on, "{what}, f16 inputs {on}: {count} kernels with f16 activations: {ks:?}");
            if what == "cached step" && on {
                let merged = ks.iter().any(|k| matches!(k, Kernel::AttentionMerge { out: KvType::F16 }));
                assert!(merged, "the cached step's attention splits and its merge writes f16: {ks:?}");
            }
        }
        let full = pollster::block_on(s.forward(&before, ARGMAX, true)).unwrap().logits.unwrap();
        let part = pollster::block_on(s.forward_rows(&after, rows.clone(), ARGMAX, true)).unwrap().logits.unwrap();
        // Classifier-free guidance (the unconditional pass's final norm kept in f16 too): its
        // choices' probabilities.
        let guided = pollster::block_on(s.forward_guided(&after, &before, 1.5, 0..len, ARGMAX)).unwrap();
        runs.push((full, part, guided.iter().flat_map(|c| [c.token as f32, c.prob, c.entropy, c.margin]).collect::<Vec<f32>>()));
    }
    for (what, a, b) in [("full pass", &runs[0].0, &runs[1].0), ("cached step", &runs[0].1, &runs[1].1), ("guided pass", &runs[0].2, &runs[1].2)] {
        let bad = a.iter().zip(b).position(|(x, y)| x.to_bits() != y.to_bits());
        assert!(bad.is_none(), "{what}: value {} is {} with f16 inputs and {} without", bad.unwrap(), a[bad.unwrap()], b[bad.unwrap()]);
    }
    let plain = GpuModel::upload(gpu(), &w).unwrap();
    assert!(!plain.session(config).unwrap().half_inputs(), "no f16 inputs on the f32 cores");
}
