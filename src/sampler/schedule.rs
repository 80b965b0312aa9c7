//! The reference schedule: how many tokens each step of a block commits.

/// In a block with `masked` masked positions and `steps` steps, step s commits
/// `masked / steps` tokens plus one for each of the first `masked % steps` steps
/// (LLaDA's `get_num_transfer_tokens`).
pub fn tokens_per_step(masked: usize, steps: usize) -> Vec<usize> {
    let (base, extra) = (masked / steps, masked % steps);
    (0..steps).map(|s| base + usize::from(s < extra)).collect()
}

/// Dream's timesteps: `steps + 1` values linear from 1 to `eps`, computed as torch.linspace
/// computes them in f32 (from the start for the first half, from the end for the second), so
/// that ⌊m·(1 − s/t)⌋ rounds as the reference does.
pub fn timesteps(steps: usize, eps: f32) -> Vec<f32> {
    let n = steps + 1;
    let step = (eps - 1.0) / steps.max(1) as f32;
    let half = n / 2;
    (0..n).map(|i| if i < half { 1.0 + step * i as f32 } else { eps - step * (n - 1 - i) as f32 }).collect()
}

/// Positions to commit at step `i` (0-based) of `steps` with `masked` masks left now (and
/// `initial` at the block's start) under `schedule`.
pub fn quota(schedule: super::options::Schedule, i: usize, steps: usize, masked: usize, initial: usize, eps: f32) -> usize {
    use super::options::Schedule;
    if i + 1 >= steps {
        return masked;
    }
    match schedule {
        Schedule::Even => tokens_per_step(initial, steps)[i],
        Schedule::Timesteps => {
            let ts = timesteps(steps, eps);
            (masked as f32 * (1.0 - ts[i + 1] / ts[i])) as usize
        }
        Schedule::Cutoff => masked.saturating_sub(initial * (steps - 1 - i) / steps),
        // Aligned blocks count from the block length, not the masks (`run` handles them).
        Schedule::Block => masked,
    }
}

/// LLaDA 2's blocks over positions `from .. to`: aligned to multiples of `block` from position
/// 0, so the first one is the rest of the block holding position `from` (the prompt's end).
pub fn aligned_blocks(from: usize, to: usize, block: usize) -> Vec<(usize, usize)> {
    let block = block.max(1);
    let mut out = Vec::new();
    let mut s = from;
    while s < to {
        let e = ((s / block + 1) * block).min(to);
        out.push((s, e));
        s = e;
    }
    out
}

/// The blocks `[start, end)` that cover positions `from .. to` in pieces of `block` positions
/// (the last one shorter if `block` does not divide the span).
pub fn blocks(from: usize, to: usize, block: usize) -> Vec<(usize, usize)> {
    (from..to).step_by(block.max(1)).map(|s| (s, (s + block).min(to))).collect()
}
