//! A pass's GPU time by kernel kind (`Session::profile`, `unmask bench`): the kinds as the
//! benchmark tables name them, one per kernel family whatever its specialisation (element
//! types, tiles), the matmuls by weight format, core and fusion.

use crate::gpu::kernels::Kernel;

/// The kind `k` is counted under.
pub fn kind(k: Kernel) -> String {
    let coop = |on: bool| if on { ", coop" } else { "" };
    match k {
        Kernel::Matmul { dtype, .. } => format!("matmul {}", dtype.name()),
        Kernel::MatmulCoop { dtype, .. } => format!("matmul {} (coop)", dtype.name()),
        Kernel::MatmulQkv { dtypes, coop: on, .. } => format!("matmul {} (Q, K, V in one{})", dtypes.map(|d| d.name()).join("/"), coop(on)),
        Kernel::MatmulGlu { dtypes, coop: on, .. } => format!("matmul {} (gate, up in one{})", dtypes.map(|d| d.name()).join("/"), coop(on)),
        Kernel::Attention { .. } | Kernel::AttentionMerge { .. } => "attention".into(),
        Kernel::MatmulMerge { .. } | Kernel::MatmulMergeQkv { .. } => "matmul split-K merge".into(),
        Kernel::RmsNorm { .. } => "rmsnorm".into(),
        Kernel::Select(_) => "select".into(),
        Kernel::Softmax(_) => "softmax".into(),
        Kernel::MoeMatmul { dtype, .. } => format!("expert matmul {}", dtype.name()),
        Kernel::MoeMatmulCoop { dtype } => format!("expert matmul {} (coop)", dtype.name()),
        Kernel::MoeRoute => "expert routing".into(),
        Kernel::MoeCombine => "expert combine".into(),
        Kernel::HeadPass { .. } => "head pass".into(),
        Kernel::Embed(dtype) => format!("embedding {}", dtype.name()),
        Kernel::SoftEmbed(dtype) => format!("soft embedding {}", dtype.name()),
        k => format!("{k:?}").to_lowercase(),
    }
}

/// Milliseconds per kind, in the order kinds first appear, from each kernel's time.
pub fn by_kind<'a>(timed: impl Iterator<Item = (&'a Kernel, f64)>) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = Vec::new();
    for (k, t) in timed {
        let name = kind(*k);
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some(e) => e.1 += t,
            None => out.push((name, t)),
        }
    }
    out
}
