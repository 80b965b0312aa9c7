//! Unmask: masked diffusion language models (LLaDA) on the GPU through WebGPU.
//!
//! The crate is one engine used by the native CLI (`src/main.rs`) and by the web page (`src/web.rs`,
//! compiled to wasm). Reading order for a newcomer: `model` (architecture tables, files → host
//! tensors), `gpu` (device, kernels), `engine` (weights on the GPU, sessions, the forward pass as
//! a list of operations, the memory plan), `sampler` (the diffusion loop, GPU-free), `cpu` (the
//! plain-Rust twins that the tests compare the GPU with).

#[cfg(not(target_arch = "wasm32"))]
pub mod app;
pub mod choice;
pub mod clock;
pub mod cpu;
pub mod dgemma;
pub mod engine;
pub mod error;
pub mod eval;
pub mod gpu;
#[cfg(not(target_arch = "wasm32"))]
pub mod load;
pub mod model;
pub mod request;
pub mod rng;
pub mod sampler;
pub mod synth;

#[cfg(target_arch = "wasm32")]
pub mod web;
#[cfg(target_arch = "wasm32")]
pub mod web_dgemma;

pub use error::{Error, Result};
