// Softmax of each row of `x` · scale ([rows, n]) in place, in f32 (scale = 1/temperature): one
// workgroup of WG invocations per row (the max, then the sum of exponentials, each a workgroup
// reduction).

struct Params {
    rows: u32,
    n: u32,
    scale: f32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;

// Invocations a row's workgroup has; the host makes it 8 on CPU adapters (`Gpu::row_workgroup`).
const WG: u32 = 256u;

var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = wg.x + wg.y * nwg.x;
    let t = lid.x;
    let live = r < p.rows;
    let base = min(r, p.rows - 1u) * p.n;
    var m = -3.0e38;
    for (var i = t; i < p.n; i = i + WG) {
        m = max(m, x[base + i] * p.scale);
    }
    red[t] = m;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        if (t < s) {
            red[t] = max(red[t], red[t + s]);
        }
        workgroupBarrier();
    }
    let mx = red[0];
    workgroupBarrier();
    var sum = 0.0;
    for (var i = t; i < p.n; i = i + WG) {
        sum = sum + exp(x[base + i] * p.scale - mx);
    }
    red[t] = sum;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        if (t < s) {
            red[t] = red[t] + red[t + s];
        }
        workgroupBarrier();
    }
    let total = red[0];
    if (live) {
        for (var i = t; i < p.n; i = i + WG) {
            x[base + i] = exp(x[base + i] * p.scale - mx) / total;
        }
    }
}
