//! A DiffusionGemma model on disk, opened as the CLI and the desktop app both need it: whether a
//! path holds one, its files and index (headers only), its sampler settings (a GGUF's own keys,
//! else generation_config.json beside the model, else the reference's defaults) and its
//! tokenizer (tokenizer.json beside it, else one embedded in a GGUF).

use super::index::DgIndex;
use super::sampler::DgSettings;
use crate::error::Result;
use crate::model::files::{open_path, ModelFiles};
use crate::model::TextTokenizer;
use std::path::Path;

/// Whether `path` holds a DiffusionGemma model (config.json's `model_type`, or the GGUF's
/// architecture); anything unreadable is "no" (the general loader then says why).
pub fn is_dgemma(path: &Path) -> bool {
    let Ok(files) = open_path(path) else { return false };
    pollster::block_on(super::detect(&files.source, files.config.as_ref().map(|c| c.1.as_str())))
}

/// A DiffusionGemma model's files, opened but not read beyond their headers.
pub struct DgFiles {
    pub files: ModelFiles,
    pub index: DgIndex,
    pub settings: DgSettings,
    pub tokenizer: Option<TextTokenizer>,
}

impl DgFiles {
    pub fn open(path: &Path) -> Result<Self> {
        let files = open_path(path)?;
        let index = pollster::block_on(DgIndex::read(&files.source, files.config.as_ref().map(|(f, t)| (f.as_str(), t.as_str()))))?;
        let side = if path.is_dir() { path } else { path.parent().unwrap_or(Path::new(".")) };
        let generation = std::fs::read_to_string(side.join("generation_config.json")).ok();
        let settings = DgSettings::resolve(index.settings.as_ref(), generation.as_deref())?;
        let tokenizer = match files.tokenizer.clone()? {
            None if files.format == "gguf" => pollster::block_on(super::gguf_tokenizer(&files.source))?,
            t => t,
        };
        Ok(DgFiles { files, index, settings, tokenizer })
    }
}
