//! The app's engine thread: it owns the model on the GPU (a masked family's, or DiffusionGemma's:
//! `dg`) and runs loads and generations off the UI thread, streaming what happens (plan, load
//! progress, canvas, steps, result, errors) back through a channel; the UI only sends commands
//! and draws what arrives.

use super::dg::{self, DgLoaded};
use super::run::{Commit, Finish, Start, Step};
use crate::engine::Session;
use crate::gpu::Gpu;
use crate::load::{load_on, session_config, OnGpu};
use crate::model::{ModelConfig, Quant, TextTokenizer};
use crate::request::{prepare_remask, Prepared, Request};
use crate::sampler::{self, SamplerOptions};
use crate::{Error, Result};
use std::path::{Path, PathBuf};
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
    /// The family and its shape, as the model bar shows it ("dream · 28 layers").
    pub family: String,
    /// A masked family's config (None for DiffusionGemma).
    pub config: Option<ModelConfig>,
    /// DiffusionGemma's canvas and sampler (None for the masked families).
    pub diffusion: Option<DgSummary>,
    pub has_tokenizer: bool,
}

/// What the window shows and asks of a DiffusionGemma model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DgSummary {
    /// Tokens per canvas.
    pub canvas_length: usize,
    /// The checkpoint's denoising steps per canvas at most.
    pub steps: usize,
}

/// The model on the GPU: a masked family's, or DiffusionGemma's (its own engine).
enum Loaded {
    Masked(Box<OnGpu>),
    Diffusion(Box<DgLoaded>),
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
    model: Option<Loaded>,
    cancel: Arc<AtomicBool>,
    send: Box<dyn Fn(Event) + Send>,
}

/// Text of one token (a cell of the canvas).
pub(super) fn piece(tok: Option<&TextTokenizer>, t: u32) -> String {
    TextTokenizer::piece(tok, t)
}

impl Engine {
    fn handle(&mut self, cmd: Command) {
        let r = match cmd {
            Command::Load { path, quant } => return self.load(path, quant),
            Command::Generate(req) => match &self.model {
                Some(Loaded::Diffusion(m)) => dg::generate(m, &req, &self.cancel, &*self.send),
                _ => self.with_model(|m| req.prepare(&m.config, m.tokenizer.as_ref())).and_then(|p| self.execute(p)),
            },
            Command::Remask { tokens, gen_start, options } => {
                self.with_model(|m| prepare_remask(&m.config, m.tokenizer.as_ref(), tokens, gen_start, options)).and_then(|p| self.execute(p))
            }
        };
        if let Err(e) = r {
            (self.send)(Event::Failed(e.to_string()));
        }
    }

    /// The masked family's model (DiffusionGemma has no masks to fill).
    fn with_model<T>(&self, f: impl FnOnce(&OnGpu) -> Result<T>) -> Result<T> {
        match &self.model {
            Some(Loaded::Masked(m)) => f(m),
            Some(Loaded::Diffusion(_)) => Err(Error::Input("DiffusionGemma has no mask token: it cannot regenerate selected positions".into())),
            None => Err(Error::Input("no model is loaded: open one first".into())),
        }
    }

    fn load(&mut self, path: PathBuf, quant: Option<Quant>) {
        let send = &self.send;
        let mut last = std::time::Instant::now();
        let mut progress = |done, total| {
            if last.elapsed().as_millis() >= 50 || done == total {
                last = std::time::Instant::now();
                send(Event::Progress { done, total });
            }
        };
        let mut on_plan = |summary: &str| send(Event::Planned { path: path.clone(), plan: summary.to_string() });
        let r = if dg::is_dgemma(&path) {
            dg::load(self.gpu.clone(), &path, quant, &mut on_plan, &mut progress).map(|(m, info)| (Loaded::Diffusion(Box::new(m)), info))
        } else {
            self.load_masked(&path, quant, &mut on_plan, &mut progress)
        };
        match r {
            Ok((m, mut info)) => {
                info.path = path.clone();
                info.name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
                self.model = Some(m);
                (self.send)(Event::Loaded(Box::new(info)));
            }
            Err(e) => (self.send)(Event::LoadFailed { path, error: e.to_string() }),
        }
    }

    /// A masked family's model (path and name of the info are the caller's to fill).
    fn load_masked(&self, path: &Path, quant: Option<Quant>, on_plan: &mut dyn FnMut(&str), progress: &mut dyn FnMut(u64, u64)) -> Result<(Loaded, ModelInfo)> {
        let (kernels, kv) = (self.gpu.default_kernels(), self.gpu.default_kv());
        let mut summary = String::new();
        let m = load_on(
            self.gpu.clone(),
            path,
            quant,
            |c: &ModelConfig| session_config(PLAN_CANVAS.min(c.max_sequence_length), &SamplerOptions::default(), kernels, kv),
            None,
            &mut |plan| {
                summary = plan.summary();
                on_plan(&summary)
            },
            progress,
        )?;
        let info = ModelInfo {
            path: PathBuf::new(),
            name: String::new(),
            plan: summary,
            family: family_text(&m.config),
            config: Some(m.config.clone()),
            diffusion: None,
            has_tokenizer: m.tokenizer.is_some(),
        };
        Ok((Loaded::Masked(Box::new(m)), info))
    }

    fn execute(&self, p: Prepared) -> Result<()> {
        let Some(Loaded::Masked(m)) = &self.model else { return Err(Error::Input("no masked model is loaded".into())) };
        let tok = m.tokenizer.as_ref();
        let config = session_config(p.canvas.tokens.len(), &p.options, self.gpu.default_kernels(), self.gpu.default_kv());
        let mut session = Session::new(&m.model, config, None)?;
        let c = &p.canvas;
        (self.send)(Event::Started(Start {
            tokens: c.tokens.clone(),
            pieces: c.tokens.iter().map(|&t| if t == c.mask { String::new() } else { piece(tok, t) }).collect(),
            gen_start: c.gen_start,
            mask: c.mask,
            block_length: p.options.block_length,
            steps: p.options.steps,
            ends: p.ends.iter().flatten().copied().collect(),
        }));
        let cancel = self.cancel.clone();
        let g = pollster::block_on(sampler::run(&mut session, p.canvas, &p.options, &mut |e| {
            let committed = e
                .committed
                .iter()
                .map(|c| Commit { pos: c.pos, token: c.token, confidence: c.confidence, text: piece(tok, c.token), renoised: false })
                .collect();
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
            stop: None,
        }));
        Ok(())
    }
}

/// The family the loader found and its shape, for the model bar: "dream · 28 layers",
/// "llada-moe · 16 layers · 64 experts, top-8".
pub fn family_text(c: &ModelConfig) -> String {
    let moe = if c.is_moe() { format!(" · {} experts, top-{}", c.n_experts, c.n_experts_used) } else { String::new() };
    format!("{} · {} layers{moe}", c.family, c.n_layers)
}
