//! The sampler driving the real GPU engine (lavapipe here) on random tiny models: invariants of
//! every step, and the same generation as the sampler driving the CPU twin.

mod common;
use common::{gpu, session, session_in};
use unmask::choice::{Choice, Noise};
use unmask::cpu::forward::CpuModel;
use unmask::engine::GpuModel;
use unmask::gpu::kernels::KernelVariant;
use unmask::model::DType;
use unmask::sampler::{self, Canvas, Remasking, SamplerOptions, StepEvent};
use unmask::synth::{random_model, tiny_config};

fn run<D: sampler::Denoiser>(mut m: D, canvas: Canvas, o: &SamplerOptions) -> (sampler::Generation, Vec<StepEvent>) {
    let mut ev = Vec::new();
    let g = pollster::block_on(sampler::run(&mut m, canvas, o, &mut |e| {
        ev.push(e.clone());
        true
    }))
    .unwrap();
    (g, ev)
}

#[test]
fn gpu_generation_keeps_the_invariants_and_equals_the_cpu_twin() {
    let cfg = tiny_config(2, 4, 2, 16, 64, 120);
    let w = random_model(&cfg, DType::F16, 21);
    let gm = GpuModel::upload(gpu(), &w).unwrap();
    let prompt = [5u32, 17, 33, 2];
    for o in [
        SamplerOptions { steps: 8, gen_length: 16, block_length: 8, early_stop: false, ..Default::default() },
        SamplerOptions { steps: 16, gen_length: 16, block_length: 4, remasking: Remasking::Margin, early_stop: false, ..Default::default() },
        SamplerOptions { steps: 8, gen_length: 16, block_length: 16, temperature: 0.8, seed: 9, early_stop: false, ..Default::default() },
        SamplerOptions { steps: 16, gen_length: 16, block_length: 8, threshold: Some(0.2), early_stop: false, ..Default::default() },
    ] {
        let canvas = Canvas::after_prompt(&prompt, o.gen_length, cfg.mask_token_id, cfg.eos_token_id);
        let (g, ev) = run(session(&gm, canvas.tokens.len()), canvas.clone(), &o);
        // Every mask filled, the prompt untouched, each position committed exactly once, and
        // the events rebuild the final canvas.
        assert!(!g.tokens.contains(&cfg.mask_token_id));
        assert_eq!(&g.tokens[..4], &prompt);
        let mut rebuilt = canvas.tokens.clone();
        for e in &ev {
            for c in &e.committed {
                assert_eq!(rebuilt[c.pos], cfg.mask_token_id, "position {} committed twice", c.pos);
                assert!((c.pos - 4) / o.block_length == e.block, "committed outside its block");
                rebuilt[c.pos] = c.token;
            }
        }
        assert_eq!(rebuilt, g.tokens);
        if o.threshold.is_none() {
            assert_eq!(g.steps, o.steps, "fixed schedule runs exactly --steps steps");
            assert_eq!(ev.iter().map(|e| e.committed.len()).sum::<usize>(), o.gen_length);
        }
        // The CPU twin, driven by the same sampler, writes the same answer.
        let (cpu, _) = run(CpuModel::new(&w), canvas, &o);
        assert_eq!(cpu.tokens, g.tokens, "GPU vs CPU twin generation with {o:?}");
    }
}

#[test]
fn cfg_in_row_chunks_with_temperature_equals_the_cpu_twin() {
    // Bindings capped at 2 KB: the LM head (97 × 16) is split and the guided head mixes and
    // selects a few rows at a time (97 logits · 4 B: 5 rows per chunk); Gumbel noise on. Both
    // layouts (the tiled one with its norms folded into the matmuls).
    let cfg = tiny_config(1, 2, 2, 8, 32, 97);
    let w = random_model(&cfg, DType::F32, 23);
    let g = common::own_gpu();
    g.cap_bindings(2048);
    let gm = GpuModel::upload(g, &w).unwrap();
    for scale in [0.5, 2.0] {
        let o =
            SamplerOptions { steps: 6, gen_length: 12, block_length: 6, cfg_scale: scale, temperature: 0.8, seed: 5, early_stop: false, ..Default::default() };
        let canvas = Canvas::after_prompt(&[3, 4, 5, 6], 12, cfg.mask_token_id, None);
        let (c, _) = run(CpuModel::new(&w), canvas.clone(), &o);
        for kernels in [KernelVariant::Tiled, KernelVariant::CpuLanes] {
            let (gg, _) = run(session_in(&gm, 16, kernels), canvas.clone(), &o);
            assert_eq!(gg.tokens, c.tokens, "scale {scale}, {} layout", kernels.name());
        }
    }
}

