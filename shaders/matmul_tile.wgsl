// The f32 register tile that matmul.wgsl and moe_matmul_tiled.wgsl share: 16-deep slices of 64
// activation rows and 64 weight rows staged in workgroup memory (transposed, as vec4 of 4 rows),
// and each invocation's 4×4 block of multiply-adds over a staged slice. The host prepends it.

const TILE: u32 = 64u;
const TK: u32 = 16u;

// xs[c * 16 + r / 4][r % 4] = x[row0 + r, k0 + c]; ws likewise for W rows.
var<workgroup> xs: array<vec4<f32>, 256>;
var<workgroup> ws: array<vec4<f32>, 256>;

// Stages k (c .. c + 3) of tile row r of x (v) or of W.
fn stage_x(r: u32, c: u32, v: vec4<f32>) {
    for (var i = 0u; i < 4u; i = i + 1u) {
        xs[(c + i) * 16u + r / 4u][r % 4u] = v[i];
    }
}

fn stage_w(r: u32, c: u32, v: vec4<f32>) {
    for (var i = 0u; i < 4u; i = i + 1u) {
        ws[(c + i) * 16u + r / 4u][r % 4u] = v[i];
    }
}

// acc_i += x row 4·ly + i times W rows 4·lx .. 4·lx + 3, over the staged slice.
fn tile_mac(ly: u32, lx: u32, acc0: ptr<function, vec4<f32>>, acc1: ptr<function, vec4<f32>>, acc2: ptr<function, vec4<f32>>,
            acc3: ptr<function, vec4<f32>>) {
    for (var c = 0u; c < TK; c = c + 1u) {
        let a = xs[c * 16u + ly];
        let b = ws[c * 16u + lx];
        *acc0 = *acc0 + a.x * b;
        *acc1 = *acc1 + a.y * b;
        *acc2 = *acc2 + a.z * b;
        *acc3 = *acc3 + a.w * b;
    }
}
