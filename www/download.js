// Model files from a URL, for the engine's worker: their names (`urlFiles`, a pure function) and
// the download of the model file straight into the browser's model cache (models.js), in parts of
// PART_BYTES, never whole in memory. The header comes first, by HTTP Range requests that the
// engine's own reads drive, so that the memory plan is known (and a model that cannot fit refused)
// before the weights move; then the rest, resumed after a lost connection or an interrupted earlier
// download (`Range: bytes=<stored>-`, the file checked by its size, ETag and Last-Modified), with a
// full storage quota explained by the numbers. The engine then reads the stored parts as one
// disk-backed Blob.

import { MODEL_CACHE, readIndex, writeIndex, partKey, fmtBytes } from './models.js';
import { errorInfo, isErrorInfo } from './protocol.js';

export const PART_BYTES = 16 << 20; // what an interrupted download may lose; one cache entry each
const HEAD_BYTES = 1 << 20; // the first Range request (a GGUF's header, a safetensors JSON)
const RETRIES = 4; // tries in a row without a new byte before a download gives up

const leaf = (u) => {
  const last = new URL(u).pathname.split('/').pop();
  try { return decodeURIComponent(last); } catch { return last; }
};

// The files of a model given as a URL: a .gguf (tokenizer.json beside it is used when present), a
// .safetensors (config.json beside it is required), or a folder (config.json, model.safetensors);
// generation_config.json beside a safetensors model is used when present (DiffusionGemma's
// sampler). Siblings keep the URL's query. `name` is the file's name from the path (a Hub
// `…/resolve/main/<file>` URL redirects to a CDN: the name and `id`, the cache's key for the
// download, come from the URL asked for, not from where it redirects).
export function urlFiles(url, base = self.location.href) {
  const u = new URL(url, base);
  const path = u.pathname;
  const sibling = (name) => { const s = new URL(u); s.pathname = path.replace(/[^/]*$/, name); return s.href; };
  let f;
  if (/\.gguf$/i.test(path)) f = { format: 'gguf', model: u.href, tokenizer: sibling('tokenizer.json') };
  else if (/\.safetensors$/i.test(path)) f = { format: 'safetensors', model: u.href, config: sibling('config.json'), tokenizer: sibling('tokenizer.json'), generation: sibling('generation_config.json') };
  else {
    const dir = new URL(u);
    if (!dir.pathname.endsWith('/')) dir.pathname += '/';
    const at = (n) => new URL(n, dir).href;
    f = { format: 'safetensors', model: at('model.safetensors'), config: at('config.json'), tokenizer: at('tokenizer.json'), generation: at('generation_config.json') };
  }
  return { ...f, name: leaf(f.model), id: `url:${f.model}` };
}

