//! `unmask app`: opens the desktop app (`unmask::app`) on the bundled demo model or `--model`.

use clap::Args;
use std::path::PathBuf;
use unmask::app::{self, AppOptions};
use unmask::{Error, Result};

#[derive(Args)]
pub struct AppArgs {
    /// Model to open (a .gguf file or a Hub-style folder) [default: the bundled demo model].
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Generate from this prompt as soon as the model has loaded.
    #[arg(long)]
    pub prompt: Option<String>,
    /// After generating from --prompt, save a PNG of the window here and quit (used by the tests
    /// and for the README's screenshot). The user's saved settings are not read or changed.
    #[arg(long, requires = "prompt")]
    pub screenshot: Option<PathBuf>,
}

pub fn run(a: AppArgs) -> Result<()> {
    if a.prompt.as_deref().is_some_and(|p| p.trim().is_empty()) {
        return Err(Error::Input("the prompt is empty: give some text with --prompt".into()));
    }
    if let Some(m) = &a.model {
        if !m.exists() {
            return Err(Error::Input(format!("--model {}: no such file or folder", m.display())));
        }
    }
    app::run(AppOptions { model: a.model, prompt: a.prompt, screenshot: a.screenshot })
}
