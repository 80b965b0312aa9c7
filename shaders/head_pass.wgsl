// The head pass: what Q, or K and V, of the families with QK-norms (or q/k biases added apart)
// go through between their projection and attention, in one launch where separate QK-norm,
// RoPE and K/V store passes took up to six (seven for DiffusionGemma). For pass rows r < rows
// of a [*, width] buffer: RMSNorm of each `dim`-long group (a head, or a whole row for a
// full-width norm) with weight w when `norm` is set, then RoPE at positions[r]; for K also V's
// rows, normed without a weight when `v_norm` is set (DiffusionGemma), else as they are. Rows
// are read from src_row0 + r and written to dst_row0 + r. The host prepends how they are read
// and written (`get_k`, `put_k`, `get_v`, `put_v`, `HAS_V`; `kernel_source::head_pass_io`):
// in place in f32, or from f32 rows into the half-precision K/V (WebGPU forbids a writable
// binding that aliases another). One 64-wide workgroup per (row, group); the sums of squares
// are added in two rounds of eight (CPU adapters pay dearly for each barrier of a tree); each
// invocation then takes whole slots of two dimensions (`slot_dims`), so no value is written by
// one invocation and read by another.

struct Params {
    rows: u32,
    width: u32,
    dim: u32,
    norm: u32,
    eps: f32,
    src_row0: u32,
    dst_row0: u32,
    v_norm: u32,
    rope: Rope,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> positions: array<u32>;

var<workgroup> partial: array<vec2<f32>, 64>;
var<workgroup> totals: array<vec2<f32>, 8>;

// Value i of Q or K (its offset o in the group) after the norm.
fn normed(i: u32, o: u32, inv: f32) -> f32 {
    if (p.norm == 1u) {
        return get_k(i) * inv * w[o];
    }
    return get_k(i);
}

// The two dimensions of a head that slot i < head_dim / 2 holds: RoPE's pair i where i < pairs
// (NeoX: i and i + half; interleaved: 2i and 2i + 1); past the pairs, two that stay as they are
// (NeoX: pair i's place when i < half, else 2i and 2i + 1, beyond the turned 2 · half).
fn slot_dims(i: u32) -> vec2<u32> {
    if (p.rope.style == 0u && i < p.rope.half) {
        return vec2<u32>(i, i + p.rope.half);
    }
    return vec2<u32>(2u * i, 2u * i + 1u);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let g = wg.x + wg.y * nwg.x;
    let per_row = p.width / p.dim;
    // Uniform per workgroup, so the barriers below are reached by all or none.
    if (g >= p.rows * per_row) {
        return;
    }
    let t = lid.x;
    let r = g / per_row;
    let col0 = (g % per_row) * p.dim;
    let src = (p.src_row0 + r) * p.width + col0;
    let dst = (p.dst_row0 + r) * p.width + col0;
    // Sums of squares of the group's K (x) and V (y) values.
    var s = vec2<f32>(0.0, 0.0);
    for (var o = t; o < p.dim; o = o + 64u) {
        let a = get_k(src + o);
        var b = 0.0;
        if (p.v_norm == 1u) {
            b = get_v(src + o);
        }
        s = s + vec2<f32>(a * a, b * b);
    }
    partial[t] = s;
    workgroupBarrier();
    // Two rounds of eight: 8 invocations add 8 partial sums each, then every one the 8 totals.
    if (t < 8u) {
        var q = vec2<f32>(0.0, 0.0);
        for (var i = 0u; i < 8u; i = i + 1u) {
            q = q + partial[8u * t + i];
        }
        totals[t] = q;
    }
    workgroupBarrier();
    var sum = vec2<f32>(0.0, 0.0);
    for (var i = 0u; i < 8u; i = i + 1u) {
        sum = sum + totals[i];
    }
    let inv = 1.0 / sqrt(sum / f32(p.dim) + p.eps);
    let d = p.rope.head_dim;
    let pos = positions[r];
    if (HAS_V) {
        for (var o = t; o < p.dim; o = o + 64u) {
            var b = get_v(src + o);
            if (p.v_norm == 1u) {
                b = b * inv.y;
            }
            put_v(dst + o, b);
        }
    }
    // Each invocation takes whole slots: a head's two dimensions that RoPE pairs, or two it
    // leaves (`slot_dims`).
    for (var j = t; j < p.dim / 2u; j = j + 64u) {
        let i = j % (d / 2u);
        let ab = j / (d / 2u) * d + slot_dims(i);
        var x = vec2<f32>(normed(src + ab.x, ab.x, inv.x), normed(src + ab.y, ab.y, inv.x));
        if (i < p.rope.pairs) {
            x = rope_turn(x.x, x.y, rope_sincos(p.rope, pos, i));
        }
        put_k(dst + ab.x, x.x);
        put_k(dst + ab.y, x.y);
    }
}
