// Classifier-free guidance on the GPU: cond[i] = uncond[i] + (scale + 1) · (cond[i] − uncond[i]),
// in place over n logits, so that guided steps select tokens on the GPU like unguided ones
// (no logits read back). `scale` is the guidance scale (LLaDA's cfg_scale).

struct Params {
    n: u32,
    scale: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> uncond: array<f32>;
@group(0) @binding(2) var<storage, read_write> cond: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) {
        return;
    }
    let u = uncond[i];
    cond[i] = u + (p.scale + 1.0) * (cond[i] - u);
}
