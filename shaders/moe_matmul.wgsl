// The grouped expert matmul: for every expert e of this weight chunk and every (row, slot) pair
// on e's list (moe_route.wgsl), y[pair, c] = Σ_k x[src, k] · W_e[c, k], where W_e is rows
// e·N .. (e+1)·N of the stacked expert weights and src is the pair's row of x (`by_pair` 0:
// the activations of the position, row = pair / k; 1: the pair's own row, for the down
// projection after gate/up). Workgroups of experts with fewer pairs than their tile exit at
// once: only experts that some row picked do any work. `load_w*` come from the weights_*.wgsl
// file prepended to this one; parameters, bindings and the epilogue from moe_common.wgsl. One
// invocation: one output column, R = 8 pairs. For CPU adapters; GPUs run moe_matmul_tiled.wgsl.

const R: u32 = 8u;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let col = wg.x * 64u + lid.x;
    let local_e = wg.y;
    let e = p.e0 + local_e;
    let counts = 2u * p.rows * p.k;
    let count = route[counts + e];
    let i0 = wg.z * R;
    if (i0 >= count || col >= p.n) {
        return;
    }
    let list = counts + p.experts + e * p.rows;
    var src: array<u32, 8>;
    var dst: array<u32, 8>;
    let m = min(R, count - i0);
    for (var i = 0u; i < m; i = i + 1u) {
        let pair = route[list + i0 + i];
        dst[i] = pair;
        src[i] = src_of(pair);
    }
    let wrow = local_e * p.n + col;
    var acc: array<f32, 8>;
    // Whole slices of 8 first (no bounds checks), then the last partial one.
    let whole = p.kdim / 8u * 8u;
    for (var k0 = 0u; k0 < whole; k0 = k0 + 8u) {
        let w8 = load_w8(wrow, k0, p.kdim);
        for (var i = 0u; i < m; i = i + 1u) {
            let s = src[i] + k0;
            let a = vec4<f32>(x[s], x[s + 1u], x[s + 2u], x[s + 3u]);
            let b = vec4<f32>(x[s + 4u], x[s + 5u], x[s + 6u], x[s + 7u]);
            acc[i] = acc[i] + dot(w8[0], a) + dot(w8[1], b);
        }
    }
    for (var k = whole; k < p.kdim; k = k + 1u) {
        let wv = load_w(wrow, k, p.kdim);
        for (var i = 0u; i < m; i = i + 1u) {
            acc[i] = acc[i] + wv * x[src[i] + k];
        }
    }
    for (var i = 0u; i < m; i = i + 1u) {
        put(dst[i] * p.n + col, acc[i]);
    }
}
