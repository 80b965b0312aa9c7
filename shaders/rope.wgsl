// Rotary position embedding, in place on rows row0 .. row0 + rows of a [*, n_heads · head_dim]
// buffer; positions[r] is the position of row row0 + r. One invocation per turned pair; the
// pairs, their angles and the styles: rope_common.wgsl (prepended by the host), which the
// matmul stores that turn Q and K as they write them share.

struct Params {
    rows: u32,
    n_heads: u32,
    row0: u32,
    _pad0: u32,
    rope: Rope,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> positions: array<u32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = gid.x + gid.y * nwg.x * 256u;
    let pairs = p.rope.pairs;
    if (idx >= p.rows * p.n_heads * pairs) {
        return;
    }
    let i = idx % pairs;
    let h = (idx / pairs) % p.n_heads;
    let r = idx / (pairs * p.n_heads);
    let d = p.rope.head_dim;
    let base = (p.row0 + r) * p.n_heads * d + h * d;
    var a = base + i;
    var b = base + i + p.rope.half;
    if (p.rope.style == 1u) {
        a = base + 2u * i;
        b = a + 1u;
    }
    let t = rope_turn(x[a], x[b], rope_sincos(p.rope, positions[r], i));
    x[a] = t.x;
    x[b] = t.y;
}
