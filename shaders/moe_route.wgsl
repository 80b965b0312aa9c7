// MoE routing, on the GPU: per row, the experts' scores from the router logits (a softmax over
// the experts, or one sigmoid each), the top-k experts by score plus the expert bias when there
// is one (ties to the lower index; with groups, only among the best `topk_groups` groups, ranked
// by the sum of each group's two best biased scores), and their weights: the unbiased scores,
// renormalised to sum 1 when `norm` is 1, times `scale` and, when there is one, the expert's own
// scale (DiffusionGemma's per_expert_scale). Then every expert's list of the
// (row, slot) pairs that picked it, in row order, so that the grouped matmul (moe_matmul.wgsl)
// computes only experts some row uses.
// One workgroup of 256 does it all (rows, then experts, split over its invocations), so both
// phases run in one launch with a barrier between them.
//
// `route` (u32 words), for n = rows, k = experts per row, E = experts:
//   [0, n·k)               expert of (row, slot) at row·k + slot
//   [n·k, 2n·k)            its weight (f32 bits)
//   [2n·k, 2n·k + E)       how many (row, slot) pairs picked expert e
//   [2n·k + E, .. + E·n)   expert e's list at e·n ..: entries row·k + slot

struct Params {
    rows: u32,
    experts: u32,
    k: u32,
    norm: u32,
    sigmoid: u32,
    groups: u32,
    topk_groups: u32,
    has_bias: u32,
    scale: f32,
    has_expert_scale: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
// The expert bias (E values); any buffer when `has_bias` is 0.
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> route: array<u32>;
// Each expert's weight scale (E values); any buffer when `has_expert_scale` is 0.
@group(0) @binding(4) var<storage, read> expert_scale: array<f32>;

// Score of expert e in a row (softmax needs the row's max and sum).
fn score(base: u32, e: u32, mx: f32, sum: f32) -> f32 {
    let l = logits[base + e];
    if (p.sigmoid == 1u) {
        return 1.0 / (1.0 + exp(-l));
    }
    return exp(l - mx) / sum;
}

fn biased(base: u32, e: u32, mx: f32, sum: f32) -> f32 {
    var s = score(base, e, mx, sum);
    if (p.has_bias == 1u) {
        s = s + bias[e];
    }
    return s;
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
    let n = p.rows;
    let k = p.k;
    let e_count = p.experts;
    let gsize = e_count / p.groups;
    for (var r = lid.x; r < n; r = r + 256u) {
        let base = r * e_count;
        var mx = logits[base];
        for (var e = 1u; e < e_count; e = e + 1u) {
            mx = max(mx, logits[base + e]);
        }
        var sum = 0.0;
        for (var e = 0u; e < e_count; e = e + 1u) {
            sum = sum + exp(logits[base + e] - mx);
        }
        // The candidate groups: bit g of `allowed` (all of them without groups).
        var allowed = 0xffffffffu;
        if (p.groups > 1u) {
            var gscore: array<f32, 32>;
            for (var g = 0u; g < p.groups; g = g + 1u) {
                var b1 = -3.0e38;
                var b2 = -3.0e38;
                for (var e = g * gsize; e < (g + 1u) * gsize; e = e + 1u) {
                    let s = biased(base, e, mx, sum);
                    if (s > b1) {
                        b2 = b1;
                        b1 = s;
                    } else if (s > b2) {
                        b2 = s;
                    }
                }
                gscore[g] = b1 + b2;
            }
            allowed = 0u;
            for (var t = 0u; t < p.topk_groups; t = t + 1u) {
                var best = 0xffffffffu;
                for (var g = 0u; g < p.groups; g = g + 1u) {
                    if ((allowed & (1u << g)) == 0u && (best == 0xffffffffu || gscore[g] > gscore[best])) {
                        best = g;
                    }
                }
                allowed = allowed | (1u << best);
            }
        }
        // Top-k by repeated argmax over the allowed experts not yet taken (at most 16 slots).
        var taken: array<u32, 16>;
        var weights: array<f32, 16>;
        var total = 0.0;
        for (var s = 0u; s < k; s = s + 1u) {
            var best = 0xffffffffu;
            var best_s = 0.0;
            for (var e = 0u; e < e_count; e = e + 1u) {
                var used = (allowed & (1u << min(e / gsize, 31u))) == 0u;
                for (var j = 0u; j < s; j = j + 1u) {
                    used = used || taken[j] == e;
                }
                let sc = biased(base, e, mx, sum);
                if (!used && (best == 0xffffffffu || sc > best_s)) {
                    best = e;
                    best_s = sc;
                }
            }
            taken[s] = best;
            weights[s] = score(base, best, mx, sum);
            total = total + weights[s];
        }
        for (var s = 0u; s < k; s = s + 1u) {
            var wgt = weights[s];
            if (p.norm == 1u) {
                wgt = wgt / total;
            }
            wgt = wgt * p.scale;
            if (p.has_expert_scale == 1u) {
                wgt = wgt * expert_scale[taken[s]];
            }
            route[r * k + s] = taken[s];
            route[n * k + r * k + s] = bitcast<u32>(wgt);
        }
    }
    storageBarrier();
    let counts = 2u * n * k;
    let lists = counts + e_count;
    for (var e = lid.x; e < e_count; e = e + 256u) {
        var c = 0u;
        for (var i = 0u; i < n * k; i = i + 1u) {
            if (route[i] == e) {
                route[lists + e * n + c] = i;
                c = c + 1u;
            }
        }
        route[counts + e] = c;
    }
}
