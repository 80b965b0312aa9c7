// Split-K's ending for matmul_qkv.wgsl's slices in one launch: columns [0, n1) of the slices'
// sums are Q's (into y, f32), [n1, n2) K's (into y2) and [n2, n) V's (into y3), each part's rows
// dense at its width; each column's bias added (p.bias), Q and K turned by RoPE (rope.cols = n2)
// and a folded norm applied as matmul_merge_common.wgsl does. K and V are `out_t` (the host's alias: f32, or f16 straight into
// half-precision K/V, rounded once).

@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> y2: array<out_t>;
@group(0) @binding(4) var<storage, read_write> y3: array<out_t>;
// With p.bias: from there, each column's bias (Q's, K's, V's; matmul_qkv.wgsl's `g`; bound to
// `part` without).
@group(0) @binding(5) var<storage, read> bias: array<f32>;

fn col_bias(c: u32) -> f32 {
    if (p.bias == 0u) {
        return 0.0;
    }
    return bias[p.bias + c];
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.m * p.n) {
        return;
    }
    let r = i / p.n;
    let c = i % p.n;
    let v = merged(r, c, row_rms(r));
    if (c < p.n1) {
        y[p.y_offset + r * p.n1 + c] = v;
    } else if (c < p.n2) {
        y2[p.y2_offset + r * (p.n2 - p.n1) + c - p.n1] = out_t(v);
    } else {
        y3[p.y3_offset + r * (p.n - p.n2) + c - p.n2] = out_t(v);
    }
}
