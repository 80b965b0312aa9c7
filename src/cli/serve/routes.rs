//! The server's HTTP routes: OpenAI's /v1/chat/completions, /v1/completions and /v1/models,
//! plus /v1/infill and /health. A generation request is checked (`api.rs`), queued for the GPU
//! thread (429 when the queue is full), and answered as one JSON object or, with `stream`, as
//! Server-Sent Events in OpenAI's chunk format (and `event: step` records with `denoising`).

use super::api::{self, ApiError, Kind};
use super::worker::{now, CancelOnDrop, Event, Feed, Job, Jobs, Outcome, Work};
use super::{ModelInfo, Settings};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State as Axs};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as Sse, KeepAlive};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::TrySendError;
use std::sync::Arc;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

pub struct Inner {
    jobs: Jobs,
    info: Arc<ModelInfo>,
    settings: Settings,
    next_id: AtomicU64,
}

pub type State = Arc<Inner>;

pub fn state(jobs: Jobs, info: Arc<ModelInfo>, settings: Settings) -> State {
    Arc::new(Inner { jobs, info, settings, next_id: AtomicU64::new(1) })
}

pub fn router(st: State) -> Router {
    let limit = st.settings.max_body;
    Router::new()
        .route("/health", get(health))
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(|s, h, b| generate(s, h, b, Kind::Chat)))
        .route("/v1/completions", post(|s, h, b| generate(s, h, b, Kind::Completion)))
        .route("/v1/infill", post(|s, h, b| generate(s, h, b, Kind::Infill)))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                "not_found",
                "no such endpoint: the API is /v1/chat/completions, /v1/completions, /v1/infill, /v1/models and /health",
            )
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request_error",
                "method_not_allowed",
                "wrong HTTP method for this endpoint (generation endpoints take POST with a JSON body)",
            )
        })
        .layer(DefaultBodyLimit::max(limit))
        .with_state(st)
}

async fn health(Axs(st): Axs<State>) -> Json<Value> {
    Json(json!({"status": "ok", "model": st.info.id, "running": st.jobs.running.load(Ordering::SeqCst), "queued": st.jobs.queued.load(Ordering::SeqCst)}))
}

async fn models(Axs(st): Axs<State>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    auth(&st, &headers)?;
    let i = &st.info;
    Ok(Json(json!({"object": "list", "data": [{
        "id": i.id, "object": "model", "created": i.created, "owned_by": "unmask",
        "meta": {"family": i.family, "context": i.ctx, "vocab_size": i.vocab, "adapter": i.adapter}
    }]})))
}

fn auth(st: &Inner, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(key) = &st.settings.api_key else { return Ok(()) };
    let given = headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if given == Some(key.as_str()) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_request_error",
        "invalid_api_key",
        "missing or wrong API key: send `Authorization: Bearer <key>` with the key the server was started with (--api-key)",
    ))
}

async fn generate(Axs(st): Axs<State>, headers: HeaderMap, body: Result<Bytes, BytesRejection>, kind: Kind) -> Response {
    match start(&st, &headers, body, kind).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("request refused ({}): {}", e.status.as_u16(), e.message);
            e.into_response()
        }
    }
}

/// What a finished generation is answered with (the ids and names of its JSON).
struct Reply {
    id: String,
    created: u64,
    model: String,
    kind: Kind,
    /// Mask runs of an infill (start, length), for its `fills`.
    spans: Vec<(usize, usize)>,
}

async fn start(st: &State, headers: &HeaderMap, body: Result<Bytes, BytesRejection>, kind: Kind) -> Result<Response, ApiError> {
    auth(st, headers)?;
    let bytes = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "request_too_large",
            format!("the request body is over {} bytes (--max-body)", st.settings.max_body),
        ),
        _ => ApiError::bad(format!("cannot read the request body: {}", e.body_text()), None),
    })?;
    let body = api::parse(&bytes, &st.info)?;
    let stops = api::stops(&body)?;
    let (work, limit) = api::prepare(&body, kind, &st.info, st.settings.default_max_tokens)?;
    let spans = match &work {
        Work::Masked { canvas: c, infill: true, .. } => mask_runs(&c.tokens, c.mask),
        _ => vec![],
    };
    let infill = matches!(kind, Kind::Infill);
    let (events, rx) = unbounded_channel();
    let cancel = Arc::new(AtomicBool::new(false));
    let steps = body.denoising && body.stream;
    let job = Job { work, feed: Feed { stops, limit, steps, events, cancel: cancel.clone() } };
    st.jobs.queued.fetch_add(1, Ordering::SeqCst);
    if let Err(e) = st.jobs.tx.try_send(job) {
        st.jobs.queued.fetch_sub(1, Ordering::SeqCst);
        return Err(match e {
            TrySendError::Full(_) => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "server_error",
                "server_busy",
                "the server's queue is full: retry later (or start it with a larger --queue)",
            ),
            TrySendError::Disconnected(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", "engine_stopped", "the GPU thread has stopped: restart the server")
            }
        });
    }
    let guard = CancelOnDrop(cancel);
    let n = st.next_id.fetch_add(1, Ordering::SeqCst);
    let prefix = match kind {
        Kind::Chat => "chatcmpl",
        Kind::Completion => "cmpl",
        Kind::Infill => "infill",
    };
    let reply = Reply { id: format!("{prefix}-{:x}{n:04}", st.info.created), created: now(), model: st.info.id.clone(), kind, spans };
    if body.stream && !infill {
        return Ok(stream(rx, guard, reply).into_response());
    }
    let outcome = wait(rx).await?;
    drop(guard);
    eprintln!("{} done: {} tokens, {} steps in {:.0} ms", reply.id, outcome.completion_tokens, outcome.steps, outcome.ms);
    Ok(Json(reply.whole(&outcome, &st.info)?).into_response())
}

