//! `unmask info MODEL`: what a model file holds (read from its headers only, so it is instant
//! even for a 16 GB checkpoint) and the memory plan for this machine's GPU.

use clap::Args;
use std::path::PathBuf;
use unmask::gpu::Gpu;
use unmask::model::files::open_path;
use unmask::model::DType;
use unmask::plan::{human, MemoryPlan};
use unmask::{Error, Result};

#[derive(Args)]
pub struct InfoArgs {
    /// A model directory (config.json + model.safetensors or shards, tokenizer.json) or a .gguf file.
    pub model: PathBuf,
    /// Plan for weights converted to this format at load (q4_0, q8_0, f16, bf16, f32).
    #[arg(long)]
    pub quant: Option<String>,
    /// Plan for a canvas (prompt + generation) of this many positions [default: the model's
    /// context, at most 512].
    #[arg(long)]
    pub canvas: Option<usize>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: InfoArgs) -> Result<()> {
    let files = open_path(&a.model)?;
    let (index, tokenizer) = files.index()?;
    let c = &index.config;
    let quant = a.quant.as_deref().map(|q| DType::parse(q).ok_or_else(|| Error::Input(format!("--quant {q:?}: use one of f32, f16, bf16, q8_0, q4_0")))).transpose()?;
    let canvas = a.canvas.unwrap_or(c.max_sequence_length.min(512)).max(1);
    let tensors = index.tensors();
    let mut by_dtype = std::collections::BTreeMap::<&str, u64>::new();
    for t in &tensors {
        *by_dtype.entry(t.dtype.name()).or_default() += t.bytes();
    }
    let total: u64 = by_dtype.values().sum();
    let paths = files.files();
    let file_bytes: u64 = paths.iter().map(|f| f.1).sum();
    let largest = tensors.iter().max_by_key(|t| t.bytes()).map(|t| (t.name.clone(), t.bytes())).unwrap_or_default();
    let gpu = pollster::block_on(Gpu::new());
    let binding = gpu.as_ref().map(|g| g.max_binding()).unwrap_or(u64::MAX);
    let plan = MemoryPlan::new(&index, quant, canvas, binding)?;
    let verdict = match &gpu {
        Ok(_) => plan.check(binding, None).map(|_| "fits the adapter's limits".to_string()).unwrap_or_else(|e| e.to_string()),
        Err(e) => e.to_string(),
    };
    let tok_vocab = tokenizer.as_ref().map(|t| t.vocab_size());
    if a.json {
        let v = serde_json::json!({
            "model": a.model.display().to_string(),
            "format": files.format,
            "files": paths.iter().map(|(p, b)| serde_json::json!({"path": p.display().to_string(), "bytes": b})).collect::<Vec<_>>(),
            "config": c,
            "rope": format!("{:?}", index.rope),
            "tensors": tensors.len(),
            "bytes_by_dtype": by_dtype,
            "weight_bytes": total,
            "largest_tensor": {"name": largest.0, "bytes": largest.1},
            "tokenizer_vocab": tok_vocab,
            "plan": plan,
            "plan_verdict": verdict,
            "adapter": gpu.as_ref().map(|g| serde_json::to_value(&g.report).unwrap()).unwrap_or_else(|e| serde_json::json!({"error": e.to_string()})),
        });
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
        return Ok(());
    }
    println!("model      {} ({}, {} file{}, {})", a.model.display(), files.format, paths.len(), if paths.len() == 1 { "" } else { "s" }, human(file_bytes));
    println!("layers     {}  d_model {}  heads {} (kv {}, head_dim {})  mlp {}", c.n_layers, c.d_model, c.n_heads, c.n_kv_heads, c.head_dim(), c.mlp_hidden_size);
    println!("vocab      {}  context {}  rope θ {} ({:?})  rms eps {}", c.vocab_size, c.max_sequence_length, c.rope_theta, index.rope, c.rms_norm_eps);
    let id = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    println!("tokens     mask {}  bos {}  eos {}  eot {}", c.mask_token_id, id(c.bos_token_id), id(c.eos_token_id), id(c.eot_token_id));
    let dt: Vec<String> = by_dtype.iter().map(|(d, b)| format!("{d} {}", human(*b))).collect();
    println!("tensors    {}  ({}; total {})", tensors.len(), dt.join(", "), human(total));
    println!("largest    {} ({})", largest.0, human(largest.1));
    match tok_vocab {
        Some(v) => println!("tokenizer  {}, {v} tokens", if files.tokenizer.is_some() { "tokenizer.json" } else { "embedded in the GGUF" }),
        None => println!("tokenizer  none found (put tokenizer.json beside the model to use text prompts)"),
    }
    match &gpu {
        Ok(g) => {
            let r = &g.report;
            println!("adapter    {} ({}, {})  shader-f16 {}  subgroups {}", r.name, r.backend, r.device_type, yes(r.shader_f16), yes(r.subgroups));
            println!("limits     storage binding {}  buffer {}  workgroup {} invocations, {} bytes shared", human(r.max_storage_buffer_binding_size), human(r.max_buffer_size), r.max_compute_invocations_per_workgroup, r.max_compute_workgroup_storage_size);
        }
        Err(e) => println!("adapter    none: {e}"),
    }
    println!("plan       {}", plan.summary());
    println!("verdict    {verdict}");
    Ok(())
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}
