// The engine's Web Worker: owns the wasm module and the model on the GPU (and the GPU devices it
// opens), reads model files (with progress, from the network through download.js, the model
// cache or local File objects), plans and runs requests, so the page stays responsive. It speaks
// the protocol of protocol.js (requests with ids, one final answer each, events in between, cancel
// by id) with the engine API (unmask.js). DiffusionGemma models (isDiffusionGemma) load into the
// DgEngine, the rest into the Engine.

import init, { adapterInfo, defaults, validateOptions, Engine, DgEngine, isDiffusionGemma, oneBlock } from './pkg/unmask.js';
import { MODEL_CACHE, cacheKeyFor, readIndex, writeIndex, deleteSaved } from './models.js';
import { errorInfo, isErrorInfo } from './protocol.js';
import { urlFiles, urlModel, keptBlob, fetchOk, readBody } from './download.js';
import { opening, release, clear, seen, fault } from './gpudevices.js';

// The engine streams weights from the file (a File, or a Blob of a download) piece by piece:
// the model is never copied whole into WebAssembly memory, so its size is bounded by the GPU
// (checked by the engine's memory plan from the file's header), not by the tab's 4 GiB heap.
// The canvas the plan reserves room for (prompt + answer); the page's settings stay below it.
const PLAN_CANVAS = 512;

let engine = null;
let dg = false; // the engine is a DgEngine (DiffusionGemma: uniform-state canvases)
let engineName = null; // the loaded model's name
let engineDevices = []; // the GPUDevice(s) the engine opened (gpudevices.js's `opening`)
let adapter = null;
// Test-only fault injection (testhooks.js, protocol.js's 'debug'): loaded only for `?test-hooks`.
const hooks = new URLSearchParams(self.location.search).has('test-hooks')
  ? import('./testhooks.js').then((m) => m.install({ devices: () => engineDevices })) : null;

// Frees the loaded model and its GPU memory; its name, or null when none was loaded.
function freeEngine() {
  const name = engine ? engineName : null;
  try {
    if (engine) engine.free();
  } catch {} // after a crash the wasm state cannot be trusted; the device goes anyway
  for (const d of engineDevices) { release(d); d.destroy(); }
  engine = null;
  dg = false;
  engineName = null;
  engineDevices = [];
  return name;
}

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
    await hooks;
    await loadWasm();
    if (!self.navigator.gpu) {
      throw errorInfo('gpu', 'This browser has no WebGPU (navigator.gpu is missing). Use a current Chrome or Edge (113+), or Firefox/Safari with WebGPU enabled; on Linux Chrome may need chrome://flags/#enable-unsafe-webgpu.');
    }
    try {
      const { value, devices } = await opening(() => adapterInfo());
      for (const d of devices) d.destroy();
      adapter = value;
    } catch (e) {
      throw errorInfo('gpu', `WebGPU is present but no GPU adapter could be opened: ${e && e.message}`);
    }
    return named(adapter);
  })();
  return ready;
}

// --- reading model files, with progress ------------------------------------------------------

class Progress {
  constructor(total, label, start = 0) {
    this.total = total;
    this.label = label;
    this.done = this.start = start; // a resumed download starts where it stopped
    this.t0 = performance.now();
    this.last = 0;
  }
  add(n, file) { this.at(this.done + n, file); }
  at(done, file) {
    this.done = done;
    const now = performance.now();
    if (now - this.last > 80 || this.done === this.total) {
      this.last = now;
      const secs = Math.max((now - this.t0) / 1000, 1e-3);
      post({ type: 'progress', phase: 'download', label: this.label, file, loaded: this.done, total: this.total, rate: (this.done - this.start) / secs });
    }
  }
}

// A Response body as a Blob (model files: JS memory, which the browser may spill to disk, never
// the wasm heap), reporting progress.
async function readBlob(resp, progress, file) {
  if (!resp.body) {
    const blob = await resp.blob();
    progress.add(blob.size, file);
    return blob;
  }
  const reader = resp.body.getReader();
  const chunks = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    progress.add(value.length, file);
  }
  return new Blob(chunks);
}

const text = (bytes) => (bytes ? new TextDecoder().decode(bytes) : null);

// The download being read (a URL model), which a cancel of its load or plan request stops (also
// when the cancel came while its first bytes were being asked for: `stopDownload`).
let downloading = null, stopDownload = false;

