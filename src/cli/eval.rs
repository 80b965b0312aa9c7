//! `unmask eval`: the demo model's held-out tasks through the real engine and sampler, with
//! accuracy per task, as a table or JSON.

use super::generate::{options, SamplerArgs};
use super::model;
use clap::Args;
use std::path::PathBuf;
use unmask::eval::{is_correct, parse_items, respond, Item, TaskScore};
use unmask::{Error, Result};

#[derive(Args)]
pub struct EvalArgs {
    /// Folder of task files (*.jsonl with {task, prompt, answer} lines) [default: the model's eval/ folder, else models/demo/eval].
    #[arg(long)]
    pub eval_dir: Option<PathBuf>,
    /// Only these tasks (comma-separated file stems, e.g. arithmetic,reversal_forward).
    #[arg(long, value_delimiter = ',')]
    pub tasks: Option<Vec<String>>,
    /// At most this many items per task (the first ones).
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Masked positions for each answer.
    #[arg(long, default_value_t = 64)]
    pub gen_length: usize,
    /// Print each item's response as it is scored.
    #[arg(long)]
    pub verbose: bool,
    #[command(flatten)]
    pub s: SamplerArgs,
}

fn eval_dir(a: &EvalArgs) -> Result<PathBuf> {
    if let Some(d) = &a.eval_dir {
        return Ok(d.clone());
    }
    let m = model::resolve(a.s.model.clone())?;
    let beside = if m.is_dir() { m.join("eval") } else { m.with_file_name("demo").join("eval") };
    let cands = [beside, PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/demo/eval")];
    cands.iter().find(|p| p.is_dir()).cloned().ok_or_else(|| {
        Error::Input(format!(
            "no eval folder found (looked at {}): pass --eval-dir",
            cands.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        ))
    })
}

pub fn run(a: EvalArgs) -> Result<()> {
    let opts = options(&a.s, a.gen_length, a.gen_length.min(32))?;
    opts.validate()?;
    let dir = eval_dir(&a)?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| Error::model(dir.display().to_string(), format!("cannot list: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    let stem = |p: &PathBuf| p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    if let Some(t) = &a.tasks {
        if let Some(missing) = t.iter().find(|t| !files.iter().any(|f| &stem(f) == *t)) {
            return Err(Error::Input(format!("--tasks: no {missing}.jsonl in {}", dir.display())));
        }
        files.retain(|f| t.contains(&stem(f)));
    }
    let canvas = |c: &unmask::model::ModelConfig| c.max_sequence_length.min(opts.gen_length + 256);
    let loaded = model::load(a.s.model.clone(), a.s.quant.as_deref(), a.s.pure, &opts, canvas)?;
    // One session for every item: its K/V start over whenever the canvas length changes.
    let mut session = loaded.session(canvas(&loaded.config), &opts)?;
    let tok = loaded.tokenizer.as_ref().ok_or_else(|| Error::Input("eval needs a model with a tokenizer".into()))?;
    let start = unmask::clock::now_ms();
    let (mut passes, mut steps) = (0, 0);
    let mut scores = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).map_err(|e| Error::model(f.display().to_string(), format!("cannot read: {e}")))?;
        let items: Vec<Item> = parse_items(&f.display().to_string(), &text)?.into_iter().take(a.limit).collect();
        let mut score = TaskScore { task: stem(f), ..Default::default() };
        for item in &items {
            let (response, g) = pollster::block_on(respond(&mut session, &loaded.config, tok, item, &opts))?;
            passes += g.model_passes;
            steps += g.steps;
            let ok = is_correct(item, &response);
            if a.verbose {
                eprintln!("[{}] {} → {:?} (want {})", if ok { "ok" } else { "xx" }, item.prompt, response.trim(), item.answer);
            }
            score.n += 1;
            score.correct += ok as usize;
        }
        scores.push(score);
    }
    let ms = unmask::clock::now_ms() - start;
    if a.s.json {
        let v = serde_json::json!({
            "model": model::resolve(a.s.model.clone())?.display().to_string(),
            "options": opts,
            "quant": a.s.quant,
            "tasks": scores.iter().map(|s| serde_json::json!({"task": s.task, "n": s.n, "correct": s.correct, "accuracy": s.accuracy()})).collect::<Vec<_>>(),
            "model_passes": passes,
            "steps": steps,
            "total_ms": ms,
            "adapter": loaded.model.gpu.report.name,
        });
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
    } else {
        println!("{:<22} {:>5} {:>8} {:>9}", "task", "n", "correct", "accuracy");
        for s in &scores {
            println!("{:<22} {:>5} {:>8} {:>8.1}%", s.task, s.n, s.correct, s.accuracy());
        }
        println!("{} model passes, {} steps, {:.1} s on {}", passes, steps, ms / 1000.0, loaded.model.gpu.report.name);
    }
    Ok(())
}
