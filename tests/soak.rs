//! A soak run natively: many generations in one process on the bundled demo model with varied
//! settings (cache modes, CFG, threshold, temperature, infill, a cancel mid-run) and the model
//! loaded again every 50 (every n/2 in shorter runs), checking that resident memory and the GPU allocator's total do not
//! grow and that the same request with the same seed gives the same tokens all along.
//! `UNMASK_SOAK=500 cargo test --release --test soak -- --nocapture` is the long run whose
//! figures are in docs/reliability.md; CI runs 30.

use std::collections::HashMap;
use std::sync::Arc;
use unmask::gpu::Gpu;
use unmask::load::{load_on, session_config, OnGpu};
use unmask::request::Request;
use unmask::sampler::{self, CacheMode, SamplerOptions};

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()).unwrap_or(0) * 4096
}

fn gpu_bytes(gpu: &Gpu) -> u64 {
    gpu.device.generate_allocator_report().map_or(0, |r| r.total_allocated_bytes)
}

/// The `i`-th request of the soak: a settings combination (cycling with a period coprime to
/// the seeds' and cancels') and its seed.
fn request(i: usize) -> (String, Request, Option<usize>) {
    let caches = [CacheMode::None, CacheMode::Prefix, CacheMode::Dual];
    let cache = caches[i % 3];
    let cfg = if i % 4 == 1 { 1.5 } else { 0.0 };
    let threshold = (i % 5 == 2).then_some(0.9);
    let temperature = if i.is_multiple_of(2) { 0.0 } else { 0.8 };
    let seed = (i % 3) as u64;
    let options = SamplerOptions { gen_length: 32, steps: 16, block_length: 16, cache, cfg_scale: cfg, threshold, temperature, seed, ..Default::default() };
    let cancel = (i % 11 == 6).then_some(3);
    let key = format!("{cache:?} cfg {cfg} thr {threshold:?} T {temperature} seed {seed} infill {} cancel {cancel:?}", i % 7 == 3);
    let req = if i % 7 == 3 {
        Request { infill: Some("Mia has [MASK] apples and buys 30 more. The answer is <mask:2>.".into()), span_length: Some(3), options, ..Default::default() }
    } else {
        Request { prompt: Some("Mia has 12 apples and buys 30 more. How many apples does she have now?".into()), chat: true, options, ..Default::default() }
    };
    (key, req, cancel)
}

#[test]
fn soak_generations_stay_stable() {
    let n: usize = std::env::var("UNMASK_SOAK").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let demo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/demo-q4_0.gguf");
    let gpu = Arc::new(pollster::block_on(Gpu::new()).unwrap());
    let (kernels, kv) = (gpu.default_kernels(), gpu.default_kv());
    let plan_opts = SamplerOptions { cfg_scale: 1.0, ..Default::default() };
    let load = || -> OnGpu { load_on(gpu.clone(), &demo, None, |_| session_config(128, &plan_opts, kernels, kv), None, &mut |_| {}, &mut |_, _| {}).unwrap() };
    let mut model = Some(load());
    let mut seen: HashMap<String, Vec<u32>> = HashMap::new();
    let (mut repeats, mut cancels, mut reloads) = (0, 0, 0);
    let mut start = None;
    let t0 = std::time::Instant::now();
    let reload_every = (n / 2).clamp(1, 50);
    for i in 0..n {
        if i > 0 && i.is_multiple_of(reload_every) {
            drop(model.take()); // the old model's buffers go before the new ones are made
            model = Some(load());
            reloads += 1;
        }
        let m = model.as_ref().unwrap();
        let (key, req, cancel) = request(i);
        let p = req.prepare(&m.config, m.tokenizer.as_ref()).unwrap_or_else(|e| panic!("{key}: {e}"));
        let mut session = m.session(p.canvas.tokens.len(), &p.options, kernels, kv).unwrap();
        let g = pollster::block_on(sampler::run(&mut session, p.canvas, &p.options, &mut |e| cancel.is_none_or(|c| e.step < c))).unwrap();
        drop(session);
        if let Some(c) = cancel {
            assert!(g.cancelled && g.steps == c, "{key}: cancelled at {} of {c}", g.steps);
            cancels += 1;
        }
        match seen.get(&key) {
            Some(t) => {
                assert_eq!(t, &g.tokens, "request {i} ({key}) gave other tokens than the first time");
                repeats += 1;
            }
            None => {
                seen.insert(key, g.tokens);
            }
        }
        // The baseline: after the first round of every kind of session.
        if i == 11.min(n - 1) {
            start = Some((rss_bytes(), gpu_bytes(&gpu)));
        }
    }
    let (rss0, gpu0) = start.unwrap();
    let (rss1, gpu1) = (rss_bytes(), gpu_bytes(&gpu));
    eprintln!(
        "soak: {n} generations ({} distinct settings, {repeats} repeats equal, {cancels} cancelled, {reloads} reloads) in {:.0} s; RSS {:.1} → {:.1} MB; GPU allocator {:.1} → {:.1} MB",
        seen.len(),
        t0.elapsed().as_secs_f64(),
        rss0 as f64 / 1e6,
        rss1 as f64 / 1e6,
        gpu0 as f64 / 1e6,
        gpu1 as f64 / 1e6
    );
    assert!(repeats > 0 && cancels > 0 && reloads > 0);
    assert!(rss1 <= rss0 + (32 << 20), "resident memory grew from {rss0} to {rss1} bytes");
    assert!(gpu1 <= gpu0 + (8 << 20), "GPU allocations grew from {gpu0} to {gpu1} bytes");
}
