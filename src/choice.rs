//! What a model pass gives the sampler per position (`Choice`), the seeded noise and filters it is
//! drawn with (`Noise`: temperature, Dream's top-k / top-p), and how it is made from a row of
//! logits on the CPU (`select`, `cutoff`, and `cfg_mix` for guidance): the CPU twins of
//! `select.wgsl` and `cfg_mix.wgsl`, used by the CPU model and by the sampler's default guidance.
//! Shared by the engine, the CPU twin and the sampler.

/// What the GPU reports per position after a forward: the chosen token and how sure the model is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    /// argmax of logits/T + Gumbel noise (plain argmax when T = 0), among the tokens kept by the
    /// top-k / top-p filters.
    pub token: u32,
    /// softmax(logits)[token], without noise (LLaDA's `low_confidence` score); with a top-k /
    /// top-p filter, the softmax over the kept tokens (as Dream's `sample_tokens`).
    pub prob: f32,
    /// −Σ p log p over the vocabulary, or the kept tokens (lower is surer).
    pub entropy: f32,
    /// top-1 probability minus top-2 probability.
    pub margin: f32,
}

/// The sampling settings of one pass: Gumbel noise (seeded, counter-based, so the GPU and CPU
/// draw the same numbers) and Dream's top-k / top-p filters, which keep the tokens whose logit is
/// at least a cut-off (`cutoff`) before everything else (at every temperature).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Noise {
    pub temperature: f32,
    pub seed: u32,
    /// Distinguishes draws of one generation (e.g. the step number).
    pub salt: u32,
    /// Keep the `top_k` largest logits (and any tied with the last); 0 = off.
    pub top_k: u32,
    /// Keep the smallest prefix of the sorted softmax(logits / T) whose mass before its last
    /// token is at most `top_p` (Dream's `top_p_logits`); 1 = off.
    pub top_p: f32,
}

impl Noise {
    /// Plain argmax, no filter.
    pub const GREEDY: Noise = Noise { temperature: 0.0, seed: 0, salt: 0, top_k: 0, top_p: 1.0 };

    /// Gumbel noise at `temperature`, no filter.
    pub const fn new(temperature: f32, seed: u32, salt: u32) -> Noise {
        Noise { temperature, seed, salt, ..Noise::GREEDY }
    }
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

/// The order-preserving image of an f32 in u32: for non-NaN floats `a < b` ⇔ `order_key(a) <
/// order_key(b)` and `a == b` ⇔ equal keys (−0 is +0). Twin of `order_key` in `select.wgsl`.
pub fn order_key(x: f32) -> u32 {
    let b = if x == 0.0 { 0 } else { x.to_bits() };
    if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    }
}

/// The filters' cut-off as an `order_key`: a token is kept when `order_key(logit) >= cut`
/// (0 keeps everything). top-k: the k-th largest logit (torch's `logits < kth` removes, so ties
/// with it stay). top-p: the smallest logit x whose tokens strictly above carry at most `top_p`
/// of softmax(logits / T) (T = 1 at T = 0, as Dream scales only when sampling). Dream removes a
/// token when the cumulative probability *before* it in the sorted order exceeds `top_p`: without
/// ties that is the mass of the tokens strictly above it, so the two rules keep the same prefix;
/// with ties at the cut Dream keeps some of the tied tokens (in `torch.sort`'s order), this keeps
/// all. Both filters keep a prefix of the sorted order, so top-p then top-k is their
/// intersection, the larger cut-off. Computed by sorting; `select.wgsl` bisects instead.
pub fn cutoff(logits: &[f32], noise: Noise) -> u32 {
    let top_k = noise.top_k as usize;
    let by_k = top_k > 0 && top_k < logits.len();
    let by_p = noise.top_p < 1.0;
    if !(by_k || by_p) {
        return 0;
    }
    let mut keys: Vec<(u32, f32)> = logits.iter().map(|&l| (order_key(l), l)).collect();
    keys.sort_unstable_by_key(|k| std::cmp::Reverse(k.0));
    let mut cut = if by_k { keys[top_k - 1].0 } else { 0 };
    if by_p {
        let t = if noise.temperature > 0.0 { noise.temperature } else { 1.0 };
        let max = keys[0].1;
        let e: Vec<f64> = keys.iter().map(|k| (((k.1 - max) / t).exp()) as f64).collect();
        let limit = noise.top_p as f64 * e.iter().sum::<f64>();
        // Walking down the sorted logits: the lowest whose group (of ties) has at most `limit` above.
        let (mut above, mut group_above, mut lowest) = (0.0, 0.0, keys[0].0);
        for (i, k) in keys.iter().enumerate() {
            if i == 0 || k.0 != keys[i - 1].0 {
                group_above = above;
            }
            if group_above > limit {
                break;
            }
            lowest = k.0;
            above += e[i];
        }
        cut = cut.max(lowest);
    }
    cut
}

/// Softmax statistics and token choice for one row of logits at canvas position `pos`, over the
/// tokens `noise`'s filters keep (`cutoff`). Twin of `select.wgsl`.
pub fn select(logits: &[f32], pos: u32, noise: Noise) -> Choice {
    let cut = cutoff(logits, noise);
    let kept = |l: &f32| order_key(*l) >= cut;
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let mut best = (f32::NEG_INFINITY, 0u32);
    for (v, &l) in logits.iter().enumerate().filter(|(_, l)| kept(l)) {
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
    let sum: f32 = logits.iter().filter(|l| kept(l)).map(|l| (l - max).exp()).sum();
    let ent_num: f32 = logits.iter().filter(|l| kept(l)).map(|l| (l - max).exp() * (l - max)).sum();
    let mut top = [f32::NEG_INFINITY; 2];
    for &l in logits.iter().filter(|l| kept(l)) {
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
