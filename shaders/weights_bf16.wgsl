// Weight reader for BF16 matrices, two per u32 word: a bf16 is the top half of an f32.
@group(0) @binding(1) var<storage, read> w: array<u32>;

fn load_w(row: u32, col: u32, row_len: u32) -> f32 {
    let i = row * row_len + col;
    let word = w[i / 2u];
    let bits = select(word << 16u, word & 0xffff0000u, (i % 2u) == 1u);
    return bitcast<f32>(bits);
}
