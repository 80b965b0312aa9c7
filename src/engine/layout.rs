//! Every buffer a session owns, with its size: the one function that both the memory plan
//! (before anything is loaded) and `Session::new` (which allocates exactly this list) call.

use crate::engine::graph::{self, Buf};
use crate::gpu::kernels::{AttnShape, KernelVariant, KvType, MoeShape, NOISE_BYTES, PARAM_SLOT};
use crate::gpu::{Gpu, Limits};
use crate::model::arch::{Key, Role, Tensors};
use crate::model::ModelConfig;
use crate::sampler::CacheMode;

/// What a session must be able to run.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionConfig {
    /// The longest canvas (prompt + answer) it will run.
    pub canvas: usize,
    /// With a cache, steps inside a block run on some rows only (a second set of launches).
    pub cache: CacheMode,
    /// Classifier-free guidance (the unconditional activations and logits, a guided head).
    pub cfg: bool,
    /// Logits can be read back (tests, comparisons with the CPU twin), not only choices.
    pub logits: bool,
    /// The kernel layout its passes use (`Gpu::default_kernels` suits the adapter).
    pub kernels: KernelVariant,
    /// How the per-layer K/V are stored (`Gpu::default_kv` suits the adapter).
    pub kv: KvType,
}

impl SessionConfig {
    /// A session for canvases of up to `canvas` positions with the default cache, no CFG, f32 K/V.
    pub fn new(canvas: usize, kernels: KernelVariant) -> Self {
        SessionConfig { canvas, cache: CacheMode::DEFAULT, cfg: false, logits: false, kernels, kv: KvType::F32 }
    }
}

/// The buffers of a session for one model and `SessionConfig`.
#[derive(Debug, Clone)]
pub struct SessionLayout {
    pub canvas: usize,
    /// Rows of logits the LM head computes at a time.
    pub head_rows: usize,
    /// Storage buffers: activations, logits, K/V of every layer.
    pub buffers: Vec<(Buf, u64)>,
    /// Launches of a full pass over the canvas: each pass slot has room for this many.
    pub pass_launches: usize,
    /// Launches of the guided head (0 without CFG).
    pub guided_launches: usize,
    /// Pass slots: the full pass, and the row-range pass when a cache is on.
    pub pass_slots: usize,
    /// The uniform buffer of kernel parameters (the noise first, then each slot's launches).
    pub params_bytes: u64,
    /// The mappable buffer results are read back through.
    pub staging_bytes: u64,
}

/// The noise uniform's slot at the start of the parameter buffer.
const NOISE_SLOT: u64 = if NOISE_BYTES > PARAM_SLOT { NOISE_BYTES } else { PARAM_SLOT };

/// The logits buffer holds at most this much (LLaDA-8B: 132 rows of 126464 logits).
pub const LOGIT_CHUNK_BYTES: u64 = 64 << 20;

/// Rows of logits computed at a time: the logits buffer fits one binding and `LOGIT_CHUNK_BYTES`.
pub fn head_rows(max_binding: u64, vocab: usize, rows: usize) -> usize {
    ((max_binding.min(LOGIT_CHUNK_BYTES) / (vocab as u64 * 4).max(1)).max(1) as usize).min(rows.max(1))
}

