//! For tests on adapters without cooperative matrices (lavapipe, CI's): the cooperative-matrix
//! kernels (`matmul_coop.wgsl` with any store) with their matrix operations emulated in plain
//! WGSL, so that everything around the tensor cores (staging, edges, the stores, split-K, and
//! whole sessions on the H200's default path) runs against the CPU twins here. The hardware's
//! own operations are checked where an adapter has them (tests/kernels.rs, `bench/gpu.sh`).
//!
//! The operations are spread over the subgroup as hardware spreads them: an accumulator is
//! 256 / lanes values per lane (lane l holds elements l, l + lanes, …, row-major), and an A or
//! B operand is its place in the staged tile (block b of the two-dimensional workgroup array,
//! offset o in it), read when multiplied (`coopLoadT`: row-major, element (i, j) at
//! `[b][o + i·XS + j]`; `coopLoad`: column-major, at `[b][o + j·XS + i]`;
//! multiply-add `A·B + C`), for the adapter's own subgroups of a fixed size `lanes`.

use super::Gpu;
use crate::error::{Error, Result};

/// `src` (a cooperative-matrix kernel as `kernel_source::source` makes it) with its matrix
/// operations emulated for subgroups of exactly `lanes`; an error names a call the emulation
/// does not know (the kernel changed under it).
pub fn emulate(src: &str, lanes: u32) -> Result<String> {
    let per = 256 / lanes;
    let ops = format!(
        r#"
alias Acc = array<f32, {per}>;
var<private> emu_lane: u32;
fn ld_c(b: u32, o: u32) -> Acc {{
    var m: Acc;
    for (var t = 0u; t < {per}u; t++) {{ m[t] = cs[b][o + emu_lane + {lanes}u * t]; }}
    return m;
}}
fn st_c(m: Acc, b: u32, o: u32) {{
    for (var t = 0u; t < {per}u; t++) {{ cs[b][o + emu_lane + {lanes}u * t] = m[t]; }}
}}
fn mma(a: vec2<u32>, b: vec2<u32>, c: Acc) -> Acc {{
    var r = c;
    for (var t = 0u; t < {per}u; t++) {{
        let e = emu_lane + {lanes}u * t;
        let i = e / 16u;
        let j = e % 16u;
        var s = 0.0;
        for (var k = 0u; k < 16u; k++) {{ s += f32(xs[a.x][a.y + i * XS + k]) * f32(ws[b.x][b.y + j * XS + k]); }}
        r[t] += s;
    }}
    return r;
}}
"#
    );
    // Each call's opening and closing around a pointer's two indices `&m[i][j]`, and what it
    // becomes: an A or B operand is (i, j); the accumulator's load and store take i, j too.
    let operand = |a: &str| a.split_once("][").map(|(i, j)| format!("vec2<u32>({i}, {j})"));
    let mut out = src.replace("enable wgpu_cooperative_matrix;\n", "");
    out = rewrite(&out, "coopLoadT<coop_mat16x16<f16, A>>(&xs[", "], XS)", operand)?;
    out = rewrite(&out, "coopLoad<coop_mat16x16<f16, B>>(&ws[", "], XS)", operand)?;
    out = rewrite(&out, "coopLoadT<coop_mat16x16<f32, C>>(&cs[", "], 16u)", |a| a.split_once("][").map(|(i, j)| format!("ld_c({i}, {j})")))?;
    out = rewrite(&out, "coopStoreT(", "], 16u)", |a| a.split_once(", &cs[").map(|(m, ij)| format!("st_c({m}, {})", ij.replace("][", ", "))))?;
    let entry = "@builtin(subgroup_size) lanes: u32) {\n";
    for (from, to) in [("coopMultiplyAdd(", "mma(".to_string()), (entry, format!("{entry}    emu_lane = lane;\n"))] {
        if !out.contains(from) {
            return Err(unknown(from));
        }
        out = out.replace(from, &to);
    }
    if ["coopLoad", "coopStore", "coopMultiply", "coop_mat"].iter().any(|op| out.contains(op)) {
        return Err(Error::Gpu("internal: matmul_coop.wgsl has a cooperative operation the emulation does not replace".into()));
    }
    Ok(format!("{out}\n{ops}"))
}

fn unknown(call: &str) -> Error {
    Error::Gpu(format!("internal: the cooperative-matrix emulation expects {call:?} in matmul_coop.wgsl"))
}

/// Every `open … close` in `src` replaced by `with(the text between)`, which is None where that
/// text is not the form it knows. At least one must be there.
fn rewrite(src: &str, open: &str, close: &str, with: impl Fn(&str) -> Option<String>) -> Result<String> {
    let (mut out, mut rest, mut found) = (String::new(), src, false);
    while let Some(at) = rest.find(open) {
        let args_at = at + open.len();
        let len = rest[args_at..].find(close).ok_or_else(|| unknown(close))?;
        let args = &rest[args_at..args_at + len];
        out.push_str(&rest[..at]);
        out.push_str(&with(args).ok_or_else(|| unknown(&format!("{open}{args}{close} (two indices)")))?);
        rest = &rest[args_at + len + close.len()..];
        found = true;
    }
    if !found {
        return Err(unknown(open));
    }
    out.push_str(rest);
    Ok(out)
}

impl Gpu {
    /// This device with tiled matmuls on emulated cooperative matrices (`emulate`; tests): on an
    /// adapter that has none but has shader-f16 and subgroups of one fixed size (8 to 64). An
    /// adapter with real ones keeps them. `coop_matmul` is then on.
    pub fn with_emulated_coop(mut self) -> Result<Gpu> {
        if self.coop_lanes == 0 {
            let info = self.adapter.get_info();
            let lanes = info.subgroup_min_size;
            let fixed = self.report.subgroups && lanes == info.subgroup_max_size && (8..=64).contains(&lanes);
            if !self.report.shader_f16 || !fixed {
                return Err(Error::Gpu(format!(
                    "{}: emulating cooperative matrices needs shader-f16 and one fixed subgroup size of 8 to 64",
                    self.report.name
                )));
            }
            self.coop_lanes = lanes;
            self.coop_emulated = true;
        }
        self.set_coop_matmul(true)?;
        Ok(self)
    }
}
