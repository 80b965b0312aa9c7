// Multi-head attention with grouped K/V heads, flash-style, over each query's key range
// (bidirectional, block-causal, causal, sliding window, or keys from a floor up: `Params`),
// laid out for GPUs: a 256-wide workgroup takes 16 query rows of one head, and each row is
// shared by 16 invocations that hold every 16th dimension of its query and output in registers
// (d ≤ 256: 16 values each; the host's wide copy for d ≤ 512: 32). Keys go 8 a round: each
// invocation computes its part of the row's 8 scores, the parts are summed in workgroup memory,
// then every invocation of the row updates the online softmax and adds its dimensions of the
// values. Keys and values are read from memory directly (neighbouring invocations read
// neighbouring values; the 16 rows, and the heads that share a K/V head, read the same ones
// through the cache). The L×L score matrix never exists.
// q: [lq, n_heads·d], k and v: [lk, n_kv·d], out: [lq, n_heads·d].
// Split-K (cached steps, few rows): workgroup z takes the z-th slice of the keys and writes
// its running max, sum and unnormalised output instead; attention_merge.wgsl combines them.

// `Params`, the inputs q, k and v (K/V as kv_t: f32 or f16; scores and sums are f32 either
// way), key_start and key_end: attention_keys.wgsl; `walk`: attention_walk.wgsl; `finish` and
// binding 4: attention_out.wgsl (one pass) or attention_split_out.wgsl (split-K). The host
// prepends them.

const BQ: u32 = 16u;  // query rows per workgroup
const TD: u32 = 16u;  // invocations per row
const BK: u32 = 8u;   // keys per round
const SL: u32 = 16u;  // dimensions per invocation (d ≤ SL·TD)

var<workgroup> part: array<f32, 2048>; // [BQ][BK][TD] partial dot products
var<workgroup> sc: array<f32, 128>;    // [BQ][BK] scores

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let h = wg.x;
    let r = lid.x / TD;
    let t = lid.x % TD;
    let row = wg.y * BQ + r;
    let live = row < p.lq;
    let rw = min(row, p.lq - 1u);
    let d = p.head_dim;
    let kvh = h / (p.n_heads / p.n_kv);
    let kv_stride = p.n_kv * d;
    let q_base = rw * p.n_heads * d + h * d;

    var qr: array<f32, 16>;
    var acc: array<f32, 16>;
    for (var i = 0u; i < SL; i = i + 1u) {
        let dim = t + i * TD;
        qr[i] = 0.0;
        if (dim < d) {
            qr[i] = q_at(q_base + dim) * p.scale;
        }
        acc[i] = 0.0;
    }
    var m = -3.0e38;
    var l = 0.0;
    // The keys the workgroup walks, and those of them row rw sees.
    let span = walk(wg.y * BQ, wg.z);
    let mine = row_keys(rw, span);
    for (var c0 = span.x; c0 < span.y; c0 = c0 + BK) {
        for (var j = 0u; j < BK; j = j + 1u) {
            var s = 0.0;
            if (c0 + j < span.y) {
                let kb = (c0 + j) * kv_stride + kvh * d;
                for (var i = 0u; i < SL; i = i + 1u) {
                    let dim = t + i * TD;
                    if (dim < d) {
                        s = s + qr[i] * f32(k[kb + dim]);
                    }
                }
            }
            part[(r * BK + j) * TD + t] = s;
        }
        workgroupBarrier();
        if (t < BK) {
            var s = 0.0;
            for (var u = 0u; u < TD; u = u + 1u) {
                s = s + part[(r * BK + t) * TD + u];
            }
            sc[r * BK + t] = s;
        }
        workgroupBarrier();
        var m_new = m;
        for (var j = 0u; j < BK; j = j + 1u) {
            let key = c0 + j;
            if (key >= mine.x && key < mine.y) {
                m_new = max(m_new, sc[r * BK + j]);
            }
        }
        let corr = exp(m - m_new);
        l = l * corr;
        for (var i = 0u; i < SL; i = i + 1u) {
            acc[i] = acc[i] * corr;
        }
        for (var j = 0u; j < BK; j = j + 1u) {
            let key = c0 + j;
            if (key >= mine.x && key < mine.y) {
                let pj = exp(sc[r * BK + j] - m_new);
                l = l + pj;
                let vb = key * kv_stride + kvh * d;
                for (var i = 0u; i < SL; i = i + 1u) {
                    let dim = t + i * TD;
                    if (dim < d) {
                        acc[i] = acc[i] + pj * f32(v[vb + dim]);
                    }
                }
            }
        }
        m = m_new;
        workgroupBarrier();
    }
    if (live) {
        finish(row, h, t, wg.z, m, l, acc);
    }
}