export async function fetchOk(url, what, optional) {
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

// A small file's bytes (config, tokenizer), through `onBytes(n)` for progress.
export async function readBody(resp, onBytes = () => {}) {
  const bytes = new Uint8Array(await resp.arrayBuffer());
  onBytes(bytes.length);
  return bytes;
}

const text = (bytes) => (bytes ? new TextDecoder().decode(bytes) : null);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const isQuota = (e) => !!e && (e.name === 'QuotaExceededError' || /quota/i.test(e.message || ''));
const says = (e) => (e && e.message) || String(e);

function contentRange(h) {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec((h || '').trim());
  return m ? { start: Number(m[1]), end: Number(m[2]), total: m[3] === '*' ? null : Number(m[3]) } : null;
}

async function estimate() {
  try {
    const e = await self.navigator.storage.estimate();
    return e && e.quota ? { quota: e.quota, usage: e.usage || 0 } : null;
  } catch {
    return null;
  }
}

// One model file from a URL. Its bytes are, in order: `parts` (stored: the cache's disk-backed
// Blobs, or plain Blobs where there is no Cache API), then `chunks` (in memory, fewer than
// PART_BYTES), then the open response `body`.
export class Download {
  constructor(files, { store = true, onBytes = () => {}, onWarning = () => {} } = {}) {
    Object.assign(this, { url: files.model, id: files.id, name: files.name, format: files.format, onBytes, onWarning });
    this.store = store; // false: a plan only, nothing is kept (the header stays in memory)
    this.size = null;
    this.etag = null;
    this.lastModified = null;
    this.parts = [];
    this.chunks = [];
    this.buffered = 0;
    this.body = null;
    this.bodyBytes = 0;
    this.planned = false; // past the header: the rest is asked for in one open-ended request
    this.storing = false; // full parts go to the cache (after the quota check)
    this.error = null; // the structured error behind a failed read (the engine sees only its text)
    this.aborter = new AbortController();
  }

  get stored() { return this.parts.length ? this.parts[this.parts.length - 1].end : 0; }
  get pos() { return this.stored + this.buffered; }

  // Takes up a partial download kept in the model cache (what was stored of it, checked).
  async resume(entry) {
    const cache = await caches.open(MODEL_CACHE);
    for (let i = 0, start = 0; i < entry.parts.length; i++) {
      const resp = await cache.match(partKey(this.id, i));
      const blob = resp && (await resp.blob());
      if (!blob || blob.size !== entry.parts[i]) {
        for (let j = i; j < entry.parts.length; j++) await cache.delete(partKey(this.id, j));
        break;
      }
      this.parts.push({ start, end: start + blob.size, blob });
      start += blob.size;
    }
    Object.assign(this, { size: entry.size ?? null, etag: entry.etag ?? null, lastModified: entry.lastModified ?? null });
  }

  // The first request: the file's size and validators, and the first bytes of the header (or,
  // resuming, the next bytes, which also checks that the file did not change).
  async open() {
    await this.#retrying(async () => { if (!this.body) await this.#request(this.pos, this.pos + HEAD_BYTES - 1); });
  }

  // What the engine reads: {size, slice(from, to) -> {arrayBuffer()}}, served from the parts and
  // the memory, asking the server for what is missing.
  blobLike() {
    const dl = this;
    return { get size() { return dl.size; }, slice: (from, to) => ({ arrayBuffer: () => dl.read(from, to - from).then((u) => u.buffer) }) };
  }

  async read(offset, length) {
    try {
      await this.#retrying(() => this.#ensure(offset + length));
    } catch (e) {
      this.error = isErrorInfo(e) ? e : errorInfo('model', says(e));
      throw this.error.message; // Rust shows a string as it is
    }
    const end = offset + length, pieces = [];
    for (const p of this.parts) if (p.end > offset && p.start < end) pieces.push(p.blob.slice(Math.max(0, offset - p.start), Math.min(p.end, end) - p.start));
    let at = this.stored;
    for (const c of this.chunks) {
      if (at + c.length > offset && at < end) pieces.push(c.subarray(Math.max(0, offset - at), Math.min(at + c.length, end) - at));
      at += c.length;
    }
    return new Uint8Array(await new Blob(pieces).arrayBuffer());
  }

  // Downloads the rest into the model cache; resolves with the whole file as one disk-backed Blob.
  async finish() {
    this.planned = true;
    if (this.store) {
      await this.#checkQuota();
      this.storing = true;
    }
    await this.#retrying(async () => {
      while (this.size === null || this.pos < this.size) {
        if (!this.body && !(await this.#request(this.pos))) break;
        if (!(await this.#more()) && this.size === null) this.size = this.pos; // a whole file of unknown length ended
      }
    });
    this.#drop();
    if (this.pos !== this.size) throw errorInfo('model', `The download of ${this.name} ended at ${this.pos} of its ${this.size} bytes.`);
    this.storing = true;
    await this.#flush();
    if (this.store) await this.#save(false);
    return new Blob(this.parts.map((p) => p.blob));
  }

  // Cancels the download: what was stored stays (the next load of the URL resumes it).
  abort() {
    this.aborter.abort();
    this.#drop();
  }

  // Ends a download that is not needed any more (a plan), without a trace.
  close() { this.#drop(); }

  #drop() {
    if (this.body) this.body.cancel().catch(() => {});
    this.body = null;
  }

  // Reads what the engine asks for: in the header, Range requests of what is missing (at least
  // HEAD_BYTES); a server that sends the whole file instead is read only as far as needed.
  async #ensure(end) {
    while (this.pos < end && (this.size === null || this.pos < this.size)) {
      if (!this.body) {
        const last = Math.max(end, this.pos + HEAD_BYTES) - 1;
        if (!(await this.#request(this.pos, this.planned ? undefined : this.size ? Math.min(last, this.size - 1) : last))) return;
      }
      await this.#more();
    }
  }

  // One chunk of the open body into memory; full parts go to the cache. False at its end.
  async #more() {
    const { done, value } = await this.body.read();
    if (done) {
      this.body = null;
      if (!this.bodyBytes && this.size !== null && this.pos < this.size) throw Object.assign(new Error('the server sent no bytes'), { retry: true });
      return false;
    }
    this.bodyBytes += value.length;
    this.chunks.push(value);
    this.buffered += value.length;
    if (this.planned) this.onBytes(this.pos, this.size);
    if (this.storing && this.buffered >= PART_BYTES) await this.#flush();
    return true;
  }

  // Asks for bytes `from`..`to` (open-ended without `to`) and opens the body at `from`; false when
  // nothing is left. A changed file, or a server that ignores Range once bytes are stored, starts
  // the download over.
  async #request(from, to) {
    const resp = await fetch(this.url, { headers: { Range: `bytes=${from}-${to ?? ''}` }, cache: 'no-store', signal: this.aborter.signal });
    const length = resp.headers.get('content-length');
    if (resp.status === 416) {
      resp.body?.cancel().catch(() => {});
      if (this.size !== null && from >= this.size) return false;
      await this.#restart(`the server has fewer bytes of ${this.name} than were kept: it changed`);
      return this.#request(0, to === undefined ? undefined : HEAD_BYTES - 1);
    }
    let total;
    if (resp.status === 206) {
      const cr = contentRange(resp.headers.get('content-range'));
      if (!cr && to !== undefined) { // a Content-Range this page may not read (CORS): the length of an open-ended answer gives the size
        resp.body?.cancel().catch(() => {});
        return this.#request(from);
      }
      if (cr && cr.start !== from) throw errorInfo('model', `The server of ${this.url} answered bytes ${cr.start}- to a request for bytes ${from}-.`);
      total = cr && cr.total !== null ? cr.total : to === undefined && length !== null ? from + Number(length) : null;
      if (from > 0 && this.#changed(resp, total)) {
        resp.body?.cancel().catch(() => {});
        await this.#restart(`${this.name} changed on the server since its download began (its size, ETag or Last-Modified differ)`);
        return this.#request(0, to === undefined ? undefined : HEAD_BYTES - 1);
      }
    } else if (resp.ok) { // the whole file: the server does not serve ranges
      if (this.pos > 0) await this.#restart(`the server of ${this.url} does not resume downloads (it ignored the Range request)`);
      total = length !== null && !resp.headers.get('content-encoding') ? Number(length) : null;
    } else {
      resp.body?.cancel().catch(() => {});
      const e = errorInfo('model', `Could not download the model from ${this.url}: HTTP ${resp.status} ${resp.statusText}.`);
      throw Object.assign(e, { retry: resp.status >= 500 || resp.status === 408 || resp.status === 429 });
    }
    Object.assign(this, { size: total, etag: resp.headers.get('etag') || this.etag, lastModified: resp.headers.get('last-modified') || this.lastModified });
    this.body = resp.body.getReader();
    this.bodyBytes = 0;
    return true;
  }

  #changed(resp, total) {
    const etag = resp.headers.get('etag'), modified = resp.headers.get('last-modified');
    return (this.size !== null && total !== null && total !== this.size)
      || (!!this.etag && !!etag && etag !== this.etag)
      || (!!this.lastModified && !!modified && modified !== this.lastModified);
  }

  // Forgets every byte kept of this file (it changed, or the server cannot resume).
  async #restart(why) {
    this.onWarning(`Downloading ${this.name} from the start: ${why}.`);
    this.#drop();
    if (this.store && self.caches) {
      const cache = await caches.open(MODEL_CACHE);
      for (let i = 0; i < this.parts.length; i++) await cache.delete(partKey(this.id, i));
      await writeIndex((await readIndex()).filter((m) => m.id !== this.id));
    }
    Object.assign(this, { parts: [], chunks: [], buffered: 0, size: null, etag: null, lastModified: null });
  }

  // Runs `step` again after a lost connection or a server error (from where the bytes stopped,
  // after a pause), until RETRIES tries in a row brought nothing.
  async #retrying(step) {
    for (let failures = 0; ;) {
      const before = this.pos;
      try {
        return await step();
      } catch (e) {
        this.#drop();
        if (this.aborter.signal.aborted) {
          await this.#flush().catch(() => {});
          throw this.#stopped(errorInfo('cancelled', `The download of ${this.name} was cancelled at ${this.#where()}.`));
        }
        if (isErrorInfo(e) && !e.retry) throw e;
        failures = this.pos > before ? 1 : failures + 1;
        await this.#flush();
        if (failures > RETRIES) throw this.#stopped(errorInfo('model', `The download of ${this.name} stopped at ${this.#where()} after ${RETRIES + 1} tries: ${says(e)}.`));
        await sleep(Math.min(8000, 250 * 2 ** failures));
      }
    }
  }

  #where() { return `${fmtBytes(this.pos)} of ${this.size === null ? 'an unknown size' : fmtBytes(this.size)}`; }

  #stopped(e) {
    if (this.store && this.stored) e.message += ` The ${fmtBytes(this.stored)} downloaded are kept in this browser (listed with the saved models): load the same URL again to resume.`;
    return e;
  }

  // The buffered bytes as one more part: into the model cache when storing (else kept as a Blob).
  async #flush() {
    if (!this.storing || !this.buffered) return;
    const start = this.stored, blob = new Blob(this.chunks);
    if (!this.store || !self.caches) {
      this.parts.push({ start, end: start + blob.size, blob });
      Object.assign(this, { chunks: [], buffered: 0 });
      return;
    }
    const key = partKey(this.id, this.parts.length);
    const cache = await caches.open(MODEL_CACHE);
    try {
      await cache.put(key, new Response(blob, { headers: { 'content-type': 'application/octet-stream', 'content-length': String(blob.size) } }));
    } catch (e) {
      if (isQuota(e)) throw this.#stopped(this.#quotaError(await estimate(), this.size === null ? blob.size : this.size - start, ` (the browser refused to store more: ${e.name || 'QuotaExceededError'})`));
      throw errorInfo('model', `Could not store ${this.name} in this browser: ${says(e)}.`);
    }
    const kept = await cache.match(key);
    this.parts.push({ start, end: start + blob.size, blob: kept ? await kept.blob() : blob });
    Object.assign(this, { chunks: [], buffered: 0 });
    await this.#save(true);
  }

  async #checkQuota() {
    const need = this.size === null ? 0 : this.size - this.stored;
    const est = await estimate();
    if (est && need > est.quota - est.usage) throw this.#quotaError(est, need, '');
  }

  #quotaError(est, need, refused) {
    const numbers = est
      ? `this site may store ${fmtBytes(est.quota)} here and already uses ${fmtBytes(est.usage)} (${fmtBytes(Math.max(0, est.quota - est.usage))} free)`
      : 'the browser does not say how much this site may store';
    return errorInfo('limits', `Not enough storage in this browser for ${this.name} (${fmtBytes(this.size)}): ${fmtBytes(need)} more must be stored, but ${numbers}${refused}. `
      + 'Free space (delete saved models below, or free disk space: a browser lets a site use a share of the free disk), pick a smaller quant of the model '
      + '(a Q4_0 GGUF is about a quarter of the F16 size), or run it with the native CLI (unmask generate --model FILE), which reads it from disk.');
  }

  // The download's entry in the model index (`partial` until the whole file is stored).
  async #save(partial) {
    const list = await readIndex();
    const old = list.find((m) => m.id === this.id);
    const name = partial ? `${this.name} (incomplete: ${fmtBytes(this.stored)} of ${fmtBytes(this.size)}; Load resumes it)` : this.name;
    const entry = { ...old, id: this.id, name, source: 'url', url: this.url, format: this.format, partial, size: this.size, etag: this.etag, lastModified: this.lastModified,
      parts: this.parts.map((p) => p.end - p.start), bytes: this.stored, added: old?.added ?? Date.now(), files: old?.files ?? {} };
    await writeIndex([...list.filter((m) => m.id !== this.id), entry]);
  }
}

