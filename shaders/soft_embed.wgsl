// The soft embedding of probability rows (DiffusionGemma's self-conditioning input):
// out[out_row0 + m, c] (+)= scale · Σ_v probs[m, row0 + v] · E[v, c] over the rows row0 .. row0 + rows of
// the embedding table held by this chunk (`load_w` comes from the weights_*.wgsl file
// prepended to this one); the first chunk writes, the others accumulate. One invocation per
// output element.

struct Params {
    m: u32,
    dim: u32,
    row0: u32,
    rows: u32,
    vocab: u32,
    scale: f32,
    accumulate: u32,
    out_row0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> probs: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.m * p.dim) {
        return;
    }
    let m = i / p.dim;
    let c = i % p.dim;
    let pr = m * p.vocab + p.row0;
    var acc = 0.0;
    for (var v = 0u; v < p.rows; v = v + 1u) {
        acc = acc + probs[pr + v] * load_w(v, c, p.dim);
    }
    acc = acc * p.scale;
    let o = i + p.out_row0 * p.dim;
    if (p.accumulate == 1u) {
        acc = acc + out[o];
    }
    out[o] = acc;
}
