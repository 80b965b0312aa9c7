// y[m, n0 + n] (+)= Σ_k x[m, k] · W[n, k]   — activations (f32) times a weight matrix stored
// [N, K] in any format; `load_w` / `load_w4` come from the weights_*.wgsl file prepended to
// this one. Tiled: a 16×16 workgroup computes a 64×64 output tile, a 4×4 block per invocation,
// staging 64×16 slices of x and W (transposed, as vec4 of 4 rows) through workgroup memory.
// Any M, N, K: edges are bounds-checked. The weight matrix may be one row-chunk of a larger
// one (y_offset says where its columns go). Split-K (few output tiles: cached steps, small
// models): workgroup z sums only k in [z·k_slice, (z+1)·k_slice) and writes its partial result
// to slice z of y (y is then split-K's scratch, dense [splits, m, n]); matmul_merge.wgsl adds
// the slices and applies the epilogue.

// Parameters, bindings and edge loads: matmul_common.wgsl; the staging and the 4×4 block of
// multiply-adds: matmul_tile.wgsl; both prepended by the host.

override ROWS: u32 = 16u;

@compute @workgroup_size(16, ROWS)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row0 = wg.y * ROWS * 4u;
    let col0 = wg.x * TILE;
    let tid = lid.y * 16u + lid.x;
    // Invocation e/4 stages row e / 4 of a tile, columns (e % 4)·4 .. + 3 of the K slice: every
    // invocation one x row-piece, and 256 / (16·ROWS) W row-pieces.
    let lr = tid / 4u;
    let lc = (tid % 4u) * 4u;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    let ks = k_range(wg.z);
    for (var k0 = ks.x; k0 < ks.y; k0 = k0 + TK) {
        stage_x(lr, lc, load_x4(row0 + lr, k0 + lc));
        for (var e = tid; e < 256u; e = e + 16u * ROWS) {
            stage_w(e / 4u, (e % 4u) * 4u, load_wt4(col0 + e / 4u, k0 + (e % 4u) * 4u));
        }
        workgroupBarrier();
        tile_mac(lid.y, lid.x, &acc0, &acc1, &acc2, &acc3);
        workgroupBarrier();
    }
    let acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < 4u; i = i + 1u) {
        let r = row0 + lid.y * 4u + i;
        for (var j = 0u; j < 4u; j = j + 1u) {
            let c = col0 + lid.x * 4u + j;
            if (r < p.m && c < p.n) {
                put(p.y_offset + wg.z * p.m * p.y_stride + r * p.y_stride + c, acc[i][j]);
            }
        }
    }
}
