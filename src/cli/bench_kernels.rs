//! `unmask bench --kernels`: kernels alone at a model's shapes (attention, the matmuls in every
//! weight format, the grouped expert matmul) and the platform probes (`gpu::probe`), one JSON
//! line each, timed by GPU timestamps where the adapter has them. Each kernel's GFLOP/s and GB/s
//! are given as fractions of the data sheet's peaks (`Peak`, where known) and of what the
//! probes measured on this adapter (`"of_probe"`, `"of_probe_read"`).

use super::bench_probe::Probed;
use unmask::gpu::kernels::{AttnShape, Dispatch, KernelVariant, KvType, MatmulSplit};
use unmask::gpu::Gpu;
use unmask::model::{DType, ModelConfig};
use unmask::{Error, Result};

/// Which kernels `--kernels` times.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum KernelSet {
    All,
    Attention,
    Matmul,
    Moe,
    Probe,
    /// The tiled matmuls with parts of their k loop left out (`bench_phases`); not in `All`.
    Phases,
    /// DiffusionGemma's soft embedding at the vocabulary × hidden size (`bench_soft`); not in
    /// `All`.
    Soft,
    /// What the Vulkan driver compiled (`bench_compile`): nothing is run.
    Compile,
}

impl KernelSet {
    pub fn parse(s: &str) -> Result<KernelSet> {
        match s {
            "all" => Ok(KernelSet::All),
            "attention" => Ok(KernelSet::Attention),
            "matmul" => Ok(KernelSet::Matmul),
            "moe" => Ok(KernelSet::Moe),
            "probe" => Ok(KernelSet::Probe),
            "phases" => Ok(KernelSet::Phases),
            "soft" => Ok(KernelSet::Soft),
            "compile" => Ok(KernelSet::Compile),
            _ => Err(Error::Input(format!("--kernels {s:?}: use all, attention, matmul, moe, probe, phases, soft or compile"))),
        }
    }

    fn has(self, k: KernelSet) -> bool {
        self == KernelSet::All || self == k
    }
}

/// The platform probes first (`all` and `probe`); then GFLOP/s of one matmul dispatch for each
/// weight format and each matmul layout that runs on this adapter; attention; and for MoE
/// configs the grouped expert matmul.
pub fn bench_kernels(gpu: &Gpu, c: &ModelConfig, m: usize, set: KernelSet) -> Result<()> {
    if set == KernelSet::Moe && !c.is_moe() {
        return Err(Error::Input("--kernels moe: the model has no experts".into()));
    }
    // The probes' lines with `all` and `probe`; measured quietly otherwise, as each kernel's
    // line gives its figures as fractions of theirs too.
    let probed = if set.has(KernelSet::Probe) { super::bench_probe::bench_probes(gpu)? } else { super::bench_probe::measure(gpu)? };
    if set == KernelSet::Probe {
        return Ok(());
    }
    if set == KernelSet::Phases {
        let result = bench_phases(gpu, c, m, &probed);
        gpu.set_skip_phases(0)?;
        return result;
    }
    if set == KernelSet::Soft {
        return super::bench_soft::bench_soft(gpu, c, m, &probed);
    }
    for v in [KernelVariant::Tiled, KernelVariant::CpuLanes] {
        if gpu.check_kernels(v).is_ok() {
            bench_kernels_with(gpu, v, c, m, set, &probed)?;
        }
    }
    Ok(())
}

/// How long a list of dispatches takes: `ms` is GPU time from timestamp queries where the
/// adapter has them (each dispatch in a compute pass of its own, their times summed), best of 5
/// after a warm-up; `wall_ms` the host's best of 5 for a submission and a 4-byte readback of
/// `probe`, which adds the round trip (what `ms` falls back to without timestamps).
pub struct Timing {
    pub ms: f64,
    pub wall_ms: f64,
    pub timed_by: &'static str,
}

