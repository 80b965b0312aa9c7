// The engine API for web pages. `createEngine()` starts the engine in a Web Worker (worker.js,
// speaking protocol.js) and returns an object that loads and plans models, answers in OpenAI's
// shapes (`chat.completions.create`, `completions.create`; streamed as async iterators of
// chunks), infills, reports every denoising step (`onStep`) and cancels. The page (app.js) uses
// only this; examples/chat.html shows the minimum.
//
//   import { createEngine, bundledModel } from './unmask.js';
//   const engine = await createEngine({ worker: true });
//   await engine.load(await bundledModel(), { onProgress: (p) => console.log(p.label, p.loaded) });
//   for await (const chunk of await engine.chat.completions.create({ messages, stream: true }))
//     out.textContent += chunk.choices[0].delta.content ?? '';
//
// Failures reject with an UnmaskError: `kind` ('input', 'model', 'gpu', 'limits', 'cancelled',
// 'crashed') and `field` (the option at fault, when known). Cancelling (`engine.cancel()`, or an
// AbortSignal as `signal`): the OpenAI-shaped calls and `infill` reject with kind 'cancelled';
// the lower-level `generate` and `remask` resolve with the engine's result marked
// `cancelled: true` (the canvas as far as it got). After a 'crashed' error, start a new engine.

import { errorInfo } from './protocol.js';

export class UnmaskError extends Error {
  constructor(info) {
    super(info.message);
    this.name = 'UnmaskError';
    this.kind = info.kind;
    this.field = info.field ?? null;
  }
}

const fail = (kind, message, field = null) => new UnmaskError(errorInfo(kind, message, field));

// The model bundled with the page (models/manifest.json beside this file) as a source for
// `load`, or null when there is none.
export async function bundledModel() {
  try {
    const resp = await fetch(new URL('models/manifest.json', import.meta.url), { cache: 'no-cache' });
    if (!resp.ok) return null;
    const entry = ((await resp.json()).bundled || [])[0];
    return entry ? { kind: 'bundled', entry } : null;
  } catch {
    return null;
  }
}

// Starts an engine and waits until it is ready (the wasm compiled, a GPU adapter found).
export async function createEngine({ worker = true } = {}) {
  if (worker !== true) throw fail('input', 'the engine runs in a Web Worker: createEngine({ worker: true })', 'worker');
  const url = new URL('worker.js', import.meta.url);
  // Test-only fault injection (www/testhooks.js) when the page itself was opened with ?test-hooks.
  if (new URLSearchParams(location.search).has('test-hooks')) url.search = '?test-hooks';
  const engine = new Engine(new Worker(url, { type: 'module' }));
  try {
    await engine.ready;
  } catch (e) {
    engine.terminate();
    throw e;
  }
  return engine;
}

// A model source as the worker reads it: a URL (string or URL object, resolved against the
// page), File objects (a FileList or an array), a `bundledModel()` result or a manifest entry,
// or a source object (protocol.js's ModelSource) as it is.
function toSource(source, keep) {
  if (typeof source === 'string' || source instanceof URL) return { kind: 'url', url: new URL(source, location.href).href, keep: !!keep };
  if (source instanceof File) return { kind: 'files', files: [source], keep: !!keep };
  if ((typeof FileList !== 'undefined' && source instanceof FileList) || Array.isArray(source)) return { kind: 'files', files: Array.from(source), keep: !!keep };
  if (source && typeof source.kind === 'string') return keep === undefined ? source : { ...source, keep };
  if (source && source.files && source.format) return { kind: 'bundled', entry: source };
  throw fail('input', 'give a model as a URL, File objects, or bundledModel()', 'source');
}

// Options without the keys left undefined (the engine takes a missing key as its default).
const defined = (o) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

// An async iterator fed by pushes: what a streamed call returns.
function channel(onBreak) {
  const items = [];
  let wake = null, over = false, error = null;
  const poke = () => { if (wake) { wake(); wake = null; } };
  return {
    push(x) { items.push(x); poke(); },
    end(e) { over = true; error = e || null; poke(); },
    async *[Symbol.asyncIterator]() {
      try {
        for (;;) {
          if (items.length) yield items.shift();
          else if (over) { if (error) throw error; return; }
          else await new Promise((r) => { wake = r; });
        }
      } finally {
        if (!over) onBreak(); // the consumer stopped reading: cancel the generation
      }
    },
  };
}

