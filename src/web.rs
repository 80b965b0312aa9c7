//! The thin wasm-bindgen layer that the web page's worker (`www/worker.js`) calls: load a model
//! from bytes, plan one without loading it, generate or infill with a per-step callback (and the
//! answer's final text as it settles), cancel, report the adapter; the sampler's defaults and
//! their validation for the page's settings and the engine API (`www/unmask.js`).
//! Options, events and results cross as plain JS objects (serde-wasm-bindgen); every failure is
//! thrown as a structured error `{kind, field, message}` (`js_err`).

use crate::engine::{GpuModel, MemoryPlan, Session, SessionConfig};
use crate::gpu::{Gpu, Limits};
use crate::model::index::read_index;
use crate::model::source::ByteSource;
use crate::model::{ModelIndex, Quant, TextTokenizer};
use crate::request::{prepare_remask, Prepared, Request};
use crate::sampler::final_text::{FinalText, Finish};
use crate::sampler::{self, SamplerOptions, StepEvent};
use serde::Serialize;
use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use wasm_bindgen::prelude::*;

mod convert;
mod options;
pub(crate) use convert::{bad_value, error_js, input_err, js_err, option_names, to_js};
use options::parse_quant;
pub use options::{defaults, validate_options};

/// Model files read through a JavaScript callback (slices of `File`/`Blob` objects).
pub(crate) struct JsSource {
    read: js_sys::Function,
    sizes: Vec<u64>,
    names: Vec<String>,
}

