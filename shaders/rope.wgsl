// Rotary position embedding, in place on rows row0 .. row0 + rows of a [*, n_heads · head_dim]
// buffer; positions[r] is the position of row row0 + r. Only the first `rot` dimensions of each
// head turn (all unless the model has partial RoPE); frequencies are over `rot`. Style 0 = NeoX
// (pairs (i, i + rot/2)), 1 = interleaved (pairs (2i, 2i + 1)). One invocation per rotated pair.

struct Params {
    rows: u32,
    n_heads: u32,
    head_dim: u32,
    style: u32,
    theta: f32,
    row0: u32,
    rot: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> positions: array<u32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let half = p.rot / 2u;
    let idx = gid.x + gid.y * nwg.x * 256u;
    if (idx >= p.rows * p.n_heads * half) {
        return;
    }
    let i = idx % half;
    let h = (idx / half) % p.n_heads;
    let r = idx / (half * p.n_heads);
    let base = (p.row0 + r) * p.n_heads * p.head_dim + h * p.head_dim;
    let inv_freq = 1.0 / pow(p.theta, f32(2u * i) / f32(p.rot));
    let angle = f32(positions[r]) * inv_freq;
    let s = sin(angle);
    let c = cos(angle);
    var a = base + i;
    var b = base + i + half;
    if (p.style == 1u) {
        a = base + 2u * i;
        b = a + 1u;
    }
    let x0 = x[a];
    let x1 = x[b];
    x[a] = x0 * c - x1 * s;
    x[b] = x0 * s + x1 * c;
}
