// The engine's Web Worker: owns the wasm module and the model on the GPU, fetches model files
// (with progress, from the network, the model cache or local File objects), plans and runs
// requests, so the page stays responsive. It speaks the protocol of protocol.js (requests with
// ids, one final answer each, events in between, cancel by id) with the engine API (unmask.js).
// DiffusionGemma models (isDiffusionGemma) load into the DgEngine, the rest into the Engine.

import init, { adapterInfo, defaults, validateOptions, Engine, DgEngine, isDiffusionGemma, oneBlock } from './pkg/unmask.js';
import { MODEL_CACHE, cacheKeyFor, readIndex, writeIndex } from './models.js';
import { errorInfo, isErrorInfo } from './protocol.js';

// The engine streams weights from the file (a File, or a Blob of a download) piece by piece:
// the model is never copied whole into WebAssembly memory, so its size is bounded by the GPU
// (checked by the engine's memory plan from the file's header), not by the tab's 4 GiB heap.
// The canvas the plan reserves room for (prompt + answer); the page's settings stay below it.
const PLAN_CANVAS = 512;

let engine = null;
let dg = false; // the engine is a DgEngine (DiffusionGemma: uniform-state canvases)
let adapter = null;

// The request being handled (requests run one at a time): its events carry its id.
let current = null;
const post = (msg) => self.postMessage({ ...msg, id: current });

// Errors from the engine are structured ({kind, field, message}: protocol.js); anything else is
// a crash (a wasm trap, out of memory), after which the module's state cannot be trusted.
function describe(e) {
  if (isErrorInfo(e)) return errorInfo(e.kind, e.message, e.field ?? null);
  const text = e && e.message ? e.message : String(e);
  if (/memory|allocat/i.test(text)) {
    return errorInfo('crashed', `The engine ran out of memory (${text}). The model is probably too big for a browser tab: try a smaller or more quantized model (q4_0), or the native CLI.`);
  }
  return errorInfo('crashed', `The engine crashed: ${text}. Start it again and load the model again.`);
}

// wgpu's web backend leaves the adapter's name empty: take it from WebGPU's GPUAdapterInfo.
let webInfo = null;
async function named(report) {
  if (report && report.name) return report;
  try {
    webInfo ??= await (async () => {
      const a = await self.navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
      const i = a && (a.info || (a.requestAdapterInfo && (await a.requestAdapterInfo())));
      if (!i) return null;
      const name = [i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(' ');
      return { name: `${name || 'WebGPU adapter'}${a.isFallbackAdapter || i.isFallbackAdapter ? ' (fallback)' : ''}` };
    })();
  } catch {}
  return { ...report, name: (webInfo && webInfo.name) || 'WebGPU adapter' };
}

let wasm = null;
function loadWasm() {
  wasm ??= init().catch((e) => {
    throw errorInfo('crashed', `The engine (pkg/unmask_bg.wasm) did not load: ${e && e.message ? e.message : e}. If you serve the page yourself, build it first with ./build.sh web.`);
  });
  return wasm;
}

let ready = null;
function start() {
  ready ??= (async () => {
    await loadWasm();
    if (!self.navigator.gpu) {
      throw errorInfo('gpu', 'This browser has no WebGPU (navigator.gpu is missing). Use a current Chrome or Edge (113+), or Firefox/Safari with WebGPU enabled; on Linux Chrome may need chrome://flags/#enable-unsafe-webgpu.');
    }
    try {
      adapter = await adapterInfo();
    } catch (e) {
      throw errorInfo('gpu', `WebGPU is present but no GPU adapter could be opened: ${e && e.message}`);
    }
    return named(adapter);
  })();
  return ready;
}

// --- reading model files, with progress ------------------------------------------------------

class Progress {
  constructor(total, label) {
    this.total = total;
    this.label = label;
    this.done = 0;
    this.t0 = performance.now();
    this.last = 0;
  }
  add(n, file) {
    this.done += n;
    const now = performance.now();
    if (now - this.last > 80 || this.done === this.total) {
      this.last = now;
      const secs = Math.max((now - this.t0) / 1000, 1e-3);
      post({ type: 'progress', phase: 'download', label: this.label, file, loaded: this.done, total: this.total, rate: this.done / secs });
    }
  }
}

// Reads a Response body into one Uint8Array (small files: config, tokenizer), or, with
// `asBlob`, into a Blob (model files: JS memory, which the browser may spill to disk, never the
// wasm heap), reporting progress.
async function readBody(resp, progress, file, asBlob) {
  if (!resp.body) {
    const blob = await resp.blob();
    progress.add(blob.size, file);
    return asBlob ? blob : new Uint8Array(await blob.arrayBuffer());
  }
  const reader = resp.body.getReader();
  const chunks = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    progress.add(value.length, file);
  }
  const blob = new Blob(chunks);
  return asBlob ? blob : new Uint8Array(await blob.arrayBuffer());
}