impl Timing {
    pub fn of(gpu: &Gpu, ds: &[Dispatch], probe: &wgpu::Buffer) -> Result<Timing> {
        let mut wall = f64::MAX;
        for i in 0..6 {
            let t = unmask::clock::now_ms();
            let mut enc = gpu.device.create_command_encoder(&Default::default());
            gpu.record(&mut enc, ds);
            pollster::block_on(gpu.submit_and_read(enc, &[(probe, 0, 4)]))?;
            if i > 0 {
                wall = wall.min(unmask::clock::now_ms() - t);
            }
        }
        let refs: Vec<&Dispatch> = ds.iter().collect();
        let mut gpu_ms = None::<f64>;
        for _ in 0..5 {
            match pollster::block_on(gpu.time_dispatches(&refs))? {
                Some(times) => gpu_ms = Some(gpu_ms.unwrap_or(f64::MAX).min(times.iter().sum())),
                None => break,
            }
        }
        Ok(match gpu_ms {
            Some(ms) => Timing { ms, wall_ms: wall, timed_by: "timestamps" },
            None => Timing { ms: wall, wall_ms: wall, timed_by: "wall" },
        })
    }
}

/// Attention of `lq` query rows against `lk` positions at the model's head shape (bidirectional:
/// every row sees every key), K/V stored as `kvt`. Few rows in the flash layout: split-K, as a
/// cached step runs it.
fn bench_attention(gpu: &Gpu, v: KernelVariant, c: &ModelConfig, (lq, lk): (usize, usize), kvt: KvType, probed: &Probed) -> Result<()> {
    use unmask::gpu::kernels::AttnMask;
    let (h, kv, d) = (c.n_heads, c.n_kv_heads, c.head_dim());
    let mut rng = unmask::rng::Rng::new(2);
    let q = gpu.upload_f32("q", &rng.vec(lq * h * d, 1.0))?;
    let upload_kv = |what: &str, x: &[f32]| match kvt {
        KvType::F32 => gpu.upload_f32(what, x),
        KvType::F16 => gpu.upload(what, bytemuck::cast_slice(&x.iter().map(|&a| half::f16::from_f32(a)).collect::<Vec<_>>())),
    };
    let k = upload_kv("k", &rng.vec(lk * kv * d, 1.0))?;
    let vv = upload_kv("v", &rng.vec(lk * kv * d, 1.0))?;
    let out = gpu.storage("out", (lq * h * d * 4) as u64)?;
    let shape = AttnShape { lq, lk, n_heads: h, n_kv: kv, head_dim: d };
    let scratch = gpu.storage("split-K scratch", AttnShape::split_scratch_bound(lk, h, d).max(4))?;
    let ds = gpu.bind(&gpu.attention(v, &q, &k, &vv, &out, shape, AttnMask::FULL, kvt, KvType::F32, Some(&scratch))?, None)?;
    let t = Timing::of(gpu, &ds, &out)?;
    let best = t.ms;
    let gflops = 4.0 * (lq * lk * h * d) as f64 / best / 1e6;
    let gbs = (4 * 2 * lq * h * d + kvt.bytes() * 2 * lk * kv * d) as f64 / best / 1e6;
    let peak = Peak::of(&gpu.report.name);
    let layout = gpu.attention_layout(v, &shape);
    let splits = if layout.is_flash() && ds.len() == 2 { shape.splits() } else { 1 };
    let name = layout.shader();
    let line = serde_json::json!({"kernel": name, "variant": v.name(), "adapter": gpu.report.name, "lq": lq, "lk": lk, "heads": h, "kv_heads": kv, "head_dim": d,
        "kv": kvt.name(), "splits": splits, "ms": best, "wall_ms": t.wall_ms, "timed_by": t.timed_by, "gflops": gflops, "gbps": gbs, "of_f32_peak": peak.map(|p| gflops / p.f32_gflops),
        "of_probe": gflops / probed.fma_gflops});
    println!("{line}");
    Ok(())
}

