// A lane's 8 weights of a slice of k for the CPU-lanes matmuls (matmul_cpu_lanes.wgsl,
// moe_matmul.wgsl), read a vec4 at a time from `w4` (the weights' buffer again, declared by each
// kernel) where the format allows, else by the format's reader (`load_w8`). The host prepends
// this file to cpu_lanes_rows.wgsl and picks the way by the override `WIDE`.
// lavapipe reads a storage load one lane at a time, all of the load's components in that lane's
// turn: a vec4 costs about what one word does. F32, F16 and BF16 rows that start 16 bytes aligned
// give a lane's 8 weights in one or two vec4s; a Q4_K super-block is nine vec4s, and its 8
// weights take two (the scalar reader's 16 word loads made Q4_K 1.4× slower than Q4_0 there).
// Q6_K's super-blocks (210 bytes) start at any even byte: its reader loads the two vec4s around
// each run of bytes it needs and picks them out by selects (6 loads for the scalar reader's 14;
// ~1.1× faster). Those runs end 18 bytes before the block does, so their vec4s lie whole in the
// binding even for a buffer's last block; a vec4 loaded but not used may lie past the end (its
// index is then clamped, harmlessly). Q4_0 and Q8_0 readers so made measured no faster than
// their 5 word loads (BENCHMARKS.md): they keep those.

// Word i (0..7) of the 32 bytes v0, v1, by selects on constant components (no vector indexed by
// a variable, which a compiler may take through memory).
fn word8(v0: vec4<u32>, v1: vec4<u32>, i: u32) -> u32 {
    let odd = (i & 1u) == 1u;
    let hi = (i & 2u) == 2u;
    let a = select(select(v0.x, v0.y, odd), select(v0.z, v0.w, odd), hi);
    let b = select(select(v1.x, v1.y, odd), select(v1.z, v1.w, odd), hi);
    return select(b, a, i < 4u);
}

// The 4 bytes from byte r (even, at most 28) of the 32 bytes v0, v1, little-endian in one word.
// Q6_K's super-blocks start at even bytes, so r % 4 is 0 or 2 (at 28, the next word is not used).
fn bytes4_at(v0: vec4<u32>, v1: vec4<u32>, r: u32) -> u32 {
    let i = r / 4u;
    let lo = word8(v0, v1, i);
    let hi = word8(v0, v1, i + 1u);
    return select((lo >> 16u) | (hi << 16u), lo, r % 4u == 0u);
}

// The four bytes of b as nibbles: the low ones (shift 0) or the high ones (shift 4).
fn nibbles4(b: u32, shift: u32) -> vec4<f32> {
    return vec4<f32>((vec4<u32>(b, b >> 8u, b >> 16u, b >> 24u) >> vec4<u32>(shift)) & vec4<u32>(0xfu));
}

// Q4_K (144-byte super-blocks, nine vec4s: f16 d and dmin, 12 bytes of 6-bit scales and mins,
// then 128 bytes of nibbles; chunk c of 64 values: its 32 bytes' low nibbles are sub-block 2c,
// high ones 2c + 1): the first vec4 holds every scale, one more the slice's 8 bytes.
// value = d·scale·q − dmin·min (weights_q4_k.wgsl's q4k_scale_min unpacks the same bytes).
fn slice_q4_k(row: u32, col: u32, row_len: u32) -> mat2x4<f32> {
    let b = (row * (row_len / 256u) + col / 256u) * 9u;
    let head = w4[b];
    let j = col % 256u;
    let c = j / 64u;
    let half = (j % 64u) / 32u;
    let q = w4[b + 1u + 2u * c + (j % 32u) / 16u];
    let q8 = select(q.zw, q.xy, j % 16u == 0u);
    // Sub-block sb's bytes: scale bytes 4 + sb (sb < 4) or 8 + sb and 4 + sb − 4's top bits.
    let sb = 2u * c + half;
    let shift = 8u * (sb % 4u);
    let y = head.y >> shift;
    let z = head.z >> shift;
    let t = head.w >> shift;
    let scale = select((t & 0xfu) | (((y >> 6u) & 3u) << 4u), y & 63u, sb < 4u);
    let mn = select(((t >> 4u) & 0xfu) | (((z >> 6u) & 3u) << 4u), z & 63u, sb < 4u);
    let dm = unpack2x16float(head.x) * vec2<f32>(f32(scale), f32(mn));
    return mat2x4<f32>(dm.x * nibbles4(q8.x, 4u * half) - dm.y, dm.x * nibbles4(q8.y, 4u * half) - dm.y);
}

