// Rotary position embedding, in place on rows row0 .. row0 + rows of a [*, n_heads · head_dim]
// buffer; positions[r] is the position of row row0 + r. Pair i (i < `pairs`) of each head turns
// at angle position · freq_scale / theta^(2i / denom); NeoX style (0) pairs dimensions (i, i +
// half), interleaved (1) pairs (2i, 2i + 1). Plain RoPE: pairs = half = head_dim/2, denom =
// head_dim. LLaDA 2's partial RoPE: the first `rot` dims, pairs = half = rot/2, denom = rot.
// DiffusionGemma's proportional RoPE: pairs < half = head_dim/2, denom = head_dim. One
// invocation per rotated pair; the other dimensions stay as they are.

struct Params {
    rows: u32,
    n_heads: u32,
    head_dim: u32,
    style: u32,
    theta: f32,
    row0: u32,
    pairs: u32,
    half: u32,
    denom: u32,
    freq_scale: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> positions: array<u32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;

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

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 256u;
    if (idx >= p.rows * p.n_heads * p.pairs) {
        return;
    }
    let i = idx % p.pairs;
    let h = (idx / p.pairs) % p.n_heads;
    let r = idx / (p.pairs * p.n_heads);
    let base = (p.row0 + r) * p.n_heads * p.head_dim + h * p.head_dim;
    let inv_freq = 1.0 / pow(p.theta, f32(2u * i) / f32(p.denom)) * p.freq_scale;
    let angle = f32(positions[r]) * inv_freq;
    let sc = sincos_precise(angle);
    let s = sc.x;
    let c = sc.y;
    var a = base + i;
    var b = base + i + p.half;
    if (p.style == 1u) {
        a = base + 2u * i;
        b = a + 1u;
    }
    let x0 = x[a];
    let x1 = x[b];
    x[a] = x0 * c - x1 * s;
    x[b] = x0 * s + x1 * c;
}
