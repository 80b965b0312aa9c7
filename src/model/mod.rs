//! Model files → host tensors: the architecture tables, config, GGUF and safetensors readers and
//! writers, quantization formats, the tokenizer, and (natively) finding a model's files on disk.

pub mod arch;
pub mod config;
mod config_write;
pub mod families;
#[cfg(not(target_arch = "wasm32"))]
pub mod files;
pub mod gguf;
pub mod gguf_tokenizer;
pub mod gguf_write;
pub mod index;
pub mod source;
pub mod tensor;
pub mod tokenizer;
pub mod weights;

pub use arch::{Family, Key, Quant, Role, RopeStyle, Tensors};
pub use config::ModelConfig;
pub use index::{ModelIndex, TensorRef};
pub use tensor::{DType, HostTensor};
pub use tokenizer::TextTokenizer;
pub use weights::ModelWeights;
