// DiffusionGemma's per-row choice on the GPU, so that a step reads back 3 words a row instead of
// a row of logits: for each row of z = logits · inv_t, the argmax (the first of equal maxima),
// the entropy of softmax(z), and a sample from softmax(z) drawn with the row's uniform u (the
// first token whose cumulative probability reaches u·total; the last token when rounding
// leaves it past the total). One 256-wide workgroup per row; invocation i takes a contiguous slice of
// the vocabulary, and the slices' sums are scanned in workgroup memory to find the sample's.
// Rows `row0 ..` of the canvas: u[row0 + r], out[3·(row0 + r) ..] = (argmax, entropy bits, sample).

struct Params {
    rows: u32,
    vocab: u32,
    inv_t: f32,
    row0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> u: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

var<workgroup> rv: array<f32, 256>;
var<workgroup> ri: array<u32, 256>;
var<workgroup> rw: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let r = wg.x + wg.y * nwg.x;
    let t = lid.x;
    let live = r < p.rows;
    let base = min(r, p.rows - 1u) * p.vocab;
    let chunk = (p.vocab + 255u) / 256u;
    let lo = min(t * chunk, p.vocab);
    let hi = min(lo + chunk, p.vocab);
    // The maximum and its first index.
    var m = -3.0e38;
    var mi = 0u;
    for (var i = lo; i < hi; i = i + 1u) {
        let z = x[base + i] * p.inv_t;
        if (z > m) {
            m = z;
            mi = i;
        }
    }
    rv[t] = m;
    ri[t] = mi;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s = s >> 1u) {
        if (t < s && (rv[t + s] > rv[t] || (rv[t + s] == rv[t] && ri[t + s] < ri[t]))) {
            rv[t] = rv[t + s];
            ri[t] = ri[t + s];
        }
        workgroupBarrier();
    }
    let mx = rv[0];
    let amax = ri[0];
    workgroupBarrier();
    // This slice's Σ e and Σ e·(z − max), e = exp(z − max).
    var se = 0.0;
    var sed = 0.0;
    for (var i = lo; i < hi; i = i + 1u) {
        let d = x[base + i] * p.inv_t - mx;
        let e = exp(d);
        se = se + e;
        sed = sed + e * d;
    }
    rv[t] = se;
    rw[t] = sed;
    workgroupBarrier();
    // Inclusive scan of the slices' Σ e (rv), and the total of Σ e·d (rw).
    for (var s = 1u; s < 256u; s = s << 1u) {
        var a = rv[t];
        if (t >= s) {
            a = a + rv[t - s];
        }
        var b = 0.0;
        if (t < 256u - s && t % (2u * s) == 0u) {
            b = rw[t + s];
        }
        workgroupBarrier();
        rv[t] = a;
        if (t % (2u * s) == 0u) {
            rw[t] = rw[t] + b;
        }
        workgroupBarrier();
    }
    let total = rv[255];
    let before = select(0.0, rv[max(t, 1u) - 1u], t > 0u);
    if (!live) {
        return;
    }
    let row = p.row0 + r;
    if (t == 0u) {
        out[3u * row] = amax;
        out[3u * row + 1u] = bitcast<u32>(log(total) - rw[0] / total);
    }
    let goal = u[row] * total;
    let mine = (t == 0u || goal > before) && (goal <= rv[t] || t == 255u);
    if (mine) {
        var acc = before;
        // Rounding may leave the walk short of the goal: the slice's last token then.
        var pick = max(hi, 1u) - 1u;
        for (var i = lo; i < hi; i = i + 1u) {
            acc = acc + exp(x[base + i] * p.inv_t - mx);
            if (acc >= goal) {
                pick = i;
                break;
            }
        }
        out[3u * row + 2u] = pick;
    }
}
