//! Google's DiffusionGemma (`diffusion_gemma`, docs/diffusion_gemma.md): a Gemma 4 MoE stack run
//! as an encoder (causal, fills a K/V cache) and a decoder (one canvas, bidirectional over the
//! cache, self-conditioned), with uniform-state sampling. Its own module, as its two modes do not
//! fit the one-pass graph of the other families: the config, the checkpoint's tensors, the CPU
//! forward pass (the twin), the GPU model and session, and the sampler.

pub mod config;
pub mod forward;
pub mod gpu;
pub mod gpu_session;
pub mod sampler;
pub mod weights;

pub use config::DgConfig;
pub use weights::DgWeights;
