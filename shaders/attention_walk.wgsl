// Which keys a workgroup of the flash layouts (attention_flash.wgsl, attention_tiles.wgsl) walks;
// the host prepends it to both, after attention_keys.wgsl. Split-K (p.splits > 1): workgroup z
// takes the z-th of p.splits slices of its rows' keys, each a multiple of BK keys (the last
// shorter, or empty); unsplit, one slice holds them all.

// Keys start .. end cut into p.splits slices: slice z.
fn key_slice(start: u32, end: u32, z: u32) -> vec2<u32> {
    var len = 0u;
    if (end > start) {
        len = end - start;
    }
    let chunk = (len + p.splits * BK - 1u) / (p.splits * BK) * BK;
    let a = min(start + z * chunk, start + len);
    return vec2<u32>(a, min(a + chunk, start + len));
}

// The keys the workgroup of query rows first .. first + BQ (of p.lq) walks, from its first
// row's start to its last row's end (its slice z of them under split-K). Uniform across the
// workgroup, as the barriers in its loop need.
fn walk(first: u32, z: u32) -> vec2<u32> {
    return walk_rows(first, min(first + BQ, p.lq) - 1u, z);
}

// The keys that query rows first ..= last see (their slice z under split-K).
fn walk_rows(first: u32, last: u32, z: u32) -> vec2<u32> {
    return key_slice(key_start(first), key_end(last), z);
}

// The part of `span` (a workgroup's keys) that query row `row` sees.
fn row_keys(row: u32, span: vec2<u32>) -> vec2<u32> {
    return vec2<u32>(max(key_start(row), span.x), min(key_end(row), span.y));
}
