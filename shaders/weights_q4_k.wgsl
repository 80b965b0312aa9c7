// Weight reader for GGUF Q4_K: super-blocks of 256 values, 144 bytes each: f16 d, f16 dmin,
// 12 bytes packing eight 6-bit (scale, min) pairs, then 128 bytes of nibbles. Each 64-value
// chunk c uses 32 bytes: low nibbles are sub-block 2c, high nibbles sub-block 2c + 1.
// value = d·scale·q − dmin·min.
// load_w: one value; load_w4: values (row, col .. col + 3) with col a multiple of 4.

// (d·scale, dmin·min) of sub-block `sb` of the super-block at byte `base`.
fn q4k_scale_min(base: u32, sb: u32) -> vec2<f32> {
    let dm = unpack2x16float(w[base / 4u]);
    var sc: u32;
    var mn: u32;
    if (sb < 4u) {
        sc = w_byte(base + 4u + sb) & 63u;
        mn = w_byte(base + 8u + sb) & 63u;
    } else {
        sc = (w_byte(base + 8u + sb) & 0xfu) | ((w_byte(base + sb) >> 6u) << 4u);
        mn = (w_byte(base + 8u + sb) >> 4u) | ((w_byte(base + 4u + sb) >> 6u) << 4u);
    }
    return vec2<f32>(dm.x * f32(sc), dm.y * f32(mn));
}

fn load_w(row: u32, col: u32, row_len: u32) -> f32 {
    let base = (row * (row_len / 256u) + col / 256u) * 144u;
    let j = col % 256u;
    let c = j / 64u;
    let half = (j % 64u) / 32u;
    let q = (w_byte(base + 16u + c * 32u + j % 32u) >> (4u * half)) & 0xfu;
    let s = q4k_scale_min(base, 2u * c + half);
    return s.x * f32(q) - s.y;
}

fn load_w4(row: u32, col: u32, row_len: u32) -> vec4<f32> {
    let base = (row * (row_len / 256u) + col / 256u) * 144u;
    let j = col % 256u;
    let c = j / 64u;
    let half = (j % 64u) / 32u;
    let b = w[(base + 16u + c * 32u + j % 32u) / 4u] >> (4u * half);
    let q = vec4<u32>(b, b >> 8u, b >> 16u, b >> 24u) & vec4<u32>(0xfu);
    let s = q4k_scale_min(base, 2u * c + half);
    return s.x * vec4<f32>(q) - s.y;
}

// load_w8: values (row, col .. col + 7), col a multiple of 8 (the subgroup matmul's slice).
fn load_w8(row: u32, col: u32, row_len: u32) -> mat2x4<f32> {
    return mat2x4<f32>(load_w4(row, col, row_len), load_w4(row, col + 4u, row_len));
}
