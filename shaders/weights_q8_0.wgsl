// Weight reader for GGUF Q8_0: blocks of 32 values = f16 scale + 32 × i8 (34 bytes, so blocks
// are not word aligned: bytes are extracted from u32 words).
@group(0) @binding(1) var<storage, read> w: array<u32>;

fn w_byte(offset: u32) -> u32 {
    return (w[offset / 4u] >> ((offset % 4u) * 8u)) & 0xffu;
}

fn load_w(row: u32, col: u32, row_len: u32) -> f32 {
    let block = row * (row_len / 32u) + col / 32u;
    let base = block * 34u;
    let scale = unpack2x16float(w_byte(base) | (w_byte(base + 1u) << 8u)).x;
    let q = bitcast<i32>(w_byte(base + 2u + col % 32u) << 24u) >> 24u;
    return f32(q) * scale;
}
