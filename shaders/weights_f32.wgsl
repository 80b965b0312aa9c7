// Weight reader for F32 matrices (stored as u32 words). Prepended to matmul.wgsl / embed.wgsl.
// load_w: one value; load_w4: values (row, col .. col + 3), all inside the row.

fn load_w(row: u32, col: u32, row_len: u32) -> f32 {
    return bitcast<f32>(w[row * row_len + col]);
}

fn load_w4(row: u32, col: u32, row_len: u32) -> vec4<f32> {
    let i = row * row_len + col;
    return bitcast<vec4<f32>>(vec4<u32>(w[i], w[i + 1u], w[i + 2u], w[i + 3u]));
}

// load_w8: values (row, col .. col + 7), col a multiple of 8 (the subgroup matmul's slice).
fn load_w8(row: u32, col: u32, row_len: u32) -> mat2x4<f32> {
    return mat2x4<f32>(load_w4(row, col, row_len), load_w4(row, col + 4u, row_len));
}
