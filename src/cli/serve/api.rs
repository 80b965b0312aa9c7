//! The server's request bodies (OpenAI's fields plus the diffusion sampler's), their checks and
//! their translation into the engine's `Request`, and OpenAI's error JSON. Nothing here touches
//! the GPU: a bad request is refused before it waits in the queue.

use super::worker::Work;
use super::{InfoKind, ModelInfo};
use crate::cli::generate::{self, SamplerArgs};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;
use unmask::request::{Prepared, Request};
use unmask::sampler::text::Message;
use unmask::sampler::{FamilySampler, Schedule};
use unmask::Error;

/// OpenAI's error JSON: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
    pub param: Option<String>,
    pub code: Option<&'static str>,
}

impl ApiError {
    pub fn bad(message: impl Into<String>, param: Option<&str>) -> Self {
        ApiError { status: StatusCode::BAD_REQUEST, kind: "invalid_request_error", message: message.into(), param: param.map(str::to_string), code: None }
    }
    pub fn new(status: StatusCode, kind: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, kind, message: message.into(), param: None, code: Some(code) }
    }
    pub fn json(&self) -> Value {
        serde_json::json!({"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.json())).into_response()
    }
}

impl From<Error> for ApiError {
    /// The engine's messages name CLI flags (`--steps`); the API's fields are `steps`.
    fn from(e: Error) -> Self {
        let message = api_names(&e.to_string()).replace("plus gen length", "plus `max_tokens`");
        match e {
            Error::Input(_) | Error::Limits(_) => {
                let param = message.split('`').nth(1).filter(|p| p.chars().all(|c| c.is_ascii_lowercase() || c == '_')).map(str::to_string);
                ApiError { param, ..ApiError::bad(message, None) }
            }
            Error::Gpu(_) | Error::Model { .. } => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "engine_error", message),
        }
    }
}

/// `--gen-length 7` → `` `max_tokens` 7 ``, `--block-length` → `` `block_length` ``.
fn api_names(m: &str) -> String {
    let mut out = String::new();
    let mut rest = m;
    while let Some(i) = rest.find("--") {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 2..];
        let n = tail.find(|c: char| !(c.is_ascii_lowercase() || c == '-')).unwrap_or(tail.len());
        let name = match &tail[..n] {
            "gen-length" => "max_tokens".to_string(),
            "prompt" => "prompt".to_string(),
            f => f.replace('-', "_"),
        };
        out.push_str(&format!("`{name}`"));
        rest = &tail[n..];
    }
    out + rest
}

/// A request body: OpenAI's chat/completions fields, the infill's, and the sampler's extras.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Body {
    pub model: Option<String>,
    pub messages: Option<Vec<RawMessage>>,
    /// /v1/completions: a string, a one-string list, or token ids.
    pub prompt: Option<Value>,
    /// /v1/infill: text with `[MASK]` / `<mask:N>` spans.
    pub text: Option<String>,
    pub span_length: Option<usize>,
    pub max_tokens: Option<usize>,
    pub max_completion_tokens: Option<usize>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub top_k: Option<usize>,
    pub seed: Option<u64>,
    pub stop: Option<Value>,
    pub stream: bool,
    pub n: Option<usize>,
    pub steps: Option<usize>,
    pub block_length: Option<usize>,
    pub remasking: Option<String>,
    pub schedule: Option<String>,
    pub threshold: Option<f32>,
    pub cache: Option<String>,
    pub cfg_scale: Option<f32>,
    pub eps: Option<f32>,
    pub alg_temp: Option<f32>,
    pub early_stop: Option<bool>,
    /// Stream every denoising step as `event: step` (with `stream`).
    pub denoising: bool,
}

#[derive(Deserialize)]
pub struct RawMessage {
    pub role: String,
    /// A string, or a list of `{"type": "text", "text": ...}` parts.
    #[serde(default)]
    pub content: Value,
}

#[derive(Clone, Copy)]
pub enum Kind {
    Chat,
    Completion,
    Infill,
}

/// Parses a body (a clear 400 for bad JSON, wrong types, unknown models).
pub fn parse(bytes: &[u8], info: &ModelInfo) -> Result<Body, ApiError> {
    let body: Body = serde_json::from_slice(bytes).map_err(|e| ApiError::bad(format!("the request body is not valid JSON for this endpoint: {e}"), None))?;
    if let Some(m) = body.model.as_deref().filter(|m| !m.is_empty() && *m != info.id) {
        let mut e = ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "model_not_found",
            format!("the model `{m}` is not served here: this server runs `{}` (see /v1/models)", info.id),
        );
        e.param = Some("model".into());
        return Err(e);
    }
    if body.n.is_some_and(|n| n != 1) {
        return Err(ApiError::bad("`n` must be 1: the server makes one answer per request", Some("n")));
    }
    Ok(body)
}

/// The GPU's work for `body` at `kind`, tokenized with `info`'s tokenizer and checked against
/// the positions the server planned for; and the most answer tokens to show.
pub fn prepare(body: &Body, kind: Kind, info: &ModelInfo, default_max_tokens: usize) -> Result<(Work, usize), ApiError> {
    let max_tokens = body.max_tokens.or(body.max_completion_tokens).unwrap_or(default_max_tokens);
    if max_tokens == 0 {
        return Err(ApiError::bad("`max_tokens` must be at least 1", Some("max_tokens")));
    }
    let config = match &info.kind {
        InfoKind::Masked(c) => c,
        InfoKind::Dg { .. } => return Ok((Work::Dg(super::dg::prepare(body, kind, info, max_tokens)?), max_tokens)),
    };
    let p = prepare_masked(body, kind, info, config, max_tokens)?;
    Ok((Work::Masked { canvas: p.canvas, options: p.options, ends: p.ends, infill: matches!(kind, Kind::Infill) }, max_tokens))
}

