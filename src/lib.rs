//! Unmask: masked diffusion language models (LLaDA) on the GPU through WebGPU.
//!
//! The crate is one engine used by the native CLI (`src/main.rs`) and by the web page (`src/web.rs`,
//! compiled to wasm). Reading order for a newcomer: `model` (files → host tensors), `gpu` (device,
//! kernels), `forward` (the LLaDA forward pass on the GPU), `cpu` (the plain-Rust twins that the
//! tests compare the GPU with).

pub mod clock;
pub mod cpu;
pub mod error;
pub mod eval;
pub mod forward;
pub mod gpu;
pub mod load;
pub mod model;
pub mod plan;
pub mod request;
pub mod rng;
pub mod sampler;
pub mod synth;

#[cfg(target_arch = "wasm32")]
pub mod web;

pub use error::{Error, Result};
