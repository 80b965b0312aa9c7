//! Sessions: the memory plan (from the file headers alone) is what a session allocates, for
//! every cache mode with and without guidance and threshold, K/V in f32 and f16; a budget one byte short is
//! refused before anything is allocated; two sessions on one model do not interfere; a pass that
//! predicts some positions only gives what a full pass gives there.

mod common;
use common::{assert_close, gpu};
use unmask::choice::Noise;
use unmask::engine::{GpuModel, MemoryPlan, Session, SessionConfig};
use unmask::gpu::kernels::KvType;
use unmask::model::source::SliceSource;
use unmask::model::{DType, ModelIndex, Quant};
use unmask::sampler::{self, CacheMode, Canvas, SamplerOptions};
use unmask::synth::{random_model, tiny_config};

const ARGMAX: Noise = Noise::GREEDY;

/// The model as a GGUF file in memory: its index (headers only) and the model loaded from it.
/// On a device of its own, so that other tests' buffers do not count.
fn from_file(bytes: &[u8], quant: Option<Quant>) -> (ModelIndex, GpuModel) {
    let src = SliceSource { files: vec![("m.gguf".into(), bytes)] };
    let (index, _) = pollster::block_on(unmask::model::index::read_index(&src, None)).unwrap();
    let g = std::sync::Arc::new(pollster::block_on(unmask::gpu::Gpu::new()).unwrap());
    let before = g.bytes_created();
    let m = pollster::block_on(GpuModel::load(g.clone(), &index, &src, quant, &mut |_, _| {})).unwrap();
    assert_eq!(g.bytes_created() - before, m.weight_bytes(), "the load allocated the weights and nothing else");
    (index, m)
}

#[test]
fn the_plan_is_what_sessions_allocate_in_every_mode() {
    let cfg = tiny_config(2, 4, 2, 16, 96, 77);
    let bytes = random_model(&cfg, DType::F16, 3).to_gguf(vec![]);
    let quant = Some(Quant::new(DType::Q4_0));
    let (index, m) = from_file(&bytes, quant);
    let g = &m.gpu;
    let (prompt, gen) = ([5u32, 9, 11], 24);
    let modes = [CacheMode::None, CacheMode::Prefix, CacheMode::Dual].map(|c| [(c, KvType::F32), (c, KvType::F16)]).concat();
    for (cache, kv) in modes {
        for cfg_scale in [0.0, 1.5] {
            for threshold in [None, Some(0.5)] {
                let o = SamplerOptions { steps: 12, gen_length: gen, block_length: 8, cache, cfg_scale, threshold, early_stop: false, ..Default::default() };
                let config = SessionConfig { canvas: prompt.len() + gen, cache, cfg: cfg_scale > 0.0, logits: false, kernels: g.default_kernels(), kv };
                let plan = MemoryPlan::new(&index, quant, &config, g.plan_limits()).unwrap();
                assert_eq!(plan.weight_bytes, m.weight_bytes(), "weights as planned");
                let what = format!("{cache:?}, {} K/V, cfg {cfg_scale}, threshold {threshold:?}", kv.name());
                // One byte short: refused with the numbers, and nothing was allocated.
                let before = g.bytes_created();
                let e = Session::new(&m, config.clone(), Some(plan.total_bytes() - 1)).err().expect("a budget one byte short is refused");
                assert!(e.to_string().contains("only") && e.to_string().contains("--gen-length"), "{what}: {e}");
                assert_eq!(g.bytes_created(), before, "{what}: the refused session allocated nothing");
                // The exact budget: accepted, and the session holds exactly the plan's bytes.
                let mut s = Session::new(&m, config, Some(plan.total_bytes())).unwrap();
                assert_eq!(g.bytes_created() - before, plan.session_bytes, "{what}: bytes allocated by the session");
                assert_eq!(s.allocated_bytes(), plan.session_bytes, "{what}");
                // Generating allocates nothing more: every pass reuses the session's buffers.
                let canvas = Canvas::after_prompt(&prompt, gen, cfg.mask_token_id, None);
                let gen_out = pollster::block_on(sampler::run(&mut s, canvas, &o, &mut |_| true)).unwrap();
                assert!(gen_out.steps >= 3 && gen_out.model_passes >= gen_out.steps, "{what}: {gen_out:?}");
                assert_eq!(g.bytes_created() - before, plan.session_bytes, "{what}: a generation allocated more");
            }
        }
    }
    // Plans of different modes differ where their buffers do.
    let plan = |cache, cfg| {
        MemoryPlan::new(
            &index,
            quant,
            &SessionConfig { canvas: 27, cache, cfg, logits: false, kernels: g.default_kernels(), kv: g.default_kv() },
            g.plan_limits(),
        )
        .unwrap()
        .session_bytes
    };
    assert!(plan(CacheMode::None, false) < plan(CacheMode::Dual, false), "a cache records a second pass");
    assert!(plan(CacheMode::Dual, false) < plan(CacheMode::Dual, true), "guidance keeps unconditional activations");
    // f16 K/V: half the K/V bytes.
    let kv_plan = |kv| MemoryPlan::new(&index, quant, &SessionConfig { kv, ..SessionConfig::new(27, g.default_kernels()) }, g.plan_limits()).unwrap().kv_bytes;
    assert_eq!(kv_plan(KvType::F32), 2 * 2 * 27 * cfg.kv_dim() as u64 * 4);
    assert_eq!(kv_plan(KvType::F16), kv_plan(KvType::F32) / 2);
}

