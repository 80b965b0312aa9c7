// Big models from a URL (www/download.js, through the engine API of www/unmask.js) in Debian's
// Chromium (WebGPU on SwiftShader), driven by playwright-core, against the local test server
// (serve.mjs: Range requests, and ?cut / ?stall / ?norange to play a bad network, every request
// logged): Hub URLs give the right file name and cache key (a pure function, no network); the
// memory plan comes from a Range request for the header before the rest downloads, and a model
// that cannot fit is refused having moved only its header; the model loads from the URL and
// answers as the bundled one does; a connection cut mid-way resumes with `Range: bytes=<where it
// stopped>-` and a load cancelled mid-way is resumed by the next load, both giving the file's exact
// bytes; a server that ignores Range still works; a full storage quota is explained with the
// numbers; a swap frees the old model (its GPU device destroyed) before the new one allocates
// anything, and a swap that fails after that says that no model is loaded. The page runs under
// the app's service worker (sw.js), as the app does. The engine's worker runs with test hooks
// (test-output/web_download/site/test-hooks.js, written here): a fake storage estimate or quota
// error, a smaller adapter, a refused GPU device, and a record of each GPU device's buffers.
// Run by `./build.sh test` after page.test.mjs, or alone:
//   node tests/web_page/download.test.mjs

import { checks, launchChromium, listening } from './harness.mjs';
import { spawn } from 'node:child_process';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const site = path.join(root, 'test-output/web_download/site');
const LONG = Number(process.env.WEB_TEST_TIMEOUT_S || 300) * 1000;
const HEAD = 1 << 20; // download.js's HEAD_BYTES: the first Range request
const PROMPT = { prompt: 'The weather today is', max_tokens: 8, block_length: 8, steps: 8, seed: 0 };

const { results, check } = checks();

