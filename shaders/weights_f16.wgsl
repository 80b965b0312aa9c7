// Weight reader for F16 matrices, two halves packed per u32 word (no shader-f16 needed).
@group(0) @binding(1) var<storage, read> w: array<u32>;

fn load_w(row: u32, col: u32, row_len: u32) -> f32 {
    let i = row * row_len + col;
    return unpack2x16float(w[i / 2u])[i % 2u];
}
