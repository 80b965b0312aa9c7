// Platform probe (`unmask bench --kernels probe`): f32 multiply-adds a second through wgpu, the
// ceiling of the matmuls on f32 ALUs. Every invocation runs eight independent vec4 chains
// a ← a·b + c (32 multiply-adds a round, none waiting on another) for p.rounds rounds, from
// a = invocation % 7 + chain, and writes the sum of its 32 lanes to out[i]. b and c come from
// the parameters so that no compiler folds the chains; with b = 0.5 every product is exact, so
// the CPU twin (`probe::fma_twin`) gets the same sums whether the GPU fuses or rounds twice.

struct Params {
    rounds: u32,
    b: f32,
    c: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let a0 = f32(gid.x % 7u);
    var c0 = vec4<f32>(a0, a0 + 1.0, a0 + 2.0, a0 + 3.0);
    var c1 = c0 + 4.0;
    var c2 = c0 + 8.0;
    var c3 = c0 + 12.0;
    var c4 = c0 + 16.0;
    var c5 = c0 + 20.0;
    var c6 = c0 + 24.0;
    var c7 = c0 + 28.0;
    let b = vec4<f32>(p.b);
    let c = vec4<f32>(p.c);
    for (var j = 0u; j < p.rounds; j = j + 1u) {
        c0 = fma(c0, b, c);
        c1 = fma(c1, b, c);
        c2 = fma(c2, b, c);
        c3 = fma(c3, b, c);
        c4 = fma(c4, b, c);
        c5 = fma(c5, b, c);
        c6 = fma(c6, b, c);
        c7 = fma(c7, b, c);
    }
    let s = (c0 + c1) + (c2 + c3) + ((c4 + c5) + (c6 + c7));
    out[gid.x] = (s.x + s.y) + (s.z + s.w);
}
