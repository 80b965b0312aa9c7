// The store of matmul.wgsl with one output: element (r, c) of split-K slice z (0 unsplit) goes
// to y at y_offset + (z·m + r)·y_stride + c, through the epilogue (`put`, matmul_common.wgsl).
// matmul_qkv.wgsl and matmul_glu.wgsl are the others. The host prepends one of them.

fn store(z: u32, r: u32, c: u32, v: f32) {
    put(p.y_offset + (z * p.m + r) * p.y_stride + c, v);
}

// An invocation's 4×4 block: rows r0 .., columns col0 + 4·lx .. of the tile at col0.
fn finish(z: u32, r0: u32, col0: u32, lx: u32, ly: u32, acc: array<vec4<f32>, 4>) {
    for (var i = 0u; i < 4u; i = i + 1u) {
        for (var j = 0u; j < 4u; j = j + 1u) {
            let c = col0 + lx * 4u + j;
            if (r0 + i < p.m && c < p.n) {
                store(z, r0 + i, c, acc[i][j]);
            }
        }
    }
}
