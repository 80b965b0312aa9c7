// The grouped expert matmul: for every expert e of this weight chunk and every (row, slot) pair
// on e's list (moe_route.wgsl), y[pair, c] = Σ_k x[src, k] · W_e[c, k], where W_e is rows
// e·N .. (e+1)·N of the stacked expert weights and src is the pair's row of x (`by_pair` 0:
// the activations of the position, row = pair / k; 1: the pair's own row, for the down
// projection after gate/up). A workgroup takes 64 columns of one expert and walks its whole
// list, R pairs at a time (the route's counts are on the GPU; a grid over the most pairs an
// expert could get would be mostly empty workgroups): experts no row picked do no work.
// `load_w*` come from the weights_*.wgsl file prepended to this one; parameters, bindings and
// the epilogue from moe_common.wgsl.
// For CPU adapters (GPUs run moe_matmul_tiled.wgsl), as matmul_cpu_lanes.wgsl: one invocation
// owns one output column and R = 16 pairs of the expert's list (8: 1.4–1.7× slower on lavapipe
// at 16 pairs an expert, no faster at 4); each lane reads one value of each pair's x row per 8
// values of k and `subgroupBroadcast` hands all 8 to every lane (a lane of a CPU's SIMD unit
// would otherwise gather 8 values a row); each lane dequantizes 8 weights of its own row once
// and uses them for all R pairs (four vec4s of them: cpu_lanes_rows.wgsl, prepended by the
// host, has `add_slice`, `add_slice4` and why). Needs subgroups
// of exactly 8 (the host checks).

const R: u32 = 16u; // pairs per invocation: the host's CPU_LANES_ROWS (kernel_specs.rs)

// x again, as vec4s (binding 5: the host binds x's buffer twice), and whether its rows start at
// multiples of 4 (kdim is; the host's `Kernel::MoeMatmul::x4`): then the main loop reads x a vec4
// a lane (`add_slice4`), else a value (`add_slice`).
@group(0) @binding(5) var<storage, read> x4: array<vec4<f32>>;
override X4: bool = false;
// The weights again, as vec4s (binding 6), and their format where every row starts 16 bytes
// aligned (the host's `Kernel::MoeMatmul::w4`; `slice_w8` in cpu_lanes_rows.wgsl has the codes).
@group(0) @binding(6) var<storage, read> w4: array<vec4<u32>>;
override WIDE: u32 = 0u;

var<workgroup> count_wg: u32;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(subgroup_invocation_id) lane: u32) {
    let e = p.e0 + wg.y;
    let counts = 2u * p.rows * p.k;
    if (lid.x == 0u) {
        count_wg = route[counts + e];
    }
    // The same for the whole workgroup, so the loop over the list below keeps every lane of a
    // subgroup in step (the broadcasts need all of them).
    let count = workgroupUniformLoad(&count_wg);
    // Every lane runs the whole loop: lanes past the last weight row, or pairs past the list's
    // end, compute on clamped indices and store nothing.
    let col = wg.x * 64u + lid.x;
    let wrow = wg.y * p.n + min(col, p.n - 1u);
    let list = counts + p.experts + e * p.rows;
    let k8 = p.kdim / 8u * 8u;
    for (var i0 = 0u; i0 < count; i0 = i0 + R) {
        let m = min(R, count - i0);
        // Where the x rows of pairs i0 + 4q + j start: off[q][j] (past the list's end, its last).
        var off: array<vec4<u32>, 4>;
        for (var q = 0u; q < 4u; q = q + 1u) {
            for (var j = 0u; j < 4u; j = j + 1u) {
                off[q][j] = src_of(route[list + i0 + min(4u * q + j, m - 1u)]);
            }
        }
        let xb = Rows16(off[0], off[1], off[2], off[3]);
        var acc = mat4x4<f32>();
        if (X4) {
            let quads = lane_quads(xb, lane);
            for (var k0 = 0u; k0 < k8; k0 = k0 + 8u) {
                acc = add_slice4(acc, quads, k0, slice_w8(wrow, k0, p.kdim));
            }
        } else {
            for (var k0 = 0u; k0 < k8; k0 = k0 + 8u) {
                acc = add_slice(acc, xb, k0 + lane, slice_w8(wrow, k0, p.kdim));
            }
        }
        // Zeros past k in the weights: the clamped x reads add nothing.
        for (var k0 = k8; k0 < p.kdim; k0 = k0 + 8u) {
            acc = add_slice(acc, xb, min(k0 + lane, p.kdim - 1u), load_w8_edge(wrow, k0, p.kdim));
        }
        if (col < p.n) {
            let sums = sums16(acc);
            for (var i = 0u; i < m; i = i + 1u) {
                put(route[list + i0 + i] * p.n + col, sums[i / 4u][i % 4u]);
            }
        }
    }
}
