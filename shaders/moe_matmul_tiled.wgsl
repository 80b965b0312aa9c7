// The grouped expert matmul for GPUs (the tiled layout): the job of moe_matmul.wgsl, y[pair, c]
// = Σ_k x[src, k] · W_e[c, k] for the pairs on expert e's list, with matmul.wgsl's tiling. A
// 16×ROWS workgroup computes 4·ROWS pairs of one expert's list (a "tile" of gathered x rows) by
// 64 output columns, a 4×4 block per invocation, staging 16-deep slices of those x rows and of
// W_e (transposed, as vec4 of 4 rows) through workgroup memory, each slice loaded into registers
// while the one before is multiplied, so every weight value loaded is used by all the tile's
// pairs. The host picks ROWS (tiles of 8, 16, 32 or 64 pairs) from the
// pairs an expert gets on average. Workgroup z takes the tiles of list entries from z·4·ROWS,
// every nz-th (nz workgroups along the list): on GPUs the host launches a workgroup for each
// tile an expert could get, so those past its count do nothing; on CPU adapters one (nz = 1)
// walks the whole list (the count is a uniform load: the workgroup stays together). The host
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

// k .. k + 3 of gathered tile row lr (of m) from its x row at src[lr] (zero past the edges).
fn load_xg(lr: u32, m: u32, k0: u32, lc: u32) -> vec4<f32> {
    var xv = vec4<f32>(0.0);
    if (lr < m) {
        let base = src[lr] + k0 + lc;
        for (var i = 0u; i < 4u; i = i + 1u) {
            if (k0 + lc + i < p.kdim) {
                xv[i] = x[base + i];
            }
        }
    }
    return xv;
}

@compute @workgroup_size(16, ROWS)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let tid = lid.y * 16u + lid.x;
    let e = p.e0 + wg.y;
    let counts = 2u * p.rows * p.k;
    if (tid == 0u) {
        count_wg = route[counts + e];
    }
    let count = workgroupUniformLoad(&count_wg);
    let list = counts + p.experts + e * p.rows;
    let col0 = wg.x * TILE;
    let e_row0 = wg.y * p.n;
    // Invocation tid stages tile row tid / 4, k (tid % 4)·4 .. + 3 of the slice; W rows likewise.
    let lr = tid / 4u;
    let lc = (tid % 4u) * 4u;
    let first = wg.z * ROWS * 4u;
    let stride = nwg.z * ROWS * 4u;
    let tiles = select(0u, (count - first + stride - 1u) / stride, first < count);
    for (var n = 0u; n < tiles; n = n + 1u) {
        let i0 = first + n * stride;
        let m = min(ROWS * 4u, count - i0);
        workgroupBarrier(); // the tile before has stored its results (dst)
        for (var r = tid; r < m; r = r + 16u * ROWS) {
            let pair = route[list + i0 + r];
            dst[r] = pair;
            src[r] = src_of(pair);
        }
        workgroupBarrier();
        tile_pairs(m, col0, e_row0, lr, lc, tid, lid);
    }
}

// One tile: the product for the m pairs staged in src/dst, columns col0 .. col0 + 63.
fn tile_pairs(m: u32, col0: u32, e_row0: u32, lr: u32, lc: u32, tid: u32, lid: vec3<u32>) {
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    var ss = 0.0;
    // Each slice's loads are made one slice ahead, into registers (in flight while the slice
    // before is multiplied): tile row lr's x piece, and W row-pieces t = tid + j·16·ROWS (one
    // for ROWS 16, up to eight for ROWS 2).
    var xv = load_xg(lr, m, 0u, lc);
    var wv: array<vec4<f32>, 8>;
    for (var j = 0u; j < 8u; j = j + 1u) {
        let t = tid + j * 16u * ROWS;
        if (t < 256u) {
            wv[j] = expert_wt4(e_row0, col0 + t / 4u, (t % 4u) * 4u);
        }
    }
    for (var k0 = 0u; k0 < p.kdim; k0 = k0 + TK) {
        if (p.norm != 0u) {
            ss = ss + dot(xv, xv);
            xv = xv * load_g4(k0 + lc, p.kdim);
        }
        stage_x(lr, lc, xv);
        for (var j = 0u; j < 8u; j = j + 1u) {
            let t = tid + j * 16u * ROWS;
            if (t < 256u) {
                stage_w(t / 4u, (t % 4u) * 4u, wv[j]);
            }
        }
        workgroupBarrier();
        let kn = k0 + TK;
        if (kn < p.kdim) {
            xv = load_xg(lr, m, kn, lc);
            for (var j = 0u; j < 8u; j = j + 1u) {
                let t = tid + j * 16u * ROWS;
                if (t < 256u) {
                    wv[j] = expert_wt4(e_row0, col0 + t / 4u, kn + (t % 4u) * 4u);
                }
            }
        }
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
