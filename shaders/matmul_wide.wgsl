// matmul.wgsl's job with an 8×8 block of outputs an invocation instead of 4×4 (`Gpu::
// set_register_tile(8)`, `UNMASK_REGISTER_TILE=8x8`; an A/B for GPUs, not yet measured on one):
// the same 64×64 output tile (32×64 for short inputs), staging, parameters, stores, folded norm
// and split-K, from a quarter of the invocations (8 × ROWS / 2). Per staged k, an invocation
// reads two vec4 of x rows and two of W rows for 64 multiply-adds (matmul.wgsl: two for 16), so
// workgroup-memory reads per multiply-add halve and each invocation has 16 independent vec4
// sums in flight. The host prepends the same files as for matmul.wgsl.

override ROWS: u32 = 16u;

// The 8×8 block of an invocation (lx, ly) of the 8 × ROWS/2 workgroup: tile rows 4·ly + i and
// 2·ROWS + 4·ly + i, tile columns 4·lx + j and 32 + 4·lx + j (i, j < 4), as 16 vec4 of four
// columns: acc[4·h + i] (row half h = 0, 1; columns 4·lx ..) and acc[8 + 4·h + i] (columns 32 + 4·lx ..).
fn tile_mac8(ly: u32, lx: u32, acc: ptr<function, array<vec4<f32>, 16>>) {
    for (var c = 0u; c < TK; c = c + 1u) {
        let a0 = xs[c][ly];
        let a1 = xs[c][ROWS / 2u + ly];
        let b0 = ws[c][lx];
        let b1 = ws[c][8u + lx];
        for (var i = 0u; i < 4u; i = i + 1u) {
            (*acc)[i] = (*acc)[i] + a0[i] * b0;
            (*acc)[4u + i] = (*acc)[4u + i] + a1[i] * b0;
            (*acc)[8u + i] = (*acc)[8u + i] + a0[i] * b1;
            (*acc)[12u + i] = (*acc)[12u + i] + a1[i] * b1;
        }
    }
}

@compute @workgroup_size(8, ROWS / 2u)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row0 = wg.y * ROWS * 4u;
    let col0 = wg.x * TILE;
    let tid = lid.y * 8u + lid.x;
    // Invocation tid stages pieces e = tid + j·4·ROWS (j < 4) of the x slice (tile row e / 4,
    // k (e % 4)·4 .. + 3; rows tid / 4 + j·ROWS) and pieces e = tid + j·4·ROWS (j < 64 / ROWS)
    // of the W slice (tile column w_tile_row(e / 4)).
    let lc = (tid % 4u) * 4u;
    var acc: array<vec4<f32>, 16>;
    for (var i = 0u; i < 16u; i = i + 1u) {
        acc[i] = vec4<f32>(0.0);
    }
    var ss = vec4<f32>(0.0);
    let ks = k_range(wg.z);
    var xv: array<vec4<f32>, 4>;
    var wv: array<vec4<f32>, 8>;
    for (var j = 0u; j < 4u; j = j + 1u) {
        xv[j] = load_x4(row0 + tid / 4u + j * ROWS, ks.x + lc);
    }
    for (var j = 0u; j < 64u / ROWS; j = j + 1u) {
        wv[j] = load_wt4(col0 + w_tile_row((tid + j * 4u * ROWS) / 4u), ks.x + lc);
    }
    for (var k0 = ks.x; k0 < ks.y; k0 = k0 + TK) {
        for (var j = 0u; j < 4u; j = j + 1u) {
            if (p.norm != 0u) {
                ss[j] = ss[j] + dot(xv[j], xv[j]);
                xv[j] = xv[j] * load_g4(k0 + lc, p.k);
            }
            if ((SKIP & 4u) == 0u) {
                stage_x(tid / 4u + j * ROWS, lc, xv[j]);
            }
        }
        if ((SKIP & 4u) == 0u) {
            for (var j = 0u; j < 64u / ROWS; j = j + 1u) {
                stage_w(w_tile_row((tid + j * 4u * ROWS) / 4u), lc, wv[j]);
            }
        }
        workgroupBarrier();
        let kn = k0 + TK;
        if (kn < ks.y && (SKIP & 1u) == 0u) {
            for (var j = 0u; j < 4u; j = j + 1u) {
                xv[j] = load_x4(row0 + tid / 4u + j * ROWS, kn + lc);
            }
            for (var j = 0u; j < 64u / ROWS; j = j + 1u) {
                wv[j] = load_wt4(col0 + w_tile_row((tid + j * 4u * ROWS) / 4u), kn + lc);
            }
        }
        if ((SKIP & 2u) == 0u) {
            tile_mac8(lid.y, lid.x, &acc);
        }
        workgroupBarrier();
    }
    // The norm's 1/rms of this invocation's rows; with split-K, each row's Σ x² over the slice
    // goes after the [splits, m, n] partial results instead, for the merge. xs is free: the
    // loop ended on a barrier. Piece e's Σ x² goes to slot e (`put_ss`), where `row_ss` reads it.
    var inv0 = vec4<f32>(1.0);
    var inv1 = vec4<f32>(1.0);
    if (p.norm != 0u) {
        for (var j = 0u; j < 4u; j = j + 1u) {
            put_ss(tid + j * 4u * ROWS, ss[j]);
        }
        workgroupBarrier();
        if (p.k_slice == 0u) {
            inv0 = inv_rms4(lid.y, p.k, p.eps);
            inv1 = inv_rms4(ROWS / 2u + lid.y, p.k, p.eps);
        } else if (wg.x == 0u && row0 + tid < p.m) {
            // One tile row an invocation.
            let splits = (p.k + p.k_slice - 1u) / p.k_slice;
            y[splits * p.m * p.n + wg.z * p.m + row0 + tid] = y_t_of(row_ss(tid));
        }
    }
    // This invocation's 8×8 block, stored in pairs.
    for (var h = 0u; h < 2u; h = h + 1u) {
        let inv = select(inv0, inv1, h == 1u);
        let r0 = row0 + h * 2u * ROWS + lid.y * 4u;
        for (var i = 0u; i < 4u; i = i + 1u) {
            for (var q = 0u; q < 2u; q = q + 1u) {
                let v = acc[8u * q + 4u * h + i] * inv[i];
                let c0 = col0 + q * 32u + lid.x * 4u;
                store_pair(wg.z, r0 + i, c0, v.xy);
                store_pair(wg.z, r0 + i, c0 + 2u, v.zw);
            }
        }
    }
}
