// The f32 register tile that matmul.wgsl and moe_matmul_tiled.wgsl share: 16-deep slices of 64
// activation rows and 64 weight rows staged in workgroup memory (transposed, as vec4 of 4 rows),
// and each invocation's 4×4 block of multiply-adds over a staged slice; and the folded RMSNorm's
// helpers (the kernel declares the norm's weight `g` at its own binding). The host prepends it.

const TILE: u32 = 64u;
const TK: u32 = 16u;

// xs[c][r / 4][r % 4] = x[row0 + r, k0 + c]; ws likewise for W rows. Two dimensions, so that
// naga's index clamps do not depend on the k loop: c is the unrolled loop's constant (its clamp
// folds away) and r / 4 is fixed for an invocation (one clamp serves all its reads); a flat
// index c·16 + r / 4 would be clamped anew at every read.
var<workgroup> xs: array<array<vec4<f32>, 16>, TK>;
var<workgroup> ws: array<array<vec4<f32>, 16>, TK>;

// Stages k (c .. c + 3) of tile row r of x (v) or of W.
fn stage_x(r: u32, c: u32, v: vec4<f32>) {
    for (var i = 0u; i < 4u; i = i + 1u) {
        xs[c + i][r / 4u][r % 4u] = v[i];
    }
}

fn stage_w(r: u32, c: u32, v: vec4<f32>) {
    for (var i = 0u; i < 4u; i = i + 1u) {
        ws[c + i][r / 4u][r % 4u] = v[i];
    }
}

// acc_i += x row 4·ly + i times W rows 4·lx .. 4·lx + 3, over the staged slice.
fn tile_mac(ly: u32, lx: u32, acc0: ptr<function, vec4<f32>>, acc1: ptr<function, vec4<f32>>, acc2: ptr<function, vec4<f32>>,
            acc3: ptr<function, vec4<f32>>) {
    for (var c = 0u; c < TK; c = c + 1u) {
        let a = xs[c][ly];
        let b = ws[c][lx];
        *acc0 = *acc0 + a.x * b;
        *acc1 = *acc1 + a.y * b;
        *acc2 = *acc2 + a.z * b;
        *acc3 = *acc3 + a.w * b;
    }
}

// The folded norm's weight at k .. k + 3 of `kdim` (zero past the edge).
fn load_g4(k: u32, kdim: u32) -> vec4<f32> {
    if (k + 3u < kdim) {
        return vec4<f32>(g[k], g[k + 1u], g[k + 2u], g[k + 3u]);
    }
    var v = vec4<f32>(0.0);
    for (var i = 0u; i < 4u; i = i + 1u) {
        if (k + i < kdim) {
            v[i] = g[k + i];
        }
    }
    return v;
}

// The Σ x² of x row-piece e (tile row e / 4, k (e % 4)·4 ..) into slot e of xs (flat), for
// `row_ss`; xs is free once the k loop has ended on a barrier.
fn put_ss(e: u32, ss: f32) {
    xs[e / 16u][e % 16u] = vec4<f32>(ss);
}

// After the k loop's last barrier (every invocation calls it): invocation tid's Σ x² of the x
// row-piece it staged (tile row tid / 4), for `row_ss`.
fn share_ss(tid: u32, ss: f32) {
    put_ss(tid, ss);
    workgroupBarrier();
}

// Σ x² of tile row r: the four pieces that staged it left theirs in slots 4r .. 4r + 3.
fn row_ss(r: u32) -> f32 {
    let s = &xs[r / 4u];
    let o = (r % 4u) * 4u;
    return (*s)[o].x + (*s)[o + 1u].x + (*s)[o + 2u].x + (*s)[o + 3u].x;
}

// 1 / rms of tile rows 4·ly .. 4·ly + 3 (after `share_ss`) over `kdim` values.
fn inv_rms4(ly: u32, kdim: u32, eps: f32) -> vec4<f32> {
    var inv = vec4<f32>(0.0);
    for (var i = 0u; i < 4u; i = i + 1u) {
        inv[i] = 1.0 / sqrt(row_ss(ly * 4u + i) / f32(kdim) + eps);
    }
    return inv;
}
