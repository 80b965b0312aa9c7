// The grouped expert matmul for GPUs (the tiled layout): the job of moe_matmul.wgsl, y[pair, c]
// = Σ_k x[src, k] · W_e[c, k] for the pairs on expert e's list, with matmul.wgsl's tiling. A
// 16×ROWS workgroup computes 4·ROWS pairs of one expert's list (a "tile" of gathered x rows) by
// 64 output columns, a 4×4 block per invocation, staging 16-deep slices of those x rows and of
// W_e (transposed, as vec4 of 4 rows) through workgroup memory, so every weight value loaded is
// used by all the tile's pairs. The host picks ROWS (tiles of 8, 16, 32 or 64 pairs) from the
// pairs an expert gets on average. Workgroup z takes list entries z·4·ROWS ..; workgroups past
// their expert's count exit at once (together: the count is a uniform load). The host
// prepends the weight binding and reader (weights_*.wgsl, `load_w` / `load_w4`), glu.wgsl,
// moe_common.wgsl (parameters, bindings, epilogue) and matmul_tile.wgsl (staging, 4×4 block).
// A folded RMSNorm (p.norm) works as in matmul.wgsl: x staged times the norm's weight g, each
// gathered row's Σ x² summed while staging, the result scaled by the row's 1/rms.

override ROWS: u32 = 16u;

// The folded norm's weight (bound to x when p.norm is 0).
@group(0) @binding(5) var<storage, read> g: array<f32>;

// Tile row r's first x element and its pair.
var<workgroup> src: array<u32, 64>;
var<workgroup> dst: array<u32, 64>;
var<workgroup> count_wg: u32;

// Four consecutive k of W_e's row r (zero past the edges).
fn load_wt4(e_row0: u32, r: u32, k: u32) -> vec4<f32> {
    if (r >= p.n) {
        return vec4<f32>(0.0);
    }
    if (k + 3u < p.kdim) {
        return load_w4(e_row0 + r, k, p.kdim);
    }
    var v = vec4<f32>(0.0);
    for (var i = 0u; i < 4u; i = i + 1u) {
        if (k + i < p.kdim) {
            v[i] = load_w(e_row0 + r, k + i, p.kdim);
        }
    }
    return v;
}

@compute @workgroup_size(16, ROWS)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let tid = lid.y * 16u + lid.x;
    let e = p.e0 + wg.y;
    let counts = 2u * p.rows * p.k;
    if (tid == 0u) {
        count_wg = route[counts + e];
    }
    let count = workgroupUniformLoad(&count_wg);
    let i0 = wg.z * ROWS * 4u;
    if (i0 >= count) {
        return;
    }
    let m = min(ROWS * 4u, count - i0);
    let list = counts + p.experts + e * p.rows;
    for (var r = tid; r < m; r = r + 16u * ROWS) {
        let pair = route[list + i0 + r];
        dst[r] = pair;
        src[r] = src_of(pair);
    }
    workgroupBarrier();

    let col0 = wg.x * TILE;
    let e_row0 = wg.y * p.n;
    // Invocation tid stages tile row tid / 4, k (tid % 4)·4 .. + 3 of the slice; W rows likewise.
    let lr = tid / 4u;
    let lc = (tid % 4u) * 4u;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var ss = 0.0;
    for (var k0 = 0u; k0 < p.kdim; k0 = k0 + TK) {
        var xv = vec4<f32>(0.0);
        if (lr < m) {
            let base = src[lr] + k0 + lc;
            for (var i = 0u; i < 4u; i = i + 1u) {
                if (k0 + lc + i < p.kdim) {
                    xv[i] = x[base + i];
                }
            }
        }
        if (p.norm != 0u) {
            ss = ss + dot(xv, xv);
            xv = xv * load_g4(k0 + lc, p.kdim);
        }
        stage_x(lr, lc, xv);
        for (var t = tid; t < 256u; t = t + 16u * ROWS) {
            stage_w(t / 4u, (t % 4u) * 4u, load_wt4(e_row0, col0 + t / 4u, k0 + (t % 4u) * 4u));
        }
        workgroupBarrier();
        tile_mac(lid.y, lid.x, &acc0, &acc1, &acc2, &acc3);
        workgroupBarrier();
    }
    var inv = vec4<f32>(1.0);
    if (p.norm != 0u) {
        share_ss(tid, ss);
        inv = inv_rms4(lid.y, p.kdim, p.eps);
    }
    let acc = array<vec4<f32>, 4>(acc0 * inv.x, acc1 * inv.y, acc2 * inv.z, acc3 * inv.w);
    for (var i = 0u; i < 4u; i = i + 1u) {
        let r = lid.y * 4u + i;
        for (var j = 0u; j < 4u; j = j + 1u) {
            let c = col0 + lid.x * 4u + j;
            if (r < m && c < p.n) {
                put(dst[r] * p.n + c, acc[i][j]);
            }
        }
    }
}
