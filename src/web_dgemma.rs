//! The page's DiffusionGemma engine (`DgEngine`), beside `web.rs`'s `Engine` for the masked
//! families: load a `diffusion_gemma` model streamed from JavaScript (Hub safetensors or
//! llama.cpp's GGUF), then run uniform-state generations with an event per denoising step
//! (every cell's current token, accepted or re-noised, its entropy; the canvas index; the stop
//! reason). `isDiffusionGemma` tells the worker which engine a model needs. Errors are thrown
//! structured, as `web.rs`'s.

use crate::dgemma::gpu::DgGpuModel;
use crate::dgemma::gpu_session::DgSession;
use crate::dgemma::index::DgIndex;
use crate::dgemma::sampler::{generate, positions_needed, DgSettings, DgStep, SeededDraws};
use crate::gpu::Gpu;
use crate::model::TextTokenizer;
use crate::rng::Rng;
use crate::web::{input_err, js_err, plan_js, to_js, JsSource};
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use wasm_bindgen::prelude::*;

/// Whether the model in these files is DiffusionGemma (config.json's model_type, or the GGUF's
/// architecture); `read`, `sizes`, `names` as for `DgEngine.loadStreaming`.
#[wasm_bindgen(js_name = isDiffusionGemma)]
pub async fn is_diffusion_gemma(read: js_sys::Function, sizes: Vec<f64>, names: Vec<String>, config_json: Option<String>) -> bool {
    match JsSource::new(read, &sizes, names) {
        Ok(src) => crate::dgemma::detect(&src, config_json.as_deref()).await,
        Err(_) => false,
    }
}

#[wasm_bindgen]
pub struct DgEngine {
    model: DgGpuModel,
    tokenizer: Option<TextTokenizer>,
    /// The checkpoint's own sampler settings (GGUF keys or generation_config.json).
    settings: DgSettings,
    cancel: Rc<Cell<bool>>,
}

/// A generation request: the prompt (text, with Gemma's turn format when `chat`, or token
/// ids), the answer length (whole canvases), the seed, and optional overrides of the
/// checkpoint's settings.
#[derive(Deserialize)]
struct DgRequest {
    prompt: Option<String>,
    prompt_tokens: Option<Vec<u32>>,
    #[serde(default)]
    chat: bool,
    gen_length: usize,
    #[serde(default)]
    seed: u64,
    steps: Option<usize>,
    entropy_bound: Option<f32>,
}

#[derive(Serialize)]
struct DgStepJs<'a> {
    canvas: usize,
    step: usize,
    temperature: f32,
    /// Per cell: the model's current choice (argmax), its text, whether the step accepted the
    /// cell's sample (else it was re-noised), and the cell's entropy.
    tokens: &'a [u32],
    pieces: Vec<String>,
    accepted: &'a [bool],
    entropy: &'a [f32],
    stopped: bool,
    ms: f64,
}

#[derive(Serialize)]
struct DgResultJs {
    tokens: Vec<u32>,
    gen_start: usize,
    text: String,
    canvases: usize,
    steps: usize,
    stop: &'static str,
    ms: f64,
    cancelled: bool,
}

/// The page's quantization names; "q4_0_pure" (embedding in Q4_0 too) loads as q4_0 here.
fn parse_quant(quant: Option<&str>) -> Result<Option<crate::model::DType>, JsValue> {
    crate::dgemma::parse_quant(quant.map(|q| q.trim_end_matches("_pure"))).map_err(|e| match e {
        crate::Error::Input(m) => input_err(Some("quant"), m),
        e => js_err(e),
    })
}

/// The plan for the weights and a session of a prompt and two canvases.
fn plan(index: &DgIndex, quant: Option<crate::model::DType>, gpu: &Gpu) -> crate::Result<crate::engine::MemoryPlan> {
    let c = &index.config;
    crate::dgemma::plan::plan(index, quant, (3 * c.canvas_length).min(c.max_positions), gpu.plan_limits(), gpu.default_kv())
}

