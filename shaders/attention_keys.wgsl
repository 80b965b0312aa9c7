// The parameters and inputs of the attention kernels (attention.wgsl, attention_flash.wgsl,
// attention_tiles.wgsl, attention_cpu_lanes.wgsl; the host prepends this file to each) and which
// keys each query row sees under them (`AttnMask` in gpu/kernel_specs.rs is the host's side of
// the same rule). q: [lq, n_heads·d], k and v: [lk, n_kv·d] stored as kv_t (f32, or f16 where the
// session keeps its K/V in half precision; the host prepends the alias). Each kernel binds its
// output at binding 4.

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
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<kv_t>;
@group(0) @binding(3) var<storage, read> v: array<kv_t>;

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
