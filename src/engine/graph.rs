//! The forward pass as data: the list of operations that computes rows `rows` of a canvas of
//! `len` positions, top to bottom, over buffers named by what they hold. The session turns the
//! list into kernel launches, and the memory layout counts launches from the same list, so the
//! planned parameter slots cannot drift from what a pass records.
//!
//! The pass writes the K and V of its rows into per-layer buffers of all positions and attends
//! to all of them, so a later pass may compute only some rows against K/V kept from an earlier
//! one (Fast-dLLM's caches). With every row it is the exact forward of the reference. With f16
//! K/V the rows' K and V are computed in f32 (RoPE and, where a family has them, bias and
//! QK-norm: then in `KNew`, `VNew`) and then stored, rounded once.

use crate::error::{Error, Result};
use crate::gpu::kernels::{Activation, AttnMask, Epilogue, KernelVariant, KvType};
use crate::model::arch::{Key, Role, Tensors};
use crate::model::ModelConfig;
use std::ops::Range;

/// The MLPs' activation (dense and experts), fused into the up projection.
const SWIGLU: Epilogue = Epilogue::Gated(Activation::Silu);

/// A session buffer, by what it holds (`layout.rs` sizes each for the session's canvas).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Buf {
    Tokens,
    Positions,
    /// The residual stream.
    X,
    /// Normed activations (the last one is the LM head's input).
    H,
    Q,
    Attn,
    /// Split-K's per-slice partial results: attention's (`attention_split_out.wgsl`) and the
    /// tiled matmuls' (`matmul.wgsl`); each launch's merge reads them before the next launch.
    SplitK,
    /// The dense MLP's gate projection, gated by the up projection in place.
    Gate,
    /// The logits of the rows the LM head computes at a time.
    Logits,
    /// 4 words per row: token, prob, entropy, margin (`select.wgsl`).
    Choices,
    /// The unconditional pass's final activations and logits (classifier-free guidance).
    HUncond,
    LogitsU,
    Keys(usize),
    Values(usize),
    /// With f16 K/V: the K and V of a pass's rows in f32, before `Op::HeadPass` stores them.
    KNew,
    VNew,
    /// MoE: router logits `[rows, experts]`, the routing (`moe_route.wgsl`), and the experts'
    /// activations per (position, slot) pair: the gate projection, gated by the up projection
    /// in place `[pairs, expert hidden]`, and the down projection `[pairs, d_model]`.
    RouterLogits,
    Route,
    MoeGate,
    MoeOut,
}

