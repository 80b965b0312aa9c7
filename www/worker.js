// The engine's Web Worker: owns the wasm module and the model on the GPU, fetches model files
// (with progress, from the network, the model cache or local File objects) and runs requests,
// so the page stays responsive. The page talks to it with the messages listed in app.js.
// DiffusionGemma models (isDiffusionGemma) load into the DgEngine, the rest into the Engine.

import init, { adapterInfo, Engine, DgEngine, isDiffusionGemma, oneBlock } from './pkg/unmask.js';
import { MODEL_CACHE, cacheKeyFor, readIndex, writeIndex } from './models.js';

// The engine streams weights from the file (a File, or a Blob of a download) piece by piece:
// the model is never copied whole into WebAssembly memory, so its size is bounded by the GPU
// (checked by the engine's memory plan from the file's header), not by the tab's 4 GiB heap.
// The canvas the plan reserves room for (prompt + answer); the page's settings stay below it.
const PLAN_CANVAS = 512;

let engine = null;
let dg = false; // the engine is a DgEngine (DiffusionGemma: uniform-state canvases)
let adapter = null;

const post = (msg, transfer) => self.postMessage(msg, transfer || []);

// Errors from the engine are strings with a human message; anything else is a crash (a wasm
// trap, out of memory), after which the module's state cannot be trusted.
function describe(e) {
  if (typeof e === 'string') return { message: e, crashed: false };
  const text = e && e.message ? e.message : String(e);
  if (/memory|allocat/i.test(text)) {
    return { message: `The engine ran out of memory (${text}). The model is probably too big for a browser tab: try a smaller or more quantized model (q4_0), or the native CLI.`, crashed: true };
  }
  return { message: `The engine crashed: ${text}. The page restarts it; load the model again.`, crashed: true };
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

let ready = null;
function start() {
  ready ??= (async () => {
    try {
      await init();
    } catch (e) {
      throw `The engine (pkg/unmask_bg.wasm) did not load: ${e && e.message ? e.message : e}. If you serve the page yourself, build it first with ./build.sh web.`;
    }
    if (!self.navigator.gpu) {
      throw 'This browser has no WebGPU (navigator.gpu is missing). Use a current Chrome or Edge (113+), or Firefox/Safari with WebGPU enabled; on Linux Chrome may need chrome://flags/#enable-unsafe-webgpu.';
    }
    try {
      adapter = await adapterInfo();
    } catch (e) {
      throw `WebGPU is present but no GPU adapter could be opened: ${typeof e === 'string' ? e : e.message}`;
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
    throw `Could not download ${what} from ${url}: ${e.message}. Check the address and your connection (or the server's CORS settings).`;
  }
  if (!resp.ok) {
    if (optional) return null;
    throw `Could not download ${what} from ${url}: HTTP ${resp.status} ${resp.statusText}.`;
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
    if (cfgs.length !== 1) throw 'A .safetensors model needs its config.json: pick or drop the files together (and tokenizer.json to type text prompts).';
    config = cfgs[0];
  } else if (ggufs.length > 1) {
    throw 'Pick one .gguf file at a time.';
  } else {
    throw `No model file among ${list.map((f) => f.name).join(', ') || 'the files given'}: give a .gguf, or config.json + .safetensors (+ tokenizer.json).`;
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
  if (!entry) throw 'That saved model is gone from the browser storage: download it again.';
  const cache = await caches.open(MODEL_CACHE);
  const get = async (key, name) => {
    if (!key) return null;
    const resp = await cache.match(key);
    if (!resp) throw `The saved copy of ${entry.name} is incomplete (${name} is missing): delete it and download it again.`;
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

async function load(source) {
  await start();
  let files;
  switch (source.kind) {
    case 'bundled': files = await fromBundled(source.entry); break;
    case 'url': files = await fromUrl(source.url, source.keep); break;
    case 'files': files = await fromFiles(source.files, source.keep); break;
    case 'saved': files = await fromSaved(source.id); break;
    default: throw `unknown model source ${source.kind}`;
  }
  const bytes = files.blobs.reduce((s, b) => s + b.blob.size, 0);
  post({ type: 'progress', phase: 'parse', label: 'Reading the header and planning GPU memory', loaded: 0, total: 1 });
  const t0 = performance.now();
  const read = (i, offset, length) => files.blobs[i].blob.slice(offset, offset + length).arrayBuffer().then((b) => new Uint8Array(b));
  const sizes = () => files.blobs.map((b) => b.blob.size), names = () => files.blobs.map((b) => b.name);
  const onUpload = (done, total) => {
    const secs = Math.max((performance.now() - t0) / 1000, 1e-3);
    post({ type: 'progress', phase: 'upload', label: 'Streaming to the GPU', loaded: done, total, rate: done / secs });
  };
  let plan = '';
  const isDg = await isDiffusionGemma(read, sizes(), names(), files.config ?? undefined);
  const next = isDg
    ? await DgEngine.loadStreaming(read, sizes(), names(), files.config ?? undefined, files.tokenizer ?? undefined, files.generation ?? undefined,
      source.quant || undefined, (summary) => { plan = summary; post({ type: 'plan', summary }); }, onUpload)
    : await Engine.loadStreaming(read, sizes(), names(), files.config ?? undefined, files.tokenizer ?? undefined, source.quant || undefined, PLAN_CANVAS, undefined,
      (summary) => { plan = summary; post({ type: 'plan', summary }); }, onUpload);
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

async function run(msg) {
  if (!engine) throw 'No model is loaded yet: pick one in the Model panel.';
  const onStart = (canvas) => post({ type: 'start', id: msg.id, canvas });
  const onStep = (event) => post({ type: 'step', id: msg.id, event });
  if (dg) return runDg(msg.request, onStep);
  if (msg.remask) return engine.remask(Uint32Array.from(msg.remask.tokens), msg.remask.gen_start, msg.request.options, onStart, onStep);
  // 'whole': the answer is one block (the engine's own sentinel for it).
  if (msg.request.options?.block_length === 'whole') msg.request = { ...msg.request, options: { ...msg.request.options, block_length: oneBlock() } };
  return engine.run(msg.request, onStart, onStep);
}

// A DiffusionGemma request ({prompt, chat, gen_length, seed, steps?, entropy_bound?}): step
// events as they come, then the result with each token's text (the page draws the final canvas).
async function runDg(request, onStep) {
  const result = await engine.run(request, onStep);
  if (result.tokens) result.pieces = result.tokens.map((t) => engine.piece(t));
  return result;
}

// Requests run one at a time, in order; `cancel` acts at once (the running generation checks it
// after every step, while it awaits the GPU).
let queue = Promise.resolve();
self.onmessage = ({ data: msg }) => {
  if (msg.type === 'cancel') {
    if (engine) engine.cancel();
    return;
  }
  queue = queue.then(() => handle(msg));
};

function sourceName(s) {
  if (s.kind === 'files') return s.files.map((f) => f.name).join(' + ');
  if (s.kind === 'url') return s.url;
  if (s.kind === 'bundled') return `the bundled model (${s.entry.name})`;
  return 'the saved model';
}

async function handle(msg) {
  try {
    if (msg.type === 'init') post({ type: 'adapter', info: await start() });
    else if (msg.type === 'load') post({ type: 'loaded', id: msg.id, model: await load(msg.source) });
    else if (msg.type === 'run') post({ type: 'done', id: msg.id, result: await run(msg) });
  } catch (e) {
    const d = describe(e);
    if (d.crashed) engine = null;
    if (msg.type === 'load' && !d.crashed) d.message = `Could not load ${sourceName(msg.source)}: ${d.message}`;
    post({ type: msg.type === 'init' ? 'fatal' : 'error', id: msg.id, where: msg.type, ...d });
  }
}