// A URL model (download.js): the model file's header first, the rest into the model cache once
// the plan allows (`finish`); from the cache at once when it is kept whole there.
async function fromUrl(url, store) {
  const { name } = urlFiles(url);
  let progress = null;
  const files = await urlModel(url, {
    store,
    onBytes: (pos, size) => (progress ??= new Progress(size, 'Downloading', pos)).at(pos, name),
    onWarning: (message) => post({ type: 'warning', message }),
  });
  if (files.saved) return fromSaved(files.saved);
  downloading = files.download;
  if (stopDownload) downloading.abort();
  return files;
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
  if (entry.partial) return fromUrl(entry.url, true); // an unfinished download: resume it
  const cache = await caches.open(MODEL_CACHE);
  const get = async (key, name) => {
    if (!key) return null;
    const resp = await cache.match(key);
    if (!resp) throw errorInfo('model', `The saved copy of ${entry.name} is incomplete (${name} is missing): delete it and download it again.`);
    return resp.blob();
  };
  const keys = entry.files.shards || [entry.files.model];
  const blobs = [];
  if (entry.parts) blobs.push({ name: entry.name, blob: await keptBlob(entry) });
  else for (const k of keys) blobs.push({ name: decodeURIComponent(k.split('/').pop()), blob: await get(k, 'model') });
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
  const small = (r, f) => (r ? readBody(r, (n) => progress.add(n, f)) : null);
  return {
    format: entry.format, name: entry.name,
    blobs: [{ name: entry.files.model, blob: await readBlob(main, progress, entry.files.model) }],
    config: text(await small(cfg, entry.files.config)),
    tokenizer: await small(tok, entry.files.tokenizer),
    generation: text(await small(gen, entry.files.generation)),
  };
}

