// dst[dst_offset + i] = f16(src[i]) for i < n: a pass's new K or V rows (computed in f32, with
// bias, QK-norm and RoPE applied) stored into the layer's half-precision K/V at their canvas
// positions. Only sessions that keep K/V in f16 run it (adapters with shader-f16); the
// attention kernels read those through `kv_t`. One invocation per value.

enable f16;

struct Params {
    n: u32,
    dst_offset: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f16>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i < p.n) {
        dst[p.dst_offset + i] = f16(src[i]);
    }
}
