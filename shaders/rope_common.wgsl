// RoPE's pairs and angles, shared by rope.wgsl (a pass of its own) and the matmul stores that
// turn Q and K as they write them (matmul_qkv.wgsl unsplit; matmul_merge.wgsl after split-K).
// Pair i < `pairs` of a head turns at angle position · freq_scale / theta^(2i / denom); NeoX
// style (0) pairs dimensions (i, i + half), interleaved (1) pairs (2i, 2i + 1). Plain RoPE:
// pairs = half = head_dim/2, denom = head_dim. LLaDA 2's partial RoPE: the first `rot` dims,
// pairs = half = rot/2, denom = rot. DiffusionGemma's proportional RoPE: pairs < half =
// head_dim/2, denom = head_dim. The other dimensions stay as they are.

struct Rope {
    on: u32,          // the stores: 1 turns output columns [0, cols) (heads of head_dim); 0: none
    style: u32,
    pairs: u32,
    half: u32,
    denom: u32,
    head_dim: u32,
    pos0: u32,        // the stores: the position of output row 0 (rope.wgsl reads positions)
    cols: u32,
    theta: f32,
    freq_scale: f32,
    _pad0: u32,
    _pad1: u32,
}

// sin and cos to ~1e-7 whatever the driver's (Cody-Waite reduction by pi/2 in three parts, then
// minimax polynomials on [-pi/4, pi/4]).
fn sincos_precise(x: f32) -> vec2<f32> {
    let q = round(x * 0.63661977236758134);
    let r = ((x - q * 1.5703125) - q * 4.837512969970703125e-4) - q * 7.54978995489188216e-8;
    let r2 = r * r;
    let sp = r + r * r2 * (-1.6666654611e-1 + r2 * (8.3321608736e-3 + r2 * -1.9515295891e-4));
    let cp = 1.0 - 0.5 * r2 + r2 * r2 * (4.166664568298827e-2 + r2 * (-1.388731625493765e-3 + r2 * 2.443315711809948e-5));
    let k = i32(q) & 3;
    var s = sp; var c = cp;
    if (k == 1) { s = cp; c = -sp; }
    if (k == 2) { s = -sp; c = -cp; }
    if (k == 3) { s = -cp; c = sp; }
    return vec2<f32>(s, c);
}

// (sin, cos) of pair i's angle at position pos.
fn rope_sincos(r: Rope, pos: u32, i: u32) -> vec2<f32> {
    let inv_freq = 1.0 / pow(r.theta, f32(2u * i) / f32(r.denom)) * r.freq_scale;
    return sincos_precise(f32(pos) * inv_freq);
}

// Dimension o of a head: (its pair, the pair's other dimension, 1 if o is the pair's second).
// A pair ≥ pairs is not turned (its other dimension is then not to be read).
fn rope_pair(r: Rope, o: u32) -> vec3<u32> {
    if (r.style == 1u) {
        return vec3<u32>(o / 2u, o ^ 1u, o & 1u);
    }
    if (o < r.half) {
        return vec3<u32>(o, o + r.half, 0u);
    }
    if (o < 2u * r.half) {
        return vec3<u32>(o - r.half, o - r.half, 1u);
    }
    return vec3<u32>(r.pairs, o, 0u);
}

// The pair (x0, x1) turned by the angle whose (sin, cos) is sc.
fn rope_turn(x0: f32, x1: f32, sc: vec2<f32>) -> vec2<f32> {
    return vec2<f32>(x0 * sc.y - x1 * sc.x, x0 * sc.x + x1 * sc.y);
}
