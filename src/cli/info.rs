//! `unmask info MODEL`: what a model file holds (read from its headers only, so it is instant
//! even for a 16 GB checkpoint) and the memory plan for this machine's GPU.

use clap::Args;
use std::path::PathBuf;
use unmask::engine::{human, Limits, MemoryPlan, SessionConfig};
use unmask::gpu::kernels::KernelVariant;
use unmask::gpu::Gpu;
use unmask::model::files::open_path;
use unmask::model::{Key, Role};
use unmask::{Error, Result};

#[derive(Args)]
pub struct InfoArgs {
    /// A model directory (config.json + model.safetensors or shards, tokenizer.json) or a .gguf file.
    pub model: PathBuf,
    /// Plan for weights converted to this format at load (q4_0, q8_0, f16, bf16, f32).
    #[arg(long)]
    pub quant: Option<String>,
    /// With --quant q4_0: plan the embedding and LM head in Q4_0 too.
    #[arg(long)]
    pub pure: bool,
    /// Plan for a canvas (prompt + generation) of this many positions [default: the model's
    /// context, at most 512].
    #[arg(long)]
    pub canvas: Option<usize>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: InfoArgs) -> Result<()> {
    if super::dgemma::is_dgemma(&a.model) {
        return super::dgemma::info(&a.model, a.quant.as_deref());
    }
    let files = open_path(&a.model)?;
    let (index, tokenizer) = files.index()?;
    let c = &index.config;
    let quant = super::model::parse_quant(a.quant.as_deref(), a.pure)?;
    let canvas = a.canvas.unwrap_or(c.max_sequence_length.min(512)).max(1);
    if canvas > c.max_sequence_length {
        return Err(Error::Input(format!("--canvas {canvas} is longer than the model's context of {}", c.max_sequence_length)));
    }
    let mut by_dtype = std::collections::BTreeMap::<&str, u64>::new();
    for (_, _, t) in index.tensors.iter() {
        *by_dtype.entry(t.dtype.name()).or_default() += t.bytes();
    }
    let n_tensors = index.tensors.iter().count();
    let total: u64 = by_dtype.values().sum();
    let paths = files.files();
    let file_bytes: u64 = paths.iter().map(|f| f.1).sum();
    let largest = index.tensors.iter().max_by_key(|(_, _, t)| t.bytes()).map(|(_, _, t)| (t.name.clone(), t.bytes())).unwrap_or_default();
    // The adapter as a run would open it, the UNMASK_* switches applied: a bad switch is an
    // error, no adapter a line of the report.
    let gpu = match super::model::open_gpu() {
        Err(Error::Input(e)) => return Err(Error::Input(e)),
        r => r,
    };
    let limits = gpu.as_ref().map(|g| g.plan_limits()).unwrap_or(Limits { max_binding: u64::MAX, max_buffer: u64::MAX, wide_tiles: true });
    let kernels = gpu.as_ref().ok().map(|g| super::model::kernels(g)).transpose()?.unwrap_or(KernelVariant::Tiled);
    let kv = gpu.as_ref().ok().map(|g| super::model::kv(g)).transpose()?.unwrap_or_default();
    let chosen = gpu.as_ref().ok().map(|g| Chosen::of(g, kernels, kv, c));
    let plan = MemoryPlan::new(&index, quant, &SessionConfig { kv, ..SessionConfig::new(canvas, kernels) }, limits)?;
    let verdict = match &gpu {
        Ok(_) => plan.check(limits, None).map(|_| "fits the adapter's limits".to_string()).unwrap_or_else(|e| e.to_string()),
        Err(e) => e.to_string(),
    };
    let tok_vocab = tokenizer.as_ref().ok().and_then(|t| t.as_ref()).map(|t| t.vocab_size());
    let tok_problem = tokenizer.as_ref().err().map(|e| e.to_string());
    let params = index.params();
    if a.json {
        let v = serde_json::json!({
            "model": a.model.display().to_string(),
            "format": files.format,
            "files": paths.iter().map(|(p, b)| serde_json::json!({"path": p.display().to_string(), "bytes": b})).collect::<Vec<_>>(),
            "family": c.family,
            "config": c,
            "params": params,
            "rope": format!("{:?}", index.rope),
            "tensors": n_tensors,
            "bytes_by_dtype": by_dtype,
            "weight_bytes": total,
            "largest_tensor": {"name": largest.0, "bytes": largest.1},
            "tokenizer_vocab": tok_vocab,
            "tokenizer_error": tok_problem,
            "plan": plan,
            "plan_verdict": verdict,
            "adapter": gpu.as_ref().map(|g| serde_json::to_value(&g.report).unwrap()).unwrap_or_else(|e| serde_json::json!({"error": e.to_string()})),
            "kernels": chosen,
        });
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
        return Ok(());
    }
    println!("model      {} ({}, {} file{}, {})", a.model.display(), files.format, paths.len(), if paths.len() == 1 { "" } else { "s" }, human(file_bytes));
    let fam = c.family();
    println!("family     {} ({} params)  shifted logits {}", c.family, params_human(params), yes(c.shift_logits));
    let has = |r: Role| index.tensors.iter().any(|(k, _, _)| k.role == r);
    let moe_layers = (0..c.n_layers).filter(|&i| index.tensors.get(Key::at(i, Role::Router)).is_some()).count();
    println!(
        "layers     {}  d_model {}  heads {} (kv {}, head_dim {})  qkv bias {}  qk-norm {}",
        c.n_layers,
        c.d_model,
        c.n_heads,
        c.n_kv_heads,
        c.head_dim(),
        yes(has(Role::QBias)),
        yes(has(Role::QNorm))
    );
    if c.is_moe() {
        println!(
            "ffn        {moe_layers} MoE layers: {} experts, top-{} (weights {}{}), expert hidden {}{}; {} dense (mlp {})",
            c.n_experts,
            c.n_experts_used,
            match (c.routing.sigmoid, c.norm_topk_prob) {
                (true, _) => "sigmoid scores, renormalised",
                (false, true) => "softmax, renormalised",
                (false, false) => "as the softmax gives them",
            },
            routing_extra(&c.routing, has(Role::ExpertBias)),
            c.expert_hidden_size,
            if c.n_shared_experts > 0 { format!(", {} shared", c.n_shared_experts) } else { String::new() },
            c.n_layers - moe_layers,
            c.mlp_hidden_size
        );
    } else {
        println!("ffn        dense SwiGLU, mlp {}", c.mlp_hidden_size);
    }
    let f = unmask::sampler::FamilySampler::of(fam.name);
    println!(
        "sampler    {} schedule, {:?} remasking{}{} (the family's reference; override with --schedule, --remasking, --block-length, --threshold)",
        f.schedule.name(),
        f.remasking,
        if f.one_block { ", one block" } else { ", blocks of 32" },
        f.threshold.map(|t| format!(", threshold {t}")).unwrap_or_default()
    );
    if c.attention_block > 0 {
        println!("attention  block-causal in blocks of {}; RoPE on {} of {} head dims", c.attention_block, c.rope_dims, c.head_dim);
    } else if c.rope_dims != c.head_dim {
        println!("attention  RoPE on {} of {} head dims", c.rope_dims, c.head_dim);
    }
    println!("vocab      {}  context {}  rope θ {} ({:?})  rms eps {}", c.vocab_size, c.max_sequence_length, c.rope_theta, index.rope, c.rms_norm_eps);
    let id = |v: Option<u32>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    println!("tokens     mask {}  bos {}  eos {}  eot {}", c.mask_token_id, id(c.bos_token_id), id(c.eos_token_id), id(c.eot_token_id));
    let dt: Vec<String> = by_dtype.iter().map(|(d, b)| format!("{d} {}", human(*b))).collect();
    println!("tensors    {n_tensors}  ({}; total {})", dt.join(", "), human(total));
    println!("largest    {} ({})", largest.0, human(largest.1));
    match (tok_vocab, &tok_problem) {
        (Some(v), _) => println!("tokenizer  {}, {v} tokens", if matches!(files.tokenizer, Ok(Some(_))) { "tokenizer.json" } else { "embedded in the GGUF" }),
        (None, Some(e)) => println!("tokenizer  unusable: {e} (put a tokenizer.json beside the model, or give token ids)"),
        (None, None) => println!("tokenizer  none found (put tokenizer.json beside the model to use text prompts)"),
    }
    match &gpu {
        Ok(g) => {
            let r = &g.report;
            println!(
                "adapter    {} ({}, {})  shader-f16 {}  subgroups {}  cooperative matrices {}",
                r.name,
                r.backend,
                r.device_type,
                yes(r.shader_f16),
                yes(r.subgroups),
                yes(r.cooperative_matrix)
            );
            println!(
                "limits     storage binding {}  buffer {}  workgroup {} invocations, {} bytes shared",
                human(r.max_storage_buffer_binding_size),
                human(r.max_buffer_size),
                r.max_compute_invocations_per_workgroup,
                r.max_compute_workgroup_storage_size
            );
        }
        Err(e) => println!("adapter    none: {e}"),
    }
    if let Some(k) = &chosen {
        println!("kernels    {}", k.line());
    }
    println!("plan       {}", plan.summary());
    println!("verdict    {verdict}");
    Ok(())
}

