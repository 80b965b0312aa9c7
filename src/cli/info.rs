//! `unmask info MODEL`: what a model file holds and how it would sit on this machine's GPU.

use clap::Args;
use std::path::PathBuf;
use unmask::gpu::Gpu;
use unmask::model::files::load_path;
use unmask::Result;

#[derive(Args)]
pub struct InfoArgs {
    /// A model directory (config.json + model.safetensors or shards, tokenizer.json) or a .gguf file.
    pub model: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: InfoArgs) -> Result<()> {
    let m = load_path(&a.model)?;
    let w = &m.weights;
    let c = &w.config;
    let n_tensors = w.matrices().len() + 1 + 2 * w.layers.len();
    let mut by_dtype: Vec<(&str, usize)> = w.bytes_by_dtype().into_iter().collect();
    by_dtype.sort();
    let total: usize = by_dtype.iter().map(|b| b.1).sum();
    let file_bytes: u64 = m.files.iter().map(|f| f.1).sum();
    let gpu = pollster::block_on(Gpu::new());
    let largest = w.matrices().iter().map(|(n, t)| (n.clone(), t.data.len())).max_by_key(|t| t.1).unwrap_or_default();
    let tokenizer = m.tokenizer.as_ref().map(|t| t.vocab_size());
    if a.json {
        let v = serde_json::json!({
            "model": a.model.display().to_string(),
            "format": m.format,
            "files": m.files.iter().map(|(p, b)| serde_json::json!({"path": p.display().to_string(), "bytes": b})).collect::<Vec<_>>(),
            "config": c,
            "rope": format!("{:?}", w.rope),
            "tensors": n_tensors,
            "bytes_by_dtype": by_dtype.iter().map(|(d, b)| (d.to_string(), *b)).collect::<std::collections::BTreeMap<_, _>>(),
            "weight_bytes": total,
            "largest_tensor": {"name": largest.0, "bytes": largest.1},
            "tokenizer_vocab": tokenizer,
            "adapter": gpu.as_ref().map(|g| serde_json::to_value(&g.report).unwrap()).unwrap_or_else(|e| serde_json::json!({"error": e.to_string()})),
        });
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
        return Ok(());
    }
    let mb = |b: u64| format!("{:.2} MB", b as f64 / 1e6);
    println!("model      {} ({}, {} file{}, {})", a.model.display(), m.format, m.files.len(), if m.files.len() == 1 { "" } else { "s" }, mb(file_bytes));
    println!("layers     {}  d_model {}  heads {} (kv {}, head_dim {})  mlp {}", c.n_layers, c.d_model, c.n_heads, c.n_kv_heads, c.head_dim(), c.mlp_hidden_size);
    println!("vocab      {}  context {}  rope θ {} ({:?})  rms eps {}", c.vocab_size, c.max_sequence_length, c.rope_theta, w.rope, c.rms_norm_eps);
    let id = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    println!("tokens     mask {}  bos {}  eos {}  eot {}", c.mask_token_id, id(c.bos_token_id), id(c.eos_token_id), id(c.eot_token_id));
    let dt: Vec<String> = by_dtype.iter().map(|(d, b)| format!("{d} {}", mb(*b as u64))).collect();
    println!("tensors    {n_tensors}  ({}; total {})", dt.join(", "), mb(total as u64));
    println!("largest    {} ({})", largest.0, mb(largest.1 as u64));
    match tokenizer {
        Some(v) => println!("tokenizer  tokenizer.json, {v} tokens"),
        None => println!("tokenizer  none found (put tokenizer.json beside the model to use text prompts)"),
    }
    match gpu {
        Ok(g) => {
            let r = &g.report;
            println!("adapter    {} ({}, {})  shader-f16 {}  subgroups {}", r.name, r.backend, r.device_type, yes(r.shader_f16), yes(r.subgroups));
            println!("limits     storage binding {}  buffer {}  workgroup {} invocations, {} bytes shared", mb(r.max_storage_buffer_binding_size), mb(r.max_buffer_size), r.max_compute_invocations_per_workgroup, r.max_compute_workgroup_storage_size);
            if largest.1 as u64 > g.max_binding() {
                println!("note       the largest tensor is split into {} bindings on this adapter", (largest.1 as u64).div_ceil(g.max_binding()));
            }
        }
        Err(e) => println!("adapter    none: {e}"),
    }
    Ok(())
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}
