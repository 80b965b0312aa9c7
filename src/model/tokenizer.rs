//! Text ↔ token ids through a HF `tokenizer.json` (the `tokenizers` crate, wasm-compatible build).

use crate::error::{Error, Result};

#[derive(Clone)]
pub struct TextTokenizer {
    inner: tokenizers::Tokenizer,
}

impl TextTokenizer {
    pub fn from_bytes(file: &str, bytes: &[u8]) -> Result<Self> {
        let inner = tokenizers::Tokenizer::from_bytes(bytes).map_err(|e| Error::model(file, format!("not a valid tokenizer.json: {e}")))?;
        Ok(TextTokenizer { inner })
    }

    /// Encodes without adding special tokens (LLaDA's tokenizer has `add_bos_token: false`).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.inner.encode(text, false).map_err(|e| Error::Input(format!("cannot tokenize the text: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Decodes ids; special tokens are kept only if `keep_special`.
    pub fn decode(&self, ids: &[u32], keep_special: bool) -> Result<String> {
        self.inner.decode(ids, !keep_special).map_err(|e| Error::Input(format!("cannot decode token ids: {e}")))
    }

    /// The text of one token as a canvas cell shows it (special tokens kept); `#id` without a
    /// tokenizer or for an id it cannot decode.
    pub fn piece(tok: Option<&TextTokenizer>, token: u32) -> String {
        tok.and_then(|t| t.decode(&[token], true).ok()).unwrap_or_else(|| format!("#{token}"))
    }

    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
}
