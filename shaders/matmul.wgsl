// y[m, n0 + n] (+)= Σ_k x[m, k] · W[n, k]   — activations (f32) times a weight matrix stored
// [N, K] in any format; `load_w` comes from the weights_*.wgsl file prepended to this one.
// Tiled: a 16×16 workgroup computes a 64×64 output tile, 4×4 per invocation, staging 64×16
// slices of x and W through workgroup memory. Any M, N, K (edges are bounds-checked).
// The weight matrix may be one row-chunk of a larger one (n0 says where its columns go).

struct Params {
    m: u32,          // rows of x
    n: u32,          // rows of this weight chunk
    k: u32,          // shared dimension
    x_offset: u32,   // first element of x
    y_offset: u32,   // element of y where output row 0, column n0 goes
    y_stride: u32,   // elements between output rows
    accumulate: u32, // 1: add into y (fused residual), 0: overwrite
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

const TILE: u32 = 64u;
const TK: u32 = 16u;

var<workgroup> xs: array<f32, 1024>; // [TILE][TK]
var<workgroup> ws: array<f32, 1024>; // [TILE][TK]

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let row0 = wg.y * TILE;
    let col0 = wg.x * TILE;
    let tid = lid.y * 16u + lid.x;
    var acc: array<f32, 16>;
    for (var k0 = 0u; k0 < p.k; k0 = k0 + TK) {
        for (var i = 0u; i < 4u; i = i + 1u) {
            let e = tid + i * 256u;
            let r = e / TK;
            let c = e % TK;
            let kk = k0 + c;
            var xv = 0.0;
            if (row0 + r < p.m && kk < p.k) {
                xv = x[p.x_offset + (row0 + r) * p.k + kk];
            }
            xs[e] = xv;
            var wv = 0.0;
            if (col0 + r < p.n && kk < p.k) {
                wv = load_w(col0 + r, kk, p.k);
            }
            ws[e] = wv;
        }
        workgroupBarrier();
        for (var c = 0u; c < TK; c = c + 1u) {
            var a: array<f32, 4>;
            var b: array<f32, 4>;
            for (var i = 0u; i < 4u; i = i + 1u) {
                a[i] = xs[(lid.y + 16u * i) * TK + c];
                b[i] = ws[(lid.x + 16u * i) * TK + c];
            }
            for (var i = 0u; i < 4u; i = i + 1u) {
                for (var j = 0u; j < 4u; j = j + 1u) {
                    acc[i * 4u + j] = acc[i * 4u + j] + a[i] * b[j];
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i = i + 1u) {
        let r = row0 + lid.y + 16u * i;
        for (var j = 0u; j < 4u; j = j + 1u) {
            let c = col0 + lid.x + 16u * j;
            if (r < p.m && c < p.n) {
                let idx = p.y_offset + r * p.y_stride + c;
                var v = acc[i * 4u + j];
                if (p.accumulate == 1u) {
                    v = v + y[idx];
                }
                y[idx] = v;
            }
        }
    }
}
