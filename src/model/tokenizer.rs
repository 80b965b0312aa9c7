//! Text ↔ token ids through a HF `tokenizer.json` (the `tokenizers` crate, wasm-compatible build).

use crate::error::{Error, Result};

/// Reads every `Precompiled` normalizer of a `normalizer` tree on its own, as an error where
/// the tokenizers crate would panic.
fn check_precompiled(v: &serde_json::Value) -> std::result::Result<(), serde_json::Error> {
    use tokenizers::normalizers::precompiled::Precompiled;
    match v {
        serde_json::Value::Object(m) if m.get("type").and_then(|t| t.as_str()) == Some("Precompiled") => {
            serde_json::from_value::<Precompiled>(v.clone()).map(|_| ())
        }
        serde_json::Value::Object(m) => m.values().try_for_each(check_precompiled),
        serde_json::Value::Array(a) => a.iter().try_for_each(check_precompiled),
        _ => Ok(()),
    }
}

#[derive(Clone)]
pub struct TextTokenizer {
    inner: tokenizers::Tokenizer,
}

impl TextTokenizer {
    pub fn from_bytes(file: &str, bytes: &[u8]) -> Result<Self> {
        let bad = |e: String| Error::model(file, format!("not a valid tokenizer.json: {e}"));
        // The tokenizers crate panics (instead of failing) on some malformed parts: JSON syntax
        // errors inside `decoder`, a bad `Precompiled` normalizer. Those are checked first (a
        // panic aborts the page's worker); natively, any other panic of its reader is caught.
        let text = std::str::from_utf8(bytes).map_err(|e| bad(format!("not UTF-8: {e}")))?;
        serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(|e| bad(e.to_string()))?;
        if text.contains("Precompiled") {
            let v: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
            check_precompiled(&v["normalizer"]).map_err(|e| bad(format!("a Precompiled normalizer: {e}")))?;
        }
        let read = std::panic::catch_unwind(|| tokenizers::Tokenizer::from_bytes(bytes));
        let inner = match read {
            Ok(r) => r.map_err(|e| bad(e.to_string()))?,
            Err(p) => {
                let what = p.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| p.downcast_ref::<String>().cloned());
                return Err(bad(what.unwrap_or_else(|| "its reader failed".into())));
            }
        };
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
