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