async function fetchOk(url, what, optional) {
  let resp;
  try {
    resp = await fetch(url);
  } catch (e) {
    if (optional) return null;
    throw errorInfo('model', `Could not download ${what} from ${url}: ${e.message}. Check the address and your connection (or the server's CORS settings).`);
  }
  if (!resp.ok) {
    if (optional) return null;
    throw errorInfo('model', `Could not download ${what} from ${url}: HTTP ${resp.status} ${resp.statusText}.`);
  }
  return resp;
}

// Files of a model given as a URL: a .gguf (tokenizer.json beside it is used when present), a
// .safetensors (config.json beside it is required), or a folder (config.json, model.safetensors);
// generation_config.json beside a safetensors model is used when present (DiffusionGemma's sampler).
function urlPlan(url) {
  const u = new URL(url, self.location.href);
  const path = u.pathname;
  const sibling = (name) => { const s = new URL(u); s.pathname = path.replace(/[^/]*$/, name); s.search = u.search; return s.href; };
  if (/\.gguf$/i.test(path)) return { format: 'gguf', model: u.href, tokenizer: sibling('tokenizer.json') };
  if (/\.safetensors$/i.test(path)) return { format: 'safetensors', model: u.href, config: sibling('config.json'), tokenizer: sibling('tokenizer.json'), generation: sibling('generation_config.json') };
  const dir = new URL(u);
  if (!dir.pathname.endsWith('/')) dir.pathname += '/';
  const at = (n) => new URL(n, dir).href;
  return { format: 'safetensors', model: at('model.safetensors'), config: at('config.json'), tokenizer: at('tokenizer.json'), generation: at('generation_config.json') };
}

const text = (bytes) => (bytes ? new TextDecoder().decode(bytes) : null);

