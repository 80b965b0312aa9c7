// Split-K's ending for matmul.wgsl: y[r, c] (+)= Σ_z part[z, r, c] over the `splits` slices of
// the shared dimension, in slice order, with the matmul's epilogue (overwrite, add, or gate:
// glu.wgsl, prepended by the host). part: [splits, m, n_src], of which columns c0 .. c0 + n are
// this output's (all of them, or one of Q, K and V: matmul_qkv.wgsl). One invocation per output.
// With a folded RMSNorm (norm_k > 0) the sum is scaled by the row's 1/rms, from the slices'
// Σ x² of each row that follow the partial results ([splits, m]).
// Two endings read a second column for each output: the gate and up projections in one
// (pair 1, matmul_glu.wgsl's tiles: gate row i in column 2i, the same up row in 2i + 1;
// y = act(gate) · up), and Q or K turned by RoPE as they are stored (p.rope: each
// dimension with its pair's other one; rope_common.wgsl, prepended by the host). y holds
// `out_t` (the host's alias: f32, or f16 for K or V into half-precision K/V).

struct Params {
    m: u32,
    n: u32,
    splits: u32,
    y_offset: u32,   // element of y where output (0, 0) goes
    y_stride: u32,   // elements between output rows
    epilogue: u32,   // as matmul.wgsl's
    norm_k: u32,     // the folded norm's width (the matmul's k); 0: no norm
    eps: f32,        // the norm's epsilon
    n_src: u32,      // columns of a partial result's row
    c0: u32,         // its first column that goes to y
    pair: u32,       // 1: gate and up (the activation: epilogue − 2); 0: one column an output
    _pad0: u32,
    rope: Rope,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<out_t>;

// Row r of column col (of n_src) summed over the slices, over `rms` (the norm's; 1 without).
fn col_sum(r: u32, col: u32, rms: f32) -> f32 {
    let slice = p.m * p.n_src;
    var v = 0.0;
    for (var z = 0u; z < p.splits; z = z + 1u) {
        v = v + part[z * slice + r * p.n_src + col];
    }
    return v / rms;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.m * p.n) {
        return;
    }
    let r = i / p.n;
    let c = i % p.n;
    var rms = 1.0;
    if (p.norm_k != 0u) {
        var ss = 0.0;
        for (var z = 0u; z < p.splits; z = z + 1u) {
            ss = ss + part[p.splits * p.m * p.n_src + z * p.m + r];
        }
        rms = sqrt(ss / f32(p.norm_k) + p.eps);
    }
    let idx = p.y_offset + r * p.y_stride + c;
    if (p.pair == 1u) {
        let g = col_sum(r, p.c0 + 2u * c, rms);
        y[idx] = out_t(glu_act(g, p.epilogue - 2u) * col_sum(r, p.c0 + 2u * c + 1u, rms));
        return;
    }
    var v = col_sum(r, p.c0 + c, rms);
    if (p.rope.on == 1u && c < p.rope.cols) {
        let o = c % p.rope.head_dim;
        let q = rope_pair(p.rope, o);
        if (q.x < p.rope.pairs) {
            let other = col_sum(r, p.c0 + c - o + q.y, rms);
            let sc = rope_sincos(p.rope, p.rope.pos0 + r, q.x);
            if (q.z == 0u) {
                v = rope_turn(v, other, sc).x;
            } else {
                v = rope_turn(other, v, sc).y;
            }
        }
    }
    if (p.epilogue == 1u) {
        v = v + f32(y[idx]);
    } else if (p.epilogue >= 2u) {
        v = glu_act(f32(y[idx]), p.epilogue - 2u) * v;
    }
    y[idx] = out_t(v);
}
