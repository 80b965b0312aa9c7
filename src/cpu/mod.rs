//! Plain-Rust twins of the GPU kernels and of the forward pass. They define what the kernels
//! must compute; the tests compare the GPU against them. Simple loops, f32 like the kernels.

pub mod forward;
pub mod ops;