// Downloads (or reads from the model cache) every file of a URL model.
async function fromUrl(url, keep) {
  const plan = urlPlan(url);
  const cache = keep && self.caches ? await caches.open(MODEL_CACHE) : null;
  const get = async (u, what, optional) => {
    const hit = cache && (await cache.match(u));
    if (hit) return { resp: hit, cached: true };
    const resp = await fetchOk(u, what, optional);
    return resp && { resp, cached: false };
  };
  const main = await get(plan.model, 'the model', false);
  const cfg = plan.config ? await get(plan.config, 'config.json (a safetensors model needs it beside the weights)', false) : null;
  const tok = await get(plan.tokenizer, 'tokenizer.json', true);
  const gen = plan.generation ? await get(plan.generation, 'generation_config.json', true) : null;
  const total = [main, cfg, tok, gen].reduce((s, f) => s + (f ? Number(f.resp.headers.get('content-length')) || 0 : 0), 0);
  const progress = new Progress(total, 'Downloading');
  const model = await readBody(main.resp, progress, plan.model.split('/').pop(), true);
  const config = cfg ? await readBody(cfg.resp, progress, 'config.json') : null;
  const tokenizer = tok ? await readBody(tok.resp, progress, 'tokenizer.json') : null;
  const generation = gen ? await readBody(gen.resp, progress, 'generation_config.json') : null;
  // Kept only once the engine has accepted the files (see load).
  const save = cache && !(main.cached && (!cfg || cfg.cached) && (!tok || tok.cached) && (!gen || gen.cached)) ? async () => {
    const put = (u, body, type) => cache.put(u, new Response(body, { headers: { 'content-type': type, 'content-length': String(body.size ?? body.length) } }));
    await put(plan.model, model, 'application/octet-stream');
    if (config) await put(plan.config, config, 'application/json');
    if (tokenizer) await put(plan.tokenizer, tokenizer, 'application/json');
    if (generation) await put(plan.generation, generation, 'application/json');
    const bytes = model.size + (config?.length || 0) + (tokenizer?.length || 0) + (generation?.length || 0);
    const id = 'url:' + plan.model;
    const index = (await readIndex()).filter((m) => m.id !== id);
    index.push({ id, name: decodeURIComponent(plan.model.split('/').pop()), source: 'url', url: plan.model, format: plan.format, bytes, added: Date.now(),
      files: { model: plan.model, config: config ? plan.config : undefined, tokenizer: tokenizer ? plan.tokenizer : undefined, generation: generation ? plan.generation : undefined } });
    await writeIndex(index);
    post({ type: 'saved' });
  } : null;
  return { format: plan.format, name: decodeURIComponent(plan.model.split('/').pop()), blobs: [{ name: plan.model.split('/').pop(), blob: model }], config: text(config), tokenizer, generation: text(generation), save };
}

// Local File objects from the picker or a drop: one .gguf, or config.json + .safetensors
// shards (tokenizer.json optional in both cases, generation_config.json too). Files are read
// piece by piece while loading.
async function fromFiles(list, keep) {
  const by = (re) => list.filter((f) => re.test(f.name));
  const ggufs = by(/\.gguf$/i), sts = by(/\.safetensors$/i), toks = by(/tokenizer.*\.json$/i), gens = by(/^generation_config.*\.json$/i);
  const cfgs = list.filter((f) => f.name === 'config.json' || /config.*\.json$/i.test(f.name) && !toks.includes(f) && !gens.includes(f));
  let format, models, config = null;
  if (ggufs.length === 1 && sts.length === 0) { format = 'gguf'; models = ggufs; }
  else if (sts.length >= 1 && ggufs.length === 0) {
    format = 'safetensors';
    models = sts.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    if (cfgs.length !== 1) throw errorInfo('input', 'A .safetensors model needs its config.json: pick or drop the files together (and tokenizer.json to type text prompts).', 'files');
    config = cfgs[0];
  } else if (ggufs.length > 1) {
    throw errorInfo('input', 'Pick one .gguf file at a time.', 'files');
  } else {
    throw errorInfo('input', `No model file among ${list.map((f) => f.name).join(', ') || 'the files given'}: give a .gguf, or config.json + .safetensors (+ tokenizer.json).`, 'files');
  }
  // tokenizer.json itself when tokenizer_config.json comes along (it has no vocabulary).
  const tokenizer = toks.find((f) => f.name === 'tokenizer.json') || toks.find((f) => !/config/i.test(f.name)) || null;
  const generation = gens[0] || null;
  const total = [...models, config, tokenizer, generation].filter(Boolean).reduce((s, f) => s + f.size, 0);
  const files = {
    format, name: models[0].name,
    blobs: models.map((f) => ({ name: f.name, blob: f })),
    config: config ? await config.text() : null,
    tokenizer: tokenizer ? new Uint8Array(await tokenizer.arrayBuffer()) : null,
    generation: generation ? await generation.text() : null,
  };
  if (keep && self.caches) files.save = async () => {
    const m0 = models[0];
    const id = `local:${m0.name}:${m0.size}:${m0.lastModified}`;
    const key = (f) => cacheKeyFor(id, f.name);
    const cache = await caches.open(MODEL_CACHE);
    for (const f of [...models, config, tokenizer, generation].filter(Boolean)) {
      await cache.put(key(f), new Response(f, { headers: { 'content-length': String(f.size) } }));
    }
    const index = (await readIndex()).filter((m) => m.id !== id);
    index.push({ id, name: m0.name, source: 'local', format, bytes: total, added: Date.now(),
      files: { model: key(m0), shards: models.length > 1 ? models.map(key) : undefined, config: config ? key(config) : undefined, tokenizer: tokenizer ? key(tokenizer) : undefined, generation: generation ? key(generation) : undefined } });
    await writeIndex(index);
    post({ type: 'saved' });
  };
  return files;
}