fn bench_kernels_with(gpu: &Gpu, v: KernelVariant, c: &ModelConfig, m: usize, set: KernelSet, probed: &Probed) -> Result<()> {
    // The portable layout's attention kernels (the GPUs' flash ones, K/V staged in workgroup
    // memory where the adapter allows, and the other), as (flash, tiles).
    let was = (gpu.flash_attention(), gpu.tiled_attention());
    let mut kernels = vec![was];
    if v == KernelVariant::Tiled {
        kernels = vec![(false, false), (true, false)];
        if gpu.set_tiled_attention(true).is_ok() {
            kernels.push((true, true));
        }
    }
    for (flash, tiles) in if set.has(KernelSet::Attention) { kernels } else { vec![] } {
        gpu.set_flash_attention(flash);
        gpu.set_tiled_attention(tiles)?;
        // K/V in f32, and in f16 where the adapter has shader-f16.
        for kvt in [KvType::F32, KvType::F16].into_iter().filter(|&t| gpu.check_kv(t).is_ok()) {
            bench_attention(gpu, v, c, (m, m), kvt, probed)?;
            // A cached step: one block's rows against the whole canvas.
            let rows = m.min(32);
            if rows < m {
                bench_attention(gpu, v, c, (rows, m), kvt, probed)?;
            }
        }
    }
    gpu.set_flash_attention(was.0);
    gpu.set_tiled_attention(was.1)?;
    if c.is_moe() && set.has(KernelSet::Moe) {
        for dtype in [DType::Q8_0, DType::Q4_0] {
            // Gate (and up: the same shape) and down projections of the experts, for a full pass
            // and a cached step's 32 rows.
            for (name, n, k, by_pair) in [("experts_gate", c.expert_hidden_size, c.d_model, false), ("experts_down", c.d_model, c.expert_hidden_size, true)] {
                for rows in [m, m.min(32)].into_iter().collect::<std::collections::BTreeSet<_>>() {
                    // The tiled layout on f32 ALUs and, where the adapter has them, on
                    // cooperative matrices ("coop" in the JSON).
                    let was = gpu.coop_matmul();
                    let cores = if v == KernelVariant::Tiled && gpu.can_coop() { vec![false, true] } else { vec![was] };
                    for coop in cores {
                        gpu.set_coop_matmul(coop)?;
                        bench_moe(gpu, v, c, dtype, (name, n, k, by_pair), rows, probed)?;
                    }
                    gpu.set_coop_matmul(was)?;
                }
            }
        }
    }
    use unmask::engine::GpuWeight;
    use unmask::model::HostTensor;
    let shapes = [
        ("q_proj", c.d_model, c.d_model),
        ("ff_proj", c.mlp_hidden_size, c.d_model),
        ("ff_out", c.d_model, c.mlp_hidden_size),
        ("lm_head", c.vocab_size, c.d_model),
    ];
    let mut rng = unmask::rng::Rng::new(1);
    let mut dtypes = vec![DType::F32, DType::F16, DType::Q8_0, DType::Q4_0];
    // The k-quants (most published GGUFs) where their 256-value super-blocks fit the rows.
    if shapes.iter().all(|s| s.2.is_multiple_of(256)) {
        dtypes.extend([DType::Q4K, DType::Q6K]);
    }
    if !set.has(KernelSet::Matmul) {
        dtypes.clear();
    }
    for dtype in dtypes {
        for (name, n, k) in shapes {
            let w = match dtype {
                DType::Q4K | DType::Q6K => unmask::synth::random_blocks(dtype, n, k, 1),
                _ => HostTensor::encode(dtype, n, k, &rng.vec(n * k, 0.1))
                    .ok_or_else(|| Error::Input(format!("{name}: {k} columns do not suit {}", dtype.name())))?,
            };
            let gw = GpuWeight::upload(gpu, name, &w, u64::MAX)?;
            // In the tiled layout every core ("coop" and "register_tile" in the JSON say which ran).
            let (was, tile_was) = (gpu.coop_matmul(), gpu.register_tile());
            let cores = if v == KernelVariant::Tiled { tiled_cores(gpu) } else { vec![(was, tile_was)] };
            for (coop, tile) in cores {
                gpu.set_coop_matmul(coop)?;
                gpu.set_register_tile(tile)?;
                // A full pass and a cached step (one block of 32 rows) in the tiled layout: as
                // it is, and split across k where that makes more workgroups (`MatmulSplit` for
                // `Gpu::split_fill`; GPUs run it so).
                let rows: &[usize] = if v == KernelVariant::Tiled && m > 32 { &[m, 32] } else { &[m] };
                for &r in rows {
                    // CPU lanes: x through uniform windows and not, where the adapter has them
                    // (`Gpu::set_x_windows`), one right after the other.
                    let xw_was = gpu.x_windows();
                    for xw in if v == KernelVariant::CpuLanes && xw_was { vec![true, false] } else { vec![xw_was] } {
                        gpu.set_x_windows(xw)?;
                        bench_matmul(gpu, v, &gw, (w.data.len(), name), r, None, probed)?;
                    }
                    gpu.set_x_windows(xw_was)?;
                    let split = gpu.matmul_split_of(v, r, n, k);
                    if v == KernelVariant::Tiled && split.splits > 1 {
                        bench_matmul(gpu, v, &gw, (w.data.len(), name), r, Some(split), probed)?;
                    }
                }
            }
            gpu.set_coop_matmul(was)?;
            gpu.set_register_tile(tile_was)?;
        }
    }
    Ok(())
}

