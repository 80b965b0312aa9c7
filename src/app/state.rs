//! The app's state and behaviour apart from drawing: the engine thread's events applied to the
//! run and the model, the actions behind every button and key (generate, cancel, scrub, replay,
//! remask, open a model), and persistence.

use super::canvas::Frame;
use super::run::Run;
use super::settings::{Mode, Settings};
use super::worker::{Command, Event, ModelInfo, Worker};
use crate::gpu::Gpu;
use eframe::egui;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::sync::Arc;

/// How `unmask app` was started.
#[derive(Debug, Clone, Default)]
pub struct AppOptions {
    /// Model to open first (default: the bundled demo model).
    pub model: Option<PathBuf>,
    /// A prompt to generate from as soon as the model is loaded.
    pub prompt: Option<String>,
    /// After that generation: save a screenshot of the window here (PNG), then close.
    pub screenshot: Option<PathBuf>,
}

/// A model streaming onto the GPU.
#[derive(Debug, Clone)]
pub struct Loading {
    pub path: PathBuf,
    pub plan: Option<String>,
    pub done: u64,
    pub total: u64,
}

/// Replay steps per second at 1×.
const REPLAY_RATE: f64 = 8.0;

pub struct UnmaskApp {
    pub(super) gpu: Arc<Gpu>,
    pub(super) worker: Worker,
    pub settings: Settings,
    pub model: Option<ModelInfo>,
    pub loading: Option<Loading>,
    /// Why the last model could not be opened (the previous one is still loaded).
    pub model_error: Option<String>,
    pub run: Option<Run>,
    /// The step the canvas shows.
    pub step: usize,
    /// Live: the canvas follows the newest step.
    pub(super) follow: bool,
    /// Replaying: the time of the last step shown.
    pub(super) playing: Option<f64>,
    /// Answer positions picked for remasking.
    pub selected: BTreeSet<usize>,
    /// Why the last generation did not run.
    pub error: Option<String>,
    /// A generation is running.
    pub busy: bool,
    /// Every drawing of the canvas (what was shown, for tests and debugging).
    pub drawn: Vec<Frame>,
    pub(super) dialog: Option<Receiver<Option<PathBuf>>>,
    pub(super) notice: Option<String>,
    pub(super) options: AppOptions,
    /// Generate once the model is loaded (`--prompt`).
    pending_generate: bool,
    /// `--screenshot`: 0 idle, then frames waited after the run before the shot.
    pub(super) shot: Option<u32>,
}

impl UnmaskApp {
    /// The app on `gpu` (whose device the window also draws with), its settings restored from
    /// `storage`, loading the model `options` names or the bundled demo model.
    pub fn new(ctx: &egui::Context, storage: Option<&dyn eframe::Storage>, gpu: Arc<Gpu>, options: AppOptions) -> UnmaskApp {
        let settings: Settings = storage.and_then(|s| eframe::get_value(s, eframe::APP_KEY)).unwrap_or_default();
        let c = ctx.clone();
        let worker = Worker::spawn(gpu.clone(), move || c.request_repaint());
        let mut app = UnmaskApp {
            gpu,
            worker,
            settings,
            model: None,
            loading: None,
            model_error: None,
            run: None,
            step: 0,
            follow: true,
            playing: None,
            selected: BTreeSet::new(),
            error: None,
            busy: false,
            drawn: Vec::new(),
            dialog: None,
            notice: None,
            pending_generate: options.prompt.is_some(),
            shot: None,
            options,
        };
        if let Some(p) = &app.options.prompt {
            app.settings.prompt = p.clone();
            app.settings.mode = Mode::Generate;
        }
        match crate::load::resolve(app.options.model.clone()) {
            Ok(p) => app.open_model(&p),
            Err(e) => app.model_error = Some(e.to_string()),
        }
        app
    }

