// QK-norm: x[g, :] = x[g, :] / sqrt(mean(x[g, :]²) + eps) · w for groups g0 .. g0 + groups of
// `dim` values, in place (a head of the queries or keys when dim = head_dim). Same maths as
// rmsnorm.wgsl, which cannot work in place (its input and output are separate bindings).
// One 64-wide workgroup per group; workgroups folded into 2-D for many groups.

struct Params {
    groups: u32,
    dim: u32,
    eps: f32,
    g0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;

var<workgroup> partial: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let g = wg.x + wg.y * nwg.x;
    // Uniform per workgroup, so the barriers below are reached by all or none.
    if (g >= p.groups) {
        return;
    }
    let t = lid.x;
    let base = (p.g0 + g) * p.dim;
    var s = 0.0;
    for (var i = t; i < p.dim; i = i + 64u) {
        let v = x[base + i];
        s = s + v * v;
    }
    partial[t] = s;
    workgroupBarrier();
    for (var stride = 32u; stride > 0u; stride = stride / 2u) {
        if (t < stride) {
            partial[t] = partial[t] + partial[t + stride];
        }
        workgroupBarrier();
    }
    let inv = 1.0 / sqrt(partial[0] / f32(p.dim) + p.eps);
    for (var i = t; i < p.dim; i = i + 64u) {
        x[base + i] = x[base + i] * inv * w[i];
    }
}
