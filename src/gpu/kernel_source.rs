//! The WGSL text of each kernel specialisation: one `shaders/` file, or the weight binding, a
//! format's reader and the kernel that uses it, one after the other; wide-head attention,
//! the attention layouts, split-K's ending, the K/V element type and the f32 matmuls' register
//! tile are chosen here, and the pipeline-overridable constants each specialisation sets.

use super::kernels::{AttnLayout, Kernel, KernelVariant, KvType};
use super::probe::Probe;
use crate::model::DType;

fn weight_reader(d: DType) -> &'static str {
    match d {
        DType::F32 => include_str!("../../shaders/weights_f32.wgsl"),
        DType::F16 => include_str!("../../shaders/weights_f16.wgsl"),
        DType::BF16 => include_str!("../../shaders/weights_bf16.wgsl"),
        DType::Q8_0 => include_str!("../../shaders/weights_q8_0.wgsl"),
        DType::Q4_0 => include_str!("../../shaders/weights_q4_0.wgsl"),
        DType::Q4K => include_str!("../../shaders/weights_q4_k.wgsl"),
        DType::Q6K => include_str!("../../shaders/weights_q6_k.wgsl"),
    }
}

/// A row kernel (rmsnorm.wgsl, select.wgsl, softmax.wgsl: one workgroup a row, reduced in
/// workgroup memory) with `wg` invocations a workgroup instead of its 256.
fn row_workgroup(src: &str, wg: u32) -> String {
    src.replace("const WG: u32 = 256u;", &format!("const WG: u32 = {wg}u;"))
}

const WEIGHTS_COMMON: &str = include_str!("../../shaders/weights_common.wgsl");
/// The gated MLP's activation (the matmuls' gated epilogue).
const GLU: &str = include_str!("../../shaders/glu.wgsl");
/// RoPE's pairs and angles (rope.wgsl, and the matmul stores that turn Q and K), and their
/// parameters, part of every matmul's.
const ROPE: &str = include_str!("../../shaders/rope_common.wgsl");
/// What the matmul kernels share (parameters, edge loads, split-K's range, the epilogue), after
/// `ROPE`.
const MATMUL_COMMON: &str = concat!(include_str!("../../shaders/rope_common.wgsl"), "\n", include_str!("../../shaders/matmul_common.wgsl"));
/// The attention kernels' parameters, inputs and key ranges (the CPU lanes' with vec4 K/V).
const ATTENTION_KEYS: &str = include_str!("../../shaders/attention_keys.wgsl");
/// What the CPU-lanes matmuls share: a slice's weights and its product with 16 x rows.
const CPU_LANES_DOT: &str = concat!(include_str!("../../shaders/cpu_lanes_weights.wgsl"), "\n", include_str!("../../shaders/cpu_lanes_rows.wgsl"));
/// The tiled matmul's body (its store: `matmul_out.wgsl` or `matmul_qkv.wgsl`).
const MATMUL: &str = include_str!("../../shaders/matmul.wgsl");

/// The weight binding and format `d`'s reader with every module-scope name (the binding `w`,
/// functions, structs, constants) given `suffix`, at binding `binding`: one of the three
/// weight matrices of `matmul_qkv.wgsl`, or of `matmul_glu.wgsl`'s two. Names are whole
/// identifiers not after a `.` (a vector's `.w` stays).
fn renamed_reader(d: DType, suffix: &str, binding: u32) -> String {
    let src = format!("{WEIGHTS_COMMON}\n{}", weight_reader(d)).replace("@binding(1)", &format!("@binding({binding})"));
    let mut names = vec!["w".to_string()];
    for line in src.lines() {
        for kw in ["fn ", "struct ", "const ", "alias "] {
            if let Some(rest) = line.strip_prefix(kw) {
                names.push(rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect());
            }
        }
    }
    let mut out = String::with_capacity(src.len() + 256);
    let mut word = String::new();
    let mut prev = ' ';
    for c in src.chars().chain(std::iter::once('\n')) {
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            out.push_str(&word);
            if prev != '.' && names.contains(&word) {
                out.push_str(suffix);
            }
            word.clear();
        }
        out.push(c);
        prev = c;
    }
    out
}
/// To open a module (`enable` must come first): `enable f16;` where any of `types` is f16, then
/// per (name, type) `alias name = f32;` or `f16`, and `fn name_of(v: f32) -> name`, the value as
/// stored (f16: clamped to ±65504 and rounded, as `matmul_coop.wgsl` stages its inputs).
fn element_aliases(types: &[(&str, KvType)]) -> String {
    let mut out = String::new();
    if types.iter().any(|t| t.1 == KvType::F16) {
        out.push_str("enable f16;\n");
    }
    for (name, t) in types {
        out.push_str(&match t {
            KvType::F32 => format!("alias {name} = f32;\nfn {name}_of(v: f32) -> f32 {{ return v; }}\n"),
            KvType::F16 => format!("alias {name} = f16;\nfn {name}_of(v: f32) -> f16 {{ return f16(clamp(v, -65504.0, 65504.0)); }}\n"),
        });
    }
    out
}

