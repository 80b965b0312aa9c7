// The engine API for web pages (www/unmask.js) through its example page (www/examples/chat.html)
// in Debian's Chromium (WebGPU on SwiftShader), driven by playwright-core: the streamed chat
// answer arrives in several pieces while the model still denoises, and its pieces are exactly
// the non-streamed answer with the same seed (and the native CLI's); the results are OpenAI's
// shapes; bad options are refused with {kind: 'input', field}; cancel works on a running and on a
// queued request; infill fills the spans; plan reads a model without loading it; unload frees it.
// Run by `./build.sh test` after page.test.mjs (same prerequisites), or alone:
//   node tests/web_page/api.test.mjs

import { checks, launchChromium, listening } from './harness.mjs';
import { spawn, execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = path.join(process.env.UNMASK_BIN_DIR || path.join(root, 'target/debug'), 'unmask');
const LONG = Number(process.env.WEB_TEST_TIMEOUT_S || 300) * 1000;
const INFILL = 'The cat sat [MASK] the mat, then <mask:3> home.';

const { results, check } = checks();

function startServer() {
  const child = spawn(path.join(root, 'build.sh'), ['serve'], { cwd: root, env: { ...process.env, PORT: '0', UNMASK_NO_BUILD: '1' }, stdio: ['ignore', 'pipe', 'inherit'] });
  return listening(child);
}

function cliJson(args) {
  const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR || `/tmp/unmask-xdg-${process.getuid()}` };
  fs.mkdirSync(env.XDG_RUNTIME_DIR, { recursive: true, mode: 0o700 });
  return JSON.parse(execFileSync(CLI, [...args, '--json'], { cwd: root, env, maxBuffer: 64 << 20 }).toString());
}

// Runs `fn` in the page with the example's engine; an error comes back as {error: {name, kind, field, message}}.
function inPage(page, fn, arg) {
  return page.evaluate(async ([src, a]) => {
    const f = (0, eval)(`(${src})`);
    try {
      return { value: await f(window.example.engine, a) };
    } catch (e) {
      return { error: { name: e.name, kind: e.kind, field: e.field, message: e.message } };
    }
  }, [fn.toString(), arg]);
}

