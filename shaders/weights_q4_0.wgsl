// Weight reader for GGUF Q4_0: blocks of 32 values = f16 scale + 16 bytes of nibbles (18 bytes);
// low nibbles are elements 0..15, high nibbles 16..31; value = (nibble - 8) · scale.
@group(0) @binding(1) var<storage, read> w: array<u32>;

fn w_byte(offset: u32) -> u32 {
    return (w[offset / 4u] >> ((offset % 4u) * 8u)) & 0xffu;
}

fn load_w(row: u32, col: u32, row_len: u32) -> f32 {
    let block = row * (row_len / 32u) + col / 32u;
    let base = block * 18u;
    let scale = unpack2x16float(w_byte(base) | (w_byte(base + 1u) << 8u)).x;
    let j = col % 32u;
    let byte = w_byte(base + 2u + j % 16u);
    let nibble = select(byte & 0xfu, byte >> 4u, j >= 16u);
    return (f32(nibble) - 8.0) * scale;
}