// The same bytes as www/models.js's fmtBytes (the numbers the messages carry).
function fmtBytes(n) {
  const units = ['B', 'KB', 'MB', 'GB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${n.toFixed(i === 0 ? 0 : n < 10 ? 2 : 1)} ${units[i]}`;
}

// Inside the worker, before worker.js: hooks set by a {type: 'test-hooks'} message, and the GPU
// devices and buffers, reported on {type: 'test-gpu'}.
const HOOKS = `
const hooks = { estimate: null, quotaPut: false, binding: null, failDevice: 0 };
const gpu = { devices: [], firsts: [] };
const ofDevice = new WeakMap(), ofBuffer = new WeakMap();
self.addEventListener('message', (e) => {
  const m = e.data;
  if (m && m.type === 'test-hooks') { Object.assign(hooks, m.hooks); e.stopImmediatePropagation(); self.postMessage({ type: 'test-hooks-set' }); }
  if (m && m.type === 'test-gpu') { e.stopImmediatePropagation(); self.postMessage({ type: 'test-gpu', devices: gpu.devices, firsts: gpu.firsts }); }
});
const estimate = navigator.storage.estimate.bind(navigator.storage);
navigator.storage.estimate = async () => hooks.estimate || estimate();
const put = Cache.prototype.put;
Cache.prototype.put = function (req, resp) {
  if (hooks.quotaPut && String(req.url || req).includes('/__unmask__/parts/')) return Promise.reject(new DOMException('test: the quota is full', 'QuotaExceededError'));
  return put.call(this, req, resp);
};
const limits = Object.getOwnPropertyDescriptor(GPUAdapter.prototype, 'limits');
Object.defineProperty(GPUAdapter.prototype, 'limits', { configurable: true, get() {
  const real = limits.get.call(this);
  return hooks.binding ? new Proxy(real, { get: (t, k) => (k === 'maxStorageBufferBindingSize' ? hooks.binding : t[k]) }) : real;
} });
const requestDevice = GPUAdapter.prototype.requestDevice;
GPUAdapter.prototype.requestDevice = async function (...args) {
  if (hooks.failDevice > 0 && --hooks.failDevice === 0) throw new DOMException('test: this adapter refuses a device', 'OperationError');
  const device = await requestDevice.apply(this, args);
  const rec = { id: gpu.devices.length, live: 0, buffers: 0, destroyed: false };
  gpu.devices.push(rec);
  ofDevice.set(device, rec);
  return device;
};
const createBuffer = GPUDevice.prototype.createBuffer;
GPUDevice.prototype.createBuffer = function (desc) {
  const buffer = createBuffer.call(this, desc);
  const rec = ofDevice.get(this);
  if (rec) {
    if (!rec.buffers) gpu.firsts.push({ device: rec.id, othersLive: gpu.devices.filter((d) => d !== rec && !d.destroyed).reduce((s, d) => s + d.live, 0) });
    rec.live += desc.size;
    rec.buffers++;
    ofBuffer.set(buffer, { rec, size: desc.size });
  }
  return buffer;
};
const destroyBuffer = GPUBuffer.prototype.destroy;
GPUBuffer.prototype.destroy = function () {
  const b = ofBuffer.get(this);
  if (b) { ofBuffer.delete(this); if (!b.rec.destroyed) b.rec.live -= b.size; }
  return destroyBuffer.call(this);
};
const destroyDevice = GPUDevice.prototype.destroy;
GPUDevice.prototype.destroy = function () {
  const rec = ofDevice.get(this);
  if (rec) { rec.destroyed = true; rec.live = 0; }
  return destroyDevice.call(this);
};
`;

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>Unmask download test</title>
<script type="module">
const W = window.Worker;
window.workers = [];
window.Worker = class extends W { constructor(...a) { super(...a); window.workers.push(this); } };
window.api = await import('./unmask.js');
// The page's service worker, as in the app: the engine's worker fetches through it.
await navigator.serviceWorker.register('sw.js');
await navigator.serviceWorker.ready;
if (!navigator.serviceWorker.controller) await new Promise((r) => navigator.serviceWorker.addEventListener('controllerchange', r, { once: true }));
window.ready = true;
</script>
`;

// A folder served as the site: www/ (linked), the family fixtures, and the worker with its hooks.
function makeSite() {
  fs.rmSync(site, { recursive: true, force: true });
  fs.mkdirSync(site, { recursive: true });
  for (const f of fs.readdirSync(path.join(root, 'www'))) {
    fs.symlinkSync(path.join(root, 'www', f), path.join(site, f === 'worker.js' ? 'worker.real.js' : f));
  }
  fs.symlinkSync(path.join(root, 'tests/data/families'), path.join(site, 'fixtures'));
  fs.writeFileSync(path.join(site, 'worker.js'), "// The engine's worker with download.test.mjs's hooks.\nimport './test-hooks.js';\nimport './worker.real.js';\n");
  fs.writeFileSync(path.join(site, 'test-hooks.js'), HOOKS);
  fs.writeFileSync(path.join(site, 'test.html'), PAGE);
}

// serve.mjs on a free port, logging every request.
function startServer(log) {
  const child = spawn(process.execPath, [path.join(here, 'serve.mjs'), site], { env: { ...process.env, PORT: '0', SERVE_LOG: '1' }, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let text = '';
    child.stdout.on('data', (d) => {
      text += d;
      let nl;
      while ((nl = text.indexOf('\n')) >= 0) {
        const line = text.slice(0, nl);
        text = text.slice(nl + 1);
        const m = line.match(/on (http:\/\/127\.0\.0\.1:\d+\/)/);
        if (m) resolve({ child, url: m[1] });
        else if (line.startsWith('{')) log.push(JSON.parse(line));
      }
    });
    child.on('exit', (code) => reject(new Error(`the server exited (${code}) before listening`)));
    setTimeout(() => reject(new Error('the server did not start in 20 s')), 20000);
  });
}

async function main() {
  for (const f of ['www/pkg/unmask_bg.wasm', 'www/models/manifest.json']) {
    if (!fs.existsSync(path.join(root, f))) { console.error(`missing ${f}: build the page first (./build.sh web)`); process.exit(2); }
  }
  const manifest = JSON.parse(fs.readFileSync(path.join(root, 'www/models/manifest.json'), 'utf8')).bundled[0];
  const modelRel = `models/${manifest.files.model}`;
  const modelBytes = fs.readFileSync(path.join(root, 'www', modelRel));
  const size = modelBytes.length;
  const sha = crypto.createHash('sha256').update(modelBytes).digest('hex');
  const name = modelRel.split('/').pop();
  makeSite();
  const log = [];
  const server = await startServer(log);
  const at = (q) => new URL(`${modelRel}?${q}`, server.url).href;
  const requests = (url) => log.filter((r) => server.url.replace(/\/$/, '') + r.url === url && !r.stalling);
  const browser = await launchChromium();
  const pageErrors = [];
  try {
    const page = await (await browser.newContext()).newPage();
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error') console.log(`  [page console] ${m.text()}`); });
    await page.goto(new URL('test.html', server.url).href);
    await page.waitForFunction(() => window.ready === true);

    // Page-side helpers.
    const hooks = (h) => page.evaluate(async (h) => {
      const w = window.workers[window.workers.length - 1];
      const set = new Promise((r) => w.addEventListener('message', function f(e) { if (e.data.type === 'test-hooks-set') { w.removeEventListener('message', f); r(); } }));
      w.postMessage({ type: 'test-hooks', hooks: h });
      await set;
    }, h);
    const gpuStats = () => page.evaluate(async () => {
      const w = window.workers[window.workers.length - 1];
      const got = new Promise((r) => w.addEventListener('message', function f(e) { if (e.data.type === 'test-gpu') { w.removeEventListener('message', f); r(e.data); } }));
      w.postMessage({ type: 'test-gpu' });
      return got;
    });
    // Loads `src` ('bundled' or a URL) with `opts`; {model, error, events}: every event in order.
    const load = (src, opts = {}) => page.evaluate(async ([src, opts]) => {
      const events = [];
      const on = (type) => (x) => events.push({ type, ...(typeof x === 'object' ? { phase: x.phase, loaded: x.loaded, total: x.total } : { value: x }) });
      try {
        const source = src === 'bundled' ? await window.api.bundledModel() : src;
        const m = await window.engine.load(source, { ...opts, onProgress: on('progress'), onPlan: on('plan'), onUnloaded: on('unloaded'), onWarning: on('warning'), onSaved: on('saved') });
        return { model: { name: m.name, bytes: m.bytes, plan: m.plan }, events };
      } catch (e) {
        return { error: { kind: e.kind, message: e.message }, events, model: window.engine.model };
      }
    }, [src, opts]);
    const generate = () => page.evaluate(async (p) => {
      try {
        return { text: (await window.engine.completions.create(p)).choices[0].text };
      } catch (e) {
        return { error: { kind: e.kind, message: e.message } };
      }
    }, PROMPT);
    // The model index's entry for `url`, and the SHA-256 of its kept bytes.
    const kept = (url) => page.evaluate(async (url) => {
      const { readIndex, entryKeys, MODEL_CACHE } = await import('./models.js');
      const { keptBlob } = await import('./download.js');
      const entry = (await readIndex()).find((m) => m.id === `url:${url}`) || null;
      const keys = (await (await caches.open(MODEL_CACHE)).keys()).map((r) => r.url).filter((u) => u.includes('/__unmask__/parts/'));
      let sha = null;
      if (entry && !entry.partial) {
        const digest = await crypto.subtle.digest('SHA-256', await (await keptBlob(entry)).arrayBuffer());
        sha = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
      }
      return { entry, sha, partKeys: keys.length, entryKeys: entry ? entryKeys(entry).length : 0 };
    }, url);
    const forget = (url) => page.evaluate(async (url) => (await import('./models.js')).deleteSaved(`url:${url}`), url);
    const order = (events, type, pred = () => true) => events.findIndex((e) => e.type === type && pred(e));
    const ok = (r) => assert.equal(r.error, undefined, JSON.stringify(r.error));

    await check('a Hub resolve URL gives the file name, format, siblings and cache key (pure function)', async () => {
      const r = await page.evaluate(async () => {
        const { urlFiles } = await import('./download.js');
        const { partKey } = await import('./models.js');
        const hub = 'https://huggingface.co/someone/LLaDA-8B-Instruct-GGUF/resolve/main/llada-8b-instruct-q4_0.gguf?download=true';
        const st = 'https://huggingface.co/someone/Dream-v0/resolve/main/sub%20dir/model.safetensors';
        const f = urlFiles(hub), s = urlFiles(st), dir = urlFiles('https://huggingface.co/someone/Dream-v0/resolve/main/');
        return { f, s, dir, key0: partKey(f.id, 0), key1: partKey(f.id, 1), keyS: partKey(s.id, 0), origin: location.origin };
      });
      const hub = 'https://huggingface.co/someone/LLaDA-8B-Instruct-GGUF/resolve/main/llada-8b-instruct-q4_0.gguf?download=true';
      assert.equal(r.f.name, 'llada-8b-instruct-q4_0.gguf');
      assert.equal(r.f.format, 'gguf');
      assert.equal(r.f.model, hub);
      assert.equal(r.f.id, `url:${hub}`, 'the cache key is the URL asked for, not where the Hub redirects');
      assert.equal(r.f.tokenizer, 'https://huggingface.co/someone/LLaDA-8B-Instruct-GGUF/resolve/main/tokenizer.json?download=true');
      assert.equal(r.s.name, 'model.safetensors');
      assert.equal(r.s.format, 'safetensors');
      assert.equal(r.s.config, 'https://huggingface.co/someone/Dream-v0/resolve/main/sub%20dir/config.json');
      assert.equal(r.s.generation, 'https://huggingface.co/someone/Dream-v0/resolve/main/sub%20dir/generation_config.json');
      assert.equal(r.dir.model, 'https://huggingface.co/someone/Dream-v0/resolve/main/model.safetensors');
      assert.equal(r.dir.name, 'model.safetensors');
      for (const k of [r.key0, r.key1, r.keyS]) assert.ok(k.startsWith(`${r.origin}/__unmask__/parts/`), k);
      assert.equal(decodeURIComponent(r.key0.split('/').slice(-2)[0]), r.f.id, 'the part key names the download');
      assert.equal(new Set([r.key0, r.key1, r.keyS]).size, 3);
    });

    let reference; // the bundled model's answer
    await check('the engine starts and answers with the bundled model', async () => {
      await page.evaluate(async () => { window.engine = await window.api.createEngine({ worker: true }); });
      const r = await load('bundled');
      ok(r);
      const g = await generate();
      ok(g);
      reference = g.text;
      console.log(`  ${JSON.stringify(reference)}`);
    });

    await check('from a URL: the plan comes from a Range request for the header before the rest downloads; the swap frees the old model first; same answer', async () => {
      const url = at('t=plain');
      const before = await gpuStats();
      const live = before.devices.filter((d) => !d.destroyed && d.live > 0);
      assert.equal(live.length, 1, `one device holds the bundled model: ${JSON.stringify(before.devices)}`);
      const r = await load(url, { keep: false });
      ok(r);
      const plan = order(r.events, 'plan'), body = order(r.events, 'progress', (e) => e.phase === 'download');
      const unloaded = order(r.events, 'unloaded'), upload = order(r.events, 'progress', (e) => e.phase === 'upload');
      assert.ok(plan >= 0 && body > plan, `the plan (event ${plan}) before the body's first progress (event ${body})`);
      assert.equal(r.events[body].total, size);
      assert.ok(r.events.some((e) => e.type === 'progress' && e.phase === 'download' && e.loaded === size), 'progress reaches the size');
      assert.match(r.events[plan].value, /on the GPU: .* of weights/);
      const reqs = requests(url).map((q) => `${q.range} ${q.status}`);
      assert.deepEqual(reqs, [`bytes=0-${HEAD - 1} 206`, `bytes=${HEAD}- 206`], 'the header first, then the rest');
      // The swap: the old model freed before the new weights moved, its device destroyed first.
      assert.ok(unloaded > plan && unloaded < upload, `unloaded (event ${unloaded}) between the plan and the upload (event ${upload})`);
      assert.equal(r.events[unloaded].value, manifest.name);
      const after = await gpuStats();
      const mine = after.firsts.filter((f) => f.device >= before.devices.length);
      assert.ok(mine.length >= 1, 'the new model allocated nothing?');
      assert.equal(mine[mine.length - 1].othersLive, 0, `the old model still held GPU memory when the new one allocated: ${JSON.stringify(mine)}`);
      assert.equal(after.devices.filter((d) => !d.destroyed && d.live > 0).length, 1, JSON.stringify(after.devices));
      const g = await generate();
      ok(g);
      assert.equal(g.text, reference, 'the URL model answered differently');
      const k = await kept(url);
      assert.equal(k.entry, null, 'loaded without keep, yet kept');
      assert.equal(k.partKeys, 0, 'parts left in the cache');
    });

    await check('a swap to another model (a Dream fixture) works; a swap that fails after the free says no model is loaded', async () => {
      const dream = new URL('fixtures/dream/model.gguf', server.url).href;
      const r = await load(dream, { keep: false });
      ok(r);
      assert.equal(r.model.name, 'model.gguf');
      assert.equal(r.events.find((e) => e.type === 'unloaded')?.value, name);
      const g = await generate();
      ok(g);
      assert.equal(typeof g.text, 'string');
      const stats = await gpuStats();
      assert.equal(stats.devices.filter((d) => !d.destroyed && d.live > 0).length, 1, JSON.stringify(stats.devices));
      // The second device asked for from now (the load's; the first is the plan's) is refused.
      await hooks({ failDevice: 2 });
      const bad = await load('bundled');
      assert.equal(bad.error?.kind, 'gpu', JSON.stringify(bad.error));
      assert.match(bad.error.message, /model\.gguf\) was freed to make room for this one: no model is loaded now/);
      assert.equal(bad.model, null, 'engine.model after a failed swap');
      const none = await generate();
      assert.match(none.error?.message || '', /No model is loaded/);
      await hooks({ failDevice: 0 });
      ok(await load('bundled'));
      console.log(`  ${bad.error.message}`);
    });

    await check('a connection cut mid-way resumes at the byte where it stopped; the kept file is the exact file', async () => {
      const cut = 2000000;
      const url = at(`cut=${cut}&t=cut`);
      const r = await load(url, { keep: true });
      ok(r);
      const reqs = requests(url);
      console.log(`  requests: ${reqs.map((q) => `${q.range} ${q.status}${q.cut ? ` cut after ${q.sent}` : ''}`).join(' · ')}`);
      assert.equal(reqs[0].range, `bytes=0-${HEAD - 1}`);
      assert.equal(reqs[1].range, `bytes=${HEAD}-`);
      assert.ok(reqs[1].cut, 'the server cut the rest');
      // It goes on from the last byte that reached the worker: the cut, or before it (Chromium
      // may drop what it had buffered when the connection breaks: on a loaded machine all of
      // it, so the worker resumes right after the header), never from the start.
      const from = Number(/^bytes=(\d+)-$/.exec(reqs[2].range)?.[1]);
      assert.ok(from >= HEAD && from <= cut, `the resumed request asked ${reqs[2].range}: not where the bytes stopped (${HEAD}..${cut})`);
      assert.equal(reqs[2].status, 206);
      assert.equal(reqs.length, 3);
      assert.ok(r.events.some((e) => e.type === 'saved'));
      const k = await kept(url);
      assert.equal(k.entry.partial, false);
      assert.equal(k.sha, sha, 'the stitched file differs from the served one');
      const g = await generate();
      ok(g);
      assert.equal(g.text, reference);
      await forget(url);
      assert.equal((await kept(url)).partKeys, 0);
    });

    await check('a load cancelled mid-download keeps what came; the next load resumes from there', async () => {
      const stall = 3000000;
      const url = at(`stall=${stall}&t=stall`);
      const loaded = await page.evaluate(() => window.engine.model?.name);
      await page.evaluate((u) => {
        window.aborter = new AbortController();
        window.cancelled = window.engine.load(u, { keep: false, signal: window.aborter.signal }).then(() => ({}), (e) => ({ kind: e.kind, message: e.message }));
      }, url);
      const t0 = Date.now();
      while (!log.some((q) => q.stalling && q.url.includes('t=stall'))) {
        assert.ok(Date.now() - t0 < LONG, 'the server never stalled');
        await new Promise((r) => setTimeout(r, 100));
      }
      await page.waitForTimeout(500); // the bytes before the stall reach the worker
      const e = await page.evaluate(() => { window.aborter.abort(); return window.cancelled; });
      assert.equal(e.kind, 'cancelled', JSON.stringify(e));
      assert.match(e.message, /kept in this browser.*load the same URL again to resume/);
      const partial = await kept(url);
      assert.equal(partial.entry?.partial, true, JSON.stringify(partial.entry));
      assert.deepEqual(partial.entry.parts, [stall], 'what was stored');
      assert.equal(await page.evaluate(() => window.engine.model?.name), loaded, 'a cancelled load left the loaded model');
      const r = await load(url, { keep: true });
      ok(r);
      const reqs = requests(url).map((q) => `${q.range} ${q.status}`);
      console.log(`  requests: ${reqs.join(' · ')}`);
      assert.deepEqual(reqs.slice(2), [`bytes=${stall}-${stall + HEAD - 1} 206`, `bytes=${stall + HEAD}- 206`], 'the second load went on from the kept bytes');
      const k = await kept(url);
      assert.equal(k.sha, sha);
      const g = await generate();
      ok(g);
      assert.equal(g.text, reference);
      await forget(url);
    });

    await check('a server that ignores Range still works (the plan from the first bytes of the whole file)', async () => {
      const url = at('norange=1&t=norange');
      const r = await load(url, { keep: false });
      ok(r);
      const reqs = requests(url);
      assert.deepEqual(reqs.map((q) => q.status), [200], JSON.stringify(reqs));
      const plan = order(r.events, 'plan'), body = order(r.events, 'progress', (e) => e.phase === 'download');
      assert.ok(plan >= 0 && body > plan, `plan ${plan}, body ${body}`);
      const g = await generate();
      ok(g);
      assert.equal(g.text, reference);
    });

    await check('a model that cannot fit is refused from its header: only the header moved, the loaded model stays', async () => {
      await hooks({ binding: 65536 });
      const url = at('t=nofit');
      const r = await load(url, { keep: true });
      await hooks({ binding: null });
      assert.equal(r.error?.kind, 'limits', JSON.stringify(r.error));
      assert.match(r.error.message, /65\.5 kB|65536/);
      assert.match(r.error.message, /memory plan: .* on the GPU/);
      assert.match(r.error.message, /Only its header was downloaded/);
      assert.deepEqual(requests(url).map((q) => q.range), [`bytes=0-${HEAD - 1}`]);
      assert.ok(r.model?.name, 'the loaded model stays');
      assert.equal((await kept(url)).entry, null);
      const g = await generate();
      assert.equal(g.text, reference);
      console.log(`  ${r.error.message}`);
    });

    await check('a full storage quota is explained with the numbers (estimate before, QuotaExceededError during)', async () => {
      const quota = 3000000, usage = 1000000;
      await hooks({ estimate: { quota, usage } });
      const url = at('t=quota');
      const r = await load(url, { keep: true });
      await hooks({ estimate: null });
      assert.equal(r.error?.kind, 'limits', JSON.stringify(r.error));
      for (const n of [size, quota, usage, quota - usage]) assert.ok(r.error.message.includes(fmtBytes(n)), `${fmtBytes(n)} missing: ${r.error.message}`);
      assert.match(r.error.message, /smaller quant/);
      assert.match(r.error.message, /native CLI/);
      assert.deepEqual(requests(url).map((q) => q.range), [`bytes=0-${HEAD - 1}`], 'nothing downloaded past the header');
      console.log(`  ${r.error.message}`);
      await hooks({ quotaPut: true });
      const url2 = at('t=quota-put');
      const r2 = await load(url2, { keep: true });
      await hooks({ quotaPut: false });
      assert.equal(r2.error?.kind, 'limits', JSON.stringify(r2.error));
      assert.match(r2.error.message, /QuotaExceededError/);
      assert.match(r2.error.message, new RegExp(`${fmtBytes(size).replace('.', '\\.')}.*may store [\\d.]+ [kMG]?B here and already uses [\\d.]+ [kMG]?B`));
      assert.ok(r2.model?.name, 'the loaded model stays');
      console.log(`  ${r2.error.message}`);
    });

    assert.deepEqual(pageErrors, [], 'uncaught exceptions in the page');
  } finally {
    await browser.close();
    server.child.kill('SIGTERM');
  }
  console.log(`downloads: ${results.filter((r) => r.ok).length}/${results.length} passed`);
}

main().catch((e) => {
  console.error(e.message || e);
  process.exit(1);
});
