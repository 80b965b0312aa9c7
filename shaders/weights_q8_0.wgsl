// Weight reader for GGUF Q8_0: blocks of 32 values = f16 scale + 32 × i8 (34 bytes, so blocks
// are not word aligned: bytes are extracted from u32 words).
// load_w: one value; load_w4: values (row, col .. col + 3) with col a multiple of 4; load_w8:
// (row, col .. col + 7) with col a multiple of 8, one scale read for all 8.

// Blocks start at even bytes, so the f16 scale never straddles a word: one read.
fn q8_scale(base: u32) -> f32 {
    return unpack2x16float(w[base / 4u] >> ((base % 4u) * 8u)).x;
}

fn q8_unpack(b: u32) -> vec4<f32> {
    return vec4<f32>(vec4<i32>(bitcast<i32>(b << 24u), bitcast<i32>(b << 16u), bitcast<i32>(b << 8u), bitcast<i32>(b)) >> vec4<u32>(24u));
}

fn load_w(row: u32, col: u32, row_len: u32) -> f32 {
    let base = (row * (row_len / 32u) + col / 32u) * 34u;
    let q = bitcast<i32>(w_byte(base + 2u + col % 32u) << 24u) >> 24u;
    return f32(q) * q8_scale(base);
}

fn load_w4(row: u32, col: u32, row_len: u32) -> vec4<f32> {
    let base = (row * (row_len / 32u) + col / 32u) * 34u;
    let b = w_bytes4(base + 2u + col % 32u);
    let q = vec4<i32>(bitcast<i32>(b << 24u), bitcast<i32>(b << 16u), bitcast<i32>(b << 8u), bitcast<i32>(b)) >> vec4<u32>(24u);
    return vec4<f32>(q) * q8_scale(base);
}

fn load_w8(row: u32, col: u32, row_len: u32) -> mat2x4<f32> {
    let base = (row * (row_len / 32u) + col / 32u) * 34u;
    let o = base + 2u + col % 32u;
    let s = q8_scale(base);
    return mat2x4<f32>(q8_unpack(w_bytes4(o)) * s, q8_unpack(w_bytes4(o + 4u)) * s);
}
