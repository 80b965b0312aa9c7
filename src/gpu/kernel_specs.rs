//! The small value types that describe what a launch computes: the gated MLP's activation,
//! which keys an attention query sees (`AttnMask`), and which pairs RoPE turns (`RopeSpec`).
//! Shared by the launchers (`kernels.rs`) and their CPU twins (`cpu/ops.rs`).

/// The gated MLP's activation (`swiglu.wgsl`'s `act`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Activation {
    /// x · sigmoid(x) (SwiGLU).
    Silu = 0,
    /// GELU, tanh approximation (`gelu_pytorch_tanh`; GeGLU).
    GeluTanh = 1,
}

impl Activation {
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::Silu => x / (1.0 + (-x).exp()),
            Activation::GeluTanh => 0.5 * x * (1.0 + ((2.0 / std::f32::consts::PI).sqrt() * (x + 0.044715 * x * x * x)).tanh()),
        }
    }
}

/// Which pairs of a head RoPE turns and how fast (`rope.wgsl`): pair i < `pairs` (dimensions
/// i and i + `half` in NeoX style) at `freq_scale / theta^(2i / denom)` per position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RopeSpec {
    pub theta: f32,
    pub pairs: usize,
    pub half: usize,
    pub denom: usize,
    pub freq_scale: f32,
}

impl RopeSpec {
    /// RoPE over the first `rot` dimensions of each head (all of them when `rot` = head_dim).
    pub fn first(rot: usize, theta: f32) -> RopeSpec {
        RopeSpec { theta, pairs: rot / 2, half: rot / 2, denom: rot, freq_scale: 1.0 }
    }

    /// Inverse frequency of pair `i`.
    pub fn inv_freq(&self, i: usize) -> f32 {
        1.0 / self.theta.powf((2 * i) as f32 / self.denom as f32) * self.freq_scale
    }
}

/// Which keys each query row of an attention launch sees, and the score scale
/// (`attention.wgsl`'s `Params`; `AttnMask::FULL` is plain bidirectional attention).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AttnMask {
    /// Canvas position of query row 0 (keys are canvas positions 0 ..).
    pub q0: usize,
    /// Block-causal in blocks of this many positions (LLaDA 2); 0 = off.
    pub block: usize,
    /// Keys at or before the query's position only.
    pub causal: bool,
    /// Sliding window: keys after query − window only; 0 = off.
    pub window: usize,
    /// Keys before this position are never seen.
    pub key_lo: usize,
    /// Scores are q·k times this (None: 1/√head_dim).
    pub scale: Option<f32>,
}

impl AttnMask {
    pub const FULL: AttnMask = AttnMask { q0: 0, block: 0, causal: false, window: 0, key_lo: 0, scale: None };

    /// The keys `[start, end)` that the query at canvas position `q` sees among `lk`.
    pub fn keys(&self, q: usize, lk: usize) -> std::ops::Range<usize> {
        let mut end = q.checked_div(self.block).map_or(lk, |b| lk.min((b + 1) * self.block));
        if self.causal {
            end = end.min(q + 1);
        }
        let mut start = self.key_lo;
        if self.window > 0 && q + 1 > self.window {
            start = start.max(q + 1 - self.window);
        }
        start..end
    }
}
