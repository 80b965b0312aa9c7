//! Google's DiffusionGemma (`diffusion_gemma`, docs/diffusion_gemma.md): a Gemma 4 MoE stack run
//! as an encoder (causal, fills a K/V cache) and a decoder (one canvas, bidirectional over the
//! cache, self-conditioned), with uniform-state sampling. Its own module while it has only a
//! CPU forward pass: the config, the checkpoint's tensors, and that forward pass.

pub mod config;
pub mod forward;
pub mod sampler;
pub mod weights;

pub use config::DgConfig;
pub use weights::DgWeights;
