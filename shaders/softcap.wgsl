// Logit soft-capping, in place: x[i] = cap · tanh(x[i] / cap) (Gemma's final_logit_softcapping).

struct Params {
    n: u32,
    cap: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) {
        return;
    }
    x[i] = p.cap * tanh(clamp(x[i] / p.cap, -15.0, 15.0));
}