#[test]
fn two_sessions_on_one_model_do_not_interfere() {
    let cfg = tiny_config(2, 4, 2, 16, 64, 90);
    let w = random_model(&cfg, DType::F32, 4);
    let m = GpuModel::upload(gpu(), &w).unwrap();
    let config = SessionConfig { canvas: 14, cache: CacheMode::Dual, cfg: false, logits: true, kernels: m.gpu.default_kernels(), kv: m.gpu.default_kv() };
    let (mut a, mut b) = (m.session(config.clone()).unwrap(), m.session(config).unwrap());
    let ta: Vec<u32> = (0..14).map(|i| (i * 7 + 3) % 89).collect();
    let tb: Vec<u32> = (0..14).map(|i| (i * 5 + 1) % 89).collect();
    // a: a full pass, then b runs a different canvas, then a's cached rows must still see a's K/V.
    pollster::block_on(a.forward(&ta, ARGMAX, false)).unwrap();
    pollster::block_on(b.forward(&tb, ARGMAX, false)).unwrap();
    let part = pollster::block_on(a.forward_rows(&ta, 4..9, ARGMAX, true)).unwrap().logits.unwrap();
    let v = cfg.vocab_size;
    let want = &unmask::cpu::forward::forward(&w, &ta)[4 * v..9 * v];
    assert_close("session a's rows after session b ran", &part, want, 1e-3);
    // And b's cached rows still see b's.
    let part = pollster::block_on(b.forward_rows(&tb, 2..6, ARGMAX, true)).unwrap().logits.unwrap();
    assert_close("session b's rows", &part, &unmask::cpu::forward::forward(&w, &tb)[2 * v..6 * v], 1e-3);
    // Interleaved whole generations give what each gives alone.
    let o = SamplerOptions { steps: 8, gen_length: 8, block_length: 4, early_stop: false, ..Default::default() };
    let run = |s: &mut Session, p: &[u32]| {
        pollster::block_on(sampler::run(s, Canvas::after_prompt(p, 8, cfg.mask_token_id, None), &o, &mut |_| true)).unwrap().tokens
    };
    let alone = run(&mut a, &ta[..6]);
    run(&mut b, &tb[..6]);
    assert_eq!(run(&mut a, &ta[..6]), alone);
}

