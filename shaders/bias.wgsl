// y[row0 + r, c] += b[c] for r < rows, c < dim: a projection's bias (Qwen2's q/k/v), added in
// place after the matmul. One invocation per element.

struct Params {
    rows: u32,
    dim: u32,
    row0: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.rows * p.dim) {
        return;
    }
    let idx = p.row0 * p.dim + i;
    y[idx] = y[idx] + b[i % p.dim];
}
