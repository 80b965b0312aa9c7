// Multi-head attention with grouped K/V heads over each query's key range — the same result as
// attention.wgsl, for adapters that run on a CPU (lavapipe): no workgroup memory, no barriers.
// A workgroup is one subgroup of 8 invocations and takes 16 query rows of one head: each
// invocation owns two of them (query rows and output rows in private arrays) and walks the
// keys, 8 a round, with an online softmax (one rescale of the output a round).
// Every lane needs the same key and value rows, so the 8 lanes share their reading: of a
// round's 8 keys, lane i reads key i's columns 8 at a time, as two vec4s, and
// `subgroupBroadcast` hands every value to every lane (on a CPU: an extract and a splat
// instead of a memory gather per lane); each key value so shared serves both rows. Small
// workgroups keep a cached step's 32 rows from running a 64-row workgroup half idle.
// Needs subgroups of exactly 8 and head_dim a multiple of 8 (the host checks both).
// q: [lq, n_heads·d], k and v: [lk, n_kv·d], out: [lq, n_heads·d]; d ≤ 256 (a wide copy: 512).
// The rows of q and of the output live in private arrays of vec4s, d / 4 of them.

// `Params`, the inputs q, k and v (K/V as kv_t: f32 or f16; scores and sums are f32 either
// way), key_start, key_end and softmax_round: attention_keys.wgsl, prepended by the host, which
// declares k and v for this kernel as arrays of vec4<kv_t> (a head's slice of a key row starts
// at a multiple of d, itself a multiple of 8, so every read is aligned).
@group(0) @binding(4) var<storage, read_write> out: array<out_t>;

// Invocations a workgroup (one subgroup) and query rows an invocation: WG · QR is the host's
// CPU_LANES_ATTENTION_ROWS (kernel_specs.rs).
const WG: u32 = 8u;
const QR: u32 = 2u;

// A query row's scores against the round's 8 keys over 8 columns: the row's columns (qa, qb)
// dotted with key i's, which lane i holds (ka, kb in that lane). Keys 0-3, then 4-7.
fn scores8(qa: vec4<f32>, qb: vec4<f32>, ka: vec4<f32>, kb: vec4<f32>) -> mat2x4<f32> {
    return mat2x4<f32>(
        vec4<f32>(dot(qa, subgroupBroadcast(ka, 0u)) + dot(qb, subgroupBroadcast(kb, 0u)),
                  dot(qa, subgroupBroadcast(ka, 1u)) + dot(qb, subgroupBroadcast(kb, 1u)),
                  dot(qa, subgroupBroadcast(ka, 2u)) + dot(qb, subgroupBroadcast(kb, 2u)),
                  dot(qa, subgroupBroadcast(ka, 3u)) + dot(qb, subgroupBroadcast(kb, 3u))),
        vec4<f32>(dot(qa, subgroupBroadcast(ka, 4u)) + dot(qb, subgroupBroadcast(kb, 4u)),
                  dot(qa, subgroupBroadcast(ka, 5u)) + dot(qb, subgroupBroadcast(kb, 5u)),
                  dot(qa, subgroupBroadcast(ka, 6u)) + dot(qb, subgroupBroadcast(kb, 6u)),
                  dot(qa, subgroupBroadcast(ka, 7u)) + dot(qb, subgroupBroadcast(kb, 7u))));
}