#[test]
fn a_session_refuses_what_it_was_not_made_for() {
    let cfg = tiny_config(1, 2, 2, 16, 40, 64);
    let m = GpuModel::upload(gpu(), &random_model(&cfg, DType::F32, 5)).unwrap();
    let mut s = m
        .session(SessionConfig { canvas: 8, cache: CacheMode::None, cfg: false, logits: false, kernels: m.gpu.default_kernels(), kv: m.gpu.default_kv() })
        .unwrap();
    let toks = [1u32, 2, 3, 4, 5, 6];
    for (e, needle) in [
        (pollster::block_on(s.forward(&[1; 9], ARGMAX, false)).err(), "longer than this session's 8"),
        (pollster::block_on(s.forward(&toks, ARGMAX, true)).err(), "logits"),
        (pollster::block_on(s.forward_rows(&toks, 2..4, ARGMAX, false)).err(), "full passes only"),
        (pollster::block_on(s.forward_guided(&toks, &toks, 1.0, 0..6, ARGMAX)).err(), "guidance"),
    ] {
        let e = e.expect("an error").to_string();
        assert!(e.contains(needle), "{e}");
    }
    assert_eq!(pollster::block_on(s.forward(&toks, ARGMAX, false)).unwrap().choices.len(), 6);
}

#[test]
fn a_dense_layer_is_five_launches_where_the_kernels_fuse() {
    // A LLaDA layer (no biases, no QK-norms) in the tiled layout with its fusions: Q/K/V (RoPE
    // and, with f16 K/V, the K/V store in its store), attention, output, gate/up, down; no RoPE,
    // K/V store or norm passes. With the fusions off, three matmuls, RoPE passes, K/V stores
    // (f16), the norms and gate and up apart. A cached step's pass launches the same per layer.
    // On cooperative matrices (emulated where the adapter has none) the same but for the two
    // norms, which stay passes (seven a layer).
    let cfg = tiny_config(3, 4, 2, 16, 96, 77);
    for coop in [false, true] {
        let g = match coop {
            false => std::sync::Arc::new(pollster::block_on(unmask::gpu::Gpu::new()).unwrap()),
            true => common::coop_gpu(),
        };
        launches_per_layer(&GpuModel::upload(g, &random_model(&cfg, DType::F16, 5)).unwrap(), coop);
    }
}

fn launches_per_layer(m: &GpuModel, coop: bool) {
    use unmask::gpu::kernels::{Kernel, KernelVariant};
    let (g, cfg) = (&m.gpu, &m.config);
    let len = 24;
    let count = |ks: &[Kernel], f: fn(&Kernel) -> bool| ks.iter().filter(|k| f(k)).count();
    for kv in [KvType::F32, KvType::F16] {
        for fuse in [true, false] {
            g.set_fuse(fuse);
            let config = SessionConfig { cache: CacheMode::Dual, kv, ..SessionConfig::new(len, KernelVariant::Tiled) };
            let mut s = Session::new(m, config, None).unwrap();
            for rows in [0..len, 8..16] {
                let ks = s.pass_kernels(len, rows.clone(), rows.clone()).unwrap();
                let host = s.encode_ms(len, rows.clone(), rows.clone(), 2).unwrap();
                assert!(host.is_finite() && host >= 0.0, "encoding the pass takes {host} ms");
                let what = format!("{} K/V, fused {fuse}, coop {coop}, rows {rows:?}: {ks:?}", kv.name());
                let f32_core =
                    count(&ks, |k| matches!(k, Kernel::Matmul { .. } | Kernel::MatmulQkv { coop: false, .. } | Kernel::MatmulGlu { coop: false, .. }));
                assert_eq!(f32_core == 0, coop, "{what}");
                let (rope, store, norms) = (
                    count(&ks, |k| matches!(k, Kernel::Rope)),
                    count(&ks, |k| matches!(k, Kernel::KvStore)),
                    count(&ks, |k| matches!(k, Kernel::RmsNorm { .. })),
                );
                let heads = count(&ks, |k| matches!(k, Kernel::Select(_)));
                // Embedding, the final norm, and per head chunk its matmul and selection.
                let around = 2 + 2 * heads;
                if fuse {
                    let layer_norms = if coop { 2 * cfg.n_layers } else { 0 };
                    assert_eq!((rope, store, norms), (0, 0, 1 + layer_norms), "{what}");
                    assert_eq!(ks.len(), around + 5 * cfg.n_layers + layer_norms, "{what}");
                } else {
                    let f16 = (kv == KvType::F16) as usize;
                    assert_eq!((rope, store, norms), (2 * cfg.n_layers, 2 * f16 * cfg.n_layers, 1 + 2 * cfg.n_layers), "{what}");
                    assert_eq!(ks.len(), around + (12 + 2 * f16) * cfg.n_layers, "{what}");
                }
            }
        }
    }
}

