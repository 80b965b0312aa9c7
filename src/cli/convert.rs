//! `unmask convert SRC --out DEST`: rewrite a model as GGUF (llama.cpp's names for its family,
//! permuted q/k rows, tokenizer embedded) or as a Hub-style safetensors folder, optionally quantized.

use clap::Args;
use std::path::PathBuf;
use unmask::model::files::{load_path, save_gguf, save_hf_dir};
use unmask::{Error, Result};

#[derive(Args)]
pub struct ConvertArgs {
    /// The model to read (directory or .gguf).
    pub model: PathBuf,
    /// Where to write: a path ending in .gguf writes GGUF, anything else a safetensors folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Store the weight matrices as f32, f16, bf16, q8_0 or q4_0 (q* need GGUF) [default: as read].
    #[arg(long)]
    pub quant: Option<String>,
    /// With --quant q4_0: the embedding and the LM head in Q4_0 too. By default they stay in
    /// Q8_0 (their error reaches every position; llama.cpp keeps its output tensor wider too)
    #[arg(long)]
    pub pure: bool,
}

pub fn run(a: ConvertArgs) -> Result<()> {
    let quant = super::model::parse_quant(a.quant.as_deref(), a.pure)?;
    let mut m = load_path(&a.model)?;
    if let Some(q) = quant {
        m.weights.convert(q)?;
    }
    let tokenizer_json = tokenizer_text(&a.model)?;
    if a.out.extension().is_some_and(|e| e == "gguf") {
        save_gguf(&m.weights, tokenizer_json.as_deref(), &a.out)?;
    } else {
        save_hf_dir(&m.weights, tokenizer_json.as_deref().map(str::as_bytes), &a.out)?;
    }
    let bytes = if a.out.is_file() { std::fs::metadata(&a.out).map(|m| m.len()).unwrap_or(0) } else { 0 };
    eprintln!("wrote {} ({:.2} MB){}", a.out.display(), bytes as f64 / 1e6, if tokenizer_json.is_some() { " with its tokenizer" } else { "" });
    Ok(())
}

/// The tokenizer.json text that belongs to a model path, if there is one.
fn tokenizer_text(model: &std::path::Path) -> Result<Option<String>> {
    let p = if model.is_dir() { model.join("tokenizer.json") } else { model.with_file_name("tokenizer.json") };
    if !p.is_file() {
        return Ok(None);
    }
    std::fs::read_to_string(&p).map(Some).map_err(|e| Error::model(p.display().to_string(), format!("cannot read: {e}")))
}
