//! The engine: a model's weights on the GPU (`GpuModel`, immutable, shared) and the sessions
//! that run generations on it (`Session`: K/V, activations, kernel parameters, readback). The
//! forward pass is a list of operations (`graph`) that the session records as kernel launches;
//! `layout` sizes a session's buffers and `plan` turns that, with the weights, into the memory
//! plan checked before loading. `denoise` makes a session the sampler's `Denoiser`; `profile`
//! names a pass's kernels by kind for the benchmarks.

pub mod denoise;
pub mod graph;
pub mod layout;
pub mod plan;
pub mod profile;
pub mod session;
pub mod weights;

pub use crate::gpu::Limits;
pub use layout::{SessionConfig, SessionLayout};
pub use plan::{human, MemoryPlan};
pub use session::{ForwardOutput, Session};
pub use weights::{GpuModel, GpuWeight, QkvBias};
