// Weight reader for GGUF Q6_K: super-blocks of 256 values, 210 bytes each: 128 bytes of low
// nibbles (ql), 64 bytes of 2-bit high parts (qh), 16 i8 scales, f16 d. Each 128-value half h
// uses ql[64h ..], qh[32h ..], scales[8h ..]; its four 32-value groups g take
// ql[l + 32·(g % 2)] (low nibble for g < 2, high for g ≥ 2) and bits 2g..2g+1 of qh[l], with
// scale index l / 16 + 2g. value = d·scale·(q − 32). Blocks are not word aligned.
// load_w: one value; load_w4: values (row, col .. col + 3) with col a multiple of 4.

// d·scale of the group holding `col`, and the byte offsets/shifts of its ql and qh bytes.
struct Q6Pos {
    dsc: f32,
    ql: u32,
    ql_shift: u32,
    qh: u32,
    qh_shift: u32,
}

fn q6_pos(row: u32, col: u32, row_len: u32) -> Q6Pos {
    let base = (row * (row_len / 256u) + col / 256u) * 210u;
    let j = col % 256u;
    let h = j / 128u;
    let g = (j % 128u) / 32u;
    let l = j % 32u;
    let d = unpack2x16float(w_byte(base + 208u) | (w_byte(base + 209u) << 8u)).x;
    let sc = bitcast<i32>(w_byte(base + 192u + h * 8u + l / 16u + 2u * g) << 24u) >> 24u;
    return Q6Pos(d * f32(sc), base + h * 64u + l + 32u * (g % 2u), 4u * (g / 2u), base + 128u + h * 32u + l, 2u * g);
}

fn load_w(row: u32, col: u32, row_len: u32) -> f32 {
    let p = q6_pos(row, col, row_len);
    let q = ((w_byte(p.ql) >> p.ql_shift) & 0xfu) | (((w_byte(p.qh) >> p.qh_shift) & 3u) << 4u);
    return p.dsc * f32(i32(q) - 32);
}

fn load_w4(row: u32, col: u32, row_len: u32) -> vec4<f32> {
    let p = q6_pos(row, col, row_len);
    let lo = w_bytes4(p.ql) >> p.ql_shift;
    let hi = w_bytes4(p.qh) >> p.qh_shift;
    let q = (vec4<u32>(lo, lo >> 8u, lo >> 16u, lo >> 24u) & vec4<u32>(0xfu)) | ((vec4<u32>(hi, hi >> 8u, hi >> 16u, hi >> 24u) & vec4<u32>(3u)) << vec4<u32>(4u));
    return p.dsc * vec4<f32>(vec4<i32>(q) - vec4<i32>(32));
}

// load_w8: values (row, col .. col + 7), col a multiple of 8 (the subgroup matmul's slice).
fn load_w8(row: u32, col: u32, row_len: u32) -> mat2x4<f32> {
    return mat2x4<f32>(load_w4(row, col, row_len), load_w4(row, col + 4u, row_len));
}
