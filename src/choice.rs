//! What a model pass gives the sampler per position (`Choice`), the seeded noise it is drawn
//! with (`Noise`), and how it is made from a row of logits on the CPU (`select`, and `cfg_mix`
//! for guidance): the CPU twins of `select.wgsl` and `cfg_mix.wgsl`, used by the CPU model and by
//! the sampler's default guidance. Shared by the engine, the CPU twin and the sampler.

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

/// Classifier-free guidance: `u + (scale + 1)(c − u)`, elementwise. Twin of `cfg_mix.wgsl`.
pub fn cfg_mix(cond: &[f32], uncond: &[f32], scale: f32) -> Vec<f32> {
    cond.iter().zip(uncond).map(|(c, u)| u + (scale + 1.0) * (c - u)).collect()
}

/// PCG-style integer hash (same constants as `select.wgsl`).
pub fn hash_u32(x: u32) -> u32 {
    let v = x.wrapping_mul(747796405).wrapping_add(2891336453);
    let w = ((v >> ((v >> 28) + 4)) ^ v).wrapping_mul(277803737);
    (w >> 22) ^ w
}

/// Uniform (0, 1) for (seed, salt, position, vocab index).
pub fn uniform(seed: u32, salt: u32, pos: u32, v: u32) -> f32 {
    let h = hash_u32(seed ^ hash_u32(salt ^ hash_u32(pos ^ hash_u32(v))));
    ((h >> 8) as f32 + 0.5) / 16777216.0
}

/// Softmax statistics and token choice for one row of logits at canvas position `pos`.
/// Twin of `select.wgsl`.
pub fn select(logits: &[f32], pos: u32, noise: Noise) -> Choice {
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let mut best = (f32::NEG_INFINITY, 0u32);
    for (v, &l) in logits.iter().enumerate() {
        let score = if noise.temperature > 0.0 {
            let u = uniform(noise.seed, noise.salt, pos, v as u32);
            (l - max) / noise.temperature - (-u.ln()).ln()
        } else {
            l
        };
        if score > best.0 {
            best = (score, v as u32);
        }
    }
    let sum: f32 = logits.iter().map(|l| (l - max).exp()).sum();
    let ent_num: f32 = logits.iter().map(|l| (l - max).exp() * (l - max)).sum();
    let mut top = [f32::NEG_INFINITY; 2];
    for &l in logits {
        if l > top[0] {
            top = [l, top[0]];
        } else if l > top[1] {
            top[1] = l;
        }
    }
    let p = |l: f32| (l - max).exp() / sum;
    Choice {
        token: best.1,
        prob: p(logits[best.1 as usize]),
        entropy: sum.ln() - ent_num / sum,
        margin: p(top[0]) - if top[1].is_finite() { p(top[1]) } else { 0.0 },
    }
}
