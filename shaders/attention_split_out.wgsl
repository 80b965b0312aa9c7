// The split-K ending of the flash layouts (attention_flash.wgsl, attention_tiles.wgsl; the host
// prepends it): workgroup z walks the z-th of `p.splits` slices of its keys (attention_walk.wgsl)
// and writes, per query row and head,
// its running max m, its sum l and its unnormalised output acc[d] to `slices`:
// slices[((z·lq + row)·n_heads + h)·(d + 2) ..] = m, l, acc[0 .. d]. attention_merge.wgsl
// combines the slices. A slice with none of a row's keys leaves m = −3e38, l = 0.

@group(0) @binding(4) var<storage, read_write> slices: array<f32>;

fn finish(row: u32, h: u32, t: u32, z: u32, m: f32, l: f32, acc: array<f32, 16>) {
    let d = p.head_dim;
    let base = ((z * p.lq + row) * p.n_heads + h) * (d + 2u);
    if (t == 0u) {
        slices[base] = m;
        slices[base + 1u] = l;
    }
    for (var i = 0u; i < SL; i = i + 1u) {
        let dim = t + i * TD;
        if (dim < d) {
            slices[base + 2u + dim] = acc[i];
        }
    }
}
