// Multi-head attention with grouped K/V heads over each query's key range — the same result as
// attention.wgsl, for adapters that run on a CPU (lavapipe): no workgroup memory, no barriers.
// A workgroup is one subgroup of 8 invocations and takes 16 query rows of one head: each
// invocation owns two of them (query rows and output rows in private arrays) and walks the
// keys, 8 a round, with an online softmax (one rescale of the output a round).
// Every lane needs the same key and value rows, so the 8 lanes each read 1/8 of a row and
// `subgroupBroadcast` hands every value to every lane (on a CPU: an extract and a splat
// instead of a memory gather per lane); each key value so shared serves both rows. Small
// workgroups keep a cached step's 32 rows from running a 64-row workgroup half idle.
// Needs subgroups of exactly 8 and head_dim a multiple of 8 (the host checks both).
// q: [lq, n_heads·d], k and v: [lk, n_kv·d], out: [lq, n_heads·d]; d ≤ 256 (a wide copy: 512).

// `Params`, the inputs q, k and v (K/V as kv_t: f32 or f16; scores and sums are f32 either
// way), key_start, key_end and softmax_round: attention_keys.wgsl, prepended by the host.
@group(0) @binding(4) var<storage, read_write> out: array<out_t>;

// Invocations a workgroup (one subgroup) and query rows an invocation: WG · QR is the host's
// CPU_LANES_ATTENTION_ROWS (kernel_specs.rs).
const WG: u32 = 8u;
const QR: u32 = 2u;

// The 8 values lane 0..7 hold, in every lane.
fn spread(x: f32) -> array<f32, 8> {
    return array<f32, 8>(subgroupBroadcast(x, 0u), subgroupBroadcast(x, 1u), subgroupBroadcast(x, 2u), subgroupBroadcast(x, 3u),
                         subgroupBroadcast(x, 4u), subgroupBroadcast(x, 5u), subgroupBroadcast(x, 6u), subgroupBroadcast(x, 7u));
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(subgroup_invocation_id) lane: u32) {
    let h = wg.x;
    let first = wg.y * WG * QR; // the workgroup's rows: first + lid.x + WG·r, r < QR
    let d = p.head_dim;
    let kvh = h / (p.n_heads / p.n_kv);
    let kv_stride = p.n_kv * d;
    var qb: array<u32, QR>;
    var kstart: array<u32, QR>;
    var kend: array<u32, QR>;
    var m: array<f32, QR>;
    var l: array<f32, QR>;
    var qr: array<array<f32, 256>, QR>;
    var acc: array<array<f32, 256>, QR>;
    for (var r = 0u; r < QR; r = r + 1u) {
        let row = first + lid.x + WG * r;
        qb[r] = min(row, p.lq - 1u) * p.n_heads * d + h * d;
        kstart[r] = key_start(row);
        kend[r] = key_end(row);
        m[r] = -3.0e38;
        l[r] = 0.0;
        for (var i = 0u; i < d; i = i + 1u) {
            qr[r][i] = q[qb[r] + i] * p.scale;
            acc[r][i] = 0.0;
        }
    }
    // Every lane runs every key up to the workgroup's last row's end (broadcasts need all
    // lanes); a row skips keys outside its own range; dead rows store nothing. Keys go 8 a
    // round, so that the query and the output row (in memory on a CPU: arrays indexed by a
    // loop over the head) are read and written once a round, not once a key.
    let wg_end = key_end(min(first + WG * QR, p.lq) - 1u);
    let head = kvh * d + lane;
    for (var j0 = key_start(first); j0 < wg_end; j0 = j0 + 8u) {
        // The round's key rows (the last round's clamped to the last key; not visible).
        var kb: array<u32, 8>;
        for (var i = 0u; i < 8u; i = i + 1u) {
            kb[i] = min(j0 + i, wg_end - 1u) * kv_stride + head;
        }
        var s: array<array<f32, 8>, QR>; // zeroed by hand each round, as in attention.wgsl
        for (var r = 0u; r < QR; r = r + 1u) {
            for (var i = 0u; i < 8u; i = i + 1u) {
                s[r][i] = 0.0;
            }
        }
        for (var t = 0u; t < d; t = t + 8u) {
            for (var i = 0u; i < 8u; i = i + 1u) {
                let kk = spread(f32(k[kb[i] + t]));
                for (var r = 0u; r < QR; r = r + 1u) {
                    var dt = 0.0;
                    for (var c = 0u; c < 8u; c = c + 1u) {
                        dt = dt + qr[r][t + c] * kk[c];
                    }
                    s[r][i] = s[r][i] + dt;
                }
            }
        }
        var sm: array<SoftmaxRound, QR>;
        for (var r = 0u; r < QR; r = r + 1u) {
            var mr = m[r];
            var lr = l[r];
            sm[r] = softmax_round(s[r], 8u, j0, kstart[r], kend[r], &mr, &lr);
            m[r] = mr;
            l[r] = lr;
        }
        for (var t = 0u; t < d; t = t + 8u) {
            var o: array<array<f32, 8>, QR>;
            for (var r = 0u; r < QR; r = r + 1u) {
                for (var c = 0u; c < 8u; c = c + 1u) {
                    o[r][c] = acc[r][t + c] * sm[r].corr;
                }
            }
            for (var i = 0u; i < 8u; i = i + 1u) {
                let vv = spread(f32(v[kb[i] + t]));
                for (var r = 0u; r < QR; r = r + 1u) {
                    for (var c = 0u; c < 8u; c = c + 1u) {
                        o[r][c] = o[r][c] + sm[r].p[i] * vv[c];
                    }
                }
            }
            for (var r = 0u; r < QR; r = r + 1u) {
                for (var c = 0u; c < 8u; c = c + 1u) {
                    acc[r][t + c] = o[r][c];
                }
            }
        }
    }
    for (var r = 0u; r < QR; r = r + 1u) {
        if (first + lid.x + WG * r < p.lq) {
            for (var i = 0u; i < d; i = i + 1u) {
                out[qb[r] + i] = out_t_of(acc[r][i] / l[r]);
            }
        }
    }
}
