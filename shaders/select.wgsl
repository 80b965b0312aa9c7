// Per row of logits (one canvas position): the chosen token (argmax of logits/T + Gumbel noise,
// plain argmax at T = 0), its softmax probability, the entropy and the top-1 − top-2 margin,
// over the tokens Dream's top-k / top-p filters keep (all of them when both are off).
// One workgroup (WG invocations) per row; output is 4 words per row: token, prob, entropy, margin.
// The noise is a counter-based hash of (seed, salt, position, vocab index): the CPU twin
// (`choice::select`, `choice::cutoff`) draws the same numbers.

struct Params {
    rows: u32,
    vocab: u32,
    pos0: u32,        // canvas position of row 0
    out_row0: u32,    // output row of row 0
}

// Rewritten before every forward pass (the step's sampling settings).
struct Noise {
    temperature: f32,
    seed: u32,
    salt: u32,
    top_k: u32,       // 0 = off
    top_p: f32,       // 1 = off
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;
@group(0) @binding(3) var<uniform> noise: Noise;

// Invocations a row's workgroup has; the host makes it 8 on CPU adapters (`Gpu::row_workgroup`).
const WG: u32 = 256u;

var<workgroup> rv: array<f32, WG>;
var<workgroup> ri: array<u32, WG>;
var<workgroup> r2: array<f32, WG>;

fn hash_u32(x: u32) -> u32 {
    let v = x * 747796405u + 2891336453u;
    let w = ((v >> ((v >> 28u) + 4u)) ^ v) * 277803737u;
    return (w >> 22u) ^ w;
}

fn uniform01(pos: u32, vi: u32) -> f32 {
    let h = hash_u32(noise.seed ^ hash_u32(noise.salt ^ hash_u32(pos ^ hash_u32(vi))));
    return (f32(h >> 8u) + 0.5) / 16777216.0;
}

// The order-preserving image of an f32 in u32, −0 as +0 (twin: `choice::order_key`).
fn order_key(x: f32) -> u32 {
    var b = bitcast<u32>(x);
    if (b == 0x80000000u) {
        b = 0u;
    }
    if ((b & 0x80000000u) != 0u) {
        return ~b;
    }
    return b | 0x80000000u;
}

// Σ over the workgroup of each thread's `v` (every thread gets it).
fn sum_f32(t: u32, v: f32) -> f32 {
    rv[t] = v;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (t < stride) {
            rv[t] = rv[t] + rv[t + stride];
        }
        workgroupBarrier();
    }
    let s = rv[0];
    workgroupBarrier();
    return s;
}

fn sum_u32(t: u32, v: u32) -> u32 {
    ri[t] = v;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (t < stride) {
            ri[t] = ri[t] + ri[t + stride];
        }
        workgroupBarrier();
    }
    let s = ri[0];
    workgroupBarrier();
    return s;
}

