//! The shipped demo model (`models/`): its folder (F16 safetensors + tokenizer.json) and its
//! Q4_0 GGUF (tokenizer embedded) load, agree with each other, and a fixed-seed generation on
//! the GPU matches the one stored in `models/demo/expected_generation.json`, which
//! `models/build.sh` produced with the CPU twin (`unmask generate --cpu`).

mod common;
use common::{assert_close, gpu, session};
use std::path::Path;
use unmask::choice::Noise;
use unmask::engine::GpuModel;
use unmask::model::files::load_path;
use unmask::model::{DType, ModelConfig, Quant, Role};
use unmask::request::Request;
use unmask::sampler::{self, SamplerOptions};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn logits(m: &GpuModel, toks: &[u32]) -> Vec<f32> {
    pollster::block_on(session(m, toks.len()).forward(toks, Noise::GREEDY, true)).unwrap().logits.unwrap()
}

#[test]
fn folder_and_gguf_agree() {
    let dir = load_path(&root().join("models/demo")).unwrap();
    let gguf = load_path(&root().join("models/demo-q4_0.gguf")).unwrap();
    // The same config, but for the chat template `unmask convert` stored in the GGUF.
    assert!(gguf.weights.config.chat_template.is_some());
    assert_eq!(dir.weights.config, ModelConfig { chat_template: None, ..gguf.weights.config.clone() });
    assert_eq!(gguf.weights.layer(0, Role::Down).dtype, DType::Q4_0);
    // `unmask convert --quant q4_0` keeps the embedding and the LM head in Q8_0.
    assert_eq!((gguf.weights.tensors[Role::Embed].dtype, gguf.weights.tensors[Role::LmHead].dtype), (DType::Q8_0, DType::Q8_0));
    // The GGUF's embedded tokenizer encodes like tokenizer.json.
    let (ta, tb) = (dir.tokenizer.as_ref().unwrap(), gguf.tokenizer.as_ref().unwrap());
    let text =
        unmask::sampler::text::chat_prompt(&dir.weights.config.family().chat, "Natalia sold 48 clips in April and half as many in May. How many in all?");
    let toks = ta.encode(&text).unwrap();
    assert_eq!(toks, tb.encode(&text).unwrap());
    assert_eq!(ta.decode(&toks, false).unwrap(), tb.decode(&toks, false).unwrap());
    // Same weights → same logits: the folder converted in memory as `unmask convert` does vs
    // the Q4_0 file (whose q/k rows are llama.cpp-permuted and run with interleaved RoPE).
    let mut q = dir.weights.clone();
    q.convert(Quant::new(DType::Q4_0)).unwrap();
    let a = logits(&GpuModel::upload(gpu(), &q).unwrap(), &toks);
    let b = logits(&GpuModel::upload(gpu(), &gguf.weights).unwrap(), &toks);
    assert_close("Q4_0 folder vs Q4_0 GGUF", &b, &a, 1e-3);
    // F16 vs Q4_0: within quantization, on the rows the sampler reads: the masked positions of
    // a canvas in mid-denoising (the prompt, then a worked answer with every other token
    // masked). The logits of unmasked (prompt) positions are never trained nor read; the
    // GPU-trained model's are chaotic under any 4-bit noise (cosine with F16 down to 0.82; 1.000
    // in Q8_0), so an earlier check of every prompt row's cosine (≥ 0.95) measured noise.
    // Measured on this canvas (lavapipe): the shipped file 0.050 nats, pure Q4_0 (`convert
    // --pure`) 0.127, the shipped file with layers 2 and 3 swapped 0.264 (all three keep the
    // confident rows' top tokens, so the KL bar is what tells them apart).
    let v = dir.weights.config.vocab_size;
    let answer = ta.encode("In May she sold 48 / 2 = 24 clips. Altogether she sold 48 + 24 = 72 clips. The answer is 72.").unwrap();
    let mut canvas = toks.clone();
    canvas.extend(answer.iter().enumerate().map(|(i, &t)| if i % 2 == 0 { dir.weights.config.mask_token_id } else { t }));
    let masked: Vec<usize> = (toks.len()..canvas.len()).filter(|&r| canvas[r] == dir.weights.config.mask_token_id).collect();
    let f = logits(&GpuModel::upload(gpu(), &dir.weights).unwrap(), &canvas);
    let b = logits(&GpuModel::upload(gpu(), &gguf.weights).unwrap(), &canvas);
    let softmax = |z: &[f32]| {
        let m = z.iter().cloned().fold(f32::MIN, f32::max);
        let e: Vec<f64> = z.iter().map(|x| ((x - m) as f64).exp()).collect();
        let t: f64 = e.iter().sum();
        e.into_iter().map(|x| x / t).collect::<Vec<f64>>()
    };
    let greedy = |row: &[f32]| unmask::cpu::ops::select(row, 0, Noise::GREEDY);
    let (mut kl_sum, mut confident) = (0.0, 0);
    for &r in &masked {
        let (rf, rq) = (&f[r * v..(r + 1) * v], &b[r * v..(r + 1) * v]);
        let (pf, pq) = (softmax(rf), softmax(rq));
        kl_sum += pf.iter().zip(&pq).filter(|(a, _)| **a > 0.0).map(|(a, b)| a * (a.ln() - b.max(1e-300).ln())).sum::<f64>();
        let (cf, cq) = (greedy(rf), greedy(rq));
        if cf.prob >= 0.5 {
            confident += 1;
            assert_eq!(cq.token, cf.token, "masked row {r}: F16 is sure of token {} (p = {:.2}), Q4_0 picks {}", cf.token, cf.prob, cq.token);
        }
    }
    let kl = kl_sum / masked.len() as f64;
    eprintln!("F16 vs Q4_0 on {} masked rows: mean KL {kl:.3} nats, {confident} confident rows, same top token on each", masked.len());
    assert!(kl <= 0.1, "F16 vs Q4_0: mean KL divergence {kl:.3} nats on the masked rows");
    assert!(2 * confident >= masked.len(), "only {confident} of {} masked rows are confident in F16: the check would prove little", masked.len());
}

