//! The thin wasm-bindgen layer that the web page's worker (`www/worker.js`) calls: load a model
//! from bytes, generate or infill with a per-step callback, cancel, and report the adapter.
//! Options, events and results cross as plain JS objects (serde-wasm-bindgen).

use crate::forward::GpuModel;
use crate::gpu::Gpu;
use crate::model::gguf::Gguf;
use crate::model::gguf_tokenizer::tokenizer_from_gguf;
use crate::model::{ModelWeights, TextTokenizer};
use crate::request::{Prepared, Request};
use crate::sampler::text::end_tokens;
use crate::sampler::{self, Canvas, SamplerOptions, StepEvent};
use serde::Serialize;
use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use wasm_bindgen::prelude::*;

fn js_err(e: crate::Error) -> JsValue {
    JsValue::from_str(&e.to_string())
}

fn to_js<T: Serialize>(v: &T) -> Result<JsValue, JsValue> {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).map_err(|e| JsValue::from_str(&e.to_string()))
}

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// The adapter's name, limits and features, or an error saying why WebGPU is unavailable.
#[wasm_bindgen(js_name = adapterInfo)]
pub async fn adapter_info() -> Result<JsValue, JsValue> {
    let gpu = Gpu::new().await.map_err(js_err)?;
    to_js(&gpu.report)
}

/// A model on the GPU plus its tokenizer.
#[wasm_bindgen]
pub struct Engine {
    model: GpuModel,
    tokenizer: Option<TextTokenizer>,
    cancel: Rc<Cell<bool>>,
}

#[derive(Serialize)]
struct CommitJs {
    pos: usize,
    token: u32,
    confidence: f32,
    text: String,
}

#[derive(Serialize)]
struct StepJs {
    step: usize,
    block: usize,
    masked_left: usize,
    ms: f64,
    early_stop: bool,
    committed: Vec<CommitJs>,
}

#[derive(Serialize)]
struct StartJs<'a> {
    tokens: &'a [u32],
    pieces: Vec<String>,
    gen_start: usize,
    mask: u32,
    block_length: usize,
    steps: usize,
}

#[derive(Serialize)]
struct ResultJs {
    tokens: Vec<u32>,
    gen_start: usize,
    text: String,
    steps: usize,
    model_passes: usize,
    ms: f64,
    tokens_per_second: f64,
    early_stopped: bool,
    cancelled: bool,
}

#[wasm_bindgen]
impl Engine {
    /// Loads a model from bytes: a GGUF file, or (when `config_json` is given) a safetensors
    /// file with its config.json; `tokenizer_json` is optional (without it a GGUF's embedded
    /// tokenizer is used, if it has one). `on_progress(done, total)` is
    /// called while the weights go to the GPU.
    pub async fn load(model: Vec<u8>, config_json: Option<String>, tokenizer_json: Option<Vec<u8>>, on_progress: Option<js_sys::Function>) -> Result<Engine, JsValue> {
        let is_gguf = config_json.is_none();
        let weights = match config_json {
            Some(cfg) => ModelWeights::from_safetensors("config.json", &cfg, &[("model.safetensors".into(), &model)]),
            None => ModelWeights::from_gguf("model.gguf", &model),
        }
        .map_err(js_err)?;
        // A tokenizer.json given with the model wins over the one embedded in a GGUF (as natively).
        let tokenizer = match tokenizer_json {
            Some(t) => Some(TextTokenizer::from_bytes("tokenizer.json", &t).map_err(js_err)?),
            None if is_gguf => tokenizer_from_gguf(&Gguf::parse("model.gguf", &model).map_err(js_err)?).map_err(js_err)?,
            None => None,
        };
        drop(model);
        let gpu = Arc::new(Gpu::new().await.map_err(js_err)?);
        let model = GpuModel::upload_with_progress(gpu, &weights, &mut |done, total| {
            if let Some(f) = &on_progress {
                let _ = f.call2(&JsValue::NULL, &(done as f64).into(), &(total as f64).into());
            }
        })
        .map_err(js_err)?;
        Ok(Engine { model, tokenizer, cancel: Rc::new(Cell::new(false)) })
    }

    /// The adapter's name, limits and features.
    pub fn adapter(&self) -> Result<JsValue, JsValue> {
        to_js(&self.model.gpu.report)
    }

    /// The model's config.
    pub fn config(&self) -> Result<JsValue, JsValue> {
        to_js(&self.model.config)
    }

    #[wasm_bindgen(js_name = hasTokenizer)]
    pub fn has_tokenizer(&self) -> bool {
        self.tokenizer.is_some()
    }

    /// Text of one token (for drawing one cell per position).
    pub fn piece(&self, token: u32) -> String {
        self.tokenizer.as_ref().and_then(|t| t.decode(&[token], true).ok()).unwrap_or_else(|| format!("#{token}"))
    }

    /// Asks a running generation to stop after its current step.
    pub fn cancel(&self) {
        self.cancel.set(true);
    }

