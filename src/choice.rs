//! What a model pass gives the sampler per position (`Choice`) and the seeded noise it is drawn
//! with (`Noise`): shared by the GPU engine, the CPU twin and the sampler, owned by none of them.

/// What the GPU reports per position after a forward: the chosen token and how sure the model is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    /// argmax of logits/T + Gumbel noise (plain argmax when T = 0).
    pub token: u32,
    /// softmax(logits)[token], without noise (LLaDA's `low_confidence` score).
    pub prob: f32,
    /// −Σ p log p over the vocabulary (lower is surer).
    pub entropy: f32,
    /// top-1 probability minus top-2 probability.
    pub margin: f32,
}

/// Gumbel noise parameters: seeded, counter-based, so the GPU and CPU draw the same numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Noise {
    pub temperature: f32,
    pub seed: u32,
    /// Distinguishes draws of one generation (e.g. the step number).
    pub salt: u32,
}
