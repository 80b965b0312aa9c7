//! Every WGSL kernel against its CPU twin on odd shapes (not multiples of the tiles), on the
//! real adapter (lavapipe here). Tolerances: f32 work 1e-4 relative (2e-4 where sin/cos/exp of
//! the GPU's own math library enter); quantized matmuls are compared with the CPU matmul of the
//! same dequantized weights, so the same 1e-4 applies.

mod common;
use common::{assert_close, gpu};
use std::sync::Arc;
use unmask::choice::{self, Noise};
use unmask::cpu::ops;
use unmask::engine::GpuWeight;
use unmask::gpu::kernels::{
    Activation, AttnMask, AttnShape, Epilogue, HeadPass, KernelVariant, KvType, Launch, MoeIo, MoeShape, NoiseUniform, RopeSpec, NOISE_BYTES,
};
use unmask::gpu::Gpu;
use unmask::model::config::Routing;
use unmask::model::{DType, HostTensor, RopeStyle};
use unmask::synth::Rng;

fn run(g: &Gpu, ls: &[Launch], out: &wgpu::Buffer, n: usize) -> Vec<f32> {
    let ds = g.bind(ls, None).unwrap();
    let mut enc = g.device.create_command_encoder(&Default::default());
    g.record(&mut enc, &ds);
    let bytes = pollster::block_on(g.submit_and_read(enc, &[(out, 0, (n * 4) as u64)])).unwrap();
    bytemuck::pod_collect_to_vec(&bytes)
}

/// The adapter, checked to run kernel layout `v` (lavapipe runs both).
fn gpu_with(v: KernelVariant) -> Arc<Gpu> {
    let g = gpu();
    g.check_kernels(v).unwrap_or_else(|e| panic!("{e}"));
    g
}

const VARIANTS: [KernelVariant; 2] = [KernelVariant::Tiled, KernelVariant::CpuLanes];

/// The four attention kernels: the portable layout's three (for GPUs: flash with K/V staged in
/// workgroup memory, or read in its loops; or not flash) and the CPU lanes'. As
/// (variant, flash, tiles).
const ATTENTION: [(KernelVariant, bool, bool); 4] =
    [(KernelVariant::Tiled, false, false), (KernelVariant::Tiled, true, false), (KernelVariant::Tiled, true, true), (KernelVariant::CpuLanes, false, false)];

/// Devices of their own whose row kernels (rmsnorm.wgsl, select.wgsl, softmax.wgsl) run
/// workgroups of CPU adapters' 8 and of GPUs' 256 invocations, with the number.
fn row_gpus() -> [(u32, Arc<Gpu>); 2] {
    [8, 256].map(|wg| {
        let g = common::own_gpu();
        g.set_row_workgroup(wg).expect("8 and 256 are row workgroups");
        (wg, g)
    })
}

/// A device of its own running attention layout `(variant, flash, tiles)` (so that no other
/// test sees the switches), with a name for messages.
fn attention_gpu((variant, flash, tiles): (KernelVariant, bool, bool)) -> (Arc<Gpu>, KernelVariant, String) {
    let g = common::own_gpu();
    g.check_kernels(variant).unwrap_or_else(|e| panic!("{e}"));
    g.set_flash_attention(flash);
    g.set_tiled_attention(tiles).expect("lavapipe and SwiftShader give a workgroup 32 KB");
    let name = match (flash, tiles) {
        (false, _) => "",
        (true, false) => " flash",
        (true, true) => " flash tiles",
    };
    (g, variant, format!("{}{name}", variant.name()))
}

/// Attention as a session launches it: with room for split-K (`[q, k, v, out]`).
fn attend(g: &Gpu, variant: KernelVariant, [q, k, v, out]: [&wgpu::Buffer; 4], s: AttnShape, mask: AttnMask) -> Vec<Launch> {
    let scratch = g.storage("split-K scratch", AttnShape::split_scratch_bound(s.lq.max(s.lk), s.n_heads, s.head_dim).max(4)).unwrap();
    g.attention(variant, q, k, v, out, s, mask, KvType::F32, KvType::F32, Some(&scratch)).unwrap()
}

/// The output `y0` (`[*, stride]` from element `off`) after an epilogue applies the `m` × `n`
/// product `prod` to it.
fn after_epilogue(y0: &[f32], prod: &[f32], (m, n): (usize, usize), off: usize, stride: usize, e: Epilogue) -> Vec<f32> {
    let mut want = y0.to_vec();
    for i in 0..m {
        for j in 0..n {
            want[off + i * stride + j] = e.apply(y0[off + i * stride + j], prod[i * n + j]);
        }
    }
    want
}

/// Both matmul variants against the CPU matmul.
fn check_matmul(dtype: DType, m: usize, k: usize, n: usize, chunk_rows: Option<usize>, seed: u64) {
    for v in VARIANTS {
        check_matmul_on(&gpu_with(v), v, dtype, m, k, n, chunk_rows, seed);
    }
}

#[allow(clippy::too_many_arguments)]
fn check_matmul_on(g: &Gpu, v: KernelVariant, dtype: DType, m: usize, k: usize, n: usize, chunk_rows: Option<usize>, seed: u64) {
    let mut rng = Rng::new(seed);
    let x = rng.vec(m * k, 1.0);
    let w = HostTensor::encode(dtype, n, k, &rng.vec(n * k, 1.0)).unwrap();
    let want = ops::matmul(&x, &w, m);
    let limit = chunk_rows.map(|r| (r * w.row_bytes()) as u64).unwrap_or(u64::MAX);
    let gw = GpuWeight::upload(g, "w", &w, limit).unwrap();
    if let Some(r) = chunk_rows {
        assert_eq!(gw.chunks.len(), n.div_ceil(r), "the weight was split into chunks");
    }
    let xb = g.upload_f32("x", &x).unwrap();
    let yb = g.storage("y", (m * n * 4) as u64).unwrap();
    let ds = gw.matmul(g, v, &xb, 0, m, &yb, 0, n, Epilogue::Store).unwrap();
    let got = run(g, &ds, &yb, m * n);
    assert_close(&format!("matmul {} ({}) {m}x{k}x{n}", dtype.name(), v.name()), &got, &want, 1e-4);
}

#[test]
fn matmul_f32_odd_shapes() {
    check_matmul(DType::F32, 7, 97, 33, None, 1);
    check_matmul(DType::F32, 1, 5, 1, None, 2);
    check_matmul(DType::F32, 70, 130, 67, None, 3);
}

#[test]
fn matmul_f16_and_bf16_odd_shapes() {
    for d in [DType::F16, DType::BF16] {
        check_matmul(d, 7, 97, 33, None, 4);
        check_matmul(d, 65, 31, 129, None, 5);
    }
}

#[test]
fn matmul_q8_0_and_q4_0() {
    for d in [DType::Q8_0, DType::Q4_0] {
        check_matmul(d, 7, 96, 33, None, 6);
        check_matmul(d, 67, 160, 70, None, 7);
        check_matmul(d, 1, 32, 5, None, 8);
    }
}

/// The CPU-lanes matmul reads x a vec4 a lane where every row starts at a multiple of 4 (k and
/// the offset are: `cpu_vec4_rows`), a value a lane elsewhere, and the weights a vec4 at a time
/// where the format allows (`cpu_vec4_weights`: plain rows that start 16 bytes aligned, Q4_K's
/// super-blocks, Q6_K's at any even byte, a buffer of one block among them; not Q4_0 or
/// Q8_0):
/// each way against the CPU twin, with k off the slices of 8 (the edge's loop after the vec4
/// reads), rows off the blocks of 16 and columns off the workgroups of 64, into NaN-filled
/// outputs.
#[test]
fn the_cpu_lanes_matmul_reads_aligned_rows_as_vec4s_and_others_by_value() {
    use unmask::gpu::kernels::{Kernel, MatmulIo};
    let g = gpu_with(KernelVariant::CpuLanes);
    // (m, k, n, x offset, format, x read as vec4s, weights read as vec4s)
    let cases = [
        (19, 36, 70, 8, DType::F32, true, true),
        (5, 36, 9, 6, DType::F32, false, true),
        (17, 30, 5, 0, DType::F32, false, false),
        (33, 100, 65, 0, DType::F16, true, false),
        (9, 104, 65, 0, DType::F16, true, true),
        (21, 40, 17, 2, DType::BF16, false, true),
        (6, 48, 3, 0, DType::BF16, true, true),
        (7, 64, 33, 4, DType::Q4_0, true, false),
        (7, 64, 33, 2, DType::Q8_0, false, false),
        (9, 512, 19, 0, DType::Q4K, true, true),
        (3, 256, 5, 2, DType::Q4K, false, true),
        (17, 256, 66, 0, DType::Q4K, true, true),
        (4, 512, 7, 0, DType::Q6K, true, true),
        (17, 256, 66, 1, DType::Q6K, false, true),
        (2, 256, 1, 0, DType::Q6K, true, true),
        (3, 4, 2, 0, DType::F32, true, true),
        (1, 3, 2, 0, DType::F32, false, false),
    ];
    for (ci, (m, k, n, x_off, dtype, vec_x, vec_w)) in cases.into_iter().enumerate() {
        let mut rng = Rng::new(ci as u64 + 90);
        let x = rng.vec(x_off + m * k, 1.0);
        let w = match dtype {
            DType::Q4K | DType::Q6K => common::random_blocks(dtype, n, k, ci as u64),
            _ => HostTensor::encode(dtype, n, k, &rng.vec(n * k, 1.0)).unwrap(),
        };
        let want = ops::matmul(&x[x_off..], &w, m);
        let gw = GpuWeight::upload(&g, "w", &w, u64::MAX).unwrap();
        let (xb, yb) = (g.upload_f32("x", &x).unwrap(), g.upload_f32("y", &vec![f32::NAN; m * n]).unwrap());
        let io = MatmulIo {
            x: &xb,
            x_offset: x_off,
            y: &yb,
            y_offset: 0,
            y_stride: n,
            epilogue: Epilogue::Store,
            norm: None,
            rope: None,
            x_f16: false,
            y_f16: false,
        };
        let ls = g.matmul(KernelVariant::CpuLanes, dtype, &gw.chunks[0].0, m, n, k, io).unwrap();
        let what = format!("CPU-lanes matmul {} {m}×{k}×{n} from x element {x_off}", dtype.name());
        // (x buffers under a uniform window: read from their storage binding.)
        let kinds: Vec<_> = ls.iter().map(|l| l.kernel).collect();
        assert!(matches!(kinds[..], [Kernel::Matmul { x4, w4, xw: false, .. }] if (x4, w4) == (vec_x, vec_w)), "{what}: {kinds:?}");
        assert_close(&what, &run(&g, &ls, &yb, m * n), &want, 1e-4);
    }
}

/// Every row of every window lies inside its window and the buffer, the windows cover the
/// rows once, in order, and start aligned.
fn check_windows(m: usize, k: usize, x_offset: usize, size: u64, align: u64, ws: &[unmask::gpu::matmul_window::XWindow]) {
    use unmask::gpu::kernel_specs::CPU_LANES_ROWS;
    use unmask::gpu::matmul_window::X_WINDOW_BYTES;
    let mut next = 0;
    for w in ws {
        assert_eq!(w.row0, next, "{ws:?}");
        assert!(w.byte.is_multiple_of(align) && w.byte + X_WINDOW_BYTES <= size, "{ws:?}");
        assert_eq!(w.byte + 4 * w.x_offset as u64, 4 * (x_offset + w.row0 * k) as u64, "{ws:?}");
        assert!(4 * (w.x_offset + w.rows * k) as u64 <= X_WINDOW_BYTES, "{ws:?}");
        next += w.rows;
    }
    assert_eq!(next, m, "{ws:?}");
    assert!(ws[..ws.len() - 1].iter().all(|w| w.rows.is_multiple_of(CPU_LANES_ROWS)), "{ws:?}");
}

/// The CPU-lanes matmul's x windows (`matmul_window::x_windows`, planned on the host).
#[test]
fn x_windows_cover_the_rows_inside_the_buffer_or_there_are_none() {
    use unmask::gpu::matmul_window::{max_windows, x_windows};
    let mib = 1 << 20;
    // (m, k, x_offset, buffer bytes, alignment, windows expected)
    let cases = [
        (32, 256, 0, mib, 256, Some(1)),
        (64, 256, 0, mib, 256, Some(1)),
        (65, 256, 0, mib, 256, Some(2)),
        (128, 256, 0, mib, 256, Some(2)),
        (129, 256, 0, mib, 256, Some(3)),
        // Unaligned starts: the window begins before the rows; fewer whole rows fit.
        (64, 256, 4, mib, 256, Some(2)),
        (32, 768, 12, mib, 32, Some(2)),
        (40, 768, 12, mib, 32, Some(3)),
        (17, 1020, 0, mib, 32, Some(2)),
        (33, 1020, 0, mib, 32, Some(3)),
        (300, 256, 0, mib, 32, Some(5)),
        // A row longer than a window, and rows that fit only one a window.
        (1, 16_384, 0, mib, 256, Some(1)),
        (1, 16_388, 0, mib, 256, None),
        (2, 8192, 0, mib, 256, Some(1)),
        (3, 8192, 0, mib, 256, None),
        // The buffer's end: the last window starts before the rows.
        (3, 64, 16_384 - 192, 65536, 256, Some(1)),
        (20, 100, 65_536 / 4 - 2000, 65536 + 48, 32, Some(1)),
        // Not vec4 rows, no room for a window, or nothing to do.
        (8, 254, 0, mib, 256, None),
        (8, 256, 2, mib, 256, None),
        (8, 256, 0, 65532, 256, None),
        (0, 256, 0, mib, 256, None),
    ];
    for (m, k, x_offset, size, align, want) in cases {
        let ws = x_windows(m, k, x_offset, size, align);
        assert_eq!(ws.as_ref().map(Vec::len), want, "m {m}, k {k}, x offset {x_offset}, {size} bytes: {ws:?}");
        if let Some(ws) = ws {
            assert!(ws.len() <= max_windows(m), "{ws:?}");
            check_windows(m, k, x_offset, size, align, &ws);
        }
    }
}

/// The CPU-lanes matmul reading x through uniform windows (`Gpu::x_windows`, matmul_window.rs:
/// on native CPU adapters, lavapipe here) against the CPU twin: one window, two, three (each
/// launch its own output rows), rows too long for a block of 16 in a window or a buffer smaller
/// than one (x from its storage binding instead), rows that start off the windows' alignment, k off the slices of 8 (the edge loop reads the window from
/// binding 2), the buffer's last window starting before the rows; x followed by NaNs in its
/// buffer (nothing past the rows may be read) and each result added into y at an offset and a
/// stride. The same with the switch off: one launch from the storage binding.
#[test]
fn the_cpu_lanes_matmul_reads_x_through_uniform_windows() {
    use unmask::gpu::kernels::{Kernel, MatmulIo};
    use unmask::gpu::matmul_window::X_WINDOW_BYTES;
    let g = common::own_gpu();
    assert!(g.x_windows(), "{}: a native CPU adapter reads x through windows", g.report.name);
    let window = X_WINDOW_BYTES as usize / 4;
    // (m, k, n, x offset, x buffer length in f32s (None: the rows end the buffer), format,
    // windows; 0: x from the storage binding)
    let cases = [
        (37, 256, 70, 0, Some(window + 100), DType::F32, 1),
        (100, 256, 33, 4, Some(2 * window), DType::F16, 2),
        (32, 768, 65, 12, Some(2 * window), DType::Q4K, 2),
        (150, 256, 33, 0, Some(3 * window), DType::F32, 3),
        (20, 2048, 9, 0, None, DType::Q4K, 0),
        (20, 36, 17, 8, Some(window), DType::F16, 1),
        (45, 64, 19, window + 128 - 45 * 64, Some(window + 128), DType::Q4_0, 1),
        (129, 128, 5, 0, None, DType::BF16, 2),
        (2, 256, 3, 0, Some(window / 2), DType::F32, 0),
    ];
    for (ci, (m, k, n, x_off, len, dtype, windows)) in cases.into_iter().enumerate() {
        let mut rng = Rng::new(ci as u64 + 190);
        let mut x = vec![f32::NAN; len.unwrap_or(x_off + m * k)];
        x[x_off..x_off + m * k].copy_from_slice(&rng.vec(m * k, 1.0));
        let w = match dtype {
            DType::Q4K | DType::Q6K => common::random_blocks(dtype, n, k, ci as u64),
            _ => HostTensor::encode(dtype, n, k, &rng.vec(n * k, 1.0)).unwrap(),
        };
        let prod = ops::matmul(&x[x_off..x_off + m * k], &w, m);
        let gw = GpuWeight::upload(&g, "w", &w, u64::MAX).unwrap();
        let (stride, off) = (n + 2, 3);
        let y0 = rng.vec(off + m * stride, 2.0);
        let want = after_epilogue(&y0, &prod, (m, n), off, stride, Epilogue::Add);
        let xb = g.upload_f32("x", &x).unwrap();
        for on in [true, false] {
            g.set_x_windows(on).unwrap();
            let yb = g.upload_f32("y", &y0).unwrap();
            let io = MatmulIo {
                x: &xb,
                x_offset: x_off,
                y: &yb,
                y_offset: off,
                y_stride: stride,
                epilogue: Epilogue::Add,
                norm: None,
                rope: None,
                x_f16: false,
                y_f16: false,
            };
            let ls = g.matmul(KernelVariant::CpuLanes, dtype, &gw.chunks[0].0, m, n, k, io).unwrap();
            let what = format!("CPU-lanes matmul {} {m}×{k}×{n} from x element {x_off} of {}, windows {on}", dtype.name(), x.len());
            let kinds: Vec<_> = ls.iter().map(|l| l.kernel).collect();
            let want_windows = if on { windows } else { 0 };
            assert_eq!(ls.len(), want_windows.max(1), "{what}: {kinds:?}");
            assert!(kinds.iter().all(|k| matches!(k, Kernel::Matmul { x4: true, xw, .. } if *xw == (want_windows > 0))), "{what}: {kinds:?}");
            assert_close(&what, &run(&g, &ls, &yb, want.len()), &want, 1e-4);
        }
    }
}

/// The 8×8 register tile (`matmul_wide.wgsl`, `Gpu::set_register_tile(8)`) against the CPU
/// twin: odd shapes in every format, short (32-row tiles) and long inputs, and the fused
/// launches' tests on it (Q/K/V with RoPE, biases and f16 K/V in the store, gate/up; folded
/// norms; unsplit and split-K).
#[test]
fn the_wide_register_tile_matches_the_cpu_twin() {
    let g = common::wide_gpu();
    assert!(g.set_register_tile(5).is_err(), "only 4×4 and 8×8");
    assert_eq!(g.register_tile(), 8);
    for (i, (d, m, k, n)) in
        [(DType::F32, 7, 97, 33), (DType::F32, 70, 130, 67), (DType::F16, 65, 31, 129), (DType::Q4_0, 33, 160, 70), (DType::Q8_0, 1, 32, 5)]
            .into_iter()
            .enumerate()
    {
        check_matmul_on(&g, KernelVariant::Tiled, d, m, k, n, None, 60 + i as u64);
    }
    qkv_in_one_launch_on(&g, false);
    let seen = rope_in_the_store_on(&g, false);
    assert!(seen[0], "the fused launch split on the wide tile: {seen:?}");
    gate_and_up_on(&g, false);
}

#[test]
fn matmul_split_weights_land_in_their_columns() {
    check_matmul(DType::F32, 9, 40, 50, Some(16), 9);
    check_matmul(DType::Q4_0, 9, 64, 50, Some(7), 10);
    check_matmul(DType::Q8_0, 3, 32, 21, Some(5), 11);
}

#[test]
fn matmul_rows_around_the_cpu_lanes_variant_blocks() {
    // 16 activation rows per invocation, 64 weight rows per workgroup, 8 columns of K per slice:
    // one short of, at and one past each, and K with a partial last slice.
    for m in [1, 7, 8, 9, 15, 16, 17, 33] {
        check_matmul(DType::F32, m, 38, 63, None, 20 + m as u64);
        check_matmul(DType::Q4_0, m, 64, 65, None, 40 + m as u64);
    }
    // The host launches a workgroup per CPU_LANES_ROWS rows, the kernel's R: were R larger, rows
    // would be computed twice and no output would show it. The grouped matmul's R (pairs a
    // round) is the same number, which `MoeShape::pairs_per_tile` reports.
    for (name, src) in
        [("matmul_cpu_lanes.wgsl", include_str!("../shaders/matmul_cpu_lanes.wgsl")), ("moe_matmul.wgsl", include_str!("../shaders/moe_matmul.wgsl"))]
    {
        assert!(src.contains(&format!("const R: u32 = {}u;", unmask::gpu::kernel_specs::CPU_LANES_ROWS)), "{name}'s R is not CPU_LANES_ROWS");
    }
    // Likewise the CPU-lanes attention's rows a workgroup, WG invocations of QR rows each.
    let src = include_str!("../shaders/attention_cpu_lanes.wgsl");
    let konst = |name: &str| -> usize {
        let line = src.lines().find_map(|l| l.strip_prefix(&format!("const {name}: u32 = "))).unwrap_or_else(|| panic!("no const {name}"));
        line.trim_end_matches(';').trim_end_matches('u').parse().unwrap_or_else(|e| panic!("const {name}: {e}"))
    };
    assert_eq!(konst("WG") * konst("QR"), unmask::gpu::kernel_specs::CPU_LANES_ATTENTION_ROWS, "attention_cpu_lanes.wgsl's WG · QR");
}