impl JsSource {
    /// One size and one name per file, at least one file.
    pub(crate) fn new(read: js_sys::Function, sizes: &[f64], names: Vec<String>) -> Result<Self, JsValue> {
        if sizes.is_empty() || sizes.len() != names.len() {
            return Err(input_err(None, "give one size and one name per model file"));
        }
        Ok(JsSource { read, sizes: sizes.iter().map(|&s| s.max(0.0) as u64).collect(), names })
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

/// The model's index (headers only), its embedded tokenizer if any, and its memory plan for a
/// session of `canvas` positions with the default settings.
async fn index_and_plan(
    src: &JsSource,
    config_json: Option<&str>,
    quant: Option<Quant>,
    canvas: usize,
    gpu: &Gpu,
) -> crate::Result<(ModelIndex, crate::Result<Option<TextTokenizer>>, MemoryPlan)> {
    let (index, embedded) = read_index(src, config_json.map(|c| ("config.json", c))).await?;
    let session = SessionConfig { kv: gpu.default_kv(), ..SessionConfig::new(canvas.clamp(1, index.config.max_sequence_length), gpu.default_kernels()) };
    let plan = MemoryPlan::new(&index, quant, &session, gpu.plan_limits())?;
    Ok((index, embedded, plan))
}

/// A plan as `planStreaming` returns it: `{summary, fits, problem, plan}` (`problem`: why it
/// cannot fit, with the numbers; null when it fits).
pub(crate) fn plan_js(plan: &MemoryPlan, limits: Limits, budget: Option<u64>) -> Result<JsValue, JsValue> {
    let problem = plan.check(limits, budget).err().map(|e| e.to_string());
    to_js(&serde_json::json!({"summary": plan.summary(), "fits": problem.is_none(), "problem": problem, "total_bytes": plan.total_bytes(), "plan": plan}))
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
    /// Tokens that end an answer (EOS padding, EOT): the page draws them as a dim placeholder.
    ends: Vec<u32>,
}

#[derive(Serialize)]
struct ResultJs {
    tokens: Vec<u32>,
    gen_start: usize,
    /// Every answer position decoded (the canvas as the page shows it).
    text: String,
    /// The answer as a chat or completion gives it: up to its first end token or stop string,
    /// exactly the pieces `on_text` received (`sampler::final_text`).
    content: String,
    /// "stop" (an end token or stop string ended it) or "length".
    finish_reason: &'static str,
    prompt_tokens: usize,
    /// Answer tokens in `content`.
    completion_tokens: usize,
    steps: usize,
    model_passes: usize,
    ms: f64,
    tokens_per_second: f64,
    early_stopped: bool,
    cancelled: bool,
}

/// How a request's answer is followed (the engine API's calls; the page's canvas view asks for
/// none): `on_text(piece)` receives text as soon as it is final, `stop` strings end the answer as
/// end tokens do, and the generation stops once the answer has ended.
struct Follow {
    on_text: Option<js_sys::Function>,
    stop: Vec<String>,
}

impl Follow {
    fn from_js(v: &JsValue) -> Result<Option<Follow>, JsValue> {
        if v.is_undefined() || v.is_null() {
            return Ok(None);
        }
        let get = |k: &str| js_sys::Reflect::get(v, &k.into()).ok().filter(|x| !x.is_undefined() && !x.is_null());
        let on_text = get("on_text").and_then(|f| f.dyn_into::<js_sys::Function>().ok());
        let stop = match get("stop") {
            Some(s) => serde_wasm_bindgen::from_value(s).map_err(|e| input_err(Some("stop"), format!("stop must be a list of strings: {e}")))?,
            None => vec![],
        };
        Ok(Some(Follow { on_text, stop }))
    }

    fn send(&self, piece: &str) {
        if let (Some(f), false) = (&self.on_text, piece.is_empty()) {
            let _ = f.call1(&JsValue::NULL, &JsValue::from_str(piece));
        }
    }
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
        let src = JsSource::new(read, &sizes, names)?;
        let quant = parse_quant(quant.as_deref())?;
        // `GpuModel` shares its device through an `Arc` (threads natively); the page has one thread.
        #[allow(clippy::arc_with_non_send_sync)]
        let gpu = Arc::new(Gpu::new().await.map_err(js_err)?);
        let (index, embedded, plan) = index_and_plan(&src, config_json.as_deref(), quant, canvas, &gpu).await.map_err(js_err)?;
        // A tokenizer.json given with the model wins over the one embedded in a GGUF (as natively).
        let tokenizer = match tokenizer_json {
            Some(t) => Some(TextTokenizer::from_bytes("tokenizer.json", &t).map_err(js_err)?),
            None => embedded.map_err(js_err)?,
        };
        let budget = budget.map(|b| b as u64);
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
        .map_err(|e| error_js(e.kind(), None, option_names(&format!("{e} (memory plan: {summary})"))))?;
        Ok(Engine { model, tokenizer, budget, cancel: Rc::new(Cell::new(false)) })
    }

    /// The memory plan `loadStreaming` would check, from the files' headers alone (no weight
    /// is read or allocated): `{summary, fits, problem, total_bytes, plan}`. Arguments as
    /// `loadStreaming`'s.
    #[wasm_bindgen(js_name = planStreaming)]
    pub async fn plan_streaming(
        read: js_sys::Function,
        sizes: Vec<f64>,
        names: Vec<String>,
        config_json: Option<String>,
        quant: Option<String>,
        canvas: usize,
        budget: Option<f64>,
    ) -> Result<JsValue, JsValue> {
        let src = JsSource::new(read, &sizes, names)?;
        let quant = parse_quant(quant.as_deref())?;
        let gpu = Gpu::new().await.map_err(js_err)?;
        let (_, _, plan) = index_and_plan(&src, config_json.as_deref(), quant, canvas, &gpu).await.map_err(js_err)?;
        plan_js(&plan, gpu.plan_limits(), budget.map(|b| b as u64))
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

    /// Runs a request (see `Request`: prompt, chat messages or infill text plus sampler
    /// options). `on_start(canvas)` receives the initial canvas; `on_step(event)` every step;
    /// `follow` (optional, `{on_text, stop}`: see `Follow`) streams the answer's final text.
    pub async fn run(
        &self,
        request: JsValue,
        on_start: Option<js_sys::Function>,
        on_step: Option<js_sys::Function>,
        follow: JsValue,
    ) -> Result<JsValue, JsValue> {
        let req: Request = serde_wasm_bindgen::from_value(request.clone()).map_err(|e| bad_value::<Request>("request", &request, e))?;
        let follow = Follow::from_js(&follow)?;
        let p = req.prepare(&self.model.config, self.tokenizer.as_ref()).map_err(js_err)?;
        self.execute(p, on_start, on_step, follow).await
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
            serde_wasm_bindgen::from_value(options.clone()).map_err(|e| bad_value::<SamplerOptions>("options", &options, e))?
        };
        let p = prepare_remask(&self.model.config, self.tokenizer.as_ref(), tokens, gen_start, o).map_err(js_err)?;
        self.execute(p, on_start, on_step, None).await
    }
}

impl Engine {
    async fn execute(
        &self,
        p: Prepared,
        on_start: Option<js_sys::Function>,
        on_step: Option<js_sys::Function>,
        follow: Option<Follow>,
    ) -> Result<JsValue, JsValue> {
        let tok = self.tokenizer.as_ref();
        // This request's own session, planned for its canvas and settings (a canvas or setting
        // that cannot fit is refused here, with the numbers, before anything is allocated).
        let config = SessionConfig {
            canvas: p.canvas.tokens.len(),
            cache: p.options.cache,
            cfg: p.options.cfg_scale > 0.0,
            logits: false,
            kernels: self.model.gpu.default_kernels(),
            kv: self.model.gpu.default_kv(),
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
                ends: p.ends.iter().flatten().copied().collect(),
            };
            f.call1(&JsValue::NULL, &to_js(&start)?)?;
        }
        let stop = follow.as_ref().map(|f| f.stop.clone()).unwrap_or_default();
        let mut answer = FinalText::new(&p.canvas, p.ends.iter().flatten().copied().collect(), stop);
        let mask = p.canvas.mask;
        let mut failed = None;
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
            if let (Some(f), Some(t)) = (&follow, tok) {
                match answer.step(e, t) {
                    Ok(piece) => f.send(&piece),
                    Err(err) => {
                        failed = Some(err);
                        return false;
                    }
                }
                // The answer has ended: nothing later can change it.
                if answer.reason().is_some() {
                    return false;
                }
            }
            !cancel.get()
        };
        let g = sampler::run(&mut session, p.canvas, &p.options, &mut on_event).await.map_err(js_err)?;
        if let Some(e) = failed {
            return Err(js_err(e));
        }
        let ends = |t: &u32| p.ends.contains(&Some(*t));
        let answer_tokens = &g.tokens[g.gen_start..];
        let (content, finish) = match tok {
            Some(t) => {
                let last = answer.finish(&g.tokens, t).map_err(js_err)?;
                if let Some(f) = &follow {
                    f.send(&last);
                }
                (answer.text().to_string(), answer.reason().unwrap_or(Finish::Length))
            }
            None => (g.text(None).map_err(js_err)?, if answer_tokens.iter().any(ends) { Finish::Stop } else { Finish::Length }),
        };
        let completion_tokens = answer_tokens.iter().take_while(|t| !ends(t) && **t != mask).count();
        to_js(&ResultJs {
            text: g.text(tok).map_err(js_err)?,
            content,
            finish_reason: finish.name(),
            prompt_tokens: g.gen_start,
            completion_tokens,
            gen_start: g.gen_start,
            steps: g.steps,
            model_passes: g.model_passes,
            ms: g.ms,
            tokens_per_second: g.tokens_per_second(&p.ends),
            early_stopped: g.early_stopped,
            // Asked for by `cancel`, not the end of a followed answer.
            cancelled: g.cancelled && self.cancel.get(),
            tokens: g.tokens,
        })
    }
}
