//! Platform probes (`unmask bench --kernels probe`): what this adapter does through wgpu at
//! its simplest (one dispatch's own cost; streaming reads, `probe_read.wgsl`; workgroup-memory
//! reads, `probe_shared.wgsl`; independent f32 multiply-adds, `probe_fma.wgsl`;
//! cooperative-matrix multiply-adds, `probe_coop.wgsl`), so
//! that a kernel's speed is read against what the platform (driver, naga, loop bounding)
//! delivers, not only against the data sheet. Each probe writes a checksum; its CPU twin here
//! recomputes it (tests/kernels.rs).

use super::kernels::{u32_of, Kernel, Launch};
use super::Gpu;
use crate::error::{Error, Result};
use bytemuck::{Pod, Zeroable};

/// Which probe a launch runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Probe {
    Read,
    Shared,
    Fma,
    Coop,
}

/// Invocations of a probe workgroup (read and fma; coop: four subgroups).
pub const PROBE_WG: usize = 256;
/// Bytes of workgroup memory one invocation of `probe_shared.wgsl` reads a round.
pub const SHARED_BYTES_PER_ROUND: usize = 4 * 16;
/// f32 multiply-adds one invocation of `probe_fma.wgsl` runs a round.
pub const FMA_PER_ROUND: usize = 32;
/// Flops one workgroup of `probe_coop.wgsl` runs a round: four subgroups × four 16×16×16
/// products, two flops a multiply-add.
pub const COOP_FLOPS_PER_ROUND: usize = 4 * 4 * 16 * 16 * 16 * 2;

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct Params(u32, f32, f32, u32);

impl Gpu {
    /// `groups` workgroups of `probe_read.wgsl`, reading `rounds` 16-byte words an invocation
    /// from `src` (at least `groups · 256 · rounds` words) and writing one u32 an invocation to
    /// `out`.
    pub fn probe_read(&self, src: &wgpu::Buffer, out: &wgpu::Buffer, groups: usize, rounds: usize) -> Result<Launch> {
        let n = groups * PROBE_WG;
        if src.size() < (n * rounds * 16) as u64 || out.size() < (n * 4) as u64 {
            return Err(Error::Gpu("internal: probe buffers smaller than the probe's reads and writes".into()));
        }
        self.launch(Kernel::Probe(Probe::Read), &Params(u32_of("rounds", rounds)?, 0.0, 0.0, 0), &[src, out], [u32_of("groups", groups)?, 1, 1])
    }

    /// `groups` workgroups of `probe_shared.wgsl`: `rounds` rounds of four workgroup-memory
    /// reads, one u32 an invocation into `out`.
    pub fn probe_shared(&self, out: &wgpu::Buffer, groups: usize, rounds: usize) -> Result<Launch> {
        if out.size() < (groups * PROBE_WG * 4) as u64 {
            return Err(Error::Gpu("internal: probe output smaller than one value an invocation".into()));
        }
        self.launch(Kernel::Probe(Probe::Shared), &Params(u32_of("rounds", rounds)?, 0.0, 0.0, 0), &[out], [u32_of("groups", groups)?, 1, 1])
    }

    /// `groups` workgroups of `probe_fma.wgsl`: `rounds` rounds of a ← a·b + c, one f32 an
    /// invocation into `out`.
    pub fn probe_fma(&self, out: &wgpu::Buffer, groups: usize, rounds: usize, b: f32, c: f32) -> Result<Launch> {
        if out.size() < (groups * PROBE_WG * 4) as u64 {
            return Err(Error::Gpu("internal: probe output smaller than one value an invocation".into()));
        }
        self.launch(Kernel::Probe(Probe::Fma), &Params(u32_of("rounds", rounds)?, b, c, 0), &[out], [u32_of("groups", groups)?, 1, 1])
    }

