// What the CPU-lanes matmuls (matmul_cpu_lanes.wgsl, moe_matmul.wgsl) share: the product of
// four x rows with a lane's 8 weights over one slice of k. Each kernel declares `x`; the host
// prepends this file after it.
// The kernels keep their 16 rows' offsets and sums in four vec4s, not arrays: lavapipe keeps a
// private array indexed in a loop in memory (a per-lane gather at every read), vector components
// with constant indices in registers. Their main loops take whole slices of 8 and the partial
// last slice has a loop of its own: lavapipe runs both sides of an `if` (masked), so the edge's
// per-value reads would otherwise run on every slice.

// Σ over the slice's 8 columns of row `xi`'s x (lane j reads column kl of lane j; the
// broadcasts hand all 8 to every lane) times this lane's 8 weights.
fn row_dot(xi: u32, kl: u32, w8: mat2x4<f32>) -> f32 {
    let xv = f32(x[xi + kl]);
    let a = vec4<f32>(subgroupBroadcast(xv, 0u), subgroupBroadcast(xv, 1u), subgroupBroadcast(xv, 2u), subgroupBroadcast(xv, 3u));
    let b = vec4<f32>(subgroupBroadcast(xv, 4u), subgroupBroadcast(xv, 5u), subgroupBroadcast(xv, 6u), subgroupBroadcast(xv, 7u));
    return dot(w8[0], a) + dot(w8[1], b);
}

// row_dot for the four rows starting at xb.x, xb.y, xb.z, xb.w.
fn rows4(xb: vec4<u32>, kl: u32, w8: mat2x4<f32>) -> vec4<f32> {
    return vec4<f32>(row_dot(xb.x, kl, w8), row_dot(xb.y, kl, w8), row_dot(xb.z, kl, w8), row_dot(xb.w, kl, w8));
}
