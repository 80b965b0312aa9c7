//! Google's DiffusionGemma (`diffusion_gemma`, docs/diffusion_gemma.md): a Gemma 4 MoE stack run
//! as an encoder (causal, fills a K/V cache) and a decoder (one canvas, bidirectional over the
//! cache, self-conditioned), with uniform-state sampling. Its own module, as its two modes do not
//! fit the one-pass graph of the other families: the config, the checkpoint's tensors, the CPU
//! forward pass (the twin), the GPU model and session, and the sampler.

pub mod config;
#[cfg(not(target_arch = "wasm32"))]
pub mod files;
pub mod forward;
pub mod gguf_config;
pub mod gguf_write;
pub mod gpu;
pub mod gpu_session;
pub mod index;
pub mod plan;
pub mod sampler;
pub mod weights;

pub use config::DgConfig;
pub use weights::DgWeights;

use crate::model::source::ByteSource;

/// Whether `src` holds a DiffusionGemma model: `config` (config.json text, for safetensors)
/// says `model_type` `diffusion_gemma`, or (without one) the GGUF's architecture is
/// `diffusion-gemma`. Anything unreadable is "no" (the general loader then says why).
pub async fn detect<S: ByteSource>(src: &S, config: Option<&str>) -> bool {
    match config {
        Some(text) => {
            serde_json::from_str::<serde_json::Value>(text).ok().and_then(|v| v.get("model_type")?.as_str().map(|t| t == "diffusion_gemma")).unwrap_or(false)
        }
        None => {
            let Ok(head) = crate::model::index::read_gguf_head(src).await else { return false };
            let Ok(Some(g)) = crate::model::gguf::Gguf::parse_prefix(&src.name(0), &head, src.len(0)) else { return false };
            g.get("general.architecture").and_then(crate::model::gguf::Value::as_str) == Some(gguf_config::ARCH)
        }
    }
}

/// The tokenizer embedded in a GGUF (file 0 of `src`), when it is one the engine reads.
pub async fn gguf_tokenizer<S: ByteSource>(src: &S) -> crate::Result<Option<crate::model::TextTokenizer>> {
    let head = crate::model::index::read_gguf_head(src).await?;
    match crate::model::gguf::Gguf::parse_prefix(&src.name(0), &head, src.len(0))? {
        Some(g) => crate::model::gguf_tokenizer::tokenizer_from_gguf(&g),
        None => Ok(None),
    }
}

/// Gemma's turn format (`<bos>` is added as an id, see `prompt_tokens`).
pub const CHAT: crate::model::arch::ChatFormat =
    crate::model::arch::ChatFormat { bos: "", header: "<start_of_turn>{role}\n", end: "<end_of_turn>\n", roles: ["system", "user", "model"] };

/// The prompt's tokens as Gemma's chat template makes them: `<bos>` first (when the vocabulary
/// has it), then the text, inside one user turn when `chat`.
pub fn prompt_tokens(tok: &crate::model::TextTokenizer, text: &str, chat: bool) -> crate::Result<Vec<u32>> {
    with_bos(tok, &if chat { crate::sampler::text::chat_prompt(&CHAT, text) } else { text.to_string() })
}

/// A conversation's tokens in Gemma's chat template, ending where the model's turn starts.
pub fn messages_tokens(tok: &crate::model::TextTokenizer, messages: &[crate::sampler::text::Message]) -> crate::Result<Vec<u32>> {
    with_bos(tok, &crate::sampler::text::chat_messages(&CHAT, messages)?)
}

fn with_bos(tok: &crate::model::TextTokenizer, text: &str) -> crate::Result<Vec<u32>> {
    let mut ids: Vec<u32> = tok.token_to_id("<bos>").into_iter().collect();
    ids.extend(tok.encode(text)?);
    Ok(ids)
}

/// `--quant` (or the page's choice) for DiffusionGemma: as stored, or matrices converted to q8_0
/// or q4_0.
pub fn parse_quant(q: Option<&str>) -> crate::Result<Option<crate::model::DType>> {
    use crate::model::DType;
    match q {
        None | Some("") => Ok(None),
        Some("q8_0") => Ok(Some(DType::Q8_0)),
        Some("q4_0") => Ok(Some(DType::Q4_0)),
        Some(q) => Err(crate::Error::Input(format!("quantization {q:?}: DiffusionGemma loads as stored, or converted to q8_0 or q4_0"))),
    }
}