// Σ_i w[i] · value row i over 8 columns, value row i's held by lane i (va, vb in that lane):
// columns 0-3, then 4-7.
fn mix8(w: array<f32, 8>, va: vec4<f32>, vb: vec4<f32>) -> mat2x4<f32> {
    let a = w[0] * subgroupBroadcast(va, 0u) + w[1] * subgroupBroadcast(va, 1u) + w[2] * subgroupBroadcast(va, 2u)
        + w[3] * subgroupBroadcast(va, 3u) + w[4] * subgroupBroadcast(va, 4u) + w[5] * subgroupBroadcast(va, 5u)
        + w[6] * subgroupBroadcast(va, 6u) + w[7] * subgroupBroadcast(va, 7u);
    let b = w[0] * subgroupBroadcast(vb, 0u) + w[1] * subgroupBroadcast(vb, 1u) + w[2] * subgroupBroadcast(vb, 2u)
        + w[3] * subgroupBroadcast(vb, 3u) + w[4] * subgroupBroadcast(vb, 4u) + w[5] * subgroupBroadcast(vb, 5u)
        + w[6] * subgroupBroadcast(vb, 6u) + w[7] * subgroupBroadcast(vb, 7u);
    return mat2x4<f32>(a, b);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(subgroup_invocation_id) lane: u32) {
    let h = wg.x;
    let first = wg.y * WG * QR; // the workgroup's rows: first + lid.x + WG·r, r < QR
    let d = p.head_dim;
    let d4 = d / 4u;
    let kvh = h / (p.n_heads / p.n_kv);
    let kv_stride = p.n_kv * d;
    var qb: array<u32, QR>;
    var kstart: array<u32, QR>;
    var kend: array<u32, QR>;
    var m: array<f32, QR>;
    var l: array<f32, QR>;
    var qr: array<array<vec4<f32>, 64>, QR>;
    var acc: array<array<vec4<f32>, 64>, QR>;
    for (var r = 0u; r < QR; r = r + 1u) {
        let row = first + lid.x + WG * r;
        qb[r] = min(row, p.lq - 1u) * p.n_heads * d + h * d;
        kstart[r] = key_start(row);
        kend[r] = key_end(row);
        m[r] = -3.0e38;
        l[r] = 0.0;
        for (var i = 0u; i < d4; i = i + 1u) {
            let c = qb[r] + 4u * i;
            qr[r][i] = vec4<f32>(q_at(c), q_at(c + 1u), q_at(c + 2u), q_at(c + 3u)) * p.scale;
            acc[r][i] = vec4<f32>(0.0);
        }
    }
    // Every lane runs every key up to the workgroup's last row's end (broadcasts need all
    // lanes); a row skips keys outside its own range; dead rows store nothing. Keys go 8 a
    // round, so that the query and the output row (in memory on a CPU: arrays indexed by a
    // loop over the head) are read and written once a round, not once a key.
    let wg_end = key_end(min(first + WG * QR, p.lq) - 1u);
    for (var j0 = key_start(first); j0 < wg_end; j0 = j0 + 8u) {
        // This lane's key of the round (the last round's clamped to the last key; not visible):
        // where its head's slice starts in k and v (vec4s).
        let kv4 = (min(j0 + lane, wg_end - 1u) * kv_stride + kvh * d) / 4u;
        var s: array<mat2x4<f32>, QR>; // zeroed by hand each round, as in attention.wgsl
        for (var r = 0u; r < QR; r = r + 1u) {
            s[r] = mat2x4<f32>(vec4<f32>(0.0), vec4<f32>(0.0));
        }
        for (var t = 0u; t < d4; t = t + 2u) {
            let ka = vec4<f32>(k[kv4 + t]);
            let kb = vec4<f32>(k[kv4 + t + 1u]);
            for (var r = 0u; r < QR; r = r + 1u) {
                s[r] = s[r] + scores8(qr[r][t], qr[r][t + 1u], ka, kb);
            }
        }
        var sm: array<SoftmaxRound, QR>;
        for (var r = 0u; r < QR; r = r + 1u) {
            var mr = m[r];
            var lr = l[r];
            let sr = s[r];
            let s8 = array<f32, 8>(sr[0].x, sr[0].y, sr[0].z, sr[0].w, sr[1].x, sr[1].y, sr[1].z, sr[1].w);
            sm[r] = softmax_round(s8, 8u, j0, kstart[r], kend[r], &mr, &lr);
            m[r] = mr;
            l[r] = lr;
        }
        for (var t = 0u; t < d4; t = t + 2u) {
            let va = vec4<f32>(v[kv4 + t]);
            let vb = vec4<f32>(v[kv4 + t + 1u]);
            for (var r = 0u; r < QR; r = r + 1u) {
                let o = mix8(sm[r].p, va, vb);
                acc[r][t] = acc[r][t] * sm[r].corr + o[0];
                acc[r][t + 1u] = acc[r][t + 1u] * sm[r].corr + o[1];
            }
        }
    }
    for (var r = 0u; r < QR; r = r + 1u) {
        if (first + lid.x + WG * r < p.lq) {
            for (var i = 0u; i < d; i = i + 1u) {
                out[qb[r] + i] = out_t_of(acc[r][i / 4u][i % 4u] / l[r]);
            }
        }
    }
}
