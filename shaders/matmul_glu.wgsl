// The store of a matmul over the gated MLP's gate and up weights at once: y = act(x·Gateᵀ) ⊙
// (x·Upᵀ) in one launch, x staged (and a folded norm computed) once, no gate buffer round trip;
// for either core (matmul.wgsl, matmul_coop.wgsl). Tile column 2i is gate row i and column
// 2i + 1 the same up row, so the invocation that stores one stores the other (`store_pair`).
// The cores stage a tile's gate rows first and its up rows after (`w_tile_row`; 32 each, 64 in
// the cooperative core's 128-wide short tiles), so that neighbouring invocations read the same
// matrix (no divergent branches around the readers).
// p.n is the tiles' width (2 per output), n1 the outputs (rows of each matrix); act is
// p.epilogue − 2. The host prepends each matrix's reader renamed (_a: gate, binding 1; _b: up,
// binding 4). Split-K: the slices store the tiles' columns as they are ([splits, m, p.n]) and
// matmul_merge.wgsl pairs them (its `pair` 1). y_t is f16 only for unsplit launches (the
// slices stay f32).

// The folded norm's weight (bound to x when p.norm is 0; the tiled core only).
@group(0) @binding(5) var<storage, read> g: array<f32>;

// Staging row r of a tile of TILE columns (the core's) loads tile column 2r (gate) for
// r < TILE / 2, else 2(r − TILE / 2) + 1 (up).
fn w_tile_row(r: u32) -> u32 {
    return 2u * (r % (TILE / 2u)) + r / (TILE / 2u);
}

fn load_w(c: u32, k: u32, kdim: u32) -> f32 {
    if (c / 2u >= p.n1) {
        return 0.0;
    }
    if (c % 2u == 0u) {
        return load_w_a(c / 2u, k, kdim);
    }
    return load_w_b(c / 2u, k, kdim);
}

fn load_w4(c: u32, k: u32, kdim: u32) -> vec4<f32> {
    if (c / 2u >= p.n1) {
        return vec4<f32>(0.0);
    }
    if (c % 2u == 0u) {
        return load_w4_a(c / 2u, k, kdim);
    }
    return load_w4_b(c / 2u, k, kdim);
}

// Tile columns c (gate) and c + 1 (up) of row r: the slices store both; unsplit,
// act(gate) · up goes to output column c / 2.
fn store_pair(z: u32, r: u32, c: u32, v: vec2<f32>) {
    if (r >= p.m) {
        return;
    }
    if (p.k_slice != 0u) {
        for (var i = 0u; i < 2u; i = i + 1u) {
            if (c + i < p.n) {
                y[(z * p.m + r) * p.n + c + i] = y_t_of(v[i]);
            }
        }
    } else if (c / 2u < p.n1) {
        y[p.y_offset + r * p.y_stride + c / 2u] = y_t_of(glu_act(v.x, p.epilogue - 2u) * v.y);
    }
}