    /// Starts loading the model at `path` (the current one stays until it has loaded).
    pub fn open_model(&mut self, path: &Path) {
        let quant = match self.settings.quant() {
            Ok(q) => q,
            Err(e) => {
                self.model_error = Some(e.to_string());
                return;
            }
        };
        self.model_error = None;
        self.loading = Some(Loading { path: path.to_path_buf(), plan: None, done: 0, total: 0 });
        self.worker.send(Command::Load { path: path.to_path_buf(), quant });
    }

    /// The loaded model's canvas and sampler when it is DiffusionGemma.
    pub fn diffusion(&self) -> Option<super::worker::DgSummary> {
        self.model.as_ref().and_then(|m| m.diffusion)
    }

    pub fn can_generate(&self) -> bool {
        self.model.is_some() && self.loading.is_none() && !self.busy
    }

    /// Runs the prompt (or infill text) with the current settings.
    pub fn generate(&mut self) {
        if !self.can_generate() {
            return;
        }
        if self.settings.prompt.trim().is_empty() {
            self.error = Some("the prompt is empty: write something first".into());
            return;
        }
        self.error = None;
        self.busy = true;
        self.worker.send(Command::Generate(self.settings.request(self.diffusion().is_some())));
    }

    /// Regenerates the selected answer positions of the finished run.
    pub fn remask(&mut self) {
        let Some(run) = &self.run else { return };
        if !self.can_generate() || self.selected.is_empty() || run.result.is_none() {
            return;
        }
        let mut tokens = run.token.clone();
        for &p in &self.selected {
            tokens[p] = run.start.mask;
        }
        let mut options = self.settings.options.clone();
        options.threshold = self.settings.threshold_on.then_some(self.settings.threshold);
        self.error = None;
        self.busy = true;
        self.worker.send(Command::Remask { tokens, gen_start: run.gen_start(), options });
    }

    pub fn cancel(&mut self) {
        if self.busy {
            self.worker.cancel();
        }
    }

    /// Whether answer cells can be clicked for remasking now (a masked model's finished run,
    /// with a masked model loaded).
    pub fn selectable(&self) -> bool {
        let masked = |r: &Run| r.start.mask != super::run::NO_MASK;
        self.run.as_ref().is_some_and(|r| masked(r) && r.result.as_ref().is_some_and(|f| !f.cancelled) && r.gen_start() < r.len())
            && !self.busy
            && self.diffusion().is_none()
    }

    /// Toggles the word at `p` (or just `p`) in the selection.
    pub fn toggle(&mut self, p: usize, single: bool) {
        let Some(run) = &self.run else { return };
        let span = if single { p..=p } else { run.word_at(p) };
        let on = !self.selected.contains(&p);
        for q in span {
            if on {
                self.selected.insert(q);
            } else {
                self.selected.remove(&q);
            }
        }
    }

    pub fn seek(&mut self, step: usize) {
        let last = self.run.as_ref().map_or(0, Run::last_step);
        self.step = step.min(last);
        self.follow = self.busy && self.step == last;
        self.playing = None;
    }

    /// Starts replaying from the first step (or from where the canvas is, if not at the end).
    pub fn play(&mut self, now: f64) {
        let last = self.run.as_ref().map_or(0, Run::last_step);
        if self.step >= last {
            self.step = 0;
        }
        self.follow = false;
        self.playing = Some(now);
    }

    /// Advances a replay; true while it goes on.
    pub(super) fn tick(&mut self, now: f64) -> bool {
        let Some(t0) = self.playing else { return false };
        let last = self.run.as_ref().map_or(0, Run::last_step);
        let dt = 1.0 / (REPLAY_RATE * self.settings.speed.max(0.05) as f64);
        if now - t0 >= dt {
            self.step = (self.step + 1).min(last);
            self.playing = Some(now);
        }
        if self.step >= last {
            self.playing = None;
        }
        self.playing.is_some()
    }

