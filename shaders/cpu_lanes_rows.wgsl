// What the CPU-lanes matmuls (matmul_cpu_lanes.wgsl, moe_matmul.wgsl) share: a lane's 8 weights
// of a slice of k (8 columns), and the slice's product of 16 x rows with them, added to the rows'
// sums. Each kernel declares `x`, `x4` and `w4` (x's and the weights' buffers again, read as
// vec4s) and the overrides `X4` and `WIDE`; the host adds this file to both.
// The 16 rows' offsets and sums are four vec4s (`Rows16`, a mat4x4), not arrays: lavapipe keeps a
// private array indexed in a loop in memory (a per-lane gather at every read), vector components
// with constant indices in registers. The kernels' main loops take whole slices of 8 and the
// partial last slice has a loop of its own: lavapipe runs both sides of an `if` (masked), so the
// edge's per-value reads would otherwise run on every slice.
// Two ways to read a slice's x, both handing every lane all 128 values by `subgroupBroadcast`
// (an extract and a splat, no memory): `add_slice`, one value a lane a row, for rows anywhere;
// `add_slice4`, one vec4 a lane for four rows, where every row starts at a multiple of 4 (X4).
// lavapipe reads memory one lane at a time, all of a load's components in that lane's turn, so a
// vec4 load costs far less than four scalar ones: about 1.3× faster matmuls. The same holds for
// the weights: `slice_w8` (cpu_lanes_weights.wgsl, before this file) reads a lane's 8 weights in
// one or two vec4s.

// Where the block's 16 x rows start: row 4q + j at component j of q0 .. q3.
struct Rows16 {
    q0: vec4<u32>,
    q1: vec4<u32>,
    q2: vec4<u32>,
    q3: vec4<u32>,
}

// Σ over the slice's 8 columns of row `xi`'s x (lane j reads column kl of lane j) times this
// lane's 8 weights.
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

// acc + the slice's products, x read a value a lane a row; kl: the column this lane reads
// (column 4q + j of acc: row 4q + j).
fn add_slice(acc: mat4x4<f32>, xb: Rows16, kl: u32, w8: mat2x4<f32>) -> mat4x4<f32> {
    return acc + mat4x4<f32>(rows4(xb.q0, kl, w8), rows4(xb.q1, kl, w8), rows4(xb.q2, kl, w8), rows4(xb.q3, kl, w8));
}

// For add_slice4: lane j reads columns 4·(j % 2) .. + 3 of rows j / 2, 4 + j / 2, 8 + j / 2 and
// 12 + j / 2 of each slice; their vec4 indices in `x4` at k = 0.
fn lane_quads(xb: Rows16, lane: u32) -> vec4<u32> {
    let i = lane / 2u;
    return (vec4<u32>(xb.q0[i], xb.q1[i], xb.q2[i], xb.q3[i]) + 4u * (lane % 2u)) / 4u;
}

// The slice's products for four rows, from each lane's vec4 of one of them: row i's 8 values are
// lane 2i's and lane 2i + 1's.
fn quad_dots(v: vec4<f32>, w8: mat2x4<f32>) -> vec4<f32> {
    return vec4<f32>(
        dot(w8[0], subgroupBroadcast(v, 0u)) + dot(w8[1], subgroupBroadcast(v, 1u)),
        dot(w8[0], subgroupBroadcast(v, 2u)) + dot(w8[1], subgroupBroadcast(v, 3u)),
        dot(w8[0], subgroupBroadcast(v, 4u)) + dot(w8[1], subgroupBroadcast(v, 5u)),
        dot(w8[0], subgroupBroadcast(v, 6u)) + dot(w8[1], subgroupBroadcast(v, 7u)),
    );
}

// add_slice for rows that start at multiples of 4, the slice at column k0: four vec4 reads a
// lane (`quads`: lane_quads).
fn add_slice4(acc: mat4x4<f32>, quads: vec4<u32>, k0: u32, w8: mat2x4<f32>) -> mat4x4<f32> {
    let o = k0 / 4u;
    return acc + mat4x4<f32>(quad_dots(vec4<f32>(x4[quads.x + o]), w8), quad_dots(vec4<f32>(x4[quads.y + o]), w8),
                             quad_dots(vec4<f32>(x4[quads.z + o]), w8), quad_dots(vec4<f32>(x4[quads.w + o]), w8));
}

// The block's sums as an array (the kernels' stores index it by a loop variable: a copy, so that
// the sums themselves stay in registers).
fn sums16(acc: mat4x4<f32>) -> array<vec4<f32>, 4> {
    return array<vec4<f32>, 4>(acc[0], acc[1], acc[2], acc[3]);
}
