//! Finding and reading a model on disk: a Hub-style directory (config.json + model.safetensors or
//! shards listed in model.safetensors.index.json, tokenizer.json) or a single .gguf file.

use crate::error::{Error, Result};
use crate::model::index::read_index;
use crate::model::source::FileSource;
use crate::model::{ModelIndex, ModelWeights, TextTokenizer};
use std::path::{Path, PathBuf};

pub struct LoadedModel {
    pub weights: ModelWeights,
    pub tokenizer: Option<TextTokenizer>,
    /// "safetensors" or "gguf".
    pub format: &'static str,
    /// The files read, with their sizes in bytes.
    pub files: Vec<(PathBuf, u64)>,
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::model(path.display().to_string(), format!("cannot read: {e}")))
}

fn read_tokenizer(path: &Path) -> Result<Option<TextTokenizer>> {
    if !path.is_file() {
        return Ok(None);
    }
    let bytes = read(path)?;
    TextTokenizer::from_bytes(&path.display().to_string(), &bytes).map(Some)
}

/// A model's files on disk, opened but not read: the byte source (the GGUF file or the
/// safetensors shards), the config.json text for safetensors, and a tokenizer.json found beside.
pub struct ModelFiles {
    pub source: FileSource,
    /// (path, text) of config.json (safetensors only).
    pub config: Option<(String, String)>,
    /// tokenizer.json beside the model: none, one, or why it cannot be read.
    pub tokenizer: Result<Option<TextTokenizer>>,
    /// "safetensors" or "gguf".
    pub format: &'static str,
}

impl ModelFiles {
    /// Reads the headers: the index of every tensor, and the tokenizer: tokenizer.json beside
    /// the model wins over one embedded in a GGUF, and a broken embedded one is an error of its
    /// own (the model is still readable: `unmask info` shows both).
    pub fn index(&self) -> Result<(ModelIndex, Result<Option<TextTokenizer>>)> {
        let (index, embedded) = pollster::block_on(read_index(&self.source, self.config.as_ref().map(|(f, t)| (f.as_str(), t.as_str()))))?;
        let tokenizer = match &self.tokenizer {
            Ok(None) => embedded,
            beside => beside.clone(),
        };
        Ok((index, tokenizer))
    }

    /// Reads everything into host memory (for the CPU twin, conversion and reports).
    pub fn read_all(&self) -> Result<LoadedModel> {
        let (index, tokenizer) = self.index()?;
        let tokenizer = tokenizer?;
        let mut blobs = Vec::new();
        for (path, _) in self.source.paths() {
            blobs.push(read(&path)?);
        }
        let weights = ModelWeights::from_index(&index, &blobs.iter().map(|b| b.as_slice()).collect::<Vec<_>>())?;
        Ok(LoadedModel { weights, tokenizer, format: self.format, files: self.files() })
    }

    /// Every file of the model with its size: config.json (safetensors) first, then the
    /// GGUF or the shards.
    pub fn files(&self) -> Vec<(PathBuf, u64)> {
        let mut files = self.source.paths();
        if let Some((p, t)) = &self.config {
            files.insert(0, (PathBuf::from(p), t.len() as u64));
        }
        files
    }
}

/// Loads a model from a directory or a `.gguf` file into host memory.
pub fn load_path(path: &Path) -> Result<LoadedModel> {
    open_path(path)?.read_all()
}

/// Finds a model's files: a directory (safetensors with config.json, shards by index, or a
/// single .gguf inside), a `.gguf` file, or a `.safetensors` file with config.json beside it.
pub fn open_path(path: &Path) -> Result<ModelFiles> {
    let name = path.display().to_string();
    if path.is_dir() {
        return open_dir(path);
    }
    if !path.exists() {
        return Err(Error::model(name, "no such file or directory"));
    }
    let mut magic = [0u8; 4];
    let n = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read(&mut f, &mut magic))
        .map_err(|e| Error::model(name.as_str(), format!("cannot read: {e}")))?;
    if n == 4 && &magic == b"GGUF" {
        let tokenizer = read_tokenizer(&path.with_file_name("tokenizer.json"));
        return Ok(ModelFiles { source: FileSource::open(&[path.to_path_buf()])?, config: None, tokenizer, format: "gguf" });
    }
    if path.extension().is_some_and(|e| e == "safetensors") {
        let dir = path.parent().unwrap_or(Path::new("."));
        return open_safetensors(dir, vec![path.to_path_buf()]);
    }
    Err(Error::model(name, "not a GGUF file and not a model directory (expected a folder with config.json and model.safetensors, or a .gguf file)"))
}