/// The cores of the tiled layout's matmuls on this device, as (cooperative matrices, register
/// tile): the f32 core with each register tile (4×4 and 8×8), then cooperative matrices where
/// the device runs them (or emulates them: `UNMASK_COOP=emulate`).
fn tiled_cores(gpu: &Gpu) -> Vec<(bool, usize)> {
    let mut cores = vec![(false, 4), (false, 8)];
    if gpu.can_coop() {
        cores.push((true, gpu.register_tile()));
    }
    cores
}

/// `--kernels phases`: where a tiled matmul's time goes. The Q4_0 q_proj and ff_out matmuls at a
/// full pass's `m` rows and a cached step's 32 (split across k as GPUs run them), on every core
/// of the tiled layout (f32 4×4 and 8×8, cooperative matrices where the adapter has them), whole
/// and with parts of their k loop left out (`Gpu::set_skip_phases`, the lines' `"skip"`): the
/// loads of each next slice (what remains: staging, multiply-adds, barriers), the multiply-adds
/// (loads, staging, barriers), the loads and the workgroup stores (multiply-adds and barriers),
/// and all three (the loop's barriers, the launch and the store).
fn bench_phases(gpu: &Gpu, c: &ModelConfig, m: usize, probed: &Probed) -> Result<()> {
    use unmask::engine::GpuWeight;
    use unmask::model::HostTensor;
    let v = KernelVariant::Tiled;
    gpu.check_kernels(v)?;
    let (coop_was, tile_was) = (gpu.coop_matmul(), gpu.register_tile());
    let cores = tiled_cores(gpu);
    let mut rng = unmask::rng::Rng::new(1);
    for (name, n, k) in [("q_proj", c.d_model, c.d_model), ("ff_out", c.d_model, c.mlp_hidden_size)] {
        let w = HostTensor::encode(DType::Q4_0, n, k, &rng.vec(n * k, 0.1)).ok_or_else(|| Error::Input(format!("{name}: {k} columns do not suit Q4_0")))?;
        let gw = GpuWeight::upload(gpu, name, &w, u64::MAX)?;
        for &(coop, tile) in &cores {
            gpu.set_coop_matmul(coop)?;
            gpu.set_register_tile(tile)?;
            for r in [m, m.min(32)].into_iter().collect::<std::collections::BTreeSet<_>>() {
                let split = gpu.matmul_split_of(v, r, n, k);
                for bits in [0, 1, 2, 5, 7] {
                    gpu.set_skip_phases(bits)?;
                    bench_matmul(gpu, v, &gw, (w.data.len(), name), r, Some(split).filter(|s| s.splits > 1), probed)?;
                }
            }
        }
    }
    gpu.set_coop_matmul(coop_was)?;
    gpu.set_register_tile(tile_was)
}

