// Platform probe (`unmask bench --kernels probe`): how fast this adapter streams memory through
// wgpu, the ceiling a bandwidth-bound kernel is measured against. Invocation i of n sums the
// words i, i + n, i + 2n, … (p.rounds of them, 16 bytes each: neighbouring invocations read
// neighbouring words) and writes its sum to out[i], a checksum its CPU twin recomputes
// (`probe::read_twin`). With p.rounds 0 it reads nothing: one dispatch's own cost.

struct Params {
    rounds: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let n = groups.x * 256u;
    var s = vec4<u32>(0u);
    for (var j = 0u; j < p.rounds; j = j + 1u) {
        s = s + src[gid.x + j * n];
    }
    out[gid.x] = s.x + s.y + s.z + s.w;
}
