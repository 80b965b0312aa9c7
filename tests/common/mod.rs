//! Shared test helpers: one GPU per test binary, and tolerance checks.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};
use unmask::gpu::Gpu;

/// A new device, its kernels without naga's bounds checks where `UNMASK_BOUNDS_CHECKS=off`
/// (`Gpu::set_bounds_checks`: to run a suite so by hand, e.g. on a GPU; lavapipe takes minutes
/// to compile some kernels without them, so CI does not).
fn new_gpu() -> Gpu {
    let g = pollster::block_on(Gpu::new()).unwrap_or_else(|e| panic!("{e}"));
    g.set_bounds_checks(std::env::var("UNMASK_BOUNDS_CHECKS").as_deref() != Ok("off"));
    g
}

/// The adapter for this test binary (lavapipe on machines without a GPU). Tests never skip:
/// without an adapter they fail with the engine's message saying what to install.
pub fn gpu() -> Arc<Gpu> {
    static GPU: OnceLock<Arc<Gpu>> = OnceLock::new();
    GPU.get_or_init(|| {
        let g = new_gpu();
        // The f32 path everywhere: the CPU twins' 1e-4 holds for it. Cooperative matrices
        // (f16 inputs; GPUs that have them) are tested on a device of their own (tests/kernels.rs).
        g.set_coop_matmul(false).expect("turning cooperative matrices off always works");
        Arc::new(g)
    })
    .clone()
}

/// A device of the test's own (for state such as flash attention, split-K or a binding cap),
/// on the f32 path like `gpu()`.
pub fn own_gpu() -> Arc<Gpu> {
    let g = new_gpu();
    g.set_coop_matmul(false).expect("turning cooperative matrices off always works");
    Arc::new(g)
}

/// `own_gpu` with the f32 tiled matmuls' 8×8 register tile (`matmul_wide.wgsl`).
pub fn wide_gpu() -> Arc<Gpu> {
    let g = own_gpu();
    g.set_register_tile(8).expect("8×8 is a register tile");
    g
}

/// A device of the test's own whose tiled matmuls run on cooperative matrices (f16 inputs, f32
/// sums): the adapter's where it has them, else emulated (`Gpu::with_emulated_coop`; lavapipe).
pub fn coop_gpu() -> Arc<Gpu> {
    let g = new_gpu();
    Arc::new(g.with_emulated_coop().unwrap_or_else(|e| panic!("{e}")))
}

/// `coop_gpu` with 64×128 cooperative tiles for inputs of more than 32 rows (`Gpu::set_coop_tile`).
#[allow(dead_code)]
pub fn wide_coop_gpu() -> Arc<Gpu> {
    let g = coop_gpu();
    g.set_coop_tile(128).unwrap_or_else(|e| panic!("{e}"));
    g
}

pub fn rms(v: &[f32]) -> f32 {
    (v.iter().map(|x| x * x).sum::<f32>() / v.len().max(1) as f32).sqrt()
}

/// Asserts `|got - want| ≤ rel · max(|want|, rms(want))` elementwise: relative error, with the
/// output's typical size as the floor so that values near zero (cancellation) are not held to
/// an impossible standard.
pub fn assert_close(what: &str, got: &[f32], want: &[f32], rel: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = rms(want).max(1e-20);
    let mut worst = (0.0f32, 0usize);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let err = (g - w).abs() / w.abs().max(scale);
        assert!(err.is_finite() || g == w, "{what}: element {i} is {g}, want {w}");
        if err > worst.0 {
            worst = (err, i);
        }
    }
    assert!(
        worst.0 <= rel,
        "{what}: element {} is {} but the CPU twin gives {} (relative error {:.2e} > {rel:.0e})",
        worst.1,
        got[worst.1],
        want[worst.1],
        worst.0
    );
}

/// A session on `m` for canvases of up to `canvas` positions that can do everything the tests
/// ask: row-range passes, guidance, logits readback.
pub fn session(m: &unmask::engine::GpuModel, canvas: usize) -> unmask::engine::Session<'_> {
    session_in(m, canvas, m.gpu.default_kernels())
}

/// `session` in kernel layout `kernels`.
#[allow(dead_code)]
pub fn session_in(m: &unmask::engine::GpuModel, canvas: usize, kernels: unmask::gpu::kernels::KernelVariant) -> unmask::engine::Session<'_> {
    let config = unmask::engine::SessionConfig { canvas, cache: unmask::sampler::CacheMode::Dual, cfg: true, logits: true, kernels, kv: m.gpu.default_kv() };
    m.session(config).unwrap_or_else(|e| panic!("{e}"))
}

/// Random Q4_K or Q6_K super-blocks (`rows · cols` a multiple of 256) with sane f16 scales.
#[allow(unused_imports)]
pub use unmask::synth::random_blocks;