/// One line for the grouped expert matmul of `rows` positions (top-k of the model's experts,
/// routed from random logits) through stacked experts of `n` × `k` each, x a row per position or
/// per pair (`by_pair`, the down projection): GFLOP/s of the pairs' products, GB/s of the
/// weights of the experts picked.
fn bench_moe(
    gpu: &Gpu,
    v: KernelVariant,
    c: &ModelConfig,
    dtype: DType,
    (name, n, k, by_pair): (&str, usize, usize, bool),
    rows: usize,
    probed: &Probed,
) -> Result<()> {
    use unmask::engine::GpuWeight;
    use unmask::gpu::kernels::{Epilogue, MoeIo, MoeShape};
    use unmask::model::HostTensor;
    let (experts, top) = (c.n_experts, c.n_experts_used);
    let s = MoeShape { rows, experts, k: top };
    let mut rng = unmask::rng::Rng::new(4);
    let w = HostTensor::encode(dtype, experts * n, k, &rng.vec(experts * n * k, 0.1))
        .ok_or_else(|| Error::Input(format!("{name}: {k} columns do not suit {}", dtype.name())))?;
    let gw = GpuWeight::upload(gpu, name, &w, u64::MAX)?;
    let logits = rng.vec(rows * experts, 2.0);
    let picked = unmask::cpu::ops::moe_route(&logits, experts, top, true, c.routing, None).lists.iter().filter(|l| !l.is_empty()).count();
    let lb = gpu.upload_f32("router logits", &logits)?;
    let route = gpu.storage("route", (s.route_words() * 4) as u64)?;
    let x = gpu.upload_f32("x", &rng.vec(rows * if by_pair { top } else { 1 } * k, 1.0))?;
    let y = gpu.storage("y", (rows * top * n * 4) as u64)?;
    // The routing once, then the timed matmul on it.
    let ds = gpu.bind(&[gpu.moe_route(&lb, None, &route, s, true, c.routing)?], None)?;
    let mut enc = gpu.device.create_command_encoder(&Default::default());
    gpu.record(&mut enc, &ds);
    pollster::block_on(gpu.submit_and_read(enc, &[(&route, 0, 4)]))?;
    let mut launches = Vec::new();
    for (buf, r0, count) in &gw.chunks {
        let io = MoeIo { x: &x, by_pair, route: &route, y: &y, epilogue: Epilogue::Store, norm: None };
        launches.push(gpu.moe_matmul(v, dtype, buf, r0 / n, count / n, n, k, io, s)?);
    }
    let ds = gpu.bind(&launches, None)?;
    let t = Timing::of(gpu, &ds, &y)?;
    let best = t.ms;
    let pairs = rows * top;
    let gflops = 2.0 * (pairs * n * k) as f64 / best / 1e6;
    let gbs = (picked * w.data.len() / experts + 4 * pairs * (k + n)) as f64 / best / 1e6;
    let peak = Peak::of(&gpu.report.name);
    let coop = gpu.moe_coop(v, false);
    let tile = if coop { 32 } else { s.pairs_per_tile(v) };
    let line = serde_json::json!({"kernel": "moe_matmul", "variant": v.name(), "coop": coop, "adapter": gpu.report.name, "dtype": dtype.name(), "shape": name, "rows": rows,
        "experts": experts, "top_k": top, "experts_picked": picked, "pairs_per_tile": tile, "n": n, "k": k, "ms": best, "wall_ms": t.wall_ms, "timed_by": t.timed_by, "gflops": gflops, "gbps": gbs,
        "of_f32_peak": peak.map(|p| gflops / p.f32_gflops), "of_bandwidth": peak.map(|p| gbs / p.gbps),
        "of_probe": gflops / probed.fma_gflops, "of_probe_read": gbs / probed.read_gbps});
    println!("{line}");
    Ok(())
}