fn now() -> f64 {
    js_sys::Date::now()
}

#[wasm_bindgen]
impl DgEngine {
    /// Streams a DiffusionGemma model to the GPU (arguments as `Engine.loadStreaming`; a
    /// generation_config.json text may come with a Hub folder). `quant`: "q8_0" or "q4_0". The
    /// memory plan (weights plus a session of a prompt and two canvases) is checked against the
    /// adapter's limits first and given to `on_plan(summary)`.
    #[wasm_bindgen(js_name = loadStreaming)]
    #[allow(clippy::too_many_arguments)]
    pub async fn load_streaming(
        read: js_sys::Function,
        sizes: Vec<f64>,
        names: Vec<String>,
        config_json: Option<String>,
        tokenizer_json: Option<Vec<u8>>,
        generation_json: Option<String>,
        quant: Option<String>,
        on_plan: Option<js_sys::Function>,
        on_progress: Option<js_sys::Function>,
    ) -> Result<DgEngine, JsValue> {
        let src = JsSource::new(read, &sizes, names)?;
        let quant = parse_quant(quant.as_deref())?;
        let index = DgIndex::read(&src, config_json.as_deref().map(|c| ("config.json", c))).await.map_err(js_err)?;
        let settings = DgSettings::resolve(index.settings.as_ref(), generation_json.as_deref()).map_err(js_err)?;
        let tokenizer = match tokenizer_json {
            Some(t) => Some(TextTokenizer::from_bytes("tokenizer.json", &t).map_err(js_err)?),
            None if config_json.is_none() => crate::dgemma::gguf_tokenizer(&src).await.map_err(js_err)?,
            None => None,
        };
        #[allow(clippy::arc_with_non_send_sync)]
        let gpu = Arc::new(Gpu::new().await.map_err(js_err)?);
        let plan = plan(&index, quant, &gpu).map_err(js_err)?;
        plan.check(gpu.plan_limits(), None).map_err(js_err)?;
        if let Some(f) = &on_plan {
            let _ = f.call1(&JsValue::NULL, &JsValue::from_str(&plan.summary()));
        }
        let model = DgGpuModel::load(gpu, &index, &src, quant, &mut |done, total| {
            if let Some(f) = &on_progress {
                let _ = f.call2(&JsValue::NULL, &(done as f64).into(), &(total as f64).into());
            }
        })
        .await
        .map_err(js_err)?;
        Ok(DgEngine { model, tokenizer, settings, cancel: Rc::new(Cell::new(false)) })
    }

    /// The memory plan `loadStreaming` would check, from the headers alone (nothing is loaded):
    /// `{summary, fits, problem, total_bytes, plan}` as `Engine.planStreaming`.
    #[wasm_bindgen(js_name = planStreaming)]
    pub async fn plan_streaming(
        read: js_sys::Function,
        sizes: Vec<f64>,
        names: Vec<String>,
        config_json: Option<String>,
        quant: Option<String>,
    ) -> Result<JsValue, JsValue> {
        let src = JsSource::new(read, &sizes, names)?;
        let quant = parse_quant(quant.as_deref())?;
        let index = DgIndex::read(&src, config_json.as_deref().map(|c| ("config.json", c))).await.map_err(js_err)?;
        let gpu = Gpu::new().await.map_err(js_err)?;
        plan_js(&plan(&index, quant, &gpu).map_err(js_err)?, gpu.plan_limits(), None)
    }

