// Soak and faults in the page (issue 21), in Debian's Chromium (WebGPU on SwiftShader), driven by
// playwright-core, through the engine API (www/unmask.js) in a blank page:
//  - soak: 100 generations in one tab (chat, streamed chat, completions, infill; every 8th
//    cancelled mid-run) with two model swaps (the bundled demo model -> the Dream fixture of
//    tests/data/families -> the demo model again); the page's JS heap, the worker's JS heap and its
//    WebAssembly memory (the 'stats' request) are measured after a forced GC at generation 10 and
//    at the end and must not grow past the bounds below; no uncaught error or unhandled rejection
//    in the page or the worker;
//  - faults, injected by the worker's test-only hooks (www/testhooks.js, the page opened with
//    ?test-hooks): the GPU device destroyed while idle and during a generation, a buffer asked
//    for over the device's maxBufferSize during a generation and during a load. Each must reject
//    with an error that says what happened (kind 'gpu': the device was lost; kind 'limits': out
//    of memory) and what to do, leave no model loaded when the GPU's state is gone, and a plain
//    `engine.load` + generation must work again in the same tab, with no reload. The app page
//    itself (index.html) shows the device-loss message and generates again after a reload of the
//    model.
// Run by `./build.sh test` after download.test.mjs, or alone:
//   node tests/web_page/faults.test.mjs

import { checks, launchChromium, listening } from './harness.mjs';
import { spawn } from 'node:child_process';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const site = path.join(root, 'test-output/web_faults/site');
const LONG = Number(process.env.WEB_TEST_TIMEOUT_S || 300) * 1000;
// SOAK_GENERATIONS: fewer for a quick look (the issue asks for 100, the default).
const GENERATIONS = Number(process.env.SOAK_GENERATIONS || 100), CANCEL_EVERY = 8, MEASURE_AT = Math.min(10, GENERATIONS);
const SWAPS_AT = [Math.round(GENERATIONS * 0.4), Math.round(GENERATIONS * 0.7)];
const WASM_BOUND = 16 << 20, HEAP_BOUND = 20e6; // growth allowed from generation 10 to the end
const SMALL = { max_tokens: 8, block_length: 8, steps: 2, temperature: 0 };
const CANCEL_STEPS = 8; // a cancelled generation is asked for 8 steps and stopped after its first
const MB = (n) => (n == null ? 'n/a' : `${(n / 1e6).toFixed(1)} MB`);

const { results, check } = checks();