// Q6_K (210-byte super-blocks: 128 bytes of low nibbles ql, 64 of 2-bit high parts qh, 16 i8
// scales, f16 d; weights_q6_k.wgsl's q6_pos says which bytes a column takes): the slice's 8 ql
// bytes and its 8 qh bytes, two vec4s each; the scale and d, a word of `w` each.
fn slice_q6_k(row: u32, col: u32, row_len: u32) -> mat2x4<f32> {
    let b = (row * (row_len / 256u) + col / 256u) * 210u;
    let j = col % 256u;
    let h = j / 128u;
    let g = (j % 128u) / 32u;
    let l = j % 32u;
    let ql = b + h * 64u + l + 32u * (g % 2u);
    let qh = b + 128u + h * 32u + l;
    let l0 = w4[ql / 16u];
    let l1 = w4[ql / 16u + 1u];
    let h0 = w4[qh / 16u];
    let h1 = w4[qh / 16u + 1u];
    let sc_at = b + 192u + h * 8u + l / 16u + 2u * g;
    let sc = bitcast<i32>(((w[sc_at / 4u] >> ((sc_at % 4u) * 8u)) & 0xffu) << 24u) >> 24u;
    let dsc = unpack2x16float(w[(b + 208u) / 4u] >> (((b + 208u) % 4u) * 8u)).x * f32(sc);
    let r = ql % 16u;
    let t = qh % 16u;
    let shifts = vec2<u32>(4u * (g / 2u), 2u * g);
    return mat2x4<f32>(dsc * q6_values(bytes4_at(l0, l1, r), bytes4_at(h0, h1, t), shifts),
                       dsc * q6_values(bytes4_at(l0, l1, r + 4u), bytes4_at(h0, h1, t + 4u), shifts));
}

// Four Q6_K values less 32 from four ql bytes and four qh bytes, and their shifts.
fn q6_values(lo: u32, hi: u32, shifts: vec2<u32>) -> vec4<f32> {
    let h = hi >> shifts.y;
    return nibbles4(lo, shifts.x) + 16.0 * vec4<f32>(vec4<u32>(h, h >> 8u, h >> 16u, h >> 24u) & vec4<u32>(3u)) - 32.0;
}

// This lane's 8 weights of row `row` from column `col` (a multiple of 8, the row's whole slice),
// by format code `WIDE` (the host's `pipeline_constants`): F32 two vec4s (1), F16 (2) and BF16
// (3) one, where every row starts 16 bytes aligned; Q4_K (4) and Q6_K (5) as above; 0 (Q4_0,
// Q8_0, or plain rows off the 16 bytes) the reader's load_w8.
fn slice_w8(row: u32, col: u32, row_len: u32) -> mat2x4<f32> {
    let i = row * row_len + col;
    if (WIDE == 1u) {
        return mat2x4<f32>(bitcast<vec4<f32>>(w4[i / 4u]), bitcast<vec4<f32>>(w4[i / 4u + 1u]));
    }
    if (WIDE == 2u) {
        let q = w4[i / 8u];
        return mat2x4<f32>(vec4<f32>(unpack2x16float(q.x), unpack2x16float(q.y)), vec4<f32>(unpack2x16float(q.z), unpack2x16float(q.w)));
    }
    if (WIDE == 3u) {
        // A bf16 is the top half of an f32: the low one shifted up, the high one masked.
        let q = w4[i / 8u];
        let lo = bitcast<vec4<f32>>(q << vec4<u32>(16u));
        let hi = bitcast<vec4<f32>>(q & vec4<u32>(0xffff0000u));
        return mat2x4<f32>(vec4<f32>(lo.x, hi.x, lo.y, hi.y), vec4<f32>(lo.z, hi.z, lo.w, hi.w));
    }
    if (WIDE == 4u) {
        return slice_q4_k(row, col, row_len);
    }
    if (WIDE == 5u) {
        return slice_q6_k(row, col, row_len);
    }
    return load_w8(row, col, row_len);
}