#[test]
fn cfg_on_the_gpu_equals_the_cpu_twin() {
    let cfg = tiny_config(1, 2, 2, 16, 48, 80);
    let w = random_model(&cfg, DType::F32, 22);
    let gm = GpuModel::upload(gpu(), &w).unwrap();
    let o = SamplerOptions { steps: 4, gen_length: 8, block_length: 8, cfg_scale: 1.5, early_stop: false, ..Default::default() };
    let canvas = Canvas::after_prompt(&[3, 4, 5], 8, cfg.mask_token_id, None);
    let (c, _) = run(CpuModel::new(&w), canvas.clone(), &o);
    for kernels in [KernelVariant::Tiled, KernelVariant::CpuLanes] {
        let (g, _) = run(session_in(&gm, 11, kernels), canvas.clone(), &o);
        assert_eq!(g.model_passes, 8, "two passes a step");
        assert_eq!(g.tokens, c.tokens, "{} layout", kernels.name());
    }
}

/// A denoiser that counts the canvas rows its passes compute.
struct Rows<D> {
    inner: D,
    rows: usize,
}

impl<D: sampler::Denoiser> sampler::Denoiser for Rows<D> {
    async fn choose(&mut self, canvas: &[u32], noise: Noise) -> unmask::Result<Vec<Choice>> {
        self.rows += canvas.len();
        self.inner.choose(canvas, noise).await
    }
    async fn logits(&mut self, canvas: &[u32]) -> unmask::Result<Vec<f32>> {
        self.rows += canvas.len();
        self.inner.logits(canvas).await
    }
    fn vocab_size(&self) -> usize {
        self.inner.vocab_size()
    }
    async fn choose_rows(&mut self, canvas: &[u32], rows: std::ops::Range<usize>, noise: Noise) -> unmask::Result<Vec<Choice>> {
        self.rows += rows.len();
        self.inner.choose_rows(canvas, rows, noise).await
    }
}

#[test]
fn cached_generation_keeps_the_invariants_and_runs_fewer_rows() {
    use unmask::sampler::CacheMode;
    let cfg = tiny_config(2, 4, 2, 16, 64, 120);
    let w = random_model(&cfg, DType::Q8_0, 23);
    let gm = GpuModel::upload(gpu(), &w).unwrap();
    let prompt = [7u32, 1, 9];
    // 15 positions, 3 blocks of 4 steps. Without a cache every step computes all 15 rows; with
    // one, a block's first step does, its other 3 steps compute the block and what follows
    // (prefix: 12, 8, 4 rows in blocks 0, 1, 2) or the block alone (dual: 4 rows).
    let fixed_rows = |cache: CacheMode| match cache {
        CacheMode::None => 12 * 15,
        CacheMode::Prefix => 3 * 15 + 3 * (12 + 8 + 4),
        CacheMode::Dual => 3 * 15 + 3 * 3 * 4,
    };
    for cache in [CacheMode::Prefix, CacheMode::Dual] {
        for threshold in [None, Some(0.3)] {
            let o = SamplerOptions { steps: 12, gen_length: 12, block_length: 4, cache, threshold, early_stop: false, ..Default::default() };
            let canvas = Canvas::after_prompt(&prompt, 12, cfg.mask_token_id, None);
            let mut counted = Rows { inner: session(&gm, 15), rows: 0 };
            let mut ev = Vec::new();
            let g = pollster::block_on(sampler::run(&mut counted, canvas.clone(), &o, &mut |e| {
                ev.push(e.clone());
                true
            }))
            .unwrap();
            assert!(!g.tokens.contains(&cfg.mask_token_id), "{cache:?}: every mask filled");
            assert_eq!(&g.tokens[..3], &prompt);
            let mut seen = std::collections::HashSet::new();
            for e in &ev {
                for c in &e.committed {
                    assert!(seen.insert(c.pos), "{cache:?}: {} committed twice", c.pos);
                    assert_eq!((c.pos - 3) / 4, e.block, "{cache:?}: committed outside its block");
                    assert_eq!(g.tokens[c.pos], c.token);
                }
            }
            assert_eq!(seen.len(), 12);
            let (u, uev) = run(Rows { inner: session(&gm, 15), rows: 0 }, canvas.clone(), &SamplerOptions { cache: CacheMode::None, ..o.clone() });
            match threshold {
                None => assert_eq!((counted.rows, g.model_passes), (fixed_rows(cache), 12), "{cache:?}: rows computed"),
                // Threshold steps vary in number; each still computes fewer rows than a full pass,
                // except a block's first.
                Some(_) => {
                    assert!(counted.rows < g.model_passes * 15 && counted.rows >= 3 * 15, "{cache:?}: {} rows in {} passes", counted.rows, g.model_passes)
                }
            }
            assert!(counted.rows < fixed_rows(CacheMode::None), "{cache:?} {threshold:?}: fewer rows than without a cache");
            // The CPU twin keeps the same cache (K/V of the other rows from the block's full
            // pass) and writes the same answer.
            let (c, _) = run(CpuModel::new(&w), canvas.clone(), &o);
            assert_eq!(c.tokens, g.tokens, "{cache:?} {threshold:?}: GPU vs CPU twin with the same cache");
            // The first step of every block is a full pass: the first commit is the same as
            // without a cache (nothing differs before it).
            assert_eq!(ev[0].committed, uev[0].committed, "{cache:?}: first step");
            assert_eq!(u.tokens.len(), g.tokens.len());
        }
    }
}
