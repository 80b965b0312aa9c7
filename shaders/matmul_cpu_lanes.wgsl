// y[m, n0 + n] (+)= Σ_k x[m, k] · W[n, k]  — the same product as matmul.wgsl, for adapters that
// run on a CPU (lavapipe): one invocation owns one weight row (one output column) and a block of
// R = 16 activation rows; no workgroup memory, no barriers.
// On a CPU the invocations of a subgroup are the SIMD lanes of one core, and every memory read
// is a per-lane gather. So the 8 lanes share the reading of each 8 columns of K: each reads one
// value of each x row (or, where rows start at multiples of 4, a vec4 of one row in two), and
// `subgroupBroadcast` hands all of them to every lane (an extract and a splat, no memory); each
// lane dequantizes 8 weights of its own row once and uses them for all R rows. Needs subgroups
// of exactly 8 invocations (the host checks the adapter's subgroup size before choosing this).
// Parameters, bindings and the epilogue's store: matmul_common.wgsl, prepended by the host
// (k_slice is always 0 here). The 16 rows are four vec4s and the partial last slice of k has a
// loop of its own: cpu_lanes_rows.wgsl says why.

const R: u32 = 16u; // activation rows per invocation: the host's CPU_LANES_ROWS (kernel_specs.rs)

// x again, as vec4s (binding 4, `x4`: the host binds x's buffer twice and declares it, a storage
// array or, where `Kernel::Matmul::xw`, a uniform one of 4096 vec4s: the launch's window of x,
// which binding 2 then holds too; matmul_window.rs), and whether every x row starts at a
// multiple of 4 (k and x_offset are; the host's `Kernel::Matmul::x4`): then the main loop reads
// x a vec4 a lane (`add_slice4`), else a value (`add_slice`; both cpu_lanes_rows.wgsl, prepended
// by the host after this).
override X4: bool = false;
// The weights again, as vec4s (binding 5), and their format where every row starts 16 bytes
// aligned (the host's `Kernel::Matmul::w4`; `slice_w8` in cpu_lanes_rows.wgsl has the codes).
@group(0) @binding(5) var<storage, read> w4: array<vec4<u32>>;
override WIDE: u32 = 0u;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(subgroup_invocation_id) lane: u32) {
    // Every lane runs the whole loop (broadcasts need all lanes): lanes past the last weight row
    // or rows past the last x row compute on clamped indices and store nothing.
    let col = wg.x * 64u + lid.x;
    let n = min(col, p.n - 1u);
    let r0 = wg.y * R;
    // Where x rows r0 + 4q + j start: off[q][j] (rows past m clamped to the last).
    var off: array<vec4<u32>, 4>;
    for (var q = 0u; q < 4u; q = q + 1u) {
        for (var j = 0u; j < 4u; j = j + 1u) {
            off[q][j] = p.x_offset + min(r0 + 4u * q + j, p.m - 1u) * p.k;
        }
    }
    let xb = Rows16(off[0], off[1], off[2], off[3]);
    var acc = mat4x4<f32>();
    let k8 = p.k / 8u * 8u;
    if (X4) {
        let quads = lane_quads(xb, lane);
        for (var k0 = 0u; k0 < k8; k0 = k0 + 8u) {
            acc = add_slice4(acc, quads, k0, slice_w8(n, k0, p.k));
        }
    } else {
        for (var k0 = 0u; k0 < k8; k0 = k0 + 8u) {
            acc = add_slice(acc, xb, k0 + lane, slice_w8(n, k0, p.k));
        }
    }
    // Zeros past k in the weights: the clamped x reads add nothing.
    for (var k0 = k8; k0 < p.k; k0 = k0 + 8u) {
        acc = add_slice(acc, xb, min(k0 + lane, p.k - 1u), load_w8_edge(n, k0, p.k));
    }
    if (col < p.n) {
        let sums = sums16(acc);
        for (var i = 0u; i < R; i = i + 1u) {
            let r = r0 + i;
            if (r < p.m) {
                put(p.y_offset + r * p.y_stride + col, sums[i / 4u][i % 4u]);
            }
        }
    }
}