/// One line for a matmul of `m` rows by the weight `gw` (`bytes` of it), split-K when `split`;
/// x in f16 where sessions keep it so (`Gpu::half_inputs`).
fn bench_matmul(
    gpu: &Gpu,
    v: KernelVariant,
    gw: &unmask::engine::GpuWeight,
    (bytes, name): (usize, &str),
    m: usize,
    split: Option<MatmulSplit>,
    probed: &Probed,
) -> Result<()> {
    use unmask::gpu::kernels::{Epilogue, MatmulIo};
    let (n, k) = (gw.rows, gw.cols);
    let mut rng = unmask::rng::Rng::new(3);
    let half = gpu.half_inputs(v);
    let xs = rng.vec(m * k, 1.0);
    let x = match half {
        true => gpu.upload("x", bytemuck::cast_slice(&xs.iter().map(|&a| half::f16::from_f32(a)).collect::<Vec<_>>()))?,
        false => gpu.upload_f32("x", &xs)?,
    };
    let y = gpu.storage("y", (m * n * 4) as u64)?;
    let io = MatmulIo { x: &x, x_offset: 0, y: &y, y_offset: 0, y_stride: n, epilogue: Epilogue::Store, norm: None, rope: None, x_f16: half, y_f16: false };
    let launches = match split {
        Some(s) => {
            let scratch = gpu.storage("split-K scratch", s.bytes(m, n))?;
            gpu.matmul_split(gw.dtype, &gw.chunks[0].0, m, n, k, io, &scratch, s, KvType::F32)?
        }
        None => gw.matmul_split_k(gpu, v, m, io, None)?,
    };
    let ds = gpu.bind(&launches, None)?;
    let t = Timing::of(gpu, &ds, &y)?;
    let best = t.ms;
    let gflops = 2.0 * (m * n * k) as f64 / best / 1e6;
    // Bytes a matmul must move at least: the weights once, x and y once.
    let gbs = (bytes + if half { 2 } else { 4 } * m * k + 4 * m * n) as f64 / best / 1e6;
    let peak = Peak::of(&gpu.report.name);
    // Whether this launch ran on cooperative matrices (tiled launches where `coop_matmul` is on).
    let coop = launches.iter().any(|l| matches!(l.kernel, unmask::gpu::kernels::Kernel::MatmulCoop { .. }));
    // Its tiles on cooperative matrices: 32×128 for at most 32 rows (`Gpu::set_short_coop`),
    // else 64×64 or 64×128 (`Gpu::set_coop_tile`).
    let short = launches.iter().any(|l| matches!(l.kernel, unmask::gpu::kernels::Kernel::MatmulCoop { short: true, .. }));
    // CPU lanes: x read through uniform windows (`Gpu::x_windows`), and in how many launches.
    let windows = launches.iter().filter(|l| matches!(l.kernel, unmask::gpu::kernels::Kernel::Matmul { xw: true, .. })).count();
    let coop_tile = coop.then(|| {
        let (r, c) = unmask::gpu::kernel_source::coop_tile(short, gpu.coop_wide());
        format!("{r}x{c}")
    });
    // Parts of the k loop left out (`--kernels phases`; none otherwise).
    let bits = gpu.skip_phases();
    let skip: Vec<&str> = [(1, "loads"), (2, "multiply-adds"), (4, "workgroup stores")].into_iter().filter(|(b, _)| bits & b != 0).map(|(_, s)| s).collect();
    let line = serde_json::json!({"kernel": "matmul", "variant": v.name(), "coop": coop, "register_tile": gpu.register_tile(), "skip": skip, "x": if half { "f16" } else { "f32" }, "coop_tile": coop_tile, "x_windows": windows, "adapter": gpu.report.name, "dtype": gw.dtype.name(), "shape": name, "m": m, "n": n, "k": k,
        "splits": split.map_or(1, |s| s.splits), "ms": best, "wall_ms": t.wall_ms, "timed_by": t.timed_by, "gflops": gflops, "gbps": gbs, "of_f32_peak": peak.map(|p| gflops / p.f32_gflops),
        "of_f16_tensor_peak": peak.filter(|_| coop).map(|p| gflops / p.f16_tensor_gflops), "of_bandwidth": peak.map(|p| gbs / p.gbps),
        "of_probe": probed.flops(coop).map(|f| gflops / f), "of_probe_read": gbs / probed.read_gbps});
    println!("{line}");
    Ok(())
}

/// The peaks a kernel's figures are compared with (BENCHMARKS.md states them), for the GPUs
/// this project measures on, matched by adapter name.
#[derive(Clone, Copy)]
pub struct Peak {
    pub f32_gflops: f64,
    /// Dense f16 products with f32 sums on tensor cores.
    pub f16_tensor_gflops: f64,
    pub gbps: f64,
}

impl Peak {
    /// GFLOP/s of `madds` multiply-adds in `ms`, and their share of this adapter's stated peak
    /// for the units the matmuls ran on (`coop`: tensor cores, else f32 ALUs), where known: a
    /// generation's `"achieved_gflops"` and `"of_peak"`.
    pub fn achieved(adapter: &str, coop: bool, madds: u64, ms: f64) -> (f64, Option<f64>) {
        let gflops = 2.0 * madds as f64 / (ms / 1000.0) / 1e9;
        (gflops, Peak::of(adapter).map(|p| gflops / if coop { p.f16_tensor_gflops } else { p.f32_gflops }))
    }

    pub fn of(adapter: &str) -> Option<Peak> {
        let a = adapter.to_ascii_uppercase();
        if a.contains("H200") {
            Some(Peak { f32_gflops: 67_000.0, f16_tensor_gflops: 990_000.0, gbps: 4_800.0 })
        } else if a.contains("H100") {
            Some(Peak { f32_gflops: 67_000.0, f16_tensor_gflops: 990_000.0, gbps: 3_350.0 })
        } else {
            None
        }
    }
}