// OpenAI-shaped results: `kind` 'chat' (chat.completion) or 'text' (text_completion).
function usage(r) {
  return { prompt_tokens: r.prompt_tokens, completion_tokens: r.completion_tokens, total_tokens: r.prompt_tokens + r.completion_tokens };
}
function stats(r) {
  return { steps: r.steps, model_passes: r.model_passes, ms: r.ms, tokens_per_second: r.tokens_per_second };
}
function completion(kind, head, r) {
  const choice = kind === 'chat'
    ? { index: 0, message: { role: 'assistant', content: r.content }, logprobs: null, finish_reason: r.finish_reason }
    : { index: 0, text: r.content, logprobs: null, finish_reason: r.finish_reason };
  return { ...head, object: kind === 'chat' ? 'chat.completion' : 'text_completion', choices: [choice], usage: usage(r), unmask: stats(r) };
}
function chunk(kind, head, piece, finish = null) {
  const choice = kind === 'chat' ? { index: 0, delta: piece, logprobs: null, finish_reason: finish } : { index: 0, text: piece.content ?? '', logprobs: null, finish_reason: finish };
  return { ...head, object: kind === 'chat' ? 'chat.completion.chunk' : 'text_completion', choices: [choice] };
}

let serial = 0;
const responseId = (prefix) => `${prefix}-${Date.now().toString(36)}${(serial++).toString(36)}`;

class Engine {
  #worker;
  #nextId = 1;
  #pending = new Map(); // id -> {type, resolve, reject, on: {eventType: handler}}
  #closed = null; // the error every call gets once the engine is gone

  constructor(worker) {
    this.#worker = worker;
    /** The GPU adapter (name, limits, features) and the engine's defaults ({options, span_length, max_span}). */
    this.adapter = null;
    this.defaults = null;
    /** What the last `load` resolved with (protocol.js's ModelInfo), or null. */
    this.model = null;
    this.chat = { completions: { create: (params) => this.#openai('chat', params) } };
    this.completions = { create: (params) => this.#openai('text', params) };
    worker.onmessage = (e) => this.#receive(e.data);
    worker.onerror = (e) => {
      e.preventDefault();
      this.#close(fail('crashed', `The engine's worker failed${e.message ? `: ${e.message}` : ''}. If you serve the page yourself, build the engine first (./build.sh web); module workers need Chrome/Edge 80+, Firefox 114+ or Safari 15+.`));
    };
    this.ready = this.#call({ type: 'init' }).then(({ adapter, defaults }) => {
      this.adapter = adapter;
      this.defaults = defaults;
      return this;
    });
  }

  // One request: its id, and the promise of its final answer; `on` handles its events.
  #send(msg, on = {}, signal) {
    const id = this.#nextId++;
    const promise = new Promise((resolve, reject) => {
      if (this.#closed) return reject(this.#closed);
      this.#pending.set(id, { type: msg.type, resolve, reject, on });
      this.#worker.postMessage({ ...msg, id });
    });
    if (signal) {
      if (signal.aborted) this.cancel(id);
      else signal.addEventListener('abort', () => this.cancel(id), { once: true });
    }
    return { id, promise };
  }

  #call(msg, on, signal) {
    return this.#send(msg, on, signal).promise;
  }

