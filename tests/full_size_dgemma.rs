//! DiffusionGemma-26B-A4B-*shaped* models (the published config, llama.cpp's tensor names and
//! shapes; synthetic weights) as sparse GGUF files: the whole model is indexed and planned
//! (Q4_0 matrices, Q8_0 embedding), then a model of full width with 2 of its 30 layers (one
//! sliding, one full; `UNMASK_DG_LAYERS=30` for all of them on a GPU machine) is streamed onto the adapter and runs the encoder over a prompt and one
//! decoder step of a 256-token canvas, with and without self-conditioning, then both again warm
//! as a generation's later steps run (choices on the GPU). Slow (minutes of
//! CPU on lavapipe): ignored by default; run it with
//!     cargo test --release --test full_size_dgemma -- --ignored --nocapture
//! The weights make the answer checkable: every block matrix is zero and the layer scalars 1
//! (so each layer passes its input through), and the LM head is the embedding, so every canvas
//! position's argmax is its own token. The routers alone are random, so that a canvas's tokens
//! spread over the experts as a real model's do: with zero routers every token took the same
//! top-k (all logits tie), and a step read a sixteenth of the expert weights it reads in use.

use std::path::Path;
use std::sync::Arc;
use unmask::cpu::ops;
use unmask::dgemma::config::DgConfig;
use unmask::dgemma::gguf_write::{metadata, rope_freqs, tensors};
use unmask::dgemma::gpu::DgGpuModel;
use unmask::dgemma::gpu_session::DgSession;
use unmask::dgemma::index::{DgIndex, Lt, T};
use unmask::dgemma::plan::plan;
use unmask::dgemma::sampler::{DgModel, DgSettings};
use unmask::engine::human;
use unmask::gpu::Gpu;
use unmask::model::config::Routing;
use unmask::model::gguf_write::GgufWriter;
use unmask::model::source::FileSource;
use unmask::model::{DType, HostTensor};
use unmask::synth::Rng;

