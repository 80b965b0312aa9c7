//! `unmask serve`: a local OpenAI-compatible HTTP server on one model. The GPU work happens on
//! one worker thread (`worker.rs`) that owns the model and runs queued requests one at a time,
//! each in its own session; the HTTP side (`routes.rs`, axum on tokio) parses and checks
//! requests (`api.rs`), queues them and answers in OpenAI's JSON or Server-Sent Events.

mod api;
mod dg;
mod routes;
mod worker;

use clap::Args;
use std::path::PathBuf;
use std::sync::Arc;
use unmask::{Error, Result};

#[derive(Args)]
pub struct ServeArgs {
    /// Model directory (config.json + safetensors + tokenizer.json) or .gguf file [default: the bundled demo model].
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Address to listen on. The default answers this machine only; 0.0.0.0 opens the server
    /// to the network (set --api-key then).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0: any free port; the address is printed on stdout).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// The longest canvas (prompt + answer tokens) a request may use; the GPU memory for it is
    /// planned when the model loads [default: the model's context, at most 4096].
    #[arg(long)]
    pub ctx: Option<usize>,
    /// Requests that may wait while one runs; more are answered 429 (server busy).
    #[arg(long, default_value_t = 8)]
    pub queue: usize,
    /// The answer length when a request gives no max_tokens.
    #[arg(long, default_value_t = 128)]
    pub default_max_tokens: usize,
    /// Require `Authorization: Bearer KEY` on every /v1 request.
    #[arg(long)]
    pub api_key: Option<String>,
    /// The model's name in /v1/models and the `model` field requests must match (or omit)
    /// [default: the model file or directory name].
    #[arg(long)]
    pub alias: Option<String>,
    /// Convert the weights while loading: f32, f16, bf16, q8_0 or q4_0.
    #[arg(long)]
    pub quant: Option<String>,
    /// The largest request body in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    pub max_body: usize,
}

/// What the HTTP side knows of the loaded model: enough to check and tokenize a request before
/// it waits in the queue.
pub struct ModelInfo {
    pub id: String,
    /// The family's name (`llada`, `dream`, ..., `diffusion-gemma`).
    pub family: &'static str,
    pub vocab: usize,
    pub kind: InfoKind,
    pub tokenizer: Option<unmask::model::TextTokenizer>,
    /// The longest canvas a request may use.
    pub ctx: usize,
    pub adapter: String,
    pub created: u64,
}

pub enum InfoKind {
    Masked(unmask::model::ModelConfig),
    /// DiffusionGemma: its sampler settings (from the checkpoint) and canvas.
    Dg {
        settings: unmask::dgemma::sampler::DgSettings,
        canvas: usize,
        max_positions: usize,
    },
}

pub struct Settings {
    pub api_key: Option<String>,
    pub default_max_tokens: usize,
    pub max_body: usize,
}

pub fn run(a: ServeArgs) -> Result<()> {
    if a.queue == 0 {
        return Err(Error::Input("--queue must be at least 1".into()));
    }
    if a.ctx == Some(0) {
        return Err(Error::Input("--ctx must be at least 1".into()));
    }
    let path = super::model::resolve(a.model.clone())?;
    let id = a.alias.clone().unwrap_or_else(|| model_id(&path));
    let (jobs, info) = worker::start(path, a.quant.clone(), a.ctx, a.queue, id)?;
    let settings = Settings { api_key: a.api_key.clone(), default_max_tokens: a.default_max_tokens, max_body: a.max_body };
    let state = routes::state(jobs, Arc::new(info), settings);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Input(format!("cannot start the server's runtime: {e}")))?;
    rt.block_on(async move {
        let addr = format!("{}:{}", a.host, a.port);
        let listener = tokio::net::TcpListener::bind(&addr)
            .await
            .map_err(|e| Error::Input(format!("cannot listen on {addr}: {e} (is another server on that port? try --port)")))?;
        let local = listener.local_addr().map_err(|e| Error::Input(e.to_string()))?;
        println!("listening on http://{local}");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        eprintln!("OpenAI-compatible API at http://{local}/v1 (chat/completions, completions, infill, models); Ctrl-C stops");
        axum::serve(listener, routes::router(state))
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(|e| Error::Input(format!("the server stopped: {e}")))
    })
}

/// The model's name: its file name without `.gguf`, or its directory's name.
fn model_id(path: &std::path::Path) -> String {
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "model".into());
    name.strip_suffix(".gguf").map(str::to_string).unwrap_or(name)
}