#[test]
fn cpu_adapters_get_the_subgroup_kernels() {
    // lavapipe (the adapter these tests run on) has subgroups of 8: the variant must be
    // available, so the checks above really ran it (gpu_with would have panicked otherwise).
    let g = gpu();
    assert!(g.subgroup_kernels || !g.report.name.contains("llvmpipe"), "lavapipe offers no subgroups of 8");
    // The library picks by the adapter alone (no environment variable is read below the CLI).
    let cpu = g.report.device_type == format!("{:?}", wgpu::DeviceType::Cpu);
    assert_eq!(g.default_kernels() == KernelVariant::CpuLanes, cpu && g.subgroup_kernels, "adapter {:?}", g.report.device_type);
}

#[test]
fn matmul_epilogues_into_an_offset_strided_output() {
    // The residual add and the gated MLP fused into the matmul (y = act(y) · x·Wᵀ: SwiGLU and
    // GeGLU), into an offset, strided output, against the CPU twin's `Epilogue::apply`: a
    // short input (32-row tiles) and a long one in Q4_0 split into chunks of rows, both layouts.
    let epilogues = [Epilogue::Add, Epilogue::Gated(Activation::Silu), Epilogue::Gated(Activation::GeluTanh)];
    for v in VARIANTS {
        let g = gpu_with(v);
        for (m, k, n, stride, off, dtype) in [(5, 37, 11, 19, 3, DType::F32), (40, 96, 130, 131, 7, DType::Q4_0)] {
            let mut rng = Rng::new((m * n) as u64);
            let x = rng.vec(m * k, 1.0);
            let w = HostTensor::encode(dtype, n, k, &rng.vec(n * k, 1.0)).unwrap();
            let prod = ops::matmul(&x, &w, m);
            let gw = GpuWeight::upload(&g, "w", &w, (48 * w.row_bytes()) as u64).unwrap();
            assert_eq!(gw.chunks.len(), n.div_ceil(48));
            for e in epilogues {
                let y0 = rng.vec(off + m * stride, 3.0);
                let want = after_epilogue(&y0, &prod, (m, n), off, stride, e);
                let (xb, yb) = (g.upload_f32("x", &x).unwrap(), g.upload_f32("y", &y0).unwrap());
                let ls = gw.matmul(&g, v, &xb, 0, m, &yb, off, stride, e).unwrap();
                assert_close(&format!("{e:?} matmul ({}, {} {m}×{k}×{n})", v.name(), dtype.name()), &run(&g, &ls, &yb, want.len()), &want, 1e-4);
            }
        }
    }
    // The twin's gate is the swiglu op's.
    let (gate, up) = ([-3.0f32, -0.5, 0.0, 0.7, 4.0], [1.5f32, -2.0, 3.0, 0.25, -1.0]);
    let fused: Vec<f32> = gate.iter().zip(&up).map(|(g, u)| Epilogue::Gated(Activation::Silu).apply(*g, *u)).collect();
    assert_close("the gated epilogue is SwiGLU", &fused, &ops::swiglu(&gate, &up), 1e-6);
}

#[test]
fn embed_every_dtype_and_split_tables() {
    let g = gpu();
    let (vocab, dim) = (37, 64);
    let mut rng = Rng::new(13);
    let tokens: Vec<u32> = (0..9).map(|_| rng.below(vocab as u32)).chain([0, vocab as u32 - 1]).collect();
    for dtype in [DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0] {
        let table = HostTensor::encode(dtype, vocab, dim, &rng.vec(vocab * dim, 1.0)).unwrap();
        let want = ops::embed(&table, &tokens);
        let gw = GpuWeight::upload(&g, "table", &table, (10 * table.row_bytes()) as u64).unwrap();
        assert_eq!(gw.chunks.len(), 4);
        let tb = g.upload("tokens", bytemuck::cast_slice(&tokens)).unwrap();
        let out = g.storage("out", (tokens.len() * dim * 4) as u64).unwrap();
        let ds: Vec<_> = gw.chunks.iter().map(|(b, r0, rows)| g.embed(dtype, b, *r0, *rows, dim, &tb, tokens.len(), &out).unwrap()).collect();
        assert_close(&format!("embed {}", dtype.name()), &run(&g, &ds, &out, want.len()), &want, 1e-6);
        let ds: Vec<_> = gw.chunks.iter().map(|(b, r0, rows)| g.embed_scaled(dtype, b, *r0, *rows, dim, &tb, tokens.len(), &out, 53.0625).unwrap()).collect();
        let want: Vec<f32> = want.iter().map(|v| v * 53.0625).collect();
        assert_close(&format!("embed {} scaled", dtype.name()), &run(&g, &ds, &out, want.len()), &want, 1e-6);
    }
}

#[test]
fn rmsnorm_rows_wider_and_narrower_than_the_workgroup() {
    for ((wg, g), (rows, dim)) in row_gpus().into_iter().flat_map(|g| [(5, 300), (3, 33), (1, 1024), (2, 7), (19, 40)].map(|s| (g.clone(), s))) {
        let mut rng = Rng::new(dim as u64);
        let x = rng.vec(rows * dim, 3.0);
        let w = rng.vec(dim, 1.0);
        let want = ops::rmsnorm(&x, &w, 1e-5);
        let (wb, xb, out) = (g.upload_f32("w", &w).unwrap(), g.upload_f32("x", &x).unwrap(), g.storage("o", (rows * dim * 4) as u64).unwrap());
        let d = g.rmsnorm(&wb, &xb, &out, rows, dim, 1e-5).unwrap();
        assert_close(&format!("rmsnorm {rows}x{dim}, workgroups of {wg}"), &run(&g, &[d], &out, rows * dim), &want, 1e-4);
        // Added to a residual stream and the sum scaled (Gemma 4's sandwich norm and layer scalar).
        let resid = rng.vec(rows * dim, 2.0);
        let mut want = resid.clone();
        ops::rmsnorm_into(&mut want, &x, &w, 1e-5, true, 0.37);
        let rb = g.upload_f32("resid", &resid).unwrap();
        let d = g.rmsnorm_into(&wb, (&xb, 0), &rb, rows, dim, 1e-5, true, 0.37, KvType::F32).unwrap();
        assert_close(&format!("rmsnorm into {rows}x{dim}, workgroups of {wg}"), &run(&g, &[d], &rb, rows * dim), &want, 1e-4);
        // The rows from x_row on (a pass's last rows) into rows 0 .. of the output.
        let x_row = rows / 2;
        let want = ops::rmsnorm(&x[x_row * dim..], &w, 1e-5);
        let out = g.upload_f32("o", &vec![f32::NAN; rows * dim]).unwrap();
        let d = g.rmsnorm_into(&wb, (&xb, x_row), &out, rows - x_row, dim, 1e-5, false, 1.0, KvType::F32).unwrap();
        let got = run(&g, &[d], &out, rows * dim);
        assert_close(&format!("rmsnorm of rows {x_row}.. of {rows}x{dim}, workgroups of {wg}"), &got[..want.len()], &want, 1e-4);
        assert!(got[want.len()..].iter().all(|v| v.is_nan()), "rows past the count are not written");
    }
}

#[test]
fn rope_neox_and_interleaved_at_an_offset() {
    let g = gpu();
    // (style, heads, head_dim, spec): plain RoPE; LLaDA 2's partial RoPE over the first half of
    // each head (partial_rotary_factor 0.5); DiffusionGemma's proportional RoPE (3 of 14 pairs,
    // 64 of 256, frequencies over the whole head, pairs half a head apart). What does not turn
    // must stay as it was.
    let prop = |pairs: usize, hd: usize| RopeSpec { theta: 1e6, pairs, half: hd / 2, denom: hd, freq_scale: 1.0 };
    let first = |rot: usize| RopeSpec::first(rot, 500000.0);
    for (style, heads, hd, spec) in [
        (RopeStyle::NeoX, 3, 16, first(16)),
        (RopeStyle::Interleaved, 3, 16, first(16)),
        (RopeStyle::NeoX, 2, 64, first(64)),
        (RopeStyle::Interleaved, 1, 128, first(128)),
        (RopeStyle::NeoX, 3, 16, first(8)),
        (RopeStyle::NeoX, 2, 128, first(64)),
        (RopeStyle::NeoX, 2, 28, prop(3, 28)),
        (RopeStyle::NeoX, 1, 512, prop(64, 512)),
    ] {
        let (total_rows, row0, rows) = (9, 2, 5);
        let mut rng = Rng::new(hd as u64);
        let x = rng.vec(total_rows * heads * hd, 1.0);
        let positions: Vec<u32> = vec![0, 1, 7, 300, 4095];
        let mut want = x.clone();
        ops::rope(&mut want[row0 * heads * hd..(row0 + rows) * heads * hd], &positions, heads, hd, spec, style);
        if style == RopeStyle::NeoX && spec.pairs < hd / 2 {
            for r in row0..row0 + rows {
                for h in 0..heads {
                    let at = (r * heads + h) * hd;
                    let turned = |d: usize| d < spec.pairs || (d >= spec.half && d < spec.half + spec.pairs);
                    for d in (0..hd).filter(|&d| !turned(d)) {
                        assert_eq!(want[at + d], x[at + d], "the twin leaves dimension {d} alone ({spec:?})");
                    }
                }
            }
        }
        let (xb, pb) = (g.upload_f32("x", &x).unwrap(), g.upload("pos", bytemuck::cast_slice(&positions)).unwrap());
        let d = g.rope(&xb, &pb, row0, rows, heads, hd, spec, style).unwrap();
        let got = run(&g, &[d], &xb, x.len());
        let row = heads * hd;
        // Rows before and after the range are untouched; rows at positions ≤ 300 within 2e-4.
        let near = (row0 + 4) * row;
        assert_close(&format!("rope {style:?} h{heads} d{hd} {spec:?}"), &got[..near], &want[..near], 2e-4);
        assert_eq!(&got[(row0 + rows) * row..], &x[(row0 + rows) * row..]);
        // At position 4095 the angle itself is an f32 near 4095 rad, whose spacing is 2^-12 rad:
        // any f32 implementation may differ from another by a few of those. Allow 4 spacings.
        for (i, (a, b)) in got[near..near + row].iter().zip(&want[near..near + row]).enumerate() {
            assert!((a - b).abs() <= 4.0 * 2f32.powi(-12), "rope {style:?} at position 4095, element {i}: {a} vs {b}");
        }
    }
}

#[test]
fn geglu_and_softcap_elementwise() {
    // Gemma's gelu_pytorch_tanh-gated MLP (the matmuls' gated epilogue: a 1×1 identity weight
    // makes it elementwise) and final logit soft-capping, on odd lengths, with values far past
    // where tanh saturates (the kernels clamp its argument: no NaN).
    let g = gpu();
    let mut rng = Rng::new(15);
    let (mut gate, up) = (rng.vec(1003, 6.0), rng.vec(1003, 2.0));
    gate[0] = 80.0;
    gate[1] = -80.0;
    let want = ops::glu(&gate, &up, ops::Activation::GeluTanh);
    assert!((ops::Activation::GeluTanh.apply(1.0) - 0.841192).abs() < 1e-5, "gelu_tanh(1) as torch gives it");
    let one = GpuWeight::upload(&g, "1", &HostTensor::encode(DType::F32, 1, 1, &[1.0]).unwrap(), 1 << 20).unwrap();
    for v in VARIANTS {
        let (gb, ub) = (g.upload_f32("g", &gate).unwrap(), g.upload_f32("u", &up).unwrap());
        let ls = one.matmul(&g, v, &ub, 0, gate.len(), &gb, 0, 1, Epilogue::Gated(Activation::GeluTanh)).unwrap();
        assert_close(&format!("geglu ({})", v.name()), &run(&g, &ls, &gb, gate.len()), &want, 2e-4);
    }
    let mut x = rng.vec(4097, 80.0);
    x[0] = 1e30;
    let mut want = x.clone();
    ops::softcap(&mut want, 30.0);
    assert!(want.iter().all(|v| v.abs() <= 30.0));
    let xb = g.upload_f32("x", &x).unwrap();
    let d = g.softcap(&xb, x.len(), 30.0).unwrap();
    assert_close("softcap", &run(&g, &[d], &xb, x.len()), &want, 1e-5);
    assert!(g.softcap(&xb, 1, 0.0).is_err());
}

#[test]
fn softmax_rows_and_soft_embedding_over_a_split_table() {
    // DiffusionGemma's self-conditioning input: softmax of each logit row, then the expected
    // embedding under it, scaled by √H; rows wider than a workgroup, odd sizes (21 rows of a
    // 32-row tile; chunks of 600 and 401 table rows, neither a whole number of 16-row slices;
    // 70 columns: a 64-column tile and an edge inside a group of four; 96: one and a half
    // tiles), and a table in two chunks (the second accumulates), in the formats an embedding
    // comes in. A device of its own: it switches split-K.
    let g = common::own_gpu();
    let (m, vocab) = (21, 1001);
    let mut rng = Rng::new(16);
    let logits = rng.vec(m * vocab, 8.0);
    let mut want_p = logits.clone();
    ops::softmax_rows(&mut want_p, vocab);
    for row in want_p.chunks(vocab) {
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-4);
    }
    // At a temperature: softmax(x / t).
    let mut want_t: Vec<f32> = logits.iter().map(|x| x / 0.55).collect();
    ops::softmax_rows(&mut want_t, vocab);
    for (wg, rg) in row_gpus() {
        let pb = rg.upload_f32("p", &logits).unwrap();
        let d = rg.softmax(&pb, m, vocab).unwrap();
        assert_close(&format!("softmax rows, workgroups of {wg}"), &run(&rg, &[d], &pb, m * vocab), &want_p, 1e-5);
        let tb = rg.upload_f32("t", &logits).unwrap();
        let d = rg.softmax_scaled(&tb, m, vocab, 1.0 / 0.55).unwrap();
        assert_close(&format!("softmax rows at temperature 0.55, workgroups of {wg}"), &run(&rg, &[d], &tb, m * vocab), &want_t, 1e-5);
    }
    // The soft embedding reads the twin's probabilities; with split-K (GPUs' default) a chunk of
    // 600 table rows is cut in two slices (320 + 280: not a whole number of 16-row steps) that
    // matmul_merge.wgsl sums, written first or accumulated after the other chunk; 401 rows stay
    // whole (fewer than two slices of 256).
    let pb = g.upload_f32("p", &want_p).unwrap();
    for (dtype, dim) in [(DType::F32, 64), (DType::F32, 70), (DType::F16, 70), (DType::Q8_0, 96), (DType::Q4_0, 64), (DType::Q4_0, 96)] {
        let table = HostTensor::encode(dtype, vocab, dim, &rng.vec(vocab * dim, 1.0)).unwrap();
        let want = ops::soft_embed(&want_p, &table, 8.0);
        for (spread, split) in [(false, 600), (true, 600), (true, 401)] {
            g.set_split_matmul(spread);
            let (a, b) = (
                HostTensor { dtype, rows: split, cols: dim, data: table.data[..split * table.row_bytes()].to_vec() },
                HostTensor { dtype, rows: vocab - split, cols: dim, data: table.data[split * table.row_bytes()..].to_vec() },
            );
            let (ab, bb) = (g.upload("a", &a.data).unwrap(), g.upload("b", &b.data).unwrap());
            let slices = g.soft_embed_split(m, dim, 600);
            assert_eq!(slices.splits, if spread { 2 } else { 1 }, "600 table rows");
            assert_eq!(g.soft_embed_split(m, dim, 401).splits, 1, "401 table rows");
            let scratch = g.storage("split", slices.bytes(m, dim)).unwrap();
            // Written from output row 3 (the rows of one chunk of a longer canvas).
            let out = g.storage("out", ((m + 3) * dim * 4) as u64).unwrap();
            let l1 = g.soft_embed(dtype, &ab, 0, split, dim, &pb, vocab, m, &out, 3, 8.0, false, Some(&scratch)).unwrap();
            let l2 = g.soft_embed(dtype, &bb, split, vocab - split, dim, &pb, vocab, m, &out, 3, 8.0, true, Some(&scratch)).unwrap();
            let launches = [l1.len(), l2.len()];
            assert_eq!(
                launches,
                if !spread {
                    [1, 1]
                } else if split == 600 {
                    [2, 1]
                } else {
                    [1, 2]
                },
                "slices and their merge"
            );
            let got = run(&g, &l1.into_iter().chain(l2).collect::<Vec<_>>(), &out, (m + 3) * dim);
            assert_close(&format!("soft embedding {} × {dim}, table in chunks of {split}, split-K {spread}", dtype.name()), &got[3 * dim..], &want, 1e-4);
        }
    }
    assert!(g.soft_embed(DType::F32, &pb, 1000, 2, 64, &pb, vocab, m, &pb, 0, 1.0, false, None).is_err(), "rows past the vocabulary");
}

#[test]
fn attention_bidirectional_with_gqa() {
    // Both layouts; lq 70 spans several workgroups (16 rows each in the GPU and CPU-lanes
    // layouts, 64 in the portable one); head_dim 12 is not a multiple of 8, so the CPU-lanes
    // device falls back to the portable kernel for it; 512 and 300 take the wide copies
    // (DiffusionGemma's full layers are 512 wide).
    for layout in ATTENTION {
        let (g, variant, name) = attention_gpu(layout);
        for (lq, lk, heads, kv, hd) in [
            (7, 7, 4, 4, 16),
            (7, 13, 4, 2, 16),
            (5, 70, 2, 1, 64),
            (3, 130, 4, 2, 128),
            (1, 1, 1, 1, 16),
            (70, 9, 2, 2, 8),
            (6, 5, 3, 1, 12),
            (5, 37, 2, 1, 512),
            (66, 11, 2, 2, 300),
            // Dream's 7 query heads a K/V head (slots of a workgroup's tiles that straddle
            // positions), and 32 a K/V head (a position's heads over two workgroups).
            (9, 23, 14, 2, 16),
            (3, 20, 32, 1, 8),
        ] {
            let mut rng = Rng::new((lk * hd) as u64);
            let q = rng.vec(lq * heads * hd, 1.0);
            let k = rng.vec(lk * kv * hd, 1.0);
            let v = rng.vec(lk * kv * hd, 1.0);
            let want = ops::attention(&q, &k, &v, lq, lk, heads, kv, hd, &AttnMask::FULL);
            let (qb, kb, vb) = (g.upload_f32("q", &q).unwrap(), g.upload_f32("k", &k).unwrap(), g.upload_f32("v", &v).unwrap());
            let out = g.storage("o", (want.len() * 4) as u64).unwrap();
            let ls = attend(&g, variant, [&qb, &kb, &vb, &out], AttnShape { lq, lk, n_heads: heads, n_kv: kv, head_dim: hd }, AttnMask::FULL);
            assert_close(&format!("attention ({}) lq{lq} lk{lk} h{heads}/{kv} d{hd}", name), &run(&g, &ls, &out, want.len()), &want, 2e-4);
        }
    }
}

#[test]
fn attention_sees_every_key_in_both_directions() {
    // A hand-checked case: one head, d = 16; query 0 matches key 2 (a later position) strongly,
    // so the output must be close to value 2 — impossible with a causal mask. Both layouts.
    for layout in ATTENTION {
        let (g, variant, name) = attention_gpu(layout);
        let (l, hd) = (3, 16);
        let mut q = vec![0f32; l * hd];
        let mut k = vec![0f32; l * hd];
        let mut v = vec![0f32; l * hd];
        q[0] = 40.0; // query 0 along dimension 0
        k[2 * hd] = 1.0; // only key 2 has dimension 0
        for p in 0..l {
            v[p * hd + 1] = p as f32; // value p carries p in dimension 1
        }
        let (qb, kb, vb) = (g.upload_f32("q", &q).unwrap(), g.upload_f32("k", &k).unwrap(), g.upload_f32("v", &v).unwrap());
        let out = g.storage("o", (l * hd * 4) as u64).unwrap();
        let ls = attend(&g, variant, [&qb, &kb, &vb, &out], AttnShape { lq: l, lk: l, n_heads: 1, n_kv: 1, head_dim: hd }, AttnMask::FULL);
        let got = run(&g, &ls, &out, l * hd);
        // score to key 2 = 40/4 = 10, others 0: weight e^10/(e^10+2) ≈ 0.99991.
        let w2 = (10f32).exp() / ((10f32).exp() + 2.0);
        assert!((got[1] - (2.0 * w2 + 1.0 * (1.0 - w2) / 2.0)).abs() < 1e-4, "{}: got {}", name, got[1]);
    }
}

