// What the grouped expert matmuls (moe_matmul.wgsl for CPU adapters, moe_matmul_tiled.wgsl
// for GPUs, moe_coop.wgsl on cooperative matrices) share: their parameters, bindings, epilogue
// and reads of an expert's weight rows. The host prepends it after the
// weight reader (weights_*.wgsl) and glu.wgsl.

struct Params {
    n: u32,        // output columns (rows of one expert's matrix)
    kdim: u32,     // shared dimension
    e0: u32,       // first expert of this weight chunk
    k: u32,        // experts per row (slots)
    by_pair: u32,  // 0: x has a row per position (row = pair / k); 1: a row per pair
    rows: u32,     // positions in the pass (list stride)
    experts: u32,  // experts in the model (route layout)
    epilogue: u32, // 0: y = result; 2 + act: y = glu_act(y, act) · result (y holds the gate)
    norm: u32,     // 1: x's rows are RMS-normalized first (moe_matmul_tiled.wgsl: g at binding 5)
    eps: f32,      // the norm's epsilon
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> route: array<u32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

// Output element idx gets v, or glu_act(y, act) · v.
fn put(idx: u32, v: f32) {
    var o = v;
    if (p.epilogue >= 2u) {
        o = glu_act(y[idx], p.epilogue - 2u) * v;
    }
    y[idx] = o;
}

// The first x element of a pair's row.
fn src_of(pair: u32) -> u32 {
    return select(pair / p.k, pair, p.by_pair == 1u) * p.kdim;
}

// Four consecutive k of row r of the expert whose rows start at e_row0 in w (zero past its n
// rows and past k).
fn expert_wt4(e_row0: u32, r: u32, k: u32) -> vec4<f32> {
    if (r >= p.n) {
        return vec4<f32>(0.0);
    }
    if (k + 3u < p.kdim) {
        return load_w4(e_row0 + r, k, p.kdim);
    }
    var v = vec4<f32>(0.0);
    for (var i = 0u; i < 4u; i = i + 1u) {
        if (k + i < p.kdim) {
            v[i] = load_w(e_row0 + r, k + i, p.kdim);
        }
    }
    return v;
}