    /// Applies everything the engine thread sent since the last frame.
    pub fn poll(&mut self) {
        while let Ok(ev) = self.worker.events.try_recv() {
            self.apply(ev);
        }
    }

    fn apply(&mut self, ev: Event) {
        match ev {
            Event::Planned { path, plan } => {
                self.loading = Some(Loading { path, plan: Some(plan), done: 0, total: 0 });
            }
            Event::Progress { done, total } => {
                if let Some(l) = &mut self.loading {
                    (l.done, l.total) = (done, total);
                }
            }
            Event::Loaded(info) => {
                self.loading = None;
                self.settings.remember(&info.path);
                self.model = Some(*info);
                if std::mem::take(&mut self.pending_generate) {
                    self.generate();
                }
            }
            Event::LoadFailed { path, error } => {
                self.loading = None;
                let keep = self.model.as_ref().map_or(String::new(), |m| format!(" (still using {})", m.name));
                self.model_error = Some(format!("could not open {}: {error}{keep}", path.display()));
                self.pending_generate = false;
                self.shot = self.shot.or(self.options.screenshot.as_ref().map(|_| 0));
            }
            Event::Started(start) => {
                self.run = Some(Run::new(start));
                self.selected.clear();
                self.step = 0;
                self.follow = true;
                self.playing = None;
            }
            Event::Step(s) => {
                let step = s.step;
                if let Some(run) = &mut self.run {
                    run.add(s);
                }
                if self.follow {
                    self.step = step;
                }
            }
            Event::Finished(f) => {
                self.busy = false;
                if let Some(run) = &mut self.run {
                    run.result = Some(f);
                    if self.follow {
                        self.step = run.last_step();
                    }
                }
                self.follow = false;
                if self.options.screenshot.is_some() && self.shot.is_none() {
                    self.shot = Some(0);
                }
            }
            Event::Failed(e) => {
                self.busy = false;
                if self.options.screenshot.is_some() && self.shot.is_none() {
                    // A scripted run says it on stderr too (the window test reads it).
                    eprintln!("generation failed: {e}");
                    self.shot = Some(0);
                }
                self.error = Some(e);
            }
        }
    }

    /// The answer text of the finished run.
    pub fn answer(&self) -> Option<&str> {
        self.run.as_ref()?.result.as_ref().map(|r| r.text.as_str())
    }

    /// Opens the system file dialog on another thread (the window keeps drawing); `folder`: a
    /// Hub-style model folder instead of a file.
    pub fn pick(&mut self, folder: bool, ctx: &egui::Context) {
        let (tx, rx) = std::sync::mpsc::channel();
        let c = ctx.clone();
        std::thread::spawn(move || {
            let d = rfd::AsyncFileDialog::new().set_title(if folder { "Open a model folder" } else { "Open a model" });
            let picked = if folder {
                pollster::block_on(d.pick_folder())
            } else {
                pollster::block_on(d.add_filter("GGUF model", &["gguf"]).add_filter("Hub-style folder (config.json)", &["json"]).pick_file())
            };
            let _ = tx.send(picked.map(|h| h.path().to_path_buf()));
            c.request_repaint();
        });
        self.dialog = Some(rx);
        self.notice = None;
    }

    /// A file picked in the dialog (config.json means its folder).
    pub(super) fn poll_dialog(&mut self) {
        let Some(rx) = &self.dialog else { return };
        match rx.try_recv() {
            Ok(Some(p)) => {
                self.dialog = None;
                let p = if p.file_name().is_some_and(|n| n == "config.json") { p.parent().map(Path::to_path_buf).unwrap_or(p) } else { p };
                self.open_model(&p);
            }
            Ok(None) | Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                self.dialog = None;
                self.notice = Some("No model picked. (Without a desktop file dialog, drop a .gguf file or a model folder onto the window.)".into());
            }
            Err(std::sync::mpsc::TryRecvError::Empty) => {}
        }
    }
}