/// Runs of `mask` in `tokens`: (start, length).
fn mask_runs(tokens: &[u32], mask: u32) -> Vec<(usize, usize)> {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (i, &t) in tokens.iter().enumerate() {
        if t != mask {
            continue;
        }
        match runs.last_mut() {
            Some((s, l)) if *s + *l == i => *l += 1,
            _ => runs.push((i, 1)),
        }
    }
    runs
}

/// The job's outcome, skipping the text events a non-streamed request does not need.
async fn wait(mut rx: UnboundedReceiver<Event>) -> Result<Outcome, ApiError> {
    while let Some(e) = rx.recv().await {
        if let Event::Done(r) = e {
            return Ok(r?);
        }
    }
    Err(ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "engine_stopped", "the GPU thread stopped during the request"))
}

impl Reply {
    fn usage(o: &Outcome) -> Value {
        json!({"prompt_tokens": o.prompt_tokens, "completion_tokens": o.completion_tokens, "total_tokens": o.prompt_tokens + o.completion_tokens})
    }

    /// The diffusion run's own figures, beside OpenAI's fields.
    fn diffusion(o: &Outcome) -> Value {
        json!({"steps": o.steps, "ms": o.ms})
    }

    /// A non-streamed answer.
    fn whole(&self, o: &Outcome, info: &ModelInfo) -> Result<Value, ApiError> {
        let (id, created, model, finish) = (&self.id, self.created, &self.model, o.finish.name());
        Ok(match self.kind {
            Kind::Chat => json!({"id": id, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": o.text}, "logprobs": null, "finish_reason": finish}],
                "usage": Self::usage(o), "unmask": Self::diffusion(o)}),
            Kind::Completion => json!({"id": id, "object": "text_completion", "created": created, "model": model,
                "choices": [{"index": 0, "text": o.text, "logprobs": null, "finish_reason": finish}],
                "usage": Self::usage(o), "unmask": Self::diffusion(o)}),
            Kind::Infill => {
                let tok = info.tokenizer.as_ref().ok_or_else(|| ApiError::bad("this model has no tokenizer", None))?;
                let fills = self.spans.iter().map(|&(s, l)| tok.decode(&o.tokens[s..s + l], false)).collect::<unmask::Result<Vec<_>>>()?;
                json!({"id": id, "object": "infill", "created": created, "model": model, "text": o.text, "fills": fills,
                    "usage": Self::usage(o), "unmask": Self::diffusion(o)})
            }
        })
    }

    /// One streamed chunk carrying `text` (and the finish reason on the last).
    fn chunk(&self, text: Option<&str>, finish: Option<&str>, first: bool) -> Value {
        let (id, created, model) = (&self.id, self.created, &self.model);
        match self.kind {
            Kind::Completion => json!({"id": id, "object": "text_completion", "created": created, "model": model,
                "choices": [{"index": 0, "text": text.unwrap_or(""), "logprobs": null, "finish_reason": finish}]}),
            _ => {
                let mut delta = serde_json::Map::new();
                if first {
                    delta.insert("role".into(), "assistant".into());
                }
                if let Some(t) = text {
                    delta.insert("content".into(), t.into());
                }
                json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
            }
        }
    }
}

/// The SSE answer: a chunk per piece of final text, `event: step` records when asked, the last
/// chunk with the finish reason and usage, then `data: [DONE]`. Dropping the stream (the client
/// went away) drops the guard, which cancels the generation.
fn stream(rx: UnboundedReceiver<Event>, guard: CancelOnDrop, reply: Reply) -> impl IntoResponse {
    struct S {
        rx: UnboundedReceiver<Event>,
        _guard: CancelOnDrop,
        reply: Reply,
        first: bool,
        over: bool,
    }
    let s = S { rx, _guard: guard, reply, first: true, over: false };
    let events = futures_util::stream::unfold(s, |mut s| async move {
        if s.over {
            return None;
        }
        let sse = if s.first {
            s.first = false;
            Sse::default().data(s.reply.chunk(matches!(s.reply.kind, Kind::Chat).then_some(""), None, true).to_string())
        } else {
            match s.rx.recv().await {
                Some(Event::Text(t)) => Sse::default().data(s.reply.chunk(Some(&t), None, false).to_string()),
                Some(Event::Step(v)) => Sse::default().event("step").data(v.to_string()),
                Some(Event::Done(Ok(o))) => {
                    eprintln!("{} streamed: {} tokens, {} steps in {:.0} ms", s.reply.id, o.completion_tokens, o.steps, o.ms);
                    let mut last = s.reply.chunk(None, Some(o.finish.name()), false);
                    last["usage"] = Reply::usage(&o);
                    last["unmask"] = Reply::diffusion(&o);
                    s.rx.close();
                    Sse::default().data(last.to_string())
                }
                Some(Event::Done(Err(e))) => {
                    s.rx.close();
                    Sse::default().data(ApiError::from(e).json().to_string())
                }
                None if !s.over => {
                    s.over = true;
                    Sse::default().data("[DONE]")
                }
                None => return None,
            }
        };
        Some((Ok::<_, Infallible>(sse), s))
    });
    axum::response::Sse::new(events).keep_alive(KeepAlive::default())
}
