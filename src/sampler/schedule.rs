//! The reference schedule: how many tokens each step of a block commits.

/// In a block with `masked` masked positions and `steps` steps, step s commits
/// `masked / steps` tokens plus one for each of the first `masked % steps` steps
/// (LLaDA's `get_num_transfer_tokens`).
pub fn tokens_per_step(masked: usize, steps: usize) -> Vec<usize> {
    let (base, extra) = (masked / steps, masked % steps);
    (0..steps).map(|s| base + usize::from(s < extra)).collect()
}

/// The blocks `[start, end)` that cover positions `from .. to` in pieces of `block` positions
/// (the last one shorter if `block` does not divide the span).
pub fn blocks(from: usize, to: usize, block: usize) -> Vec<(usize, usize)> {
    (from..to).step_by(block.max(1)).map(|s| (s, (s + block).min(to))).collect()
}
