//! The memory plan: from a model's index alone (headers, no tensor data), the GPU memory and
//! the largest single bindings that loading it and running a canvas of a given length need,
//! checked against the adapter's limits before anything is allocated. A model that cannot
//! fit is refused with the numbers and what to change, instead of failing half-way or losing
//! the device.

use crate::error::{Error, Result};
use crate::model::{DType, ModelIndex, TensorRef};
use serde::Serialize;

/// What loading and running a model will take on the GPU.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryPlan {
    /// Format each weight matrix gets on the GPU ("as stored" unless a quantization was asked).
    pub quant: Option<&'static str>,
    /// Canvas length (prompt + generation) planned for.
    pub canvas: usize,
    /// Bytes of weights on the GPU (after quantization).
    pub weight_bytes: u64,
    /// Bytes of activations, K/V of every layer and logits for one canvas.
    pub activation_bytes: u64,
    /// Bytes of tensor data read from the files.
    pub file_bytes: u64,
    /// The largest single storage buffer needed and what it holds.
    pub largest_buffer: (String, u64),
    /// The widest weight row (it cannot be split across buffers).
    pub widest_row: (String, u64),
    /// Longest canvas whose activations each fit one binding of the adapter planned for.
    pub max_canvas: usize,
}

/// The format a matrix takes on the GPU when `quant` is asked: block formats need whole
/// blocks per row; a matrix that cannot take them is an error naming it.
pub fn target_dtype(t: &TensorRef, quant: Option<DType>) -> Result<DType> {
    match quant {
        None => Ok(t.dtype),
        Some(q) if q == t.dtype => Ok(q),
        Some(q @ (DType::Q4K | DType::Q6K)) => Err(Error::Input(format!("--quant {}: k-quants are read from GGUF files, not made; use q4_0 or q8_0", q.name()))),
        Some(q) => {
            q.row_bytes(t.cols).ok_or_else(|| Error::Input(format!("cannot store `{}` ({} columns) as {}: block formats need a multiple of 32 columns", t.name, t.cols, q.name())))?;
            Ok(q)
        }
    }
}

impl MemoryPlan {
    /// Plans `index` with matrices in `quant` (None: as stored) and a canvas of `canvas`
    /// positions, for an adapter binding at most `max_binding` bytes per buffer.
    pub fn new(index: &ModelIndex, quant: Option<DType>, canvas: usize, max_binding: u64) -> Result<Self> {
        let c = &index.config;
        let mut weight_bytes = 0u64;
        let mut widest_row = (String::new(), 0u64);
        let mut largest_buffer = (String::new(), 0u64);
        let mut matrix = |what: String, t: &TensorRef| -> Result<()> {
            let d = target_dtype(t, quant)?;
            let row = d.row_bytes(t.cols).ok_or_else(|| Error::model(t.name.as_str(), "row length does not suit its format"))? as u64;
            // Weights are split by rows into chunks of at most one binding, each padded to
            // whole 4-byte words (as `GpuWeight` stores them).
            let rows = t.rows as u64;
            let per_chunk = (max_binding / row.max(1)).clamp(1, rows.max(1));
            let pad = |b: u64| b.div_ceil(4) * 4;
            let bytes = (rows / per_chunk).saturating_mul(pad(per_chunk * row)) + if rows % per_chunk > 0 { pad(rows % per_chunk * row) } else { 0 };
            weight_bytes = weight_bytes.saturating_add(bytes);
            if row > widest_row.1 {
                widest_row = (what.clone(), row);
            }
            let chunk = pad(per_chunk.min(rows) * row);
            if chunk > largest_buffer.1 {
                largest_buffer = (what, chunk);
            }
            Ok(())
        };
        matrix("the embedding".into(), &index.embed)?;
        matrix("the LM head".into(), &index.lm_head)?;
        for (i, l) in index.layers.iter().enumerate() {
            for (name, t) in l.matrices() {
                matrix(format!("layer {i} {name}"), t)?;
            }
        }
        let norms = 4 * c.d_model as u64 * (1 + 2 * c.n_layers as u64);
        weight_bytes = weight_bytes.saturating_add(norms);

        // Activations of one pass over the whole canvas (forward.rs `build_plan`), per-layer K/V
        // of the canvas, and the logits of the rows the LM head computes at a time.
        let n = canvas as u64;
        let (d, kv, hid, v) = (c.d_model as u64, c.kv_dim() as u64, c.mlp_hidden_size as u64, c.vocab_size as u64);
        let head_rows = crate::forward::head_rows(max_binding, c.vocab_size, canvas.max(1)) as u64;
        let buffers = [
            ("the MLP activations", 2 * n * hid * 4, n * hid * 4),
            ("the residual stream, queries and attention output", 4 * n * d * 4, n * d * 4),
            ("the keys and values of every layer", 2 * c.n_layers as u64 * n * kv * 4, n * kv * 4),
            ("the logits", head_rows * v * 4, head_rows * v * 4),
            ("tokens, positions and choices", 6 * n * 4, 4 * n * 4),
        ];
        let mut activation_bytes = 0u64;
        for (what, total, one) in buffers {
            activation_bytes = activation_bytes.saturating_add(total);
            if one > largest_buffer.1 {
                largest_buffer = (format!("{what} of a {canvas}-position canvas"), one);
            }
        }
        let widest_activation = 4 * [hid, d, 4].into_iter().max().unwrap_or(1);
        let max_canvas = (max_binding / widest_activation).min(c.max_sequence_length as u64) as usize;
        Ok(MemoryPlan {
            quant: quant.map(DType::name),
            canvas,
            weight_bytes,
            activation_bytes,
            file_bytes: index.file_bytes(),
            largest_buffer,
            widest_row,
            max_canvas,
        })
    }

    pub fn total_bytes(&self) -> u64 {
        self.weight_bytes.saturating_add(self.activation_bytes)
    }

    /// Refuses the plan if one of its buffers cannot be bound by an adapter binding at most
    /// `max_binding` bytes, or if the total exceeds `budget` (when one is known or asked for).
    pub fn check(&self, max_binding: u64, budget: Option<u64>) -> Result<()> {
        let quant_hint = "a smaller quantization (--quant q4_0)";
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
        if let Some(b) = budget {
            if self.total_bytes() > b {
                return Err(Error::Limits(format!(
                    "the model needs {} of GPU memory ({} of weights{} + {} for a {}-position canvas) but only {} is available; try {quant_hint} or a shorter --gen-length",
                    human(self.total_bytes()),
                    human(self.weight_bytes),
                    self.quant.map(|q| format!(" as {q}")).unwrap_or_default(),
                    human(self.activation_bytes),
                    self.canvas,
                    human(b)
                )));
            }
        }
        Ok(())
    }

    /// One line for the CLI and the page.
    pub fn summary(&self) -> String {
        format!(
            "{} on the GPU: {} of weights{} + {} for a {}-position canvas; largest buffer {} ({}); files {}",
            human(self.total_bytes()),
            human(self.weight_bytes),
            self.quant.map(|q| format!(" as {q}")).unwrap_or_default(),
            human(self.activation_bytes),
            self.canvas,
            human(self.largest_buffer.1),
            self.largest_buffer.0,
            human(self.file_bytes)
        )
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
