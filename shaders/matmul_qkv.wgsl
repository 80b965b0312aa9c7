// The store of a matmul over three weight matrices at once, the attention's Q, K and V
// projections of the same input: one launch instead of three, x staged (and a folded norm
// computed) once; for either core (matmul.wgsl, matmul_coop.wgsl). The three matrices stay in
// their own buffers and formats: the host prepends each one's reader renamed with a suffix
// (_a: binding 1; _b: 6; _c: 7), and `load_w` / `load_w4` here pick by row. Output columns
// [0, n1) are Q's, [n1, n2) K's, [n2, n) V's; each goes to its own buffer (y, y2, y3), rows dense
// at that part's width. Split-K slices store the dense [splits, m, n] scratch as usual;
// matmul_merge_qkv.wgsl then ends all three parts (and turns Q and K).
// K and V are stored as `kv_t` (the host's alias: f32, or f16 for half-precision K/V).
// Unsplit, with p.rope on, Q and K (columns [0, rope.cols)) are turned by RoPE as they are
// stored (rope_common.wgsl): each pair of a head sits in two neighbouring tile columns
// (`qkv_col` reorders NeoX pairs, whose dimensions are half a head apart), so the invocation
// that stores one stores the other (`store_pair`). With p.bias (Qwen2's and Dream's q/k/v
// biases, in `g` after the norm's weight) each output gets its bias first, before RoPE.

@group(0) @binding(4) var<storage, read_write> y2: array<kv_t>;
@group(0) @binding(5) var<storage, read_write> y3: array<kv_t>;
// The folded norm's weight (the tiled core only), then with p.bias the biases of Q's, K's and
// V's columns (either core; bound to x when neither is used).
@group(0) @binding(8) var<storage, read> g: array<f32>;

// Tile columns are staged in order.
fn w_tile_row(r: u32) -> u32 {
    return r;
}

// The output column (and weight row) of tile column c: c, or with NeoX RoPE in the store, the
// head's dimension c' (of the first 2·half) such that tile columns 2i and 2i + 1 hold pair i's
// dimensions i and i + half.
fn qkv_col(c: u32) -> u32 {
    if (p.rope.on == 0u || p.k_slice != 0u || p.rope.style == 1u || c >= p.rope.cols) {
        return c;
    }
    let o = c % p.rope.head_dim;
    if (o >= 2u * p.rope.half) {
        return c;
    }
    return c - o + o / 2u + (o % 2u) * p.rope.half;
}

fn load_w(c: u32, k: u32, kdim: u32) -> f32 {
    let r = qkv_col(c);
    if (r < p.n1) {
        return load_w_a(r, k, kdim);
    }
    if (r < p.n2) {
        return load_w_b(r - p.n1, k, kdim);
    }
    return load_w_c(r - p.n2, k, kdim);
}

fn load_w4(c: u32, k: u32, kdim: u32) -> vec4<f32> {
    let r = qkv_col(c);
    if (r < p.n1) {
        return load_w4_a(r, k, kdim);
    }
    if (r < p.n2) {
        return load_w4_b(r - p.n1, k, kdim);
    }
    return load_w4_c(r - p.n2, k, kdim);
}

// Tile columns c and c + 1 (c even) of row r, to Q, K or V by column (the slices: to the
// scratch); unsplit with p.rope on, a pair of Q or K turned first.
fn store_pair(z: u32, r: u32, c: u32, v: vec2<f32>) {
    if (r >= p.m) {
        return;
    }
    var t = v;
    if (p.bias != 0u && p.k_slice == 0u) {
        t = t + vec2<f32>(g[p.bias + qkv_col(c)], g[p.bias + qkv_col(min(c + 1u, p.n - 1u))]);
    }
    if (p.rope.on == 1u && p.k_slice == 0u && c < p.rope.cols) {
        let pair = (c % p.rope.head_dim) / 2u;
        if (pair < p.rope.pairs) {
            t = rope_turn(t.x, t.y, rope_sincos(p.rope, p.rope.pos0 + r, pair));
        }
    }
    for (var i = 0u; i < 2u; i = i + 1u) {
        if (c + i < p.n) {
            store(z, r, qkv_col(c + i), t[i]);
        }
    }
}

fn store(z: u32, r: u32, c: u32, v: f32) {
    if (p.k_slice != 0u) {
        y[(z * p.m + r) * p.n + c] = v;
    } else if (c < p.n1) {
        y[p.y_offset + r * p.n1 + c] = v;
    } else if (c < p.n2) {
        y2[p.y2_offset + r * (p.n2 - p.n1) + c - p.n1] = kv_t(v);
    } else {
        y3[p.y3_offset + r * (p.n - p.n2) + c - p.n2] = kv_t(v);
    }
}
