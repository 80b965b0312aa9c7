// A lane's 8 weights of a slice of k for the CPU-lanes matmuls (matmul_cpu_lanes.wgsl,
// moe_matmul.wgsl), read a vec4 at a time from `w4` (the weights' buffer again, declared by each
// kernel) where the format allows, else by the format's reader (`load_w8`). The host prepends
// this file to cpu_lanes_rows.wgsl and picks the way by the override `WIDE`.
// lavapipe reads a storage load one lane at a time, all of the load's components in that lane's
// turn: a vec4 costs about what one word does. F32, F16 and BF16 rows that start 16 bytes aligned
// give a lane's 8 weights in one or two vec4s; a Q4_K super-block is nine vec4s, and its 8
// weights take two (the scalar reader's 16 word loads made Q4_K 1.4× slower than Q4_0 there).
// Q4_0, Q8_0 and Q6_K blocks start at any even byte; readers that picked their bytes out of two
// vec4s by selects measured no faster than their word reads (BENCHMARKS.md), so they keep those.

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

// This lane's 8 weights of row `row` from column `col` (a multiple of 8, the row's whole slice),
// by format code `WIDE` (the host's `pipeline_constants`): F32 two vec4s (1), F16 (2) and BF16
// (3) one, where every row starts 16 bytes aligned; Q4_K (4) as above; 0 (other formats, or
// plain rows off the 16 bytes) the reader's load_w8.
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
    return load_w8(row, col, row_len);
}
