// The parameters and inputs of the attention kernels (attention.wgsl, attention_flash.wgsl,
// attention_tiles.wgsl, attention_cpu_lanes.wgsl; the host prepends this file to each) and which
// keys each query row sees under them (`AttnMask` in gpu/kernel_specs.rs is the host's side of
// the same rule), and the online-softmax round of the two kernels that take keys 8 a round.
// q: [q_row + lq, n_heads·d] (queries from row q_row), k and v: [lk, n_kv·d] stored as kv_t
// (f32, or f16 where the session keeps its K/V in half precision; the host prepends the alias;
// for attention_cpu_lanes.wgsl it declares k and v below as arrays of vec4<kv_t>). Each kernel
// binds its output at binding 4.

struct Params {
    lq: u32,
    lk: u32,
    n_heads: u32,
    n_kv: u32,
    head_dim: u32,
    scale: f32,
    q0: u32,      // canvas position of query row 0
    block: u32,   // block-causal in blocks of this many positions; 0 = off
    causal: u32,  // 1: keys at or before the query's position only
    window: u32,  // sliding window: keys within this many positions up to the query; 0 = off
    key_lo: u32,  // keys before this position are never seen
    splits: u32,  // split-K: slices of the keys (attention_split_out.wgsl); 1 otherwise
    q_row: u32,   // the row of q that holds query row 0 (the rows before it are not read)
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<kv_t>;
@group(0) @binding(3) var<storage, read> v: array<kv_t>;

// Element `i` of q counted from query row 0 (row `q_row` of the buffer).
fn q_at(i: u32) -> f32 {
    return q[p.q_row * p.n_heads * p.head_dim + i];
}

// Keys query row `row` sees: key_start(row) .. key_end(row); both grow with the row.
fn key_end(row: u32) -> u32 {
    let q = p.q0 + row;
    var e = p.lk;
    if (p.block > 0u) {
        e = min(e, (q / p.block + 1u) * p.block);
    }
    if (p.causal == 1u) {
        e = min(e, q + 1u);
    }
    return e;
}

fn key_start(row: u32) -> u32 {
    let q = p.q0 + row;
    var s = p.key_lo;
    if (p.window > 0u && q + 1u > p.window) {
        s = max(s, q + 1u - p.window);
    }
    return s;
}

// One round of the online softmax over the n ≤ 8 keys j0 .. j0 + n − 1 with scores s[0 .. n]
// (attention.wgsl and attention_cpu_lanes.wgsl take keys 8 a round): keys outside the row's
// kstart .. kend get weight 0. Moves the running max `m` and sum `l` on; returns the keys'
// weights and `corr`, the factor the output so far is to be scaled by.
struct SoftmaxRound {
    p: array<f32, 8>,
    corr: f32,
}

fn softmax_round(s: array<f32, 8>, n: u32, j0: u32, kstart: u32, kend: u32, m: ptr<function, f32>, l: ptr<function, f32>) -> SoftmaxRound {
    var m_new = *m;
    for (var i = 0u; i < n; i = i + 1u) {
        if (j0 + i >= kstart && j0 + i < kend) {
            m_new = max(m_new, s[i]);
        }
    }
    var r = SoftmaxRound(array<f32, 8>(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0), exp(*m - m_new));
    var sum = *l * r.corr;
    for (var i = 0u; i < n; i = i + 1u) {
        r.p[i] = select(0.0, exp(s[i] - m_new), j0 + i >= kstart && j0 + i < kend);
        sum = sum + r.p[i];
    }
    *m = m_new;
    *l = sum;
    return r;
}
