// The soft embedding of probability rows (DiffusionGemma's self-conditioning input):
// out[out_row0 + m, c] (+)= scale · Σ_v probs[m, row0 + v] · E[v, c] over the rows row0 .. row0 + rows of
// the embedding table held by this chunk (`load_w` / `load_w4` come from the weights_*.wgsl file
// prepended to this one); the first chunk writes, the others accumulate.
// A matmul whose shared dimension is the vocabulary, on matmul_tile.wgsl's register tile
// (prepended by the host): a workgroup of 128 owns 32 output rows × 64 columns and walks its
// chunk of the table 16 rows at a time, staging the probabilities transposed (as that tile
// stages x) and the table's rows as they are stored (four neighbouring columns a vec4, which is
// the tile's "W rows 4·lx .. 4·lx + 3" at one k); each invocation sums a 4×4 block.
// Split-K (GPUs, where a chunk's tiles are too few to fill it: `Gpu::soft_embed_split`):
// workgroup z walks only table rows z·k_slice .. (z + 1)·k_slice of the chunk and stores its
// partial result, times `scale`, to slice z of `out` (then split-K's scratch, dense
// [slices, m, dim]); matmul_merge.wgsl sums the slices into the soft embedding.

struct Params {
    m: u32,
    dim: u32,
    row0: u32,
    rows: u32,
    vocab: u32,
    scale: f32,
    accumulate: u32,
    out_row0: u32,
    k_slice: u32,  // 0: one workgroup walks the whole chunk
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> probs: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
// matmul_tile.wgsl's folded-norm helpers read `g`; this kernel calls none of them, so no
// buffer is bound to it.
@group(0) @binding(4) var<storage, read> g: array<f32>;

const TM: u32 = 32u;

// Probabilities m, table rows v .. v + 3 of the chunk (zero past either edge, or from row `end`).
fn load_p4(m: u32, v: u32, end: u32) -> vec4<f32> {
    var x = vec4<f32>(0.0);
    if (m < p.m) {
        let base = m * p.vocab + p.row0;
        for (var i = 0u; i < 4u; i = i + 1u) {
            if (v + i < end) {
                x[i] = probs[base + v + i];
            }
        }
    }
    return x;
}

// Table row v of the chunk, columns c .. c + 3 (c a multiple of 4; zero past either edge, or
// from row `end`).
fn load_e4(v: u32, c: u32, end: u32) -> vec4<f32> {
    if (v >= end) {
        return vec4<f32>(0.0);
    }
    if (c + 3u < p.dim) {
        return load_w4(v, c, p.dim);
    }
    var x = vec4<f32>(0.0);
    for (var i = 0u; i < 4u; i = i + 1u) {
        if (c + i < p.dim) {
            x[i] = load_w(v, c + i, p.dim);
        }
    }
    return x;
}

@compute @workgroup_size(128)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32) {
    let m0 = wg.y * TM;
    let c0 = wg.x * TILE;
    // Staging: invocation tid loads probability row tid / 4, table rows (tid % 4)·4 .. + 3 of
    // the slice; and table row e / 16, columns (e % 16)·4 .. + 3, for e = tid and tid + 128.
    let lr = tid / 4u;
    let lc = (tid % 4u) * 4u;
    let e1 = tid + 128u;
    // Its 4×4 block: rows 4·ly .., columns 4·lx ...
    let ly = tid / 16u;
    let lx = tid % 16u;
    var acc0 = vec4<f32>(0.0);
    var acc1 = vec4<f32>(0.0);
    var acc2 = vec4<f32>(0.0);
    var acc3 = vec4<f32>(0.0);
    // The table rows this workgroup walks: the chunk, or its slice of it.
    var lo = 0u;
    var end = p.rows;
    if (p.k_slice > 0u) {
        lo = wg.z * p.k_slice;
        end = min(lo + p.k_slice, p.rows);
    }
    // Each slice's loads are made one slice ahead, into registers, so that they are in flight
    // while the slice before is multiplied (as matmul.wgsl's).
    var pv = load_p4(m0 + lr, lo + lc, end);
    var ev0 = load_e4(lo + tid / 16u, c0 + (tid % 16u) * 4u, end);
    var ev1 = load_e4(lo + e1 / 16u, c0 + (e1 % 16u) * 4u, end);
    for (var v0 = lo; v0 < end; v0 = v0 + TK) {
        stage_x(lr, lc, pv);
        ws[tid / 16u][tid % 16u] = ev0;
        ws[e1 / 16u][e1 % 16u] = ev1;
        workgroupBarrier();
        let vn = v0 + TK;
        if (vn < end) {
            pv = load_p4(m0 + lr, vn + lc, end);
            ev0 = load_e4(vn + tid / 16u, c0 + (tid % 16u) * 4u, end);
            ev1 = load_e4(vn + e1 / 16u, c0 + (e1 % 16u) * 4u, end);
        }
        tile_mac(ly, lx, &acc0, &acc1, &acc2, &acc3);
        workgroupBarrier();
    }
    let acc = array<vec4<f32>, 4>(acc0, acc1, acc2, acc3);
    for (var i = 0u; i < 4u; i = i + 1u) {
        let mm = m0 + ly * 4u + i;
        for (var j = 0u; j < 4u; j = j + 1u) {
            let cc = c0 + lx * 4u + j;
            if (mm < p.m && cc < p.dim) {
                var a = acc[i][j] * p.scale;
                if (p.k_slice > 0u) {
                    out[(wg.z * p.m + mm) * p.dim + cc] = a;
                    continue;
                }
                let o = (p.out_row0 + mm) * p.dim + cc;
                if (p.accumulate == 1u) {
                    a = a + out[o];
                }
                out[o] = a;
            }
        }
    }
}
