// Split-K's ending for matmul.wgsl: y[r, c] (+)= Σ_z part[z, r, c] over the `splits` slices of
// the shared dimension, in slice order, with the matmul's epilogue (overwrite, add, or gate:
// glu.wgsl, prepended by the host). part: [splits, m, n_src], of which columns c0 .. c0 + n are
// this output's (all of them, or one of Q, K and V: matmul_qkv.wgsl). One invocation per output.
// With a folded RMSNorm (norm_k > 0) the sum is scaled by the row's 1/rms, from the slices'
// Σ x² of each row that follow the partial results ([splits, m]).

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
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.m * p.n) {
        return;
    }
    let r = i / p.n;
    let c = i % p.n;
    let slice = p.m * p.n_src;
    var v = 0.0;
    for (var z = 0u; z < p.splits; z = z + 1u) {
        v = v + part[z * slice + r * p.n_src + p.c0 + c];
    }
    if (p.norm_k != 0u) {
        var ss = 0.0;
        for (var z = 0u; z < p.splits; z = z + 1u) {
            ss = ss + part[p.splits * slice + z * p.m + r];
        }
        v = v / sqrt(ss / f32(p.norm_k) + p.eps);
    }
    let idx = p.y_offset + r * p.y_stride + c;
    if (p.epilogue == 1u) {
        v = v + y[idx];
    } else if (p.epilogue >= 2u) {
        v = glu_act(y[idx], p.epilogue - 2u) * v;
    }
    y[idx] = v;
}
