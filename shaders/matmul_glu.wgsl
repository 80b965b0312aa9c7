// matmul.wgsl over the gated MLP's gate and up weights at once: y = act(x·Gateᵀ) ⊙ (x·Upᵀ) in
// one launch, x staged (and a folded norm computed) once, no gate buffer round trip. Each 64-wide
// column tile t holds gate rows 32t .. 32t + 31 (its columns 0..31) and the same up rows
// (32..63), so a tile's staging reads one matrix per half and invocations lx < 8 hold gate
// results whose up partners are held by lx + 8; `finish` pairs them through workgroup memory.
// p.n is the tiles' width (64 per 32 outputs), n1 the outputs (rows of each matrix); act is
// p.epilogue − 2. The host prepends each matrix's reader renamed (_a: gate, binding 1; _b: up,
// binding 5). Split-K: the slices store the tiles' columns as they are ([splits, m, p.n]) and
// matmul_merge.wgsl pairs them (its `pair` 1).

// Tiled column r: (matrix row, 0 for gate or 1 for up).
fn glu_row(r: u32) -> vec2<u32> {
    return vec2<u32>(r / 64u * 32u + r % 32u, (r % 64u) / 32u);
}

fn load_w(r: u32, k: u32, kdim: u32) -> f32 {
    let s = glu_row(r);
    if (s.x >= p.n1) {
        return 0.0;
    }
    if (s.y == 0u) {
        return load_w_a(s.x, k, kdim);
    }
    return load_w_b(s.x, k, kdim);
}

fn load_w4(r: u32, k: u32, kdim: u32) -> vec4<f32> {
    let s = glu_row(r);
    if (s.x >= p.n1) {
        return vec4<f32>(0.0);
    }
    if (s.y == 0u) {
        return load_w4_a(s.x, k, kdim);
    }
    return load_w4_b(s.x, k, kdim);
}

// Split-K slices store their partial results. Unsplit, up results (lx ≥ 8) go to workgroup
// memory; gate results (lx < 8) take their partners there and store act(gate) · up at output
// column col0 / 2 + 4·lx + j. Every invocation calls it.
fn finish(z: u32, r0: u32, col0: u32, lx: u32, ly: u32, acc: array<vec4<f32>, 4>) {
    if (p.k_slice != 0u) {
        for (var i = 0u; i < 4u; i = i + 1u) {
            for (var j = 0u; j < 4u; j = j + 1u) {
                let c = col0 + lx * 4u + j;
                if (r0 + i < p.m && c < p.n) {
                    y[(z * p.m + r0 + i) * p.n + c] = acc[i][j];
                }
            }
        }
        return;
    }
    // Nobody still reads xs or ws (the norm's sums).
    workgroupBarrier();
    let slot = (ly * 8u + lx % 8u) * 2u;
    if (lx >= 8u) {
        xs[slot] = acc[0];
        xs[slot + 1u] = acc[1];
        ws[slot] = acc[2];
        ws[slot + 1u] = acc[3];
    }
    workgroupBarrier();
    if (lx < 8u) {
        let up = array<vec4<f32>, 4>(xs[slot], xs[slot + 1u], ws[slot], ws[slot + 1u]);
        for (var i = 0u; i < 4u; i = i + 1u) {
            for (var j = 0u; j < 4u; j = j + 1u) {
                let c = col0 / 2u + lx * 4u + j;
                if (r0 + i < p.m && c < p.n1) {
                    y[p.y_offset + r0 * p.y_stride + i * p.y_stride + c] = glu_act(acc[i][j], p.epilogue - 2u) * up[i][j];
                }
            }
        }
    }
}
