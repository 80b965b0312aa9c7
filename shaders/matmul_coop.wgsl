// y[m, n0 + n] (+)= Σ_k x[m, k] · W[n, k] on cooperative matrices (tensor cores): the same
// parameters, bindings, output tile and stores as matmul.wgsl, for adapters with wgpu's
// EXPERIMENTAL_COOPERATIVE_MATRIX and 16×16×16 f16 matrices with f32 accumulation (NVIDIA and
// AMD through Vulkan). The host prepends `enable f16; enable wgpu_cooperative_matrix;`, the
// weight reader(s), glu.wgsl, matmul_common.wgsl and the store: matmul_out.wgsl, or
// matmul_qkv.wgsl (Q, K and V in one launch, RoPE and f16 K/V in its store) or matmul_glu.wgsl
// (gate and up in one); or, for the grouped expert matmul, moe_common.wgsl and moe_coop.wgsl
// in place of matmul_common.wgsl and the store (a tile's rows are pairs of one expert's list;
// the same functions: `tile_origin`, `load_xt4`, `load_wt4`, `k_range`, `w_tile_row`,
// `store_pair`). Split-K as in matmul.wgsl (workgroup z sums k in
// [z·k_slice, (z+1)·k_slice) into slice z of the scratch), with k_slice a multiple of 32. No
// folded norm (p.norm is 0): x is rounded to f16 as it is staged, so it is normed first.
//
// A workgroup is SG subgroups (WG = SG × the adapter's fixed subgroup size of 8 to 64, set by
// the host), one per 32×32 quarter of its TM × TILE output tile: 64×64 (4), for inputs of at
// most 32 rows (a cached step's; the host's `short`) 32×128 (4), so that no subgroup multiplies
// zero rows and each slice does twice the useful work, or where the host's wide tiles are on
// (`Gpu::set_coop_tile`, an A/B for GPUs) 64×128 (8) for longer inputs: each staged value
// feeds more multiply-adds. The host sets TM and TILE. Per 32-deep slice of k, every invocation converts
// its share of x and of the dequantized weights (loaded into registers while the slice before
// was multiplied) to f16 into workgroup memory (x[r, k] at xs[r / 16][(r % 16)·XS + k], W row
// n likewise, so W is B = Wᵀ in column-major order: blocks of 16 rows, so that each 16×16 load
// stays in its block and its clamped index keeps 16-byte alignment); subgroup s then multiplies its 32×32
// quarter (rows 32·(s / SN), columns 32·(s % SN), SN = TILE / 32 subgroups across) as 2×2
// accumulators of 16×16. Products sum in
// f32; inputs are rounded to f16 once (x clamped to ±65504). At the end each accumulator goes
// through the subgroup's 16×16 staging area in workgroup memory, from which its lanes hand
// neighbouring columns in pairs to the store (`store_pair`: edges, epilogue, RoPE, gate · up).
// x as stored (`x_t`): f32 rounded at staging (`x_half`, from the host: `to_f16`), or f16 that
// its writer rounded so (`Gpu::half_inputs`; `x_half` is then the value itself), held in
// registers as it is between the load and the staging.

// The workgroup's invocations: SG subgroups (the host sets both to the adapter's, the constant
// in the text so that the register arrays below have exactly the size used).
const WGC: u32 = 128u;
override WG: u32 = WGC;
// Rows and columns of the output tile, subgroups across and in all.
const TM: u32 = 64u;
const TILE: u32 = 64u;
const SN: u32 = TILE / 32u;
const SG: u32 = (TM / 32u) * SN;
const TK: u32 = 32u;
// The slice's groups of four k an invocation loads (x rows, W rows: 8 groups a row).
const XR: u32 = 8u * TM / WGC;
const WR: u32 = 8u * TILE / WGC;
// f16 between staged rows: TK and 8 spare (16 bytes), so that the 8 rows a 16×16 load reads at
// once start in 8 different groups of memory banks (with a stride of 32, rows 0, 2, 4 and 6
// would share theirs).
const XS: u32 = 40u;

const BLOCK: u32 = 640u;  // 16 rows × XS
var<workgroup> xs: array<array<f16, BLOCK>, TM / 16u>;     // [TM / 16][16 rows × XS]
var<workgroup> ws: array<array<f16, BLOCK>, TILE / 16u>;   // [TILE / 16][16 weight rows × XS]
var<workgroup> cs: array<array<f32, 256>, SG>;    // per subgroup one 16×16 accumulator, row-major

fn to_f16(v: f32) -> f16 {
    return f16(clamp(v, -65504.0, 65504.0));
}

// Lanes of subgroup `sg` hand its staged 16×16 block at output (r0, c0) of slice z to the
// store, two neighbouring columns at a time.
fn emit(sg: u32, lane: u32, lanes: u32, r0: u32, c0: u32, z: u32) {
    for (var e = 2u * lane; e < 256u; e = e + 2u * lanes) {
        let v = vec2<f32>(cs[sg][e], cs[sg][e + 1u]);
        store_pair(z, r0 + e / 16u, c0 + e % 16u, v);
    }
}

