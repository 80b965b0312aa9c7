// Platform probe (`unmask bench --kernels probe`): workgroup-memory reads a second through wgpu,
// the ceiling of the kernels that multiply out of staged tiles (matmul.wgsl's register tile,
// attention_tiles.wgsl). A 256-wide workgroup fills 1024 vec4<u32> of workgroup memory (word e
// holds e, e + 1, e + 2, e + 3), then each invocation runs p.rounds rounds of four independent
// 16-byte reads (neighbouring invocations read neighbouring words, so no two lanes of a round
// share a memory bank's row), summing them, and writes its wrapping sum to out[i]; the CPU twin
// (`probe::shared_twin`) recomputes it.

struct Params {
    rounds: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;

var<workgroup> tile: array<vec4<u32>, 1024>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
    for (var e = tid; e < 1024u; e = e + 256u) {
        tile[e] = vec4<u32>(e, e + 1u, e + 2u, e + 3u);
    }
    workgroupBarrier();
    var s0 = vec4<u32>(0u);
    var s1 = vec4<u32>(0u);
    var s2 = vec4<u32>(0u);
    var s3 = vec4<u32>(0u);
    for (var j = 0u; j < p.rounds; j = j + 1u) {
        let i = tid + j;
        s0 = s0 + tile[i % 1024u];
        s1 = s1 + tile[(i + 256u) % 1024u];
        s2 = s2 + tile[(i + 512u) % 1024u];
        s3 = s3 + tile[(i + 768u) % 1024u];
    }
    let s = (s0 + s1) + (s2 + s3);
    out[gid.x] = s.x + s.y + s.z + s.w;
}