    /// Runs a request (see `Request`: prompt or infill text plus sampler options).
    /// `on_start(canvas)` receives the initial canvas; `on_step(event)` every step.
    pub async fn run(&self, request: JsValue, on_start: Option<js_sys::Function>, on_step: Option<js_sys::Function>) -> Result<JsValue, JsValue> {
        let req: Request = serde_wasm_bindgen::from_value(request).map_err(|e| JsValue::from_str(&format!("bad request: {e}")))?;
        let p = req.prepare(&self.model.config, self.tokenizer.as_ref()).map_err(js_err)?;
        self.execute(p, on_start, on_step).await
    }

    /// Regenerates only some positions of a finished canvas (the page's "click words to
    /// remask"): `tokens` is the whole canvas with the mask token id at the positions to redo
    /// (all at or after `gen_start`), `options` the sampler options (`SamplerOptions`). Like an
    /// infill, the answer is one block and `steps` is capped at the number of masks.
    pub async fn remask(&self, tokens: Vec<u32>, gen_start: usize, options: JsValue, on_start: Option<js_sys::Function>, on_step: Option<js_sys::Function>) -> Result<JsValue, JsValue> {
        let o: SamplerOptions = if options.is_undefined() || options.is_null() {
            SamplerOptions::default()
        } else {
            serde_wasm_bindgen::from_value(options).map_err(|e| JsValue::from_str(&format!("bad options: {e}")))?
        };
        let cfg = &self.model.config;
        let (eos, eot) = end_tokens(cfg, self.tokenizer.as_ref());
        let canvas = Canvas { tokens, gen_start, mask: cfg.mask_token_id, eos };
        let len = canvas.tokens.len();
        if gen_start >= len || len > cfg.max_sequence_length {
            return Err(JsValue::from_str(&format!("remask: the canvas has {len} positions and the answer starts at {gen_start} (context {})", cfg.max_sequence_length)));
        }
        if let Some(bad) = canvas.tokens.iter().find(|&&t| t as usize >= cfg.vocab_size) {
            return Err(JsValue::from_str(&format!("remask: token id {bad} is outside the vocabulary (0..{})", cfg.vocab_size)));
        }
        let masked = canvas.masked();
        if masked == 0 {
            return Err(JsValue::from_str("nothing to regenerate: select some positions of the answer first"));
        }
        let gen = len - gen_start;
        let o = SamplerOptions { gen_length: gen, block_length: gen, steps: o.steps.min(masked).max(1), early_stop: false, ..o };
        self.execute(Prepared { canvas, options: o, ends: [eos, eot] }, on_start, on_step).await
    }
}

impl Engine {
    async fn execute(&self, p: Prepared, on_start: Option<js_sys::Function>, on_step: Option<js_sys::Function>) -> Result<JsValue, JsValue> {
        let tok = self.tokenizer.as_ref();
        if let Some(f) = &on_start {
            let start = StartJs {
                tokens: &p.canvas.tokens,
                pieces: p.canvas.tokens.iter().map(|&t| if t == p.canvas.mask { String::new() } else { self.piece(t) }).collect(),
                gen_start: p.canvas.gen_start,
                mask: p.canvas.mask,
                block_length: p.options.block_length,
                steps: p.options.steps,
            };
            f.call1(&JsValue::NULL, &to_js(&start)?)?;
        }
        self.cancel.set(false);
        let cancel = self.cancel.clone();
        let mut model = &self.model;
        let mut on_event = |e: &StepEvent| {
            if let Some(f) = &on_step {
                let ev = StepJs {
                    step: e.step,
                    block: e.block,
                    masked_left: e.masked_left,
                    ms: e.ms,
                    early_stop: e.early_stop,
                    committed: e.committed.iter().map(|c| CommitJs { pos: c.pos, token: c.token, confidence: c.confidence, text: self.piece(c.token) }).collect(),
                };
                if let Ok(v) = to_js(&ev) {
                    let _ = f.call1(&JsValue::NULL, &v);
                }
            }
            !cancel.get()
        };
        let g = sampler::run(&mut model, p.canvas, &p.options, &mut on_event).await.map_err(js_err)?;
        let shown = if g.gen_start == 0 { &g.tokens[..] } else { &g.tokens[g.gen_start..] };
        let text = match tok {
            Some(t) => t.decode(shown, false).map_err(js_err)?,
            None => shown.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(","),
        };
        let generated = g.tokens[g.gen_start..].iter().filter(|t| !p.ends.contains(&Some(**t))).count();
        to_js(&ResultJs {
            text,
            gen_start: g.gen_start,
            steps: g.steps,
            model_passes: g.model_passes,
            ms: g.ms,
            tokens_per_second: generated as f64 / (g.ms / 1000.0).max(1e-9),
            early_stopped: g.early_stopped,
            cancelled: g.cancelled,
            tokens: g.tokens,
        })
    }
}
