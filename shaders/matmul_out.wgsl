// The store of matmul.wgsl with one output: element (r, c) of split-K slice z (0 unsplit) goes
// to y at y_offset + (z·m + r)·y_stride + c, through the epilogue (`put`, matmul_common.wgsl).
// matmul_qkv.wgsl is the three-output one. The host prepends one of them.

fn store(z: u32, r: u32, c: u32, v: f32) {
    put(p.y_offset + (z * p.m + r) * p.y_stride + c, v);
}