impl SessionLayout {
    /// The layout for a model of config `c` whose tensors are split into `chunks` chunks.
    pub fn new(c: &ModelConfig, chunks: &Tensors<usize>, s: &SessionConfig, limits: Limits) -> Self {
        let n = s.canvas.max(1) as u64;
        let (d, q, kv, hid, v) = (c.d_model as u64, c.q_dim() as u64, c.kv_dim() as u64, c.mlp_hidden_size as u64, c.vocab_size as u64);
        let head_rows = head_rows(limits.max_binding, c.vocab_size, s.canvas);
        let logits = head_rows as u64 * v * 4;
        let mut buffers =
            vec![(Buf::Tokens, n * 4), (Buf::Positions, n * 4), (Buf::X, n * d * 4), (Buf::H, n * d * 4), (Buf::Q, n * q * 4), (Buf::Attn, n * q * 4)];
        let any = |r: Role| (0..c.n_layers).any(|i| chunks.get(Key::at(i, r)).is_some());
        // The dense MLP's activations, which shared experts (LLaDA 2) use too.
        let shared = if any(Role::SharedGate) { c.dim(crate::model::arch::Dim::SharedHidden) as u64 } else { 0 };
        let hid = if any(Role::Gate) { hid.max(shared) } else { shared };
        if hid > 0 {
            buffers.push((Buf::Gate, n * hid * 4));
        }
        if any(Role::Router) {
            let (e, k, eh) = (c.n_experts as u64, c.n_experts_used as u64, c.expert_hidden_size as u64);
            let route = MoeShape { rows: s.canvas.max(1), experts: c.n_experts, k: c.n_experts_used }.route_words() as u64 * 4;
            buffers.extend([(Buf::RouterLogits, n * e * 4), (Buf::Route, route), (Buf::MoeGate, n * k * eh * 4), (Buf::MoeOut, n * k * d * 4)]);
        }
        buffers.extend([(Buf::Logits, logits), (Buf::Choices, n * 16)]);
        // Split-K's scratch, shared by attention (none on short canvases) and, in the tiled
        // layout, the matmuls; no more than a binding, and a launch that needs more does not split.
        let attn = AttnShape::split_scratch_bound(s.canvas.max(1), c.n_heads, c.head_dim());
        let matmul =
            if s.kernels == KernelVariant::Tiled { crate::gpu::matmul::split_scratch(s.canvas.max(1), &matmul_shapes(c), limits.wide_tiles) } else { 0 };
        let split = attn.max(matmul).min(limits.max_binding / 256 * 256);
        if split > 0 {
            buffers.push((Buf::SplitK, split));
        }
        if s.cfg {
            buffers.extend([(Buf::HUncond, n * d * 4), (Buf::LogitsU, logits)]);
        }
        // f16 K/V: a pass's new rows are computed in f32 (`KNew`, `VNew`), then stored.
        if s.kv == KvType::F16 {
            buffers.extend([(Buf::KNew, n * kv * 4), (Buf::VNew, n * kv * 4)]);
        }
        let kv_bytes = n * kv * s.kv.bytes() as u64;
        for i in 0..c.n_layers {
            buffers.extend([(Buf::Keys(i), kv_bytes), (Buf::Values(i), kv_bytes)]);
        }
        for b in &mut buffers {
            b.1 = Gpu::padded(b.1);
        }
        let full = 0..s.canvas.max(1);
        let head: Vec<_> = graph::head(full.clone(), head_rows, false).concat();
        // Unfolded norms over every row: the most launches a pass takes (folding only removes
        // `RmsNorm`s; fewer rows in the last layer take no more launches).
        let body = graph::body(c, chunks, s.canvas.max(1), full.clone(), full.clone(), s.kv, false);
        let pass_launches = graph::launches(&body, chunks, s.kernels) + graph::launches(&head, chunks, s.kernels);
        let guided_launches = if s.cfg { graph::launches(&graph::guided_head(full.clone(), head_rows, 0.0, false).concat(), chunks, s.kernels) } else { 0 };
        let pass_slots = if s.cache == CacheMode::None { 1 } else { 2 };
        let params_bytes = NOISE_SLOT + (pass_slots * pass_launches + guided_launches) as u64 * PARAM_SLOT;
        let staging_bytes = Gpu::padded(n * 16 + if s.logits { n * v * 4 } else { 0 });
        SessionLayout { canvas: s.canvas, head_rows, buffers, pass_launches, guided_launches, pass_slots, params_bytes, staging_bytes }
    }

    /// Bytes of every buffer of the session.
    pub fn total(&self) -> u64 {
        self.buffers.iter().map(|b| b.1).sum::<u64>() + self.params_bytes + self.staging_bytes
    }