    /// The model's config (layers, canvas length, vocabulary…).
    pub fn config(&self) -> Result<JsValue, JsValue> {
        let c = &self.model.config;
        to_js(&serde_json::json!({
            "family": "diffusion-gemma",
            "n_layers": c.layers.len(),
            "d_model": c.hidden,
            "vocab_size": c.vocab,
            "canvas_length": c.canvas_length,
            "experts": c.experts,
            "experts_used": c.top_k,
            "max_sequence_length": c.max_positions,
            "steps": self.settings.steps,
            // Tokens that end the answer (EOS, padding): the page draws them as a dim placeholder.
            "ends": self.settings.eos.iter().copied().chain(self.settings.pad).collect::<Vec<u32>>(),
        }))
    }

    pub fn adapter(&self) -> Result<JsValue, JsValue> {
        to_js(&self.model.gpu.report)
    }

    #[wasm_bindgen(js_name = hasTokenizer)]
    pub fn has_tokenizer(&self) -> bool {
        self.tokenizer.is_some()
    }

    pub fn piece(&self, token: u32) -> String {
        TextTokenizer::piece(self.tokenizer.as_ref(), token)
    }

    /// Asks a running generation to stop after its current step.
    pub fn cancel(&self) {
        self.cancel.set(true);
    }

    /// Runs a request (`DgRequest`); `on_step(event)` after every denoising step.
    pub async fn run(&self, request: JsValue, on_step: Option<js_sys::Function>) -> Result<JsValue, JsValue> {
        let r: DgRequest = serde_wasm_bindgen::from_value(request).map_err(|e| input_err(None, format!("bad request: {e}")))?;
        let prompt = match (&r.prompt, r.prompt_tokens) {
            (_, Some(ids)) => ids,
            (Some(text), None) => {
                let t = self.tokenizer.as_ref().ok_or_else(|| input_err(Some("prompt"), "this model has no tokenizer: give prompt_tokens"))?;
                crate::dgemma::prompt_tokens(t, text, r.chat).map_err(js_err)?
            }
            (None, None) => vec![],
        };
        let mut s = self.settings.clone();
        s.max_new_tokens = r.gen_length;
        s.steps = r.steps.unwrap_or(s.steps);
        s.entropy_bound = r.entropy_bound.unwrap_or(s.entropy_bound);
        s.validate().map_err(js_err)?;
        let c = &self.model.config;
        let positions = positions_needed(prompt.len().max(1), &s, c.canvas_length, c.max_positions).map_err(js_err)?;
        let mut session = DgSession::new(&self.model, positions, self.model.gpu.default_kv()).map_err(js_err)?;
        let mut draws = SeededDraws(Rng::new(r.seed ^ 0x6467656d6d61));
        self.cancel.set(false);
        let cancel = self.cancel.clone();
        let (t0, mut last) = (now(), now());
        let mut on_event = |e: &DgStep| {
            if let Some(f) = &on_step {
                let t = now();
                let ev = DgStepJs {
                    canvas: e.canvas,
                    step: e.step,
                    temperature: e.temperature,
                    tokens: &e.argmax,
                    pieces: e.argmax.iter().map(|&t| self.piece(t)).collect(),
                    accepted: &e.accepted,
                    entropy: &e.entropy,
                    stopped: e.stopped,
                    ms: t - last,
                };
                last = t;
                if let Ok(v) = to_js(&ev) {
                    let _ = f.call1(&JsValue::NULL, &v);
                }
            }
            !cancel.get()
        };
        let (g, cancelled) = match generate(&mut session, &mut draws, &prompt, &s, &mut on_event).await {
            Ok(g) => (g, false),
            Err(_) if self.cancel.get() => return to_js(&serde_json::json!({"cancelled": true, "gen_start": prompt.len()})),
            Err(e) => return Err(js_err(e)),
        };
        let answer = &g.tokens[prompt.len()..];
        let text = match &self.tokenizer {
            Some(t) => t.decode(answer, false).map_err(js_err)?,
            None => answer.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(","),
        };
        to_js(&DgResultJs { gen_start: prompt.len(), text, canvases: g.canvases, steps: g.steps, stop: g.stop, ms: now() - t0, cancelled, tokens: g.tokens })
    }
}
