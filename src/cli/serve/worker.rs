//! The server's GPU thread: loads the model (planning GPU memory for the largest canvas a
//! request may use, with CFG), then runs queued jobs one at a time, each in a session of its
//! own, sending text as it becomes final and, when asked, every denoising step. A job whose
//! client went away (its channel closed, or its cancel flag set) stops after the current step.

use super::ModelInfo;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;
use unmask::model::TextTokenizer;
use unmask::sampler::final_text::{FinalText, Finish};
use unmask::sampler::{self, Canvas, SamplerOptions, StepEvent};
use unmask::{Error, Result};

/// One request, checked and tokenized, waiting for the GPU.
pub struct Job {
    pub canvas: Canvas,
    pub options: SamplerOptions,
    pub ends: [Option<u32>; 2],
    pub stops: Vec<String>,
    /// The most answer tokens to show.
    pub limit: usize,
    /// Send each denoising step as an `Event::Step`.
    pub steps: bool,
    /// An infill: the text is the whole canvas at the end (nothing streams, nothing stops it).
    pub infill: bool,
    pub events: UnboundedSender<Event>,
    pub cancel: Arc<AtomicBool>,
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
            // The plan covers the costliest session: the longest canvas, with CFG's second row.
            let plan_opts = SamplerOptions { cfg_scale: 1.0, ..Default::default() };
            let limit = ctx.unwrap_or(4096);
            let m = match super::super::model::load(Some(path), quant.as_deref(), false, &plan_opts, |c| limit.min(c.max_sequence_length)) {
                Ok(m) => m,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let info = ModelInfo {
                id,
                config: m.config.clone(),
                tokenizer: m.tokenizer.clone(),
                ctx: limit.min(m.config.max_sequence_length),
                adapter: m.model.gpu.report.name.clone(),
                created: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
            };
            let _ = ready_tx.send(Ok(info));
            serve(&m, rx, &counters);
        })
        .map_err(|e| Error::Gpu(format!("cannot start the GPU thread: {e}")))?;
    let info = ready_rx.recv().map_err(|_| Error::Gpu("the GPU thread stopped while loading the model".into()))??;
    eprintln!("model {} ({}) on {}; requests up to {} positions", info.id, info.config.family().name, info.adapter, info.ctx);
    Ok((jobs, info))
}

fn serve(m: &super::super::model::OnGpu, rx: Receiver<Job>, counters: &Jobs) {
    for job in rx {
        counters.queued.fetch_sub(1, Ordering::SeqCst);
        if job.cancel.load(Ordering::SeqCst) || job.events.is_closed() {
            continue;
        }
        counters.running.fetch_add(1, Ordering::SeqCst);
        let events = job.events.clone();
        let result = run(m, job);
        let _ = events.send(Event::Done(result));
        counters.running.fetch_sub(1, Ordering::SeqCst);
    }
}

fn run(m: &super::super::model::OnGpu, job: Job) -> Result<Outcome> {
    let Job { canvas, options, ends, stops, limit, steps, infill, events, cancel } = job;
    let tok =
        m.tokenizer.as_ref().ok_or_else(|| Error::Input("this model has no tokenizer: the server needs one (load tokenizer.json with the model)".into()))?;
    let mut session = m.session(canvas.tokens.len(), &options)?;
    let prompt_tokens = if canvas.gen_start == 0 { 0 } else { canvas.gen_start };
    let mut text = FinalText::new(&canvas, ends, stops).with_limit(limit);
    let mut failed = None;
    let gen = pollster::block_on(sampler::run(&mut session, canvas.clone(), &options, &mut |e| {
        if cancel.load(Ordering::SeqCst) {
            return false;
        }
        if steps && events.send(Event::Step(step_json(e, tok, canvas.gen_start))).is_err() {
            return false;
        }
        if infill {
            return true;
        }
        match text.step(e, tok) {
            Ok(delta) if !delta.is_empty() => {
                if events.send(Event::Text(delta)).is_err() {
                    return false;
                }
            }
            Ok(_) => {}
            Err(err) => {
                failed = Some(err);
                return false;
            }
        }
        // The answer ended (an end token or a stop string): the rest cannot change it.
        text.reason().is_none()
    }))?;
    if let Some(e) = failed {
        return Err(e);
    }
    if cancel.load(Ordering::SeqCst) || events.is_closed() {
        eprintln!("generation cancelled after {} steps: the client went away", gen.steps);
    }
    if infill {
        let masked = canvas.tokens.iter().filter(|&&t| t == canvas.mask).count();
        let text = tok.decode(&gen.tokens, false)?;
        return Ok(Outcome {
            text,
            finish: Finish::Stop,
            prompt_tokens: canvas.tokens.len() - masked,
            completion_tokens: masked,
            tokens: gen.tokens,
            steps: gen.steps,
            ms: gen.ms,
        });
    }
    let last = text.finish(&gen.tokens, tok)?;
    if !last.is_empty() {
        let _ = events.send(Event::Text(last));
    }
    let answer = &gen.tokens[gen.gen_start..];
    let completion_tokens = answer.iter().take(limit).take_while(|t| !ends.contains(&Some(**t)) && **t != canvas.mask).count();
    Ok(Outcome {
        text: text.text().to_string(),
        finish: text.reason().unwrap_or(Finish::Length),
        prompt_tokens,
        completion_tokens,
        tokens: gen.tokens,
        steps: gen.steps,
        ms: gen.ms,
    })
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
