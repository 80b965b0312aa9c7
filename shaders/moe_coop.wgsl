// The grouped expert matmul on cooperative matrices: what matmul_coop.wgsl's core reads and
// stores through, for a tile of one expert's pairs (moe_matmul_tiled.wgsl's job, y[pair, c] =
// Σ_k x[src, k] · W_e[c, k]). Workgroup (x, y, z) takes output columns x·TILE .. of expert
// e0 + y's pairs z·TM .. (its list in `route`, moe_route.wgsl), staged into `src` and `dst`
// first; past the expert's count it ends at once (together: the count is a uniform load).
// Tile row r is the r-th of them, so the core's rows start at 0 and x row r is gathered from
// src[r]. All of k in one workgroup (no split-K: z counts tiles of pairs). No folded norm
// (p.norm is 0: x is rounded to f16 as it is staged, so it is normed first). The host prepends
// the weight binding and reader, glu.wgsl, moe_common.wgsl (parameters, bindings, `put`,
// `src_of`) and the f32 `x_t` alias, and appends matmul_coop.wgsl (`TM`, `TILE`, `WG`).

// Bench only in matmul_common.wgsl (`unmask bench --kernels phases`); never set here.
override SKIP: u32 = 0u;

// Tile row r's first x element and its pair; the tile's pairs; expert e's first row in w.
var<workgroup> src: array<u32, TM>;
var<workgroup> dst: array<u32, TM>;
var<workgroup> count_wg: u32;
var<private> m_tile: u32;
var<private> e_row0: u32;

fn tile_origin(wg: vec3<u32>, tid: u32, tm: u32, tn: u32) -> vec3<u32> {
    let e = p.e0 + wg.y;
    let counts = 2u * p.rows * p.k;
    if (tid == 0u) {
        count_wg = route[counts + e];
    }
    let count = workgroupUniformLoad(&count_wg);
    let i0 = wg.z * tm;
    if (i0 >= count) {
        return vec3<u32>(0u);
    }
    m_tile = min(tm, count - i0);
    e_row0 = wg.y * p.n;
    let list = counts + p.experts + e * p.rows;
    for (var r = tid; r < m_tile; r = r + WG) {
        let pair = route[list + i0 + r];
        dst[r] = pair;
        src[r] = src_of(pair);
    }
    workgroupBarrier();
    return vec3<u32>(0u, wg.x * tn, 1u);
}

// Four consecutive k of tile row r's x row (zero past the tile's pairs and past k).
fn load_xt4(r: u32, k: u32) -> vec4<x_t> {
    var v = vec4<x_t>(0.0);
    if (r < m_tile) {
        let base = src[r] + k;
        for (var i = 0u; i < 4u; i = i + 1u) {
            if (k + i < p.kdim) {
                v[i] = x[base + i];
            }
        }
    }
    return v;
}

// Four consecutive k of the expert's row r.
fn load_wt4(r: u32, k: u32) -> vec4<f32> {
    return expert_wt4(e_row0, r, k);
}

fn k_range(z: u32) -> vec2<u32> {
    return vec2<u32>(0u, p.kdim);
}

fn w_tile_row(r: u32) -> u32 {
    return r;
}

// Tile row r's pair, columns c and c + 1, through the epilogue (`put`), where they exist.
fn store_pair(z: u32, r: u32, c: u32, v: vec2<f32>) {
    for (var i = 0u; i < 2u; i = i + 1u) {
        if (r < m_tile && c + i < p.n) {
            put(dst[r] * p.n + c + i, v[i]);
        }
    }
}

fn x_half(v: x_t) -> f16 {
    return to_f16(v);
}
