//! The thin wasm-bindgen layer that the web page's worker (`www/worker.js`) calls: load a model
//! from bytes, generate or infill with a per-step callback, cancel, and report the adapter.
//! Options, events and results cross as plain JS objects (serde-wasm-bindgen).

use crate::engine::{GpuModel, MemoryPlan, Session, SessionConfig};
use crate::gpu::Gpu;
use crate::model::index::read_index;
use crate::model::source::ByteSource;
use crate::model::{DType, Quant, TextTokenizer};
use crate::request::{prepare_remask, Prepared, Request};
use crate::sampler::{self, SamplerOptions, StepEvent};
use serde::Serialize;
use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use wasm_bindgen::prelude::*;

pub(crate) fn js_err(e: crate::Error) -> JsValue {
    JsValue::from_str(&e.to_string())
}

pub(crate) fn to_js<T: Serialize>(v: &T) -> Result<JsValue, JsValue> {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).map_err(|e| JsValue::from_str(&e.to_string()))
}

/// Model files read through a JavaScript callback (slices of `File`/`Blob` objects).
pub(crate) struct JsSource {
    read: js_sys::Function,
    sizes: Vec<u64>,
    names: Vec<String>,
}

impl JsSource {
    pub(crate) fn new(read: js_sys::Function, sizes: &[f64], names: Vec<String>) -> Self {
        JsSource { read, sizes: sizes.iter().map(|&s| s.max(0.0) as u64).collect(), names }
    }
}