// The slice from k0 of the tile's TM x rows and TILE W rows, as 8 groups of four k each:
// invocation tid takes groups e = tid + j·WG (x: j < XR = 8·TM / WG; W: j < WR = 8·TILE / WG),
// x row e / 8 and the W row of tile column w_tile_row(e / 8) (the store's order), k (e % 8)·4 .. + 3.
// (One loop for both, as long as the longer: x's and W's loads of a step side by side.)
fn fetch(row0: u32, col0: u32, k0: u32, tid: u32, xr: ptr<function, array<vec4<x_t>, XR>>, wr: ptr<function, array<vec4<f32>, WR>>) {
    for (var j = 0u; j < max(XR, WR); j = j + 1u) {
        let e = tid + j * WG;
        if (j < XR) {
            (*xr)[j] = load_xt4(row0 + e / 8u, k0 + (e % 8u) * 4u);
        }
        if (j < WR) {
            (*wr)[j] = load_wt4(col0 + w_tile_row(e / 8u), k0 + (e % 8u) * 4u);
        }
    }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) tid: u32,
        @builtin(subgroup_id) sg: u32, @builtin(subgroup_invocation_id) lane: u32,
        @builtin(subgroup_size) lanes: u32) {
    // The tile's first row and column (moe_coop.wgsl: its expert's pairs staged first; none
    // left for this workgroup: it ends, as its whole workgroup does, with no `return` before
    // the matrix operations, which naga wants in uniform control flow).
    let origin = tile_origin(wg, tid, TM, TILE);
    if (origin.z != 0u) {
        tile(wg.z, tid, sg, lane, lanes, origin.x, origin.y);
    }
}

// The output tile from (row0, col0) of split-K slice z, by invocation tid (lane `lane` of
// subgroup `sg`, subgroups of `lanes`).
fn tile(z: u32, tid: u32, sg: u32, lane: u32, lanes: u32, row0: u32, col0: u32) {
    let sr = (sg / SN) * 32u;
    let sc = (sg % SN) * 32u;
    let qa = sr / 16u;
    let qb = sc / 16u;
    // Accumulators start as zeros loaded from zeroed memory.
    for (var e = tid; e < SG * 256u; e = e + WG) {
        cs[e / 256u][e % 256u] = 0.0;
    }
    workgroupBarrier();
    var c00 = coopLoadT<coop_mat16x16<f32, C>>(&cs[sg][0u], 16u);
    var c01 = c00;
    var c10 = c00;
    var c11 = c00;
    let ks = k_range(z);
    // Each slice's x and W are loaded one slice ahead, into registers, so that the loads are in
    // flight while the slice before is multiplied.
    var xr: array<vec4<x_t>, XR>;
    var wr: array<vec4<f32>, WR>;
    fetch(row0, col0, ks.x, tid, &xr, &wr);
    for (var k0 = ks.x; k0 < ks.y; k0 = k0 + TK) {
        if ((SKIP & 4u) == 0u) {
            for (var j = 0u; j < max(XR, WR); j = j + 1u) {
                let e = tid + j * WG;
                let r = e / 8u;
                let t = w_tile_row(r);
                let kc = (e % 8u) * 4u;
                for (var i = 0u; i < 4u; i = i + 1u) {
                    if (j < XR) {
                        xs[r / 16u][(r % 16u) * XS + kc + i] = x_half(xr[j][i]);
                    }
                    if (j < WR) {
                        ws[t / 16u][(t % 16u) * XS + kc + i] = to_f16(wr[j][i]);
                    }
                }
            }
        }
        workgroupBarrier();
        if (k0 + TK < ks.y && (SKIP & 1u) == 0u) {
            fetch(row0, col0, k0 + TK, tid, &xr, &wr);
        }
        if ((SKIP & 2u) == 0u) {
            for (var kk = 0u; kk < TK; kk = kk + 16u) {
                let a0 = coopLoadT<coop_mat16x16<f16, A>>(&xs[qa][kk], XS);
                let a1 = coopLoadT<coop_mat16x16<f16, A>>(&xs[qa + 1u][kk], XS);
                let b0 = coopLoad<coop_mat16x16<f16, B>>(&ws[qb][kk], XS);
                let b1 = coopLoad<coop_mat16x16<f16, B>>(&ws[qb + 1u][kk], XS);
                c00 = coopMultiplyAdd(a0, b0, c00);
                c01 = coopMultiplyAdd(a0, b1, c01);
                c10 = coopMultiplyAdd(a1, b0, c10);
                c11 = coopMultiplyAdd(a1, b1, c11);
            }
        }
        workgroupBarrier();
    }
    let r0 = row0 + sr;
    let c0 = col0 + sc;
    coopStoreT(c00, &cs[sg][0u], 16u);
    workgroupBarrier();
    emit(sg, lane, lanes, r0, c0, z);
    workgroupBarrier();
    coopStoreT(c01, &cs[sg][0u], 16u);
    workgroupBarrier();
    emit(sg, lane, lanes, r0, c0 + 16u, z);
    workgroupBarrier();
    coopStoreT(c10, &cs[sg][0u], 16u);
    workgroupBarrier();
    emit(sg, lane, lanes, r0 + 16u, c0, z);
    workgroupBarrier();
    coopStoreT(c11, &cs[sg][0u], 16u);
    workgroupBarrier();
    emit(sg, lane, lanes, r0 + 16u, c0 + 16u, z);
}
