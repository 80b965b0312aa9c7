// The store of a matmul with one output, for both cores (matmul.wgsl on f32 ALUs,
// matmul_coop.wgsl on cooperative matrices): element (r, c) of split-K slice z (0 unsplit) goes
// to y at y_offset + (z·m + r)·y_stride + c, through the epilogue (`put`, matmul_common.wgsl).
// matmul_qkv.wgsl and matmul_glu.wgsl are the other stores; each gives the cores the same three
// things: `g` (the folded norm's weight, the kernel's last binding), `w_tile_row` and
// `store_pair`. The host prepends one of them.

// The folded norm's weight (bound to x when p.norm is 0; the tiled core only).
@group(0) @binding(4) var<storage, read> g: array<f32>;

// Which of a 64-column tile's columns the core's r-th staging row loads: here the r-th.
fn w_tile_row(r: u32) -> u32 {
    return r;
}

// Output row r, columns c and c + 1 (c even) of slice z: v, where they lie inside the output.
fn store_pair(z: u32, r: u32, c: u32, v: vec2<f32>) {
    for (var i = 0u; i < 2u; i = i + 1u) {
        if (r < p.m && c + i < p.n) {
            put(p.y_offset + (z * p.m + r) * p.y_stride + c + i, v[i]);
        }
    }
}
