// Platform probe (`unmask bench --kernels probe`): cooperative-matrix multiply-adds a second
// through wgpu (tensor cores), the ceiling of matmul_coop.wgsl. The host prepends
// `enable f16; enable wgpu_cooperative_matrix;`. A workgroup is four subgroups (WG = 4 × the
// adapter's fixed subgroup size, as matmul_coop.wgsl); each holds one 16×16 A and B (A[i, j] =
// (i·16 + j) % 5 · p.a, B[k, j] = (j·16 + k) % 3 · p.b, rounded to f16) and four f32
// accumulators, and runs p.rounds rounds of C ← A·B + C on all four (independent, so none waits
// on another). Lane l of each subgroup then writes the sum of element l of its four accumulators
// (row-major) to out[(workgroup·4 + subgroup)·lanes + l]; the CPU twin (`probe::coop_twin`)
// computes the same from the product. Names follow matmul_coop.wgsl (xs, ws, cs, XS) so that
// coop_emulation.rs runs it on adapters without cooperative matrices.

struct Params {
    rounds: u32,
    a: f32,
    b: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

override WG: u32 = 128u;
const XS: u32 = 16u;  // f16 between rows of A and columns of B

// Two-dimensional as in matmul_coop.wgsl (one block of 16 rows here).
var<workgroup> xs: array<array<f16, 256>, 1>;  // A, row-major
var<workgroup> ws: array<array<f16, 256>, 1>;  // B, column-major (B[k, j] at j·16 + k)
var<workgroup> cs: array<array<f32, 256>, 4>;  // 4 subgroups × one 16×16 accumulator

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32,
        @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32,
        @builtin(subgroup_size) lanes: u32) {
    for (var e = tid; e < 256u; e = e + WG) {
        xs[0][e] = f16(f32(e % 5u) * p.a);
        ws[0][e] = f16(f32(e % 3u) * p.b);
    }
    for (var e = tid; e < 1024u; e = e + WG) {
        cs[e / 256u][e % 256u] = 0.0;
    }
    workgroupBarrier();
    let a = coopLoadT<coop_mat16x16<f16, A>>(&xs[0u][0u], XS);
    let b = coopLoad<coop_mat16x16<f16, B>>(&ws[0u][0u], XS);
    var c0 = coopLoadT<coop_mat16x16<f32, C>>(&cs[sg][0u], 16u);
    var c1 = c0;
    var c2 = c0;
    var c3 = c0;
    for (var j = 0u; j < p.rounds; j = j + 1u) {
        c0 = coopMultiplyAdd(a, b, c0);
        c1 = coopMultiplyAdd(a, b, c1);
        c2 = coopMultiplyAdd(a, b, c2);
        c3 = coopMultiplyAdd(a, b, c3);
    }
    // Each accumulator through the subgroup's staging area in turn.
    var t = 0.0;
    workgroupBarrier();
    coopStoreT(c0, &cs[sg][0u], 16u);
    workgroupBarrier();
    t = t + cs[sg][lane];
    workgroupBarrier();
    coopStoreT(c1, &cs[sg][0u], 16u);
    workgroupBarrier();
    t = t + cs[sg][lane];
    workgroupBarrier();
    coopStoreT(c2, &cs[sg][0u], 16u);
    workgroupBarrier();
    t = t + cs[sg][lane];
    workgroupBarrier();
    coopStoreT(c3, &cs[sg][0u], 16u);
    workgroupBarrier();
    t = t + cs[sg][lane];
    out[(wg.x * 4u + sg) * lanes + lane] = t;
}
