// Weight reader for BF16 matrices, two per u32 word: a bf16 is the top half of an f32.
// load_w: one value; load_w4: values (row, col .. col + 3), all inside the row.

fn bf16_pair(word: u32) -> vec2<f32> {
    return vec2<f32>(bitcast<f32>(word << 16u), bitcast<f32>(word & 0xffff0000u));
}

fn load_w(row: u32, col: u32, row_len: u32) -> f32 {
    let i = row * row_len + col;
    return bf16_pair(w[i / 2u])[i % 2u];
}

fn load_w4(row: u32, col: u32, row_len: u32) -> vec4<f32> {
    let i = row * row_len + col;
    if (i % 2u == 0u) {
        return vec4<f32>(bf16_pair(w[i / 2u]), bf16_pair(w[i / 2u + 1u]));
    }
    let a = bf16_pair(w[i / 2u]);
    let b = bf16_pair(w[i / 2u + 1u]);
    let c = bf16_pair(w[i / 2u + 2u]);
    return vec4<f32>(a.y, b.x, b.y, c.x);
}

// load_w8: values (row, col .. col + 7), col a multiple of 8 (the subgroup matmul's slice).
fn load_w8(row: u32, col: u32, row_len: u32) -> mat2x4<f32> {
    return mat2x4<f32>(load_w4(row, col, row_len), load_w4(row, col + 4u, row_len));
}