#[test]
fn a_pass_predicting_some_positions_matches_a_full_pass_there() {
    // The sampler asks for its block's positions alone (`Session::forward_part`): the last layer
    // after K/V, the LM head and the token selection then run for those rows only. Choices and
    // logits must be those of the pass that predicts every row, for whole-canvas and row-range
    // passes, plain and shifted logits (Dream's: position p from row p − 1, position 0 from row
    // 0), both kernel layouts; and the guided head's choices. Dense models, and mixtures of
    // experts: LLaDA-MoE's (QK-norms), LLaDA 2's (shared experts, expert bias, block-causal
    // attention in blocks of 8, RoPE on half of each head).
    use unmask::gpu::kernels::KernelVariant;
    for (family, shift) in [("llada", false), ("llada", true), ("llada-moe", false), ("llada2", false)] {
        let mut cfg = tiny_config(2, 4, 2, 16, 64, 90);
        cfg.family = family.into();
        cfg.shift_logits = shift;
        if family != "llada" {
            (cfg.n_experts, cfg.n_experts_used, cfg.expert_hidden_size) = (8, 2, 32);
        }
        if family == "llada2" {
            (cfg.n_shared_experts, cfg.attention_block, cfg.rope_dims) = (1, 8, 8);
        }
        let w = random_model(&cfg, DType::F16, 31);
        let m = GpuModel::upload(gpu(), &w).unwrap();
        let v = cfg.vocab_size;
        let toks: Vec<u32> = (0..21).map(|i| (i * 37 + 5) % 90).collect();
        // The CPU twin likewise: the same logits, bit for bit, whatever rows its head skips.
        let full = unmask::cpu::forward::forward(&w, &toks);
        for out in [0..21, 5..11, 20..21] {
            let part = unmask::cpu::forward::forward_part(&w, &toks, 0..21, out.clone(), &mut Default::default());
            assert!(part == full[out.start * v..out.end * v], "{family}: CPU twin, logits of rows {out:?}");
        }
        for kernels in [KernelVariant::Tiled, KernelVariant::CpuLanes] {
            let mut s = common::session_in(&m, toks.len(), kernels);
            let what = |r: &std::ops::Range<usize>, want: &std::ops::Range<usize>| {
                format!("{family}, shift {shift}, {}, rows {r:?}, positions {want:?}", kernels.name())
            };
            for (rows, want) in [(0..21, 0..21), (0..21, 5..11), (0..21, 0..3), (0..21, 17..21), (4..21, 6..9), (4..21, 4..5), (9..16, 9..16)] {
                // A full pass first, so that row-range passes see the same K/V in both runs.
                pollster::block_on(s.forward(&toks, ARGMAX, false)).unwrap();
                let all = pollster::block_on(s.forward_rows(&toks, rows.clone(), ARGMAX, true)).unwrap();
                let part = pollster::block_on(s.forward_part(&toks, rows.clone(), want.clone(), ARGMAX, true)).unwrap();
                let (a, b) = (want.start - rows.start, want.end - rows.start);
                let name = what(&rows, &want);
                assert_eq!(part.choices.len(), want.len(), "{name}");
                let tokens = |c: &[unmask::choice::Choice]| c.iter().map(|c| c.token).collect::<Vec<_>>();
                assert_eq!(tokens(&part.choices), tokens(&all.choices[a..b]), "{name}");
                assert_close(&name, &part.logits.unwrap(), &all.logits.unwrap()[a * v..b * v], 1e-5);
            }
            // Classifier-free guidance's head, likewise (the unconditional canvas: the first 6 masked).
            let uncond: Vec<u32> = toks.iter().enumerate().map(|(i, &t)| if i < 6 { cfg.mask_token_id } else { t }).collect();
            let guided = pollster::block_on(s.forward_guided(&toks, &uncond, 1.5, 0..21, ARGMAX)).unwrap();
            for want in [6..13, 0..2, 20..21] {
                let part = pollster::block_on(s.forward_guided(&toks, &uncond, 1.5, want.clone(), ARGMAX)).unwrap();
                let name = format!("{}, guided", what(&(0..21), &want));
                assert_eq!(part.iter().map(|c| c.token).collect::<Vec<_>>(), guided[want.clone()].iter().map(|c| c.token).collect::<Vec<_>>(), "{name}");
                assert_close(&name, &part.iter().map(|c| c.prob).collect::<Vec<_>>(), &guided[want].iter().map(|c| c.prob).collect::<Vec<_>>(), 1e-5);
            }
            let e = pollster::block_on(s.forward_part(&toks, 4..12, 3..6, ARGMAX, false)).err().expect("positions outside the rows").to_string();
            assert!(e.contains("not inside the rows"), "{e}");
            assert!(pollster::block_on(s.forward_part(&toks, 4..12, 6..6, ARGMAX, false)).is_err(), "no positions to predict");
        }
    }
}

