//! The memory plan: from a model's index alone (headers, no tensor data), the GPU memory that
//! loading it and running a session on it takes, from the same functions that split the weights
//! (`chunk_rows`) and lay out a session (`SessionLayout`), checked against the adapter's limits
//! and an optional budget before anything is allocated. A model or request that cannot fit is
//! refused with the numbers and what to change.

use crate::engine::layout::{SessionConfig, SessionLayout};
use crate::engine::weights::{chunk_group, chunk_rows, target_dtype};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::gpu::Limits;
use crate::model::{ModelIndex, Quant};
use serde::Serialize;

/// What loading and running a model will take on the GPU.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryPlan {
    /// Format the weight matrices get on the GPU ("as stored" unless a quantization was asked).
    pub quant: Option<&'static str>,
    /// Canvas length (prompt + generation) planned for.
    pub canvas: usize,
    /// Bytes of weights on the GPU (after quantization).
    pub weight_bytes: u64,
    /// Bytes of every buffer of one session (activations, K/V, logits, kernel parameters,
    /// readback) for the canvas and settings planned.
    pub session_bytes: u64,
    /// Of which the K/V of every layer.
    pub kv_bytes: u64,
    /// How the K/V are stored ("f32" or "f16").
    pub kv_type: &'static str,
    /// Bytes of tensor data read from the files.
    pub file_bytes: u64,
    /// The largest single storage buffer needed and what it holds.
    pub largest_buffer: (String, u64),
    /// The widest weight row (it cannot be split across buffers).
    pub widest_row: (String, u64),
    /// Longest canvas whose buffers each fit one binding of the adapter planned for.
    pub max_canvas: usize,
}

impl MemoryPlan {
    /// Plans `index` with tensors in `quant` (None: as stored) and a session `session`, for an
    /// adapter with `limits`.
    pub fn new(index: &ModelIndex, quant: Option<Quant>, session: &SessionConfig, limits: Limits) -> Result<Self> {
        let c = &index.config;
        let mut weight_bytes = 0u64;
        let mut widest_row = (String::new(), 0u64);
        let mut largest_buffer = (String::new(), 0u64);
        let chunks = index.tensors.try_map(|key, spec, t| {
            let what = spec.describe(key.layer);
            let d = target_dtype(key, spec, t, quant)?;
            let row = d.row_bytes(t.cols).ok_or_else(|| Error::model(t.name.as_str(), "row length does not suit its format"))? as u64;
            let chunks = chunk_rows(t.rows, row as usize, limits.max_binding, chunk_group(spec, t.rows, c));
            for &(_, n) in &chunks {
                let bytes = Gpu::padded(n as u64 * row);
                weight_bytes = weight_bytes.saturating_add(bytes);
                if bytes > largest_buffer.1 {
                    largest_buffer = (what.clone(), bytes);
                }
            }
            if row > widest_row.1 {
                widest_row = (what, row);
            }
            Ok(chunks.len())
        })?;
        let layout = SessionLayout::new(c, &chunks, session, limits);
        let l = layout.largest();
        if l.1 > largest_buffer.1 {
            largest_buffer = l;
        }
        let max_canvas = crate::engine::layout::max_canvas(c, limits.max_binding);
        Ok(MemoryPlan {
            quant: quant.map(|q| q.dtype.name()),
            canvas: session.canvas,
            weight_bytes,
            session_bytes: layout.total(),
            kv_bytes: layout.kv_bytes(),
            kv_type: session.kv.name(),
            file_bytes: index.file_bytes(),
            largest_buffer,
            widest_row,
            max_canvas,
        })
    }

    pub fn total_bytes(&self) -> u64 {
        self.weight_bytes.saturating_add(self.session_bytes)
    }

    /// Refuses the plan if one of its buffers cannot be bound by the adapter, or if the total
    /// exceeds `budget` (when one is known or asked for).
    pub fn check(&self, limits: Limits, budget: Option<u64>) -> Result<()> {
        let quant_hint = "a smaller quantization (--quant q4_0)";
        let max_binding = limits.max_binding;
        if self.widest_row.1 > max_binding {
            return Err(Error::Limits(format!(
                "one row of {} takes {} but the adapter binds at most {} per buffer; this model cannot run on this adapter{}",
                self.widest_row.0,
                human(self.widest_row.1),
                human(max_binding),
                if self.quant.is_none() { format!(" unless {quant_hint} makes the rows smaller") } else { String::new() }
            )));
        }
        if self.largest_buffer.1 > max_binding {
            return Err(Error::Limits(format!(
                "{} need {} in one buffer but the adapter binds at most {}: use a canvas of at most {} positions (shorter prompt or --gen-length)",
                self.largest_buffer.0,
                human(self.largest_buffer.1),
                human(max_binding),
                self.max_canvas
            )));
        }
        check_budget(self.weight_bytes, self.session_bytes, self.canvas, self.quant, budget)
    }

    /// One line for the CLI and the page.
    pub fn summary(&self) -> String {
        format!(
            "{} on the GPU: {} of weights{} + {} for a {}-position canvas (K/V {} in {}); largest buffer {} ({}); files {}",
            human(self.total_bytes()),
            human(self.weight_bytes),
            self.quant.map(|q| format!(" as {q}")).unwrap_or_default(),
            human(self.session_bytes),
            self.canvas,
            human(self.kv_bytes),
            self.kv_type,
            human(self.largest_buffer.1),
            self.largest_buffer.0,
            human(self.file_bytes)
        )
    }
}

/// Refuses `weights + session` bytes over `budget`, saying what to change.
pub(crate) fn check_budget(weights: u64, session: u64, canvas: usize, quant: Option<&str>, budget: Option<u64>) -> Result<()> {
    let total = weights.saturating_add(session);
    match budget {
        Some(b) if total > b => Err(Error::Limits(format!(
            "the model needs {} of GPU memory ({} of weights{} + {} for a {canvas}-position canvas) but only {} is available; try a smaller quantization (--quant q4_0) or a shorter --gen-length",
            human(total),
            human(weights),
            quant.map(|q| format!(" as {q}")).unwrap_or_default(),
            human(session),
            human(b)
        ))),
        _ => Ok(()),
    }
}

/// Bytes for people: "4.52 GB", "118 MB", "2.3 kB".
pub fn human(b: u64) -> String {
    let f = b as f64;
    if f >= 1e9 {
        format!("{:.2} GB", f / 1e9)
    } else if f >= 1e6 {
        format!("{:.0} MB", f / 1e6)
    } else if f >= 1e3 {
        format!("{:.1} kB", f / 1e3)
    } else {
        format!("{b} bytes")
    }
}