/// One operation of a pass. Row arguments count rows of the buffer named (`RmsNorm` reads rows
/// `x_row ..` of `x` and writes rows 0 .. of `out`).
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Embedding rows of `Tokens` into `X`.
    Embed {
        rows: usize,
    },
    RmsNorm {
        w: Key,
        x: Buf,
        x_row: usize,
        out: Buf,
        rows: usize,
    },
    /// `y[y_row.., :] (+)= x[x_row.., :] · wᵀ` for `m` rows (or gated: `epilogue`); with `norm`,
    /// the rows of x are RMS-normalized by that weight first (folded into the matmul).
    Matmul {
        w: Key,
        x: Buf,
        x_row: usize,
        m: usize,
        y: Buf,
        y_row: usize,
        epilogue: Epilogue,
        norm: Option<Key>,
    },
    /// The attention's projections of one input: `m` rows of `x` (normed by `norm` first, if
    /// any) times each of the weights `w` (Q, K, V) into its `y` (buffer, first row), rows
    /// dense. One launch where the session's kernels fuse them (`Gpu::fuses_qkv`), else three
    /// matmuls. With `rope_at` (the position of row 0), Q and K are turned by RoPE too: as
    /// they are stored where the kernels can (the fused store, split-K's merges), else by a
    /// RoPE pass of their own. With `f16_kv`, K and V go straight into half-precision K/V
    /// (`y` names `Keys`/`Values`): stored so by the fused launch, else computed into
    /// `KNew`/`VNew` and stored by KvStore launches. With `bias` the layer's q/k/v biases are
    /// added first (`GpuModel::qkv_bias`: in the fused launch's store, else by passes).
    Qkv {
        w: [Key; 3],
        x: Buf,
        norm: Option<Key>,
        m: usize,
        y: [(Buf, usize); 3],
        rope_at: Option<usize>,
        f16_kv: bool,
        bias: bool,
    },
    /// A gated MLP's projections of one input: `y = act(x · gateᵀ) ⊙ (x · upᵀ)` for `m` rows of
    /// `x` (normed by `norm` first, if any), `w` = [gate, up], the activation in `epilogue`. One
    /// launch where the session's kernels fuse them (`GpuWeight::gate_up`), else two matmuls.
    GateUp {
        w: [Key; 2],
        x: Buf,
        norm: Option<Key>,
        m: usize,
        y: Buf,
        epilogue: Epilogue,
    },
    /// Rows `row0 .. row0 + rows` of Q or K (`x`, `heads` heads) normed by `norm` (QK-norm), if
    /// any, and turned by RoPE (positions from `Positions`), in one launch (`Gpu::head_pass`);
    /// in place, or with `kv` = (V's rows, K's and V's half-precision buffers, their first
    /// row): K and V's rows stored there.
    HeadPass {
        x: Buf,
        row0: usize,
        rows: usize,
        heads: usize,
        norm: Option<Key>,
        kv: Option<(Buf, Buf, Buf, usize)>,
    },
    /// The `lq` queries (rows `q_row ..` of `q`) are those of canvas positions `q0 ..`; with
    /// `block` > 0 each sees only the keys of its own block of `block` positions and the blocks
    /// before (block-causal).
    Attention {
        q: Buf,
        q_row: usize,
        k: Buf,
        v: Buf,
        out: Buf,
        lq: usize,
        lk: usize,
        q0: usize,
        block: usize,
    },
    /// `x[row0 + r, :] += bias` for `rows` rows.
    Bias {
        w: Key,
        x: Buf,
        row0: usize,
        rows: usize,
    },
    /// Router scores and top-k of `RouterLogits` into `Route` for `rows` positions (`bias`:
    /// the expert bias added for choosing).
    MoeRoute {
        rows: usize,
        bias: Option<Key>,
    },
    /// The grouped expert matmul of stacked experts `w` (`x` by position, or by pair when
    /// `by_pair`); `epilogue` stores or gates (the up projection into the gate's buffer); with
    /// `norm`, x's rows are RMS-normalized by that weight first.
    MoeMatmul {
        w: Key,
        x: Buf,
        by_pair: bool,
        y: Buf,
        rows: usize,
        epilogue: Epilogue,
        norm: Option<Key>,
    },
    /// `X[x_row + r] += Σ_slot weight · MoeOut` for `rows` positions.
    MoeCombine {
        rows: usize,
        x_row: usize,
    },
    /// `Logits = LogitsU + (scale + 1)(Logits − LogitsU)` over `rows` rows.
    CfgMix {
        rows: usize,
        scale: f32,
    },
    /// Choices of `rows` rows of `Logits`, for canvas positions `pos0 ..`, into `Choices` rows `out_row0 ..`.
    Select {
        rows: usize,
        pos0: usize,
        out_row0: usize,
    },
}

impl Op {
    /// Kernel launches it takes at most in layout `variant`: one per weight chunk for the ops
    /// that read a split matrix (for a matmul's: tiled two, split-K; CPU lanes one a window of
    /// x, `matmul_window::max_windows`), two for split-K attention.
    pub fn launches(&self, chunks: &Tensors<usize>, variant: KernelVariant) -> usize {
        let per_matmul = |m: usize| match variant {
            KernelVariant::Tiled => 2,
            KernelVariant::CpuLanes => crate::gpu::matmul_window::max_windows(m).max(1),
        };
        match self {
            Op::Embed { .. } => chunks[Role::Embed],
            Op::Matmul { w, m, .. } => per_matmul(*m) * chunks[*w],
            // Unfused, as three matmuls (fused: one launch, or the slices and one merge), bias
            // passes, RoPE passes for Q and K, and K/V stores.
            Op::Qkv { w, m, .. } => w.iter().map(|k| per_matmul(*m) * chunks[*k]).sum::<usize>() + 7,
            Op::GateUp { w, m, .. } => w.iter().map(|k| per_matmul(*m) * chunks[*k]).sum(),
            Op::MoeMatmul { w, .. } => chunks[*w],
            // Split-K (few rows): the slices, then their merge.
            Op::Attention { .. } => 2,
            _ => 1,
        }
    }
}

