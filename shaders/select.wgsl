// Per row of logits (one canvas position): the chosen token (argmax of logits/T + Gumbel noise,
// plain argmax at T = 0), its softmax probability, the entropy and the top-1 − top-2 margin.
// One 256-wide workgroup per row; output is 4 words per row: token, prob, entropy, margin.
// The noise is a counter-based hash of (seed, salt, position, vocab index): the CPU twin draws
// the same numbers.

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
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;
@group(0) @binding(3) var<uniform> noise: Noise;

var<workgroup> rv: array<f32, 256>;
var<workgroup> ri: array<u32, 256>;
var<workgroup> r2: array<f32, 256>;

fn hash_u32(x: u32) -> u32 {
    let v = x * 747796405u + 2891336453u;
    let w = ((v >> ((v >> 28u) + 4u)) ^ v) * 277803737u;
    return (w >> 22u) ^ w;
}

fn uniform01(pos: u32, vi: u32) -> f32 {
    let h = hash_u32(noise.seed ^ hash_u32(noise.salt ^ hash_u32(pos ^ hash_u32(vi))));
    return (f32(h >> 8u) + 0.5) / 16777216.0;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = wg.x;
    let t = lid.x;
    let base = r * p.vocab;

    // 1. max logit and the top two logits.
    var top1 = -3.0e38;
    var top2 = -3.0e38;
    for (var i = t; i < p.vocab; i = i + 256u) {
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
    for (var stride = 128u; stride > 0u; stride = stride / 2u) {
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

    // 2. the chosen token: argmax of the (noisy) score, ties to the lower index.
    var best = -3.0e38;
    var best_i = 0xffffffffu;
    for (var i = t; i < p.vocab; i = i + 256u) {
        let l = logits[base + i];
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
    for (var stride = 128u; stride > 0u; stride = stride / 2u) {
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
    for (var i = t; i < p.vocab; i = i + 256u) {
        let z = logits[base + i] - mx;
        let e = exp(z);
        s = s + e;
        sl = sl + e * z;
    }
    rv[t] = s;
    r2[t] = sl;
    workgroupBarrier();
    for (var stride = 128u; stride > 0u; stride = stride / 2u) {
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
        if (second > -3.0e38) {
            p2 = exp(second - mx) / sum;
        }
        let o = (p.out_row0 + r) * 4u;
        out[o] = token;
        out[o + 1u] = bitcast<u32>(prob);
        out[o + 2u] = bitcast<u32>(entropy);
        out[o + 3u] = bitcast<u32>(1.0 / sum - p2);
    }
}