// The files of a URL model for the engine (see worker.js's readFiles): the small ones in memory,
// the model file as a Download whose first bytes are read; `finish()` downloads the rest and keeps
// the small files beside it (so that a finished download can be loaded again without the network,
// whatever happens next). A URL whose whole file is kept answers {saved: id} instead. `store`:
// false for a plan (nothing kept).
export async function urlModel(url, { store = true, onBytes, onWarning } = {}) {
  const f = urlFiles(url);
  const entry = self.caches ? (await readIndex()).find((m) => m.id === f.id) : null;
  if (entry && !entry.partial) return { saved: entry.id };
  const get = async (u, what, optional) => {
    const resp = u && (await fetchOk(u, what, optional));
    return resp ? readBody(resp) : null;
  };
  const config = f.config ? await get(f.config, 'config.json (a safetensors model needs it beside the weights)', false) : null;
  const tokenizer = await get(f.tokenizer, 'tokenizer.json', true);
  const generation = f.generation ? await get(f.generation, 'generation_config.json', true) : null;
  const download = new Download(f, { store, onBytes, onWarning });
  if (store && entry && entry.partial && Array.isArray(entry.parts)) await download.resume(entry);
  await download.open();
  if (download.size === null) await download.finish(); // no length given: the engine needs the size first
  const finish = async () => {
    const blob = await download.finish();
    if (store && self.caches) {
      const cache = await caches.open(MODEL_CACHE);
      const files = {};
      for (const [key, bytes] of [['config', config], ['tokenizer', tokenizer], ['generation', generation]]) {
        if (!bytes) continue;
        await cache.put(f[key], new Response(bytes, { headers: { 'content-type': 'application/json', 'content-length': String(bytes.length) } }));
        files[key] = f[key];
      }
      const list = await readIndex();
      await writeIndex(list.map((m) => (m.id === f.id ? { ...m, files, bytes: m.bytes + (config?.length || 0) + (tokenizer?.length || 0) + (generation?.length || 0) } : m)));
    }
    return blob;
  };
  return { id: f.id, format: f.format, name: f.name, blobs: [{ name: f.name, blob: download.blobLike() }], config: text(config), tokenizer, generation: text(generation), download, finish };
}

// The Blob of a model file kept in parts (an index entry's), read from the cache.
export async function keptBlob(entry) {
  const cache = await caches.open(MODEL_CACHE);
  const blobs = [];
  for (let i = 0; i < entry.parts.length; i++) {
    const resp = await cache.match(partKey(entry.id, i));
    const blob = resp && (await resp.blob());
    if (!blob || blob.size !== entry.parts[i]) throw errorInfo('model', `The saved copy of ${entry.name} is incomplete (part ${i + 1} of ${entry.parts.length} is missing): delete it and download it again.`);
    blobs.push(blob);
  }
  return new Blob(blobs);
}