fn published() -> DgConfig {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/configs/diffusion-gemma-26b-a4b.json");
    DgConfig::from_json("diffusion-gemma-26b-a4b.json", &std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The model as a sparse GGUF: zero matrices (Q4_0) but random routers (F32, `router`), a
/// random embedding (Q8_0; with `embed`: row t is `embed_row`), unit norms, layer scalars and
/// router scales, the real `rope_freqs`.
fn write(c: &DgConfig, path: &Path, embed: bool) {
    let mut w = GgufWriter::default();
    for (k, v) in metadata(c, &DgSettings::default()) {
        w.meta(&k, v);
    }
    let f = rope_freqs(c);
    w.tensor("rope_freqs.weight", vec![f.len() as u64], HostTensor::from_f32(1, f.len(), &f));
    for (t, name, dims) in tensors(c) {
        let n: u64 = dims.iter().product();
        let vector = t.is_vector(c) || matches!(t, T::L(_, Lt::ScalarDecoder | Lt::ScalarEncoder));
        match t {
            T::Embed if embed => {
                let values: Vec<f32> = (0..c.vocab as u32).flat_map(|t| embed_row(c, t)).collect();
                w.tensor(&name, dims, HostTensor::encode(DType::Q8_0, c.vocab, c.hidden, &values).unwrap())
            }
            T::Embed => w.zeros(&name, dims, DType::Q8_0),
            _ if vector && !matches!(t, T::L(_, Lt::ExpertScale)) => w.tensor(&name, dims, HostTensor::from_f32(1, n as usize, &vec![1.0; n as usize])),
            _ if vector => w.zeros(&name, dims, DType::F32),
            T::L(l, Lt::Router) => w.tensor(&name, dims, HostTensor::from_f32(c.experts, c.hidden, &router(c, l))),
            _ => w.zeros(&name, dims, DType::Q4_0),
        };
    }
    w.write_sparse(path).unwrap();
}

/// Row t of the random embedding (before its Q8_0 rounding): draws t·hidden .. of one sequence.
fn embed_row(c: &DgConfig, t: u32) -> Vec<f32> {
    let mut rng = Rng::new(5);
    rng.skip(t as u64 * c.hidden as u64);
    (0..c.hidden).map(|_| rng.unit() * 2.0 - 1.0).collect()
}

/// Layer l's router: experts × hidden, uniform in [-1, 1).
fn router(c: &DgConfig, l: usize) -> Vec<f32> {
    let mut rng = Rng::new(1000 + l as u64);
    (0..c.experts * c.hidden).map(|_| rng.sym()).collect()
}

/// How many experts layer 0 sends `tokens` to (the CPU twin's routing of router · x, x the
/// token's embedding: the layer's blocks add nothing to it, and its norms, the embedding scale
/// and the router's unit scale only multiply each token's logits by a positive number, which
/// keeps the ranking).
fn experts_used(c: &DgConfig, tokens: &[u32]) -> usize {
    let r = router(c, 0);
    let logits: Vec<f32> = tokens
        .iter()
        .flat_map(|&t| {
            let x = embed_row(c, t);
            r.chunks(c.hidden).map(move |w| w.iter().zip(&x).map(|(a, b)| a * b).sum::<f32>()).collect::<Vec<f32>>()
        })
        .collect();
    ops::moe_route(&logits, c.experts, c.top_k, true, Routing::SOFTMAX, None).lists.iter().filter(|l| !l.is_empty()).count()
}

fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM")).map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_string() + " kB"))
        .unwrap_or_default()
}

#[test]
#[ignore = "slow: minutes of CPU and ~2 GB on lavapipe; run by hand (see the file's comment)"]
fn diffusion_gemma_26b_shaped_gguf_plans_loads_and_steps() {
    let c = published();
    let tmp = tempfile::tempdir_in(std::env::var("UNMASK_BIG_TMP").unwrap_or_else(|_| std::env::temp_dir().display().to_string())).unwrap();
    let gpu = Arc::new(pollster::block_on(Gpu::new()).unwrap());
    // The whole model: indexed from the headers, planned for a prompt and two canvases.
    let full = tmp.path().join("full.gguf");
    write(&c, &full, false);
    let src = FileSource::open(std::slice::from_ref(&full)).unwrap();
    let index = pollster::block_on(DgIndex::read(&src, None)).unwrap();
    assert_eq!(index.config, c, "the GGUF's metadata and rope_freqs give back the published config");
    let billions = index.params() as f64 / 1e9;
    println!("DiffusionGemma-26B-A4B shape: {billions:.2} B text parameters, {} in this file", human(index.file_bytes()));
    assert!((billions - 25.25).abs() < 0.1, "{billions:.2} B");
    let p = plan(&index, Some(DType::Q4_0), 768, gpu.plan_limits(), unmask::gpu::kernels::KvType::F32).unwrap();
    println!("  plan, Q4_0, 768 positions: {}", p.summary());
    assert!(p.weight_bytes > 13_000_000_000 && p.weight_bytes < 17_000_000_000, "{}", human(p.weight_bytes));
    drop(src);
    std::fs::remove_file(&full).unwrap();

    // Full width, layers 0 (sliding) and 5 (full) (`UNMASK_DG_LAYERS=N`: N layers, the last a
    // full one; 30 on a GPU machine with the memory): streamed, then encoder and decoder passes.
    let n = std::env::var("UNMASK_DG_LAYERS").ok().and_then(|v| v.parse::<usize>().ok()).unwrap_or(2).clamp(2, c.layers.len());
    let mut small = c.clone();
    small.layers = c.layers[..n - 1].to_vec();
    small.layers.push(c.layers[5]);
    let path = tmp.path().join(format!("{n}-layers.gguf"));
    let t0 = std::time::Instant::now();
    write(&small, &path, true);
    println!("  wrote the {n}-layer model in {:.1} s", t0.elapsed().as_secs_f64());
    let src = FileSource::open(std::slice::from_ref(&path)).unwrap();
    let index = pollster::block_on(DgIndex::read(&src, None)).unwrap();
    // K/V as the adapter stores them by default (f16 on GPUs with shader-f16).
    let p = plan(&index, None, 512, gpu.plan_limits(), gpu.default_kv()).unwrap();
    p.check(gpu.plan_limits(), None).unwrap();
    let t0 = std::time::Instant::now();
    let mut updates = 0;
    let before = gpu.bytes_created();
    let m = pollster::block_on(DgGpuModel::load(gpu.clone(), &index, &src, None, &mut |_, _| updates += 1)).unwrap();
    assert_eq!(gpu.bytes_created() - before, p.weight_bytes);
    println!("  loaded {} in {:.1} s ({updates} progress updates); peak RSS {}", human(p.weight_bytes), t0.elapsed().as_secs_f64(), peak_rss());
    let mut s = DgSession::new(&m, 512, gpu.default_kv()).unwrap();
    let mut rng = Rng::new(9);
    let prompt: Vec<u32> = (0..40).map(|_| rng.below(c.vocab as u32)).collect();
    let t0 = std::time::Instant::now();
    pollster::block_on(s.encode(&prompt)).unwrap();
    println!("  encoder over a {}-token prompt: {:.1} s", prompt.len(), t0.elapsed().as_secs_f64());
    let canvas: Vec<u32> = (0..c.canvas_length).map(|_| rng.below(c.vocab as u32)).collect();
    // A step's cost depends on how many experts its tokens reach (each one's weights are read).
    let used = experts_used(&c, &canvas);
    println!("  layer 0 routes the {}-token canvas to {used} of {} experts (top {})", canvas.len(), c.experts, c.top_k);
    assert!(used > c.experts / 2, "random routers spread the tokens: {used} experts");
    for sc in [None, Some(0.8)] {
        let t0 = std::time::Instant::now();
        let logits = pollster::block_on(s.decode(&canvas, sc)).unwrap();
        println!(
            "  decoder step over a {}-token canvas (self-conditioning {sc:?}): {:.1} s; peak RSS {}",
            canvas.len(),
            t0.elapsed().as_secs_f64(),
            peak_rss()
        );
        let argmax: Vec<u32> =
            logits.chunks(c.vocab).map(|r| r.iter().enumerate().fold((0, f32::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b }).0 as u32).collect();
        assert_eq!(argmax, canvas, "layers that pass their input through and the tied head: each position's own token");
    }
    // The times above are each pass's first (its pipelines compiled, its launches bound) and
    // read back every logit (268 MB); a generation's steps after the first choose on the GPU
    // and read back three words a position: those, warm.
    let u: Vec<f32> = (0..canvas.len()).map(|_| rng.unit()).collect();
    for sc in [None, Some(0.8)] {
        let choose = |s: &mut DgSession| pollster::block_on(s.choose(&canvas, sc, 0.8, &u)).unwrap().expect("the GPU session chooses on the GPU");
        choose(&mut s);
        let (t0, madds) = (std::time::Instant::now(), s.multiply_adds_done());
        let chosen = choose(&mut s);
        let secs = t0.elapsed().as_secs_f64();
        // What the step multiplied (`DgSession::multiply_adds_done`) over its time.
        let gflops = 2.0 * (s.multiply_adds_done() - madds) as f64 / secs / 1e9;
        println!("  decoder step, warm, choices on the GPU (self-conditioning {sc:?}): {secs:.3} s, {gflops:.1} GFLOP/s achieved");
        assert_eq!(chosen.iter().map(|c| c.0).collect::<Vec<u32>>(), canvas, "each position's own token");
    }
    // Where a self-conditioned step's GPU time goes (each kernel in its own compute pass, timed
    // by timestamps where the adapter has them), largest first.
    if let Some(mut kinds) = pollster::block_on(s.profile(&canvas, Some(0.8))).unwrap() {
        kinds.sort_by(|a, b| b.1.total_cmp(&a.1));
        let total: f64 = kinds.iter().map(|k| k.1).sum();
        let top: Vec<String> = kinds.iter().take(8).map(|(k, ms)| format!("{k} {ms:.1}")).collect();
        println!("  GPU ms of a self-conditioned decoder step ({total:.1} in all): {}", top.join(", "));
    }
}