    /// Bytes of the per-layer K/V.
    pub fn kv_bytes(&self) -> u64 {
        self.buffers.iter().filter(|b| matches!(b.0, Buf::Keys(_) | Buf::Values(_))).map(|b| b.1).sum()
    }

    /// The largest storage buffer, named for people.
    pub fn largest(&self) -> (String, u64) {
        let (b, bytes) = self.buffers.iter().max_by_key(|b| b.1).copied().unwrap_or((Buf::Tokens, 0));
        (format!("{} of a {}-position canvas", describe(b), self.canvas), bytes)
    }

    /// Where a byte offset in the parameter buffer starts for pass slot `i` (0: full pass,
    /// 1: row-range pass) and for the guided head.
    pub fn pass_slot(&self, i: usize) -> u64 {
        NOISE_SLOT + (i * self.pass_launches) as u64 * PARAM_SLOT
    }

    /// `pass_slot(i)` for a pass of `launches` launches; an error where they outgrow the slot
    /// (their parameters would overwrite the next slot's).
    pub fn checked_slot(&self, i: usize, launches: usize) -> crate::error::Result<u64> {
        if launches > self.pass_launches {
            return Err(crate::error::Error::Gpu(format!("internal: a pass of {launches} launches; its slot holds {}", self.pass_launches)));
        }
        Ok(self.pass_slot(i))
    }

    pub fn guided_slot(&self) -> u64 {
        self.pass_slot(self.pass_slots)
    }
}

/// The (output columns, shared dimension) of every dense matmul a pass may run: the
/// attention projections, the dense and shared-expert MLPs, the router and the LM head. (A
/// tensor split into chunks has narrower launches; one that then needs more split-K scratch
/// than planned runs unsplit.)
fn matmul_shapes(c: &ModelConfig) -> Vec<(usize, usize)> {
    let (d, h, sh) = (c.d_model, c.mlp_hidden_size, c.dim(crate::model::arch::Dim::SharedHidden));
    // Q/K/V one launch (`Gpu::matmul_qkv`) or three.
    let qkv = c.q_dim() + 2 * c.kv_dim();
    // Gate and up: one launch of their tiles' width (`matmul_glu`) or two.
    let glu = crate::gpu::matmul::glu_width;
    let mut shapes = vec![(qkv, d), (c.q_dim(), d), (c.kv_dim(), d), (d, c.q_dim()), (h, d), (glu(h), d), (d, h), (c.vocab_size, d)];
    if sh > 0 {
        shapes.extend([(sh, d), (glu(sh), d), (d, sh)]);
    }
    if c.n_experts > 0 {
        shapes.push((c.n_experts, d));
    }
    shapes
}

/// Longest canvas whose per-position buffers each fit one binding of `max_binding` bytes.
pub fn max_canvas(c: &ModelConfig, max_binding: u64) -> usize {
    let k = c.n_experts_used;
    let moe = [k * c.expert_hidden_size, k * c.d_model, 2 * k + 2 * c.n_experts];
    let widest =
        4 * [c.mlp_hidden_size, c.dim(crate::model::arch::Dim::SharedHidden), c.d_model, c.q_dim(), c.kv_dim(), 4].into_iter().chain(moe).max().unwrap_or(1)
            as u64;
    (max_binding / widest).min(c.max_sequence_length as u64) as usize
}

fn describe(b: Buf) -> &'static str {
    match b {
        Buf::Gate => "the MLP activations",
        Buf::X | Buf::H | Buf::Q | Buf::Attn | Buf::HUncond => "the residual stream, queries and attention output",
        Buf::KNew | Buf::VNew => "a pass's new keys and values",
        Buf::SplitK => "split-K's partial results",
        Buf::Keys(_) | Buf::Values(_) => "the keys and values of one layer",
        Buf::Logits | Buf::LogitsU => "the logits",
        Buf::Tokens | Buf::Positions | Buf::Choices => "tokens, positions and choices",
        Buf::RouterLogits | Buf::Route => "the expert routing",
        Buf::MoeGate | Buf::MoeOut => "the experts' activations",
    }
}
