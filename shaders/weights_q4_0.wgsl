// Weight reader for GGUF Q4_0: blocks of 32 values = f16 scale + 16 bytes of nibbles (18 bytes);
// low nibbles are elements 0..15, high nibbles 16..31; value = (nibble - 8) · scale.
// load_w: one value; load_w4: values (row, col .. col + 3) with col a multiple of 4; load_w8:
// (row, col .. col + 7) with col a multiple of 8, one scale read for all 8.

// Blocks start at even bytes, so the f16 scale never straddles a word: one read.
fn q4_scale(base: u32) -> f32 {
    return unpack2x16float(w[base / 4u] >> ((base % 4u) * 8u)).x;
}

fn load_w(row: u32, col: u32, row_len: u32) -> f32 {
    let base = (row * (row_len / 32u) + col / 32u) * 18u;
    let j = col % 32u;
    let byte = w_byte(base + 2u + j % 16u);
    let nibble = select(byte & 0xfu, byte >> 4u, j >= 16u);
    return (f32(nibble) - 8.0) * q4_scale(base);
}

fn load_w4(row: u32, col: u32, row_len: u32) -> vec4<f32> {
    let base = (row * (row_len / 32u) + col / 32u) * 18u;
    let j = col % 32u;
    let b = w_bytes4(base + 2u + j % 16u) >> select(0u, 4u, j >= 16u);
    let n = vec4<u32>(b, b >> 8u, b >> 16u, b >> 24u) & vec4<u32>(0xfu);
    return (vec4<f32>(n) - 8.0) * q4_scale(base);
}

fn load_w8(row: u32, col: u32, row_len: u32) -> mat2x4<f32> {
    let base = (row * (row_len / 32u) + col / 32u) * 18u;
    let j = col % 32u;
    let o = base + 2u + j % 16u;
    let shift = select(0u, 4u, j >= 16u);
    let b0 = w_bytes4(o) >> shift;
    let b1 = w_bytes4(o + 4u) >> shift;
    let s = q4_scale(base);
    let n0 = vec4<u32>(b0, b0 >> 8u, b0 >> 16u, b0 >> 24u) & vec4<u32>(0xfu);
    let n1 = vec4<u32>(b1, b1 >> 8u, b1 >> 16u, b1 >> 24u) & vec4<u32>(0xfu);
    return mat2x4<f32>((vec4<f32>(n0) - 8.0) * s, (vec4<f32>(n1) - 8.0) * s);
}
