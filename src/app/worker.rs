//! The app's engine thread: it owns the model on the GPU and runs loads and generations off the
//! UI thread, streaming what happens (plan, load progress, canvas, steps, result, errors) back
//! through a channel; the UI only sends commands and draws what arrives.

use super::run::{Commit, Finish, Start, Step};
use crate::engine::Session;
use crate::gpu::Gpu;
use crate::load::{load_on, session_config, OnGpu};
use crate::model::{ModelConfig, Quant, TextTokenizer};
use crate::request::{prepare_remask, Prepared, Request};
use crate::sampler::{self, SamplerOptions};
use crate::{Error, Result};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

/// Canvas the memory plan checks a model against when it loads (each run plans its own).
const PLAN_CANVAS: usize = 256;

pub enum Command {
    Load {
        path: PathBuf,
        quant: Option<Quant>,
    },
    Generate(Request),
    /// Regenerate the masked positions of `tokens` (a finished canvas) after `gen_start`.
    Remask {
        tokens: Vec<u32>,
        gen_start: usize,
        options: SamplerOptions,
    },
}

/// What a loaded model is, for the window.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    pub path: PathBuf,
    pub name: String,
    pub plan: String,
    pub config: ModelConfig,
    pub has_tokenizer: bool,
}

pub enum Event {
    /// The memory plan accepted the model; its weights now stream to the GPU.
    Planned {
        path: PathBuf,
        plan: String,
    },
    Progress {
        done: u64,
        total: u64,
    },
    Loaded(Box<ModelInfo>),
    /// The model at `path` was not loaded; the previous one (if any) is still there.
    LoadFailed {
        path: PathBuf,
        error: String,
    },
    Started(Start),
    Step(Step),
    Finished(Finish),
    /// A generation could not run (bad settings for this model, a GPU error).
    Failed(String),
}

/// The UI's handle on the engine thread.
pub struct Worker {
    commands: Sender<Command>,
    pub events: Receiver<Event>,
    cancel: Arc<AtomicBool>,
}

impl Worker {
    /// Starts the engine thread on `gpu`; `wake` is called after every event (the window
    /// repaints).
    pub fn spawn(gpu: Arc<Gpu>, wake: impl Fn() + Send + 'static) -> Worker {
        let (commands, rx) = channel::<Command>();
        let (tx, events) = channel::<Event>();
        let cancel = Arc::new(AtomicBool::new(false));
        let c = cancel.clone();
        std::thread::Builder::new()
            .name("unmask-engine".into())
            .spawn(move || {
                let mut engine = Engine {
                    gpu,
                    model: None,
                    cancel: c,
                    send: Box::new(move |e| {
                        let _ = tx.send(e);
                        wake();
                    }),
                };
                for cmd in rx {
                    engine.handle(cmd);
                }
            })
            .expect("spawn the engine thread");
        Worker { commands, events, cancel }
    }

    pub fn send(&self, c: Command) {
        self.cancel.store(false, Ordering::Relaxed);
        let _ = self.commands.send(c);
    }

    /// Asks the running generation to stop after its current step.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

struct Engine {
    gpu: Arc<Gpu>,
    model: Option<OnGpu>,
    cancel: Arc<AtomicBool>,
    send: Box<dyn Fn(Event) + Send>,
}

/// Text of one token (a cell of the canvas).
fn piece(tok: Option<&TextTokenizer>, t: u32) -> String {
    tok.and_then(|k| k.decode(&[t], true).ok()).unwrap_or_else(|| format!("#{t}"))
}

impl Engine {
    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Load { path, quant } => self.load(path, quant),
            Command::Generate(req) => {
                let r = self.with_model(|m| req.prepare(&m.config, m.tokenizer.as_ref())).and_then(|p| self.execute(p));
                if let Err(e) = r {
                    (self.send)(Event::Failed(e.to_string()));
                }
            }
            Command::Remask { tokens, gen_start, options } => {
                let r = self.with_model(|m| prepare_remask(&m.config, m.tokenizer.as_ref(), tokens, gen_start, options)).and_then(|p| self.execute(p));
                if let Err(e) = r {
                    (self.send)(Event::Failed(e.to_string()));
                }
            }
        }
    }

    fn with_model<T>(&self, f: impl FnOnce(&OnGpu) -> Result<T>) -> Result<T> {
        f(self.model.as_ref().ok_or_else(|| Error::Input("no model is loaded: open one first".into()))?)
    }

    fn load(&mut self, path: PathBuf, quant: Option<Quant>) {
        let kernels = self.gpu.default_kernels();
        let send = &self.send;
        let mut last = std::time::Instant::now();
        let mut summary = String::new();
        let r = load_on(
            self.gpu.clone(),
            &path,
            quant,
            |c: &ModelConfig| session_config(PLAN_CANVAS.min(c.max_sequence_length), &SamplerOptions::default(), kernels),
            None,
            &mut |plan| {
                summary = plan.summary();
                send(Event::Planned { path: path.clone(), plan: summary.clone() })
            },
            &mut |done, total| {
                if last.elapsed().as_millis() >= 50 || done == total {
                    last = std::time::Instant::now();
                    send(Event::Progress { done, total });
                }
            },
        );
        match r {
            Ok(m) => {
                let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
                let info = ModelInfo { path: path.clone(), name, plan: summary, config: m.config.clone(), has_tokenizer: m.tokenizer.is_some() };
                self.model = Some(m);
                (self.send)(Event::Loaded(Box::new(info)));
            }
            Err(e) => (self.send)(Event::LoadFailed { path, error: e.to_string() }),
        }
    }

    fn execute(&self, p: Prepared) -> Result<()> {
        let m = self.model.as_ref().ok_or_else(|| Error::Input("no model is loaded".into()))?;
        let tok = m.tokenizer.as_ref();
        let config = session_config(p.canvas.tokens.len(), &p.options, self.gpu.default_kernels());
        let mut session = Session::new(&m.model, config, None)?;
        let c = &p.canvas;
        (self.send)(Event::Started(Start {
            tokens: c.tokens.clone(),
            pieces: c.tokens.iter().map(|&t| if t == c.mask { String::new() } else { piece(tok, t) }).collect(),
            gen_start: c.gen_start,
            mask: c.mask,
            block_length: p.options.block_length,
            steps: p.options.steps,
        }));
        let cancel = self.cancel.clone();
        let g = pollster::block_on(sampler::run(&mut session, p.canvas, &p.options, &mut |e| {
            let committed = e.committed.iter().map(|c| Commit { pos: c.pos, token: c.token, confidence: c.confidence, text: piece(tok, c.token) }).collect();
            (self.send)(Event::Step(Step { step: e.step, block: e.block, masked_left: e.masked_left, ms: e.ms, early_stop: e.early_stop, committed }));
            !cancel.load(Ordering::Relaxed)
        }))?;
        let text = g.text(tok)?;
        let tokens_per_second = g.tokens_per_second(&p.ends);
        (self.send)(Event::Finished(Finish {
            text,
            gen_start: g.gen_start,
            steps: g.steps,
            model_passes: g.model_passes,
            ms: g.ms,
            tokens_per_second,
            early_stopped: g.early_stopped,
            cancelled: g.cancelled,
            tokens: g.tokens,
        }));
        Ok(())
    }
}