// The filters' cut-off as an order key: token i is kept when order_key(l_i) >= cut.
// top-k: the largest key x with #{l >= x} >= k, which is the key of the k-th largest logit (ties
// with it kept, as torch's `logits < kth` removal). Bisection on u32 keys keeps #{>= lo} >= k.
// top-p: Dream sorts descending and removes a token when the cumulative probability before it
// exceeds top_p. Before token i (no ties) lie exactly the tokens with a larger logit, so token i
// is kept iff P(l_i): "the mass of {l > l_i} under softmax(l / T) is <= top_p". That mass only
// shrinks as x grows, so P holds from some token's logit upwards: the kept set is {l >= c} for
// the smallest x with P(x), and P(x) between two logits equals P at the lower one, so that
// smallest x is itself a logit. Bisection keeps P(hi). Both filters keep a prefix of the sorted
// order (Dream applies top-k to what top-p left: their intersection), so the top-p search starts
// at the top-k cut and ends at max(top-k cut, top-p cut). Ties: Dream may keep only some of the
// logits tied at the top-p cut (torch.sort's order decides); this keeps them all.
fn cutoff(t: u32, base: u32, mx: f32) -> u32 {
    var cut = 0u;
    if (noise.top_k > 0u && noise.top_k < p.vocab) {
        var lo = 0u;
        var hi = 0xffffffffu;
        for (var round = 0u; round < 32u; round = round + 1u) {
            let d = hi - lo;
            let mid = lo + d / 2u + (d & 1u);
            var n = 0u;
            for (var i = t; i < p.vocab; i = i + WG) {
                n = n + select(0u, 1u, order_key(logits[base + i]) >= mid);
            }
            if (sum_u32(t, n) >= noise.top_k) {
                lo = mid;
            } else {
                hi = mid - 1u;
            }
        }
        cut = lo;
    }
    if (noise.top_p < 1.0) {
        var temp = 1.0;
        if (noise.temperature > 0.0) {
            temp = noise.temperature;
        }
        var s = 0.0;
        for (var i = t; i < p.vocab; i = i + WG) {
            s = s + exp((logits[base + i] - mx) / temp);
        }
        let limit = noise.top_p * sum_f32(t, s);
        var lo = cut;
        var hi = 0xffffffffu;
        for (var round = 0u; round < 32u; round = round + 1u) {
            let mid = lo + (hi - lo) / 2u;
            var m = 0.0;
            for (var i = t; i < p.vocab; i = i + WG) {
                let l = logits[base + i];
                if (order_key(l) > mid) {
                    m = m + exp((l - mx) / temp);
                }
            }
            if (sum_f32(t, m) <= limit) {
                hi = mid;
            } else {
                lo = mid + 1u;
            }
        }
        cut = lo;
    }
    return cut;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = wg.x;
    let t = lid.x;
    let base = r * p.vocab;

    // 1. max logit and the top two logits.
    var top1 = -3.0e38;
    var top2 = -3.0e38;
    for (var i = t; i < p.vocab; i = i + WG) {
        let l = logits[base + i];
        if (l > top1) {
            top2 = top1;
            top1 = l;
        } else if (l > top2) {
            top2 = l;
        }
    }
    rv[t] = top1;
    r2[t] = top2;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (t < stride) {
            let a1 = rv[t];
            let a2 = r2[t];
            let b1 = rv[t + stride];
            let b2 = r2[t + stride];
            rv[t] = max(a1, b1);
            r2[t] = max(min(a1, b1), max(a2, b2));
        }
        workgroupBarrier();
    }
    let mx = rv[0];
    let second = r2[0];
    workgroupBarrier();

    // 1b. the filters' cut-off (0, keeping every token, when both are off).
    let cut = cutoff(t, base, mx);

    // 2. the chosen token: argmax of the (noisy) score, ties to the lower index.
    var best = -3.0e38;
    var best_i = 0xffffffffu;
    for (var i = t; i < p.vocab; i = i + WG) {
        let l = logits[base + i];
        if (order_key(l) < cut) {
            continue;
        }
        var score = l;
        if (noise.temperature > 0.0) {
            let u = uniform01(p.pos0 + r, i);
            score = (l - mx) / noise.temperature - log(-log(u));
        }
        if (score > best) {
            best = score;
            best_i = i;
        }
    }
    rv[t] = best;
    ri[t] = best_i;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (t < stride) {
            let bv = rv[t + stride];
            let bi = ri[t + stride];
            if (bv > rv[t] || (bv == rv[t] && bi < ri[t])) {
                rv[t] = bv;
                ri[t] = bi;
            }
        }
        workgroupBarrier();
    }
    let token = ri[0];
    workgroupBarrier();

    // 3. softmax sums: Σ e^(l - max) and Σ e^(l - max)·(l - max) for the entropy.
    var s = 0.0;
    var sl = 0.0;
    for (var i = t; i < p.vocab; i = i + WG) {
        let l = logits[base + i];
        if (order_key(l) < cut) {
            continue;
        }
        let z = l - mx;
        let e = exp(z);
        s = s + e;
        sl = sl + e * z;
    }
    rv[t] = s;
    r2[t] = sl;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if (t < stride) {
            rv[t] = rv[t] + rv[t + stride];
            r2[t] = r2[t] + r2[t + stride];
        }
        workgroupBarrier();
    }
    if (t == 0u) {
        let sum = rv[0];
        let prob = exp(logits[base + token] - mx) / sum;
        let entropy = log(sum) - r2[0] / sum;
        var p2 = 0.0;
        if (second > -3.0e38 && order_key(second) >= cut) {
            p2 = exp(second - mx) / sum;
        }
        let o = (p.out_row0 + r) * 4u;
        out[o] = token;
        out[o + 1u] = bitcast<u32>(prob);
        out[o + 2u] = bitcast<u32>(entropy);
        out[o + 3u] = bitcast<u32>(1.0 / sum - p2);
    }
}
