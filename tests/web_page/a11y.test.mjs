// Accessibility and end-of-text padding of the web app, in Debian's Chromium (WebGPU on
// SwiftShader) driven by playwright-core, with the bundled demo model: axe-core (from npm, injected
// into the page) finds no serious or critical violation on the idle page, during and after a
// generation, in the light and the dark colour scheme; the canvas is a listbox of labelled cells
// reachable by Tab, moved through with the arrow keys, selected with Enter/Space for "Regenerate
// selected" (run from the keyboard too); the polite live region says the load and the steps
// while a generation runs; confidence is a bar and a number besides a colour; and the padding
// after the answer's end is a dim ∅ ("end of text"), never `<|endoftext|>`, in the cells and in
// the answer text. Other (moderate, minor) axe findings are printed, not failed.
// Run after `./build.sh web`:   node tests/web_page/a11y.test.mjs

import { checks, launchChromium, listening } from './harness.mjs';
import { spawn } from 'node:child_process';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const out = path.join(root, 'test-output', 'web_page');
const AXE = path.join(here, 'node_modules/axe-core/axe.min.js');
// The demo model answers this in fewer than 64 tokens: the rest of the canvas is padding.
const QUESTION = 'Mia has 12 apples and buys 30 more. How many apples does she have now?';
// Every state a cell is drawn in (view.js, dgview.js).
const SWATCH = ['given prompt', 'given', 'given ws', 'masked', 'fresh lo', 'fresh mid', 'fresh hi', 'fresh hi ws', 'fresh mid ws', 'done', 'done ws', 'fresh lo pad', 'done pad', 'done selected',
  'dg-acc ent-lo', 'dg-acc ent-mid', 'dg-acc ent-hi', 'dg-acc ent-lo ws', 'dg-noise', 'dg-noise pad'];
// DiffusionGemma's fixture (tests/data/families/diffusion_gemma): 10 steps a canvas of 16.
const DG_DIR = path.join(root, 'tests/data/families/diffusion_gemma');
const LONG = Number(process.env.WEB_TEST_TIMEOUT_S || 300) * 1000;

const { results, check } = checks();

function need(file, hint) {
  if (!fs.existsSync(file)) {
    console.error(`missing ${path.relative(root, file)}: ${hint}`);
    process.exit(2);
  }
}

// `./build.sh serve` without rebuilding, on a free port; resolves with its URL.
function startServer() {
  const child = spawn(path.join(root, 'build.sh'), ['serve'], { cwd: root, env: { ...process.env, PORT: '0', UNMASK_NO_BUILD: '1' }, stdio: ['ignore', 'pipe', 'inherit'] });
  return listening(child);
}

const shownError = (page) => page.$eval('#error', (e) => (e.hidden ? '' : e.textContent));

async function waitDone(page, since) {
  await page.waitForFunction((t) => Number(document.body.dataset.done || 0) > t || !document.getElementById('error').hidden, since, { timeout: LONG });
  assert.equal(await shownError(page), '', 'the page shows an error');
}

