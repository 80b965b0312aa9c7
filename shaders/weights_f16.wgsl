// Weight reader for F16 matrices, two halves packed per u32 word (no shader-f16 needed).
// load_w: one value; load_w4: values (row, col .. col + 3), all inside the row.

fn load_w(row: u32, col: u32, row_len: u32) -> f32 {
    let i = row * row_len + col;
    return unpack2x16float(w[i / 2u])[i % 2u];
}

fn load_w4(row: u32, col: u32, row_len: u32) -> vec4<f32> {
    let i = row * row_len + col;
    if (i % 2u == 0u) {
        return vec4<f32>(unpack2x16float(w[i / 2u]), unpack2x16float(w[i / 2u + 1u]));
    }
    let a = unpack2x16float(w[i / 2u]);
    let b = unpack2x16float(w[i / 2u + 1u]);
    let c = unpack2x16float(w[i / 2u + 2u]);
    return vec4<f32>(a.y, b.x, b.y, c.x);
}

// load_w8: values (row, col .. col + 7), col a multiple of 8 (the subgroup matmul's slice).
fn load_w8(row: u32, col: u32, row_len: u32) -> mat2x4<f32> {
    return mat2x4<f32>(load_w4(row, col, row_len), load_w4(row, col + 4u, row_len));
}
