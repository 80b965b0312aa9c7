// out[m, :] = scale · E[tokens[m], :] for the tokens that fall in this chunk of the embedding table
// (rows row0 .. row0 + rows); `load_w` comes from the weights_*.wgsl file prepended to this one.
// One invocation per output element.

struct Params {
    m: u32,
    dim: u32,
    row0: u32,
    rows: u32,
    scale: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> tokens: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.m * p.dim) {
        return;
    }
    let m = i / p.dim;
    let c = i % p.dim;
    let t = tokens[m];
    if (t >= p.row0 && t < p.row0 + p.rows) {
        out[i] = p.scale * load_w(t - p.row0, c, p.dim);
    }
}
