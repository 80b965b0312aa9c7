// The one-pass ending of the flash layouts (attention_flash.wgsl, attention_tiles.wgsl; the host
// prepends it): every workgroup walks all of its keys and writes the normalised output of its
// rows, as `out_t` (the host's alias: f32, or f16 for a cooperative-matrix matmul's input).

@group(0) @binding(4) var<storage, read_write> out: array<out_t>;

// Query row `row`, head `h`: out = acc / l over invocation `t`'s dimensions (0 for a row that
// sees no key, as the CPU twin gives).
fn finish(row: u32, h: u32, t: u32, z: u32, m: f32, l: f32, acc: array<f32, 16>) {
    let d = p.head_dim;
    let base = row * p.n_heads * d + h * d;
    for (var i = 0u; i < SL; i = i + 1u) {
        let dim = t + i * TD;
        if (dim < d) {
            out[base + dim] = out_t_of(select(0.0, acc[i] / l, l > 0.0));
        }
    }
}
