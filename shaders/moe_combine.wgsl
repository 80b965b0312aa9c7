// x[r, c] += Σ_slot weight(r, slot) · y[r·k + slot, c]: the experts' outputs of each position,
// weighted by the router (moe_route.wgsl) and added to the residual stream (or, with
// `overwrite`, written in place of x); x's rows counted from row `x_row`. One invocation per
// element of x; the slots are summed in order, so the result does not depend on scheduling.

struct Params {
    rows: u32,
    dim: u32,
    k: u32,
    overwrite: u32,
    x_row: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> route: array<u32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.rows * p.dim) {
        return;
    }
    let r = i / p.dim;
    let c = i % p.dim;
    var s = 0.0;
    for (var j = 0u; j < p.k; j = j + 1u) {
        let pair = r * p.k + j;
        s = s + bitcast<f32>(route[p.rows * p.k + pair]) * y[pair * p.dim + c];
    }
    let xi = i + p.x_row * p.dim;
    if (p.overwrite != 0u) {
        x[xi] = s;
    } else {
        x[xi] = x[xi] + s;
    }
}