  #receive(m) {
    const p = this.#pending.get(m.id);
    if (!p) return;
    if (m.type === 'result' || m.type === 'error') {
      this.#pending.delete(m.id);
      if (m.type === 'result') return p.resolve(m.value);
      if (m.error.kind === 'crashed') this.model = null;
      return p.reject(new UnmaskError(m.error));
    }
    // The model was freed: for a new one (load), or after its GPU failed (a run: lost, out of memory).
    if (m.type === 'unloaded') this.model = null;
    const handler = p.on[m.type];
    if (!handler) return;
    try {
      handler(m);
    } catch (e) {
      // A caller's callback failed: report it as an uncaught error, keep the request going.
      setTimeout(() => { throw e; });
    }
  }

  #close(error) {
    this.#closed = error;
    this.model = null;
    for (const p of this.#pending.values()) p.reject(error);
    this.#pending.clear();
  }

  /** Loads a model (see toSource); resolves with protocol.js's ModelInfo. `onProgress(p)` gets
   *  {phase: 'download'|'parse'|'upload', label, loaded, total, rate}; `onPlan(summary)` the memory
   *  plan, from the headers, before the weights move (a URL's file is read by Range requests: the
   *  plan comes before the rest downloads, and a model that cannot fit is refused then); `quant`:
   *  'q4_0', 'q4_0_pure', 'q8_0' (converted while they stream); `keep`: keep a URL's or files' model
   *  in the browser (`onSaved()` once kept, `onWarning(message)` if it could not be). A URL's file
   *  downloads into the browser's storage (never whole in memory; without `keep` it is deleted once
   *  loaded) and an interrupted download resumes where it stopped, in this load or the next.
   *  `signal` (an AbortSignal) stops a download (kind 'cancelled'; what was stored stays for the
   *  next load). Swapping: the model loaded before is freed once the new one's plan
   *  fits, before its weights are allocated, so that a GPU that holds one big model can swap it for
   *  another; `onUnloaded(name)` says so. If the new one then fails, no model is loaded (`model` is
   *  null, the error says so); if it fails before (unreadable, does not fit), the old one stays. */
  async load(source, { onProgress, onPlan, onWarning, onSaved, onUnloaded, quant, keep, signal } = {}) {
    const on = {
      progress: (m) => onProgress && onProgress(m),
      plan: (m) => onPlan && onPlan(m.summary),
      warning: (m) => onWarning && onWarning(m.message),
      saved: () => onSaved && onSaved(),
      unloaded: (m) => { this.model = null; if (onUnloaded) onUnloaded(m.name); },
    };
    this.model = await this.#call({ type: 'load', source: toSource(source, keep), quant: quant || undefined }, on, signal);
    return this.model;
  }

  /** The memory plan of a model from its headers alone, without loading it (a URL is read with
   *  Range requests, or, where the server has none, only as far as its header; nothing is kept):
   *  {name, format, dg, summary, fits, problem, total_bytes, plan}. The loaded model stays. */
  plan(source, { quant, onProgress, signal } = {}) {
    return this.#call({ type: 'plan', source: toSource(source, false), quant: quant || undefined }, { progress: (m) => onProgress && onProgress(m) }, signal);
  }

  /** null when these sampler options are fine, else the error (ErrorInfo) a request would get. */
  validate(options, { infill = false } = {}) {
    return this.#call({ type: 'validate', options: defined(options || {}), infill });
  }

  /** Lower level, as the page's canvas view uses it: runs an engine request ({prompt, chat,
   *  options} / {messages, options} / {infill, span_length, options}; DiffusionGemma's {prompt,
   *  chat, gen_length, seed, steps}) with `onStart(canvas)` and `onStep(event)`; resolves with the
   *  engine's result. */
  generate(request, { onStart, onStep, signal } = {}) {
    return this.#call({ type: 'run', request }, { start: (m) => onStart && onStart(m.canvas), step: (m) => onStep && onStep(m.event) }, signal);
  }

  /** Regenerates the positions of a finished canvas that hold the mask id (`tokens`: the whole
   *  canvas), as one block. */
  remask(tokens, genStart, options, { onStart, onStep, signal } = {}) {
    const on = { start: (m) => onStart && onStart(m.canvas), step: (m) => onStep && onStep(m.event) };
    return this.#call({ type: 'run', request: { options }, remask: { tokens: Array.from(tokens), gen_start: genStart } }, on, signal);
  }

  /** Fills `[MASK]` (span_length tokens) and `<mask:N>` spans of `text`: {text, tokens, steps,
   *  ms}. Options: the sampler's (steps, temperature, seed, …), span_length, onStep, signal. */
  async infill(text, { span_length, onStep, signal, ...options } = {}) {
    if (this.model && this.model.dg) throw fail('input', 'DiffusionGemma has no infill: its canvases are not masked');
    const bad = await this.validate(options, { infill: true });
    if (bad) throw new UnmaskError(bad);
    const request = { infill: text, span_length, options: { block_length: 'whole', ...defined(options) } };
    const r = await this.#call({ type: 'run', request }, { step: (m) => onStep && onStep(m.event) }, signal);
    if (r.cancelled) throw fail('cancelled', 'The infill was cancelled.');
    return { text: r.text, tokens: r.tokens, steps: r.steps, ms: r.ms };
  }

  /** Cancels request `id`, or without one every generation running or waiting. */
  cancel(id) {
    if (this.#closed) return;
    const ids = id !== undefined ? [id] : [...this.#pending].filter(([, p]) => p.type === 'run').map(([i]) => i);
    for (const i of ids) this.#worker.postMessage({ type: 'cancel', id: i });
  }

  /** What the engine's worker holds: {wasm_bytes (its WebAssembly memory), js_heap_bytes (its
   *  JavaScript heap, where the browser tells: Chromium), model (name or null), devices (GPU
   *  devices open)}; at once, also while a request runs. `gc`: collect garbage first, where the
   *  browser lets a page do it (Chromium with --js-flags=--expose-gc). */
  stats({ gc = false } = {}) {
    return this.#call({ type: 'stats', gc });
  }

  /** Frees the model's GPU memory (after the requests before it). */
  async unload() {
    await this.#call({ type: 'unload' });
    this.model = null;
  }

  /** Stops the worker at once: pending calls reject with kind 'cancelled'. */
  terminate() {
    this.#worker.terminate();
    if (!this.#closed) this.#close(fail('cancelled', 'The engine was terminated.'));
  }

  // chat.completions.create / completions.create. `messages` go through the model's chat
  // template (a DiffusionGemma model takes one user message: its wasm engine has no turns yet);
  // `max_tokens` is the answer's length (a multiple of `block_length`: the sampler fills whole
  // blocks); `stop` strings end the answer as end tokens do; the other keys are the sampler's
  // options (steps, block_length, temperature, seed, remasking, threshold, cache, cfg_scale, …)
  // and any other key is refused by name.
  async #openai(kind, params = {}) {
    const { messages, prompt, stream, max_tokens, max_completion_tokens, stop, onStep, signal, model, n, user, stream_options, ...rest } = params;
    if (n != null && n !== 1) throw fail('input', 'n: one choice per request', 'n');
    if (!this.model) throw fail('input', 'No model is loaded yet: call engine.load(...) first.');
    const tokens = max_tokens ?? max_completion_tokens;
    const options = defined({ ...rest, gen_length: tokens ?? rest.gen_length });
    const stops = stop == null ? [] : Array.isArray(stop) ? stop : [stop];
    let request;
    if (this.model.dg) {
      request = this.#dgRequest(kind, messages, prompt, options);
    } else {
      const bad = await this.validate(options);
      if (bad && bad.field === 'gen_length' && tokens != null) {
        // The answer's length is max_tokens here.
        const field = max_tokens != null ? 'max_tokens' : 'max_completion_tokens';
        throw new UnmaskError({ ...bad, field, message: bad.message.replace(/\bgen_length\b/g, field) });
      }
      if (bad) throw new UnmaskError(bad);
      if (kind === 'chat') {
        if (!Array.isArray(messages)) throw fail('input', 'give messages: a list of {role, content}', 'messages');
        request = { messages: messages.map((m) => ({ role: m.role, content: Array.isArray(m.content) ? m.content.map((p) => p.text ?? '').join('') : m.content })), options };
      } else {
        if (typeof prompt !== 'string') throw fail('input', 'give prompt: the text to continue', 'prompt');
        request = { prompt, options };
      }
    }
    const head = { id: responseId(kind === 'chat' ? 'chatcmpl' : 'cmpl'), created: Math.floor(Date.now() / 1000), model: model || this.model.name };
    const step = (m) => onStep && onStep(m.event);
    if (!stream) {
      const r = await this.#call({ type: 'run', request, follow: { stop: stops } }, { step }, signal);
      if (r.cancelled) throw fail('cancelled', 'The request was cancelled.');
      return completion(kind, head, r);
    }
    // Streamed: a first chunk with the role, one per piece of text as it becomes final (a
    // prefix of the answer all committed), then the finish reason and usage.
    let id = null;
    const out = channel(() => this.cancel(id));
    if (kind === 'chat') out.push(chunk(kind, head, { role: 'assistant', content: '' }));
    const sent = this.#send({ type: 'run', request, follow: { stop: stops } }, { step, text: (m) => out.push(chunk(kind, head, { content: m.text })) }, signal);
    id = sent.id;
    sent.promise.then(
      (r) => {
        if (r.cancelled) return out.end(fail('cancelled', 'The request was cancelled.'));
        out.push({ ...chunk(kind, head, {}, r.finish_reason), usage: usage(r), unmask: stats(r) });
        out.end();
      },
      (e) => out.end(e),
    );
    return out;
  }

  #dgRequest(kind, messages, prompt, o) {
    let text = prompt;
    if (kind === 'chat') {
      const turns = (messages || []).filter((m) => m.role !== 'system' && m.role !== 'developer');
      if (turns.length !== 1 || turns[0].role !== 'user') throw fail('input', 'DiffusionGemma in the page takes one user message (no earlier turns yet)', 'messages');
      text = turns[0].content;
    }
    return defined({ prompt: text, chat: kind === 'chat', gen_length: o.gen_length ?? this.defaults.options.gen_length, seed: o.seed ?? 0, steps: o.steps, entropy_bound: o.entropy_bound });
  }
}
