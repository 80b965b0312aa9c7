// Bidirectional multi-head attention (no causal mask) with grouped K/V heads, flash-style:
// one 64-wide workgroup per (query row, head) walks the keys in chunks of 64 with an online
// softmax, so the L×L score matrix is never stored.
// q: [lq, n_heads·d] (rows q_row0 ..), k and v: [lk, n_kv·d], out: [lq, n_heads·d].
// K/V are separate inputs so that the queries may be a sub-range of the positions (caches).

struct Params {
    lq: u32,
    lk: u32,
    n_heads: u32,
    n_kv: u32,
    head_dim: u32,
    scale: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

const WG: u32 = 64u;

var<workgroup> qs: array<f32, 256>;
var<workgroup> probs: array<f32, 64>;
var<workgroup> red: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let h = wg.x;
    let row = wg.y;
    let t = lid.x;
    let d = p.head_dim;
    let kvh = h / (p.n_heads / p.n_kv);
    let kv_stride = p.n_kv * d;
    let q_base = row * p.n_heads * d + h * d;
    for (var i = t; i < d; i = i + WG) {
        qs[i] = q[q_base + i];
    }
    workgroupBarrier();

    var m = -3.0e38;
    var l = 0.0;
    var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0); // dims t, t+64, t+128, t+192
    for (var c0 = 0u; c0 < p.lk; c0 = c0 + WG) {
        let j = c0 + t;
        var s = -3.0e38;
        if (j < p.lk) {
            let kb = j * kv_stride + kvh * d;
            var dot = 0.0;
            for (var i = 0u; i < d; i = i + 1u) {
                dot = dot + qs[i] * k[kb + i];
            }
            s = dot * p.scale;
        }
        red[t] = s;
        workgroupBarrier();
        for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
            if (t < stride) {
                red[t] = max(red[t], red[t + stride]);
            }
            workgroupBarrier();
        }
        let m_new = max(m, red[0]);
        workgroupBarrier();
        var e = 0.0;
        if (j < p.lk) {
            e = exp(s - m_new);
        }
        probs[t] = e;
        red[t] = e;
        workgroupBarrier();
        for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
            if (t < stride) {
                red[t] = red[t] + red[t + stride];
            }
            workgroupBarrier();
        }
        let corr = exp(m - m_new);
        l = l * corr + red[0];
        let n = min(WG, p.lk - c0);
        for (var s4 = 0u; s4 < 4u; s4 = s4 + 1u) {
            let dim = t + s4 * WG;
            if (dim < d) {
                var a = acc[s4] * corr;
                for (var c = 0u; c < n; c = c + 1u) {
                    a = a + probs[c] * v[(c0 + c) * kv_stride + kvh * d + dim];
                }
                acc[s4] = a;
            }
        }
        m = m_new;
        workgroupBarrier();
    }
    for (var s4 = 0u; s4 < 4u; s4 = s4 + 1u) {
        let dim = t + s4 * WG;
        if (dim < d) {
            out[q_base + dim] = acc[s4] / l;
        }
    }
}