#[test]
fn attention_block_causal_at_an_offset() {
    // LLaDA 2's mask: a query sees its own block and the blocks before it. Queries that are a
    // sub-range of the canvas (q0 > 0, as cached passes run them), blocks of odd sizes, query
    // ranges that start and end inside blocks, 70 rows over two workgroups; both layouts.
    for layout in ATTENTION {
        let (g, variant, name) = attention_gpu(layout);
        for (q0, lq, lk, block, heads, kv, hd) in
            [(0, 40, 40, 32, 2, 1, 16), (5, 70, 90, 7, 2, 2, 8), (33, 3, 80, 32, 4, 2, 16), (0, 9, 9, 1, 1, 1, 12), (3, 21, 50, 8, 7, 1, 16)]
        {
            let mut rng = Rng::new((q0 * 31 + lk) as u64);
            let q = rng.vec(lq * heads * hd, 1.0);
            let k = rng.vec(lk * kv * hd, 1.0);
            let v = rng.vec(lk * kv * hd, 1.0);
            let mask = AttnMask { q0, block, ..AttnMask::FULL };
            let want = ops::attention(&q, &k, &v, lq, lk, heads, kv, hd, &mask);
            // The twin's mask: row i equals bidirectional attention over its visible keys alone.
            for i in [0, lq - 1] {
                let end = lk.min(((q0 + i) / block + 1) * block);
                let (kk, vv) = (&k[..end * kv * hd], &v[..end * kv * hd]);
                let alone = ops::attention(&q[i * heads * hd..(i + 1) * heads * hd], kk, vv, 1, end, heads, kv, hd, &AttnMask::FULL);
                assert_close("twin's block mask", &want[i * heads * hd..(i + 1) * heads * hd], &alone, 1e-5);
            }
            let (qb, kb, vb) = (g.upload_f32("q", &q).unwrap(), g.upload_f32("k", &k).unwrap(), g.upload_f32("v", &v).unwrap());
            let out = g.storage("o", (want.len() * 4) as u64).unwrap();
            let ls = attend(&g, variant, [&qb, &kb, &vb, &out], AttnShape { lq, lk, n_heads: heads, n_kv: kv, head_dim: hd }, mask);
            let name = format!("block-causal attention ({}) q0 {q0} lq{lq} lk{lk} block {block}", name);
            assert_close(&name, &run(&g, &ls, &out, want.len()), &want, 2e-4);
        }
    }
}

#[test]
fn attention_causal_windowed_floored_and_unscaled() {
    // DiffusionGemma's masks: the encoder's causal sliding window (and causal full layers), the
    // decoder's sliding layers (keys from the cache's last W − 1 on, the whole canvas), scale 1;
    // queries at an offset, a window wider and narrower than a workgroup's span, both layouts.
    for layout in ATTENTION {
        let (g, variant, name) = attention_gpu(layout);
        let masks = [
            (9, 70, 79, AttnMask { q0: 9, causal: true, window: 4, scale: Some(1.0), ..AttnMask::FULL }),
            (0, 70, 70, AttnMask { causal: true, window: 100, ..AttnMask::FULL }),
            (0, 13, 13, AttnMask { causal: true, ..AttnMask::FULL }),
            (25, 16, 41, AttnMask { q0: 25, key_lo: 22, scale: Some(1.0), ..AttnMask::FULL }),
            (5, 70, 90, AttnMask { q0: 5, key_lo: 3, window: 9, causal: true, ..AttnMask::FULL }),
        ];
        for (i, (q0, lq, lk, mask)) in masks.into_iter().enumerate() {
            // 4 heads on 2 K/V heads; the last mask with 6 query heads a K/V head, whose
            // slots straddle positions in the tiles layout.
            let (heads, kv, hd) = if i == 4 { (6, 1, 16) } else { (4, 2, 16) };
            let mut rng = Rng::new((q0 * 7 + lk) as u64);
            let q = rng.vec(lq * heads * hd, 1.0);
            let k = rng.vec(lk * kv * hd, 1.0);
            let v = rng.vec(lk * kv * hd, 1.0);
            let want = ops::attention(&q, &k, &v, lq, lk, heads, kv, hd, &mask);
            // The twin's rule, spelled out for one query: the keys it sees alone.
            let i = lq / 2;
            let keys = mask.keys(q0 + i, lk);
            let p = q0 + i;
            assert!(keys.clone().all(|j| (!mask.causal || j <= p) && j >= mask.key_lo && (mask.window == 0 || j + mask.window > p)), "{mask:?}");
            let (kk, vv) = (&k[keys.start * kv * hd..keys.end * kv * hd], &v[keys.start * kv * hd..keys.end * kv * hd]);
            let one = AttnMask { scale: mask.scale, ..AttnMask::FULL };
            let alone = ops::attention(&q[i * heads * hd..(i + 1) * heads * hd], kk, vv, 1, keys.len(), heads, kv, hd, &one);
            assert_close("twin's mask", &want[i * heads * hd..(i + 1) * heads * hd], &alone, 1e-5);
            let (qb, kb, vb) = (g.upload_f32("q", &q).unwrap(), g.upload_f32("k", &k).unwrap(), g.upload_f32("v", &v).unwrap());
            let out = g.storage("o", (want.len() * 4) as u64).unwrap();
            let ls = attend(&g, variant, [&qb, &kb, &vb, &out], AttnShape { lq, lk, n_heads: heads, n_kv: kv, head_dim: hd }, mask);
            assert_close(&format!("attention ({}) {mask:?}", name), &run(&g, &ls, &out, want.len()), &want, 2e-4);
        }
    }
}

#[test]
fn attention_reads_its_queries_from_a_later_row() {
    // A pass's last layer attends for the predicted rows alone: queries from row `q_row` of the
    // query buffer (the rows before and after hold NaN, so a read of them shows), at canvas
    // positions q0 ..; every layout, split-K where the flash layouts choose it, and forced.
    for layout in ATTENTION {
        let (g, variant, name) = attention_gpu(layout);
        for (q_row, lq, lk, heads, kv, hd, mask) in [
            (3, 5, 70, 2, 1, 64, AttnMask::FULL),
            (32, 32, 288, 4, 2, 16, AttnMask { q0: 32, ..AttnMask::FULL }),
            (9, 20, 37, 7, 1, 16, AttnMask { q0: 9, block: 8, ..AttnMask::FULL }),
            (1, 3, 80, 4, 2, 128, AttnMask { q0: 41, causal: true, window: 6, ..AttnMask::FULL }),
        ] {
            let mut rng = Rng::new((q_row * 13 + lk) as u64);
            let w = heads * hd;
            let q = rng.vec(lq * w, 1.0);
            let k = rng.vec(lk * kv * hd, 1.0);
            let v = rng.vec(lk * kv * hd, 1.0);
            let want = ops::attention(&q, &k, &v, lq, lk, heads, kv, hd, &mask);
            let padded = [vec![f32::NAN; q_row * w], q, vec![f32::NAN; 2 * w]].concat();
            let at = AttnMask { q_row, ..mask };
            assert_eq!(ops::attention(&padded, &k, &v, lq, lk, heads, kv, hd, &at), want, "the twin reads rows q_row ..");
            let (qb, kb, vb) = (g.upload_f32("q", &padded).unwrap(), g.upload_f32("k", &k).unwrap(), g.upload_f32("v", &v).unwrap());
            let shape = AttnShape { lq, lk, n_heads: heads, n_kv: kv, head_dim: hd };
            let what = format!("attention ({name}) from query row {q_row}: lq{lq} lk{lk} h{heads}/{kv} d{hd} {mask:?}");
            let out = g.upload_f32("o", &vec![f32::NAN; want.len()]).unwrap();
            assert_close(&what, &run(&g, &attend(&g, variant, [&qb, &kb, &vb, &out], shape, at), &out, want.len()), &want, 2e-4);
            if layout.1 {
                let out = g.upload_f32("o", &vec![f32::NAN; want.len()]).unwrap();
                let scratch = g.storage("scratch", shape.split_bytes(3)).unwrap();
                let ls = g.attention_split(&qb, &kb, &vb, &out, shape, at, [KvType::F32, KvType::F32], &scratch, 3).unwrap();
                assert_close(&format!("split-K {what}"), &run(&g, &ls, &out, want.len()), &want, 2e-4);
            }
        }
    }
}

#[test]
fn split_k_attention_matches_the_cpu_twin() {
    // The flash layout with the keys cut into 2, 3 or 7 slices and merged: key counts that are
    // not multiples of 8 or of the slices, slices that hold none of a row's keys (block-causal
    // and windowed masks), rows that see no key at all (keys from 10 on, causal: rows 0..9),
    // GQA, heads of 12 and (wide) 300, two workgroups of rows.
    // Both flash kernels: K/V staged in workgroup memory (heads up to 128) or not.
    for tiles in [false, true] {
        let (g, _, kname) = attention_gpu((KernelVariant::Tiled, true, tiles));
        let cases = [
            (5, 70, 2, 1, 64, AttnMask::FULL),
            (3, 130, 4, 2, 128, AttnMask::FULL),
            (20, 37, 3, 1, 12, AttnMask::FULL),
            (5, 41, 2, 2, 300, AttnMask::FULL),
            (3, 80, 4, 2, 16, AttnMask { q0: 33, block: 32, ..AttnMask::FULL }),
            (40, 90, 2, 2, 8, AttnMask { q0: 5, block: 7, ..AttnMask::FULL }),
            (20, 79, 4, 2, 16, AttnMask { q0: 9, causal: true, window: 4, scale: Some(1.0), ..AttnMask::FULL }),
            (20, 30, 2, 1, 16, AttnMask { causal: true, key_lo: 10, ..AttnMask::FULL }),
            // 7 and 12 query heads a K/V head (Dream's 7: the tiles layout's slots straddle
            // positions, and a workgroup's keys are its positions' union).
            (20, 79, 7, 1, 16, AttnMask { q0: 9, causal: true, window: 4, ..AttnMask::FULL }),
            (21, 50, 24, 2, 16, AttnMask { q0: 3, block: 8, ..AttnMask::FULL }),
        ];
        for (lq, lk, heads, kv, hd, mask) in cases {
            let mut rng = Rng::new((lq * 7 + lk * hd) as u64);
            let q = rng.vec(lq * heads * hd, 1.0);
            let k = rng.vec(lk * kv * hd, 1.0);
            let v = rng.vec(lk * kv * hd, 1.0);
            let want = ops::attention(&q, &k, &v, lq, lk, heads, kv, hd, &mask);
            let (qb, kb, vb) = (g.upload_f32("q", &q).unwrap(), g.upload_f32("k", &k).unwrap(), g.upload_f32("v", &v).unwrap());
            let shape = AttnShape { lq, lk, n_heads: heads, n_kv: kv, head_dim: hd };
            for splits in [2, 3, 7] {
                // NaN, so that a value the kernels should write and do not shows.
                let out = g.upload_f32("o", &vec![f32::NAN; want.len()]).unwrap();
                let scratch = g.upload_f32("scratch", &vec![f32::NAN; (shape.split_bytes(splits) / 4) as usize]).unwrap();
                let ls = g.attention_split(&qb, &kb, &vb, &out, shape, mask, [KvType::F32, KvType::F32], &scratch, splits).unwrap();
                assert_eq!(ls.len(), 2, "the slices, then the merge");
                let name = format!("split-K attention ({kname}), {splits} slices: lq{lq} lk{lk} h{heads}/{kv} d{hd} {mask:?}");
                assert_close(&name, &run(&g, &ls, &out, want.len()), &want, 2e-4);
            }
            let small = g.storage("small", shape.split_bytes(2) - 4).unwrap();
            assert!(g.attention_split(&qb, &kb, &vb, &qb, shape, mask, [KvType::F32, KvType::F32], &small, 2).is_err(), "scratch one word short");
            assert!(g.attention_split(&qb, &kb, &vb, &qb, shape, mask, [KvType::F32, KvType::F32], &small, 0).is_err(), "zero slices");
        }
    }
}

#[test]
fn split_k_is_chosen_for_few_rows_and_its_scratch_is_planned() {
    // A cached step of LLaDA-8B (32 rows, 32 heads of 128 against 288 keys) fills an H100's
    // 132 SMs with 4 slices; a full pass (288 rows: 576 workgroups) does not split; short
    // canvases do not split below 64 keys a slice.
    let step = AttnShape { lq: 32, lk: 288, n_heads: 32, n_kv: 32, head_dim: 128 };
    assert_eq!(step.splits(), 4);
    assert_eq!(AttnShape { lq: 288, ..step }.splits(), 1);
    assert_eq!(AttnShape { lk: 100, ..step }.splits(), 1);
    assert_eq!(AttnShape { lq: 1, n_heads: 1, lk: 100_000, ..step }.splits(), 16);
    // A session plans `split_scratch_bound` for its canvas: every launch's need fits.
    for n_heads in [1, 2, 7, 32, 64] {
        for canvas in [1, 15, 16, 17, 64, 200, 1000] {
            let bound = AttnShape::split_scratch_bound(canvas, n_heads, 128);
            for lq in 1..=canvas {
                for lk in [lq, canvas / 2, canvas] {
                    let s = AttnShape { lq, lk, n_heads, n_kv: 1, head_dim: 128 };
                    let need = if s.splits() > 1 { s.split_bytes(s.splits()) } else { 0 };
                    assert!(need <= bound, "{s:?}: {} slices need more than {bound} bytes", s.splits());
                }
            }
        }
    }
}

#[test]
fn cfg_mix_elementwise() {
    let g = gpu();
    let mut rng = Rng::new(31);
    let n = 1001;
    let (c, u) = (rng.vec(n, 4.0), rng.vec(n, 4.0));
    for scale in [0.0, 1.5] {
        let want = ops::cfg_mix(&c, &u, scale);
        let (cb, ub) = (g.upload_f32("cond", &c).unwrap(), g.upload_f32("uncond", &u).unwrap());
        let d = g.cfg_mix(&cb, &ub, n, scale).unwrap();
        assert_close(&format!("cfg_mix scale {scale}"), &run(&g, &[d], &cb, n), &want, 1e-6);
    }
    // scale 0 is the conditional logits themselves
    assert_close("cfg_mix twin, scale 0", &ops::cfg_mix(&c, &u, 0.0), &c, 1e-6);
}

/// `select.wgsl` on `rows` rows of `logits` (positions 10 ..) under `noise`, against the twin:
/// tokens equal, prob / entropy / margin within 1e-4 relative.
fn check_select(g: &Gpu, logits: &[f32], rows: usize, noise: Noise, what: &str) {
    let vocab = logits.len() / rows;
    let want: Vec<_> = (0..rows).map(|r| ops::select(&logits[r * vocab..(r + 1) * vocab], 10 + r as u32, noise)).collect();
    let lb = g.upload_f32("logits", logits).unwrap();
    let out = g.storage("out", (rows * 16) as u64).unwrap();
    let nb = g.device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: NOISE_BYTES,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    g.queue.write_buffer(&nb, 0, bytemuck::bytes_of(&NoiseUniform::from(noise)));
    let d = g.select(&lb, &out, &nb, rows, vocab, 10, 0).unwrap();
    let words: Vec<u32> = run(g, &[d], &out, rows * 4).iter().map(|f| f.to_bits()).collect();
    for (r, w) in want.iter().enumerate() {
        let got = &words[r * 4..r * 4 + 4];
        assert_eq!(got[0], w.token, "{what}: row {r} token under {noise:?}");
        for (name, gv, wv) in [("prob", got[1], w.prob), ("entropy", got[2], w.entropy), ("margin", got[3], w.margin)] {
            let gv = f32::from_bits(gv);
            assert!((gv - wv).abs() <= 1e-4 * wv.abs().max(1e-3), "{what}: row {r} {name}: {gv} vs {wv} under {noise:?}");
        }
    }
}

#[test]
fn select_argmax_probability_entropy_margin() {
    let (rows, vocab) = (6, 1001);
    let logits = Rng::new(15).vec(rows * vocab, 8.0);
    for (wg, g) in row_gpus() {
        for noise in [Noise::GREEDY, Noise::new(0.7, 42, 3), Noise::new(2.0, 7, 9)] {
            check_select(&g, &logits, rows, noise, &format!("no filter, workgroups of {wg}"));
        }
    }
}

#[test]
fn select_with_top_k_and_top_p_filters() {
    let mut rng = Rng::new(16);
    // Vocabularies narrower than the workgroup, one past a multiple of it, and wide; the tied
    // rows take 17 values (steps of 0.5), so every cut-off falls in a group of ties.
    let shapes: Vec<(&str, usize, Vec<f32>)> = vec![
        ("5 wide", 3, rng.vec(15, 4.0)),
        ("257 wide", 4, rng.vec(4 * 257, 6.0)),
        ("1001 wide", 3, rng.vec(3 * 1001, 8.0)),
        ("ties", 3, rng.vec(3 * 300, 4.0).iter().map(|l| (l * 2.0).round() / 2.0).collect()),
    ];
    let filters = [(1, 1.0), (3, 1.0), (50, 1.0), (256, 1.0), (257, 1.0), (5000, 1.0), (0, 1e-6), (0, 0.3), (0, 0.9), (0, 1.0), (20, 0.5), (3, 0.95)];
    for (wg, g) in row_gpus() {
        for (what, rows, logits) in &shapes {
            for (top_k, top_p) in filters {
                for noise in [Noise::GREEDY, Noise::new(0.7, 42, 3), Noise::new(1.5, 7, 9)] {
                    check_select(&g, logits, *rows, Noise { top_k, top_p, ..noise }, &format!("{what}, workgroups of {wg}"));
                }
            }
        }
    }
}

/// Dream's `sample_tokens` filters, literally (in f64): logits / T when T > 0; top_p: sort
/// descending, cumsum of the softmax, remove where the cumsum exceeds top_p, shifted right by
/// one (the first always stays); top_k: remove logits below the k-th largest. Removed logits
/// become f32::MIN (torch.finfo.min). Returns the filtered logits.
fn dream_filtered(row: &[f32], t: f32, top_k: Option<usize>, top_p: Option<f32>) -> Vec<f64> {
    let n = row.len();
    let mut l: Vec<f64> = row.iter().map(|&x| x as f64 / if t > 0.0 { t as f64 } else { 1.0 }).collect();
    if let Some(p) = top_p.filter(|p| *p < 1.0) {
        let mut idx: Vec<usize> = (0..n).collect();
        idx.sort_by(|a, b| l[*b].partial_cmp(&l[*a]).unwrap());
        let e: Vec<f64> = idx.iter().map(|&i| (l[i] - l[idx[0]]).exp()).collect();
        let total: f64 = e.iter().sum();
        let mut cum = 0.0;
        let remove: Vec<bool> = e
            .iter()
            .map(|x| {
                cum += x / total;
                cum > p as f64
            })
            .collect();
        for j in 1..n {
            if remove[j - 1] {
                l[idx[j]] = f32::MIN as f64;
            }
        }
    }
    if let Some(k) = top_k {
        let mut sorted = l.clone();
        sorted.sort_by(|a, b| b.partial_cmp(a).unwrap());
        let kth = sorted[k.min(n) - 1];
        for x in l.iter_mut().filter(|x| **x < kth) {
            *x = f32::MIN as f64;
        }
    }
    l
}

#[test]
fn select_twin_filters_keep_what_dreams_sort_cumsum_shift_keeps() {
    let mut rng = Rng::new(17);
    let filters = [
        (Some(1), None),
        (Some(7), None),
        (Some(400), None),
        (None, Some(1e-6)),
        (None, Some(0.2)),
        (None, Some(0.8)),
        (None, Some(1.0)),
        (Some(5), Some(0.6)),
        (Some(30), Some(0.3)),
    ];
    for row in 0..6 {
        let logits = rng.vec(301, 3.0 + row as f32);
        for (top_k, top_p) in filters {
            for t in [0.0, 0.5, 2.0] {
                let noise = Noise { top_k: top_k.unwrap_or(0) as u32, top_p: top_p.unwrap_or(1.0), ..Noise::new(t, 1, 2) };
                let what = format!("row {row}, top_k {top_k:?}, top_p {top_p:?}, T {t}");
                let dream = dream_filtered(&logits, t, top_k, top_p);
                let cut = choice::cutoff(&logits, noise);
                let kept: Vec<bool> = logits.iter().map(|l| choice::order_key(*l) >= cut).collect();
                assert_eq!(kept, dream.iter().map(|l| *l > f32::MIN as f64).collect::<Vec<_>>(), "{what}: kept set");
                if t > 0.0 {
                    continue;
                }
                // At T = 0 Dream's confidence is the max of softmax(filtered logits), as ours.
                let max = dream.iter().cloned().fold(f64::MIN, f64::max);
                let e: Vec<f64> = dream.iter().map(|l| (l - max).exp()).collect();
                let sum: f64 = e.iter().sum();
                let mut probs: Vec<f64> = e.iter().map(|x| x / sum).collect();
                let token = probs.iter().position(|p| *p == 1.0 / sum).unwrap();
                let entropy: f64 = -probs.iter().filter(|p| **p > 0.0).map(|p| p * p.ln()).sum::<f64>();
                probs.sort_by(|a, b| b.partial_cmp(a).unwrap());
                let c = ops::select(&logits, 0, noise);
                assert_eq!(c.token as usize, token, "{what}");
                for (name, got, want) in [("prob", c.prob, probs[0]), ("margin", c.margin, probs[0] - probs[1]), ("entropy", c.entropy, entropy)] {
                    assert!((got as f64 - want).abs() <= 1e-5 * want.abs().max(1e-2), "{what}: {name} {got} vs {want}");
                }
            }
        }
    }
}

#[test]
fn select_on_a_hand_checked_row() {
    // logits [0, ln 3, 0, ln 2] (unnormalised probs 1, 3, 1, 2; sum 7): argmax 1, p = 3/7,
    // margin 3/7 − 2/7 = 1/7, entropy = −Σ p ln p.
    let row = [0.0, 3f32.ln(), 0.0, 2f32.ln()];
    let c = ops::select(&row, 0, Noise::GREEDY);
    let p = [1.0 / 7.0, 3.0 / 7.0, 1.0 / 7.0, 2.0 / 7.0f32];
    let h: f32 = -p.iter().map(|q| q * q.ln()).sum::<f32>();
    assert_eq!(c.token, 1);
    assert!((c.prob - 3.0 / 7.0).abs() < 1e-6 && (c.margin - 1.0 / 7.0).abs() < 1e-6 && (c.entropy - h).abs() < 1e-6, "{c:?}");
}