async function main() {
  for (const f of ['www/pkg/unmask_bg.wasm', 'www/models/manifest.json', 'www/examples/chat.html']) {
    if (!fs.existsSync(path.join(root, f))) { console.error(`missing ${f}: build the page first (./build.sh web)`); process.exit(2); }
  }
  if (!fs.existsSync(CLI)) { console.error('missing the CLI: cargo build --bin unmask'); process.exit(2); }
  const manifest = JSON.parse(fs.readFileSync(path.join(root, 'www/models/manifest.json'), 'utf8')).bundled[0];
  const modelPath = path.join(root, 'www/models', manifest.files.model);
  const server = await startServer();
  const browser = await launchChromium();
  const pageErrors = [];
  try {
    const page = await (await browser.newContext()).newPage();
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error') console.log(`  [page console] ${m.text()}`); });
    let streamed, settings, question;

    await check('the example page loads the bundled model and streams a chat answer in pieces', async () => {
      await page.goto(new URL('examples/chat.html', server.url).href);
      await page.waitForFunction(() => window.example && (window.example.answered > 0 || window.example.error), null, { timeout: LONG });
      const ex = await page.evaluate(() => ({ chunks: window.example.chunks, error: window.example.error, settings: window.example.settings, pre: document.getElementById('answer').textContent, steps: window.example.steps, question: document.getElementById('question').value }));
      assert.equal(ex.error, null, `the example failed: ${JSON.stringify(ex.error)}`);
      ({ settings, question } = ex);
      const chunks = ex.chunks.map((c) => c.chunk);
      const last = chunks[chunks.length - 1];
      for (const c of chunks) {
        assert.equal(c.object, 'chat.completion.chunk');
        assert.equal(c.id, chunks[0].id, 'one id for every chunk of a stream');
        assert.equal(c.choices.length, 1);
        assert.equal(c.choices[0].index, 0);
      }
      assert.deepEqual(chunks[0].choices[0].delta, { role: 'assistant', content: '' });
      assert.ok(['stop', 'length'].includes(last.choices[0].finish_reason), `finish_reason ${last.choices[0].finish_reason}`);
      assert.deepEqual(last.choices[0].delta, {});
      assert.ok(chunks.slice(0, -1).every((c) => c.choices[0].finish_reason === null));
      const pieces = ex.chunks.filter((c) => c.chunk.choices[0].delta.content);
      streamed = pieces.map((c) => c.chunk.choices[0].delta.content).join('');
      console.log(`  ${pieces.length} pieces after steps ${pieces.map((c) => c.steps).join(', ')} of ${ex.steps}: ${JSON.stringify(pieces.map((c) => c.chunk.choices[0].delta.content))}`);
      assert.equal(ex.pre, streamed, 'the <pre> shows the pieces');
      assert.ok(pieces.length >= 2, `${pieces.length} pieces before the final chunk`);
      assert.ok(pieces[0].steps < ex.steps, `the first piece came only after the last step (${pieces[0].steps} of ${ex.steps})`);
      assert.ok(streamed.length > 0);
    });

    await check('the same request unstreamed is an OpenAI chat.completion with the streamed text (and the CLI\'s)', async () => {
      const r = await inPage(page, (engine, [q, s]) => engine.chat.completions.create({ messages: [{ role: 'user', content: q }], ...s }), [question, settings]);
      assert.equal(r.error, undefined, JSON.stringify(r.error));
      const c = r.value;
      assert.match(c.id, /^chatcmpl-/);
      assert.equal(c.object, 'chat.completion');
      assert.ok(Number.isInteger(c.created) && Math.abs(c.created - Date.now() / 1000) < 3600, `created ${c.created}`);
      assert.equal(c.model, manifest.name);
      assert.equal(c.choices.length, 1);
      assert.equal(c.choices[0].index, 0);
      assert.equal(c.choices[0].message.role, 'assistant');
      assert.equal(c.choices[0].message.content, streamed, 'streamed pieces and the unstreamed content differ');
      assert.ok(['stop', 'length'].includes(c.choices[0].finish_reason));
      const u = c.usage;
      assert.ok(u.prompt_tokens > 0 && u.completion_tokens > 0 && u.total_tokens === u.prompt_tokens + u.completion_tokens, JSON.stringify(u));
      const cli = cliJson(['generate', '--model', modelPath, '--chat', '--prompt', question, '--gen-length', String(settings.max_tokens), '--block-length', String(settings.block_length), '--steps', String(settings.steps), '--temperature', '0', '--seed', '0']);
      assert.equal(c.choices[0].message.content, cli.text, 'the engine API and the CLI answered differently');
      assert.equal(u.prompt_tokens, cli.prompt_tokens.length);
      console.log(`  ${JSON.stringify(c.choices[0].message.content)} · ${c.choices[0].finish_reason} · ${JSON.stringify(u)}`);
    });

    await check('bad options are refused with {kind: "input", field}', async () => {
      const messages = [{ role: 'user', content: question }];
      for (const [bad, field] of [[{ steps: 0 }, 'steps'], [{ temperature: -1 }, 'temperature'], [{ temprature: 1 }, 'temprature'], [{ max_tokens: 50, block_length: 16 }, 'max_tokens'], [{ steps: 'many' }, 'steps']]) {
        const r = await inPage(page, (engine, [m, b]) => engine.chat.completions.create({ messages: m, ...b }), [messages, bad]);
        assert.ok(r.error, `${JSON.stringify(bad)} was accepted`);
        assert.equal(r.error.name, 'UnmaskError');
        assert.equal(r.error.kind, 'input', JSON.stringify(r.error));
        assert.equal(r.error.field, field, JSON.stringify(r.error));
        console.log(`  ${JSON.stringify(bad)}: ${r.error.message}`);
      }
      // The engine's own checks, past the API's: an empty conversation, a streamed bad option.
      const empty = await inPage(page, (engine) => engine.chat.completions.create({ messages: [] }));
      assert.equal(empty.error && empty.error.kind, 'input', JSON.stringify(empty));
      const streamedBad = await inPage(page, (engine, m) => engine.chat.completions.create({ messages: m, stream: true, steps: 0 }), messages);
      assert.equal(streamedBad.error && streamedBad.error.field, 'steps');
      const v = await inPage(page, (engine) => Promise.all([engine.validate({ block_length: 0 }), engine.validate(engine.defaults.options)]));
      assert.equal(v.value[0].field, 'block_length');
      assert.equal(v.value[1], null, 'the defaults are valid');
    });

    await check('cancel: a running request stops after a step, a queued one never runs, the engine goes on', async () => {
      const r = await inPage(page, async (engine, q) => {
        let steps = 0;
        const messages = [{ role: 'user', content: q }];
        const opts = { max_tokens: 64, block_length: 16, steps: 64 };
        const settle = (p) => p.then((v) => ({ value: v }), (e) => ({ kind: e.kind, message: e.message }));
        const running = settle(engine.chat.completions.create({ messages, ...opts, onStep: () => { if (++steps === 2) engine.cancel(); } }));
        const queued = settle(engine.chat.completions.create({ messages, ...opts, onStep: () => steps++ }));
        return { running: await running, queued: await queued, steps };
      }, question);
      assert.equal(r.error, undefined, JSON.stringify(r.error));
      assert.equal(r.value.running.kind, 'cancelled', JSON.stringify(r.value.running));
      assert.equal(r.value.queued.kind, 'cancelled', JSON.stringify(r.value.queued));
      assert.ok(r.value.steps >= 2 && r.value.steps < 8, `${r.value.steps} steps ran`);
      // A stream the reader leaves: the generation is cancelled, the next request is answered.
      const s = await inPage(page, async (engine, q) => {
        const stream = await engine.chat.completions.create({ messages: [{ role: 'user', content: q }], stream: true, max_tokens: 64, block_length: 16, steps: 64 });
        for await (const c of stream) if (c.choices[0].delta.role) break;
        return engine.completions.create({ prompt: 'The weather today is', max_tokens: 8, block_length: 8, steps: 8 });
      }, question);
      assert.equal(s.error, undefined, JSON.stringify(s.error));
      assert.equal(s.value.object, 'text_completion');
      assert.equal(typeof s.value.choices[0].text, 'string');
      const cli = cliJson(['generate', '--model', modelPath, '--prompt', 'The weather today is', '--gen-length', '8', '--block-length', '8', '--steps', '8', '--seed', '0']);
      assert.equal(s.value.choices[0].text, cli.text);
    });

    await check('infill fills the spans (no mask markers left), as the CLI does', async () => {
      let steps = 0;
      const r = await inPage(page, async (engine, text) => {
        let n = 0;
        const out = await engine.infill(text, { steps: 7, span_length: 4, onStep: () => n++ });
        return { ...out, n };
      }, INFILL);
      assert.equal(r.error, undefined, JSON.stringify(r.error));
      steps = r.value.n;
      assert.doesNotMatch(r.value.text, /\[MASK\]|<mask:/);
      assert.match(r.value.text, /^The cat sat .+ the mat, then .+ home\.$/s);
      assert.ok(steps >= 1 && steps <= 7, `${steps} steps`);
      const cli = cliJson(['infill', '--model', modelPath, '--text', INFILL, '--span-length', '4', '--steps', '7', '--seed', '0']);
      assert.equal(r.value.text, cli.text);
      assert.deepEqual(r.value.tokens, cli.tokens);
      console.log(`  ${JSON.stringify(r.value.text)} in ${steps} steps`);
    });

    await check('plan reads a model without loading it; unload frees the loaded one', async () => {
      const url = `../models/${manifest.files.model}`;
      const r = await inPage(page, async (engine, u) => ({ plan: await engine.plan(u, { quant: 'q8_0' }), model: engine.model.name }), url);
      assert.equal(r.error, undefined, JSON.stringify(r.error));
      const p = r.value.plan;
      assert.equal(p.fits, true, p.problem);
      assert.equal(p.dg, false);
      assert.match(p.summary, /on the GPU: [\d.]+ [kMG]B of weights as Q8_0 /i);
      assert.ok(p.total_bytes > p.plan.weight_bytes && p.plan.weight_bytes > 0);
      assert.equal(r.value.model, manifest.name, 'planning replaced the loaded model');
      const bad = await inPage(page, (engine) => engine.plan(new File([new Uint8Array(64)], 'junk.gguf')));
      assert.equal(bad.error && bad.error.kind, 'model', JSON.stringify(bad));
      assert.match(bad.error.message, /junk\.gguf/);
      const gone = await inPage(page, async (engine) => { await engine.unload(); return engine.generate({ prompt: 'The', options: {} }); });
      assert.equal(gone.error && gone.error.kind, 'input', JSON.stringify(gone));
      assert.match(gone.error.message, /No model is loaded/);
    });

    assert.deepEqual(pageErrors, [], 'uncaught exceptions in the page');
  } finally {
    await browser.close();
    server.child.kill('SIGTERM');
  }
  console.log(`engine API: ${results.filter((r) => r.ok).length}/${results.length} passed`);
}

main().catch((e) => {
  console.error(e.message || e);
  process.exit(1);
});
