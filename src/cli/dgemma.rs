//! `unmask generate` for DiffusionGemma checkpoints (a HF folder whose config.json says
//! `diffusion_gemma`): uniform-state denoising of whole canvases with the settings of the
//! checkpoint's `generation_config.json`, on the GPU (`--cpu`: the CPU twin). The checkpoint is
//! read whole into memory for now, which suits small models only.

use super::generate::GenerateArgs;
use std::path::Path;
use unmask::dgemma::forward::CpuDg;
use unmask::dgemma::gpu::DgGpuModel;
use unmask::dgemma::gpu_session::DgSession;
use unmask::dgemma::sampler::{generate as dg_generate, positions_needed, DgSettings, DgStep, SeededDraws};
use unmask::dgemma::DgWeights;
use unmask::model::DType;
use unmask::model::TextTokenizer;
use unmask::rng::Rng;
use unmask::{Error, Result};

/// A folder whose config.json names DiffusionGemma.
pub fn is_dgemma(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path.join("config.json")) else { return false };
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("model_type").and_then(|t| t.as_str()).map(|t| t == "diffusion_gemma"))
        .unwrap_or(false)
}

/// Gemma's turn format around one user message.
const CHAT: (&str, &str) = ("<start_of_turn>user\n", "<end_of_turn>\n<start_of_turn>model\n");

pub fn generate(a: &GenerateArgs, dir: &Path) -> Result<()> {
    let read = |name: &str| std::fs::read(dir.join(name)).map_err(|e| Error::Input(format!("{}: {e}", dir.join(name).display())));
    let config = String::from_utf8_lossy(&read("config.json")?).into_owned();
    let mut shards: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| Error::Input(format!("{}: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    shards.sort();
    if shards.is_empty() {
        return Err(Error::Input(format!("{}: no .safetensors files", dir.display())));
    }
    let bytes = shards.iter().map(std::fs::read).collect::<std::io::Result<Vec<_>>>().map_err(|e| Error::Input(format!("{}: {e}", dir.display())))?;
    let named: Vec<(String, &[u8])> = shards.iter().zip(&bytes).map(|(p, b)| (p.display().to_string(), &b[..])).collect();
    let w = DgWeights::from_safetensors("config.json", &config, &named)?;
    if w.skipped_vision > 0 {
        eprintln!("note: skipped the {} tensors of the vision tower (text only)", w.skipped_vision);
    }
    let mut s = match std::fs::read_to_string(dir.join("generation_config.json")) {
        Ok(t) => DgSettings::from_json("generation_config.json", &t)?,
        Err(_) => DgSettings::default(),
    };
    // The answer length asked for, in whole canvases.
    s.max_new_tokens = a.gen_length;
    let tok = match std::fs::read(dir.join("tokenizer.json")) {
        Ok(b) => Some(TextTokenizer::from_bytes("tokenizer.json", &b)?),
        Err(_) => None,
    };
    let prompt = match (&a.prompt, &a.prompt_tokens) {
        (Some(text), _) => {
            let t = tok.as_ref().ok_or_else(|| Error::Input("this model has no tokenizer.json: give --prompt-tokens".into()))?;
            let text = if a.chat { format!("{}{text}{}", CHAT.0, CHAT.1) } else { text.clone() };
            t.encode(&text)?
        }
        (None, Some(ids)) => ids.clone(),
        (None, None) => vec![],
    };
    let quant = match a.s.quant.as_deref() {
        None => None,
        Some("q8_0") => Some(DType::Q8_0),
        Some("q4_0") => Some(DType::Q4_0),
        Some(q) => return Err(Error::Input(format!("--quant {q}: DiffusionGemma loads as stored, or converted to q8_0 or q4_0"))),
    };
    let mut draws = SeededDraws(Rng::new(a.s.seed ^ 0x6467656d6d61));
    let mut steps = Vec::new();
    let mut on_step = |ev: &DgStep| {
        if a.s.json {
            let accepted = ev.accepted.iter().filter(|&&x| x).count();
            steps.push(serde_json::json!({"canvas": ev.canvas, "step": ev.step, "temperature": ev.temperature, "accepted": accepted, "stopped": ev.stopped}));
        }
        true
    };
    let (gen, adapter) = if a.s.cpu {
        let mut model = CpuDg::new(&w);
        (pollster::block_on(dg_generate(&mut model, &mut draws, &prompt, &s, &mut on_step))?, "CPU twin".to_string())
    } else {
        let gpu = std::sync::Arc::new(pollster::block_on(unmask::gpu::Gpu::new())?);
        let name = gpu.report.name.clone();
        let m = DgGpuModel::upload(gpu, &w, quant)?;
        let c = &m.config;
        let mut session = DgSession::new(&m, positions_needed(prompt.len().max(1), &s, c.canvas_length, c.max_positions)?)?;
        (pollster::block_on(dg_generate(&mut session, &mut draws, &prompt, &s, &mut on_step))?, name)
    };
    let answer = &gen.tokens[prompt.len()..];
    let text = match &tok {
        Some(t) => Some(t.decode(answer, false)?),
        None => None,
    };
    if a.s.json {
        let v = serde_json::json!({"prompt_tokens": prompt, "tokens": answer, "text": text, "canvases": gen.canvases, "steps": steps, "stop": gen.stop, "adapter": adapter});
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
    } else {
        match text {
            Some(t) => println!("{}", t.trim_end()),
            None => println!("{}", answer.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(",")),
        }
    }
    Ok(())
}

/// `unmask info` for a DiffusionGemma folder: what the config says, layer by layer kind.
pub fn info(dir: &Path) -> Result<()> {
    let text = std::fs::read_to_string(dir.join("config.json")).map_err(|e| Error::Input(format!("{}: {e}", dir.display())))?;
    let c = unmask::dgemma::DgConfig::from_json("config.json", &text)?;
    let full = c.layers.iter().filter(|l| l.full).count();
    println!("model      {} (safetensors)", dir.display());
    println!("family     diffusion-gemma (encoder/decoder over one Gemma 4 MoE stack)");
    println!(
        "layers     {}  hidden {}  heads {}  ({} sliding, window {}; {} full)",
        c.layers.len(),
        c.hidden,
        c.heads,
        c.layers.len() - full,
        c.sliding_window,
        full
    );
    for (kind, l) in [("sliding", c.layers.iter().find(|l| !l.full)), ("full", c.layers.iter().find(|l| l.full))] {
        if let Some(l) = l {
            println!("  {kind:<8} head_dim {} kv heads {}  RoPE θ {} on {} of {} pairs", l.head_dim, l.kv_heads, l.rope.theta, l.rope.pairs, l.head_dim / 2);
        }
    }
    println!("ffn        dense GELU-tanh MLP {} beside {} experts, top-{}, expert hidden {}", c.intermediate, c.experts, c.top_k, c.expert_hidden);
    println!("canvas     {} tokens  vocab {}  logit soft-cap {:?}", c.canvas_length, c.vocab, c.softcap);
    Ok(())
}
