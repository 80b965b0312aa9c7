// MoE routing, on the GPU: per row, softmax over the experts' router logits, the top-k experts
// (ties to the lower index) and their weights (renormalised to sum 1 when `norm` is 1); then
// every expert's list of the (row, slot) pairs that picked it, in row order, so that the
// grouped matmul (moe_matmul.wgsl) computes only experts some row uses.
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
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> route: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
    let n = p.rows;
    let k = p.k;
    let e_count = p.experts;
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
        // Top-k by repeated argmax over the experts not yet taken (at most 16 slots).
        var taken: array<u32, 16>;
        var weights: array<f32, 16>;
        var total = 0.0;
        for (var s = 0u; s < k; s = s + 1u) {
            var best = 0xffffffffu;
            var best_l = 0.0;
            for (var e = 0u; e < e_count; e = e + 1u) {
                var used = false;
                for (var j = 0u; j < s; j = j + 1u) {
                    used = used || taken[j] == e;
                }
                let l = logits[base + e];
                if (!used && (best == 0xffffffffu || l > best_l)) {
                    best = e;
                    best_l = l;
                }
            }
            taken[s] = best;
            weights[s] = exp(best_l - mx) / sum;
            total = total + weights[s];
        }
        for (var s = 0u; s < k; s = s + 1u) {
            var wgt = weights[s];
            if (p.norm == 1u) {
                wgt = wgt / total;
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
