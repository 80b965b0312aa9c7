// Flash attention with the keys and values staged in workgroup memory, for GPUs (heads of up to
// 128 dimensions; 26.9 KB of workgroup memory). A 256-wide workgroup takes 16 query rows (staged
// once, scaled) that read one K/V head and walks its keys 16 a round. Under GQA the g =
// n_heads / n_kv query heads of a K/V head share its tiles: the workgroup's rows r are "slots"
// s = position·g + (head − kv head·g), 16 consecutive ones of the lq·g (each K/V row staged
// once serves g heads; with g = 1 a slot is a position); below, "row r" is slot r's query:
//   1. the round's 16 key rows and 16 value rows go from registers into workgroup memory, and
//      each invocation loads its 8 keys' and 8 values' share of the next round's rows into
//      registers (neighbouring invocations read neighbouring values; the loads are in flight
//      while this round computes);
//   2. invocation (r, j) scores query row r against key j over the whole head, from the tiles;
//   3. invocation (r, j) takes row r's new running max over the 16 scores and turns its score
//      into a weight (one exp per invocation);
//   4. invocation (r, t) updates row r's sum and adds its dimensions (t, t + 16, …) of the 16
//      weighted value rows.
// attention_flash.wgsl (heads up to 512) instead reads K/V from memory inside its loops, one
// load after another: on a GPU each waits for memory. The L×L score matrix never exists.
// q: [lq, n_heads·d], k and v: [lk, n_kv·d], out: [lq, n_heads·d]. Split-K as in
// attention_flash.wgsl (`walk`: attention_walk.wgsl; `finish`: attention_out.wgsl or
// attention_split_out.wgsl; `Params`, the inputs and key_start/key_end: attention_keys.wgsl;
// the host prepends them).

const BQ: u32 = 16u;  // query rows per workgroup
const BK: u32 = 16u;  // keys per round
const TD: u32 = 16u;  // invocations per row in the value pass
const SL: u32 = 8u;   // dimensions per invocation there (d ≤ SL·TD = 128)
const D4: u32 = 32u;  // vec4s of a staged query row
const KS: u32 = 33u;  // vec4s between staged key rows (one spare: the 16 keys' reads of one
                      // column fall in different memory banks)

// Two dimensions, so that naga's index clamps fold or stay the same across rounds: in the
// unrolled loops over keys j the clamp of j folds, and the others are fixed for an invocation;
// a flat index j·128 + i·TD + t would be clamped anew at every read.
var<workgroup> qs: array<array<vec4<f32>, D4>, BQ>;
var<workgroup> ks: array<array<vec4<f32>, KS>, BK>;
var<workgroup> vs: array<array<array<f32, TD>, SL>, BK>; // value j, dimension i·TD + t: [j][i][t]
var<workgroup> sc: array<array<f32, BK>, BQ>; // scores
var<workgroup> ps: array<array<f32, BK>, BQ>; // their softmax weights

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let kvh = wg.x;
    let g = p.n_heads / p.n_kv;
    let r = li / TD;
    let t = li % TD; // the key of the score pass; the dimension lane of the value pass
    let slots = p.lq * g;
    let s0 = wg.y * BQ;
    let live = s0 + r < slots;
    let sw = min(s0 + r, slots - 1u);
    let rw = sw / g; // this invocation's query row (position)
    let d = p.head_dim;
    let kv_stride = p.n_kv * d;
    // Rows are staged 128 wide (zeros past the head): invocation li carries dimension li % 128
    // of rows (query slots once, then each round's key and value rows) li / 128 + 2i, i < 8.
    let d4 = (d + 3u) / 4u;
    let dim = li % 128u;
    let j0 = li / 128u;
    var qr: array<f32, 8>;
    for (var i = 0u; i < 8u; i = i + 1u) {
        qr[i] = 0.0;
        if (dim < d) {
            let si = min(s0 + j0 + 2u * i, slots - 1u);
            qr[i] = q_at(((si / g) * p.n_heads + kvh * g + si % g) * d + dim) * p.scale;
        }
    }
    for (var i = 0u; i < 8u; i = i + 1u) {
        qs[j0 + 2u * i][dim / 4u][dim % 4u] = qr[i];
    }

    var acc: array<f32, 16>; // SL used (`finish` takes 16)
    for (var i = 0u; i < 16u; i = i + 1u) {
        acc[i] = 0.0;
    }
    var m = -3.0e38;
    var l = 0.0;
    // The keys the workgroup walks (those its first slot's position to its last's see), and
    // those of them row rw sees.
    let span = walk_rows(s0 / g, (min(s0 + BQ, slots) - 1u) / g, wg.z);
    let mine = row_keys(rw, span);
    var kr: array<f32, 8>;
    var vr: array<f32, 8>;
    fetch(span.x, span.y, dim, j0, kvh * d, kv_stride, &kr, &vr);
    for (var c0 = span.x; c0 < span.y; c0 = c0 + BK) {
        // 1. This round's rows into the tiles (zeros past the slice's end and the head), the
        // next round's into registers.
        for (var i = 0u; i < 8u; i = i + 1u) {
            let j = j0 + 2u * i;
            ks[j][dim / 4u][dim % 4u] = kr[i];
            vs[j][dim / TD][dim % TD] = vr[i];
        }
        workgroupBarrier();
        fetch(c0 + BK, span.y, dim, j0, kvh * d, kv_stride, &kr, &vr);
        // 2. Row r against key t (-3e38 where row r does not see key t).
        let key = c0 + t;
        let sees = key >= mine.x && key < mine.y;
        var s = -3.0e38;
        if (sees) {
            s = 0.0;
            for (var c = 0u; c < d4; c = c + 1u) {
                s = s + dot(qs[r][c], ks[t][c]);
            }
        }
        sc[r][t] = s;
        workgroupBarrier();
        // 3. Row r's new running max; invocation (r, t) turns its score into a weight.
        var m_new = m;
        for (var j = 0u; j < BK; j = j + 1u) {
            m_new = max(m_new, sc[r][j]);
        }
        var pt = 0.0;
        if (sees) {
            pt = exp(s - m_new);
        }
        ps[r][t] = pt;
        workgroupBarrier();
        // 4. Row r's sum, and invocation (r, t)'s dimensions of the weighted values.
        let corr = exp(m - m_new);
        l = l * corr;
        for (var i = 0u; i < SL; i = i + 1u) {
            acc[i] = acc[i] * corr;
        }
        for (var j = 0u; j < BK; j = j + 1u) {
            let pj = ps[r][j];
            if (pj > 0.0) {
                l = l + pj;
                for (var i = 0u; i < SL; i = i + 1u) {
                    acc[i] = acc[i] + pj * vs[j][i][t];
                }
            }
        }
        m = m_new;
        workgroupBarrier();
    }
    if (live) {
        finish(rw, kvh * g + sw % g, t, wg.z, m, l, acc);
    }
}

// Dimension `dim` of keys and values c0 + j0 + 2i (i < 8) into `kr` and `vr`: 0 past `end`
// and past the head.
fn fetch(c0: u32, end: u32, dim: u32, j0: u32, off: u32, stride: u32, kr: ptr<function, array<f32, 8>>, vr: ptr<function, array<f32, 8>>) {
    for (var i = 0u; i < 8u; i = i + 1u) {
        let key = c0 + j0 + 2u * i;
        (*kr)[i] = 0.0;
        (*vr)[i] = 0.0;
        if (dim < p.head_dim && key < end) {
            (*kr)[i] = f32(k[key * stride + off + dim]);
            (*vr)[i] = f32(v[key * stride + off + dim]);
        }
    }
}
