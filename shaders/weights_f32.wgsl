// Weight reader for F32 matrices (stored as u32 words). Prepended to matmul.wgsl / embed.wgsl.
@group(0) @binding(1) var<storage, read> w: array<u32>;

fn load_w(row: u32, col: u32, row_len: u32) -> f32 {
    return bitcast<f32>(w[row * row_len + col]);
}
