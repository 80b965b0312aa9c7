//! A session is the sampler's `Denoiser`: choices come from the GPU (token selection runs
//! there, for the block's rows alone), row-range steps use the session's K/V, guidance mixes on
//! the GPU.

use crate::choice::{Choice, Noise};
use crate::engine::session::Session;
use crate::error::{Error, Result};
use crate::sampler::Denoiser;
use std::ops::Range;

impl Denoiser for Session<'_> {
    async fn choose(&mut self, canvas: &[u32], noise: Noise) -> Result<Vec<Choice>> {
        Ok(self.forward(canvas, noise, false).await?.choices)
    }
    async fn logits(&mut self, canvas: &[u32]) -> Result<Vec<f32>> {
        let out = self.forward(canvas, Noise::GREEDY, true).await?;
        out.logits.ok_or_else(|| Error::Gpu("logits were not read back".into()))
    }
    fn vocab_size(&self) -> usize {
        self.model().config.vocab_size
    }
    async fn choose_rows(&mut self, canvas: &[u32], rows: Range<usize>, noise: Noise) -> Result<Vec<Choice>> {
        Ok(self.forward_rows(canvas, rows, noise, false).await?.choices)
    }
    async fn choose_in(&mut self, canvas: &[u32], rows: Option<Range<usize>>, want: Range<usize>, noise: Noise) -> Result<Vec<Choice>> {
        let rows = rows.unwrap_or(0..canvas.len());
        Ok(self.forward_part(canvas, rows, want, noise, false).await?.choices)
    }
    async fn choose_guided(&mut self, cond: &[u32], uncond: &[u32], scale: f32, want: Range<usize>, noise: Noise) -> Result<Vec<Choice>> {
        self.forward_guided(cond, uncond, scale, want, noise).await
    }
}