#[test]
fn a_pass_counts_the_multiply_adds_its_rows_ask() {
    // What `unmask bench` divides its GFLOP/s by: the matmuls and attention of the rows a pass
    // computes, the last layer after K/V and the LM head for the predicted rows alone, experts
    // at the experts used per position, and under block-causal attention only the keys a query
    // sees; derived here from the config, apart from the graph the session counts from.
    for family in ["llada", "llada-moe", "llada2"] {
        let mut cfg = tiny_config(3, 4, 2, 16, 48, 90);
        cfg.family = family.into();
        if family != "llada" {
            (cfg.n_experts, cfg.n_experts_used, cfg.expert_hidden_size) = (8, 3, 24);
        }
        if family == "llada2" {
            (cfg.n_shared_experts, cfg.attention_block, cfg.rope_dims) = (2, 8, 8);
        }
        let m = GpuModel::upload(gpu(), &random_model(&cfg, DType::F16, 5)).unwrap();
        let (d, q, kv) = (cfg.d_model, cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim);
        // After Q/K/V, per row: the output projection and the feed-forward.
        let ffn = match cfg.n_experts {
            0 => 3 * cfg.mlp_hidden_size * d,
            e => e * d + 3 * cfg.n_experts_used * cfg.expert_hidden_size * d + 3 * cfg.n_shared_experts * cfg.expert_hidden_size * d,
        };
        let keys = |p: usize, len: usize| match cfg.attention_block {
            0 => len,
            b => len.min(p - p % b + b),
        };
        let expected = |len: usize, rows: std::ops::Range<usize>, out: std::ops::Range<usize>| -> u64 {
            let mut sum = 0;
            for layer in 0..cfg.n_layers {
                let after = if layer + 1 == cfg.n_layers { out.clone() } else { rows.clone() };
                sum += rows.len() * (q + 2 * kv) * d + after.len() * (d * q + ffn);
                sum += after.map(|p| 2 * keys(p, len) * q).sum::<usize>();
            }
            (sum + out.len() * cfg.vocab_size * d) as u64
        };
        let toks: Vec<u32> = (0..21).map(|i| (i * 37 + 5) % 89).collect();
        let mut s = common::session_in(&m, toks.len(), m.gpu.default_kernels());
        for (rows, want) in [(0..21, 0..21), (0..21, 5..11), (4..21, 6..9), (9..16, 9..16)] {
            let before = s.multiply_adds_done();
            pollster::block_on(s.forward_part(&toks, rows.clone(), want.clone(), ARGMAX, false)).unwrap();
            assert_eq!(s.multiply_adds_done() - before, expected(21, rows.clone(), want.clone()), "{family}, rows {rows:?}, positions {want:?}");
        }
        // Guidance: two bodies over the whole canvas and two LM heads for the positions.
        let uncond = vec![cfg.mask_token_id; 21];
        let before = s.multiply_adds_done();
        pollster::block_on(s.forward_guided(&toks, &uncond, 1.5, 3..7, ARGMAX)).unwrap();
        let body = expected(21, 0..21, 3..7) - (4 * cfg.vocab_size * d) as u64;
        assert_eq!(s.multiply_adds_done() - before, 2 * body + (8 * cfg.vocab_size * d) as u64, "{family}, guided");
    }
}