/// Multiply-adds of a list of ops: the matmuls (the grouped expert matmuls at the model's
/// experts used per position) and attention's two products over the keys each query sees
/// (block-causal: its own block and those before). `dims(w)`: weight w's (rows, columns), all
/// experts' rows for stacked experts. Norms, RoPE and the choice are not counted. What a
/// benchmark's GFLOP/s divides by: the work the pass does, not a full forward's.
pub fn multiply_adds(ops: &[Op], c: &ModelConfig, dims: impl Fn(Key) -> (usize, usize)) -> u64 {
    let mm = |w: Key, m: usize| {
        let (n, k) = dims(w);
        (m * n * k) as u64
    };
    let attention = |lq: usize, lk: usize, q0: usize, block: usize| -> u64 {
        // The keys the kernel's mask lets each query see (as `Session::launches` builds it).
        let mask = AttnMask { q0, block, ..AttnMask::FULL };
        let seen: usize = (q0..q0 + lq).map(|p| mask.keys(p, lk).len()).sum();
        (2 * seen * c.n_heads * c.head_dim()) as u64
    };
    ops.iter()
        .map(|o| match o {
            Op::Matmul { w, m, .. } => mm(*w, *m),
            Op::Qkv { w, m, .. } => w.iter().map(|&k| mm(k, *m)).sum(),
            Op::GateUp { w, m, .. } => w.iter().map(|&k| mm(k, *m)).sum(),
            Op::MoeMatmul { w, rows, .. } => mm(*w, rows * c.n_experts_used) / c.n_experts.max(1) as u64,
            Op::Attention { lq, lk, q0, block, .. } => attention(*lq, *lk, *q0, *block),
            _ => 0,
        })
        .sum()
}

/// Launches of a list of ops in layout `variant`.
pub fn launches(ops: &[Op], chunks: &Tensors<usize>, variant: KernelVariant) -> usize {
    ops.iter().map(|o| o.launches(chunks, variant)).sum()
}

