//! `unmask bench --kernels probe`: the platform probes (`gpu::probe`: a dispatch's own cost,
//! streaming reads, workgroup-memory reads, f32 and cooperative-matrix multiply-adds), each
//! with naga's loop bounding off (the default) and on, and with its bounds checks off too, one
//! JSON line each. They say what this adapter delivers through wgpu at its simplest, so that a
//! kernel's GFLOP/s and GB/s are read against that as well as against the data sheet's peaks
//! (`Peak`).

use super::bench_kernels::{Peak, Timing};
use unmask::gpu::kernels::{Dispatch, Launch};
use unmask::gpu::probe::{COOP_FLOPS_PER_ROUND, FMA_PER_ROUND, PROBE_WG, SHARED_BYTES_PER_ROUND};
use unmask::gpu::Gpu;
use unmask::Result;

/// Workgroups of the read and multiply-add probes: 1024 × 256 invocations fill an H200 (132
/// multiprocessors × 2048) about once.
const GROUPS: usize = 1024;
/// GPU time the multiply-add probes' rounds are doubled towards, so that a dispatch's own cost
/// is small beside their work.
const TARGET_MS: f64 = 2.0;

/// What the probes measured with the kernels' own setting of loop bounding: what each kernel
/// line of `--kernels` is also given as a fraction of (`"of_probe"`, `"of_probe_read"`).
#[derive(Clone, Copy)]
pub struct Probed {
    pub read_gbps: f64,
    pub fma_gflops: f64,
    pub coop_gflops: Option<f64>,
}

impl Probed {
    /// The multiply-add ceiling of a kernel on cooperative matrices (`coop`) or f32 ALUs.
    pub fn flops(&self, coop: bool) -> Option<f64> {
        if coop {
            self.coop_gflops
        } else {
            Some(self.fma_gflops)
        }
    }
}

/// Every probe with naga's loop bounding off and on (bounds checks on), and with both off, one
/// line each; returns the figures of the settings the kernels have.
pub fn bench_probes(gpu: &Gpu) -> Result<Probed> {
    let was = (gpu.loop_bounding(), gpu.bounds_checks());
    let set = |(bounding, checks): (bool, bool)| {
        gpu.set_loop_bounding(bounding);
        gpu.set_bounds_checks(checks);
    };
    let mut kept = None;
    for setting in [(false, true), (true, true), (false, false)] {
        set(setting);
        match probes(gpu, true) {
            Ok(p) if setting == was => kept = Some(p),
            Ok(_) => {}
            Err(e) => {
                set(was);
                return Err(e);
            }
        }
    }
    set(was);
    // Settings outside the three (bounding on, checks off): measured as they are, quietly.
    kept.map_or_else(|| probes(gpu, false), Ok)
}

/// The probes with the kernels' settings of loop bounding and bounds checks, printing nothing.
pub fn measure(gpu: &Gpu) -> Result<Probed> {
    probes(gpu, false)
}

