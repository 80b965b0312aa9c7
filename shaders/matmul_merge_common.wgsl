// What split-K's two endings share (matmul_merge.wgsl: one output; matmul_merge_qkv.wgsl: Q, K
// and V at once): the parameters, the slices' partial results, and the value of one output
// column summed over the slices, in slice order, scaled by a folded RMSNorm's 1/rms (norm_k > 0:
// from the slices' Σ x² of each row, which follow the partial results, [splits, m]) and turned
// by RoPE (p.rope, columns [0, rope.cols): each dimension with its pair's other one;
// rope_common.wgsl, prepended by the host). part: [splits, m, n_src], of which columns
// c0 .. c0 + n are the outputs'. One invocation per output.

struct Params {
    m: u32,
    n: u32,
    splits: u32,
    y_offset: u32,   // element of y where output (0, 0) goes
    y_stride: u32,   // elements between output rows
    epilogue: u32,   // as matmul.wgsl's
    norm_k: u32,     // the folded norm's width (the matmul's k); 0: no norm
    eps: f32,        // the norm's epsilon
    n_src: u32,      // columns of a partial result's row
    c0: u32,         // its first column that goes to y
    pair: u32,       // matmul_merge.wgsl: 1: gate and up (the activation: epilogue − 2)
    n1: u32,         // matmul_merge_qkv.wgsl: where K's columns begin,
    rope: Rope,
    n2: u32,         // where V's begin,
    y2_offset: u32,  // and where K's and V's output (0, 0) go in y2 and y3
    y3_offset: u32,
    bias: u32,       // matmul_merge_qkv.wgsl: where the columns' biases begin (0: none)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> part: array<f32>;

// Row r of column col (of n_src) summed over the slices, over `rms` (the norm's; 1 without).
fn col_sum(r: u32, col: u32, rms: f32) -> f32 {
    let slice = p.m * p.n_src;
    var v = 0.0;
    for (var z = 0u; z < p.splits; z = z + 1u) {
        v = v + part[z * slice + r * p.n_src + col];
    }
    return v / rms;
}

// Row r's rms from the slices' sums of squares (1 without a folded norm).
fn row_rms(r: u32) -> f32 {
    if (p.norm_k == 0u) {
        return 1.0;
    }
    var ss = 0.0;
    for (var z = 0u; z < p.splits; z = z + 1u) {
        ss = ss + part[p.splits * p.m * p.n_src + z * p.m + r];
    }
    return sqrt(ss / f32(p.norm_k) + p.eps);
}

// Output column c of row r: summed, normed, its bias added (`col_bias`, the ending's own) and
// (c < rope.cols) turned with its pair's other one.
fn merged(r: u32, c: u32, rms: f32) -> f32 {
    var v = col_sum(r, p.c0 + c, rms) + col_bias(c);
    if (p.rope.on == 1u && c < p.rope.cols) {
        let o = c % p.rope.head_dim;
        let q = rope_pair(p.rope, o);
        if (q.x < p.rope.pairs) {
            let other = col_sum(r, p.c0 + c - o + q.y, rms) + col_bias(c - o + q.y);
            let sc = rope_sincos(p.rope, p.rope.pos0 + r, q.x);
            if (q.z == 0u) {
                v = rope_turn(v, other, sc).x;
            } else {
                v = rope_turn(other, v, sc).y;
            }
        }
    }
    return v;
}
