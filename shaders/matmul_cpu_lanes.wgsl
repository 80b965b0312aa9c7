// y[m, n0 + n] (+)= Σ_k x[m, k] · W[n, k]  — the same product as matmul.wgsl, for adapters that
// run on a CPU (lavapipe): one invocation owns one weight row (one output column) and a block of
// R = 16 activation rows; no workgroup memory, no barriers.
// On a CPU the invocations of a subgroup are the SIMD lanes of one core, and every memory read
// is a per-lane gather. So each lane reads ONE value of each x row per 8 columns of K, and
// `subgroupBroadcast` hands all 8 to every lane (an extract and a splat, no memory); each lane
// dequantizes 8 weights of its own row once and uses them for all R rows. Needs subgroups of
// exactly 8 invocations (the host checks the adapter's subgroup size before choosing this).
// Parameters, bindings and the epilogue's store: matmul_common.wgsl, prepended by the host
// (k_slice is always 0 here).

const R: u32 = 16u; // activation rows per invocation: the host's CPU_LANES_ROWS (kernel_specs.rs)

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(subgroup_invocation_id) lane: u32) {
    // Every lane runs the whole loop (broadcasts need all lanes): lanes past the last weight row
    // or rows past the last x row compute on clamped indices and store nothing.
    let col = wg.x * 64u + lid.x;
    let n = min(col, p.n - 1u);
    let r0 = wg.y * R;
    var xb: array<u32, R>;
    for (var i = 0u; i < R; i = i + 1u) {
        xb[i] = p.x_offset + min(r0 + i, p.m - 1u) * p.k;
    }
    var acc: array<f32, R>;
    for (var k0 = 0u; k0 < p.k; k0 = k0 + 8u) {
        let w8 = load_w8_edge(n, k0, p.k); // zeros past k: the clamped x reads below add nothing
        let kl = min(k0 + lane, p.k - 1u);
        for (var i = 0u; i < R; i = i + 1u) {
            let xv = f32(x[xb[i] + kl]);
            let a = vec4<f32>(subgroupBroadcast(xv, 0u), subgroupBroadcast(xv, 1u), subgroupBroadcast(xv, 2u), subgroupBroadcast(xv, 3u));
            let b = vec4<f32>(subgroupBroadcast(xv, 4u), subgroupBroadcast(xv, 5u), subgroupBroadcast(xv, 6u), subgroupBroadcast(xv, 7u));
            acc[i] = acc[i] + dot(w8[0], a) + dot(w8[1], b);
        }
    }
    if (col < p.n) {
        for (var i = 0u; i < R; i = i + 1u) {
            let r = r0 + i;
            if (r < p.m) {
                put(p.y_offset + r * p.y_stride + col, acc[i]);
            }
        }
    }
}