fn element_alias(name: &str, t: KvType) -> String {
    element_aliases(&[(name, t)])
}

/// How `head_pass.wgsl` reads and writes Q or K (`k`, binding 3) and, with `v`, V (the next
/// free binding): in place in f32, or with `store` from f32 bindings to f16 ones (source, then
/// destination). Without `v`, V reads as 0 and is not written.
fn head_pass_io(v: bool, store: bool) -> String {
    let io = |name: &str, b: u32| match store {
        true => format!(
            "@group(0) @binding({b}) var<storage, read> {name}_src: array<f32>;\n\
             @group(0) @binding({}) var<storage, read_write> {name}_dst: array<f16>;\n\
             fn get_{name}(i: u32) -> f32 {{ return {name}_src[i]; }}\n\
             fn put_{name}(i: u32, a: f32) {{ {name}_dst[i] = f16(a); }}",
            b + 1
        ),
        false => format!(
            "@group(0) @binding({b}) var<storage, read_write> {name}_rows: array<f32>;\n\
             fn get_{name}(i: u32) -> f32 {{ return {name}_rows[i]; }}\n\
             fn put_{name}(i: u32, a: f32) {{ {name}_rows[i] = a; }}"
        ),
    };
    let v_io = match v {
        true => io("v", if store { 5 } else { 4 }),
        false => "fn get_v(i: u32) -> f32 { return 0.0; }\nfn put_v(i: u32, a: f32) {}".into(),
    };
    format!("{}{}\n{v_io}\nconst HAS_V: bool = {v};", if store { "enable f16;\n" } else { "" }, io("k", 3))
}

/// What split-K's endings share (`matmul_merge.wgsl`, `matmul_merge_qkv.wgsl`).
const MERGE_COMMON: &str = include_str!("../../shaders/matmul_merge_common.wgsl");

/// The f32 register tile of matmul.wgsl and moe_matmul_tiled.wgsl.
const MATMUL_TILE: &str = include_str!("../../shaders/matmul_tile.wgsl");

/// `matmul_coop.wgsl` with its output tile `coop_tile(short, wide)`.
fn coop_core(short: bool, wide: bool) -> String {
    let (tm, tn) = coop_tile(short, wide);
    include_str!("../../shaders/matmul_coop.wgsl").replacen(
        "const TM: u32 = 64u;\nconst TILE: u32 = 64u;",
        &format!("const TM: u32 = {tm}u;\nconst TILE: u32 = {tn}u;"),
        1,
    )
}

/// A tiled matmul's source: the weight readers (`readers`), glu.wgsl, the common part, a store
/// (`matmul_out.wgsl`, `matmul_qkv.wgsl`, `matmul_glu.wgsl`) and a core: the f32 register tile
/// (`matmul.wgsl`; `wide`: its 8×8 form, `matmul_wide.wgsl`) or, with `coop`, cooperative
/// matrices (`matmul_coop.wgsl`, whose `enable`s open the module, as does f16's where `f16` asks
/// for it). `io`: the element types of x and y (`x_t`, `y_t`); the cooperative core's tile
/// (`coop_tile`): 64×64, `short` 32×128, or `wide` 64×128.
fn matmul_with(coop: bool, f16: bool, io: [KvType; 2], readers: &str, store: &str, wide: bool, short: bool) -> String {
    let core = match (coop, wide) {
        (true, _) => coop_core(short, wide),
        (false, false) => MATMUL.to_string(),
        (false, true) => include_str!("../../shaders/matmul_wide.wgsl").to_string(),
    };
    let f16 = f16 || coop || io.contains(&KvType::F16);
    let enables = match (f16, coop) {
        (_, true) => "enable f16;\nenable wgpu_cooperative_matrix;\n",
        (true, false) => "enable f16;\n",
        (false, false) => "",
    };
    // (The aliases' own `enable` is the one above.)
    let aliases = element_aliases(&[("x_t", io[0]), ("y_t", io[1])]).replace("enable f16;\n", "");
    // The cooperative core's x at staging: rounded there, or already f16.
    let tile = match (coop, io[0]) {
        (false, _) => MATMUL_TILE,
        (true, KvType::F32) => "fn x_half(v: x_t) -> f16 { return to_f16(v); }",
        (true, KvType::F16) => "fn x_half(v: x_t) -> f16 { return v; }",
    };
    format!("{enables}{aliases}{readers}\n{GLU}\n{MATMUL_COMMON}\n{tile}\n{store}\n{core}")
}