fn probes(gpu: &Gpu, print: bool) -> Result<Probed> {
    let peak = Peak::of(&gpu.report.name);
    let line = |probe: &str, groups: usize, rounds: usize, t: &Timing, figures: serde_json::Value| {
        let mut v = serde_json::json!({"kernel": "probe", "probe": probe, "adapter": gpu.report.name, "loop_bounding": gpu.loop_bounding(),
            "bounds_checks": gpu.bounds_checks(), "groups": groups, "rounds": rounds, "ms": t.ms, "wall_ms": t.wall_ms, "timed_by": t.timed_by});
        if let (Some(o), Some(f)) = (v.as_object_mut(), figures.as_object()) {
            o.extend(f.clone());
        }
        if print {
            println!("{v}");
        }
    };

    // One workgroup that reads nothing: what any dispatch costs on the GPU, and (wall) a
    // submission with a readback on the host.
    let out = gpu.storage("probe out", (GROUPS * PROBE_WG.max(4 * gpu.coop_lanes() as usize) * 4) as u64)?;
    let src = gpu.storage("probe words", 16 * PROBE_WG as u64)?;
    let ds = gpu.bind(&[gpu.probe_read(&src, &out, 1, 0)?], None)?;
    let t = Timing::of(gpu, &ds, &out)?;
    line("dispatch", 1, 0, &t, serde_json::json!({"us": t.ms * 1e3, "wall_us": t.wall_ms * 1e3}));

    // Streaming reads of a buffer as large as the adapter binds (1 GiB at most; 64 MiB on CPU
    // adapters), whole rounds of 16 bytes an invocation.
    let cpu = gpu.report.device_type.to_ascii_lowercase().contains("cpu");
    let most = gpu.report.max_storage_buffer_binding_size.min(gpu.report.max_buffer_size).min(if cpu { 64 << 20 } else { 1 << 30 });
    let mut groups = GROUPS;
    while groups > 1 && (groups * PROBE_WG * 16) as u64 > most {
        groups /= 2;
    }
    let round_bytes = (groups * PROBE_WG * 16) as u64;
    let rounds = (most / round_bytes).max(1) as usize;
    let src = gpu.storage("probe words", round_bytes * rounds as u64)?;
    let ds = gpu.bind(&[gpu.probe_read(&src, &out, groups, rounds)?], None)?;
    let t = Timing::of(gpu, &ds, &out)?;
    let gbs = (round_bytes * rounds as u64) as f64 / t.ms / 1e6;
    let read_gbps = gbs;
    line("read", groups, rounds, &t, serde_json::json!({"bytes": round_bytes * rounds as u64, "gbps": gbs, "of_bandwidth": peak.map(|p| gbs / p.gbps)}));

    // Workgroup-memory reads.
    let (rounds, t) = doubled(gpu, &out, 16, |r| gpu.probe_shared(&out, GROUPS, r))?;
    let gbs = (SHARED_BYTES_PER_ROUND * GROUPS * PROBE_WG * rounds) as f64 / t.ms / 1e6;
    line("shared", GROUPS, rounds, &t, serde_json::json!({"gbps": gbs}));

    // Independent f32 multiply-add chains.
    let (rounds, t) = doubled(gpu, &out, 16, |r| gpu.probe_fma(&out, GROUPS, r, 0.5, 1.0))?;
    let gflops = (2 * FMA_PER_ROUND * GROUPS * PROBE_WG * rounds) as f64 / t.ms / 1e6;
    let fma_gflops = gflops;
    line("fma", GROUPS, rounds, &t, serde_json::json!({"gflops": gflops, "of_f32_peak": peak.map(|p| gflops / p.f32_gflops)}));

    // Cooperative-matrix multiply-adds, where the adapter has them.
    let mut coop_gflops = None;
    if gpu.coop_lanes() > 0 {
        let (rounds, t) = doubled(gpu, &out, 16, |r| gpu.probe_coop(&out, GROUPS, r, 1.0, 1.0))?;
        let gflops = (COOP_FLOPS_PER_ROUND * GROUPS * rounds) as f64 / t.ms / 1e6;
        coop_gflops = Some(gflops);
        line("coop", GROUPS, rounds, &t, serde_json::json!({"gflops": gflops, "of_f16_tensor_peak": peak.map(|p| gflops / p.f16_tensor_gflops)}));
    }
    Ok(Probed { read_gbps, fma_gflops, coop_gflops })
}

/// Rounds from `start`, doubled (at most 2^16) until one run takes `TARGET_MS`, and the timing
/// of the launch with that many.
fn doubled(gpu: &Gpu, out: &wgpu::Buffer, start: usize, launch: impl Fn(usize) -> Result<Launch>) -> Result<(usize, Timing)> {
    let mut rounds = start;
    loop {
        let ds: Vec<Dispatch> = gpu.bind(&[launch(rounds)?], None)?;
        let refs: Vec<&Dispatch> = ds.iter().collect();
        let once = match pollster::block_on(gpu.time_dispatches(&refs))? {
            Some(t) => t.iter().sum(),
            None => Timing::of(gpu, &ds, out)?.ms,
        };
        if once >= TARGET_MS || rounds >= 1 << 16 {
            return Ok((rounds, Timing::of(gpu, &ds, out)?));
        }
        rounds *= 2;
    }
}