// axe-core on the page as it is; fails on serious or critical violations, returns the others.
const others = new Map(); // rule id -> {impact, help, where}
async function axe(page, where) {
  let unsure = ''; // elements whose contrast axe could not decide (the swatch check covers the cells)
  if (!(await page.evaluate(() => !!window.axe))) await page.addScriptTag({ path: AXE });
  const r = await page.evaluate(async () => {
    const res = await window.axe.run(document);
    const unsure = res.incomplete.find((v) => v.id === 'color-contrast');
    const why = unsure ? [...new Set(unsure.nodes.map((n) => n.any.map((c) => c.message).join('; ')))] : [];
    return { unsure: unsure ? `${unsure.nodes.length} elements: ${why.join(' / ')}` : '', violations: res.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary.replace(/\s+/g, ' ')}`) })) };
  }).then((x) => { unsure = x.unsure; return x.violations; });
  const bad = r.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  for (const v of r.filter((x) => !bad.includes(x))) if (!others.has(v.id)) others.set(v.id, { impact: v.impact, help: v.help, where, nodes: v.nodes.slice(0, 3) });
  assert.deepEqual(bad.map((v) => `${v.id} (${v.impact}): ${v.help}\n    ${v.nodes.slice(0, 5).join('\n    ')}`), [], `axe: serious or critical violations ${where}`);
  console.log(`  axe ${where}: ${r.length ? r.map((v) => `${v.id} (${v.impact})`).join(', ') : 'no violations'}${unsure ? ` (contrast undecided for ${unsure})` : ''}`);
}

// Both colour schemes (the stylesheet has a dark one), with animations finished.
async function axeBoth(page, where) {
  await page.waitForTimeout(500); // a fresh cell's pop (0.35 s) starts from transparent
  for (const scheme of ['light', 'dark']) {
    await page.emulateMedia({ colorScheme: scheme });
    await axe(page, `${where}, ${scheme}`);
  }
  await page.emulateMedia({ colorScheme: 'light' });
}

async function main() {
  need(path.join(root, 'www/pkg/unmask_bg.wasm'), 'build the page first: ./build.sh web');
  need(path.join(root, 'www/models/manifest.json'), 'build the page first: ./build.sh web');
  need(AXE, 'install the test packages: (cd tests/web_page && npm ci)');
  fs.mkdirSync(out, { recursive: true });
  const server = await startServer();
  const browser = await launchChromium();
  const pageErrors = [];
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
    const page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error') console.log(`  [page console] ${m.text()}`); });
    // Everything the live region says, from the first moment.
    await page.addInitScript(() => {
      window.__said = [];
      document.addEventListener('DOMContentLoaded', () => {
        const el = document.getElementById('announce');
        if (el) new MutationObserver(() => window.__said.push(el.textContent)).observe(el, { childList: true, characterData: true, subtree: true });
      });
    });

    await check('the page loads the bundled model and the live region says so; axe on the idle page', async () => {
      await page.goto(server.url);
      await page.waitForFunction(() => !!document.body.dataset.model || !document.getElementById('fatal').hidden || !document.getElementById('error').hidden, null, { timeout: LONG });
      assert.equal(await page.$eval('#fatal', (e) => (e.hidden ? '' : e.textContent)), '');
      assert.equal(await shownError(page), '');
      const live = await page.$eval('#announce', (e) => ({ live: e.getAttribute('aria-live'), atomic: e.getAttribute('aria-atomic') }));
      assert.deepEqual(live, { live: 'polite', atomic: 'true' });
      const said = await page.evaluate(() => window.__said);
      console.log(`  said while loading: ${JSON.stringify(said)}`);
      assert.ok(said.some((s) => /^Streaming to the GPU \d+%$/.test(s)), 'the load progress was not said');
      assert.ok(said.length <= 12, `the load was said ${said.length} times (too chatty)`);
      assert.match(said[said.length - 1], /^Ready/);
      await axeBoth(page, 'with the model loaded, nothing generated');
    });

    let ends, genStart, first;
    await check(`a chat answer of 64 tokens ends early: padding is a dim ∅, the text has no special tokens; the live region follows the steps`, async () => {
      await page.check('#chat');
      await page.fill('#prompt', QUESTION);
      await page.fill('#opt-gen_length', '64');
      await page.fill('#opt-steps', '32'); // two tokens a step: half the time on SwiftShader
      await page.evaluate(() => { window.__said.length = 0; window.__mid = null; });
      // Mid-generation: the DOM of the cells once some are committed and some still masked.
      await page.evaluate(() => {
        const grid = document.getElementById('grid');
        const mo = new MutationObserver(() => {
          const cells = [...grid.querySelectorAll('.cell')];
          const masked = cells.filter((c) => c.classList.contains('masked'));
          const fresh = cells.filter((c) => c.classList.contains('fresh'));
          if (masked.length > 4 && fresh.length > 0 && grid.dataset.step >= 2) {
            window.__mid = { step: Number(grid.dataset.step), masked: masked.map((c) => c.getAttribute('aria-label')), fresh: fresh.map((c) => ({ label: c.getAttribute('aria-label'), title: c.title, conf: c.style.getPropertyValue('--conf') })), said: window.__said.slice() };
            mo.disconnect();
          }
        });
        mo.observe(grid, { attributes: true, attributeFilter: ['data-step'] });
      });
      // A fresh cell pops in from transparent (0.35 s): axe mid-run would catch some cells half
      // faded in, so the run goes without motion (the page's prefers-reduced-motion rule).
      await page.emulateMedia({ reducedMotion: 'reduce' });
      const t = await page.evaluate(() => Date.now());
      await page.click('#go');
      await page.waitForFunction(() => !!window.__mid, null, { timeout: LONG });
      await axe(page, 'mid-generation (light)');
      await waitDone(page, t);
      await page.emulateMedia({ reducedMotion: 'no-preference' });
      const mid = await page.evaluate(() => window.__mid);
      assert.ok(mid.masked.every((l) => l === 'masked'), `masked cells' labels: ${JSON.stringify(mid.masked.slice(0, 3))}`);
      for (const f of mid.fresh) {
        const m = f.label.match(/, committed at step (\d+), confidence (\d+)%$/);
        assert.ok(m, `a fresh cell's label: ${f.label}`);
        assert.equal(Number(m[1]), mid.step);
        assert.equal(Math.round(100 * Number(f.conf)), Number(m[2]), 'the bar (--conf) and the label disagree');
        assert.match(f.title, new RegExp(`step ${mid.step} · confidence ${f.conf} · token \\d+$`));
      }
      await page.screenshot({ animations: 'disabled', path: path.join(out, 'a11y-padding.png') });

      const got = await page.evaluate(() => {
        const { state, view } = window.unmask;
        const run = state.run;
        return {
          ends: run.start.ends, genStart: run.genStart, tokens: Array.from(run.token), steps: run.start.steps, lastStep: run.lastStep, early: run.result.early_stopped,
          cells: view.cells.map((c) => ({ text: c.textContent, cls: c.className, label: c.getAttribute('aria-label'), title: c.title, role: c.getAttribute('role') })),
          output: document.getElementById('output').textContent, said: window.__said, status: document.getElementById('status').textContent,
        };
      });
      ({ ends, genStart } = got);
      first = got.tokens;
      console.log(`  ends ${JSON.stringify(ends)} · ${got.lastStep} of ${got.steps} steps${got.early ? ' (early stop)' : ''} · answer ${JSON.stringify(got.output)}`);
      console.log(`  said: ${JSON.stringify(got.said)}`);
      assert.ok(Array.isArray(ends) && ends.length > 0, 'the start event carries no end tokens');
      const answer = got.cells.slice(genStart);
      const padding = answer.map((c, i) => ({ ...c, token: got.tokens[genStart + i] })).filter((c) => ends.includes(c.token));
      assert.ok(padding.length >= 4, `only ${padding.length} padding cells: the demo model was expected to end early`);
      assert.ok(ends.includes(got.tokens[got.tokens.length - 1]), 'the last cell is not padding');
      for (const c of padding) {
        assert.equal(c.text, '∅', `a padding cell shows ${JSON.stringify(c.text)}`);
        assert.match(c.cls, /\bpad\b/);
        assert.match(c.label, /^end of text \(padding\), committed at step \d+/);
        assert.match(c.title, /^end of text · /);
      }
      for (const c of answer.filter((x) => !x.cls.includes('pad'))) assert.doesNotMatch(c.label, /end of text/);
      // The answer's cells show no special token (the prompt's chat template keeps its own).
      assert.deepEqual(answer.filter((c) => c.text.includes('<|')).map((c) => c.text), [], 'answer cells show special tokens');
      console.log(`  prompt cells with special tokens (the chat template): ${JSON.stringify(got.cells.slice(0, genStart).filter((c) => c.text.includes('<|')).map((c) => c.text))}`);
      assert.ok(got.cells.every((c) => c.role === 'option'));
      assert.ok(got.output.trim().length > 0, 'no answer text');
      assert.ok(!got.output.includes('<|') && !got.output.includes('∅'), `the answer text has special tokens: ${JSON.stringify(got.output)}`);
      // The live region: the steps at most once a quarter, then the end.
      const steps = got.said.filter((s) => /^Step \d+ of \d+, \d+ masked$/.test(s));
      assert.ok(steps.length >= 1 && steps.length <= 4, `steps said: ${JSON.stringify(got.said)}`);
      assert.match(got.said[got.said.length - 1], /^Done after \d+ steps.*\. The answer is under Text\.$/);
      assert.ok(new Set(got.said).size >= 3, `the live region did not change during the generation: ${JSON.stringify(got.said)}`);
      assert.equal(got.status, 'Done.');
      await axeBoth(page, 'after the generation');
    });

    await check('keyboard: Tab into the canvas, arrows move, Enter/Space select, Regenerate selected from the keyboard', async () => {
      const focus = () => page.evaluate(() => {
        const a = document.activeElement;
        const stops = [...document.querySelectorAll('#grid .cell')].filter((c) => c.tabIndex === 0).length;
        return { pos: a && a.classList.contains('cell') ? Number(a.dataset.pos) : null, top: a ? a.getBoundingClientRect().top : null, stops, selected: a && a.getAttribute('aria-selected') };
      });
      await page.focus('#go');
      await page.keyboard.press('Tab');
      let f = await focus();
      assert.equal(f.pos, genStart, 'Tab from Generate does not land on the answer\'s first cell');
      assert.equal(f.stops, 1, 'the grid is not one tab stop');
      assert.equal(f.selected, 'false', 'an answer cell is not marked selectable (aria-selected)');
      await page.keyboard.press('ArrowRight');
      assert.equal((await focus()).pos, genStart + 1);
      await page.keyboard.press('ArrowLeft');
      const start = await focus();
      assert.equal(start.pos, genStart);
      await page.keyboard.press('ArrowDown');
      const down = await focus();
      assert.ok(down.pos > genStart && down.top > start.top, `ArrowDown went to ${down.pos} (top ${down.top} from ${start.top})`);
      await page.keyboard.press('ArrowUp');
      const up = await focus();
      assert.ok(up.pos >= genStart - 3 && Math.abs(up.top - start.top) < 4, `ArrowUp went to ${up.pos}`);
      await page.keyboard.press('End');
      assert.equal((await focus()).pos, first.length - 1);
      assert.equal((await focus()).stops, 1);
      // Back to a word of the answer: Enter selects the word, Enter again unselects it.
      for (let p = first.length - 1; p > genStart + 2; p--) await page.keyboard.press('ArrowLeft');
      const at = (await focus()).pos;
      assert.equal(await page.isDisabled('#remask'), true);
      await page.keyboard.press('Enter');
      const word = await page.evaluate((p) => window.unmask.view.wordAt(p), at);
      assert.deepEqual(await page.evaluate(() => [...window.unmask.view.selected].sort((a, b) => a - b)), word);
      assert.equal((await focus()).selected, 'true');
      assert.equal(await page.isDisabled('#remask'), false, 'Regenerate selected is not enabled after Enter');
      await page.keyboard.press('Enter');
      assert.equal(await page.evaluate(() => window.unmask.view.selected.size), 0);
      assert.equal(await page.isDisabled('#remask'), true);
      // Shift+Space: one token; then the button, from the keyboard.
      await page.keyboard.press('Shift+Space');
      assert.deepEqual(await page.evaluate(() => [...window.unmask.view.selected]), [at]);
      await page.focus('#remask');
      const t = await page.evaluate(() => Date.now());
      await page.keyboard.press('Enter');
      await waitDone(page, t);
      const after = await page.evaluate(() => ({ tokens: window.unmask.state.run.result.tokens, mask: window.unmask.state.run.start.mask, ends: window.unmask.state.run.start.ends, cells: window.unmask.view.cells.map((c) => c.textContent) }));
      for (let p = 0; p < first.length; p++) if (p !== at) assert.equal(after.tokens[p], first[p], `position ${p} changed but was not selected`);
      assert.notEqual(after.tokens[at], after.mask);
      assert.deepEqual(after.ends, ends, 'the remask start event carries other end tokens');
      // The padding is now given (not committed by this run): still ∅.
      for (let p = genStart; p < first.length; p++) if (ends.includes(after.tokens[p])) assert.equal(after.cells[p], '∅', `given padding at ${p}`);
      console.log(`  remasked ${at}: ${first[at]} -> ${after.tokens[at]}`);
    });

    await check('every kind of cell has text contrast ≥ 4.5:1 in both colour schemes (axe on a swatch of them)', async () => {
      // A generation shows only the bands its confidences fall in (the demo model is mostly sure:
      // green), and axe skips cells of symbols (∅, ⏎): a swatch of every cell state, with letters.
      await page.evaluate((kinds) => {
        const box = document.createElement('div');
        box.id = 'swatch';
        box.className = 'grid';
        for (const k of kinds) {
          const el = document.createElement('span');
          el.className = `cell ${k}`;
          el.textContent = 'Ab';
          el.style.setProperty('--conf', '0.5');
          box.append(el);
        }
        document.getElementById('canvas-panel').append(box);
      }, SWATCH);
      await page.waitForTimeout(500);
      for (const scheme of ['light', 'dark']) {
        await page.emulateMedia({ colorScheme: scheme });
        const r = await page.evaluate(async () => {
          const res = await window.axe.run('#swatch', { runOnly: ['color-contrast'] });
          return { bad: res.violations.flatMap((v) => v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary.replace(/\s+/g, ' ')}`)), checked: res.passes.flatMap((v) => v.nodes).length, unsure: res.incomplete.flatMap((v) => v.nodes.map((n) => n.target.join(' '))) };
        });
        console.log(`  ${scheme}: ${r.checked} cells pass${r.unsure.length ? `, axe could not decide ${r.unsure.length}: ${r.unsure.join(', ')}` : ''}`);
        assert.deepEqual(r.bad, [], `${scheme}: cells below 4.5:1`);
        assert.equal(r.checked, SWATCH.length, `${scheme}: axe checked ${r.checked} of ${SWATCH.length} cells`);
      }
      await page.emulateMedia({ colorScheme: 'light' });
      await page.evaluate(() => document.getElementById('swatch').remove());
    });

    await check('the legend says confidence is the bar, and ∅ is the end of text', async () => {
      const legend = await page.textContent('.legend.mask-only');
      assert.match(legend, /bar: confidence/);
      assert.match(legend, /∅ end of text/);
      assert.match(await page.textContent('#grid-help'), /length of the bar/);
      assert.equal(await page.getAttribute('#grid', 'role'), 'listbox');
    });

    await check('DiffusionGemma (the fixture, from local files): labelled cells, its end tokens from the config, ∅ for them, an answer without special tokens; axe', async () => {
      await page.setInputFiles('#file-input', ['config.json', 'model.safetensors', 'tokenizer.json', 'generation_config.json'].map((f) => path.join(DG_DIR, f)));
      await page.waitForFunction(() => /diffusion-gemma/.test(document.getElementById('model-status').textContent) || !document.getElementById('error').hidden, null, { timeout: LONG });
      assert.equal(await shownError(page), '');
      const dgEnds = await page.evaluate(() => window.unmask.state.model.config.ends);
      const gen = JSON.parse(fs.readFileSync(path.join(DG_DIR, 'generation_config.json'), 'utf8'));
      assert.deepEqual([...new Set(dgEnds)].sort(), [...new Set([...gen.eos_token_id, gen.pad_token_id])].sort(), 'the config\'s end tokens are not generation_config.json\'s eos and pad');
      await page.uncheck('#chat');
      await page.fill('#prompt', 'The cat sat');
      await page.fill('#opt-gen_length', '20');
      await page.fill('#opt-seed', '1');
      const t = await page.evaluate(() => Date.now());
      await page.click('#go');
      await waitDone(page, t);
      await axeBoth(page, 'after a DiffusionGemma generation');
      const got = await page.evaluate(() => {
        const { state, dgView } = window.unmask;
        const run = state.run;
        const last = [];
        for (const e of run.events) last[e.canvas] = e;
        const tokens = last.flatMap((e) => e.tokens);
        return { tokens, cells: dgView.cells.map((c) => ({ text: c.textContent, cls: c.className, label: c.getAttribute('aria-label'), role: c.getAttribute('role'), tab: c.tabIndex })), output: document.getElementById('output').textContent };
      });
      assert.equal(got.cells.length, got.tokens.length);
      assert.equal(got.cells.filter((c) => c.tab === 0).length, 1, 'not one tab stop');
      got.cells.forEach((c, p) => {
        assert.equal(c.role, 'option');
        if (dgEnds.includes(got.tokens[p])) {
          assert.equal(c.text, '∅', `DiffusionGemma padding cell ${p}`);
          assert.match(c.label, /^end of text \(padding\), /);
        } else {
          assert.match(c.label, /, (accepted|re-noised|canvas \d+), entropy \d+\.\d\d$/);
        }
      });
      assert.deepEqual(got.cells.filter((c) => c.text.includes('<|')).map((c) => c.text), []);
      assert.ok(!got.output.includes('<|'), `the answer text has special tokens: ${JSON.stringify(got.output)}`);
      console.log(`  ${got.tokens.filter((x) => dgEnds.includes(x)).length} of ${got.tokens.length} cells are end tokens; answer ${JSON.stringify(got.output)}`);
      // The view itself, on a made-up step where a cell is an end token (the random fixture may
      // never produce one): ∅, labelled, no `<|endoftext|>`.
      const drawn = await page.evaluate(async () => {
        const { DgRun, DgView } = await import('./dgview.js');
        const [grid, counter] = [document.createElement('div'), document.createElement('span')];
        const chart = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
        const v = new DgView({ grid, counter, chart, onSeek: () => {} });
        const run = new DgRun(10, [0, 5]);
        v.begin(run);
        run.add({ canvas: 0, step: 10, temperature: 0.8, tokens: [7, 0, 5], pieces: ['cat', '<|endoftext|>', '<|eot_id|>'], accepted: [true, true, false], entropy: [0.01, 0.2, 2], stopped: false, ms: 1 });
        v.draw(1);
        return v.cells.map((c) => [c.textContent, c.getAttribute('aria-label'), c.className, c.style.getPropertyValue('--conf')]);
      });
      assert.deepEqual(drawn, [
        ['cat', '“cat”, accepted, entropy 0.01', 'cell dg-acc ent-lo answer-start', Math.exp(-0.01).toFixed(3)],
        ['∅', 'end of text (padding), accepted, entropy 0.20', 'cell dg-acc ent-mid pad', Math.exp(-0.2).toFixed(3)],
        ['∅', 'end of text (padding), re-noised, entropy 2.00', 'cell dg-noise pad', Math.exp(-2).toFixed(3)],
      ]);
    });

    assert.deepEqual(pageErrors, [], 'errors in the page');
  } finally {
    await browser.close();
    server.child.kill('SIGTERM');
  }
  if (others.size) {
    console.log('axe, moderate and minor (not failed):');
    for (const [id, v] of others) console.log(`  ${id} (${v.impact}) ${v.where}: ${v.help}\n    ${v.nodes.join('\n    ')}`);
  }
  console.log(`${results.filter((r) => r.ok).length}/${results.length} checks passed`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