/// The WGSL source of a kernel: one file, or the weight binding, a format's reader and the
/// kernel that uses it, one after the other.
pub fn source(k: Kernel) -> String {
    source_with(k, false)
}

/// The output tile (rows, columns) of `matmul_coop.wgsl`: 32×128 for short inputs, else
/// 64×128 where `wide`, else 64×64.
pub fn coop_tile(short: bool, wide: bool) -> (u32, u32) {
    match (short, wide) {
        (true, _) => (32, 128),
        (false, true) => (64, 128),
        (false, false) => (64, 64),
    }
}

/// The subgroups of a workgroup of cooperative kernel `k` (`wide` as for `source_with`): one
/// per 32×32 of its tile.
pub fn coop_subgroups(k: Kernel, wide: bool) -> u32 {
    match k {
        Kernel::MatmulCoop { .. } | Kernel::MatmulQkv { .. } | Kernel::MatmulGlu { .. } | Kernel::MoeMatmulCoop { .. } => {
            let (tm, tn) = coop_tile(coop_short(k), wide);
            tm * tn / 1024
        }
        _ => 4,
    }
}

/// Whether cooperative kernel `k` has the short 32×128 tile: the matmuls for inputs of at most
/// 32 rows, and the grouped expert matmul (an expert's list is a few pairs to a few tens).
pub fn coop_short(k: Kernel) -> bool {
    match k {
        Kernel::MatmulCoop { short, .. } | Kernel::MatmulQkv { short, .. } | Kernel::MatmulGlu { short, .. } => short,
        Kernel::MoeMatmulCoop { .. } => true,
        _ => false,
    }
}

/// `source_with` for an adapter whose cooperative-matrix kernels run with subgroups of
/// `coop_lanes` (`coop_subgroups` a workgroup, the pipeline's `WG`): `matmul_coop.wgsl`'s
/// register arrays sized for that workgroup (`WGC`).
pub fn source_for(k: Kernel, wide: bool, coop_lanes: u32) -> String {
    let src = source_with(k, wide);
    match k.is_coop() && coop_lanes > 0 {
        true => src.replacen("const WGC: u32 = 128u;", &format!("const WGC: u32 = {}u;", coop_subgroups(k, wide) * coop_lanes), 1),
        false => src,
    }
}