fn prepare_masked(body: &Body, kind: Kind, info: &ModelInfo, config: &unmask::model::ModelConfig, max_tokens: usize) -> Result<Prepared, ApiError> {
    let family = FamilySampler::of(config.family().name);
    // Any max_tokens works: past one block the canvas is padded to whole blocks of 32 (unless
    // the request sets block_length) and the answer is cut at max_tokens.
    let gen = match (&kind, body.block_length) {
        (Kind::Infill, _) => 0,
        (_, None) if !family.one_block && max_tokens > 32 => max_tokens.next_multiple_of(32),
        _ => max_tokens,
    };
    let s = sampler_args(body);
    let default_block = if matches!(kind, Kind::Infill) { unmask::sampler::SamplerOptions::ONE_BLOCK } else { gen.min(32) };
    let mut options = generate::options(&s, gen, default_block)?;
    generate::family_defaults(&mut options, &s, config.family());
    if body.steps.is_none() {
        // One token a step, as LLaDA's own chat demo runs (per block under LLaDA 2's schedule;
        // an infill's steps are capped at its masks).
        options.steps = match kind {
            Kind::Infill => unmask::sampler::text::MAX_SPAN,
            _ if options.schedule == Schedule::Block => options.block_length.min(gen).max(1),
            _ => gen.max(1),
        };
    }
    let mut req = Request { options, ..Default::default() };
    match kind {
        Kind::Chat => req.messages = Some(messages(body)?),
        Kind::Completion => match &body.prompt {
            Some(Value::String(p)) => req.prompt = Some(p.clone()),
            Some(Value::Array(a)) if a.len() == 1 && a[0].is_string() => req.prompt = a[0].as_str().map(str::to_string),
            Some(Value::Array(a)) if !a.is_empty() && a.iter().all(|v| v.as_u64().is_some_and(|t| t <= u32::MAX as u64)) => {
                req.prompt_tokens = Some(a.iter().filter_map(|v| v.as_u64()).map(|t| t as u32).collect())
            }
            _ => return Err(ApiError::bad("`prompt` must be a non-empty string (or one string in a list, or a list of token ids)", Some("prompt"))),
        },
        Kind::Infill => {
            req.infill = Some(
                body.text
                    .clone()
                    .or_else(|| body.prompt.as_ref().and_then(|p| p.as_str().map(str::to_string)))
                    .ok_or_else(|| ApiError::bad("give `text` with [MASK] or <mask:N> spans to fill", Some("text")))?,
            );
            req.span_length = Some(body.span_length.unwrap_or(4));
        }
    }
    let p = req.prepare(config, info.tokenizer.as_ref())?;
    let len = p.canvas.tokens.len();
    if len > info.ctx {
        return Err(ApiError::bad(
            format!(
                "this request needs {len} positions ({} prompt + {} answer), more than the {} this server planned GPU memory for: lower `max_tokens`, shorten the prompt, or restart the server with a larger --ctx",
                p.canvas.gen_start,
                len - p.canvas.gen_start,
                info.ctx
            ),
            Some("max_tokens"),
        ));
    }
    Ok(p)
}

fn sampler_args(b: &Body) -> SamplerArgs {
    SamplerArgs {
        model: None,
        steps: b.steps,
        block_length: b.block_length,
        temperature: b.temperature.unwrap_or(0.0),
        top_k: b.top_k,
        top_p: b.top_p.filter(|&p| p != 1.0),
        cfg_scale: b.cfg_scale.unwrap_or(0.0),
        remasking: b.remasking.clone(),
        schedule: b.schedule.clone(),
        eps: b.eps.unwrap_or(1e-3),
        alg_temp: b.alg_temp.unwrap_or(0.0),
        threshold: b.threshold,
        cache: b.cache.clone().unwrap_or_else(|| unmask::sampler::CacheMode::DEFAULT.name().to_string()),
        seed: b.seed.unwrap_or(0),
        no_early_stop: b.early_stop == Some(false),
        quant: None,
        pure: false,
        json: false,
        visual: false,
        cpu: false,
    }
}

pub fn messages(body: &Body) -> Result<Vec<Message>, ApiError> {
    let raw = body.messages.as_ref().ok_or_else(|| ApiError::bad("give `messages`: a list of {role, content}", Some("messages")))?;
    raw.iter()
        .map(|m| {
            let content = match &m.content {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                Value::Array(parts) => parts
                    .iter()
                    .map(|p| match (p.get("type").and_then(Value::as_str), p.get("text").and_then(Value::as_str)) {
                        (Some("text"), Some(t)) => Ok(t.to_string()),
                        (kind, _) => Err(ApiError::bad(
                            format!("message content parts of type {} are not supported: this model reads text only", kind.unwrap_or("?")),
                            Some("messages"),
                        )),
                    })
                    .collect::<Result<String, _>>()?,
                _ => return Err(ApiError::bad("a message's `content` must be a string or a list of text parts", Some("messages"))),
            };
            Ok(Message { role: m.role.clone(), content })
        })
        .collect()
}

/// `stop`: a string or a list of up to 4 strings.
pub fn stops(body: &Body) -> Result<Vec<String>, ApiError> {
    match &body.stop {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(a)) if a.len() <= 4 && a.iter().all(Value::is_string) => Ok(a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()),
        _ => Err(ApiError::bad("`stop` must be a string or a list of at most 4 strings", Some("stop"))),
    }
}
