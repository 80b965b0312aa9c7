// The engine's Web Worker: owns the wasm module and the model on the GPU, fetches model files
// (with progress, from the network, the model cache or local File objects) and runs requests,
// so the page stays responsive. The page talks to it with the messages listed in app.js.

import init, { adapterInfo, Engine } from './pkg/unmask.js';
import { MODEL_CACHE, cacheKeyFor, readIndex, writeIndex, fmtBytes } from './models.js';

// The browser engine copies the model file into WebAssembly memory (at most 4 GiB) and parses
// it there, so it needs about twice the file; past this it cannot fit.
const MAX_MODEL_BYTES = 1.6 * 1024 ** 3;

let engine = null;
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

// Reads a Response body into one Uint8Array, reporting progress.
async function readBody(resp, progress, file) {
  const len = Number(resp.headers.get('content-length')) || 0;
  if (!resp.body) {
    const buf = new Uint8Array(await resp.arrayBuffer());
    progress.add(buf.length, file);
    return buf;
  }
  const reader = resp.body.getReader();
  let out = len ? new Uint8Array(len) : null;
  const chunks = [];
  let at = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (out && at + value.length <= out.length) out.set(value, at);
    else {
      if (out) { chunks.push(out.subarray(0, at)); out = null; }
      chunks.push(value);
    }
    at += value.length;
    progress.add(value.length, file);
  }
  if (out) return at === out.length ? out : out.subarray(0, at);
  const all = new Uint8Array(at);
  let o = 0;
  for (const c of chunks) { all.set(c, o); o += c.length; }
  return all;
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

function checkSize(bytes) {
  if (bytes > MAX_MODEL_BYTES) {
    throw `the model is ${fmtBytes(bytes)}, too big for the browser engine, which holds the file in WebAssembly memory (4 GiB at most, about twice the file while loading), so models above ${fmtBytes(MAX_MODEL_BYTES)} do not fit. Use a smaller or more quantized model (e.g. q4_0), or the native CLI (unmask generate).`;
  }
}

// Files of a model given as a URL: a .gguf (tokenizer.json beside it is used when present), a
// .safetensors (config.json beside it is required), or a folder (config.json, model.safetensors).
function urlPlan(url) {
  const u = new URL(url, self.location.href);
  const path = u.pathname;
  const sibling = (name) => { const s = new URL(u); s.pathname = path.replace(/[^/]*$/, name); s.search = u.search; return s.href; };
  if (/\.gguf$/i.test(path)) return { format: 'gguf', model: u.href, tokenizer: sibling('tokenizer.json') };
  if (/\.safetensors$/i.test(path)) return { format: 'safetensors', model: u.href, config: sibling('config.json'), tokenizer: sibling('tokenizer.json') };
  const dir = new URL(u);
  if (!dir.pathname.endsWith('/')) dir.pathname += '/';
  const at = (n) => new URL(n, dir).href;
  return { format: 'safetensors', model: at('model.safetensors'), config: at('config.json'), tokenizer: at('tokenizer.json') };
}

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
  const total = [main, cfg, tok].reduce((s, f) => s + (f ? Number(f.resp.headers.get('content-length')) || 0 : 0), 0);
  try {
    checkSize(total);
  } catch (e) {
    for (const f of [main, cfg, tok]) if (f && f.resp.body) f.resp.body.cancel().catch(() => {});
    throw e;
  }
  const progress = new Progress(total, 'Downloading');
  const read = async (f, name) => (f ? readBody(f.resp, progress, name) : null);
  const files = {};
  files.model = await read(main, plan.model.split('/').pop());
  checkSize(files.model.length);
  if (cfg) files.config = await read(cfg, 'config.json');
  if (tok) files.tokenizer = await read(tok, 'tokenizer.json');
  // Kept only once the engine has accepted the files (see load).
  const save = cache && !(main.cached && (!cfg || cfg.cached) && (!tok || tok.cached)) ? async () => {
    const put = (u, bytes, type) => cache.put(u, new Response(bytes, { headers: { 'content-type': type, 'content-length': String(bytes.length) } }));
    await put(plan.model, files.model, 'application/octet-stream');
    if (files.config) await put(plan.config, files.config, 'application/json');
    if (files.tokenizer) await put(plan.tokenizer, files.tokenizer, 'application/json');
    const bytes = files.model.length + (files.config?.length || 0) + (files.tokenizer?.length || 0);
    const id = 'url:' + plan.model;
    const index = (await readIndex()).filter((m) => m.id !== id);
    index.push({ id, name: decodeURIComponent(plan.model.split('/').pop()), source: 'url', url: plan.model, format: plan.format, bytes, added: Date.now(),
      files: { model: plan.model, config: files.config ? plan.config : undefined, tokenizer: files.tokenizer ? plan.tokenizer : undefined } });
    await writeIndex(index);
    post({ type: 'saved' });
  } : null;
  return { format: plan.format, name: decodeURIComponent(plan.model.split('/').pop()), ...files, save };
}

