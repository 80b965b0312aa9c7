// The weight matrix binding and byte access shared by every weights_*.wgsl reader (prepended
// before the reader, which is prepended before matmul.wgsl / embed.wgsl). GGUF blocks are not
// word aligned, so block readers extract bytes from u32 words.
@group(0) @binding(1) var<storage, read> w: array<u32>;

fn w_byte(offset: u32) -> u32 {
    return (w[offset / 4u] >> ((offset % 4u) * 8u)) & 0xffu;
}

// Four consecutive bytes starting at any byte offset, little-endian in one word.
fn w_bytes4(offset: u32) -> u32 {
    let s = (offset % 4u) * 8u;
    let lo = w[offset / 4u] >> s;
    if (s == 0u) {
        return lo;
    }
    return lo | (w[offset / 4u + 1u] << (32u - s));
}

// Eight consecutive weights of a row from column k, as `load_w8` (the reader's), with zeros past
// the row's end: the CPU-lanes kernels' slices of 8, the last of them partial.
fn load_w8_edge(row: u32, k: u32, row_len: u32) -> mat2x4<f32> {
    if (k + 8u <= row_len) {
        return load_w8(row, k, row_len);
    }
    var lo = vec4<f32>(0.0);
    var hi = vec4<f32>(0.0);
    for (var j = 0u; j < 4u; j = j + 1u) {
        if (k + j < row_len) {
            lo[j] = load_w(row, k + j, row_len);
        }
        if (k + 4u + j < row_len) {
            hi[j] = load_w(row, k + 4u + j, row_len);
        }
    }
    return mat2x4<f32>(lo, hi);
}