// A model kept in the model cache (listed by the page).
async function fromSaved(id) {
  const entry = (await readIndex()).find((m) => m.id === id);
  if (!entry) throw errorInfo('model', 'That saved model is gone from the browser storage: download it again.');
  const cache = await caches.open(MODEL_CACHE);
  const get = async (key, name) => {
    if (!key) return null;
    const resp = await cache.match(key);
    if (!resp) throw errorInfo('model', `The saved copy of ${entry.name} is incomplete (${name} is missing): delete it and download it again.`);
    return resp.blob();
  };
  const keys = entry.files.shards || [entry.files.model];
  const blobs = [];
  for (const k of keys) blobs.push({ name: decodeURIComponent(k.split('/').pop()), blob: await get(k, 'model') });
  const config = await get(entry.files.config, 'config.json');
  const tokenizer = await get(entry.files.tokenizer, 'tokenizer.json');
  const generation = await get(entry.files.generation, 'generation_config.json');
  return { format: entry.format, name: entry.name, blobs, config: config ? await config.text() : null, tokenizer: tokenizer ? new Uint8Array(await tokenizer.arrayBuffer()) : null,
    generation: generation ? await generation.text() : null };
}

// The model that ships with the page (listed in models/manifest.json by ./build.sh web).
async function fromBundled(entry) {
  const v = entry.version ? `?v=${encodeURIComponent(entry.version)}` : '';
  const base = new URL('models/', self.location.href);
  const get = async (rel, what, optional) => (rel ? fetchOk(new URL(rel, base).href + v, what, optional) : null);
  const main = await get(entry.files.model, 'the bundled model');
  const cfg = await get(entry.files.config, 'the bundled config.json');
  const tok = await get(entry.files.tokenizer, 'the bundled tokenizer.json', true);
  const gen = await get(entry.files.generation, 'the bundled generation_config.json', true);
  const total = [main, cfg, tok, gen].reduce((s, r) => s + (r ? Number(r.headers.get('content-length')) || 0 : 0), 0) || entry.bytes || 0;
  const progress = new Progress(total, 'Downloading');
  return {
    format: entry.format, name: entry.name,
    blobs: [{ name: entry.files.model, blob: await readBody(main, progress, entry.files.model, true) }],
    config: cfg ? text(await readBody(cfg, progress, entry.files.config)) : null,
    tokenizer: tok ? await readBody(tok, progress, entry.files.tokenizer) : null,
    generation: gen ? text(await readBody(gen, progress, entry.files.generation)) : null,
  };
}

// A URL model's files for a plan: read with HTTP Range requests where the server answers them
// (then only the headers move), else downloaded whole (not kept).
async function rangeFiles(url) {
  const plan = urlPlan(url);
  const probe = await fetch(plan.model, { headers: { Range: 'bytes=0-0' } }).catch(() => null);
  const size = probe && probe.status === 206 ? Number((probe.headers.get('content-range') || '').split('/')[1]) : 0;
  if (probe && probe.body) probe.body.cancel().catch(() => {});
  if (!size) return fromUrl(url, false);
  const name = plan.model.split('/').pop();
  const slice = (from, to) => ({
    arrayBuffer: async () => {
      const r = await fetch(plan.model, { headers: { Range: `bytes=${from}-${to - 1}` } });
      if (r.status !== 206) throw `the server answered HTTP ${r.status} to a range request`;
      return r.arrayBuffer();
    },
  });
  const small = async (u, what) => (u ? text(await readBody(await fetchOk(u, what, false), new Progress(0, 'Downloading'), what)) : null);
  const config = await small(plan.config, 'config.json');
  return { format: plan.format, name: decodeURIComponent(name), blobs: [{ name, blob: { size, slice } }], config, tokenizer: null, generation: null };
}

