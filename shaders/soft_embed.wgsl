// The soft embedding of probability rows (DiffusionGemma's self-conditioning input):
// out[out_row0 + m, c] (+)= scale · Σ_v probs[m, row0 + v] · E[v, c] over the rows row0 .. row0 + rows of
// the embedding table held by this chunk (`load_w` comes from the weights_*.wgsl file
// prepended to this one); the first chunk writes, the others accumulate.
// A (vocab-long) matmul of probabilities by the table: each workgroup owns 16 output rows × 64
// columns and walks the vocabulary 32 rows at a time, staging that tile of probabilities and
// of (dequantized) table rows in workgroup memory; each invocation sums 4 rows of one column.

struct Params {
    m: u32,
    dim: u32,
    row0: u32,
    rows: u32,
    vocab: u32,
    scale: f32,
    accumulate: u32,
    out_row0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> probs: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const TM: u32 = 16u;
const TC: u32 = 64u;
const TV: u32 = 32u;

var<workgroup> ps: array<f32, 512>;
var<workgroup> es: array<f32, 2048>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let t = lid.x;
    let c0 = wg.x * TC;
    let m0 = wg.y * TM;
    let col = t % TC;
    let r0 = (t / TC) * 4u;
    var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    for (var v0 = 0u; v0 < p.rows; v0 = v0 + TV) {
        for (var i = t; i < TM * TV; i = i + 256u) {
            let mm = m0 + i / TV;
            let vv = v0 + i % TV;
            var x = 0.0;
            if (mm < p.m && vv < p.rows) {
                x = probs[mm * p.vocab + p.row0 + vv];
            }
            ps[i] = x;
        }
        for (var i = t; i < TV * TC; i = i + 256u) {
            let vv = v0 + i / TC;
            let cc = c0 + i % TC;
            var x = 0.0;
            if (vv < p.rows && cc < p.dim) {
                x = load_w(vv, cc, p.dim);
            }
            es[i] = x;
        }
        workgroupBarrier();
        for (var v = 0u; v < TV; v = v + 1u) {
            let e = es[v * TC + col];
            for (var r = 0u; r < 4u; r = r + 1u) {
                acc[r] = acc[r] + ps[(r0 + r) * TV + v] * e;
            }
        }
        workgroupBarrier();
    }
    let cc = c0 + col;
    if (cc >= p.dim) {
        return;
    }
    for (var r = 0u; r < 4u; r = r + 1u) {
        let mm = m0 + r0 + r;
        if (mm < p.m) {
            let o = (p.out_row0 + mm) * p.dim + cc;
            var a = acc[r] * p.scale;
            if (p.accumulate == 1u) {
                a = a + out[o];
            }
            out[o] = a;
        }
    }
}
