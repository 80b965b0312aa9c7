// y[m, n0 + n] (+)= Σ_k x[m, k] · W[n, k]   — activations (f32) times a weight matrix stored
// [N, K] in any format; `load_w` / `load_w4` come from the weights_*.wgsl file prepended to
// this one. Tiled: a 16×16 workgroup computes a 64×64 output tile, a 4×4 block per invocation,
// staging 64×16 slices of x and W (transposed, as vec4 of 4 rows) through workgroup memory,
// each slice loaded into registers while the one before is multiplied.
// Any M, N, K: edges are bounds-checked. The weight matrix may be one row-chunk of a larger
// one (y_offset says where its columns go). Split-K (few output tiles: cached steps, small
// models): workgroup z sums only k in [z·k_slice, (z+1)·k_slice) and writes its partial result
// to slice z of y (y is then split-K's scratch, dense [splits, m, n]); matmul_merge.wgsl adds
// the slices and applies the epilogue.
// The folded RMSNorm (p.norm): rmsnorm(x)·Wᵀ = diag(1/rms) · (x ⊙ g)·Wᵀ, so x is staged times the
// norm's weight g, each row's Σ x² is summed while staging, and the result is scaled by the
// row's 1/rms at the store (split-K: the merge scales, from each slice's Σ x²). The norm then
// needs no pass or buffer of its own.

// Parameters, bindings and edge loads: matmul_common.wgsl; the staging and the 4×4 block of
// multiply-adds: matmul_tile.wgsl; the store (`store_pair`, which tile column each staging row
// loads, the norm's weight `g`): matmul_out.wgsl, or matmul_qkv.wgsl for Q, K and V in one
// launch, or matmul_glu.wgsl for the gate and up projections in one; all prepended by the host.

override ROWS: u32 = 16u;

@compute @workgroup_size(16, ROWS)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row0 = wg.y * ROWS * 4u;
    let col0 = wg.x * TILE;
    let tid = lid.y * 16u + lid.x;
    // Invocation e/4 stages row e / 4 of a tile, columns (e % 4)·4 .. + 3 of the K slice: every
    // invocation one x row-piece, and 256 / (16·ROWS) W row-pieces (the store's tile columns
    // `w_tile_row(e / 4)`).
    let lr = tid / 4u;
    let lc = (tid % 4u) * 4u;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var ss = 0.0;
    let ks = k_range(wg.z);
    // Each slice's loads are made one slice ahead, into registers, so that they are in flight
    // while the slice before is multiplied: this invocation's x row-piece and its one or two
    // (ROWS 8: 32-row tiles of 128 invocations) W row-pieces, e = tid and tid + 16·ROWS.
    let e1 = tid + 16u * ROWS;
    let t0 = w_tile_row(tid / 4u);
    let t1 = w_tile_row(e1 / 4u);
    var xv = load_x4(row0 + lr, ks.x + lc);
    var wv0 = load_wt4(col0 + t0, ks.x + (tid % 4u) * 4u);
    var wv1 = vec4<f32>(0.0);
    if (e1 < 256u) {
        wv1 = load_wt4(col0 + t1, ks.x + (e1 % 4u) * 4u);
    }
    for (var k0 = ks.x; k0 < ks.y; k0 = k0 + TK) {
        if (p.norm != 0u) {
            ss = ss + dot(xv, xv);
            xv = xv * load_g4(k0 + lc, p.k);
        }
        if ((SKIP & 4u) == 0u) {
            stage_x(lr, lc, xv);
            stage_w(t0, (tid % 4u) * 4u, wv0);
            if (e1 < 256u) {
                stage_w(t1, (e1 % 4u) * 4u, wv1);
            }
        }
        workgroupBarrier();
        let kn = k0 + TK;
        if (kn < ks.y && (SKIP & 1u) == 0u) {
            xv = load_x4(row0 + lr, kn + lc);
            wv0 = load_wt4(col0 + t0, kn + (tid % 4u) * 4u);
            if (e1 < 256u) {
                wv1 = load_wt4(col0 + t1, kn + (e1 % 4u) * 4u);
            }
        }
        if ((SKIP & 2u) == 0u) {
            tile_mac(lid.y, lid.x, &acc0, &acc1, &acc2, &acc3);
        }
        workgroupBarrier();
    }
    // The norm's 1/rms of this invocation's rows; with split-K, each row's Σ x² over the slice
    // goes after the [splits, m, n] partial results instead, for the merge. xs is free: the
    // loop ended on a barrier.
    var inv = vec4<f32>(1.0);
    if (p.norm != 0u) {
        share_ss(tid, ss);
        if (p.k_slice == 0u) {
            inv = inv_rms4(lid.y, p.k, p.eps);
        } else if (wg.x == 0u && tid < ROWS * 4u && row0 + tid < p.m) {
            let splits = (p.k + p.k_slice - 1u) / p.k_slice;
            y[splits * p.m * p.n + wg.z * p.m + row0 + tid] = y_t_of(row_ss(tid));
        }
    }
    // This invocation's 4×4 block: rows r0 .., tile columns col0 + 4·lx .., stored in pairs.
    let acc = array<vec4<f32>, 4>(acc0 * inv.x, acc1 * inv.y, acc2 * inv.z, acc3 * inv.w);
    let r0 = row0 + lid.y * 4u;
    for (var i = 0u; i < 4u; i = i + 1u) {
        for (var j = 0u; j < 4u; j = j + 2u) {
            store_pair(wg.z, r0 + i, col0 + lid.x * 4u + j, vec2<f32>(acc[i][j], acc[i][j + 1u]));
        }
    }
}