impl ByteSource for JsSource {
    fn files(&self) -> usize {
        self.sizes.len()
    }
    fn name(&self, file: usize) -> String {
        self.names[file].clone()
    }
    fn len(&self, file: usize) -> u64 {
        self.sizes[file]
    }
    async fn read(&self, file: usize, offset: u64, len: usize) -> crate::Result<Vec<u8>> {
        let name = &self.names[file];
        let fail = |what: String| crate::Error::model(name.as_str(), what);
        if offset + len as u64 > self.sizes[file] {
            return Err(fail(format!("truncated: bytes {offset}..{} asked of a file of {}", offset + len as u64, self.sizes[file])));
        }
        let promise = self
            .read
            .call3(&JsValue::NULL, &(file as f64).into(), &(offset as f64).into(), &(len as f64).into())
            .map_err(|e| fail(format!("cannot read: {e:?}")))?;
        let value = wasm_bindgen_futures::JsFuture::from(js_sys::Promise::from(promise))
            .await
            .map_err(|e| fail(format!("cannot read: {}", e.as_string().unwrap_or_else(|| format!("{e:?}")))))?;
        let bytes = js_sys::Uint8Array::new(&value).to_vec();
        if bytes.len() != len {
            return Err(fail(format!("read {} bytes at {offset} where {len} were asked (the file changed or is truncated)", bytes.len())));
        }
        Ok(bytes)
    }
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

/// `block_length` that makes the whole answer one block (`SamplerOptions::ONE_BLOCK`).
#[wasm_bindgen(js_name = oneBlock)]
pub fn one_block() -> usize {
    SamplerOptions::ONE_BLOCK
}

/// A model on the GPU plus its tokenizer; each request runs in a session of its own, planned
/// (and refused with the numbers when it cannot fit) before anything is allocated.
#[wasm_bindgen]
pub struct Engine {
    model: GpuModel,
    tokenizer: Option<TextTokenizer>,
    /// GPU memory the page allows (weights + one session), when it set one.
    budget: Option<u64>,
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
    /// Loads a model streamed from JavaScript, never holding the whole file in wasm memory:
    /// `read(file, offset, length)` returns a Promise of a Uint8Array with those bytes of file
    /// `file` (0: the .gguf, or the safetensors shards in order), `sizes[i]`/`names[i]` give
    /// each file's size and name. `config_json` is given for safetensors; `tokenizer_json` is
    /// optional (a GGUF's embedded tokenizer is used otherwise). `quant` ("q4_0", "q8_0", …)
    /// converts the weights while they stream (a Q4_0 load keeps the embedding and LM head in
    /// Q8_0 like `unmask convert`; "q4_0_pure" converts them too). The memory plan for a canvas
    /// of `canvas` positions with the default sampler settings is checked against the adapter's
    /// limits before anything is allocated (and `budget` bytes, when given); every request is
    /// planned again for its own canvas and settings when it runs. `on_plan(summary)` is called once planned;
    /// `on_progress(bytes read, bytes total)` while the weights stream to the GPU.
    #[wasm_bindgen(js_name = loadStreaming)]
    #[allow(clippy::too_many_arguments)]
    pub async fn load_streaming(
        read: js_sys::Function,
        sizes: Vec<f64>,
        names: Vec<String>,
        config_json: Option<String>,
        tokenizer_json: Option<Vec<u8>>,
        quant: Option<String>,
        canvas: usize,
        budget: Option<f64>,
        on_plan: Option<js_sys::Function>,
        on_progress: Option<js_sys::Function>,
    ) -> Result<Engine, JsValue> {
        if sizes.is_empty() || sizes.len() != names.len() {
            return Err(JsValue::from_str("loadStreaming: give one size and one name per file"));
        }
        let src = JsSource::new(read, &sizes, names);
        let quant = match quant.as_deref() {
            None | Some("") => None,
            Some(q) => {
                let (name, pure) = q.strip_suffix("_pure").map_or((q, false), |n| (n, true));
                let dtype =
                    DType::parse(name).ok_or_else(|| JsValue::from_str(&format!("unknown quantization {q:?}: use q4_0, q4_0_pure, q8_0, f16, bf16 or f32")))?;
                Some(Quant { dtype, pure })
            }
        };
        let (index, embedded) = read_index(&src, config_json.as_deref().map(|c| ("config.json", c))).await.map_err(js_err)?;
        // A tokenizer.json given with the model wins over the one embedded in a GGUF (as natively).
        let tokenizer = match tokenizer_json {
            Some(t) => Some(TextTokenizer::from_bytes("tokenizer.json", &t).map_err(js_err)?),
            None => embedded.map_err(js_err)?,
        };
        // `GpuModel` shares its device through an `Arc` (threads natively); the page has one thread.
        #[allow(clippy::arc_with_non_send_sync)]
        let gpu = Arc::new(Gpu::new().await.map_err(js_err)?);
        let budget = budget.map(|b| b as u64);
        let session = SessionConfig::new(canvas.clamp(1, index.config.max_sequence_length), gpu.default_kernels());
        let plan = MemoryPlan::new(&index, quant, &session, gpu.plan_limits()).map_err(js_err)?;
        plan.check(gpu.plan_limits(), budget).map_err(js_err)?;
        let summary = plan.summary();
        if let Some(f) = &on_plan {
            let _ = f.call1(&JsValue::NULL, &JsValue::from_str(&summary));
        }
        let model = GpuModel::load(gpu, &index, &src, quant, &mut |done, total| {
            if let Some(f) = &on_progress {
                let _ = f.call2(&JsValue::NULL, &(done as f64).into(), &(total as f64).into());
            }
        })
        .await
        .map_err(|e| JsValue::from_str(&format!("{e} (memory plan: {summary})")))?;
        Ok(Engine { model, tokenizer, budget, cancel: Rc::new(Cell::new(false)) })
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
        TextTokenizer::piece(self.tokenizer.as_ref(), token)
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
    /// (all at or after `gen_start`), `options` the sampler options (`SamplerOptions`); see
    /// `request::prepare_remask`.
    pub async fn remask(
        &self,
        tokens: Vec<u32>,
        gen_start: usize,
        options: JsValue,
        on_start: Option<js_sys::Function>,
        on_step: Option<js_sys::Function>,
    ) -> Result<JsValue, JsValue> {
        let o: SamplerOptions = if options.is_undefined() || options.is_null() {
            SamplerOptions::default()
        } else {
            serde_wasm_bindgen::from_value(options).map_err(|e| JsValue::from_str(&format!("bad options: {e}")))?
        };
        let p = prepare_remask(&self.model.config, self.tokenizer.as_ref(), tokens, gen_start, o).map_err(js_err)?;
        self.execute(p, on_start, on_step).await
    }
}

impl Engine {
    async fn execute(&self, p: Prepared, on_start: Option<js_sys::Function>, on_step: Option<js_sys::Function>) -> Result<JsValue, JsValue> {
        let tok = self.tokenizer.as_ref();
        // This request's own session, planned for its canvas and settings (a canvas or setting
        // that cannot fit is refused here, with the numbers, before anything is allocated).
        let config = SessionConfig {
            canvas: p.canvas.tokens.len(),
            cache: p.options.cache,
            cfg: p.options.cfg_scale > 0.0,
            logits: false,
            kernels: self.model.gpu.default_kernels(),
        };
        let mut session = Session::new(&self.model, config, self.budget).map_err(js_err)?;
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
        let mut on_event = |e: &StepEvent| {
            if let Some(f) = &on_step {
                let ev = StepJs {
                    step: e.step,
                    block: e.block,
                    masked_left: e.masked_left,
                    ms: e.ms,
                    early_stop: e.early_stop,
                    committed: e
                        .committed
                        .iter()
                        .map(|c| CommitJs { pos: c.pos, token: c.token, confidence: c.confidence, text: self.piece(c.token) })
                        .collect(),
                };
                if let Ok(v) = to_js(&ev) {
                    let _ = f.call1(&JsValue::NULL, &v);
                }
            }
            !cancel.get()
        };
        let g = sampler::run(&mut session, p.canvas, &p.options, &mut on_event).await.map_err(js_err)?;
        let text = g.text(tok).map_err(js_err)?;
        let tokens_per_second = g.tokens_per_second(&p.ends);
        to_js(&ResultJs {
            text,
            gen_start: g.gen_start,
            steps: g.steps,
            model_passes: g.model_passes,
            ms: g.ms,
            tokens_per_second,
            early_stopped: g.early_stopped,
            cancelled: g.cancelled,
            tokens: g.tokens,
        })
    }
}
