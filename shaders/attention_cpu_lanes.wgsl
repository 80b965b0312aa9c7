// Multi-head attention with grouped K/V heads over each query's key range — the same result as
// attention.wgsl, for adapters that run on a CPU (lavapipe): no workgroup memory, no barriers.
// Each invocation owns one query row of one head (query row and output row in registers) and
// walks all keys with an online softmax. Every lane needs the same key and value rows, so the
// 8 lanes of a subgroup each read 1/8 of a row and `subgroupBroadcast` hands every value to
// every lane (on a CPU: an extract and a splat instead of a memory gather per lane).
// Needs subgroups of exactly 8 and head_dim a multiple of 8 (the host checks both).
// q: [lq, n_heads·d], k and v: [lk, n_kv·d], out: [lq, n_heads·d]; d ≤ 256 (a wide copy: 512).

// `Params`, the inputs q, k and v (K/V as kv_t: f32 or f16; scores and sums are f32 either
// way), key_start and key_end: attention_keys.wgsl, prepended by the host.
@group(0) @binding(4) var<storage, read_write> out: array<out_t>;

const WG: u32 = 64u;

// The 8 values lane 0..7 hold, in every lane.
fn spread(x: f32) -> array<f32, 8> {
    return array<f32, 8>(subgroupBroadcast(x, 0u), subgroupBroadcast(x, 1u), subgroupBroadcast(x, 2u), subgroupBroadcast(x, 3u),
                         subgroupBroadcast(x, 4u), subgroupBroadcast(x, 5u), subgroupBroadcast(x, 6u), subgroupBroadcast(x, 7u));
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(subgroup_invocation_id) lane: u32) {
    let h = wg.x;
    let row = wg.y * WG + lid.x;
    let live = row < p.lq;
    let d = p.head_dim;
    let kvh = h / (p.n_heads / p.n_kv);
    let kv_stride = p.n_kv * d;
    let q_base = min(row, p.lq - 1u) * p.n_heads * d + h * d;

    var qr: array<f32, 256>;
    var acc: array<f32, 256>;
    for (var i = 0u; i < d; i = i + 1u) {
        qr[i] = q[q_base + i] * p.scale;
        acc[i] = 0.0;
    }
    var m = -3.0e38;
    var l = 0.0;
    // Every lane runs every key up to the workgroup's last row's end (broadcasts need all
    // lanes); a row past its own end skips the update; dead rows store nothing.
    let kstart = key_start(row);
    let kend = key_end(row);
    let wg_end = key_end(min(wg.y * WG + WG, p.lq) - 1u);
    for (var j = key_start(wg.y * WG); j < wg_end; j = j + 1u) {
        let base = j * kv_stride + kvh * d + lane;
        var s = 0.0;
        for (var t = 0u; t < d; t = t + 8u) {
            let kk = spread(f32(k[base + t]));
            for (var c = 0u; c < 8u; c = c + 1u) {
                s = s + qr[t + c] * kk[c];
            }
        }
        let vis = j >= kstart && j < kend;
        let m_new = select(m, max(m, s), vis);
        let corr = exp(m - m_new);
        let pj = select(0.0, exp(s - m_new), vis);
        l = l * corr + pj;
        for (var t = 0u; t < d; t = t + 8u) {
            let vv = spread(f32(v[base + t]));
            for (var c = 0u; c < 8u; c = c + 1u) {
                acc[t + c] = acc[t + c] * corr + pj * vv[c];
            }
        }
        m = m_new;
    }
    if (live) {
        for (var i = 0u; i < d; i = i + 1u) {
            out[q_base + i] = out_t_of(acc[i] / l);
        }
    }
}