// In a page before its own scripts: every Worker it makes is kept (the test posts the 'debug'
// hooks to it) and watched for errors; unhandled rejections are recorded.
const HOOKS = `
window.errors = [];
window.addEventListener('error', (e) => window.errors.push('page error: ' + e.message));
window.addEventListener('unhandledrejection', (e) => window.errors.push('page unhandled rejection: ' + (e.reason && e.reason.message || e.reason)));
const W = window.Worker;
window.workers = [];
window.Worker = class extends W {
  constructor(...a) {
    super(...a);
    this.addEventListener('error', (e) => window.errors.push('worker error: ' + e.message));
    this.addEventListener('messageerror', () => window.errors.push('worker messageerror'));
    window.workers.push(this);
  }
};
let n = 0;
// A test-only hook in the engine's worker (protocol.js's 'debug'): what it did.
window.debug = (what, args = {}) => new Promise((resolve, reject) => {
  const w = window.workers[window.workers.length - 1], id = 'debug-' + ++n;
  w.addEventListener('message', function f(e) {
    if (e.data.id !== id) return;
    w.removeEventListener('message', f);
    e.data.type === 'result' ? resolve(e.data.value) : reject(new Error(e.data.error.message));
  });
  w.postMessage({ type: 'debug', id, what, ...args });
});
`;
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>Unmask soak and faults test</title>
<link rel="icon" href="data:,">
<script>${HOOKS}</script>
<script type="module">
window.api = await import('./unmask.js');
window.ready = true;
</script>
`;

function makeSite() {
  fs.rmSync(site, { recursive: true, force: true });
  fs.mkdirSync(site, { recursive: true });
  for (const f of fs.readdirSync(path.join(root, 'www'))) fs.symlinkSync(path.join(root, 'www', f), path.join(site, f));
  fs.symlinkSync(path.join(root, 'tests/data/families'), path.join(site, 'fixtures'));
  fs.writeFileSync(path.join(site, 'test.html'), PAGE);
}

function startServer() {
  const child = spawn(process.execPath, [path.join(here, 'serve.mjs'), site], { env: { ...process.env, PORT: '0' }, stdio: ['ignore', 'pipe', 'inherit'] });
  return listening(child);
}

async function main() {
  for (const f of ['www/pkg/unmask_bg.wasm', 'www/models/manifest.json', 'tests/data/families/dream/model.gguf']) {
    if (!fs.existsSync(path.join(root, f))) { console.error(`missing ${f}: build the page first (./build.sh web)`); process.exit(2); }
  }
  const manifest = JSON.parse(fs.readFileSync(path.join(root, 'www/models/manifest.json'), 'utf8')).bundled[0];
  makeSite();
  const server = await startServer();
  const dream = new URL('fixtures/dream/model.gguf', server.url).href;
  const browser = await launchChromium(['--js-flags=--expose-gc', '--enable-precise-memory-info']);
  const pageErrors = [], consoleErrors = [];
  const t00 = Date.now();
  try {
    const page = await (await browser.newContext()).newPage();
    page.setDefaultTimeout(LONG);
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      consoleErrors.push(m.text());
      console.log(`  [console] ${m.text()}`);
    });
    await page.goto(new URL('test.html?test-hooks', server.url).href);
    await page.waitForFunction(() => window.ready === true);
    await page.evaluate(async () => { window.engine = await window.api.createEngine({ worker: true }); });

    // Loads 'bundled' or a URL: {model} or {error}.
    const load = (src) => page.evaluate(async (src) => {
      try {
        const m = await window.engine.load(src === 'bundled' ? await window.api.bundledModel() : src, { keep: false });
        return { model: m.name };
      } catch (e) {
        return { error: { kind: e.kind, message: e.message }, model: window.engine.model };
      }
    }, src);
    // One generation of kind `how` ('chat', 'stream', 'text', 'infill'); `cancel`: stop it after
    // its first step. {text, steps} or {error}.
    const generate = (how, { cancel = false, seed = 0, hook = null } = {}) => page.evaluate(async ([how, cancel, seed, hook, small, cancelSteps]) => {
      const e = window.engine, ac = new AbortController();
      let steps = 0;
      const onStep = () => {
        steps++;
        if (steps === 1 && cancel) ac.abort();
        if (steps === 1 && hook) window.debug(hook);
      };
      const o = { ...small, seed, onStep, signal: ac.signal, ...(cancel || hook ? { steps: cancelSteps } : {}) };
      const messages = [{ role: 'user', content: `What is ${seed} plus 3?` }];
      try {
        if (how === 'chat') return { text: (await e.chat.completions.create({ messages, ...o })).choices[0].message.content, steps };
        if (how === 'text') return { text: (await e.completions.create({ prompt: `The number ${seed} is`, ...o })).choices[0].text, steps };
        if (how === 'infill') {
          const { max_tokens, block_length, ...rest } = o;
          return { text: (await e.infill('The cat sat [MASK] the mat, then <mask:3> home.', { ...rest, span_length: 4 })).text, steps };
        }
        let text = '';
        for await (const c of await e.chat.completions.create({ messages, ...o, stream: true })) text += c.choices[0].delta.content ?? '';
        return { text, steps };
      } catch (err) {
        return { error: { kind: err.kind, message: err.message }, steps, model: e.model };
      }
    }, [how, cancel, seed, hook, SMALL, CANCEL_STEPS]);
    // The engine worker's JS heap (workers have no performance.memory): the DevTools protocol's
    // Runtime.getHeapUsage in the worker, after HeapProfiler.collectGarbage there.
    const cdp = await browser.newBrowserCDPSession();
    const replies = new Map();
    let cdpId = 0;
    cdp.on('Target.receivedMessageFromTarget', (e) => { const m = JSON.parse(e.message); replies.get(m.id)?.(m); });
    const inWorker = (sessionId, method) => new Promise((resolve) => {
      const id = ++cdpId;
      replies.set(id, (m) => { replies.delete(id); resolve(m.result); });
      cdp.send('Target.sendMessageToTarget', { sessionId, message: JSON.stringify({ id, method }) });
    });
    const workerHeap = async () => {
      try {
        const { targetInfos } = await cdp.send('Target.getTargets');
        const t = targetInfos.find((i) => i.type === 'worker' && i.url.includes('/worker.js?test-hooks'));
        const { sessionId } = await cdp.send('Target.attachToTarget', { targetId: t.targetId, flatten: false });
        await inWorker(sessionId, 'HeapProfiler.collectGarbage');
        const u = await inWorker(sessionId, 'Runtime.getHeapUsage');
        await cdp.send('Target.detachFromTarget', { sessionId });
        return u.usedSize;
      } catch (e) {
        console.log(`  (the worker's JS heap could not be read: ${e.message})`);
        return null;
      }
    };
    // Memory after a forced garbage collection in the page and in the worker.
    const memory = async () => {
      const m = await page.evaluate(async () => {
        window.gc();
        await new Promise((r) => setTimeout(r, 100));
        window.gc();
        const w = await window.engine.stats({ gc: true });
        return { page: performance.memory.usedJSHeapSize, worker: w.js_heap_bytes, wasm: w.wasm_bytes, model: w.model, devices: w.devices };
      });
      return { ...m, worker: m.worker ?? (await workerHeap()) };
    };
    const ok = (r) => assert.equal(r.error, undefined, JSON.stringify(r.error));

    await check(`soak: ${GENERATIONS} generations with cancels and two model swaps in one tab; memory stable, no uncaught error`, async () => {
      const t0 = Date.now();
      ok(await load('bundled'));
      let models = [manifest.name], cancels = 0, done = 0, swaps = 0, atMeasure = null, firstDemo = null;
      const byHow = {};
      for (let g = 1; g <= GENERATIONS; g++) {
        if (SWAPS_AT.includes(g - 1)) {
          const r = await load(swaps === 0 ? dream : 'bundled');
          ok(r);
          models.push(r.model);
          swaps++;
        }
        const onDream = swaps === 1;
        const cancel = g % CANCEL_EVERY === 0;
        // The Dream fixture (random weights, no chat template of note) answers completions.
        const how = onDream ? (g % 2 ? 'text' : 'stream') : ['chat', 'stream', 'text', 'infill'][g % 4];
        const r = await generate(how, { cancel, seed: g % 5 });
        if (cancel) {
          assert.equal(r.error?.kind, 'cancelled', `generation ${g} (${how}) was to be cancelled: ${JSON.stringify(r)}`);
          assert.ok(r.steps >= 1 && r.steps < CANCEL_STEPS, `generation ${g} cancelled after ${r.steps} steps of ${CANCEL_STEPS}`);
          cancels++;
        } else {
          ok(r);
          assert.equal(typeof r.text, 'string');
          done++;
          // Same request, same answer, before and after the swaps (seed g % 5, demo model).
          if (!onDream && how === 'chat') {
            firstDemo ??= {};
            const key = g % 5;
            if (firstDemo[key] === undefined) firstDemo[key] = r.text;
            else assert.equal(r.text, firstDemo[key], `generation ${g}: the demo model answered a repeated request differently`);
          }
        }
        byHow[how] = (byHow[how] || 0) + 1;
        if (g === MEASURE_AT) atMeasure = await memory();
      }
      const end = await memory();
      const secs = (Date.now() - t0) / 1000;
      console.log(`  ${GENERATIONS} generations (${done} finished, ${cancels} cancelled mid-run; ${JSON.stringify(byHow)}), ${swaps} swaps (${models.join(' -> ')}), ${secs.toFixed(0)} s`);
      console.log(`  page JS heap ${MB(atMeasure.page)} -> ${MB(end.page)} · worker JS heap ${MB(atMeasure.worker)} -> ${MB(end.worker)} · wasm memory ${MB(atMeasure.wasm)} -> ${MB(end.wasm)} (generation ${MEASURE_AT} -> ${GENERATIONS}, after a forced GC) · GPU devices open: ${end.devices}`);
      assert.equal(swaps, 2);
      assert.ok(cancels >= Math.floor(GENERATIONS / CANCEL_EVERY), `${cancels} cancels`);
      assert.equal(end.model, manifest.name);
      assert.equal(end.devices, 1, 'one GPU device open (the model\'s) after the swaps');
      assert.ok(end.wasm - atMeasure.wasm < WASM_BOUND, `wasm memory grew ${MB(end.wasm - atMeasure.wasm)}`);
      assert.ok(end.page - atMeasure.page < HEAP_BOUND, `the page's JS heap grew ${MB(end.page - atMeasure.page)}`);
      if (end.worker != null) assert.ok(end.worker - atMeasure.worker < HEAP_BOUND, `the worker's JS heap grew ${MB(end.worker - atMeasure.worker)}`);
      const errors = await page.evaluate(() => window.errors);
      assert.deepEqual([...pageErrors, ...errors], [], 'uncaught errors in the page or the worker');
    });

    // After a fault: no model, and a plain load + generation in the same tab works (a load that
    // does not end in 120 s fails the test, saying whether the worker still answers).
    const recovers = async (what) => {
      assert.equal(await page.evaluate(() => window.engine.model), null, `${what}: engine.model should be null`);
      let timer;
      const hung = new Promise((resolve) => { timer = setTimeout(resolve, 120000, 'hung'); });
      const r = await Promise.race([load('bundled'), hung]);
      clearTimeout(timer);
      if (r === 'hung') {
        const alive = await Promise.race([page.evaluate(() => window.engine.stats()), new Promise((res) => setTimeout(res, 5000, 'no answer'))]);
        assert.fail(`${what}: loading again did not end in 120 s (the worker's stats: ${JSON.stringify(alive)})`);
      }
      ok(r);
      const g = await generate('chat');
      ok(g);
      assert.ok(g.text.length > 0);
      const s = await page.evaluate(() => window.engine.stats());
      assert.equal(s.devices, 1, `${what}: GPU devices open after loading again`);
    };
    const seen = [];

    await check('the GPU device lost while idle: the next generation says so; load again and generate (no reload)', async () => {
      const d = await page.evaluate(() => window.debug('lose-device'));
      assert.equal(d.destroyed, 1);
      const r = await generate('chat');
      assert.equal(r.error?.kind, 'gpu', JSON.stringify(r));
      assert.match(r.error.message, /GPU device was lost/);
      assert.match(r.error.message, /load it again.*no need to reload the page/);
      seen.push(['device lost while idle', r.error]);
      await recovers('lost while idle');
    });

    await check('the GPU device lost during a generation: it stops with that error; load again and generate', async () => {
      const r = await generate('stream', { hook: 'lose-device-at-submit' });
      assert.equal(r.error?.kind, 'gpu', JSON.stringify(r));
      assert.match(r.error.message, /GPU device was lost/);
      assert.ok(r.steps >= 1 && r.steps < CANCEL_STEPS, `it went on for ${r.steps} steps of ${CANCEL_STEPS}`);
      seen.push(['device lost during a generation', r.error]);
      await recovers('lost mid-run');
    });

    await check('out of GPU memory during a generation (a buffer over maxBufferSize): kind limits, says what to do; load again and generate', async () => {
      const armed = await page.evaluate(() => window.debug('oom', { bytes: 1 }));
      assert.equal(armed.armed, 1);
      const r = await generate('chat');
      const after = await page.evaluate(() => window.debug('oom', { bytes: null }));
      assert.equal(after.injected, 1, 'no buffer was made too big');
      assert.equal(r.error?.kind, 'limits', JSON.stringify(r));
      assert.match(r.error.message, /ran out of memory/);
      assert.match(r.error.message, /load it again/);
      assert.match(r.error.message, /smaller or more quantized model/);
      seen.push(['out of memory during a generation', r.error]);
      await recovers('oom mid-run');
    });

    await check('out of GPU memory while loading (a weight buffer over maxBufferSize): nothing loaded, it says so; load again and generate', async () => {
      await page.evaluate(() => window.debug('oom', { bytes: 1 << 20 }));
      const r = await load('bundled');
      const after = await page.evaluate(() => window.debug('oom', { bytes: null }));
      assert.equal(after.injected, 2, 'no weight buffer was made too big');
      assert.equal(r.error?.kind, 'limits', JSON.stringify(r));
      assert.match(r.error.message, /ran out of memory/);
      assert.match(r.error.message, /no model is loaded now/);
      seen.push(['out of memory while loading', r.error]);
      await recovers('oom while loading');
    });

    await check('a debug hook is refused without ?test-hooks', async () => {
      const p2 = await page.context().newPage();
      await p2.goto(new URL('test.html', server.url).href);
      await p2.waitForFunction(() => window.ready === true);
      const r = await p2.evaluate(async () => {
        window.engine = await window.api.createEngine({ worker: true });
        return window.debug('lose-device').then(() => 'accepted', (e) => e.message);
      });
      assert.match(r, /'debug' is for tests/);
      await p2.close();
    });

    await check('the app page (index.html) shows a device loss, and generates again after the model is loaded again', async () => {
      const app = await page.context().newPage();
      const errs = [];
      app.on('pageerror', (e) => errs.push(String(e)));
      await app.addInitScript(HOOKS);
      await app.goto(new URL('index.html?test-hooks', server.url).href);
      await app.waitForFunction(() => document.body.dataset.model, null, { timeout: LONG });
      assert.equal((await app.evaluate(() => window.debug('lose-device'))).destroyed, 1);
      await app.evaluate(() => { delete document.body.dataset.model; document.getElementById('go').click(); });
      await app.waitForFunction(() => !document.getElementById('error').hidden, null, { timeout: LONG });
      const shown = await app.evaluate(() => ({ error: document.getElementById('error').textContent, model: document.getElementById('model-status').textContent, go: document.getElementById('go').disabled }));
      assert.match(shown.error, /GPU device was lost/);
      assert.match(shown.error, /load it again/);
      assert.match(shown.model, /No model loaded/);
      assert.equal(shown.go, true, 'Generate should be disabled with no model');
      seen.push(['the app page, device lost', { kind: 'shown', message: `${shown.error} · status: ${shown.model}` }]);
      await app.evaluate(() => document.getElementById('load-bundled').click());
      await app.waitForFunction(() => document.body.dataset.model, null, { timeout: LONG });
      for (const [k, v] of [['steps', 2], ['gen_length', 8], ['block_length', 8]]) await app.fill(`#opt-${k}`, String(v));
      const since = Date.now();
      await app.evaluate(() => document.getElementById('go').click());
      await app.waitForFunction((t) => Number(document.body.dataset.done || 0) > t || !document.getElementById('error').hidden, since, { timeout: LONG });
      const out = await app.evaluate(() => ({ error: document.getElementById('error').hidden ? null : document.getElementById('error').textContent, text: document.getElementById('output').textContent }));
      assert.equal(out.error, null);
      assert.ok(out.text.length > 0);
      assert.deepEqual([...errs, ...(await app.evaluate(() => window.errors))], [], 'uncaught errors in the app page');
      await app.close();
    });

    for (const [what, e] of seen) console.log(`  ${what}: [${e.kind}] ${e.message}`);
    const errors = await page.evaluate(() => window.errors);
    assert.deepEqual([...pageErrors, ...errors], [], 'uncaught errors in the page or the worker');
  } finally {
    await browser.close();
    server.child.kill('SIGTERM');
  }
  console.log(`faults: ${results.filter((r) => r.ok).length}/${results.length} passed in ${((Date.now() - t00) / 1000).toFixed(0)} s`);
}

main().catch((e) => {
  console.error(e.message || e);
  process.exit(1);
});
