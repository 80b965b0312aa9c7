// Multi-head attention with grouped K/V heads, flash-style, over each query's key range
// (bidirectional, block-causal, causal, sliding window, or keys from a floor up: `Params`):
// a 64-wide workgroup takes 64 query rows of one head; each invocation keeps its query row and
// its output row in private arrays and walks all keys with an online softmax, 8 a round (their
// scores, then one rescale of the output), while the workgroup stages each round's keys and
// values in workgroup memory. The L×L score matrix never exists.
// q: [lq, n_heads·d], k and v: [lk, n_kv·d], out: [lq, n_heads·d]; d ≤ 256 (the host builds a
// wide copy for d ≤ 512 with 4 keys a round: `kernels.rs`, `Kernel::Attention { wide }`).
// K/V are separate inputs so that the queries may be a sub-range of the positions (caches).

// `Params`, the inputs q, k and v (K/V as kv_t: f32 or f16; scores and sums are f32 either
// way), key_start, key_end and softmax_round: attention_keys.wgsl, prepended by the host.
@group(0) @binding(4) var<storage, read_write> out: array<out_t>;

const WG: u32 = 64u;
const KC: u32 = 8u;      // keys staged per round
const MAX_D: u32 = 256u;

var<workgroup> ks: array<f32, 2048>; // [KC][MAX_D]
var<workgroup> vs: array<f32, 2048>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let h = wg.x;
    let row = wg.y * WG + lid.x;
    let live = row < p.lq;
    let d = p.head_dim;
    let kvh = h / (p.n_heads / p.n_kv);
    let kv_stride = p.n_kv * d;
    let q_base = row * p.n_heads * d + h * d;

    var qr: array<f32, 256>;
    var acc: array<f32, 256>;
    for (var i = 0u; i < d; i = i + 1u) {
        qr[i] = select(0.0, q_at(q_base + i) * p.scale, live);
        acc[i] = 0.0;
    }
    var m = -3.0e38;
    var l = 0.0;
    // The workgroup stages the keys from its first row's start to its last row's end; each row
    // takes its own range of them.
    let kstart = key_start(row);
    let kend = key_end(row);
    let wg_start = key_start(wg.y * WG);
    let wg_end = key_end(min(wg.y * WG + WG, p.lq) - 1u);
    for (var c0 = wg_start; c0 < wg_end; c0 = c0 + KC) {
        // Stage keys/values c0 .. c0 + KC − 1 (past the workgroup's end: its last key again,
        // which no row sees): KC·d values each, spread over the workgroup.
        for (var e = lid.x; e < KC * d; e = e + WG) {
            let j = e / d;
            let i = e % d;
            let src = min(c0 + j, wg_end - 1u) * kv_stride + kvh * d + i;
            ks[j * MAX_D + i] = f32(k[src]);
            vs[j * MAX_D + i] = f32(v[src]);
        }
        workgroupBarrier();
        // The round's KC scores in one walk over the query row, then one rescale of the output
        // row for all of them: the private rows (in memory on a CPU) are read once a round.
        // Zeroed by hand each round: Chromium's WebGPU (SwiftShader, 2026-12-06) kept the round
        // before's sums in an array declared in the loop without an initializer.
        var s: array<f32, 8>;
        for (var j = 0u; j < KC; j = j + 1u) {
            s[j] = 0.0;
        }
        for (var i = 0u; i < d; i = i + 1u) {
            let qi = qr[i];
            for (var j = 0u; j < KC; j = j + 1u) {
                s[j] = s[j] + qi * ks[j * MAX_D + i];
            }
        }
        let sm = softmax_round(s, KC, c0, kstart, kend, &m, &l);
        for (var i = 0u; i < d; i = i + 1u) {
            var o = acc[i] * sm.corr;
            for (var j = 0u; j < KC; j = j + 1u) {
                o = o + sm.p[j] * vs[j * MAX_D + i];
            }
            acc[i] = o;
        }
        workgroupBarrier();
    }
    if (live) {
        for (var i = 0u; i < d; i = i + 1u) {
            out[q_base + i] = out_t_of(acc[i] / l);
        }
    }
}
