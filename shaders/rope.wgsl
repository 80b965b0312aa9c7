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
    let s = sin(angle);
    let c = cos(angle);
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
