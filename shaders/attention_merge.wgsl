// Combines the key slices of split-K attention (attention_split_out.wgsl): one invocation per
// (query row, head, dimension). With M = max_z m_z and w_z = e^(m_z − M):
// out = Σ_z w_z·acc_z / Σ_z w_z·l_z, the softmax over all the row's keys. Slices that saw none
// of the row's keys have l = 0 and weigh nothing; a row with no keys at all gets 0. `out` holds
// `out_t` (the host's alias: f32, or f16 for a cooperative-matrix matmul's input).

struct Params {
    lq: u32,
    n_heads: u32,
    head_dim: u32,
    splits: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> part: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<out_t>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    let d = p.head_dim;
    if (i >= p.lq * p.n_heads * d) {
        return;
    }
    let dim = i % d;
    let w = d + 2u;
    let first = (i / d) * w; // this (row, head)'s record in slice 0
    let stride = p.lq * p.n_heads * w;
    var mx = -3.0e38;
    for (var z = 0u; z < p.splits; z = z + 1u) {
        mx = max(mx, part[z * stride + first]);
    }
    var l = 0.0;
    var acc = 0.0;
    for (var z = 0u; z < p.splits; z = z + 1u) {
        let r = z * stride + first;
        let wz = exp(part[r] - mx);
        l = l + wz * part[r + 1u];
        acc = acc + wz * part[r + 2u + dim];
    }
    out[i] = out_t_of(select(0.0, acc / l, l > 0.0));
}
