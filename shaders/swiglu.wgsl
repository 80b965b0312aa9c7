// gate[i] = act(gate[i]) · up[i], in place: the gated MLP's activation. act 0 = SiLU (SwiGLU:
// LLaDA, Qwen, Ling), 1 = GELU with the tanh approximation (GeGLU: Gemma's
// `gelu_pytorch_tanh`, 0.5 x (1 + tanh(√(2/π)(x + 0.044715 x³)))).

struct Params {
    n: u32,
    act: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> up: array<f32>;
@group(0) @binding(2) var<storage, read_write> gate: array<f32>;

// tanh that stays finite for any input (|x| > 15 is ±1 in f32 anyway).
fn tanh_safe(x: f32) -> f32 {
    return tanh(clamp(x, -15.0, 15.0));
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) {
        return;
    }
    let g = gate[i];
    var a: f32;
    if (p.act == 1u) {
        a = 0.5 * g * (1.0 + tanh_safe(0.7978845608 * (g + 0.044715 * g * g * g)));
    } else {
        a = g / (1.0 + exp(-g));
    }
    gate[i] = a * up[i];
}