fn open_dir(dir: &Path) -> Result<ModelFiles> {
    let index = dir.join("model.safetensors.index.json");
    let shards = if index.is_file() {
        shard_names(&index.display().to_string(), &read(&index)?)?.into_iter().map(|n| dir.join(n)).collect()
    } else if dir.join("model.safetensors").is_file() {
        vec![dir.join("model.safetensors")]
    } else {
        let ggufs: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| Error::model(dir.display().to_string(), format!("cannot list: {e}")))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "gguf"))
            .collect();
        return match ggufs.as_slice() {
            [one] => open_path(one),
            [] => Err(Error::model(
                dir.display().to_string(),
                "no model found: expected model.safetensors (or model.safetensors.index.json with shards) and config.json, or a .gguf file",
            )),
            _ => Err(Error::model(dir.display().to_string(), "several .gguf files: name the one to load")),
        };
    };
    open_safetensors(dir, shards)
}

/// The shard file names of a `model.safetensors.index.json` (its `weight_map` values), sorted
/// and each once; a name that is not a plain file name (a path, a hidden file) is refused.
pub fn shard_names(file: &str, bytes: &[u8]) -> Result<Vec<String>> {
    let text = std::str::from_utf8(bytes).map_err(|_| Error::model(file, "not UTF-8"))?;
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| Error::model(file, format!("not valid JSON: {e}")))?;
    let map = v.get("weight_map").and_then(|m| m.as_object()).ok_or_else(|| Error::model(file, "has no `weight_map` object"))?;
    let mut names: Vec<String> = Vec::new();
    for f in map.values() {
        let f = f.as_str().ok_or_else(|| Error::model(file, "weight_map values must be file names"))?;
        if f.contains('/') || f.contains('\\') || f.starts_with('.') {
            return Err(Error::model(file, format!("shard name {f:?} is not a plain file name")));
        }
        names.push(f.to_string());
    }
    names.sort();
    names.dedup();
    Ok(names)
}

fn open_safetensors(dir: &Path, shards: Vec<PathBuf>) -> Result<ModelFiles> {
    let config_path = dir.join("config.json");
    if !config_path.is_file() {
        return Err(Error::model(config_path.display().to_string(), "missing: a safetensors model needs its config.json beside it"));
    }
    let config_text = String::from_utf8(read(&config_path)?).map_err(|_| Error::model(config_path.display().to_string(), "not UTF-8"))?;
    for p in &shards {
        if !p.is_file() {
            return Err(Error::model(p.display().to_string(), "missing: the shard index names it but it is not there"));
        }
    }
    let tokenizer = read_tokenizer(&dir.join("tokenizer.json"));
    Ok(ModelFiles { source: FileSource::open(&shards)?, config: Some((config_path.display().to_string(), config_text)), tokenizer, format: "safetensors" })
}

/// Writes `weights` as a GGUF file, embedding `tokenizer_json` (and the family's chat template) if given.
pub fn save_gguf(weights: &ModelWeights, tokenizer_json: Option<&str>, path: &Path) -> Result<()> {
    let extra = match tokenizer_json {
        Some(t) => crate::model::gguf_tokenizer::tokenizer_metadata("tokenizer.json", t, Some(weights.config.family().chat_template))?,
        None => vec![],
    };
    std::fs::write(path, weights.to_gguf(extra)).map_err(|e| Error::model(path.display().to_string(), format!("cannot write: {e}")))
}

/// Writes `weights` as a Hub-style directory: config.json + model.safetensors (+ tokenizer.json).
pub fn save_hf_dir(weights: &ModelWeights, tokenizer_json: Option<&[u8]>, dir: &Path) -> Result<()> {
    let io = |p: &Path, e: std::io::Error| Error::model(p.display().to_string(), format!("cannot write: {e}"));
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let st = weights.to_safetensors()?;
    for (name, bytes) in [("config.json", weights.config.to_hf_json().into_bytes()), ("model.safetensors", st)] {
        let p = dir.join(name);
        std::fs::write(&p, bytes).map_err(|e| io(&p, e))?;
    }
    if let Some(t) = tokenizer_json {
        let p = dir.join("tokenizer.json");
        std::fs::write(&p, t).map_err(|e| io(&p, e))?;
    }
    Ok(())
}
