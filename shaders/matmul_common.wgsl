// What the matmuls (matmul.wgsl on f32 ALUs, matmul_coop.wgsl on cooperative matrices,
// matmul_cpu_lanes.wgsl for CPU adapters) share: their parameters, the activation and output
// bindings, the bounds-checked loads of four consecutive k of an x row or a W row (zero past the
// edges), split-K's range of k, and the epilogue's store. `norm` (matmul.wgsl only): the x rows
// are RMS-normalized first (the norm folded into the matmul).
// x holds `x_t` and y `y_t` (the host's aliases: f32, or f16 where a session keeps the
// cooperative-matrix matmuls' inputs in half precision; y only for gate · up), read as f32.
// The host prepends it, after the weight binding, a format's `load_w` / `load_w4`
// (weights_*.wgsl), glu.wgsl and rope_common.wgsl (`Rope`).

struct Params {
    m: u32,          // rows of x
    n: u32,          // rows of this weight chunk
    k: u32,          // shared dimension
    x_offset: u32,   // first element of x
    y_offset: u32,   // element of y where output row 0, column n0 goes
    y_stride: u32,   // elements between output rows
    epilogue: u32,   // 0: overwrite, 1: add into y (fused residual), 2 + act: y = glu_act(y, act)·result
                     // (the gated MLP: y holds the gate projection; glu.wgsl, prepended by the host)
    k_slice: u32,    // split-K: the k each workgroup z sums (a multiple of 16); 0: all of them
    norm: u32,       // 1: y = rmsnorm(x, g) · Wᵀ (matmul.wgsl: g at binding 4); 0: y = x · Wᵀ
    eps: f32,        // the norm's epsilon
    n1: u32,         // matmul_qkv.wgsl only: where K's columns begin,
    n2: u32,         // where V's begin,
    y2_offset: u32,  // and where K's and V's output (0, 0) go in y2 and y3
    y3_offset: u32,
    bias: u32,       // matmul_qkv.wgsl only: where Q's, K's and V's biases (n values) begin in
                     // `g` (after the norm's k); 0: none
    _pad1: u32,
    rope: Rope,      // matmul_qkv.wgsl only, unsplit: Q and K turned as they are stored
}

// Bench only (`unmask bench --kernels phases`, `Gpu::set_skip_phases`): parts of the tiled
// matmuls' k loop (matmul.wgsl, matmul_wide.wgsl, matmul_coop.wgsl) to leave out, so that the
// rest can be timed alone: bit 1 the loads of the next slice (each slice stages the first
// slice's values again), 2 the multiply-adds and their workgroup-memory reads, 4 the stores
// into workgroup memory (the loads then feed nothing). Any bit gives wrong results; 0, the
// default, is the loop as it is.
override SKIP: u32 = 0u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(2) var<storage, read> x: array<x_t>;
@group(0) @binding(3) var<storage, read_write> y: array<y_t>;

// Four consecutive k of x row r as stored (zero past the edges); `load_x4`: as f32.
fn load_xt4(r: u32, k: u32) -> vec4<x_t> {
    var v = vec4<x_t>(0.0);
    if (r < p.m) {
        let base = p.x_offset + r * p.k;
        for (var i = 0u; i < 4u; i = i + 1u) {
            if (k + i < p.k) {
                v[i] = x[base + k + i];
            }
        }
    }
    return v;
}

fn load_x4(r: u32, k: u32) -> vec4<f32> {
    return vec4<f32>(load_xt4(r, k));
}

fn load_wt4(r: u32, k: u32) -> vec4<f32> {
    if (r >= p.n) {
        return vec4<f32>(0.0);
    }
    if (k + 3u < p.k) {
        return load_w4(r, k, p.k);
    }
    var v = vec4<f32>(0.0);
    for (var i = 0u; i < 4u; i = i + 1u) {
        if (k + i < p.k) {
            v[i] = load_w(r, k + i, p.k);
        }
    }
    return v;
}

// Output element idx gets v (epilogue 0), y + v (1), or glu_act(y, act) · v (2 + act).
fn put(idx: u32, v: f32) {
    var o = v;
    if (p.epilogue == 1u) {
        o = o + f32(y[idx]);
    } else if (p.epilogue >= 2u) {
        o = glu_act(f32(y[idx]), p.epilogue - 2u) * v;
    }
    y[idx] = y_t_of(o);
}

// The first row and column of workgroup wg's tm × tn output tile, and 1: it has one
// (matmul_coop.wgsl's; moe_coop.wgsl's may have none).
fn tile_origin(wg: vec3<u32>, tid: u32, tm: u32, tn: u32) -> vec3<u32> {
    return vec3<u32>(wg.y * tm, wg.x * tn, 1u);
}

// The k that workgroup z sums: all of them, or its split-K slice [z·k_slice, (z+1)·k_slice).
fn k_range(z: u32) -> vec2<u32> {
    if (p.k_slice == 0u) {
        return vec2<u32>(0u, p.k);
    }
    let begin = z * p.k_slice;
    return vec2<u32>(begin, min(p.k, begin + p.k_slice));
}
