//! `unmask bench --kernels soft`: DiffusionGemma's soft embedding alone (softmax(logits / t) · E,
//! `soft_embed.wgsl`) at a config's vocabulary × hidden size for the positions' rows, with a
//! Q8_0 table (the GGUF's embedding format) in the binding-sized chunks a model loads it in: one
//! line unsplit and, where `Gpu::soft_embed_split` cuts the table rows, one split (as GPUs run
//! it), so the two can be compared on the same adapter.

use super::bench_kernels::{Peak, Timing};
use super::bench_probe::Probed;
use unmask::engine::GpuWeight;
use unmask::gpu::Gpu;
use unmask::model::{DType, HostTensor, ModelConfig};
use unmask::{Error, Result};

pub fn bench_soft(gpu: &Gpu, c: &ModelConfig, m: usize, probed: &Probed) -> Result<()> {
    let (vocab, dim, dtype) = (c.vocab_size, c.d_model, DType::Q8_0);
    let mut rng = unmask::rng::Rng::new(5);
    let table = HostTensor::encode(dtype, vocab, dim, &rng.vec(vocab * dim, 0.1))
        .ok_or_else(|| Error::Input(format!("--kernels soft: a hidden size of {dim} does not suit {}", dtype.name())))?;
    let gw = GpuWeight::upload(gpu, "embedding", &table, gpu.max_binding())?;
    // Probability rows (any values: the time does not depend on them), the output, and split-K's
    // scratch for the most slices any chunk takes.
    let probs = gpu.upload_f32("probabilities", &rng.vec(m * vocab, 1.0 / vocab as f32))?;
    let out = gpu.storage("soft embedding", (m * dim * 4) as u64)?;
    let was = gpu.split_matmul();
    gpu.set_split_matmul(true);
    let most = gw.chunks.iter().map(|c| gpu.soft_embed_split(m, dim, c.2).bytes(m, dim)).max().unwrap_or(4);
    gpu.set_split_matmul(was);
    let scratch = gpu.storage("split-K scratch", most.max(4))?;
    let peak = Peak::of(&gpu.report.name);
    let result = (|| {
        for split in [false, true] {
            gpu.set_split_matmul(split);
            let splits = gpu.soft_embed_split(m, dim, gw.chunks[0].2).splits;
            if split && splits == 1 {
                continue;
            }
            let mut launches = Vec::new();
            for (j, (buf, r0, rows)) in gw.chunks.iter().enumerate() {
                launches.extend(gpu.soft_embed(dtype, buf, *r0, *rows, dim, &probs, vocab, m, &out, 0, 1.0, j > 0, Some(&scratch))?);
            }
            let t = Timing::of(gpu, &gpu.bind(&launches, None)?, &out)?;
            let gflops = 2.0 * (m * vocab * dim) as f64 / t.ms / 1e6;
            let gbps = (table.data.len() + 4 * m * (vocab + dim)) as f64 / t.ms / 1e6;
            let line = serde_json::json!({"kernel": "soft_embed", "adapter": gpu.report.name, "dtype": dtype.name(), "rows": m, "vocab": vocab, "dim": dim,
                "chunks": gw.chunks.len(), "splits": splits, "launches": launches.len(), "ms": t.ms, "wall_ms": t.wall_ms, "timed_by": t.timed_by, "gflops": gflops, "gbps": gbps,
                "of_f32_peak": peak.map(|p| gflops / p.f32_gflops), "of_bandwidth": peak.map(|p| gbps / p.gbps),
                "of_probe": gflops / probed.fma_gflops, "of_probe_read": gbps / probed.read_gbps});
            println!("{line}");
        }
        Ok(())
    })();
    gpu.set_split_matmul(was);
    result
}
