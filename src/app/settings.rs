//! What the app remembers between runs (eframe persistence): the prompt, the mode, every sampler
//! setting (DiffusionGemma's steps per canvas apart), the recent models and the last one opened.
//! Checked only when a run starts, where a bad combination becomes the same one-line error the
//! CLI gives.

use crate::request::Request;
use crate::sampler::SamplerOptions;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mode {
    /// An answer of `gen_length` tokens after the prompt.
    Generate,
    /// Fill `[MASK]` / `<mask:N>` spans in the text.
    Infill,
}

/// Models remembered in the "Recent" list.
pub const RECENT: usize = 8;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub prompt: String,
    pub mode: Mode,
    pub chat: bool,
    pub options: SamplerOptions,
    /// Threshold decoding on (the value is kept when it is off).
    pub threshold_on: bool,
    pub threshold: f32,
    pub span_length: usize,
    /// `OFFSET:WORD` pins, separated by commas or new lines.
    pub pins: String,
    /// Weights on the GPU as: "" (as stored), "q8_0", "q4_0" or "q4_0_pure".
    pub quant: String,
    pub recent: Vec<PathBuf>,
    pub last_model: Option<PathBuf>,
    /// Replay speed (steps per second at 1× is 8).
    pub speed: f32,
    /// DiffusionGemma's denoising steps per canvas (None: the checkpoint's).
    pub dg_steps: Option<usize>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            prompt: "The weather today is".into(),
            mode: Mode::Generate,
            chat: false,
            options: SamplerOptions::default(),
            threshold_on: false,
            threshold: 0.9,
            span_length: 4,
            pins: String::new(),
            quant: String::new(),
            recent: Vec::new(),
            last_model: None,
            speed: 1.0,
            dg_steps: None,
        }
    }
}

impl Settings {
    /// The request the Generate button sends (to DiffusionGemma: `diffusion` true, its steps
    /// per canvas in `options.steps`, 0 for the checkpoint's).
    pub fn request(&self, diffusion: bool) -> Request {
        let mut r = self.masked_request();
        if diffusion {
            r.options.steps = self.dg_steps.unwrap_or(0);
        }
        r
    }

    fn masked_request(&self) -> Request {
        let mut options = self.options.clone();
        options.threshold = self.threshold_on.then_some(self.threshold);
        match self.mode {
            Mode::Generate => Request {
                prompt: Some(self.prompt.clone()),
                chat: self.chat,
                pins: self.pins.split([',', '\n']).map(str::trim).filter(|p| !p.is_empty()).map(String::from).collect(),
                options,
                ..Default::default()
            },
            Mode::Infill => Request {
                infill: Some(self.prompt.clone()),
                span_length: Some(self.span_length),
                options: SamplerOptions { block_length: SamplerOptions::ONE_BLOCK, ..options },
                ..Default::default()
            },
        }
    }

    /// Puts `path` first in the recent list.
    pub fn remember(&mut self, path: &std::path::Path) {
        self.recent.retain(|p| p != path);
        self.recent.insert(0, path.to_path_buf());
        self.recent.truncate(RECENT);
        self.last_model = Some(path.to_path_buf());
    }

    /// The `quant` choice as the loader takes it.
    pub fn quant(&self) -> crate::Result<Option<crate::model::Quant>> {
        let (name, pure) = self.quant.strip_suffix("_pure").map_or((self.quant.as_str(), false), |n| (n, true));
        crate::load::parse_quant((!name.is_empty()).then_some(name), pure)
    }
}