    /// `groups` workgroups of `probe_coop.wgsl` (where the adapter has cooperative matrices,
    /// or emulates them): `rounds` rounds of four products, one f32 a lane into `out`.
    pub fn probe_coop(&self, out: &wgpu::Buffer, groups: usize, rounds: usize, a: f32, b: f32) -> Result<Launch> {
        if self.coop_lanes == 0 {
            return Err(Error::Gpu(format!("{}: no cooperative matrices to probe", self.report.name)));
        }
        if out.size() < (groups * 4 * self.coop_lanes as usize * 4) as u64 {
            return Err(Error::Gpu("internal: probe output smaller than one value a lane".into()));
        }
        self.launch(Kernel::Probe(Probe::Coop), &Params(u32_of("rounds", rounds)?, a, b, 0), &[out], [u32_of("groups", groups)?, 1, 1])
    }

    /// The subgroup size `probe_coop.wgsl` runs with (0: none).
    pub fn coop_lanes(&self) -> u32 {
        self.coop_lanes
    }
}

/// CPU twin of `probe_read.wgsl` over `words` (16-byte words as four u32) for `groups`
/// workgroups and `rounds` rounds: each invocation's wrapping sum.
pub fn read_twin(words: &[[u32; 4]], groups: usize, rounds: usize) -> Vec<u32> {
    let n = groups * PROBE_WG;
    (0..n)
        .map(|i| {
            let mut s = [0u32; 4];
            for j in 0..rounds {
                for (a, b) in s.iter_mut().zip(words[i + j * n]) {
                    *a = a.wrapping_add(b);
                }
            }
            s.iter().fold(0u32, |a, &b| a.wrapping_add(b))
        })
        .collect()
}

/// CPU twin of `probe_shared.wgsl` for `groups` workgroups and `rounds` rounds.
pub fn shared_twin(groups: usize, rounds: usize) -> Vec<u32> {
    let word = |e: usize| (0..4).map(|c| (e + c) as u32).fold(0u32, u32::wrapping_add);
    (0..groups * PROBE_WG)
        .map(|g| {
            let tid = g % PROBE_WG;
            (0..rounds).flat_map(|j| (0..4).map(move |q| word((tid + j + 256 * q) % 1024))).fold(0u32, u32::wrapping_add)
        })
        .collect()
}

/// CPU twin of `probe_fma.wgsl` for `n` invocations: the chains' sums in the kernel's order.
pub fn fma_twin(n: usize, rounds: usize, b: f32, c: f32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let a0 = (i % 7) as f32;
            let lanes: Vec<f32> = (0..FMA_PER_ROUND)
                .map(|l| {
                    let mut a = a0 + l as f32;
                    for _ in 0..rounds {
                        a = a.mul_add(b, c);
                    }
                    a
                })
                .collect();
            // Lane l is element l % 4 of chain l / 4; the kernel adds chains in pairs, then the
            // pairs, then the elements.
            let chain = |k: usize, e: usize| lanes[4 * k + e];
            let s: Vec<f32> = (0..4)
                .map(|e| (chain(0, e) + chain(1, e)) + (chain(2, e) + chain(3, e)) + ((chain(4, e) + chain(5, e)) + (chain(6, e) + chain(7, e))))
                .collect();
            (s[0] + s[1]) + (s[2] + s[3])
        })
        .collect()
}

/// CPU twin of `probe_coop.wgsl` for `groups` workgroups of subgroups of `lanes`: lane l's
/// value, 4 · rounds · (A·B)[l] with A and B as the kernel builds them (rounded to f16).
pub fn coop_twin(groups: usize, lanes: usize, rounds: usize, a: f32, b: f32) -> Vec<f32> {
    let h = |v: f32| half::f16::from_f32(v).to_f32();
    let am = |i: usize, j: usize| h(((i * 16 + j) % 5) as f32 * a);
    let bm = |k: usize, j: usize| h(((j * 16 + k) % 3) as f32 * b);
    let product = |l: usize| (0..16).map(|k| am(l / 16, k) * bm(k, l % 16)).sum::<f32>();
    let per_lane: Vec<f32> = (0..lanes)
        .map(|l| {
            let mut c = 0.0f32;
            for _ in 0..rounds {
                c += product(l);
            }
            4.0 * c
        })
        .collect();
    (0..groups * 4).flat_map(|_| per_lane.iter().copied()).collect()
}
