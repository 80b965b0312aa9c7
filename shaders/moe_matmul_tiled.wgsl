// The grouped expert matmul for GPUs (the tiled layout): the job of moe_matmul.wgsl, y[pair, c]
// = Σ_k x[src, k] · W_e[c, k] for the pairs on expert e's list, with matmul.wgsl's tiling. A
// 16×ROWS workgroup computes 4·ROWS pairs of one expert's list (a "tile" of gathered x rows) by
// 64 output columns, a 4×4 block per invocation, staging 16-deep slices of those x rows and of
// W_e (transposed, as vec4 of 4 rows) through workgroup memory, so every weight value loaded is
// used by all the tile's pairs. The host picks ROWS (tiles of 8, 16, 32 or 64 pairs) from the
// pairs an expert gets on average. Workgroup z takes list entries z·4·ROWS ..; workgroups past
// their expert's count exit at once (together: the count is a uniform load). The host
// prepends the weight binding and reader (weights_*.wgsl, `load_w` / `load_w4`) and glu.wgsl.

struct Params {
    n: u32,        // output columns (rows of one expert's matrix)
    kdim: u32,     // shared dimension
    e0: u32,       // first expert of this weight chunk
    k: u32,        // experts per row (slots)
    by_pair: u32,  // 0: x has a row per position (row = pair / k); 1: a row per pair
    rows: u32,     // positions in the pass (list stride)
    experts: u32,  // experts in the model (route layout)
    epilogue: u32, // 0: y = result; 2 + act: y = glu_act(y, act) · result (y holds the gate)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> route: array<u32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

override ROWS: u32 = 16u;
const TILE: u32 = 64u;
const TK: u32 = 16u;

// xs[c * 16 + r / 4][r % 4] = x[src of tile row r, k0 + c]; ws likewise for W_e rows.
var<workgroup> xs: array<vec4<f32>, 256>;
var<workgroup> ws: array<vec4<f32>, 256>;
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
        src[r] = select(pair / p.k, pair, p.by_pair == 1u) * p.kdim;
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
        for (var i = 0u; i < 4u; i = i + 1u) {
            xs[(lc + i) * 16u + lr / 4u][lr % 4u] = xv[i];
        }
        for (var t = tid; t < 256u; t = t + 16u * ROWS) {
            let wr = t / 4u;
            let wc = (t % 4u) * 4u;
            let wv = load_wt4(e_row0, col0 + wr, k0 + wc);
            for (var i = 0u; i < 4u; i = i + 1u) {
                ws[(wc + i) * 16u + wr / 4u][wr % 4u] = wv[i];
            }
        }
        workgroupBarrier();
        for (var c = 0u; c < TK; c = c + 1u) {
            let a = xs[c * 16u + lid.y];
            let b = ws[c * 16u + lid.x];
            acc0 = acc0 + a.x * b;
            acc1 = acc1 + a.y * b;
            acc2 = acc2 + a.z * b;
            acc3 = acc3 + a.w * b;
        }
        workgroupBarrier();
    }
    let acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < 4u; i = i + 1u) {
        let r = lid.y * 4u + i;
        for (var j = 0u; j < 4u; j = j + 1u) {
            let c = col0 + lid.x * 4u + j;
            if (r < m && c < p.n) {
                let idx = dst[r] * p.n + c;
                var o = acc[i][j];
                if (p.epilogue >= 2u) {
                    o = glu_act(y[idx], p.epilogue - 2u) * o;
                }
                y[idx] = o;
            }
        }
    }
}
