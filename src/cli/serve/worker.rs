//! The server's GPU thread: loads the model (planning GPU memory for the largest canvas a
//! request may use), then runs queued jobs one at a time, each in a session of its own, sending
//! text as it becomes final and, when asked, every denoising step. A job whose client went away
//! (its channel closed, or its cancel flag set) stops after the current step.

use super::{InfoKind, ModelInfo};
use crate::cli::model::OnGpu;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;
use unmask::model::TextTokenizer;
use unmask::sampler::final_text::{FinalText, Finish};
use unmask::sampler::{self, Canvas, SamplerOptions, StepEvent};
use unmask::{Error, Result};

/// What a request asks the GPU to do, checked and tokenized.
pub enum Work {
    /// A masked-diffusion canvas (LLaDA and kin). An infill's text is the whole canvas at the
    /// end (nothing streams, nothing stops it early).
    Masked { canvas: Canvas, options: SamplerOptions, ends: [Option<u32>; 2], infill: bool },
    /// DiffusionGemma: whole canvases after the prompt.
    Dg(super::dg::DgWork),
}

/// One request waiting for the GPU.
pub struct Job {
    pub work: Work,
    pub feed: Feed,
}

/// Where a job's results go, and what its client asked to see.
pub struct Feed {
    pub stops: Vec<String>,
    /// The most answer tokens to show.
    pub limit: usize,
    /// Send each denoising step as an `Event::Step`.
    pub steps: bool,
    pub events: UnboundedSender<Event>,
    pub cancel: Arc<AtomicBool>,
}

impl Feed {
    /// The client is still there.
    pub fn live(&self) -> bool {
        !self.cancel.load(Ordering::SeqCst) && !self.events.is_closed()
    }

    /// Sends a step record (when asked for) and text that became final; false stops the
    /// generation: the client went away, the answer ended, or decoding failed (`failed`).
    pub fn step(&self, record: impl FnOnce() -> serde_json::Value, delta: Result<String>, failed: &mut Option<Error>) -> bool {
        if !self.live() || (self.steps && self.events.send(Event::Step(record())).is_err()) {
            return false;
        }
        match delta {
            Ok(d) => d.is_empty() || self.events.send(Event::Text(d)).is_ok(),
            Err(e) => {
                *failed = Some(e);
                false
            }
        }
    }

    /// Sends the last text and logs a cancellation.
    pub fn finish(&self, last: String, steps: usize) {
        if !self.live() {
            eprintln!("generation cancelled after {steps} steps: the client went away");
        }
        if !last.is_empty() {
            let _ = self.events.send(Event::Text(last));
        }
    }
}

pub enum Event {
    /// Text of the answer that became final.
    Text(String),
    /// A denoising step, as the step stream sends it.
    Step(serde_json::Value),
    Done(Result<Outcome>),
}

pub struct Outcome {
    /// The answer's text (an infill: the whole text), as streamed.
    pub text: String,
    pub finish: Finish,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    /// The final canvas.
    pub tokens: Vec<u32>,
    pub steps: usize,
    pub ms: f64,
}

/// The queue's sending end and its counters (for /health and 429s).
#[derive(Clone)]
pub struct Jobs {
    pub tx: SyncSender<Job>,
    pub queued: Arc<AtomicUsize>,
    pub running: Arc<AtomicUsize>,
}