async function readFiles(source) {
  switch (source.kind) {
    case 'bundled': return fromBundled(source.entry);
    case 'url': return fromUrl(source.url, source.keep);
    case 'files': return fromFiles(Array.from(source.files), source.keep);
    case 'saved': return fromSaved(source.id);
    default: throw errorInfo('input', `unknown model source ${source && source.kind}: use bundled, url, files or saved`, 'source');
  }
}

// The engine's view of the files: read(file, offset, length) -> Promise<Uint8Array>.
function reader(files) {
  return {
    read: (i, offset, length) => files.blobs[i].blob.slice(offset, offset + length).arrayBuffer().then((b) => new Uint8Array(b)),
    sizes: () => files.blobs.map((b) => b.blob.size),
    names: () => files.blobs.map((b) => b.name),
  };
}

async function load(source, quant) {
  await start();
  const files = await readFiles(source);
  const bytes = files.blobs.reduce((s, b) => s + b.blob.size, 0);
  post({ type: 'progress', phase: 'parse', label: 'Reading the header and planning GPU memory', loaded: 0, total: 1 });
  const t0 = performance.now();
  const { read, sizes, names } = reader(files);
  const onUpload = (done, total) => {
    const secs = Math.max((performance.now() - t0) / 1000, 1e-3);
    post({ type: 'progress', phase: 'upload', label: 'Streaming to the GPU', loaded: done, total, rate: done / secs });
  };
  let plan = '';
  const onPlan = (summary) => { plan = summary; post({ type: 'plan', summary }); };
  const isDg = await isDiffusionGemma(read, sizes(), names(), files.config ?? undefined);
  const next = isDg
    ? await DgEngine.loadStreaming(read, sizes(), names(), files.config ?? undefined, files.tokenizer ?? undefined, files.generation ?? undefined, quant || undefined, onPlan, onUpload)
    : await Engine.loadStreaming(read, sizes(), names(), files.config ?? undefined, files.tokenizer ?? undefined, quant || undefined, PLAN_CANVAS, undefined, onPlan, onUpload);
  if (engine) engine.free();
  engine = next;
  dg = isDg;
  if (files.save) {
    try {
      await files.save();
    } catch (e) {
      post({ type: 'warning', message: `The model loaded but could not be kept in this browser: ${e.message || e}` });
    }
  }
  return { name: files.name, format: files.format, bytes, plan, dg, config: engine.config(), hasTokenizer: engine.hasTokenizer(), adapter: await named(engine.adapter()), ms: performance.now() - t0 };
}

// The memory plan of a model, from its headers (nothing is loaded; the loaded model stays).
async function plan(source, quant) {
  await start();
  const files = source.kind === 'url' ? await rangeFiles(source.url) : await readFiles({ ...source, keep: false });
  post({ type: 'progress', phase: 'parse', label: 'Reading the header and planning GPU memory', loaded: 0, total: 1 });
  const { read, sizes, names } = reader(files);
  const isDg = await isDiffusionGemma(read, sizes(), names(), files.config ?? undefined);
  const p = isDg
    ? await DgEngine.planStreaming(read, sizes(), names(), files.config ?? undefined, quant || undefined)
    : await Engine.planStreaming(read, sizes(), names(), files.config ?? undefined, quant || undefined, PLAN_CANVAS, undefined);
  return { name: files.name, format: files.format, dg: isDg, ...p };
}