// Local File objects from the picker or a drop: one .gguf, or config.json + one .safetensors
// (tokenizer.json optional in both cases).
async function fromFiles(list, keep) {
  const by = (re) => list.filter((f) => re.test(f.name));
  const ggufs = by(/\.gguf$/i), sts = by(/\.safetensors$/i), cfgs = list.filter((f) => f.name === 'config.json' || /config.*\.json$/i.test(f.name) && !/tokenizer/i.test(f.name)), toks = list.filter((f) => /tokenizer.*\.json$/i.test(f.name));
  let format, model, config = null;
  if (ggufs.length === 1 && sts.length === 0) { format = 'gguf'; model = ggufs[0]; }
  else if (sts.length === 1 && ggufs.length === 0) {
    format = 'safetensors'; model = sts[0];
    if (cfgs.length !== 1) throw 'A .safetensors model needs its config.json: pick or drop both files together (and tokenizer.json to type text prompts).';
    config = cfgs[0];
  } else if (sts.length > 1) {
    throw 'Sharded safetensors (several .safetensors files) are not supported in the browser: convert the model to one GGUF with the native CLI (unmask convert).';
  } else if (ggufs.length > 1) {
    throw 'Pick one .gguf file at a time.';
  } else {
    throw `No model file among ${list.map((f) => f.name).join(', ') || 'the files given'}: give a .gguf, or config.json + .safetensors (+ tokenizer.json).`;
  }
  const tokenizer = toks[0] || null;
  const parts = [model, config, tokenizer].filter(Boolean);
  const total = parts.reduce((s, f) => s + f.size, 0);
  checkSize(total);
  const progress = new Progress(total, 'Reading');
  const read = async (f) => (f ? readBody(new Response(f), progress, f.name) : null);
  const files = { format, name: model.name, model: await read(model), config: await read(config), tokenizer: await read(tokenizer) };
  if (keep && self.caches) files.save = async () => {
    const id = `local:${model.name}:${model.size}:${model.lastModified}`;
    const key = (f) => cacheKeyFor(id, f.name);
    const cache = await caches.open(MODEL_CACHE);
    for (const [f, bytes] of [[model, files.model], [config, files.config], [tokenizer, files.tokenizer]]) {
      if (f) await cache.put(key(f), new Response(bytes, { headers: { 'content-length': String(bytes.length) } }));
    }
    const index = (await readIndex()).filter((m) => m.id !== id);
    index.push({ id, name: model.name, source: 'local', format, bytes: total, added: Date.now(),
      files: { model: key(model), config: config ? key(config) : undefined, tokenizer: tokenizer ? key(tokenizer) : undefined } });
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
  const progress = new Progress(entry.bytes, 'Reading saved');
  const read = async (key, name) => {
    if (!key) return null;
    const resp = await cache.match(key);
    if (!resp) throw `The saved copy of ${entry.name} is incomplete (${name} is missing): delete it and download it again.`;
    return readBody(resp, progress, name);
  };
  return { format: entry.format, name: entry.name, model: await read(entry.files.model, 'model'), config: await read(entry.files.config, 'config.json'), tokenizer: await read(entry.files.tokenizer, 'tokenizer.json') };
}

// The model that ships with the page (listed in models/manifest.json by ./build.sh web).
async function fromBundled(entry) {
  const v = entry.version ? `?v=${encodeURIComponent(entry.version)}` : '';
  const base = new URL('models/', self.location.href);
  const get = async (rel, what, optional) => (rel ? fetchOk(new URL(rel, base).href + v, what, optional) : null);
  const main = await get(entry.files.model, 'the bundled model');
  const cfg = await get(entry.files.config, 'the bundled config.json');
  const tok = await get(entry.files.tokenizer, 'the bundled tokenizer.json', true);
  const total = [main, cfg, tok].reduce((s, r) => s + (r ? Number(r.headers.get('content-length')) || 0 : 0), 0) || entry.bytes || 0;
  const progress = new Progress(total, 'Downloading');
  return {
    format: entry.format, name: entry.name,
    model: await readBody(main, progress, entry.files.model),
    config: cfg ? await readBody(cfg, progress, entry.files.config) : null,
    tokenizer: tok ? await readBody(tok, progress, entry.files.tokenizer) : null,
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
  const bytes = files.model.length;
  const config = files.config ? new TextDecoder().decode(files.config) : undefined;
  post({ type: 'progress', phase: 'parse', label: 'Reading the weights', loaded: 0, total: 1 });
  const t0 = performance.now();
  const next = await Engine.load(files.model, config, files.tokenizer || undefined, (done, total) => {
    const secs = Math.max((performance.now() - t0) / 1000, 1e-3);
    post({ type: 'progress', phase: 'upload', label: 'Uploading to the GPU', loaded: done, total, rate: done / secs });
  });
  if (engine) engine.free();
  engine = next;
  if (files.save) {
    try {
      await files.save();
    } catch (e) {
      post({ type: 'warning', message: `The model loaded but could not be kept in this browser: ${e.message || e}` });
    }
  }
  return { name: files.name, format: files.format, bytes, config: engine.config(), hasTokenizer: engine.hasTokenizer(), adapter: await named(engine.adapter()), ms: performance.now() - t0 };
}

async function run(msg) {
  if (!engine) throw 'No model is loaded yet: pick one in the Model panel.';
  const onStart = (canvas) => post({ type: 'start', id: msg.id, canvas });
  const onStep = (event) => post({ type: 'step', id: msg.id, event });
  if (msg.remask) return engine.remask(Uint32Array.from(msg.remask.tokens), msg.remask.gen_start, msg.request.options, onStart, onStep);
  return engine.run(msg.request, onStart, onStep);
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