/// Starts the GPU thread and waits for the model to load.
pub fn start(path: PathBuf, quant: Option<String>, ctx: Option<usize>, queue: usize, id: String) -> Result<(Jobs, ModelInfo)> {
    let (tx, rx) = sync_channel::<Job>(queue);
    let (ready_tx, ready_rx) = sync_channel::<Result<ModelInfo>>(1);
    let jobs = Jobs { tx, queued: Arc::new(AtomicUsize::new(0)), running: Arc::new(AtomicUsize::new(0)) };
    let counters = jobs.clone();
    std::thread::Builder::new()
        .name("unmask-gpu".into())
        .spawn(move || {
            let limit = ctx.unwrap_or(4096);
            let dg = super::super::dgemma::is_dgemma(&path);
            let open = move || if dg { super::dg::load(&path, quant.as_deref(), limit, id.clone()) } else { load(&path, quant.as_deref(), limit, id.clone()) };
            match open() {
                Ok((engine, info)) => {
                    let _ = ready_tx.send(Ok(info));
                    serve(engine, rx, &counters, &open);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            }
        })
        .map_err(|e| Error::Gpu(format!("cannot start the GPU thread: {e}")))?;
    let info = ready_rx.recv().map_err(|_| Error::Gpu("the GPU thread stopped while loading the model".into()))??;
    eprintln!("model {} ({}) on {}; requests up to {} positions", info.id, info.family, info.adapter, info.ctx);
    Ok((jobs, info))
}

/// The model the GPU thread owns.
pub enum Engine {
    Masked(Box<OnGpu>),
    Dg(Box<super::dg::DgEngine>),
}

/// A masked-diffusion model, with the GPU memory planned for the costliest session: the
/// longest canvas, with CFG's second row.
fn load(path: &Path, quant: Option<&str>, limit: usize, id: String) -> Result<(Engine, ModelInfo)> {
    let plan_opts = SamplerOptions { cfg_scale: 1.0, ..Default::default() };
    let m = super::super::model::load(Some(path.to_path_buf()), quant, false, &plan_opts, |c| limit.min(c.max_sequence_length))?;
    let info = ModelInfo {
        id,
        family: m.config.family().name,
        vocab: m.config.vocab_size,
        tokenizer: m.tokenizer.clone(),
        ctx: limit.min(m.config.max_sequence_length),
        adapter: m.model.gpu.report.name.clone(),
        created: now(),
        kind: InfoKind::Masked(m.config.clone()),
    };
    Ok((Engine::Masked(Box::new(m)), info))
}

pub fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Engine {
    fn gpu(&self) -> &unmask::gpu::Gpu {
        match self {
            Engine::Masked(m) => &m.model.gpu,
            Engine::Dg(m) => m.gpu(),
        }
    }
}

/// `UNMASK_SERVE_FAULT=lose-device:N`: the GPU device is destroyed as the N-th generation
/// starts (the fault tests' way to lose a device on demand).
fn injected_fault() -> Option<usize> {
    std::env::var("UNMASK_SERVE_FAULT").ok()?.strip_prefix("lose-device:")?.parse().ok()
}

/// Runs the jobs in order. A GPU failure answers its request with the error, then the model is
/// loaded again on a fresh device (a lost device, or one left in an unknown state), so the
/// server keeps serving.
fn serve(mut engine: Engine, rx: Receiver<Job>, counters: &Jobs, open: &dyn Fn() -> Result<(Engine, ModelInfo)>) {
    let fault = injected_fault();
    let mut started = 0;
    for job in rx {
        counters.queued.fetch_sub(1, Ordering::SeqCst);
        if !job.feed.live() {
            continue;
        }
        counters.running.fetch_add(1, Ordering::SeqCst);
        started += 1;
        if fault == Some(started) {
            eprintln!("injected fault: destroying the GPU device");
            engine.gpu().device.destroy();
        }
        let events = job.feed.events.clone();
        let result = match (&engine, job.work) {
            (Engine::Masked(m), Work::Masked { canvas, options, ends, infill }) => run(m, canvas, options, ends, infill, &job.feed),
            (Engine::Dg(m), Work::Dg(w)) => super::dg::run(m, w, &job.feed),
            _ => Err(Error::Input("this request is for another kind of model".into())),
        };
        let lost = matches!(result, Err(Error::Gpu(_)));
        let result = result.map_err(|e| match e {
            Error::Gpu(m) => Error::Gpu(format!("{m}; the server loads the model again on a fresh device: retry the request")),
            e => e,
        });
        if let Err(e) = &result {
            eprintln!("request failed: {e}");
        }
        let _ = events.send(Event::Done(result));
        if lost {
            eprintln!("reloading the model on a fresh GPU device after that failure");
            drop(engine);
            engine = match open() {
                Ok((e, _)) => e,
                Err(e) => {
                    eprintln!("the model could not be loaded again ({e}): the server cannot generate any more; restart it");
                    counters.running.fetch_sub(1, Ordering::SeqCst);
                    return;
                }
            };
            eprintln!("model reloaded");
        }
        counters.running.fetch_sub(1, Ordering::SeqCst);
    }
}

fn run(m: &OnGpu, canvas: Canvas, options: SamplerOptions, ends: [Option<u32>; 2], infill: bool, feed: &Feed) -> Result<Outcome> {
    let tok = tokenizer(m.tokenizer.as_ref())?;
    let mut session = m.session(canvas.tokens.len(), &options)?;
    let mut text = FinalText::new(&canvas, ends.iter().flatten().copied().collect(), feed.stops.clone()).with_limit(feed.limit);
    let mut failed = None;
    let gen = pollster::block_on(sampler::run(&mut session, canvas.clone(), &options, &mut |e| {
        let delta = if infill { Ok(String::new()) } else { text.step(e, tok) };
        // Once the answer ended (an end token or a stop string) the rest cannot change it.
        feed.step(|| step_json(e, tok, canvas.gen_start), delta, &mut failed) && text.reason().is_none()
    }))?;
    if let Some(e) = failed {
        return Err(e);
    }
    if infill {
        feed.finish(String::new(), gen.steps);
        let masked = canvas.tokens.iter().filter(|&&t| t == canvas.mask).count();
        let text = tok.decode(&gen.tokens, false)?;
        let prompt_tokens = canvas.tokens.len() - masked;
        return Ok(Outcome { text, finish: Finish::Stop, prompt_tokens, completion_tokens: masked, tokens: gen.tokens, steps: gen.steps, ms: gen.ms });
    }
    feed.finish(text.finish(&gen.tokens, tok)?, gen.steps);
    let answer = &gen.tokens[gen.gen_start..];
    let completion_tokens = answer.iter().take(feed.limit).take_while(|t| !ends.contains(&Some(**t)) && **t != canvas.mask).count();
    let finish = text.reason().unwrap_or(Finish::Length);
    Ok(Outcome { text: text.text().to_string(), finish, prompt_tokens: gen.gen_start, completion_tokens, tokens: gen.tokens, steps: gen.steps, ms: gen.ms })
}

pub fn tokenizer(t: Option<&TextTokenizer>) -> Result<&TextTokenizer> {
    t.ok_or_else(|| Error::Input("this model has no tokenizer: the server needs one (load tokenizer.json with the model)".into()))
}

/// A step as the step stream sends it: positions relative to the answer's start.
fn step_json(e: &StepEvent, tok: &TextTokenizer, start: usize) -> serde_json::Value {
    let committed: Vec<_> = e
        .committed
        .iter()
        .map(|c| serde_json::json!({"position": c.pos as i64 - start as i64, "token": c.token, "text": TextTokenizer::piece(Some(tok), c.token), "confidence": c.confidence}))
        .collect();
    serde_json::json!({"step": e.step, "block": e.block, "committed": committed, "masked_left": e.masked_left, "ms": e.ms})
}

/// Marks a job cancelled when dropped: the request's future or stream went away with its client.
pub struct CancelOnDrop(pub Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}