/// "6.82 M", "8.02 B", as llama.cpp prints `model params`.
fn params_human(n: u64) -> String {
    let f = n as f64;
    if f >= 1e9 {
        format!("{:.2} B", f / 1e9)
    } else if f >= 1e6 {
        format!("{:.2} M", f / 1e6)
    } else if f >= 1e3 {
        format!("{:.2} K", f / 1e3)
    } else {
        n.to_string()
    }
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// The parts of a router beyond a plain softmax, for `info`.
fn routing_extra(r: &unmask::model::config::Routing, bias: bool) -> String {
    let mut parts = Vec::new();
    if r.scale != 1.0 {
        parts.push(format!(" × {}", r.scale));
    }
    if r.groups > 1 {
        parts.push(format!("; best {} of {} groups", r.topk_groups, r.groups));
    }
    if bias {
        parts.push("; expert bias".into());
    }
    parts.concat()
}

/// The kernels a run of this model would choose on this adapter (its layout, the matmuls'
/// core and fusion, the attention kernel at the model's heads, the experts' kernel, K/V), for
/// `info`.
#[derive(serde::Serialize)]
struct Chosen {
    layout: &'static str,
    coop: bool,
    fused: bool,
    split_matmul: bool,
    register_tile: usize,
    attention: &'static str,
    /// The grouped expert matmul's shader (MoE models only).
    experts: Option<&'static str>,
    kv: &'static str,
}

impl Chosen {
    fn of(g: &Gpu, kernels: KernelVariant, kv: unmask::gpu::kernels::KvType, c: &unmask::model::ModelConfig) -> Chosen {
        let tiled = kernels == KernelVariant::Tiled;
        Chosen {
            layout: kernels.name(),
            coop: tiled && g.coop_matmul(),
            fused: g.fuses(kernels),
            split_matmul: tiled && g.split_matmul(),
            register_tile: g.register_tile(),
            attention: super::model::attention_shader(g, kernels, c),
            experts: c.is_moe().then(|| g.moe_shader(kernels, g.folds_norms(kernels))),
            kv: kv.name(),
        }
    }

    fn line(&self) -> String {
        let mut m = vec![match (self.layout, self.coop) {
            ("tiled", true) => "matmuls on cooperative matrices".to_string(),
            ("tiled", false) => format!("matmuls on f32 ALUs, {0}×{0} a thread", self.register_tile),
            _ => "matmul_cpu_lanes.wgsl".to_string(),
        }];
        if self.fused {
            m.push("Q/K/V and gate/up fused".into());
        }
        if self.split_matmul {
            m.push("split across k for few rows".into());
        }
        let experts = self.experts.map(|e| format!("; experts {e}.wgsl")).unwrap_or_default();
        format!("{} layout: {}; attention {}.wgsl{experts}; K/V {}", self.layout, m.join(", "), self.attention, self.kv)
    }
}