/// Embedding, every block, final norm: rows `rows` of a canvas of `len` positions, for the
/// rows `out` (inside `rows`: those the LM head reads); the result (normed) is in `H`, `out`'s
/// rows from row 0. The last layer computes K and V for every row, the rest (its attention,
/// output projection and feed-forward) for `out`'s alone: no later layer reads the others.
/// The tensors present (`has`: the model's chunk counts) decide the optional steps: q/k/v
/// biases, QK-norm, and per layer a dense or a mixture-of-experts feed-forward. `kv`: how the
/// per-layer K/V are stored. With `fold_norms` (`Gpu::folds_norms`) each layer's norms are
/// folded into the matmuls that read them (no `RmsNorm` op: they read `X`), but for the last
/// layer's feed-forward norm where `out` starts after the first row; the final norm stays.
pub fn body(c: &ModelConfig, has: &Tensors<usize>, len: usize, rows: Range<usize>, out: Range<usize>, kv: KvType, fold_norms: bool) -> Vec<Op> {
    let (n, q0) = (rows.len(), rows.start);
    // The rows of `X` that the LM head reads: the first and how many.
    let (skip, m_out) = (out.start.saturating_sub(rows.start), out.len());
    let mut ops = vec![Op::Embed { rows: n }];
    for i in 0..c.n_layers {
        let w = |r: Role| Key::at(i, r);
        let present = |r: Role| has.get(w(r)).is_some();
        // After K and V: the rows of `X` this layer goes on for (`x0 ..`, `m` of them).
        let part = i + 1 == c.n_layers && m_out < n;
        let (x0, m) = if part { (skip, m_out) } else { (0, n) };
        // A projection of `m` rows of the input `(x, norm)`: a buffer, and the norm folded in, if any.
        let proj =
            |r: Role, (x, norm): (Buf, Option<Key>), y: Buf, y_row: usize, epilogue: Epilogue| Op::Matmul { w: w(r), x, x_row: 0, m, y, y_row, epilogue, norm };
        let mm = |r: Role, x: Buf, y: Buf, y_row: usize, epilogue: Epilogue| proj(r, (x, None), y, y_row, epilogue);
        // The gated MLP of `m` rows of the input `(x, norm)` into `Gate`.
        let gate_up = |g: Role, u: Role, (x, norm): (Buf, Option<Key>)| Op::GateUp { w: [w(g), w(u)], x, norm, m, y: Buf::Gate, epilogue: SWIGLU };
        // The input of the projections that follow a norm of `rows` rows of `X` from `x_row`:
        // the norm's output `H` (from row 0), or `X` with the norm folded in (where `x_row` is 0:
        // the projections read x from row 0).
        let normed = |ops: &mut Vec<Op>, r: Role, x_row: usize, rows: usize| {
            if fold_norms && x_row == 0 {
                (Buf::X, Some(w(r)))
            } else {
                ops.push(Op::RmsNorm { w: w(r), x: Buf::X, x_row, out: Buf::H, rows });
                (Buf::H, None)
            }
        };
        // RoPE comes after the biases and QK-norms: the projections' own with biases (which they
        // add first) or neither, else passes after the QK-norms.
        let bias = [Role::QBias, Role::KBias, Role::VBias].into_iter().all(present);
        let between = [Role::QNorm, Role::KNorm].into_iter().any(present) || (!bias && [Role::QBias, Role::KBias, Role::VBias].into_iter().any(present));
        let rope_at = (!between).then_some(q0);
        // K and V of these rows go to their canvas positions in the layer's K/V of all `len`:
        // directly (f32, or f16 with nothing between), or from rows 0.. of `KNew`/`VNew` (f16).
        let (k, v, kv0) = match kv {
            KvType::F16 if between => (Buf::KNew, Buf::VNew, 0),
            _ => (Buf::Keys(i), Buf::Values(i), q0),
        };
        let f16_kv = kv == KvType::F16 && !between;
        let (x, norm) = normed(&mut ops, Role::AttnNorm, 0, n);
        ops.push(Op::Qkv { w: [w(Role::Q), w(Role::K), w(Role::V)], x, norm, m: n, y: [(Buf::Q, 0), (k, kv0), (v, kv0)], rope_at, f16_kv, bias });
        for (b, x, row0) in [(Role::QBias, Buf::Q, 0), (Role::KBias, k, kv0), (Role::VBias, v, kv0)] {
            if present(b) && !bias {
                ops.push(Op::Bias { w: w(b), x, row0, rows: n });
            }
        }
        if between {
            // QK-norms and RoPE, and with f16 K/V the store of K and V: a launch for Q, one for K.
            let norm = |r: Role| present(r).then(|| w(r));
            let store = (kv == KvType::F16).then_some((v, Buf::Keys(i), Buf::Values(i), q0));
            ops.extend([
                Op::HeadPass { x: Buf::Q, row0: 0, rows: n, heads: c.n_heads, norm: norm(Role::QNorm), kv: None },
                Op::HeadPass { x: k, row0: kv0, rows: n, heads: c.n_kv_heads, norm: norm(Role::KNorm), kv: store },
            ]);
        }
        ops.extend([
            Op::Attention { q: Buf::Q, q_row: x0, k: Buf::Keys(i), v: Buf::Values(i), out: Buf::Attn, lq: m, lk: len, q0: q0 + x0, block: c.attention_block },
            mm(Role::O, Buf::Attn, Buf::X, x0, Epilogue::Add),
        ]);
        if present(Role::OBias) {
            ops.push(Op::Bias { w: w(Role::OBias), x: Buf::X, row0: x0, rows: m });
        }
        if present(Role::Router) {
            // Everything that reads the normed input runs before the first write to `X` (the combine).
            let h = normed(&mut ops, Role::FfnNorm, x0, m);
            let moe = |r: Role, (x, norm): (Buf, Option<Key>), by_pair: bool, y: Buf, epilogue: Epilogue| Op::MoeMatmul {
                w: w(r),
                x,
                by_pair,
                y,
                rows: m,
                epilogue,
                norm,
            };
            ops.extend([
                proj(Role::Router, h, Buf::RouterLogits, 0, Epilogue::Store),
                Op::MoeRoute { rows: m, bias: present(Role::ExpertBias).then(|| w(Role::ExpertBias)) },
                moe(Role::GateExps, h, false, Buf::MoeGate, Epilogue::Store),
                // SwiGLU fused: MoeGate = silu(MoeGate) · up.
                moe(Role::UpExps, h, false, Buf::MoeGate, SWIGLU),
                moe(Role::DownExps, (Buf::MoeGate, None), true, Buf::MoeOut, Epilogue::Store),
            ]);
            // Shared experts: a dense SwiGLU of the same normed input, added to the residual too.
            let shared = present(Role::SharedGate);
            if shared {
                ops.push(gate_up(Role::SharedGate, Role::SharedUp, h));
            }
            ops.push(Op::MoeCombine { rows: m, x_row: x0 });
            if shared {
                ops.push(mm(Role::SharedDown, Buf::Gate, Buf::X, x0, Epilogue::Add));
            }
        } else {
            // Gate = silu(x · gateᵀ) · (x · upᵀ), then the down projection.
            let h = normed(&mut ops, Role::FfnNorm, x0, m);
            ops.extend([gate_up(Role::Gate, Role::Up, h), mm(Role::Down, Buf::Gate, Buf::X, x0, Epilogue::Add)]);
        }
    }
    ops.push(Op::RmsNorm { w: Key::global(Role::FinalNorm), x: Buf::X, x_row: skip, out: Buf::H, rows: m_out });
    ops
}

