//! The thin wasm-bindgen layer the web page uses: load a model from bytes, run the engine, report
//! the adapter. Everything here converts between JS values and the engine's Rust API.

use crate::cpu::ops::Noise;
use crate::forward::GpuModel;
use crate::gpu::Gpu;
use crate::model::{ModelWeights, TextTokenizer};
use std::sync::Arc;
use wasm_bindgen::prelude::*;

fn js_err(e: crate::Error) -> JsValue {
    JsValue::from_str(&e.to_string())
}

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// A model on the GPU plus its tokenizer.
#[wasm_bindgen]
pub struct Engine {
    model: GpuModel,
    tokenizer: Option<TextTokenizer>,
}

#[wasm_bindgen]
impl Engine {
    /// Loads a GGUF file (and optionally a tokenizer.json) from bytes.
    #[wasm_bindgen(js_name = loadGguf)]
    pub async fn load_gguf(gguf: Vec<u8>, tokenizer_json: Option<Vec<u8>>) -> Result<Engine, JsValue> {
        let weights = ModelWeights::from_gguf("model.gguf", &gguf).map_err(js_err)?;
        drop(gguf);
        Self::finish(weights, tokenizer_json).await
    }

    /// Loads a Hub-style model: config.json text, one safetensors file, optional tokenizer.json.
    #[wasm_bindgen(js_name = loadSafetensors)]
    pub async fn load_safetensors(config_json: String, safetensors: Vec<u8>, tokenizer_json: Option<Vec<u8>>) -> Result<Engine, JsValue> {
        let weights = ModelWeights::from_safetensors("config.json", &config_json, &[("model.safetensors".into(), &safetensors)]).map_err(js_err)?;
        drop(safetensors);
        Self::finish(weights, tokenizer_json).await
    }

    async fn finish(weights: ModelWeights, tokenizer_json: Option<Vec<u8>>) -> Result<Engine, JsValue> {
        let tokenizer = tokenizer_json.map(|t| TextTokenizer::from_bytes("tokenizer.json", &t)).transpose().map_err(js_err)?;
        let gpu = Arc::new(Gpu::new().await.map_err(js_err)?);
        let model = GpuModel::upload(gpu, &weights).map_err(js_err)?;
        Ok(Engine { model, tokenizer })
    }

    /// The adapter's name, limits and features.
    pub fn adapter(&self) -> Result<JsValue, JsValue> {
        serde_wasm_bindgen::to_value(&self.model.gpu.report).map_err(|e| JsValue::from_str(&e.to_string()))
    }

    /// The model's config.
    pub fn config(&self) -> Result<JsValue, JsValue> {
        serde_wasm_bindgen::to_value(&self.model.config).map_err(|e| JsValue::from_str(&e.to_string()))
    }

    /// Token ids of `text` (needs a tokenizer).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, JsValue> {
        let t = self.tokenizer.as_ref().ok_or_else(|| JsValue::from_str("this model has no tokenizer"))?;
        t.encode(text).map_err(js_err)
    }

    /// One forward pass; returns the per-position argmax tokens.
    pub async fn argmax(&self, tokens: Vec<u32>) -> Result<Vec<u32>, JsValue> {
        let out = self.model.forward(&tokens, Noise { temperature: 0.0, seed: 0, salt: 0 }, false).await.map_err(js_err)?;
        Ok(out.choices.iter().map(|c| c.token).collect())
    }
}