async function run(msg) {
  if (!engine) throw errorInfo('input', 'No model is loaded yet: load one first.');
  const onStart = (canvas) => post({ type: 'start', canvas });
  const onStep = (event) => post({ type: 'step', event });
  if (dg) return runDg(msg, onStep);
  if (msg.remask) return engine.remask(Uint32Array.from(msg.remask.tokens), msg.remask.gen_start, msg.request.options, onStart, onStep);
  let request = msg.request;
  // 'whole': the answer is one block (the engine's own sentinel for it).
  if (request.options?.block_length === 'whole') request = { ...request, options: { ...request.options, block_length: oneBlock() } };
  // `follow`: the answer's text as it becomes final, as 'text' events (the engine API's calls).
  const follow = msg.follow ? { on_text: (text) => post({ type: 'text', text }), stop: msg.follow.stop } : undefined;
  return engine.run(request, onStart, onStep, follow);
}

// A DiffusionGemma request ({prompt, chat, gen_length, seed, steps?, entropy_bound?}): step
// events as they come, then the result with each token's text (the page draws the final canvas)
// and the fields the masked families' results have for the engine API (its text arrives whole,
// at the end).
async function runDg(msg, onStep) {
  const result = await engine.run(msg.request, onStep);
  if (result.tokens) result.pieces = result.tokens.map((t) => engine.piece(t));
  result.content = result.text || '';
  result.finish_reason = result.stop === 'eos' ? 'stop' : 'length';
  result.prompt_tokens = result.gen_start;
  result.completion_tokens = result.tokens ? result.tokens.length - result.gen_start : 0;
  if (msg.follow && result.content) post({ type: 'text', text: result.content });
  return result;
}

function sourceName(s) {
  if (!s) return 'the model';
  if (s.kind === 'files') return Array.from(s.files).map((f) => f.name).join(' + ');
  if (s.kind === 'url') return s.url;
  if (s.kind === 'bundled') return `the bundled model (${s.entry.name})`;
  return 'the saved model';
}

async function handle(msg) {
  switch (msg.type) {
    case 'init': return { adapter: await start(), defaults: defaults() };
    case 'load': return load(msg.source, msg.quant);
    case 'plan': return plan(msg.source, msg.quant);
    case 'run': return run(msg);
    case 'unload':
      if (engine) engine.free();
      engine = null;
      dg = false;
      return null;
    default: throw errorInfo('input', `unknown request type ${msg.type}`, 'type');
  }
}

// The one final answer of a request.
async function answer(msg, fn) {
  try {
    self.postMessage({ type: 'result', id: msg.id, value: await fn(msg) });
  } catch (e) {
    const error = describe(e);
    if (error.kind === 'crashed') { engine = null; dg = false; }
    if ((msg.type === 'load' || msg.type === 'plan') && error.kind !== 'crashed') error.message = `Could not ${msg.type} ${sourceName(msg.source)}: ${error.message}`;
    self.postMessage({ type: 'error', id: msg.id, error });
  }
}

// Requests run one at a time, in order; `validate` (no engine state) and `cancel` act at once
// (a running generation checks its cancel flag after every step, while it awaits the GPU).
let queue = Promise.resolve();
const queued = new Set(), dropped = new Set();
let running = null;
self.onmessage = ({ data: msg }) => {
  if (msg.type === 'cancel') {
    if (msg.id === running) { if (engine) engine.cancel(); }
    else if (queued.has(msg.id)) dropped.add(msg.id);
    return;
  }
  if (msg.type === 'validate') {
    answer(msg, async () => { await loadWasm(); return validateOptions(msg.options, !!msg.infill); });
    return;
  }
  queued.add(msg.id);
  queue = queue.then(() => {
    queued.delete(msg.id);
    if (dropped.delete(msg.id)) return answer(msg, () => { throw errorInfo('cancelled', 'Cancelled before it started.'); });
    return answer(msg, async () => {
      current = running = msg.id;
      try {
        return await handle(msg);
      } finally {
        current = running = null;
      }
    });
  });
};