#[test]
fn bias_adds_to_rows_at_an_offset_only() {
    let g = gpu();
    let (total, row0, rows, dim) = (9, 3, 5, 37);
    let mut rng = Rng::new(21);
    let (y, b) = (rng.vec(total * dim, 1.0), rng.vec(dim, 1.0));
    let mut want = y.clone();
    ops::add_bias(&mut want[..(row0 + rows) * dim], &b, row0);
    let (bb, yb) = (g.upload_f32("b", &b).unwrap(), g.upload_f32("y", &y).unwrap());
    let d = g.bias(&bb, &yb, rows, dim, row0).unwrap();
    let got = run(&g, &[d], &yb, y.len());
    assert_close("bias", &got, &want, 1e-6);
    assert_eq!(&got[(row0 + rows) * dim..], &y[(row0 + rows) * dim..], "rows after the range are untouched");
    assert_eq!(&got[..row0 * dim], &y[..row0 * dim], "rows before the range are untouched");
}

/// `n` f16 values of `b` as f32.
fn read_f16(g: &Gpu, b: &wgpu::Buffer, n: usize) -> Vec<f32> {
    let enc = g.device.create_command_encoder(&Default::default());
    let bytes = pollster::block_on(g.submit_and_read(enc, &[(b, 0, Gpu::padded((n * 2) as u64))])).unwrap();
    bytemuck::pod_collect_to_vec::<u8, half::f16>(&bytes[..n * 2]).iter().map(|h| h.to_f32()).collect()
}

#[test]
fn head_pass_matches_qk_norm_rope_and_the_f16_store_of_the_cpu_twins() {
    // The one launch that does QK-norm, RoPE (and for K, the f16 store of K and V), against the
    // CPU twins of those three in order: per-head and full-width norms (wider than the
    // workgroup), none (a family whose q/k biases are added apart), plain, partial and
    // proportional RoPE in both styles, V copied or normed without a weight (DiffusionGemma),
    // in place or into f16 K/V at other rows. Rows outside the range stay as they were.
    let g = gpu();
    let prop = |pairs: usize, hd: usize| RopeSpec { theta: 1e6, pairs, half: hd / 2, denom: hd, freq_scale: 1.0 };
    let first = |rot: usize| RopeSpec::first(rot, 500000.0);
    // (style, heads, head_dim, spec, norm width (0: none), V (None, or normed), store)
    let cases = [
        (RopeStyle::NeoX, 3, 16, first(16), 16, None, false),
        (RopeStyle::Interleaved, 3, 10, first(10), 30, None, false),
        (RopeStyle::NeoX, 2, 28, prop(3, 28), 28, Some(true), true),
        (RopeStyle::NeoX, 2, 128, first(64), 256, Some(false), true),
        (RopeStyle::NeoX, 1, 512, prop(64, 512), 512, Some(true), false),
        (RopeStyle::NeoX, 4, 16, first(16), 0, Some(false), true),
        (RopeStyle::Interleaved, 2, 16, first(16), 0, None, false),
    ];
    for (style, heads, hd, spec, norm_dim, v, store) in cases {
        let what = format!("head pass {style:?} {heads}×{hd} {spec:?}, norm over {norm_dim}, V {v:?}, f16 store {store}");
        let (total, row0, rows, dst0, eps) = (9, 2, 5, 3, 1e-6);
        let width = heads * hd;
        let mut rng = Rng::new((hd * 31 + norm_dim) as u64);
        let (x, xv) = (rng.vec(total * width, 3.0), rng.vec(total * width, 2.0));
        let w = rng.vec(norm_dim.max(1), 1.0);
        let positions: Vec<u32> = vec![0, 1, 7, 300, 45];
        // The twins: QK-norm, then RoPE; V normed per head without a weight.
        let (mut want, mut want_v) = (x[row0 * width..(row0 + rows) * width].to_vec(), xv[row0 * width..(row0 + rows) * width].to_vec());
        if norm_dim > 0 {
            ops::qk_norm(&mut want, &w, eps);
        }
        ops::rope(&mut want, &positions, heads, hd, spec, style);
        if v == Some(true) {
            ops::qk_norm(&mut want_v, &vec![1.0; hd], eps);
        }
        let (wb, pb) = (g.upload_f32("w", &w).unwrap(), g.upload("pos", bytemuck::cast_slice(&positions)).unwrap());
        let (xb, vb) = (g.upload_f32("x", &x).unwrap(), g.upload_f32("v", &xv).unwrap());
        let before: Vec<f32> = (0..total * width).map(|i| (i % 97) as f32 * 0.5 - 20.0).collect();
        let (kd, vd) = (g.upload("k16", &f16_bytes(&before).0).unwrap(), g.upload("v16", &f16_bytes(&before).0).unwrap());
        let h = HeadPass {
            x: &xb,
            row0,
            rows,
            heads,
            head_dim: hd,
            norm: (norm_dim > 0).then_some((&wb, norm_dim)),
            eps,
            v: v.map(|n| (&vb, n)),
            store: store.then_some((&kd, &vd, dst0)),
            positions: &pb,
            spec,
            style,
        };
        let l = g.head_pass(&h).unwrap_or_else(|e| panic!("{what}: {e}"));
        let range = |r0: usize| r0 * width..(r0 + rows) * width;
        if store {
            let (k16, v16) = {
                let _ = run(&g, &[l], &xb, 1);
                (read_f16(&g, &kd, total * width), read_f16(&g, &vd, total * width))
            };
            // The f16 of a value within 2e-4 (relative) of the twin's: between the roundings of its bounds.
            for (name, got, want) in [("K", &k16, &want), ("V", &v16, &want_v)] {
                for (i, (&a, &b)) in got[range(dst0)].iter().zip(want.iter()).enumerate() {
                    let e = 2e-4 * b.abs().max(1.0);
                    let (lo, hi) = (KvType::F16.round(b - e), KvType::F16.round(b + e));
                    assert!(lo <= a && a <= hi, "{what}: {name} value {i} is {a}, want f16 of {b}");
                }
                let outside: Vec<usize> = (0..total * width).filter(|i| !range(dst0).contains(i)).collect();
                assert!(outside.iter().all(|&i| got[i] == KvType::F16.round(before[i])), "{what}: {name} outside the rows");
            }
            assert_eq!(run(&g, &[], &xb, x.len()), x, "{what}: the f32 K rows are only read");
        } else {
            let got = run(&g, &[l], &xb, x.len());
            assert_close(&what, &got[range(row0)], &want, 2e-4);
            let outside = |a: &[f32], b: &[f32]| (0..total * width).filter(|i| !range(row0).contains(i)).all(|i| a[i] == b[i]);
            assert!(outside(&got, &x), "{what}: rows outside the range changed");
            let got_v = run(&g, &[], &vb, xv.len());
            match v {
                Some(true) => assert_close(&format!("{what}: V"), &got_v[range(row0)], &want_v, 2e-4),
                _ => assert_eq!(got_v, xv, "{what}: V untouched"),
            }
            assert!(outside(&got_v, &xv), "{what}: V rows outside the range changed");
        }
    }
    // A norm that does not fit the heads, and a store without V, are refused.
    let b = g.upload_f32("b", &[0.0; 64]).unwrap();
    let bad = |norm_dim: usize, v: bool, store: bool| HeadPass {
        x: &b,
        row0: 0,
        rows: 1,
        heads: 4,
        head_dim: 16,
        norm: Some((&b, norm_dim)),
        eps: 1e-6,
        v: v.then_some((&b, true)),
        store: store.then_some((&b, &b, 0)),
        positions: &b,
        spec: first(16),
        style: RopeStyle::NeoX,
    };
    for (n, v, s) in [(24, false, false), (0, false, false), (128, false, false), (64, true, false), (16, false, true)] {
        assert!(g.head_pass(&bad(n, v, s)).is_err(), "norm over {n}, V {v}, store {s}");
    }
    // Heads of an odd size, and NeoX pairs more than half a head apart, do not fit its slots.
    let (odd, apart) = (HeadPass { head_dim: 15, spec: first(14), ..bad(15, false, false) }, RopeSpec { pairs: 2, half: 10, ..first(16) });
    assert!(g.head_pass(&HeadPass { heads: 1, ..odd }).is_err(), "odd head");
    assert!(g.head_pass(&HeadPass { spec: apart, ..bad(16, false, false) }).is_err(), "pairs 10 apart in a head of 16");
}

/// Router logits of `rows` positions over `experts`, routed on the GPU; the route buffer.
fn gpu_route(g: &Gpu, logits: &[f32], s: MoeShape, norm: bool) -> wgpu::Buffer {
    gpu_route_with(g, logits, None, s, norm, Routing::SOFTMAX)
}

fn gpu_route_with(g: &Gpu, logits: &[f32], bias: Option<&[f32]>, s: MoeShape, norm: bool, r: Routing) -> wgpu::Buffer {
    gpu_route_scaled(g, logits, bias, None, s, norm, r)
}

fn gpu_route_scaled(g: &Gpu, logits: &[f32], bias: Option<&[f32]>, scale: Option<&[f32]>, s: MoeShape, norm: bool, r: Routing) -> wgpu::Buffer {
    let lb = g.upload_f32("router logits", logits).unwrap();
    let bb = bias.map(|b| g.upload_f32("expert bias", b).unwrap());
    let sb = scale.map(|b| g.upload_f32("expert scale", b).unwrap());
    let route = g.storage("route", (s.route_words() * 4) as u64).unwrap();
    let d = g.moe_route_scaled(&lb, bb.as_ref(), sb.as_ref(), &route, s, norm, r).unwrap();
    run(g, &[d], &route, 1);
    route
}

#[test]
fn moe_route_picks_the_top_k_and_lists_each_experts_pairs() {
    let g = gpu();
    let sig = |groups, topk_groups, scale| Routing { sigmoid: true, groups, topk_groups, scale };
    // Softmax routers (OLMoE, Qwen3-MoE), then LLaDA 2's: sigmoid scores, an expert bias for
    // choosing, group-limited top-k (8 groups of 32, best 4 as the real config; 3 groups of 5),
    // scaled weights; and a biased softmax router without groups.
    let cases = [
        (13, 11, 3, true, Routing::SOFTMAX, false),
        (300, 64, 8, false, Routing::SOFTMAX, false),
        (1, 5, 5, true, Routing::SOFTMAX, false),
        (7, 2, 1, false, Routing::SOFTMAX, false),
        (37, 256, 8, true, sig(8, 4, 2.5), true),
        (9, 15, 4, true, sig(3, 2, 1.5), true),
        (5, 8, 1, false, sig(4, 2, 2.5), true),
        (11, 12, 3, false, Routing::SOFTMAX, true),
        // DiffusionGemma's: softmax, renormalised top-2, each expert's own scale (no bias).
        (9, 4, 2, true, Routing::SOFTMAX, false),
    ];
    for (i, (rows, experts, k, norm, routing, with_bias)) in cases.into_iter().enumerate() {
        let mut rng = Rng::new((rows * experts) as u64);
        let logits = rng.vec(rows * experts, 3.0);
        let bias = with_bias.then(|| rng.vec(experts, 0.3));
        let scale = (i == 8).then(|| rng.vec(experts, 0.5).iter().map(|v| 1.0 + v).collect::<Vec<f32>>());
        let want = ops::moe_route_scaled(&logits, experts, k, norm, routing, bias.as_deref(), scale.as_deref());
        if routing.groups > 1 {
            // Every pick lies in one of the best `topk_groups` groups, and the bias changed some.
            let gsize = experts / routing.groups;
            for r in 0..rows {
                let groups: std::collections::BTreeSet<u32> = want.experts[r * k..(r + 1) * k].iter().map(|e| e / gsize as u32).collect();
                assert!(groups.len() <= routing.topk_groups, "row {r} picks from {} groups", groups.len());
            }
            let unbiased = ops::moe_route(&logits, experts, k, norm, routing, None);
            assert_ne!(unbiased.experts, want.experts, "the expert bias changes some choices");
        }
        let s = MoeShape { rows, experts, k };
        let route = gpu_route_scaled(&g, &logits, bias.as_deref(), scale.as_deref(), s, norm, routing);
        let words: Vec<u32> = {
            let mut enc = g.device.create_command_encoder(&Default::default());
            enc.insert_debug_marker("read route");
            bytemuck::pod_collect_to_vec(&pollster::block_on(g.submit_and_read(enc, &[(&route, 0, (s.route_words() * 4) as u64)])).unwrap())
        };
        let n = rows * k;
        assert_eq!(&words[..n], &want.experts[..], "experts of {rows}x{experts} top-{k}");
        let weights: Vec<f32> = words[n..2 * n].iter().map(|w| f32::from_bits(*w)).collect();
        assert_close(&format!("route weights {rows}x{experts}"), &weights, &want.weights, 1e-5);
        for (e, list) in want.lists.iter().enumerate() {
            assert_eq!(words[2 * n + e] as usize, list.len(), "count of expert {e}");
            let at = 2 * n + experts + e * rows;
            assert_eq!(&words[at..at + list.len()], &list[..], "list of expert {e}");
        }
        if norm && scale.is_none() {
            for r in 0..rows {
                let sum: f32 = want.weights[r * k..(r + 1) * k].iter().sum();
                assert!((sum - routing.scale).abs() < 1e-5, "normalised weights sum to the scale");
            }
        }
        if let Some(sc) = &scale {
            let plain = ops::moe_route(&logits, experts, k, norm, routing, None);
            for (j, (&w, &e)) in want.weights.iter().zip(&want.experts).enumerate() {
                assert!((w - plain.weights[j] * sc[e as usize]).abs() < 1e-6, "each expert's scale multiplies its weight");
            }
        }
    }
}

/// The grouped expert matmul's launches in layout `v`, one per chunk of `gw` (experts of `n` rows).
#[allow(clippy::too_many_arguments)]
fn moe_launches(
    g: &Gpu,
    v: KernelVariant,
    gw: &GpuWeight,
    n: usize,
    kdim: usize,
    x: &wgpu::Buffer,
    by_pair: bool,
    rb: &wgpu::Buffer,
    y: &wgpu::Buffer,
    e: Epilogue,
    s: MoeShape,
) -> Vec<Launch> {
    moe_launches_normed(g, v, gw, (n, kdim), (x, None), by_pair, rb, y, e, s)
}