/// `source`, with the wider tile where `wide`: the f32 tiled matmuls' 8×8 register tile
/// (`matmul_wide.wgsl`, `Gpu::set_register_tile`), the cooperative ones' 64×128 output tile for
/// inputs over 32 rows (`Gpu::set_coop_tile`).
pub fn source_with(k: Kernel, wide: bool) -> String {
    match k {
        Kernel::Matmul { dtype, variant, x, xw, .. } => {
            let reader = weight_reader(dtype);
            let io = [x, KvType::F32];
            match variant {
                KernelVariant::Tiled => {
                    matmul_with(false, false, io, &format!("{WEIGHTS_COMMON}\n{reader}"), include_str!("../../shaders/matmul_out.wgsl"), wide, false)
                }
                KernelVariant::CpuLanes => format!(
                    "{}{WEIGHTS_COMMON}\n{reader}\n{GLU}\n{MATMUL_COMMON}\n{}\n{CPU_LANES_DOT}\n{}",
                    element_aliases(&[("x_t", x), ("y_t", KvType::F32)]),
                    match xw {
                        true => format!("@group(0) @binding(4) var<uniform> x4: array<vec4<x_t>, {}>;", super::matmul_window::X_WINDOW_BYTES / 16),
                        false => "@group(0) @binding(4) var<storage, read> x4: array<vec4<x_t>>;".into(),
                    },
                    include_str!("../../shaders/matmul_cpu_lanes.wgsl")
                ),
            }
        }
        Kernel::MatmulQkv { dtypes, kv, coop, x, short } => {
            let readers: Vec<String> = dtypes.iter().zip(["_a", "_b", "_c"]).zip([1, 6, 7]).map(|((&d, s), b)| renamed_reader(d, s, b)).collect();
            let alias = match kv {
                KvType::F32 => "alias kv_t = f32;",
                KvType::F16 => "alias kv_t = f16;",
            };
            matmul_with(
                coop,
                kv == KvType::F16,
                [x, KvType::F32],
                &format!("{alias}\n{}", readers.join("\n")),
                include_str!("../../shaders/matmul_qkv.wgsl"),
                wide,
                coop && short,
            )
        }
        Kernel::MatmulGlu { dtypes, coop, x, out, short } => matmul_with(
            coop,
            false,
            [x, out],
            &format!("{}\n{}", renamed_reader(dtypes[0], "_a", 1), renamed_reader(dtypes[1], "_b", 4)),
            include_str!("../../shaders/matmul_glu.wgsl"),
            wide,
            coop && short,
        ),
        Kernel::MatmulCoop { dtype, x, short } => matmul_with(
            true,
            false,
            [x, KvType::F32],
            &format!("{WEIGHTS_COMMON}\n{}", weight_reader(dtype)),
            include_str!("../../shaders/matmul_out.wgsl"),
            wide,
            short,
        ),
        Kernel::Embed(d) => format!("{WEIGHTS_COMMON}\n{}\n{}", weight_reader(d), include_str!("../../shaders/embed.wgsl")),
        Kernel::RmsNorm { out, wg } => format!("{}\n{}", element_alias("out_t", out), row_workgroup(include_str!("../../shaders/rmsnorm.wgsl"), wg)),
        Kernel::Rope => format!("{ROPE}\n{}", include_str!("../../shaders/rope.wgsl")),
        Kernel::SoftCap => include_str!("../../shaders/softcap.wgsl").into(),
        Kernel::Softmax(wg) => row_workgroup(include_str!("../../shaders/softmax.wgsl"), wg),
        Kernel::SoftEmbed(d) => format!("{WEIGHTS_COMMON}\n{}\n{MATMUL_TILE}\n{}", weight_reader(d), include_str!("../../shaders/soft_embed.wgsl")),
        Kernel::CfgMix => include_str!("../../shaders/cfg_mix.wgsl").into(),
        Kernel::DgChoose => include_str!("../../shaders/dg_choose.wgsl").into(),
        Kernel::Attention { layout, wide, split, kv, out } => {
            // The flash layouts: an ending (one pass or split-K), which keys a workgroup walks, the body.
            let flash = |body: &str| {
                let end = if split { include_str!("../../shaders/attention_split_out.wgsl") } else { include_str!("../../shaders/attention_out.wgsl") };
                format!("{end}\n{}\n{body}", include_str!("../../shaders/attention_walk.wgsl"))
            };
            let body = match layout {
                AttnLayout::Portable => include_str!("../../shaders/attention.wgsl").to_string(),
                AttnLayout::Flash => flash(include_str!("../../shaders/attention_flash.wgsl")),
                AttnLayout::Tiles => flash(include_str!("../../shaders/attention_tiles.wgsl")),
                AttnLayout::CpuLanes => include_str!("../../shaders/attention_cpu_lanes.wgsl").to_string(),
            };
            // How K/V are stored; the CPU lanes read them as vec4s (one lane loop on lavapipe
            // for four values).
            let keys = match layout {
                AttnLayout::CpuLanes => ATTENTION_KEYS.replace("k: array<kv_t>;", "k: array<vec4<kv_t>>;").replace("v: array<kv_t>;", "v: array<vec4<kv_t>>;"),
                _ => ATTENTION_KEYS.to_string(),
            };
            let src = format!("{}\n{keys}\n{body}", element_aliases(&[("kv_t", kv), ("out_t", out)]));
            // Heads wider than 256 (DiffusionGemma's full layers: 512): twice the registers per
            // row (the portable layout stages half the keys per round).
            // (The host never asks attention_tiles.wgsl for a wide head.)
            match (wide, layout) {
                (false, _) | (true, AttnLayout::Tiles) => src,
                (true, AttnLayout::Flash) => src.replace("array<f32, 16>", "array<f32, 32>").replace("const SL: u32 = 16u;", "const SL: u32 = 32u;"),
                (true, _) => src
                    .replace("array<f32, 256>", "array<f32, 512>")
                    .replace("array<vec4<f32>, 64>", "array<vec4<f32>, 128>")
                    .replace("const MAX_D: u32 = 256u;", "const MAX_D: u32 = 512u;")
                    .replace("const KC: u32 = 8u;", "const KC: u32 = 4u;"),
            }
        }
        Kernel::MatmulMerge { out } => {
            format!("{}\n{GLU}\n{ROPE}\n{MERGE_COMMON}\n{}", element_alias("out_t", out), include_str!("../../shaders/matmul_merge.wgsl"))
        }
        Kernel::MatmulMergeQkv { kv } => {
            format!("{}\n{ROPE}\n{MERGE_COMMON}\n{}", element_alias("out_t", kv), include_str!("../../shaders/matmul_merge_qkv.wgsl"))
        }
        Kernel::KvStore => include_str!("../../shaders/kv_store.wgsl").into(),
        Kernel::AttentionMerge { out } => format!("{}\n{}", element_alias("out_t", out), include_str!("../../shaders/attention_merge.wgsl")),
        Kernel::Select(wg) => row_workgroup(include_str!("../../shaders/select.wgsl"), wg),
        Kernel::Bias => include_str!("../../shaders/bias.wgsl").into(),
        Kernel::HeadPass { v, store } => format!("{}\n{ROPE}\n{}", head_pass_io(v, store), include_str!("../../shaders/head_pass.wgsl")),
        Kernel::MoeRoute => include_str!("../../shaders/moe_route.wgsl").into(),
        Kernel::MoeMatmul { dtype, tile, .. } => {
            let common = include_str!("../../shaders/moe_common.wgsl");
            let body = match tile {
                0 => format!("{CPU_LANES_DOT}\n{}", include_str!("../../shaders/moe_matmul.wgsl")),
                _ => format!("{MATMUL_TILE}\n{}", include_str!("../../shaders/moe_matmul_tiled.wgsl")),
            };
            format!("{WEIGHTS_COMMON}\n{}\n{GLU}\n{common}\n{body}", weight_reader(dtype))
        }
        Kernel::MoeMatmulCoop { dtype } => {
            // A tile of one expert's pairs (`coop_short`).
            let core = coop_core(true, false);
            format!(
                "enable f16;\nenable wgpu_cooperative_matrix;\n{}\n{WEIGHTS_COMMON}\n{}\n{GLU}\n{}\n{}\n{core}",
                element_alias("x_t", KvType::F32),
                weight_reader(dtype),
                include_str!("../../shaders/moe_common.wgsl"),
                include_str!("../../shaders/moe_coop.wgsl")
            )
        }
        Kernel::MoeCombine => include_str!("../../shaders/moe_combine.wgsl").into(),
        Kernel::Probe(Probe::Read) => include_str!("../../shaders/probe_read.wgsl").into(),
        Kernel::Probe(Probe::Shared) => include_str!("../../shaders/probe_shared.wgsl").into(),
        Kernel::Probe(Probe::Fma) => include_str!("../../shaders/probe_fma.wgsl").into(),
        Kernel::Probe(Probe::Coop) => format!("enable f16;\nenable wgpu_cooperative_matrix;\n{}", include_str!("../../shaders/probe_coop.wgsl")),
    }
}