async function readFiles(source) {
  switch (source.kind) {
    case 'bundled': return fromBundled(source.entry);
    case 'url': return fromUrl(source.url, true); // kept while it downloads (see load)
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

// The memory plan of `files` from their headers (nothing is allocated): {isDg, p: {summary, fits,
// problem, total_bytes, plan}}.
async function planFiles(files, quant) {
  post({ type: 'progress', phase: 'parse', label: 'Reading the header and planning GPU memory', loaded: 0, total: 1 });
  const { read, sizes, names } = reader(files);
  try {
    const isDg = await isDiffusionGemma(read, sizes(), names(), files.config ?? undefined);
    const { value: p, devices } = await opening(() => (isDg
      ? DgEngine.planStreaming(read, sizes(), names(), files.config ?? undefined, quant || undefined)
      : Engine.planStreaming(read, sizes(), names(), files.config ?? undefined, quant || undefined, PLAN_CANVAS, undefined)));
    for (const d of devices) d.destroy();
    return { isDg, p };
  } catch (e) {
    throw (files.download && files.download.error) || e; // a failed download, not a bad header
  }
}

// Loading: the plan from the headers (a URL model's rest is not downloaded yet: a model that
// cannot fit is refused having moved only its header), the download of the rest, then the swap.
// The model loaded before is freed once the new one's files are all here and its plan fits, and
// before its weights go to the GPU: so a big model can replace another on a GPU that holds only
// one. The price: if the new one then fails to load (the GPU runs out of memory after all, or
// loses its device), no model is loaded any more, and the error says so (an 'unloaded' event came
// first). A file that cannot be read or planned, or a plan that does not fit, leaves the old one.
async function load(source, quant) {
  await start();
  const files = await readFiles(source);
  try {
    return await loadFiles(files, quant, source.kind === 'url' && !source.keep);
  } finally {
    if (files.download) files.download.close();
    downloading = null;
  }
}

async function loadFiles(files, quant, discard) {
  const t0 = performance.now();
  const { isDg, p } = await planFiles(files, quant);
  post({ type: 'plan', summary: p.summary });
  if (!p.fits) throw errorInfo('limits', `${p.problem} (memory plan: ${p.summary})${files.download ? '. Only its header was downloaded.' : ''}`);
  if (files.finish) files.blobs[0].blob = await files.finish();
  const bytes = files.blobs.reduce((s, b) => s + b.blob.size, 0);
  const { read, sizes, names } = reader(files);
  const onUpload = (done, total) => {
    const secs = Math.max((performance.now() - t0) / 1000, 1e-3);
    post({ type: 'progress', phase: 'upload', label: 'Streaming to the GPU', loaded: done, total, rate: done / secs });
  };
  const old = freeEngine();
  if (old) post({ type: 'unloaded', name: old });
  let loaded;
  try {
    loaded = await opening(() => (isDg
      ? DgEngine.loadStreaming(read, sizes(), names(), files.config ?? undefined, files.tokenizer ?? undefined, files.generation ?? undefined, quant || undefined, undefined, onUpload)
      : Engine.loadStreaming(read, sizes(), names(), files.config ?? undefined, files.tokenizer ?? undefined, quant || undefined, PLAN_CANVAS, undefined, undefined, onUpload)));
  } catch (e) {
    const error = describe(e);
    if (old) error.message += ` The model loaded before (${old}) was freed to make room for this one: no model is loaded now.`;
    if (files.download) error.message += ` The downloaded file is kept in this browser (listed with the saved models), so loading it again needs no download.`;
    throw error;
  }
  // Errors WebGPU reports later than the engine looked (a buffer it could not allocate).
  const late = await fault(loaded.devices, 'load', 5000);
  if (late) {
    try { loaded.value.free(); } catch {}
    for (const d of loaded.devices) d.destroy();
    if (old) late.message += ` The model loaded before (${old}) was freed to make room for this one: no model is loaded now.`;
    throw late;
  }
  engine = loaded.value;
  engineDevices = loaded.devices;
  engineName = files.name;
  dg = isDg;
  if (files.download && discard) {
    await deleteSaved(files.id).catch(() => {}); // loaded without `keep`: the GPU holds it now
  } else if (files.download) {
    post({ type: 'saved' });
  } else if (files.save) {
    try {
      await files.save();
    } catch (e) {
      post({ type: 'warning', message: `The model loaded but could not be kept in this browser: ${e.message || e}` });
    }
  }
  return { name: files.name, format: files.format, bytes, plan: p.summary, dg, config: engine.config(), hasTokenizer: engine.hasTokenizer(), adapter: await named(engine.adapter()), ms: performance.now() - t0 };
}

// The memory plan of a model, from its headers (nothing is loaded; the loaded model stays). A URL
// is read with Range requests (a server without them: only as far as the header), nothing kept.
async function plan(source, quant) {
  await start();
  const files = source.kind === 'url' ? await fromUrl(source.url, false) : await readFiles({ ...source, keep: false });
  try {
    const { isDg, p } = await planFiles(files, quant);
    return { name: files.name, format: files.format, dg: isDg, ...p };
  } finally {
    if (files.download) files.download.close();
    downloading = null;
  }
}

// A run whose device failed (lost, out of memory: gpudevices.js) answers with what happened and
// frees the model (an 'unloaded' event): the page can load it again without a reload.
async function runChecked(msg) {
  const devices = engineDevices;
  let error = clear(devices);
  try { // a device lost while idle fails at once
    if (seen(devices)) throw errorInfo('gpu', 'the GPU device failed');
    const result = await run(msg);
    if (!seen(devices)) return result;
  } catch (e) {
    if (isErrorInfo(e) && (e.kind === 'input' || e.kind === 'cancelled')) throw e;
    error = e;
  }
  const f = await fault(devices, 'run');
  if (!f) throw error || errorInfo('gpu', 'the GPU reported an error');
  const name = freeEngine();
  if (name) post({ type: 'unloaded', name });
  throw f;
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
    case 'run': return runChecked(msg);
    case 'unload':
      freeEngine();
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
    if (error.kind === 'crashed') freeEngine();
    if ((msg.type === 'load' || msg.type === 'plan') && error.kind !== 'crashed') error.message = `Could not ${msg.type} ${sourceName(msg.source)}: ${error.message}`;
    self.postMessage({ type: 'error', id: msg.id, error });
  }
}

// 'validate', 'stats' (the memory the worker holds) and the test-only 'debug' (testhooks.js).
async function atOnce(msg) {
  if (msg.type === 'validate') return loadWasm().then(() => validateOptions(msg.options, !!msg.infill));
  if (msg.type === 'debug') {
    if (!hooks) throw errorInfo('input', "'debug' is for tests: the page must be opened with ?test-hooks", 'type');
    return (await hooks)(msg);
  }
  if (msg.gc && self.gc) self.gc(); // exposed by --js-flags=--expose-gc only
  const wasmBytes = (await loadWasm()).memory.buffer.byteLength, heap = performance.memory;
  return { wasm_bytes: wasmBytes, js_heap_bytes: heap ? heap.usedJSHeapSize : null, model: engineName, devices: engineDevices.length };
}

// Requests run one at a time, in order; `cancel` and atOnce's act at once
// (a running generation checks its cancel flag after every step, while it awaits the GPU).
let queue = Promise.resolve();
const queued = new Set(), dropped = new Set();
let running = null;
self.onmessage = ({ data: msg }) => {
  if (msg.type === 'cancel') {
    if (msg.id === running) {
      stopDownload = true;
      if (downloading) downloading.abort(); // a load or plan reading a URL: stops, keeps what is stored
      if (engine) engine.cancel();
    }
    else if (queued.has(msg.id)) dropped.add(msg.id);
    return;
  }
  if (msg.type === 'validate' || msg.type === 'stats' || msg.type === 'debug') return answer(msg, atOnce);
  queued.add(msg.id);
  queue = queue.then(() => {
    queued.delete(msg.id);
    if (dropped.delete(msg.id)) return answer(msg, () => { throw errorInfo('cancelled', 'Cancelled before it started.'); });
    return answer(msg, async () => {
      current = running = msg.id;
      stopDownload = false;
      try {
        return await handle(msg);
      } finally {
        current = running = null;
      }
    });
  });
};
