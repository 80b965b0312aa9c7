//! Finding and reading a model on disk: a Hub-style directory (config.json + model.safetensors or
//! shards listed in model.safetensors.index.json, tokenizer.json) or a single .gguf file.

use crate::error::{Error, Result};
use crate::model::{ModelWeights, TextTokenizer};
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

/// Loads a model from a directory or a `.gguf` file.
pub fn load_path(path: &Path) -> Result<LoadedModel> {
    let name = path.display().to_string();
    if path.is_dir() {
        return load_dir(path);
    }
    if !path.exists() {
        return Err(Error::model(name, "no such file or directory"));
    }
    let bytes = read(path)?;
    if bytes.starts_with(b"GGUF") {
        let weights = ModelWeights::from_gguf(&name, &bytes)?;
        // A tokenizer.json beside the file wins over the one embedded in it.
        let tokenizer = match read_tokenizer(&path.with_file_name("tokenizer.json"))? {
            Some(t) => Some(t),
            None => crate::model::gguf_tokenizer::tokenizer_from_gguf(&crate::model::gguf::Gguf::parse(&name, &bytes)?)?,
        };
        return Ok(LoadedModel { weights, tokenizer, format: "gguf", files: vec![(path.to_path_buf(), bytes.len() as u64)] });
    }
    if path.extension().is_some_and(|e| e == "safetensors") {
        let dir = path.parent().unwrap_or(Path::new("."));
        return load_safetensors(dir, vec![path.to_path_buf()]);
    }
    Err(Error::model(name, "not a GGUF file and not a model directory (expected a folder with config.json and model.safetensors, or a .gguf file)"))
}

fn load_dir(dir: &Path) -> Result<LoadedModel> {
    let index = dir.join("model.safetensors.index.json");
    let shards = if index.is_file() {
        let text = String::from_utf8(read(&index)?).map_err(|_| Error::model(index.display().to_string(), "not UTF-8"))?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::model(index.display().to_string(), format!("not valid JSON: {e}")))?;
        let map = v.get("weight_map").and_then(|m| m.as_object()).ok_or_else(|| Error::model(index.display().to_string(), "has no `weight_map` object"))?;
        let mut names: Vec<String> = Vec::new();
        for f in map.values() {
            let f = f.as_str().ok_or_else(|| Error::model(index.display().to_string(), "weight_map values must be file names"))?;
            if f.contains('/') || f.contains('\\') || f.starts_with('.') {
                return Err(Error::model(index.display().to_string(), format!("shard name {f:?} is not a plain file name")));
            }
            if !names.iter().any(|n| n == f) {
                names.push(f.to_string());
            }
        }
        names.sort();
        names.into_iter().map(|n| dir.join(n)).collect()
    } else if dir.join("model.safetensors").is_file() {
        vec![dir.join("model.safetensors")]
    } else {
        let ggufs: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| Error::model(dir.display().to_string(), format!("cannot list: {e}")))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "gguf"))
            .collect();
        return match ggufs.as_slice() {
            [one] => load_path(one),
            [] => Err(Error::model(dir.display().to_string(), "no model found: expected model.safetensors (or model.safetensors.index.json with shards) and config.json, or a .gguf file")),
            _ => Err(Error::model(dir.display().to_string(), "several .gguf files: name the one to load")),
        };
    };
    load_safetensors(dir, shards)
}

fn load_safetensors(dir: &Path, shards: Vec<PathBuf>) -> Result<LoadedModel> {
    let config_path = dir.join("config.json");
    if !config_path.is_file() {
        return Err(Error::model(config_path.display().to_string(), "missing: a safetensors model needs its config.json beside it"));
    }
    let config_text = String::from_utf8(read(&config_path)?).map_err(|_| Error::model(config_path.display().to_string(), "not UTF-8"))?;
    let mut blobs = Vec::new();
    for p in &shards {
        blobs.push((p.display().to_string(), read(p)?));
    }
    let views: Vec<(String, &[u8])> = blobs.iter().map(|(n, b)| (n.clone(), b.as_slice())).collect();
    let weights = ModelWeights::from_safetensors(&config_path.display().to_string(), &config_text, &views)?;
    let tokenizer = read_tokenizer(&dir.join("tokenizer.json"))?;
    let mut files = vec![(config_path, config_text.len() as u64)];
    files.extend(shards.into_iter().zip(blobs.iter().map(|b| b.1.len() as u64)));
    Ok(LoadedModel { weights, tokenizer, format: "safetensors", files })
}

/// Writes `weights` as a GGUF file, embedding `tokenizer_json` (and LLaDA's chat template) if given.
pub fn save_gguf(weights: &ModelWeights, tokenizer_json: Option<&str>, path: &Path) -> Result<()> {
    let extra = match tokenizer_json {
        Some(t) => crate::model::gguf_tokenizer::tokenizer_metadata("tokenizer.json", t, Some(crate::sampler::text::CHAT_TEMPLATE))?,
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