/// The pipeline-overridable constants that select a kernel's variant (`coop_lanes`: the subgroup
/// size the cooperative-matrix kernels are launched with, `coop_subgroups(k, wide)` a workgroup;
/// `skip`: the parts of the tiled matmuls' k loop left out, `Gpu::set_skip_phases`, 0 for none;
/// `X4`, `WIDE`: the CPU-lanes matmuls' vec4 reads of x and the weights).
pub fn pipeline_constants(k: Kernel, coop_lanes: u32, skip: u32, wide: bool) -> Vec<(&'static str, f64)> {
    let tiled_core =
        matches!(k, Kernel::Matmul { variant: KernelVariant::Tiled, .. } | Kernel::MatmulQkv { .. } | Kernel::MatmulGlu { .. } | Kernel::MatmulCoop { .. });
    let mut constants = match k {
        _ if k.is_coop() => vec![("WG", (coop_subgroups(k, wide) * coop_lanes) as f64)],
        Kernel::Matmul { variant: KernelVariant::Tiled, short: true, .. } | Kernel::MatmulQkv { short: true, .. } | Kernel::MatmulGlu { short: true, .. } => {
            vec![("ROWS", 8.0)]
        }
        // Four pairs a row of invocations.
        Kernel::MoeMatmul { tile: 8, .. } => vec![("ROWS", 2.0)],
        Kernel::MoeMatmul { tile: 16, .. } => vec![("ROWS", 4.0)],
        Kernel::MoeMatmul { tile: 32, .. } => vec![("ROWS", 8.0)],
        _ => vec![],
    };
    if let Kernel::Matmul { dtype, x4, w4, .. } | Kernel::MoeMatmul { dtype, x4, w4, .. } = k {
        if x4 {
            constants.push(("X4", 1.0));
        }
        if let Some((code, _)) = super::kernel_specs::cpu_vec4_reader(dtype).filter(|_| w4) {
            constants.push(("WIDE", code as f64));
        }
    }
    if tiled_core && skip != 0 {
        constants.push(("SKIP", skip as f64));
    }
    constants
}
