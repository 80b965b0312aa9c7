// gate[i] = act(gate[i]) · up[i], in place: the gated MLP's activation (`glu_act`: glu.wgsl,
// prepended by the host). The dense MLPs fuse it into the up projection's epilogue instead
// (matmul.wgsl); the experts' grouped matmuls use this.

struct Params {
    n: u32,
    act: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> up: array<f32>;
@group(0) @binding(2) var<storage, read_write> gate: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) {
        return;
    }
    gate[i] = glu_act(gate[i], p.act) * up[i];
}
