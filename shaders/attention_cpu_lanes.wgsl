// Multi-head attention with grouped K/V heads over each query's key range — the same result as
// attention.wgsl, for adapters that run on a CPU (lavapipe): no workgroup memory, no barriers.
// Each invocation owns one query row of one head (query row and output row in private arrays)
// and walks all keys, 8 a round, with an online softmax (one rescale of the output a round).
// Every lane needs the same key and value rows, so the 8 lanes of a subgroup each read 1/8 of a
// row and `subgroupBroadcast` hands every value to every lane (on a CPU: an extract and a splat
// instead of a memory gather per lane).
// Needs subgroups of exactly 8 and head_dim a multiple of 8 (the host checks both).
// q: [lq, n_heads·d], k and v: [lk, n_kv·d], out: [lq, n_heads·d]; d ≤ 256 (a wide copy: 512).

// `Params`, the inputs q, k and v (K/V as kv_t: f32 or f16; scores and sums are f32 either
// way), key_start, key_end and softmax_round: attention_keys.wgsl, prepended by the host.
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
    // lanes); a row skips keys outside its own range; dead rows store nothing. Keys go 8 a
    // round, so that the query and the output row (in memory on a CPU: arrays indexed by a
    // loop over the head) are read and written once a round, not once a key.
    let kstart = key_start(row);
    let kend = key_end(row);
    let wg_end = key_end(min(wg.y * WG + WG, p.lq) - 1u);
    let head = kvh * d + lane;
    for (var j0 = key_start(wg.y * WG); j0 < wg_end; j0 = j0 + 8u) {
        // The round's key rows (the last round's clamped to the last key; not visible).
        var kb: array<u32, 8>;
        for (var i = 0u; i < 8u; i = i + 1u) {
            kb[i] = min(j0 + i, wg_end - 1u) * kv_stride + head;
        }
        var s: array<f32, 8>; // zeroed by hand each round, as in attention.wgsl
        for (var i = 0u; i < 8u; i = i + 1u) {
            s[i] = 0.0;
        }
        for (var t = 0u; t < d; t = t + 8u) {
            let q8 = array<f32, 8>(qr[t], qr[t + 1u], qr[t + 2u], qr[t + 3u], qr[t + 4u], qr[t + 5u], qr[t + 6u], qr[t + 7u]);
            for (var i = 0u; i < 8u; i = i + 1u) {
                let kk = spread(f32(k[kb[i] + t]));
                var dt = 0.0;
                for (var c = 0u; c < 8u; c = c + 1u) {
                    dt = dt + q8[c] * kk[c];
                }
                s[i] = s[i] + dt;
            }
        }
        let sm = softmax_round(s, 8u, j0, kstart, kend, &m, &l);
        for (var t = 0u; t < d; t = t + 8u) {
            var o = array<f32, 8>(acc[t], acc[t + 1u], acc[t + 2u], acc[t + 3u], acc[t + 4u], acc[t + 5u], acc[t + 6u], acc[t + 7u]);
            for (var c = 0u; c < 8u; c = c + 1u) {
                o[c] = o[c] * sm.corr;
            }
            for (var i = 0u; i < 8u; i = i + 1u) {
                let vv = spread(f32(v[kb[i] + t]));
                for (var c = 0u; c < 8u; c = c + 1u) {
                    o[c] = o[c] + sm.p[i] * vv[c];
                }
            }
            for (var c = 0u; c < 8u; c = c + 1u) {
                acc[t + c] = o[c];
            }
        }
    }
    if (live) {
        for (var i = 0u; i < d; i = i + 1u) {
            out[q_base + i] = out_t_of(acc[i] / l);
        }
    }
}
