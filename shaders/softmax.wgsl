// Softmax of each row of `x` · scale ([rows, n]) in place, in f32 (scale = 1/temperature): one 256-wide workgroup per row
// (the max, then the sum of exponentials, each a workgroup reduction).

struct Params {
    rows: u32,
    n: u32,
    scale: f32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;

var<workgroup> red: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = wg.x + wg.y * nwg.x;
    let t = lid.x;
    let live = r < p.rows;
    let base = min(r, p.rows - 1u) * p.n;
    var m = -3.0e38;
    for (var i = t; i < p.n; i = i + 256u) {
        m = max(m, x[base + i] * p.scale);
    }
    red[t] = m;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s >> 1u) {
        if (t < s) {
            red[t] = max(red[t], red[t + s]);
        }
        workgroupBarrier();
    }
    let mx = red[0];
    workgroupBarrier();
    var sum = 0.0;
    for (var i = t; i < p.n; i = i + 256u) {
        sum = sum + exp(x[base + i] * p.scale - mx);
    }
    red[t] = sum;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s >> 1u) {
        if (t < s) {
            red[t] = red[t] + red[t + s];
        }
        workgroupBarrier();
    }
    let total = red[0];
    if (live) {
        for (var i = t; i < p.n; i = i + 256u) {
            x[base + i] = exp(x[base + i] * p.scale - mx) / total;
        }
    }
}