#[test]
fn fixed_seed_generation_matches_the_cpu_twin_expectation() {
    let expected: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(root().join("models/demo/expected_generation.json")).unwrap()).unwrap();
    let req: Request = serde_json::from_value(expected["settings"]["request"].clone()).unwrap();
    let m = load_path(&root().join("models/demo-q4_0.gguf")).unwrap();
    let gm = GpuModel::upload(gpu(), &m.weights).unwrap();
    let p = req.prepare(&m.weights.config, m.tokenizer.as_ref()).unwrap();
    let o: SamplerOptions = serde_json::from_value(expected["settings"]["options"].clone()).unwrap();
    assert_eq!(o, p.options);
    let mut model = session(&gm, p.canvas.tokens.len());
    let g = pollster::block_on(sampler::run(&mut model, p.canvas, &p.options, &mut |_| true)).unwrap();
    let want: Vec<u32> = expected["tokens"].as_array().unwrap().iter().map(|t| t.as_u64().unwrap() as u32).collect();
    assert_eq!(&g.tokens[g.gen_start..], &want[..]);
    let text = m.tokenizer.as_ref().unwrap().decode(&want, false).unwrap();
    assert_eq!(text, expected["text"].as_str().unwrap());
}

/// Correct answers (and the responses) of the first `per_task` items of each task with `cache`.
fn eval_with(gm: &GpuModel, m: &unmask::model::files::LoadedModel, cache: unmask::sampler::CacheMode, per_task: usize) -> (usize, Vec<String>) {
    let tok = m.tokenizer.as_ref().unwrap();
    let (mut correct, mut responses) = (0, Vec::new());
    // One session for all items, as `unmask eval` runs them.
    let mut model = session(gm, m.weights.config.max_sequence_length);
    for task in ["arithmetic", "infill", "reversal_forward", "reversal_backward"] {
        let path = root().join(format!("models/demo/eval/{task}.jsonl"));
        let items = unmask::eval::parse_items(task, &std::fs::read_to_string(path).unwrap()).unwrap();
        for item in items.iter().take(per_task) {
            // The model card's evaluation settings.
            let options = SamplerOptions { gen_length: 48, block_length: 16, steps: 24, cache, ..Default::default() };
            let (r, _) = pollster::block_on(unmask::eval::respond(&mut model, &m.weights.config, tok, item, &options)).unwrap();
            correct += unmask::eval::is_correct(item, &r) as usize;
            responses.push(r);
        }
    }
    (correct, responses)
}

/// Where the no-cache eval of the first 10 items per task is kept (responses and score).
fn baseline_path() -> std::path::PathBuf {
    root().join("models/demo/expected_eval_nocache.json")
}

/// Writes `baseline_path()`: the reference (no cache) responses on the GPU. Run when the demo
/// model changes: `cargo test --test demo_model -- --ignored write_the_no_cache_eval_baseline`.
#[test]
#[ignore]
fn write_the_no_cache_eval_baseline() {
    let m = load_path(&root().join("models/demo-q4_0.gguf")).unwrap();
    let gm = GpuModel::upload(gpu(), &m.weights).unwrap();
    let (correct, responses) = eval_with(&gm, &m, unmask::sampler::CacheMode::None, 10);
    let v = serde_json::json!({"per_task": 10, "cache": "none", "correct": correct, "responses": responses});
    std::fs::write(baseline_path(), serde_json::to_string_pretty(&v).unwrap() + "\n").unwrap();
}

#[test]
fn caching_keeps_the_eval_accuracy() {
    // Issue 6's bound: a cache may cost at most 2 points of eval accuracy. On these 40 items
    // (10 per task, shipped Q4_0 model) that is a difference of at most one correct answer.
    // Checked for the default cache (dual, the fastest) against the no-cache run stored in
    // models/demo/expected_eval_nocache.json (written by the ignored test above); the first item
    // of each task is run again without a cache here, so the stored run must still be what this
    // engine gives. On the 100 items of BENCHMARKS.md's run every cache mode stayed within 2
    // points of none.
    use unmask::sampler::CacheMode;
    let stored: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(baseline_path()).unwrap()).unwrap();
    let base = stored["correct"].as_u64().unwrap() as usize;
    let base_r: Vec<String> = stored["responses"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_string()).collect();
    assert_eq!(base_r.len(), 40);
    let m = load_path(&root().join("models/demo-q4_0.gguf")).unwrap();
    let gm = GpuModel::upload(gpu(), &m.weights).unwrap();
    let (_, again) = eval_with(&gm, &m, CacheMode::None, 1);
    let firsts: Vec<String> = (0..4).map(|t| base_r[t * 10].clone()).collect();
    assert_eq!(again, firsts, "the stored no-cache eval is stale: rerun write_the_no_cache_eval_baseline");
    let cache = CacheMode::DEFAULT;
    let (c, r) = eval_with(&gm, &m, cache, 10);
    let same = r.iter().zip(&base_r).filter(|(a, b)| a == b).count();
    eprintln!("{cache:?}: {c}/40 correct (no cache: {base}/40), {same}/40 responses identical");
    assert!(c.abs_diff(base) <= 1, "{cache:?}: {c}/40 correct vs {base}/40 without a cache");
}