/// Rows of logits computed at a time for `rows` rows: (first row, row count) per chunk.
pub fn head_chunks(rows: usize, head_rows: usize) -> Vec<(usize, usize)> {
    (0..rows).step_by(head_rows.max(1)).map(|r0| (r0, head_rows.min(rows - r0))).collect()
}

/// LM head and token selection for the rows `out` of a pass (the sampler needs only the block
/// it commits in; `body` left their final activations in `H` from row 0), one list per chunk of
/// `head_rows` rows. Choices are written from row 0 of `Choices` on (out.start's first). Each
/// row's sampling noise is that of the position it predicts (`shift`: the next one).
pub fn head(out: Range<usize>, head_rows: usize, shift: bool) -> Vec<Vec<Op>> {
    head_chunks(out.len(), head_rows)
        .into_iter()
        .map(|(r0, rc)| {
            vec![
                Op::Matmul { w: Key::global(Role::LmHead), x: Buf::H, x_row: r0, m: rc, y: Buf::Logits, y_row: 0, epilogue: Epilogue::Store, norm: None },
                Op::Select { rows: rc, pos0: out.start + r0 + shift as usize, out_row0: r0 },
            ]
        })
        .collect()
}

/// Shifted logits (Dream, RND1; llama.cpp's `diffusion.shift_logits`): the prediction for
/// position p is read from the logits of row p − 1, and position 0 (the prompt's first token,
/// never generated) takes row 0's. To predict `rows`, a pass computes one row more before them.
pub fn computed_rows(rows: &Range<usize>, shift: bool) -> Range<usize> {
    if shift {
        rows.start.saturating_sub(1)..rows.end
    } else {
        rows.clone()
    }
}

/// To predict positions `want` (a range inside `rows`) from a pass over `rows`: the rows the pass
/// computes and those its LM head runs for (`computed_rows` of each).
pub fn part_rows(rows: &Range<usize>, want: &Range<usize>, shift: bool) -> Result<(Range<usize>, Range<usize>)> {
    if want.start >= want.end || want.start < rows.start || want.end > rows.end {
        return Err(Error::Input(format!("the positions {want:?} to predict are not inside the rows {rows:?} computed")));
    }
    Ok((computed_rows(rows, shift), computed_rows(want, shift)))
}

/// Per-position values for `rows` from per-row values (`per` items a row) of the rows
/// `computed` (`computed_rows`): row p − 1's for position p when `shift`.
pub fn align<T: Clone>(per_row: &[T], per: usize, rows: &Range<usize>, computed: &Range<usize>, shift: bool) -> Vec<T> {
    let mut out = Vec::with_capacity(rows.len() * per);
    for p in rows.clone() {
        let src = if shift { p.max(1) - 1 } else { p } - computed.start;
        out.extend_from_slice(&per_row[src * per..(src + 1) * per]);
    }
    out
}

/// The guided head for the rows `out` of a full canvas (`body`'s for `out`, the unconditional
/// pass's kept in `HUncond`): per chunk, both LM heads, the mix, and the choice from the mix
/// (written as `head`'s).
pub fn guided_head(out: Range<usize>, head_rows: usize, scale: f32, shift: bool) -> Vec<Vec<Op>> {
    head_chunks(out.len(), head_rows)
        .into_iter()
        .map(|(r0, rc)| {
            let lm = |x: Buf, y: Buf| Op::Matmul { w: Key::global(Role::LmHead), x, x_row: r0, m: rc, y, y_row: 0, epilogue: Epilogue::Store, norm: None };
            vec![
                lm(Buf::HUncond, Buf::LogitsU),
                lm(Buf::H, Buf::Logits),
                Op::CfgMix { rows: rc, scale },
                Op::Select { rows: rc, pos0: out.start + r0 + shift as usize, out_row0: r0 },
            ]
        })
        .collect()
}
