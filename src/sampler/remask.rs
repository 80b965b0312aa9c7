//! Choosing which masked positions to commit at a step: the ranking score of each remasking
//! rule, and top-k or threshold selection among the current block's masked positions.

use super::options::Remasking;
use crate::choice::Choice;
use crate::rng::Rng;

/// Higher is surer. `random` draws from `rng`.
pub fn score(rule: Remasking, c: &Choice, rng: &mut Rng) -> f32 {
    match rule {
        Remasking::LowConfidence => c.prob,
        Remasking::Random => (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32,
        Remasking::Entropy => -c.entropy,
        Remasking::Margin => c.margin,
        // Origin commits by chance, not by rank (see `run`).
        Remasking::Origin => 0.0,
    }
}

/// Picks positions to commit from `candidates` (position, score, probability):
/// - with a threshold τ: every candidate with probability ≥ τ, and at least the best one;
/// - otherwise the `k` best (ties go to the earlier position).
pub fn pick(candidates: &[(usize, f32, f32)], k: usize, threshold: Option<f32>) -> Vec<usize> {
    let mut order: Vec<&(usize, f32, f32)> = candidates.iter().collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let n = match threshold {
        Some(t) => candidates.iter().filter(|c| c.2 >= t).count().max(1),
        None => k,
    };
    let mut chosen: Vec<usize> = match threshold {
        Some(t) => {
            let mut v: Vec<usize> = candidates.iter().filter(|c| c.2 >= t).map(|c| c.0).collect();
            if v.is_empty() {
                v.extend(order.first().map(|c| c.0));
            }
            v
        }
        None => order.iter().take(n).map(|c| c.0).collect(),
    };
    chosen.sort_unstable();
    chosen
}

/// LLaDA 2's rule: every candidate whose probability is above `threshold` when there are at
/// least `k` of them, else the `k` best by score (all `k` best without a threshold).
pub fn pick_at_least(candidates: &[(usize, f32, f32)], k: usize, threshold: Option<f32>) -> Vec<usize> {
    if let Some(t) = threshold {
        let above: Vec<usize> = candidates.iter().filter(|c| c.2 > t).map(|c| c.0).collect();
        if above.len() >= k {
            return above;
        }
    }
    pick(candidates, k, None)
}

/// Draws `k` positions without replacement with probabilities softmax(score / temp) (Dream's
/// `alg_temp`): the `k` best of score / temp + Gumbel noise, which is the same distribution.
pub fn draw(candidates: &[(usize, f32, f32)], k: usize, temp: f32, rng: &mut Rng) -> Vec<usize> {
    let noisy: Vec<(usize, f32, f32)> = candidates.iter().map(|&(p, s, prob)| (p, s / temp - (-rng.unit().max(1e-30).ln()).ln(), prob)).collect();
    pick(&noisy, k, None)
}
