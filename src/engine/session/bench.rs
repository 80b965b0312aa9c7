//! What benchmarks and tests ask of a session's recorded passes: GPU time per kernel kind, the
//! kernels a pass launches, and the host's time to encode one (a child module of `session`, so
//! it reads the recorded passes directly).

use super::{Pass, Session};
use crate::choice::Noise;
use crate::engine::graph;
use crate::error::Result;
use crate::gpu::kernels::{Dispatch, Kernel};
use std::ops::Range;

impl Session<'_> {
    /// GPU time per kernel kind (ms, summed over the pass) of the pass over rows `rows` of
    /// `tokens` that predicts positions `want` (inside `rows`: a step's block), from timestamp
    /// queries; None when the adapter has none. The pass runs once first (K/V, recording). For
    /// benchmarks: every kernel runs in its own compute pass, so the total is a little above a
    /// normal pass's.
    pub async fn profile(&mut self, tokens: &[u32], rows: Range<usize>, want: Range<usize>) -> Result<Option<Vec<(String, f64)>>> {
        self.forward_part(tokens, rows.clone(), want.clone(), Noise::GREEDY, false).await?;
        let model = self.model;
        let all: Vec<&Dispatch> = self.recorded(tokens.len(), rows, want)?.dispatches().collect();
        let Some(ms) = model.gpu.time_dispatches(&all).await? else { return Ok(None) };
        Ok(Some(crate::engine::profile::by_kind(all.iter().map(|d| &d.kernel).zip(ms))))
    }

    /// Multiply-adds of the passes this session has run (`graph::multiply_adds`: matmuls and
    /// attention as each pass computes them: its rows, its LM head's rows, the keys each query
    /// sees). A benchmark's achieved GFLOP/s is twice a run's share over its time.
    pub fn multiply_adds_done(&self) -> u64 {
        self.done
    }

    /// The kernels that pass (rows `rows` of a canvas of `len`, predicting `want`) launches, in
    /// order: what the graph's fusions leave (benchmarks, tests).
    pub fn pass_kernels(&mut self, len: usize, rows: Range<usize>, want: Range<usize>) -> Result<Vec<Kernel>> {
        Ok(self.recorded(len, rows, want)?.dispatches().map(|d| d.kernel).collect())
    }

    /// Host milliseconds to encode that pass into a command buffer (every dispatch recorded, the
    /// buffer finished, never submitted), best of `runs`: the CPU side of a step that GPU
    /// timestamps do not see (benchmarks).
    pub fn encode_ms(&mut self, len: usize, rows: Range<usize>, want: Range<usize>, runs: usize) -> Result<f64> {
        let model = self.model;
        let (gpu, pass) = (&*model.gpu, self.recorded(len, rows, want)?);
        let mut best = f64::MAX;
        for _ in 0..runs.max(1) {
            let t = crate::clock::now_ms();
            let mut enc = gpu.device.create_command_encoder(&Default::default());
            gpu.record(&mut enc, &pass.body);
            for (dispatches, _, _) in &pass.head {
                gpu.record(&mut enc, dispatches);
            }
            drop(enc.finish());
            best = best.min(crate::clock::now_ms() - t);
        }
        Ok(best)
    }

    /// The recorded pass over rows `rows` predicting `want` (recorded now if it is not the one
    /// its slot holds), as `forward_part` runs it.
    fn recorded(&mut self, len: usize, rows: Range<usize>, want: Range<usize>) -> Result<&Pass> {
        let (rows, out) = graph::part_rows(&rows, &want, self.model.config.shift_logits)?;
        let slot = self.pass_for(len, rows, out)?;
        Ok(self.passes[slot].as_ref().expect("built by pass_for"))
    }
}
