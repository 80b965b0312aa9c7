// out[r, :] = scale · (acc · out[r, :] + x[r, :] / sqrt(mean(x[r, :]²) + eps) · w), acc = 0 or 1:
// a plain RMSNorm (acc 0, scale 1), or one added to a residual stream and the sum scaled
// (Gemma 4's sandwich norms and layer scalar). x's rows are counted from row `x_row` (a pass's
// last layer and final norm read the predicted rows alone). One workgroup of WG invocations per
// row. `out` holds `out_t` (the host's alias: f32, or f16 for a cooperative-matrix matmul's
// input).

struct Params {
    rows: u32,
    dim: u32,
    eps: f32,
    accumulate: u32,
    scale: f32,
    x_row: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<out_t>;

// Invocations a row's workgroup has; the host makes it 8 on CPU adapters (`Gpu::row_workgroup`).
const WG: u32 = 256u;

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = wg.x;
    let t = lid.x;
    let base = r * p.dim;
    let xb = (r + p.x_row) * p.dim;
    var s = 0.0;
    for (var i = t; i < p.dim; i = i + WG) {
        let v = x[xb + i];
        s = s + v * v;
    }
    partial[t] = s;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (t < stride) {
            partial[t] = partial[t] + partial[t + stride];
        }
        workgroupBarrier();
    }
    let inv = 1.0 / sqrt(partial[0] / f32(p.dim) + p.eps);
    for (var i = t; i < p.dim; i = i + WG) {
        var prior = 0.0;
        if (p.accumulate != 0u) {
            prior = f32(out[base + i]);
        }
        out[base + i] = out_t_of(p.scale * (prior + x[xb + i] * inv * w[i]));
    }
}
