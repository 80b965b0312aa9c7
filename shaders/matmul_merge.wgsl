// Split-K's ending for one output: y[r, c] (+)= the slices' sum of column c0 + c
// (matmul_merge_common.wgsl: the norm, RoPE), with the matmul's epilogue (overwrite, add, or
// gate: glu.wgsl, prepended by the host). With pair 1 (matmul_glu.wgsl's tiles: gate row i in
// column 2i, the same up row in 2i + 1) each output reads two columns: y = act(gate) · up.
// y holds `out_t` (the host's alias: f32, or f16 for K or V into half-precision K/V and for
// gate · up as a cooperative-matrix matmul's input).
// matmul_merge_qkv.wgsl ends Q, K and V at once.

@group(0) @binding(2) var<storage, read_write> y: array<out_t>;

// No bias here (the epilogue adds the residual or gates).
fn col_bias(c: u32) -> f32 {
    return 0.0;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.m * p.n) {
        return;
    }
    let r = i / p.n;
    let c = i % p.n;
    let rms = row_rms(r);
    let idx = p.y_offset + r * p.y_stride + c;
    if (p.pair == 1u) {
        let g = col_sum(r, p.c0 + 2u * c, rms);
        y[idx] = out_t_of(glu_act(g, p.epilogue - 2u) * col_sum(r, p.c0 + 2u * c + 1u, rms));
        return;
    }
    var v = merged(r, c, rms);
    if (p.epilogue == 1u) {
        v = v + f32(y[idx]);
    } else if (p.epilogue >= 2u) {
        v = glu_act(f32(y[idx]), p.epilogue - 2u) * v;
    }
    y[idx] = out_t_of(v);
}