/// `moe_launches` with x's rows normed first (`norm`, in the tiled layout).
#[allow(clippy::too_many_arguments)]
fn moe_launches_normed(
    g: &Gpu,
    v: KernelVariant,
    gw: &GpuWeight,
    (n, kdim): (usize, usize),
    (x, norm): (&wgpu::Buffer, Option<unmask::gpu::kernels::RowNorm<'_>>),
    by_pair: bool,
    rb: &wgpu::Buffer,
    y: &wgpu::Buffer,
    e: Epilogue,
    s: MoeShape,
) -> Vec<Launch> {
    gw.chunks
        .iter()
        .map(|(buf, r0, count)| g.moe_matmul(v, gw.dtype, buf, r0 / n, count / n, n, kdim, MoeIo { x, by_pair, route: rb, y, epilogue: e, norm }, s).unwrap())
        .collect()
}

#[test]
fn moe_matmul_and_combine_match_the_twins_for_every_weight_format() {
    // A device of its own: the test turns `split_matmul` on and off.
    let g = common::own_gpu();
    // (format, rows, experts, top-k, expert rows N, K): K a multiple of 32 for block formats (256
    // for the k-quants, whose CPU-lanes readers are their own); N across one or two 64-column tiles
    // (the k-quants' readers: tests/kquants.rs). The tiled kernel's tiles (pairs an expert
    // gets on average) cover 8, 16, 32 and 64 pairs, and experts with more pairs than a tile.
    let cases = [
        (DType::F32, 7, 5, 2, 33, 37, 8),
        (DType::F16, 60, 6, 3, 70, 40, 32),
        (DType::Q8_0, 20, 5, 2, 33, 64, 8),
        (DType::Q4_0, 140, 4, 2, 9, 96, 64),
        (DType::F32, 23, 3, 2, 65, 45, 16),
        (DType::BF16, 62, 4, 2, 17, 20, 32),
        (DType::F32, 6, 3, 2, 20, 36, 8),
        (DType::BF16, 30, 3, 2, 17, 48, 32),
        (DType::Q4K, 12, 4, 2, 9, 256, 8),
        (DType::Q6K, 14, 3, 2, 5, 256, 16),
    ];
    for (dtype, rows, experts, k, n, kdim, tile) in cases {
        let mut rng = Rng::new(n as u64 * 31 + kdim as u64);
        let logits = rng.vec(rows * experts, 2.0);
        let x = rng.vec(rows * kdim, 1.0);
        let w = match dtype {
            DType::Q4K | DType::Q6K => common::random_blocks(dtype, experts * n, kdim, 7),
            _ => HostTensor::encode(dtype, experts * n, kdim, &rng.vec(experts * n * kdim, 1.0)).unwrap(),
        };
        let route = ops::moe_route(&logits, experts, k, true, Routing::SOFTMAX, None);
        let s = MoeShape { rows, experts, k };
        assert_eq!(s.tile(), tile, "pairs per tile for {rows} rows, top-{k} of {experts}");
        assert_eq!(
            route.lists.iter().any(|l| l.len() > tile as usize),
            rows > tile as usize,
            "an expert has pairs for two tiles: {dtype:?} {rows} rows, {:?}",
            route.lists.iter().map(|l| l.len()).collect::<Vec<_>>()
        );
        let rb = gpu_route(&g, &logits, s, true);
        // Chunks of two experts each (the loader keeps an expert's rows in one chunk).
        let gw = GpuWeight::upload(&g, "experts", &w, (2 * n * w.row_bytes()) as u64).unwrap();
        assert_eq!(gw.chunks.len(), experts.div_ceil(2));
        let xb = g.upload_f32("x", &x).unwrap();
        let xp = rng.vec(rows * k * kdim, 1.0);
        let xpb = g.upload_f32("xp", &xp).unwrap();
        let want = ops::moe_matmul(&x, false, &w, experts, &route);
        let want_p = ops::moe_matmul(&xp, true, &w, experts, &route);
        // The gated epilogue (SwiGLU, GeGLU by turns): y holds a gate projection per pair.
        let gate = rng.vec(rows * k * n, 3.0);
        let act = if n % 2 == 1 { Activation::Silu } else { Activation::GeluTanh };
        let want_g: Vec<f32> = gate.iter().zip(&want).map(|(g, v)| Epilogue::Gated(act).apply(*g, *v)).collect();
        // The tiled kernel as GPUs launch it (`split_matmul`: a workgroup a tile of pairs) and as
        // CPU adapters do (one workgroup walking an expert's list).
        for (v, spread) in VARIANTS.into_iter().flat_map(|v| [(v, false), (v, true)]).filter(|&(v, s)| !s || v == KernelVariant::Tiled) {
            g.set_split_matmul(spread);
            let what = |how: &str| {
                format!(
                    "moe_matmul {} {how} ({}{}, {rows} rows, top-{k} of {experts})",
                    dtype.name(),
                    v.name(),
                    if spread { ", a workgroup a tile" } else { "" }
                )
            };
            // NaN-filled output: every pair's row is written.
            let yb = g.upload_f32("y", &vec![f32::NAN; rows * k * n]).unwrap();
            let ls = moe_launches(&g, v, &gw, n, kdim, &xb, false, &rb, &yb, Epilogue::Store, s);
            // The CPU-lanes kernel reads x as vec4s where kdim is a multiple of 4 (20, 36, 40, 48,
            // 64, 96, 256 here), a value a lane elsewhere (37, 45); and the plain formats' weight
            // rows where they start 16 bytes aligned (F32 at 36, F16 at 40, BF16 at 48; not BF16
            // at 20), and the k-quants' super-blocks.
            let cpu = v == KernelVariant::CpuLanes;
            let aligned = match dtype {
                DType::F32 => kdim % 4 == 0,
                DType::F16 | DType::BF16 => kdim % 8 == 0,
                DType::Q4K | DType::Q6K => true,
                _ => false,
            };
            let (x4, w4) = (cpu && kdim % 4 == 0, cpu && aligned);
            assert!(
                ls.iter().all(|l| matches!(l.kernel, unmask::gpu::kernels::Kernel::MoeMatmul { x4: x, w4: w, .. } if (x, w) == (x4, w4))),
                "{}",
                what("vec4 reads")
            );
            assert_close(&what("by position"), &run(&g, &ls, &yb, rows * k * n), &want, 1e-4);
            // By pair (the down projection).
            let ls = moe_launches(&g, v, &gw, n, kdim, &xpb, true, &rb, &yb, Epilogue::Store, s);
            assert_close(&what("by pair"), &run(&g, &ls, &yb, rows * k * n), &want_p, 1e-4);
            let gb = g.upload_f32("gate", &gate).unwrap();
            let ls = moe_launches(&g, v, &gw, n, kdim, &xb, false, &rb, &gb, Epilogue::Gated(act), s);
            assert_close(&what(&format!("gated {act:?}")), &run(&g, &ls, &gb, rows * k * n), &want_g, 1e-4);
        }
        let io = MoeIo { x: &xb, by_pair: false, route: &rb, y: &xb, epilogue: Epilogue::Add, norm: None };
        assert!(g.moe_matmul(KernelVariant::Tiled, dtype, &gw.chunks[0].0, 0, 1, n, kdim, io, s).is_err(), "no residual add");

        // A folded RMSNorm (the tiled layout): rows of very different scales, one where eps
        // dominates the rms; the gate projection stored, the up projection gated.
        let eps = 1e-5;
        let mut xs = x.clone();
        for (r, row) in xs.chunks_mut(kdim).enumerate() {
            row.iter_mut().for_each(|v| *v *= [1.0, 40.0, 1e-3, 0.07][r % 4]);
        }
        let gv: Vec<f32> = rng.vec(kdim, 1.0).iter().map(|v| 1.0 + v).collect();
        let want_n = ops::moe_matmul(&ops::rmsnorm(&xs, &gv, eps), false, &w, experts, &route);
        let want_ng: Vec<f32> = gate.iter().zip(&want_n).map(|(g, v)| Epilogue::Gated(act).apply(*g, *v)).collect();
        let (xsb, gvb) = (g.upload_f32("x scaled", &xs).unwrap(), g.upload_f32("norm", &gv).unwrap());
        let norm = Some(unmask::gpu::kernels::RowNorm { w: &gvb, eps });
        for spread in [false, true] {
            g.set_split_matmul(spread);
            let what = format!("moe_matmul {} normed (tiled, spread {spread}, {rows} rows, top-{k} of {experts})", dtype.name());
            let yb = g.upload_f32("y", &vec![f32::NAN; rows * k * n]).unwrap();
            let ls = moe_launches_normed(&g, KernelVariant::Tiled, &gw, (n, kdim), (&xsb, norm), false, &rb, &yb, Epilogue::Store, s);
            assert_close(&what, &run(&g, &ls, &yb, rows * k * n), &want_n, 1e-4);
            let gb = g.upload_f32("gate", &gate).unwrap();
            let ls = moe_launches_normed(&g, KernelVariant::Tiled, &gw, (n, kdim), (&xsb, norm), false, &rb, &gb, Epilogue::Gated(act), s);
            assert_close(&format!("{what}, gated {act:?}"), &run(&g, &ls, &gb, rows * k * n), &want_ng, 1e-4);
        }
        let yb = g.upload_f32("y", &vec![f32::NAN; rows * k * n]).unwrap();
        let io = MoeIo { x: &xsb, by_pair: false, route: &rb, y: &yb, epilogue: Epilogue::Store, norm };
        assert!(g.moe_matmul(KernelVariant::CpuLanes, dtype, &gw.chunks[0].0, 0, 1, n, kdim, io, s).is_err(), "the CPU-lanes kernel has no norm prologue");

        // The weighted sum into the residual stream.
        let resid = rng.vec(rows * n, 1.0);
        let mut want_x = resid.clone();
        ops::moe_combine(&mut want_x, &want_p, &route);
        let yb = g.upload_f32("y", &want_p).unwrap();
        let xr = g.upload_f32("resid", &resid).unwrap();
        let d = g.moe_combine_into(&rb, &yb, (&xr, 0), s, n, false).unwrap();
        assert_close(&format!("moe_combine {}", dtype.name()), &run(&g, &[d], &xr, rows * n), &want_x, 1e-4);
        // Overwriting: the old values are not read.
        let mut want_o = vec![0f32; rows * n];
        ops::moe_combine(&mut want_o, &want_p, &route);
        let d = g.moe_combine_into(&rb, &yb, (&xr, 0), s, n, true).unwrap();
        assert_close(&format!("moe_combine {} overwriting", dtype.name()), &run(&g, &[d], &xr, rows * n), &want_o, 1e-4);
        // Into the rows from 3 on of a longer residual stream: the 3 before stay as they were.
        let lead = rng.vec(3 * n, 1.0);
        let xr = g.upload_f32("resid", &[lead.clone(), resid.clone()].concat()).unwrap();
        let d = g.moe_combine_into(&rb, &yb, (&xr, 3), s, n, false).unwrap();
        let got = run(&g, &[d], &xr, (rows + 3) * n);
        assert_eq!(got[..3 * n], lead[..], "moe_combine {}: rows before x_row untouched", dtype.name());
        assert_close(&format!("moe_combine {} from row 3", dtype.name()), &got[3 * n..], &want_x, 1e-4);
    }
}

#[test]
fn coop_moe_matmul_matches_the_twin_that_rounds_inputs_to_f16() {
    // The grouped expert matmul on cooperative matrices (moe_coop.wgsl around matmul_coop.wgsl's
    // core: tiles of 32 pairs by 128 columns; the matrix operations emulated where the adapter
    // has none, the hardware's on GPUs, where bench/gpu.sh runs the tests named coop) against
    // ops::moe_matmul_f16_inputs (both inputs rounded to f16 the same way: only the order of the
    // f32 sums differs): experts with more pairs than a tile (three tiles), columns over two
    // tiles and off the edge, k off the 32-deep slice (f32, f16), chunks of two experts (the
    // launches' first expert past 0), by position, by pair (the down projection) and gated, into
    // NaN-filled outputs. With a folded norm the f32 tiled kernel runs instead (sessions on
    // cooperative matrices norm in a pass of their own).
    use unmask::gpu::kernels::Kernel;
    let g = common::coop_gpu();
    let cases = [(DType::F32, 7, 5, 2, 33, 37), (DType::Q4_0, 140, 4, 2, 9, 96), (DType::Q8_0, 20, 5, 2, 150, 64), (DType::F16, 60, 6, 3, 130, 40)];
    for (dtype, rows, experts, k, n, kdim) in cases {
        let mut rng = Rng::new(n as u64 * 17 + kdim as u64);
        let logits = rng.vec(rows * experts, 2.0);
        let x = rng.vec(rows * kdim, 1.5);
        let w = HostTensor::encode(dtype, experts * n, kdim, &rng.vec(experts * n * kdim, 1.0)).unwrap();
        let route = ops::moe_route(&logits, experts, k, true, Routing::SOFTMAX, None);
        assert_eq!(route.lists.iter().any(|l| l.len() > 64), rows == 140, "{:?}", route.lists.iter().map(|l| l.len()).collect::<Vec<_>>());
        let s = MoeShape { rows, experts, k };
        let rb = gpu_route(&g, &logits, s, true);
        let gw = GpuWeight::upload(&g, "experts", &w, (2 * n * w.row_bytes()) as u64).unwrap();
        assert_eq!(gw.chunks.len(), experts.div_ceil(2));
        let xb = g.upload_f32("x", &x).unwrap();
        let xp = rng.vec(rows * k * kdim, 1.5);
        let xpb = g.upload_f32("xp", &xp).unwrap();
        let want = ops::moe_matmul_f16_inputs(&x, false, &w, experts, &route);
        let want_p = ops::moe_matmul_f16_inputs(&xp, true, &w, experts, &route);
        let gate = rng.vec(rows * k * n, 3.0);
        let act = if n % 2 == 1 { Activation::Silu } else { Activation::GeluTanh };
        let want_g: Vec<f32> = gate.iter().zip(&want).map(|(g, v)| Epilogue::Gated(act).apply(*g, *v)).collect();
        let what = |how: &str| format!("coop moe_matmul {} {how} ({rows} rows, top-{k} of {experts}, n {n}, k {kdim})", dtype.name());
        let coop = |ls: &[Launch]| assert!(ls.iter().all(|l| l.kernel == Kernel::MoeMatmulCoop { dtype }), "cooperative matrices ran");
        let yb = g.upload_f32("y", &vec![f32::NAN; rows * k * n]).unwrap();
        let ls = moe_launches(&g, KernelVariant::Tiled, &gw, n, kdim, &xb, false, &rb, &yb, Epilogue::Store, s);
        coop(&ls);
        assert_close(&what("by position"), &run(&g, &ls, &yb, rows * k * n), &want, 2e-4);
        let ls = moe_launches(&g, KernelVariant::Tiled, &gw, n, kdim, &xpb, true, &rb, &yb, Epilogue::Store, s);
        coop(&ls);
        assert_close(&what("by pair"), &run(&g, &ls, &yb, rows * k * n), &want_p, 2e-4);
        let gb = g.upload_f32("gate", &gate).unwrap();
        let ls = moe_launches(&g, KernelVariant::Tiled, &gw, n, kdim, &xb, false, &rb, &gb, Epilogue::Gated(act), s);
        coop(&ls);
        assert_close(&what(&format!("gated {act:?}")), &run(&g, &ls, &gb, rows * k * n), &want_g, 2e-4);
        // A folded norm: the f32 kernel, and the f32 twin.
        let gv: Vec<f32> = rng.vec(kdim, 1.0).iter().map(|v| 1.0 + v).collect();
        let gvb = g.upload_f32("norm", &gv).unwrap();
        let norm = Some(unmask::gpu::kernels::RowNorm { w: &gvb, eps: 1e-5 });
        let ls = moe_launches_normed(&g, KernelVariant::Tiled, &gw, (n, kdim), (&xb, norm), false, &rb, &yb, Epilogue::Store, s);
        assert!(ls.iter().all(|l| matches!(l.kernel, Kernel::MoeMatmul { .. })), "a folded norm keeps the f32 kernel");
        let want_n = ops::moe_matmul(&ops::rmsnorm(&x, &gv, 1e-5), false, &w, experts, &route);
        assert_close(&what("normed, f32 kernel"), &run(&g, &ls, &yb, rows * k * n), &want_n, 1e-4);
    }
}

#[test]
fn dg_choose_argmax_entropy_and_sample_per_row() {
    // DiffusionGemma's on-GPU choice: vocabularies above and below the workgroup width (empty
    // slices), a row with a tie for the maximum (the first wins), uniforms at 0 and near 1, and
    // a chunk of rows written from canvas row 2.
    let g = gpu();
    for (rows, vocab, t) in [(6, 1001, 0.6f32), (4, 100, 0.8), (3, 4096, 0.4)] {
        let mut rng = Rng::new(vocab as u64);
        let mut logits = rng.vec(rows * vocab, 3.0);
        logits[7] = 50.0;
        logits[vocab - 3] = 50.0;
        let mut u: Vec<f32> = (0..rows + 2).map(|_| rng.unit()).collect();
        u[2] = 0.0;
        u[3] = 0.999_999;
        let want = ops::dg_choose(&logits, vocab, 1.0 / t, &u[2..]);
        assert_eq!(want[0].0, 7, "the first of two equal maxima");
        let (lb, ub) = (g.upload_f32("logits", &logits).unwrap(), g.upload_f32("u", &u).unwrap());
        let out = g.storage("out", (3 * (rows + 2) * 4) as u64).unwrap();
        let d = g.dg_choose(&lb, &ub, &out, rows, vocab, 1.0 / t, 2).unwrap();
        let ds = g.bind(&[d], None).unwrap();
        let mut enc = g.device.create_command_encoder(&Default::default());
        g.record(&mut enc, &ds);
        let words: Vec<u32> = bytemuck::pod_collect_to_vec(&pollster::block_on(g.submit_and_read(enc, &[(&out, 0, (3 * (rows + 2) * 4) as u64)])).unwrap());
        for (r, w) in want.iter().enumerate() {
            let got = &words[3 * (r + 2)..3 * (r + 3)];
            let what = format!("vocab {vocab}, row {r}");
            assert_eq!(got[0], w.0, "{what}: argmax");
            assert!((f32::from_bits(got[1]) - w.1).abs() < 1e-4, "{what}: entropy {} vs {}", f32::from_bits(got[1]), w.1);
            assert_eq!(got[2], w.2, "{what}: sample (u {})", u[r + 2]);
        }
    }
}

/// `x` as f16 bytes (for f16 K/V buffers), and the values those hold.
fn f16_bytes(x: &[f32]) -> (Vec<u8>, Vec<f32>) {
    let h: Vec<half::f16> = x.iter().map(|&a| half::f16::from_f32(a)).collect();
    (bytemuck::cast_slice(&h).to_vec(), h.iter().map(|a| a.to_f32()).collect())
}

#[test]
fn attention_reads_f16_keys_and_values_in_every_layout() {
    // Half-precision K/V (sessions on adapters with shader-f16): every layout, split-K included,
    // against the CPU twin on the values the f16 buffers hold; odd key counts, GQA, a wide head,
    // a masked case. Scores, softmax and sums stay f32, so the f32 tolerance applies.
    let cases = [
        (7, 13, 4, 2, 16, AttnMask::FULL),
        (5, 70, 2, 1, 64, AttnMask::FULL),
        (66, 11, 2, 2, 300, AttnMask::FULL),
        (40, 90, 2, 2, 8, AttnMask { q0: 5, block: 7, ..AttnMask::FULL }),
        (20, 79, 4, 2, 16, AttnMask { q0: 9, causal: true, window: 4, scale: Some(1.0), ..AttnMask::FULL }),
    ];
    for layout in ATTENTION {
        let (g, variant, name) = attention_gpu(layout);
        g.check_kv(KvType::F16).expect("lavapipe and GPUs with shader-f16 store f16 K/V");
        for (lq, lk, heads, kv, hd, mask) in cases {
            let mut rng = Rng::new((lq * 3 + lk * hd) as u64);
            let q = rng.vec(lq * heads * hd, 1.0);
            let (kb16, k) = f16_bytes(&rng.vec(lk * kv * hd, 1.0));
            let (vb16, v) = f16_bytes(&rng.vec(lk * kv * hd, 1.0));
            let want = ops::attention(&q, &k, &v, lq, lk, heads, kv, hd, &mask);
            let (qb, kb, vb) = (g.upload_f32("q", &q).unwrap(), g.upload("k", &kb16).unwrap(), g.upload("v", &vb16).unwrap());
            let shape = AttnShape { lq, lk, n_heads: heads, n_kv: kv, head_dim: hd };
            let out = g.upload_f32("o", &vec![f32::NAN; want.len()]).unwrap();
            let scratch = g.storage("split-K scratch", AttnShape::split_scratch_bound(lq.max(lk), heads, hd).max(4)).unwrap();
            let ls = g.attention(variant, &qb, &kb, &vb, &out, shape, mask, KvType::F16, KvType::F32, Some(&scratch)).unwrap();
            let what = format!("attention ({name}), f16 K/V: lq{lq} lk{lk} h{heads}/{kv} d{hd} {mask:?}");
            assert_close(&what, &run(&g, &ls, &out, want.len()), &want, 2e-4);
            if layout.1 {
                // the flash layouts split
                let scratch = g.storage("scratch", shape.split_bytes(3)).unwrap();
                let ls = g.attention_split(&qb, &kb, &vb, &out, shape, mask, [KvType::F16, KvType::F32], &scratch, 3).unwrap();
                assert_close(&format!("split-K {what}"), &run(&g, &ls, &out, want.len()), &want, 2e-4);
            }
        }
    }
}

#[test]
fn kv_store_rounds_new_rows_into_f16_at_their_offset() {
    // An odd count at an odd offset: the values before and after stay as they were; the stored
    // ones are the f32 inputs rounded to nearest-even f16 (`KvType::round`, the CPU twin), and
    // large, tiny and negative values keep their sign and scale.
    let g = gpu();
    let (n, off, total) = (1027, 333, 1500);
    let mut rng = Rng::new(77);
    let mut src = rng.vec(n, 3.0);
    src[..4].copy_from_slice(&[60000.0, -1.0e-5, 0.1, -0.333333]);
    let before: Vec<f32> = (0..total).map(|i| i as f32 * 0.25).collect();
    let (dst_bytes, before16) = f16_bytes(&before);
    let (sb, db) = (g.upload_f32("src", &src).unwrap(), g.upload("dst", &dst_bytes).unwrap());
    let l = g.kv_store(&sb, &db, n, off).unwrap();
    let ds = g.bind(&[l], None).unwrap();
    let mut enc = g.device.create_command_encoder(&Default::default());
    g.record(&mut enc, &ds);
    let bytes = pollster::block_on(g.submit_and_read(enc, &[(&db, 0, Gpu::padded((total * 2) as u64))])).unwrap();
    let got: Vec<f32> = bytemuck::pod_collect_to_vec::<u8, half::f16>(&bytes[..total * 2]).iter().map(|h| h.to_f32()).collect();
    for i in 0..total {
        let want = if (off..off + n).contains(&i) { KvType::F16.round(src[i - off]) } else { before16[i] };
        assert_eq!(got[i].to_bits(), want.to_bits(), "value {i}: got {} want {want}", got[i]);
    }
    assert!(g.kv_store(&sb, &db, n, u32::MAX as usize).is_err(), "an offset past u32 is refused");
}

#[test]
fn split_k_matmul_matches_the_cpu_twin_with_every_epilogue() {
    // The tiled matmul with its shared dimension cut into 2, 3 or 7 slices, then merged with each
    // epilogue into an offset, strided output: k not a multiple of 16 or of the slices, a slice
    // ending inside a Q4_0/Q8_0 block, short (≤ 32 rows) and long inputs, every weight format.
    // The scratch starts as NaN, so a slice the kernels should write and do not shows.
    use unmask::gpu::kernels::{MatmulIo, MatmulSplit};
    let g = gpu_with(KernelVariant::Tiled);
    let epilogues = [Epilogue::Store, Epilogue::Add, Epilogue::Gated(Activation::Silu)];
    let cases = [(5, 600, 70, DType::F32), (33, 544, 9, DType::Q4_0), (40, 992, 130, DType::Q8_0), (3, 776, 64, DType::F16), (7, 512, 20, DType::BF16)];
    for (ci, (m, k, n, dtype)) in cases.into_iter().enumerate() {
        let (stride, off) = (n + 5, 3);
        let mut rng = Rng::new(ci as u64 + 40);
        let x = rng.vec(m * k, 1.0);
        let w = HostTensor::encode(dtype, n, k, &rng.vec(n * k, 1.0)).unwrap();
        let prod = ops::matmul(&x, &w, m);
        let gw = GpuWeight::upload(&g, "w", &w, u64::MAX).unwrap();
        let xb = g.upload_f32("x", &x).unwrap();
        for splits in [2, 3, 7] {
            let k_slice = k.div_ceil(splits).next_multiple_of(16);
            let split = MatmulSplit { splits: k.div_ceil(k_slice), k_slice };
            let scratch = g.upload_f32("scratch", &vec![f32::NAN; (split.bytes(m, n) / 4) as usize]).unwrap();
            for e in epilogues {
                let y0 = rng.vec(off + m * stride, 3.0);
                let want = after_epilogue(&y0, &prod, (m, n), off, stride, e);
                let yb = g.upload_f32("y", &y0).unwrap();
                let io =
                    MatmulIo { x: &xb, x_offset: 0, y: &yb, y_offset: off, y_stride: stride, epilogue: e, norm: None, rope: None, x_f16: false, y_f16: false };
                let ls = g.matmul_split(dtype, &gw.chunks[0].0, m, n, k, io, &scratch, split, KvType::F32).unwrap();
                assert_eq!(ls.len(), 2, "the slices, then the merge");
                let what = format!("split-K matmul {} {m}×{k}×{n}, {} slices of {k_slice}, {e:?}", dtype.name(), split.splits);
                assert_close(&what, &run(&g, &ls, &yb, want.len()), &want, 1e-4);
            }
            // A split that does not cover k, or leaves a slice empty, and scratch one word short.
            let io = || MatmulIo {
                x: &xb,
                x_offset: 0,
                y: &xb,
                y_offset: 0,
                y_stride: n,
                epilogue: Epilogue::Store,
                norm: None,
                rope: None,
                x_f16: false,
                y_f16: false,
            };
            let w0 = &gw.chunks[0].0;
            assert!(g.matmul_split(dtype, w0, m, n, k, io(), &scratch, MatmulSplit { splits: split.splits, k_slice: 16 }, KvType::F32).is_err());
            assert!(g.matmul_split(dtype, w0, m, n, k, io(), &scratch, MatmulSplit { splits: split.splits + 1, ..split }, KvType::F32).is_err());
            let small = g.storage("small", split.bytes(m, n) - 4).unwrap();
            assert!(g.matmul_split(dtype, w0, m, n, k, io(), &small, split, KvType::F32).is_err());
        }
    }
}

/// `m` rows of `k` from element `x_off` of very different scales (one so small that eps
/// dominates its rms), and a norm weight near 1.
fn norm_inputs(rng: &mut Rng, x_off: usize, m: usize, k: usize) -> (Vec<f32>, Vec<f32>) {
    let mut x = rng.vec(x_off + m * k, 1.0);
    for r in 0..m {
        let scale = [1.0, 30.0, 1e-3, 0.05][r % 4];
        x[x_off + r * k..x_off + (r + 1) * k].iter_mut().for_each(|v| *v *= scale);
    }
    (x, rng.vec(k, 1.0).iter().map(|v| 1.0 + v).collect())
}

#[test]
fn matmul_with_a_folded_norm_matches_rmsnorm_then_matmul() {
    // The tiled matmul with the RMSNorm of its input rows folded in (x staged times the norm's
    // weight, Σ x² summed while staging, the result scaled by 1/rms) against the twins' norm,
    // then matmul: rows of very different scales (one so small that eps dominates its rms), k
    // not a multiple of 16, short and long inputs, x read at an offset, every epilogue into an
    // offset, strided output, a weight split into row chunks, unsplit and split-K (2, 3 and 7
    // slices into NaN-filled scratch, so a Σ x² the slices should write and do not shows).
    use unmask::gpu::kernels::{MatmulIo, MatmulSplit, RowNorm};
    let g = gpu_with(KernelVariant::Tiled);
    let eps = 1e-5;
    let cases = [(5, 600, 70, DType::F32), (33, 544, 9, DType::Q4_0), (70, 224, 130, DType::Q8_0), (3, 776, 64, DType::F16), (7, 100, 20, DType::BF16)];
    for (ci, (m, k, n, dtype)) in cases.into_iter().enumerate() {
        let mut rng = Rng::new(ci as u64 + 70);
        let x_off = 2 * k;
        let (x, gv) = norm_inputs(&mut rng, x_off, m, k);
        let w = HostTensor::encode(dtype, n, k, &rng.vec(n * k, 1.0)).unwrap();
        let prod = ops::matmul(&ops::rmsnorm(&x[x_off..], &gv, eps), &w, m);
        let (xb, gb) = (g.upload_f32("x", &x).unwrap(), g.upload_f32("norm", &gv).unwrap());
        let norm = Some(RowNorm { w: &gb, eps });
        let chunked = GpuWeight::upload(&g, "w", &w, (48 * w.row_bytes()) as u64).unwrap();
        let whole = GpuWeight::upload(&g, "w", &w, u64::MAX).unwrap();
        let (stride, off) = (n + 5, 3);
        for e in [Epilogue::Store, Epilogue::Add, Epilogue::Gated(Activation::Silu)] {
            let y0 = rng.vec(off + m * stride, 3.0);
            let want = after_epilogue(&y0, &prod, (m, n), off, stride, e);
            let yb = g.upload_f32("y", &y0).unwrap();
            let io = MatmulIo { x: &xb, x_offset: x_off, y: &yb, y_offset: off, y_stride: stride, epilogue: e, norm, rope: None, x_f16: false, y_f16: false };
            let ls = chunked.matmul_split_k(&g, KernelVariant::Tiled, m, io, None).unwrap();
            assert_eq!(ls.len(), n.div_ceil(48), "one launch a chunk");
            let what = format!("normed matmul {} {m}×{k}×{n}, {e:?}", dtype.name());
            assert_close(&what, &run(&g, &ls, &yb, want.len()), &want, 1e-4);
            for splits in [2, 3, 7] {
                let k_slice = k.div_ceil(splits).next_multiple_of(16);
                let split = MatmulSplit { splits: k.div_ceil(k_slice), k_slice };
                let scratch = g.upload_f32("scratch", &vec![f32::NAN; (split.bytes(m, n) / 4) as usize]).unwrap();
                let yb = g.upload_f32("y", &y0).unwrap();
                let io = MatmulIo { y: &yb, ..io };
                let ls = g.matmul_split(dtype, &whole.chunks[0].0, m, n, k, io, &scratch, split, KvType::F32).unwrap();
                let what = format!("normed split-K matmul {} {m}×{k}×{n}, {} slices of {k_slice}, {e:?}", dtype.name(), split.splits);
                assert_close(&what, &run(&g, &ls, &yb, want.len()), &want, 1e-4);
            }
        }
        // The CPU-lanes kernel has no norm prologue: refused, not ignored.
        let io = MatmulIo { x: &xb, x_offset: 0, y: &xb, y_offset: 0, y_stride: n, epilogue: Epilogue::Store, norm, rope: None, x_f16: false, y_f16: false };
        assert!(g.matmul(KernelVariant::CpuLanes, dtype, &whole.chunks[0].0, m, n, k, io).is_err());
    }
}

#[test]
fn qkv_in_one_launch_matches_three_matmuls() {
    // matmul_qkv.wgsl: Q, K and V of one input in one launch, each weight in its own buffer and
    // format (Q4_K_M keeps V in Q6_K), each part into its own buffer at an offset, against the
    // twin's three matmuls: part widths that are no multiple of 64 (tiles straddle Q/K and K/V),
    // k not a multiple of 16, short and long inputs, with and without a folded norm, unsplit and
    // split-K (the slices into NaN-filled scratch, then one merge for the three parts). What lies around each
    // part's rows must stay as it was. On f32 ALUs and on cooperative matrices (emulated where
    // the adapter has none: f16 inputs, against the twin that rounds them so; a folded norm
    // keeps the f32 core, which the launch must say), in 64×64 and in 64×128 tiles.
    for (g, coop) in [(common::own_gpu(), false), (common::coop_gpu(), true), (common::wide_coop_gpu(), true)] {
        qkv_in_one_launch_on(&g, coop);
    }
}

fn qkv_in_one_launch_on(g: &Gpu, coop: bool) {
    use unmask::gpu::kernels::{Kernel, MatmulIo, RowNorm};
    let eps = 1e-5;
    let cases = [
        (5, 600, [40, 24, 24], [DType::F32; 3]),
        (33, 544, [64, 16, 16], [DType::Q4_0; 3]),
        (70, 224, [70, 9, 130], [DType::Q8_0, DType::F16, DType::BF16]),
        (3, 512, [96, 32, 32], [DType::Q4K, DType::Q4K, DType::Q6K]),
        (17, 1024, [8, 8, 8], [DType::Q4_0, DType::Q4_0, DType::Q8_0]),
    ];
    let mut split_seen = false;
    for (ci, (m, k, ns, dtypes)) in cases.into_iter().enumerate() {
        let mut rng = Rng::new(ci as u64 + 170);
        let x_off = 2 * k;
        let (x, gv) = norm_inputs(&mut rng, x_off, m, k);
        let ws: Vec<HostTensor> = (0..3)
            .map(|i| match dtypes[i] {
                DType::Q4K | DType::Q6K => common::random_blocks(dtypes[i], ns[i], k, ci as u64 * 3 + i as u64),
                d => HostTensor::encode(d, ns[i], k, &rng.vec(ns[i] * k, 1.0)).unwrap(),
            })
            .collect();
        let gws: Vec<GpuWeight> = ws.iter().map(|w| GpuWeight::upload(g, "w", w, u64::MAX).unwrap()).collect();
        let parts = [0, 1, 2].map(|i| (&gws[i].chunks[0].0, dtypes[i], ns[i]));
        let (xb, gb) = (g.upload_f32("x", &x).unwrap(), g.upload_f32("norm", &gv).unwrap());
        for norm in [None, Some(RowNorm { w: &gb, eps })] {
            let input = match norm {
                Some(_) => ops::rmsnorm(&x[x_off..], &gv, eps),
                None => x[x_off..].to_vec(),
            };
            for split in [false, true] {
                g.set_split_matmul(split);
                // Each part's rows start `first` rows into a buffer with 2 rows after them.
                let first = [0, 3, 1];
                let y0: Vec<Vec<f32>> = (0..3).map(|i| rng.vec((first[i] + m + 2) * ns[i], 3.0)).collect();
                let ybs: Vec<wgpu::Buffer> = y0.iter().map(|y| g.upload_f32("y", y).unwrap()).collect();
                let io = MatmulIo {
                    x: &xb,
                    x_offset: x_off,
                    y: &ybs[0],
                    y_offset: first[0] * ns[0],
                    y_stride: ns[0],
                    epilogue: Epilogue::Store,
                    norm,
                    rope: None,
                    x_f16: false,
                    y_f16: false,
                };
                let kv = [(&ybs[1], first[1] * ns[1]), (&ybs[2], first[2] * ns[2])];
                let n: usize = ns.iter().sum();
                let plan = g.matmul_split_of(KernelVariant::Tiled, m, n, k);
                let scratch = g.upload_f32("scratch", &vec![f32::NAN; (plan.bytes(m, n) / 4).max(1) as usize]).unwrap();
                let ls = g.matmul_qkv(parts, m, k, io, kv, KvType::F32, Some(&scratch), None).unwrap();
                let expect = if plan.splits > 1 { 2 } else { 1 };
                assert_eq!(ls.len(), expect, "one launch, or the slices and one merge");
                let on_coop = coop && norm.is_none();
                assert!(matches!(ls[0].kernel, Kernel::MatmulQkv { coop, .. } if coop == on_coop), "cooperative matrices {on_coop}: {:?}", ls[0].kernel);
                split_seen |= plan.splits > 1;
                let ds = g.bind(&ls, None).unwrap();
                let mut enc = g.device.create_command_encoder(&Default::default());
                g.record(&mut enc, &ds);
                let reads: Vec<(&wgpu::Buffer, u64, u64)> = (0..3).map(|i| (&ybs[i], 0, (y0[i].len() * 4) as u64)).collect();
                let bytes: Vec<f32> = bytemuck::pod_collect_to_vec(&pollster::block_on(g.submit_and_read(enc, &reads)).unwrap());
                let mut at = 0;
                for i in 0..3 {
                    let prod = if on_coop { ops::matmul_f16_inputs(&input, &ws[i], m) } else { ops::matmul(&input, &ws[i], m) };
                    let want = after_epilogue(&y0[i], &prod, (m, ns[i]), first[i] * ns[i], ns[i], Epilogue::Store);
                    let what = format!(
                        "{} of Q/K/V ({:?}) {m}×{k}×{ns:?}, norm {}, {} slices, coop {on_coop}",
                        ["Q", "K", "V"][i],
                        dtypes,
                        norm.is_some(),
                        plan.splits
                    );
                    assert_close(&what, &bytes[at..at + want.len()], &want, 1e-4);
                    // Row by row too: a row of small values beside one of large values is held
                    // to its own size (a row's rms is its scale where it has several values).
                    for r in (0..m).filter(|_| ns[i] >= 8) {
                        let s = (first[i] + r) * ns[i];
                        assert_close(&format!("{what}, row {r}"), &bytes[at + s..at + s + ns[i]], &want[s..s + ns[i]], 1e-4);
                    }
                    at += want.len();
                }
            }
        }
        // Each part stores dense rows at its width, with no epilogue: anything else is refused.
        let io = MatmulIo {
            x: &xb,
            x_offset: 0,
            y: &xb,
            y_offset: 0,
            y_stride: ns[0] + 1,
            epilogue: Epilogue::Store,
            norm: None,
            rope: None,
            x_f16: false,
            y_f16: false,
        };
        assert!(g.matmul_qkv(parts, m, k, io, [(&xb, 0), (&xb, 0)], KvType::F32, None, None).is_err());
        let io = MatmulIo { y_stride: ns[0], epilogue: Epilogue::Add, ..io };
        assert!(g.matmul_qkv(parts, m, k, io, [(&xb, 0), (&xb, 0)], KvType::F32, None, None).is_err());
    }
    assert!(split_seen, "some case splits");
}

#[test]
fn q_and_k_turned_by_rope_as_they_are_stored() {
    // RoPE in the Q/K/V projections' store (`MatmulIo::rope`, the graph's `Op::Qkv::rope_at`):
    // the fused launch unsplit (NeoX pairs side by side in its tiles) and split (Q's and K's
    // merges), three matmuls (fusing off: their merges, or a RoPE pass each) and the CPU-lanes
    // layout (RoPE passes), against the twin's matmuls, then its RoPE at positions pos0 ..:
    // both styles, partial RoPE, GQA, heads narrower than a tile and as wide. V is not turned,
    // and the rows around each part's stay as they were. K and V go to f32 buffers, or
    // straight into half-precision K/V (`f16_kv`: the fused store and all merges round them;
    // unsplit matmuls go through f32 staging and K/V stores): within f16's rounding of the twin's.
    // On f32 ALUs, then on cooperative matrices (emulated where the adapter has none: f16
    // inputs, against the twin that rounds them so; no CPU-lanes layout there), in 64×64 and
    // in 64×128 tiles.
    let mut seen = [false; 5];
    for (g, coop) in [(common::own_gpu(), false), (common::coop_gpu(), true), (common::wide_coop_gpu(), true)] {
        let s = rope_in_the_store_on(&g, coop);
        seen = std::array::from_fn(|i| seen[i] || s[i]);
    }
    assert!(seen.iter().all(|&s| s), "the fused launch split, other merges (into f16 K/V too), RoPE passes and K/V stores all ran: {seen:?}");
}

/// `q_and_k_turned_by_rope_as_they_are_stored` on `g`: which paths ran (the fused launch split,
/// other merges, RoPE passes, K/V stores, merges straight into f16 K/V).
fn rope_in_the_store_on(g: &Gpu, coop: bool) -> [bool; 5] {
    use unmask::gpu::kernels::{Kernel, MatmulIo, QkRope};
    let cases = [
        // (m, k, heads, K/V heads, head_dim, dimensions turned, style, position of row 0, q/k/v biases)
        (5, 96, 4, 2, 16, 16, RopeStyle::NeoX, 7, false),
        (33, 544, 3, 1, 32, 32, RopeStyle::Interleaved, 0, true),
        (7, 1024, 2, 2, 64, 32, RopeStyle::NeoX, 100, true),
        (3, 72, 6, 3, 8, 4, RopeStyle::Interleaved, 3, false),
        (17, 512, 2, 1, 128, 128, RopeStyle::NeoX, 250, false),
    ];
    let (mut fused_split, mut merged, mut passes, mut stores, mut direct) = (false, false, false, false, false);
    for (ci, (m, k, heads, kvh, hd, rot, style, pos0, biased)) in cases.into_iter().enumerate() {
        let mut rng = Rng::new(ci as u64 + 470);
        let spec = RopeSpec::first(rot, 10000.0);
        let ns = [heads * hd, kvh * hd, kvh * hd];
        let dtypes = if k % 32 == 0 { [DType::Q8_0, DType::Q4_0, DType::F16] } else { [DType::F32; 3] };
        let x = rng.vec(m * k, 1.0);
        let ws: Vec<HostTensor> = (0..3).map(|i| HostTensor::encode(dtypes[i], ns[i], k, &rng.vec(ns[i] * k, 1.0)).unwrap()).collect();
        let gws: Vec<GpuWeight> = ws.iter().map(|w| GpuWeight::upload(g, "w", w, u64::MAX).unwrap()).collect();
        let positions: Vec<u32> = (pos0..pos0 + m).map(|p| p as u32).collect();
        let mut want: Vec<Vec<f32>> = ws.iter().map(|w| if coop { ops::matmul_f16_inputs(&x, w, m) } else { ops::matmul(&x, w, m) }).collect();
        // Q/K/V biases (Qwen2's, Dream's), added before RoPE: each vector on its own, and the
        // three after k other values in one buffer (where the attention norm's weight goes).
        let biases: Vec<Vec<f32>> = ns.iter().map(|&n| rng.vec(n, 2.0)).collect();
        if biased {
            want.iter_mut().zip(&biases).for_each(|(y, b)| ops::add_bias(y, b, 0));
        }
        let bias_parts: Vec<GpuWeight> = biases.iter().map(|b| GpuWeight::upload(g, "bias", &HostTensor::from_f32(1, b.len(), b), u64::MAX).unwrap()).collect();
        let joined: Vec<f32> = rng.vec(k, 1.0).into_iter().chain(biases.concat()).collect();
        let joined = g.upload_f32("norm and biases", &joined).unwrap();
        let bias = biased.then(|| unmask::engine::QkvBias { parts: [&bias_parts[0], &bias_parts[1], &bias_parts[2]], joined: &joined, at: k });
        ops::rope(&mut want[0], &positions, heads, hd, spec, style);
        ops::rope(&mut want[1], &positions, kvh, hd, spec, style);
        let (xb, pb) = (g.upload_f32("x", &x).unwrap(), g.upload("positions", bytemuck::cast_slice(&positions)).unwrap());
        let scratch = g.upload_f32("scratch", &vec![f32::NAN; 16 * m * (ns.iter().sum::<usize>() + 1)]).unwrap();
        let staging: Vec<wgpu::Buffer> = (1..3).map(|i| g.upload_f32("staging", &vec![f32::NAN; m * ns[i]]).unwrap()).collect();
        let rope = QkRope { spec, style, head_dim: hd, pos0, positions: &pb };
        let w3 = [&gws[0], &gws[1], &gws[2]];
        for (variant, fuse, split) in [
            (KernelVariant::Tiled, true, false),
            (KernelVariant::Tiled, true, true),
            (KernelVariant::Tiled, false, false),
            (KernelVariant::Tiled, false, true),
            (KernelVariant::CpuLanes, false, false),
        ] {
            if coop && variant == KernelVariant::CpuLanes {
                continue;
            }
            g.set_fuse(fuse);
            g.set_split_matmul(split);
            for f16 in [false, true] {
                let first = [0, 2, 1];
                let y0: Vec<Vec<f32>> = (0..3).map(|i| rng.vec((first[i] + m + 1) * ns[i], 3.0)).collect();
                // K and V's buffers: f32, or f16 (what they held before, as f16 holds it).
                let half = |i: usize| f16 && i > 0;
                let before: Vec<Vec<f32>> = (0..3).map(|i| if half(i) { f16_bytes(&y0[i]).1 } else { y0[i].clone() }).collect();
                let ybs: Vec<wgpu::Buffer> =
                    (0..3).map(|i| if half(i) { g.upload("y", &f16_bytes(&y0[i]).0).unwrap() } else { g.upload_f32("y", &y0[i]).unwrap() }).collect();
                let io = |i: usize, rope| MatmulIo {
                    x: &xb,
                    x_offset: 0,
                    y: &ybs[i],
                    y_offset: first[i] * ns[i],
                    y_stride: ns[i],
                    epilogue: Epilogue::Store,
                    norm: None,
                    x_f16: false,
                    y_f16: false,
                    rope,
                };
                let f16_kv = f16.then(|| [&staging[0], &staging[1]]);
                let ls = GpuWeight::qkv(g, variant, w3, m, [io(0, Some(rope)), io(1, Some(rope)), io(2, None)], Some(&scratch), f16_kv, bias).unwrap();
                let has = |f: fn(&Kernel) -> bool| ls.iter().any(|l| f(&l.kernel));
                let (merge, pass, one) = (
                    has(|k| matches!(k, Kernel::MatmulMerge { .. } | Kernel::MatmulMergeQkv { .. })),
                    has(|k| matches!(k, Kernel::Rope)),
                    has(|k| matches!(k, Kernel::MatmulQkv { .. })),
                );
                let store = has(|k| matches!(k, Kernel::KvStore));
                // On cooperative matrices every product ran there.
                let f32_core = has(|k| matches!(k, Kernel::Matmul { .. } | Kernel::MatmulQkv { coop: false, .. }));
                assert_eq!(f32_core, !coop, "{variant:?}, fused {fuse}, split {split}, coop {coop}");
                let what = format!(
                    "{variant:?}, fused {one}, merges {merge}, RoPE passes {pass}, f16 K/V {f16}, biases {biased}: Q/K/V {m}×{k}×{ns:?} {dtypes:?}, {style:?} {rot} of {hd} from {pos0}"
                );
                // Biases: in the fused store or merge, else one pass an output before its RoPE.
                let bias_passes = ls.iter().filter(|l| matches!(l.kernel, Kernel::Bias)).count();
                assert_eq!(bias_passes, if biased && !one { 3 } else { 0 }, "{what}");
                // The fused launch turns Q and K and stores f16 itself; the others' splits turn
                // them and store f16 in the merges, and unsplit they take passes of their own.
                assert_eq!(one, variant == KernelVariant::Tiled && fuse, "{what}");
                // (With biases, split matmuls leave RoPE to passes after the bias passes.)
                assert!(!(pass && (one || merge && !biased)), "{what}: RoPE passes only where no store turns Q and K");
                assert!(!store || (f16 && !one), "{what}: K/V stores only for f16 K/V of three matmuls");
                assert!(!(f16 && !one && !merge) || store, "{what}: unsplit, f16 K/V take K/V stores");
                (fused_split, merged, passes, stores) = (fused_split || one && merge, merged || !one && merge, passes || pass, stores || store);
                direct |= f16 && !one && merge && !store;
                let ds = g.bind(&ls, None).unwrap();
                let mut enc = g.device.create_command_encoder(&Default::default());
                g.record(&mut enc, &ds);
                let bytes = |i: usize| (y0[i].len() * if half(i) { 2 } else { 4 }) as u64;
                let reads: Vec<(&wgpu::Buffer, u64, u64)> = (0..3).map(|i| (&ybs[i], 0, Gpu::padded(bytes(i)))).collect();
                let got = pollster::block_on(g.submit_and_read(enc, &reads)).unwrap();
                let mut at = 0;
                for i in 0..3 {
                    let raw = &got[at..at + bytes(i) as usize];
                    at += Gpu::padded(bytes(i)) as usize;
                    let got: Vec<f32> = if half(i) {
                        bytemuck::pod_collect_to_vec::<u8, half::f16>(raw).iter().map(|h| h.to_f32()).collect()
                    } else {
                        bytemuck::pod_collect_to_vec(raw)
                    };
                    let expect = after_epilogue(&before[i], &want[i], (m, ns[i]), first[i] * ns[i], ns[i], Epilogue::Store);
                    let part = format!("{} of {what}", ["Q", "K", "V"][i]);
                    if !half(i) {
                        assert_close(&part, &got, &expect, 2e-4);
                        continue;
                    }
                    // f16: the rows around stay bit for bit; the pass's rows are the twin's
                    // values rounded (half an f16 step, 2^-11 of the value) within 2e-4.
                    let scale = (want[i].iter().map(|v| v * v).sum::<f32>() / want[i].len() as f32).sqrt();
                    let (lo, hi) = (first[i] * ns[i], (first[i] + m) * ns[i]);
                    for (j, (g, e)) in got.iter().zip(&expect).enumerate() {
                        let ok = if (lo..hi).contains(&j) { (g - e).abs() <= e.abs() * 4.9e-4 + 2e-4 * scale } else { g.to_bits() == e.to_bits() };
                        assert!(ok, "{part}: element {j} is {g}, the twin gives {e}");
                    }
                }
            }
        }
        // Pairs that do not fit the head are refused (the same parts with a fitting RoPE are not).
        let wide = QkRope { spec: RopeSpec::first(2 * hd, 10000.0), ..rope };
        let ys: Vec<wgpu::Buffer> = ns.iter().map(|n| g.storage("y", (m * n * 4) as u64).unwrap()).collect();
        let part = |i: usize, rope| MatmulIo {
            x: &xb,
            x_offset: 0,
            y: &ys[i],
            y_offset: 0,
            y_stride: ns[i],
            epilogue: Epilogue::Store,
            norm: None,
            rope,
            x_f16: false,
            y_f16: false,
        };
        for fuse in [true, false] {
            g.set_fuse(fuse);
            assert!(GpuWeight::qkv(g, KernelVariant::Tiled, w3, m, [part(0, Some(wide)), part(1, Some(wide)), part(2, None)], None, None, bias).is_err());
            assert!(GpuWeight::qkv(g, KernelVariant::Tiled, w3, m, [part(0, Some(rope)), part(1, Some(rope)), part(2, None)], None, None, bias).is_ok());
        }
    }
    [fused_split, merged, passes, stores, direct]
}

#[test]
fn gate_and_up_in_one_launch_match_the_gated_matmul() {
    // matmul_glu.wgsl: act(x·Gateᵀ) ⊙ (x·Upᵀ) in one launch, the two weights in their own
    // buffers and formats, against the twin's two matmuls: outputs that are no multiple of 32
    // (a tile's last gate and up rows past the end), k not a multiple of 16, short and long
    // inputs, both activations, with and without a folded norm, into an offset, strided output
    // whose other elements must stay as they were; unsplit and split-K (the slices into
    // NaN-filled scratch, then the merge that pairs each gate column with its up column). On f32
    // ALUs and on cooperative matrices (emulated where the adapter has none: f16 inputs, against
    // the twin that rounds them so; a folded norm keeps the f32 core, which the launch must say),
    // in 64×64 and in 64×128 tiles. Devices of their own: split-K is device state.
    for (g, coop) in [(common::own_gpu(), false), (common::coop_gpu(), true), (common::wide_coop_gpu(), true)] {
        gate_and_up_on(&g, coop);
    }
}

fn gate_and_up_on(g: &Gpu, coop: bool) {
    use unmask::gpu::kernels::{Kernel, MatmulIo, RowNorm};
    let mut split_seen = false;
    let eps = 1e-5;
    let cases = [
        (5, 600, 37, [DType::F32; 2], Activation::Silu),
        (33, 544, 64, [DType::Q4_0; 2], Activation::Silu),
        (70, 224, 100, [DType::Q8_0, DType::F16], Activation::GeluTanh),
        (3, 512, 40, [DType::Q4K, DType::Q6K], Activation::Silu),
        (17, 96, 1, [DType::BF16; 2], Activation::GeluTanh),
    ];
    for (ci, (m, k, n, dtypes, act)) in cases.into_iter().enumerate() {
        let mut rng = Rng::new(ci as u64 + 270);
        let x_off = k;
        let (x, gv) = norm_inputs(&mut rng, x_off, m, k);
        let ws: Vec<HostTensor> = (0..2)
            .map(|i| match dtypes[i] {
                DType::Q4K | DType::Q6K => common::random_blocks(dtypes[i], n, k, ci as u64 * 2 + i as u64),
                d => HostTensor::encode(d, n, k, &rng.vec(n * k, 1.0)).unwrap(),
            })
            .collect();
        let gws: Vec<GpuWeight> = ws.iter().map(|w| GpuWeight::upload(g, "w", w, u64::MAX).unwrap()).collect();
        let parts = [(&gws[0].chunks[0].0, dtypes[0]), (&gws[1].chunks[0].0, dtypes[1])];
        let (xb, gb) = (g.upload_f32("x", &x).unwrap(), g.upload_f32("norm", &gv).unwrap());
        let (stride, off) = (n + 3, 2);
        let width = unmask::gpu::matmul::glu_width(n);
        let scratch = g.upload_f32("scratch", &vec![f32::NAN; 16 * m * (width + 1)]).unwrap();
        for (norm, split) in [None, Some(RowNorm { w: &gb, eps })].into_iter().flat_map(|n| [(n, false), (n, true)]) {
            g.set_split_matmul(split);
            let input = match norm {
                Some(_) => ops::rmsnorm(&x[x_off..], &gv, eps),
                None => x[x_off..].to_vec(),
            };
            let on_coop = coop && norm.is_none();
            let mm = |w: &HostTensor| if on_coop { ops::matmul_f16_inputs(&input, w, m) } else { ops::matmul(&input, w, m) };
            let (gate, up) = (mm(&ws[0]), mm(&ws[1]));
            let e = Epilogue::Gated(act);
            let y0 = rng.vec(off + m * stride, 3.0);
            let mut want = y0.clone();
            for r in 0..m {
                for c in 0..n {
                    want[off + r * stride + c] = e.apply(gate[r * n + c], up[r * n + c]);
                }
            }
            let yb = g.upload_f32("y", &y0).unwrap();
            let io = MatmulIo { x: &xb, x_offset: x_off, y: &yb, y_offset: off, y_stride: stride, epilogue: e, norm, rope: None, x_f16: false, y_f16: false };
            let l = g.matmul_glu(parts, m, n, k, io, Some(&scratch)).unwrap();
            let splits = g.matmul_split_of(KernelVariant::Tiled, m, width, k).splits;
            assert_eq!(l.len(), if splits > 1 { 2 } else { 1 }, "one launch, or the slices and their merge");
            assert!(matches!(l[0].kernel, Kernel::MatmulGlu { coop, .. } if coop == on_coop), "cooperative matrices {on_coop}: {:?}", l[0].kernel);
            split_seen |= splits > 1;
            let what = format!("gate/up {dtypes:?} {m}×{k}×{n}, {act:?}, norm {}, {splits} slices, coop {on_coop}", norm.is_some());
            let got = run(g, &l, &yb, want.len());
            assert_close(&what, &got, &want, 1e-4);
            // Row by row too: a row of small values beside one of large values is held to its
            // own size (a row's rms is its scale where it has several values).
            for r in (0..m).filter(|_| n >= 8) {
                let s = off + r * stride;
                assert_close(&format!("{what}, row {r}"), &got[s..s + n], &want[s..s + n], 1e-4);
            }
            // The output's epilogue is the activation: anything else is refused.
            assert!(g.matmul_glu(parts, m, n, k, MatmulIo { epilogue: Epilogue::Store, ..io }, None).is_err());
        }
    }
    assert!(split_seen, "some case splits");
}

#[test]
fn split_k_matmul_is_chosen_for_few_tiles_and_its_scratch_is_planned() {
    use unmask::gpu::kernels::{MatmulSplit, GPU_SPLIT_FILL, MAX_SPLIT_FILL};
    // LLaDA-8B's cached step: q_proj (4096 × 4096) for 32 rows is 64 tiles: aiming for 256
    // workgroups, 4 slices of 1024; for a GPU's 2048, 16 of 256. Its FFN up projection (12288
    // wide: 192 tiles) fills 256 alone, and takes 11 slices for 2048; k under 512 never splits.
    assert_eq!(MatmulSplit::of(64, 4096, 256), MatmulSplit { splits: 4, k_slice: 1024 });
    assert_eq!(MatmulSplit::of(64, 4096, GPU_SPLIT_FILL), MatmulSplit { splits: 16, k_slice: 256 });
    assert_eq!(MatmulSplit::of(192, 4096, 256).splits, 1);
    assert_eq!(MatmulSplit::of(192, 4096, GPU_SPLIT_FILL), MatmulSplit { splits: 11, k_slice: 384 });
    assert_eq!(MatmulSplit::of(1, 511, MAX_SPLIT_FILL).splits, 1);
    assert_eq!(MatmulSplit::of(1, 100_000, 256).splits, 16);
    for fill in [2, 256, GPU_SPLIT_FILL, MAX_SPLIT_FILL] {
        for tiles in [1, 3, 8, 64, 127, 300, 1000] {
            for k in [512, 600, 777, 4096, 12288] {
                let s = MatmulSplit::of(tiles, k, fill);
                assert!((s.splits == 1 && s.k_slice == k) || s.k_slice.is_multiple_of(32), "{tiles} tiles, k {k}: {s:?}");
                assert!(s.splits * s.k_slice >= k && (s.splits - 1) * s.k_slice < k, "{tiles} tiles, k {k}: {s:?}");
                assert!(s.splits <= 16 && (s.splits == 1 || s.k_slice >= 240), "{tiles} tiles, k {k}: {s:?}");
                assert!(s.splits == 1 || tiles * (s.splits - 1) < fill, "{tiles} tiles, k {k}, fill {fill}: {s:?} overshoots");
            }
        }
    }
    // The session's plan covers every launch at any fill: split_scratch is the largest need
    // over row counts at the largest fill, for the device's tiles (`Limits::wide_tiles`: 128
    // wide on cooperative matrices, short or opted in, else 64). Devices of their own: the
    // switches are device state.
    let shapes = [(256, 768), (4096, 4096)];
    let plain = pollster::block_on(Gpu::new()).unwrap();
    plain.set_coop_matmul(false).unwrap();
    for (what, g) in [("f32 cores", Arc::new(plain)), ("cooperative, short tiles", common::coop_gpu()), ("cooperative, 64×128", common::wide_coop_gpu())] {
        let wide = g.plan_limits().wide_tiles;
        assert_eq!(wide, what != "f32 cores", "{what}");
        let bound = unmask::gpu::matmul::split_scratch(96, &shapes, wide);
        g.set_split_matmul(true);
        assert_eq!(g.split_fill(), GPU_SPLIT_FILL);
        assert!(g.set_split_fill(0).is_err() && g.set_split_fill(MAX_SPLIT_FILL + 1).is_err());
        let mut seen = 0;
        for fill in [256, 1024, GPU_SPLIT_FILL, MAX_SPLIT_FILL] {
            g.set_split_fill(fill).unwrap();
            for m in 1..=96 {
                for (n, k) in shapes {
                    let s = g.matmul_split_of(KernelVariant::Tiled, m, n, k);
                    if s.splits > 1 {
                        assert!(s.bytes(m, n) <= bound, "{what}: fill {fill}, {m} × {n} × {k}: {s:?}");
                        seen = seen.max(s.bytes(m, n));
                    }
                }
            }
        }
        // (With 64×128 tiles every row count takes 128-wide ones: the bound over both widths is
        // then reached too.)
        assert_eq!(seen, bound, "{what}: the bound is reached, not loose");
        g.set_split_matmul(false);
        assert_eq!(g.matmul_split_of(KernelVariant::Tiled, 32, 4096, 4096).splits, 1, "{what}: off: no split");
    }
    // Where the split cap does not bind first (an LM head's 100000 outputs), 128-wide tiles split
    // more, and only devices that have them plan for it.
    let head = [(100_000, 4096)];
    assert!(unmask::gpu::matmul::split_scratch(32, &head, true) > unmask::gpu::matmul::split_scratch(32, &head, false), "128-wide tiles split more");
}

const WEIGHT_FORMATS: [DType; 7] = [DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4K, DType::Q6K];

#[test]
fn coop_matmul_source_validates_and_translates_to_spirv_for_every_format() {
    // No adapter here has cooperative matrices (lavapipe, SwiftShader), so the kernel's numbers
    // are checked only where one does (next test). What runs everywhere: naga, the compiler
    // inside wgpu, parses matmul_coop.wgsl as the host assembles it for each weight format,
    // validates it with exactly the capabilities the device is opened with, and translates it
    // to SPIR-V with the pipeline's constant, as wgpu does before handing it to a Vulkan driver.
    use unmask::gpu::kernels::{source, Kernel};
    use wgpu::naga;
    // What wgpu grants a device with cooperative matrices, shader-f16 and subgroups (f16
    // unpacking in f32 code, which the f16 weight reader uses, is on for every Vulkan device).
    use naga::valid::Capabilities as Caps;
    let caps = Caps::COOPERATIVE_MATRIX | Caps::SHADER_FLOAT16 | Caps::SHADER_FLOAT16_IN_FLOAT32 | Caps::SUBGROUP;
    // Every weight format on its own, and with the Q/K/V store (K/V in f32 and in f16) and the
    // gate/up store, each reading x in f32 and in f16 (gate · up stored in f16 then too), in
    // 64×64 and short 32×128 tiles; the grouped expert matmul (moe_coop.wgsl around the same
    // core) for every format; and probe_coop.wgsl.
    let kernels = WEIGHT_FORMATS
        .into_iter()
        .flat_map(|d| [(d, KvType::F32), (d, KvType::F16)])
        .flat_map(|(d, x)| [(d, x, false), (d, x, true)])
        .flat_map(|(d, x, short)| {
            let other = if d == DType::Q6K { DType::Q4K } else { DType::Q6K };
            let qkv = |kv| Kernel::MatmulQkv { dtypes: [d, d, other], short, kv, coop: true, x };
            [
                Kernel::MatmulCoop { dtype: d, x, short },
                qkv(KvType::F32),
                qkv(KvType::F16),
                Kernel::MatmulGlu { dtypes: [d, other], short, coop: true, x, out: x },
            ]
        })
        // The grouped expert matmul on them, and the platform probe.
        .chain(WEIGHT_FORMATS.map(|dtype| Kernel::MoeMatmulCoop { dtype }))
        .chain([Kernel::Probe(unmask::gpu::probe::Probe::Coop)]);
    for kernel in kernels {
        let src = source(kernel);
        let what = format!("matmul_coop.wgsl as {kernel:?}");
        let module = naga::front::wgsl::parse_str(&src).unwrap_or_else(|e| panic!("{what}: {}", e.emit_to_string(&src)));
        let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
            .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
            .subgroup_operations(naga::valid::SubgroupOperationSet::all())
            .validate(&module)
            .unwrap_or_else(|e| panic!("{what}: {}", e.emit_to_string(&src)));
        let mut constants = naga::back::PipelineConstants::default();
        constants.insert("WG".into(), 128.0);
        let stage = Some((naga::ShaderStage::Compute, "main"));
        let (module, info) = naga::back::pipeline_constants::process_overrides(&module, &info, stage, &constants).unwrap_or_else(|e| panic!("{what}: {e}"));
        let opts = naga::back::spv::Options { lang_version: (1, 6), ..Default::default() };
        let pipeline = naga::back::spv::PipelineOptions { shader_stage: naga::ShaderStage::Compute, entry_point: "main".into() };
        let words = naga::back::spv::write_vec(&module, &info, &opts, Some(&pipeline)).unwrap_or_else(|e| panic!("{what}: {e}"));
        // OpCapability CooperativeMatrixKHR (6022) and OpCooperativeMatrixMulAddKHR (4459): the
        // products really are cooperative-matrix ones.
        let op = |code: u32, len: u32| words.contains(&((len << 16) | code));
        assert!(words.windows(2).any(|p| p == [(2 << 16) | 17, 6022]), "{what}: no CooperativeMatrixKHR capability");
        assert!(op(4459, 6) || op(4459, 7), "{what}: no cooperative multiply-add");
    }
    // The tiled f32 kernel, assembled from the same common part, still validates too.
    let src = source(Kernel::Matmul { dtype: DType::Q4_0, variant: KernelVariant::Tiled, short: false, x: KvType::F32, x4: false, w4: false, xw: false });
    let module = naga::front::wgsl::parse_str(&src).unwrap_or_else(|e| panic!("{}", e.emit_to_string(&src)));
    naga::valid::Validator::new(naga::valid::ValidationFlags::all(), Caps::SHADER_FLOAT16_IN_FLOAT32).validate(&module).unwrap();
}

#[test]
fn coop_matmul_matches_the_cpu_twin_where_the_adapter_has_it() {
    // The one hardware-only path (cooperative matrices: no CPU adapter has them): on adapters
    // without them this checks that the path is off and refused, and says so; on GPUs with them
    // (bench/gpu.sh runs this first) the kernel is compared with its twin, ops::matmul_f16_inputs
    // (both inputs rounded to f16 the same way, so only the order of the f32 sums differs), on
    // odd shapes: rows, columns and k off the 64/64/32 tiles, short inputs (a cached step's 32
    // rows and fewer), a chunked weight whose columns land at an offset, every writable format,
    // every epilogue into a strided output, and split-K slices into NaN-filled scratch.
    use unmask::gpu::kernels::{Kernel, MatmulIo, MatmulSplit};
    let g = pollster::block_on(Gpu::new()).unwrap();
    if !g.report.cooperative_matrix {
        assert!(!g.coop_matmul(), "off without the hardware");
        let e = g.set_coop_matmul(true).unwrap_err().to_string();
        assert!(e.contains("cooperative matrices"), "{e}");
        eprintln!("{}: no cooperative matrices of 16×16×16 f16; the kernel's numbers are checked on GPUs that have them", g.report.name);
        return;
    }
    assert!(g.coop_matmul(), "on by default where the adapter has them");
    let epilogues = [Epilogue::Store, Epilogue::Add, Epilogue::Gated(Activation::Silu)];
    let cases: [(usize, usize, usize); 8] =
        [(33, 40, 5), (97, 1000, 130), (64, 64, 64), (130, 4100, 70), (200, 288, 300), (70, 768, 33), (5, 600, 70), (32, 4096, 64)];
    for (ci, (m, k, n)) in cases.into_iter().enumerate() {
        // The formats a test can write (K-quants are only read: tests/kquants.rs checks their
        // reader, which this kernel shares, from llama.cpp's files).
        for (di, dtype) in [DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0].into_iter().enumerate() {
            if matches!(dtype, DType::Q8_0 | DType::Q4_0) && !k.is_multiple_of(32) {
                continue;
            }
            let mut rng = Rng::new((ci * 10 + di) as u64 + 700);
            let x = rng.vec(m * k, 2.0);
            let w = HostTensor::encode(dtype, n, k, &rng.vec(n * k, 1.0)).unwrap();
            let prod = ops::matmul_f16_inputs(&x, &w, m);
            let gw = GpuWeight::upload(&g, "w", &w, (n.div_ceil(2) * w.row_bytes()) as u64).unwrap();
            let whole = GpuWeight::upload(&g, "w", &w, u64::MAX).unwrap();
            let xb = g.upload_f32("x", &x).unwrap();
            let (stride, off) = (n + 3, 5);
            for e in epilogues {
                let y0 = rng.vec(off + m * stride, 3.0);
                let want = after_epilogue(&y0, &prod, (m, n), off, stride, e);
                let yb = g.upload_f32("y", &y0).unwrap();
                let ls = gw.matmul(&g, KernelVariant::Tiled, &xb, 0, m, &yb, off, stride, e).unwrap();
                // (Short tiles, 32×128, for at most 32 rows.)
                let short = m <= 32;
                assert!(ls.iter().all(|l| l.kernel == Kernel::MatmulCoop { dtype, x: KvType::F32, short }), "cooperative matrices ran");
                let what = format!("coop matmul {} {m}×{k}×{n}, {e:?}", dtype.name());
                assert_close(&what, &run(&g, &ls, &yb, want.len()), &want, 2e-4);
                // Split-K in slices of 32-deep steps (the weight in one chunk), merged with e.
                if k >= 96 {
                    let k_slice = k.div_ceil(3).next_multiple_of(32);
                    let split = MatmulSplit { splits: k.div_ceil(k_slice), k_slice };
                    let scratch = g.upload_f32("scratch", &vec![f32::NAN; (split.bytes(m, n) / 4) as usize]).unwrap();
                    let yb = g.upload_f32("y", &y0).unwrap();
                    let io = MatmulIo {
                        x: &xb,
                        x_offset: 0,
                        y: &yb,
                        y_offset: off,
                        y_stride: stride,
                        epilogue: e,
                        norm: None,
                        rope: None,
                        x_f16: false,
                        y_f16: false,
                    };
                    let ls = g.matmul_split(dtype, &whole.chunks[0].0, m, n, k, io, &scratch, split, KvType::F32).unwrap();
                    assert_eq!(ls[0].kernel, Kernel::MatmulCoop { dtype, x: KvType::F32, short }, "the slices ran on cooperative matrices");
                    assert_close(&format!("{what}, {} slices of {k_slice}", split.splits), &run(&g, &ls, &yb, want.len()), &want, 2e-4);
                }
            }
        }
    }
}

#[test]
fn coop_matmul_staging_edges_epilogues_and_split_k_with_emulated_matrix_ops() {
    // What matmul_coop.wgsl does around the tensor cores (staging x and the dequantized weights
    // as f16, edges, the four subgroups' quarters, the staged epilogue, split-K slices) runs on
    // this adapter with the matrix operations emulated (`common::coop_gpu`, through the
    // launchers `Gpu::matmul` and `Gpu::matmul_split`), against the twin ops::matmul_f16_inputs;
    // the hardware's own operations are the test above's. Inputs of at most 32 rows take the
    // short 32×128 tiles (columns over two tiles and off their edge too), and 64×64 ones with
    // `set_short_coop(false)`; longer ones 64×64, or 64×128 with `set_coop_tile(128)`.
    use unmask::gpu::kernels::{Kernel, MatmulIo, MatmulSplit};
    let g = common::coop_gpu();
    let cases: [(usize, usize, usize, DType); 11] = [
        (33, 40, 5, DType::F32),
        (70, 96, 33, DType::Q8_0),
        (5, 64, 70, DType::Q4_0),
        (64, 64, 64, DType::F16),
        (3, 288, 9, DType::BF16),
        (130, 256, 80, DType::Q8_0),
        (20, 96, 300, DType::Q4_0),
        (32, 64, 130, DType::F16),
        (32, 64, 130, DType::F16),
        // 64×128 tiles (`set_coop_tile(128)`): rows and columns over and off them.
        (70, 96, 300, DType::Q4_0),
        (33, 64, 129, DType::F32),
    ];
    for (ci, (m, k, n, dtype)) in cases.into_iter().enumerate() {
        // The ninth case again with 64×64 tiles; the last two with 64×128 ones.
        g.set_short_coop(ci != 8);
        g.set_coop_tile(if ci >= 9 { 128 } else { 64 }).unwrap();
        let short = m <= 32 && g.short_coop();
        let coop = |ls: &[Launch]| ls.iter().any(|l| matches!(l.kernel, Kernel::MatmulCoop { short: s, .. } if s == short));
        let mut rng = Rng::new(ci as u64 + 900);
        let x = rng.vec(m * k, 2.0);
        let w = HostTensor::encode(dtype, n, k, &rng.vec(n * k, 1.0)).unwrap();
        let prod = ops::matmul_f16_inputs(&x, &w, m);
        let (wb, xb) = (g.upload("w", &w.data).unwrap(), g.upload_f32("x", &x).unwrap());
        let (stride, off) = (n + 3, 5);
        for e in [Epilogue::Store, Epilogue::Add, Epilogue::Gated(Activation::Silu)] {
            let y0 = rng.vec(off + m * stride, 3.0);
            let want = after_epilogue(&y0, &prod, (m, n), off, stride, e);
            let yb = g.upload_f32("y", &y0).unwrap();
            let io = MatmulIo { x: &xb, x_offset: 0, y: &yb, y_offset: off, y_stride: stride, epilogue: e, norm: None, rope: None, x_f16: false, y_f16: false };
            let l = g.matmul(KernelVariant::Tiled, dtype, &wb, m, n, k, io).unwrap();
            assert!(coop(&l), "{dtype:?}: the launch runs on cooperative matrices, short tiles {short}");
            assert_close(&format!("emulated coop matmul {} {m}×{k}×{n}, {e:?}", dtype.name()), &run(&g, &l, &yb, want.len()), &want, 2e-4);
        }
        // Split-K: slices of 32 (the cooperative kernel's step) into NaN-filled scratch, merged:
        // together they are the product.
        let split = MatmulSplit { splits: k.div_ceil(32), k_slice: 32 };
        let scratch = g.upload_f32("scratch", &vec![f32::NAN; split.bytes(m, n) as usize / 4]).unwrap();
        let yb = g.storage("y", (m * n * 4) as u64).unwrap();
        let io =
            MatmulIo { x: &xb, x_offset: 0, y: &yb, y_offset: 0, y_stride: n, epilogue: Epilogue::Store, norm: None, rope: None, x_f16: false, y_f16: false };
        let ls = g.matmul_split(dtype, &wb, m, n, k, io, &scratch, split, KvType::F32).unwrap();
        assert!(coop(&ls), "{dtype:?}: the split launch runs on cooperative matrices");
        let got = run(&g, &ls, &yb, m * n);
        assert_close(&format!("emulated coop split-K {} {m}×{k}×{n}, {} slices", dtype.name(), split.splits), &got, &prod, 2e-4);
    }
}

#[test]
fn gpus_get_the_gpu_kernels_natively_and_in_browsers() {
    // Flash attention, split-K matmuls and f16 K/V are GPUs' defaults: natively an adapter that
    // says it is a discrete or integrated GPU; in a browser (which names no adapter kind) any but
    // its software fallback (wgpu: a CPU; Chromium's SwiftShader), and any with shader-f16,
    // which real GPUs offer and SwiftShader does not.
    use unmask::gpu::context::is_gpu;
    use wgpu::DeviceType as T;
    assert!(is_gpu(false, T::DiscreteGpu, false) && is_gpu(false, T::IntegratedGpu, true));
    assert!(!is_gpu(false, T::Cpu, true) && !is_gpu(false, T::VirtualGpu, true) && !is_gpu(false, T::Other, true));
    assert!(is_gpu(true, T::Other, true) && is_gpu(true, T::Cpu, true));
    assert!(is_gpu(true, T::Other, false) && is_gpu(true, T::DiscreteGpu, false));
    assert!(!is_gpu(true, T::Cpu, false));
    // This adapter gets the defaults its kind says (lavapipe: the portable ones, f32 K/V).
    let g = common::own_gpu();
    let info = g.adapter.get_info();
    let gpu = is_gpu(false, info.device_type, g.report.shader_f16);
    assert_eq!((g.flash_attention(), g.split_matmul()), (gpu, gpu), "{}", info.name);
    assert_eq!(g.default_kv() == KvType::F16, gpu && g.report.shader_f16, "{}", info.name);
}

/// The platform probes (`unmask bench --kernels probe`) compute what their CPU twins do, so
/// that a probe's speed is of work really done: streaming reads (odd word values, several
/// rounds, and none: a dispatch's own cost), workgroup-memory reads (rounds past the tile's
/// wrap) and the f32 multiply-add chains.
#[test]
fn probes_match_their_cpu_twins() {
    use unmask::gpu::probe::{fma_twin, read_twin, shared_twin, PROBE_WG};
    let g = gpu();
    let mut rng = Rng::new(31);
    let (groups, rounds) = (3, 5);
    let words: Vec<[u32; 4]> = (0..groups * PROBE_WG * rounds).map(|_| [0; 4].map(|_: u32| rng.next_u64() as u32)).collect();
    let src = g.upload("probe words", bytemuck::cast_slice(&words)).unwrap();
    let out = g.storage("probe out", (groups * PROBE_WG * 4) as u64).unwrap();
    for r in [rounds, 0] {
        let got: Vec<u32> = bytemuck::cast_slice(&run(&g, &[g.probe_read(&src, &out, groups, r).unwrap()], &out, groups * PROBE_WG)).to_vec();
        assert_eq!(got, read_twin(&words, groups, r), "read probe, {r} rounds");
    }
    for r in [1, 300, 1100] {
        let got: Vec<u32> = bytemuck::cast_slice(&run(&g, &[g.probe_shared(&out, groups, r).unwrap()], &out, groups * PROBE_WG)).to_vec();
        assert_eq!(got, shared_twin(groups, r), "shared probe, {r} rounds");
    }
    for (r, b, c) in [(3, 0.5, 1.0), (70, 0.5, 1.0), (2, 0.5, -0.25)] {
        let got = run(&g, &[g.probe_fma(&out, groups, r, b, c).unwrap()], &out, groups * PROBE_WG);
        assert_eq!(got, fma_twin(groups * PROBE_WG, r, b, c), "fma probe, {r} rounds of a·{b} + {c}");
    }
    assert!(g.probe_read(&src, &out, groups, rounds + 1).is_err(), "a read past the words is refused");
}

/// The cooperative-matrix probe against its twin: on the adapter's own cooperative matrices
/// where it has them (`bench/gpu.sh` runs the tests named coop first on the GPU machine),
/// emulated here.
#[test]
fn probe_coop_matches_its_cpu_twin() {
    use unmask::gpu::probe::coop_twin;
    let g = common::coop_gpu();
    let lanes = g.coop_lanes() as usize;
    let groups = 3;
    let out = g.storage("probe out", (groups * 4 * lanes * 4) as u64).unwrap();
    for (r, a, b) in [(1, 1.0, 1.0), (7, 0.5, 3.0)] {
        let got = run(&g, &[g.probe_coop(&out, groups, r, a, b).unwrap()], &out, groups * 4 * lanes);
        assert_eq!(got, coop_twin(groups, lanes, r, a, b), "coop probe, {r} rounds");
    }
    if gpu().coop_lanes() == 0 {
        assert!(gpu().probe_coop(&out, groups, 1, 1.0, 1.0).is_err(), "no probe without cooperative matrices");
    }
}

#[test]
fn skipped_matmul_phases_leave_out_what_they_say() {
    // `unmask bench --kernels phases` times the tiled matmuls with parts of their k loop left
    // out (`Gpu::set_skip_phases`): here each core (f32 4×4 and 8×8, cooperative matrices,
    // emulated on this adapter) shows that it left out that part and no more. Integer inputs
    // (exact in f16 and f32), k three slices deep, short and long tiles: without the
    // multiply-adds (or the workgroup stores) the product is 0; without the loads each slice
    // multiplies the first slice's values again, 3 × the first slice's product; back at 0 the
    // product.
    for (name, g, tk) in [("f32 4×4", common::own_gpu(), 16), ("f32 8×8", common::wide_gpu(), 16), ("cooperative", common::coop_gpu(), 32)] {
        assert!(g.set_skip_phases(8).is_err(), "bits past 7");
        for (m, n) in [(5, 7), (40, 66)] {
            let k = 3 * tk;
            let mut rng = Rng::new(77 + m as u64);
            let x: Vec<f32> = rng.vec(m * k, 2.0).iter().map(|v| v.round()).collect();
            let wv: Vec<f32> = rng.vec(n * k, 2.0).iter().map(|v| v.round()).collect();
            let dot = |i: usize, j: usize, depth: usize| (0..depth).map(|c| x[i * k + c] * wv[j * k + c]).sum::<f32>();
            let whole: Vec<f32> = (0..m * n).map(|e| dot(e / n, e % n, k)).collect();
            let first3: Vec<f32> = (0..m * n).map(|e| 3.0 * dot(e / n, e % n, tk)).collect();
            assert_ne!(whole, first3, "the slices differ (else this checks nothing)");
            let gw = GpuWeight::upload(&g, "w", &HostTensor::encode(DType::F32, n, k, &wv).unwrap(), u64::MAX).unwrap();
            let xb = g.upload_f32("x", &x).unwrap();
            let yb = g.storage("y", (m * n * 4) as u64).unwrap();
            for (bits, want) in [(2, vec![0.0; m * n]), (4, vec![0.0; m * n]), (1, first3), (0, whole)] {
                g.set_skip_phases(bits).unwrap();
                assert_eq!(g.skip_phases(), bits);
                let ls = gw.matmul(&g, KernelVariant::Tiled, &xb, 0, m, &yb, 0, n, Epilogue::Store).unwrap();
                let on_coop = ls.iter().any(|l| matches!(l.kernel, unmask::gpu::kernels::Kernel::MatmulCoop { .. }));
                assert_eq!(on_coop, tk == 32, "{name}: the core the launch runs");
                assert_eq!(run(&g, &ls, &yb, m * n), want, "{name} {m}×{k}×{n}, skip bits {bits}");
            }
        }
    }
}

/// `v` as the cooperative matmul stages it and as f16 activations hold it: clamped to ±65504,
/// rounded to the nearest f16.
fn as_f16(v: &[f32]) -> Vec<f32> {
    v.iter().map(|&a| half::f16::from_f32(a.clamp(-65504.0, 65504.0)).to_f32()).collect()
}

/// A buffer of `v` as f16.
fn upload_f16(g: &Gpu, v: &[f32]) -> wgpu::Buffer {
    let h: Vec<half::f16> = v.iter().map(|&a| half::f16::from_f32(a)).collect();
    let mut bytes = bytemuck::cast_slice::<half::f16, u8>(&h).to_vec();
    bytes.resize(Gpu::padded(bytes.len() as u64) as usize, 0);
    g.upload("f16", &bytes).unwrap()
}

/// The same values bit for bit (NaN never expected).
fn assert_same_bits(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let bad = got.iter().zip(want).position(|(a, b)| a.to_bits() != b.to_bits());
    assert!(bad.is_none(), "{what}: element {} is {} where {} was expected", bad.unwrap(), got[bad.unwrap()], want[bad.unwrap()]);
}

#[test]
fn f16_activations_hold_what_the_cooperative_staging_makes_of_f32_ones() {
    // Sessions on cooperative matrices keep the matmuls' inputs in f16 (`Gpu::half_inputs`):
    // the passes that write them round once (clamp to ±65504, nearest f16), as every
    // cooperative workgroup did when it staged f32 inputs, so the numbers cannot change. Each
    // writer's f16 output is its f32 output so rounded, bit for bit: RMSNorm (values past
    // 65504 from a large norm weight), attention in every layout, split-K attention's merge.
    let g = gpu();
    let (rows, dim) = (5, 77);
    let mut rng = Rng::new(404);
    let x = rng.vec(rows * dim, 3.0);
    let mut w = rng.vec(dim, 1.0);
    w[3] = 3e5;
    w[40] = -2e5;
    let (wb, xb) = (g.upload_f32("w", &w).unwrap(), g.upload_f32("x", &x).unwrap());
    let wide = g.storage("o", (rows * dim * 4) as u64).unwrap();
    let narrow = g.storage("o16", Gpu::padded((rows * dim * 2) as u64)).unwrap();
    let full = run(&g, &[g.rmsnorm(&wb, &xb, &wide, rows, dim, 1e-5).unwrap()], &wide, rows * dim);
    assert!(full.iter().any(|v| v.abs() > 65504.0), "some normed values lie past f16's range");
    let l = g.rmsnorm_into(&wb, (&xb, 0), &narrow, rows, dim, 1e-5, false, 1.0, KvType::F16).unwrap();
    assert_eq!(l.kernel, unmask::gpu::kernels::Kernel::RmsNorm { out: KvType::F16, wg: g.row_workgroup() });
    let ds = g.bind(&[l], None).unwrap();
    let mut enc = g.device.create_command_encoder(&Default::default());
    g.record(&mut enc, &ds);
    g.queue.submit(Some(enc.finish()));
    assert_same_bits("rmsnorm into f16", &read_f16(&g, &narrow, rows * dim), &as_f16(&full));

    for layout in ATTENTION {
        let (g, variant, name) = attention_gpu(layout);
        for (lq, lk, heads, kv, hd, mask) in [(20, 37, 6, 2, 16, AttnMask::FULL), (3, 80, 4, 2, 32, AttnMask { q0: 33, block: 32, ..AttnMask::FULL })] {
            let mut rng = Rng::new((lq * lk) as u64);
            let (q, k, v) = (rng.vec(lq * heads * hd, 1.0), rng.vec(lk * kv * hd, 1.0), rng.vec(lk * kv * hd, 1.0));
            let (qb, kb, vb) = (g.upload_f32("q", &q).unwrap(), g.upload_f32("k", &k).unwrap(), g.upload_f32("v", &v).unwrap());
            let shape = AttnShape { lq, lk, n_heads: heads, n_kv: kv, head_dim: hd };
            let n = lq * heads * hd;
            let scratch = g.storage("scratch", shape.split_bytes(3).max(4)).unwrap();
            let wide = g.storage("o", (n * 4) as u64).unwrap();
            let narrow = g.storage("o16", Gpu::padded((n * 2) as u64)).unwrap();
            // As sessions launch it (split-K for few rows in the flash layouts), then split in 3.
            let mut ways = vec![(
                "as launched",
                g.attention(variant, &qb, &kb, &vb, &wide, shape, mask, KvType::F32, KvType::F32, Some(&scratch)).unwrap(),
                g.attention(variant, &qb, &kb, &vb, &narrow, shape, mask, KvType::F32, KvType::F16, Some(&scratch)).unwrap(),
            )];
            if g.attention_layout(variant, &shape).is_flash() {
                let split = |o, t| g.attention_split(&qb, &kb, &vb, o, shape, mask, [KvType::F32, t], &scratch, 3).unwrap();
                ways.push(("split in 3", split(&wide, KvType::F32), split(&narrow, KvType::F16)));
            }
            for (how, f32_out, f16_out) in ways {
                let what = format!("attention ({name}), {how}, lq{lq} lk{lk} h{heads}/{kv} d{hd}");
                let want = as_f16(&run(&g, &f32_out, &wide, n));
                let ds = g.bind(&f16_out, None).unwrap();
                let mut enc = g.device.create_command_encoder(&Default::default());
                g.record(&mut enc, &ds);
                g.queue.submit(Some(enc.finish()));
                assert_same_bits(&what, &read_f16(&g, &narrow, n), &want);
            }
        }
    }
}

#[test]
fn matmuls_read_f16_activations_as_the_values_they_hold() {
    // Every core that a session with f16 inputs may run (cooperative matrices, emulated here;
    // the f32 tiled cores where a launch's shape does not suit them; split-K or not) gives for
    // f16 x exactly what it gives for an f32 x holding the same values; and the gate/up matmul
    // stores act(gate) · up in f16 as its f32 output rounded (by its store unsplit, by the
    // merge split), bit for bit.
    use unmask::gpu::kernels::{Kernel, MatmulIo};
    let cores: [(&str, Arc<Gpu>); 3] = [("coop", common::coop_gpu()), ("f32 4×4", common::own_gpu()), ("f32 8×8", common::wide_gpu())];
    for (core, g) in cores {
        let mut split_seen = false;
        for (ci, (m, k, n)) in [(37, 96, 70), (5, 544, 33), (70, 160, 129)].into_iter().enumerate() {
            let mut rng = Rng::new(ci as u64 + 900);
            let x = as_f16(&rng.vec(m * k, 2.0));
            let (x32, x16) = (g.upload_f32("x", &x).unwrap(), upload_f16(&g, &x));
            let ws: Vec<HostTensor> = (0..2).map(|_| HostTensor::encode(DType::Q4_0, n, k, &rng.vec(n * k, 1.0)).unwrap()).collect();
            let gws: Vec<GpuWeight> = ws.iter().map(|w| GpuWeight::upload(&g, "w", w, u64::MAX).unwrap()).collect();
            let scratch = g.storage("scratch", (16 * m * (2 * n + 1) * 4) as u64).unwrap();
            for split in [false, true] {
                g.set_split_matmul(split);
                let what = format!("{core}, {m}×{k}×{n}, split {split}");
                let y = g.storage("y", (m * n * 4) as u64).unwrap();
                // x (f16?), y (f16?), the epilogue; the gate/up matmul or one matmul.
                let launch = |(x, x_f16): (&wgpu::Buffer, bool), (y, y_f16): (&wgpu::Buffer, bool), e: Epilogue, glu: bool| {
                    let io = MatmulIo { x, x_offset: 0, y, y_offset: 0, y_stride: n, epilogue: e, norm: None, rope: None, x_f16, y_f16 };
                    match glu {
                        false => g.matmul_auto(KernelVariant::Tiled, DType::Q4_0, &gws[0].chunks[0].0, m, n, k, io, Some(&scratch)).unwrap(),
                        true => g.matmul_glu([(&gws[0].chunks[0].0, DType::Q4_0), (&gws[1].chunks[0].0, DType::Q4_0)], m, n, k, io, Some(&scratch)).unwrap(),
                    }
                };
                let a = launch((&x32, false), (&y, false), Epilogue::Store, false);
                let from_f32 = run(&g, &a, &y, m * n);
                let b = launch((&x16, true), (&y, false), Epilogue::Store, false);
                let reads_f16 = |k: &Kernel| matches!(k, Kernel::Matmul { x: KvType::F16, .. } | Kernel::MatmulCoop { x: KvType::F16, .. });
                assert!(reads_f16(&b[0].kernel), "{what}: {:?}", b[0].kernel);
                split_seen |= b.len() == 2;
                assert_same_bits(&format!("{what}: x in f16"), &run(&g, &b, &y, m * n), &from_f32);
                // Gate · up (SwiGLU) in f32, then into f16.
                let gated = Epilogue::Gated(Activation::Silu);
                let c = launch((&x16, true), (&y, false), gated, true);
                let want = as_f16(&run(&g, &c, &y, m * n));
                let y16 = g.storage("y16", Gpu::padded((m * n * 2) as u64)).unwrap();
                let d = launch((&x16, true), (&y16, true), gated, true);
                let out = match &d[..] {
                    [one] => matches!(one.kernel, Kernel::MatmulGlu { x: KvType::F16, out: KvType::F16, .. }),
                    [slices, merge] => {
                        matches!(slices.kernel, Kernel::MatmulGlu { x: KvType::F16, out: KvType::F32, .. })
                            && merge.kernel == Kernel::MatmulMerge { out: KvType::F16 }
                    }
                    _ => false,
                };
                assert!(out, "{what}: gate/up into f16 by the store unsplit, by the merge split: {d:?}", d = d.iter().map(|l| l.kernel).collect::<Vec<_>>());
                let ds = g.bind(&d, None).unwrap();
                let mut enc = g.device.create_command_encoder(&Default::default());
                g.record(&mut enc, &ds);
                g.queue.submit(Some(enc.finish()));
                assert_same_bits(&format!("{what}: gate · up into f16"), &read_f16(&g, &y16, m * n), &want);
                // Only gate · up stores f16.
                assert!(g
                    .matmul_auto(
                        KernelVariant::Tiled,
                        DType::Q4_0,
                        &gws[0].chunks[0].0,
                        m,
                        n,
                        k,
                        MatmulIo {
                            x: &x16,
                            x_offset: 0,
                            y: &y16,
                            y_offset: 0,
                            y_stride: n,
                            epilogue: Epilogue::Store,
                            norm: None,
                            rope: None,
                            x_f16: true,
                            y_f16: true
                        },
                        None
                    )
                    .is_err());
            }
        }
        assert!(split_seen, "{core}: some case splits across k");
    }
}
