// y[m, n0 + n] (+)= Σ_k x[m, k] · W[n, k]  — the same product as matmul.wgsl, for adapters that
// run on a CPU (lavapipe): one invocation owns one weight row (one output column) and a block of
// R = 16 activation rows; no workgroup memory, no barriers.
// On a CPU the invocations of a subgroup are the SIMD lanes of one core, and every memory read
// is a per-lane gather. So each lane reads ONE value of each x row per 8 columns of K, and
// `subgroupBroadcast` hands all 8 to every lane (an extract and a splat, no memory); each lane
// dequantizes 8 weights of its own row once and uses them for all R rows. Needs subgroups of
// exactly 8 invocations (the host checks the adapter's subgroup size before choosing this).
// Parameters, bindings and the epilogue's store: matmul_common.wgsl, prepended by the host
// (k_slice is always 0 here). The 16 rows are four vec4s and the partial last slice of k has a
// loop of its own: cpu_lanes_rows.wgsl says why.

const R: u32 = 16u; // activation rows per invocation: the host's CPU_LANES_ROWS (kernel_specs.rs)

// `row_dot`, `rows4`: cpu_lanes_rows.wgsl, prepended by the host.

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(subgroup_invocation_id) lane: u32) {
    // Every lane runs the whole loop (broadcasts need all lanes): lanes past the last weight row
    // or rows past the last x row compute on clamped indices and store nothing.
    let col = wg.x * 64u + lid.x;
    let n = min(col, p.n - 1u);
    let r0 = wg.y * R;
    // Where x rows r0 + 4q + j start: xb[q][j] (rows past m clamped to the last).
    var xb: array<vec4<u32>, 4>;
    for (var q = 0u; q < 4u; q = q + 1u) {
        for (var j = 0u; j < 4u; j = j + 1u) {
            xb[q][j] = p.x_offset + min(r0 + 4u * q + j, p.m - 1u) * p.k;
        }
    }
    let xb0 = xb[0];
    let xb1 = xb[1];
    let xb2 = xb[2];
    let xb3 = xb[3];
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    let k8 = p.k / 8u * 8u;
    for (var k0 = 0u; k0 < k8; k0 = k0 + 8u) {
        let w8 = load_w8(n, k0, p.k);
        let kl = k0 + lane;
        acc0 = acc0 + rows4(xb0, kl, w8);
        acc1 = acc1 + rows4(xb1, kl, w8);
        acc2 = acc2 + rows4(xb2, kl, w8);
        acc3 = acc3 + rows4(xb3, kl, w8);
    }
    for (var k0 = k8; k0 < p.k; k0 = k0 + 8u) {
        let w8 = load_w8_edge(n, k0, p.k); // zeros past k: the clamped x reads below add nothing
        let kl = min(k0 + lane, p.k - 1u);
        acc0 = acc0 + rows4(xb0, kl, w8);
        acc1 = acc1 + rows4(xb1, kl, w8);
        acc2 = acc2 + rows4(xb2, kl, w8);
        acc3 = acc3 + rows4(xb3, kl, w8);
    }
    if (col < p.n) {
        let acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
        for (var i = 0u; i < R; i = i + 1u) {
            let r = r0 + i;
            if (r < p.m) {
                put(p.y_offset + r * p.y_stride + col, acc[i / 4u][i % 4u]);
            }
        }
    }
}
