// The page: wires the controls to the engine (the engine API of unmask.js, the same any page
// can use: load, generate with onStart/onStep, remask, cancel, validate) and draws what it
// reports. A DiffusionGemma model (loaded with `dg`) is dgpage.js's: its own request, steps
// without a start, its own view. An error of kind 'crashed' restarts the engine. Progress (load,
// steps, the status) is also said in a polite live region, at most once a quarter.

import { Run, View, Announcer } from './view.js';
import { DgPage } from './dgpage.js';
import { readIndex, deleteSaved, fmtBytes } from './models.js';
import { SETTINGS_KEY, formDefaults, readSettings, writeSettings, samplerOptions, forPage, settingsNote } from './settings.js';
import { createEngine, bundledModel } from './unmask.js';

const $ = (id) => document.getElementById(id);

const state = {
  engine: null,
  defaults: null, // the engine's defaults (engine.defaults)
  adapter: null,
  model: null, // what engine.load resolved with
  loading: false,
  running: null, // {id, kind}
  run: null, // the Run on screen
  playing: null,
  bundled: null, // the bundled model as a source for engine.load
  fatal: false,
};

const view = new View({
  grid: $('grid'),
  counter: $('step-counter'),
  chart: $('chart'),
  onSeek: (s) => seek(s),
  onSelect: () => updateButtons(),
});
const announce = new Announcer($('announce'));
const dg = new DgPage({ $, state, onSeek: (s) => seek(s), setStatus, announce });
const shown = () => (dg.owns(state.run) ? dg.view : view); // the view of the run on screen

// ---- messages and errors ------------------------------------------------------------------

function showError(msg) {
  const el = $('error');
  el.textContent = msg;
  el.hidden = !msg;
}

function fatal(msg) {
  state.fatal = true;
  const el = $('fatal');
  el.textContent = msg;
  el.hidden = false;
  setStatus('Cannot run here.');
  updateButtons();
}

// `spoken`: what the live region says instead, when the status alone says too little.
function setStatus(s, spoken = s) {
  $('status').textContent = s;
  announce.say(spoken);
}

window.addEventListener('error', (e) => showError(`Unexpected error: ${e.message}`));
window.addEventListener('unhandledrejection', (e) => showError(`Unexpected error: ${e.reason && e.reason.message ? e.reason.message : e.reason}`));

// ---- the engine -----------------------------------------------------------------------------

async function startEngine() {
  try {
    state.engine = await createEngine({ worker: true });
  } catch (e) {
    fatal(e.message);
    return false;
  }
  state.adapter = state.engine.adapter;
  state.defaults = state.engine.defaults;
  $('stat-adapter').textContent = adapterText(state.adapter);
  setStatus(`GPU: ${state.adapter.name || 'WebGPU adapter'}`);
  return true;
}

async function restartEngine() {
  if (state.engine) state.engine.terminate();
  state.engine = null;
  state.model = null;
  state.loading = false;
  state.running = null;
  document.body.classList.remove('dg');
  updateButtons();
  await startEngine();
  $('model-status').textContent = 'The engine was restarted: load a model again.';
  updateButtons();
}

function showPlan(summary) {
  $('model-plan').hidden = false;
  $('model-plan').textContent = `Memory plan: ${summary}`;
}

function adapterText(a) {
  const bits = [a.name || '(unnamed adapter)'];
  if (a.backend) bits.push(a.backend);
  if (a.shader_f16) bits.push('f16');
  return bits.join(' · ');
}

// ---- models ----------------------------------------------------------------------------------

function progress(m) {
  const box = $('progress');
  box.hidden = false;
  const frac = m.total ? m.loaded / m.total : 0;
  box.classList.toggle('indeterminate', m.phase === 'parse' || !m.total);
  $('progress-fill').style.width = `${(100 * Math.min(1, frac)).toFixed(1)}%`;
  let text = m.label || m.phase;
  if (m.phase === 'download') text += ` ${fmtBytes(m.loaded)}${m.total ? ` / ${fmtBytes(m.total)}` : ''} · ${fmtBytes(m.rate)}/s`;
  else if (m.phase === 'upload') text += ` ${fmtBytes(m.loaded)} / ${fmtBytes(m.total)}`;
  else text += '…';
  $('progress-text').textContent = text;
  announce.quarter(`load ${m.phase}`, frac, `${m.label || m.phase}${m.total ? ` ${Math.floor(100 * Math.min(1, frac))}%` : '…'}`);
}

async function loadModel(source, label) {
  if (state.loading || state.running || !state.engine) return;
  state.loading = true;
  showError('');
  $('model-plan').hidden = true;
  $('model-status').textContent = `Loading ${label}…`;
  $('progress').hidden = false;
  $('progress-fill').style.width = '0';
  $('progress-text').textContent = 'Starting…';
  updateButtons();
  try {
    loaded(await state.engine.load(source, { quant: $('load-quant').value || undefined, onProgress: progress, onPlan: showPlan, onWarning: showError, onSaved: refreshSaved }));
  } catch (e) {
    onError(e, 'load');
  }
}

function loaded(model) {
  state.loading = false;
  state.model = model;
  $('progress').hidden = true;
  const c = model.config;
  const experts = c && (c.n_experts || c.experts), canvas = c && c.canvas_length ? ` · canvas ${c.canvas_length}` : '';
  const moe = experts ? ` · ${experts} experts, top-${c.n_experts_used || c.experts_used}` : '';
  const params = c ? `${c.family} · ${c.n_layers} layers · d_model ${c.d_model}${moe} · vocab ${c.vocab_size}${canvas} · context ${c.max_sequence_length}` : '';
  $('model-status').textContent = `${model.name} (${model.format}, ${fmtBytes(model.bytes)}) · ${params}${model.hasTokenizer ? '' : ' · no tokenizer: text prompts will not work'}`;
  if (model.plan) showPlan(model.plan);
  if (model.adapter) $('stat-adapter').textContent = adapterText(model.adapter);
  setStatus(`Ready · GPU: ${(model.adapter || state.adapter || {}).name || 'WebGPU'}`);
  document.body.dataset.model = model.name;
  dg.loaded(model);
  onMode();
  updateButtons();
}


async function refreshSaved() {
  const ul = $('saved-list');
  if (!self.caches) {
    ul.innerHTML = '<li class="muted">This browser keeps no models (no Cache API here).</li>';
    return;
  }
  const list = await readIndex();
  ul.replaceChildren();
  if (!list.length) ul.innerHTML = '<li class="muted">None yet.</li>';
  for (const m of list.sort((a, b) => b.added - a.added)) {
    const li = document.createElement('li');
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = `${m.name} · ${m.format} · ${fmtBytes(m.bytes)}${m.source === 'local' ? ' · local file' : ''}`;
    name.title = m.url || m.name;
    const load = document.createElement('button');
    load.type = 'button';
    load.textContent = 'Load';
    load.onclick = () => loadModel({ kind: 'saved', id: m.id }, m.name);
    const del = document.createElement('button');
    del.type = 'button';
    del.textContent = 'Delete';
    del.onclick = async () => { await deleteSaved(m.id); refreshSaved(); };
    li.append(name, load, del);
    ul.append(li);
  }
  if (navigator.storage && navigator.storage.estimate) {
    const est = await navigator.storage.estimate();
    $('storage').textContent = `(${fmtBytes(est.usage || 0)} used of ${fmtBytes(est.quota || 0)})`;
  }
}

$('load-bundled').onclick = () => {
  if (state.bundled) loadModel(state.bundled, state.bundled.entry.name);
  else showError('No bundled model is listed in models/manifest.json: build the page with ./build.sh web, or load a model from a URL or a file.');
};

$('url-form').onsubmit = (e) => {
  e.preventDefault();
  const url = $('url-input').value.trim();
  if (!url) return;
  if (navigator.storage && navigator.storage.persist && $('keep').checked) navigator.storage.persist();
  loadModel({ kind: 'url', url, keep: $('keep').checked }, url.split('/').pop());
};

function loadFiles(fileList) {
  const files = Array.from(fileList || []);
  if (!files.length) return;
  loadModel({ kind: 'files', files, keep: $('keep').checked }, files.map((f) => f.name).join(' + '));
}
$('file-input').onchange = (e) => { loadFiles(e.target.files); e.target.value = ''; };
const drop = $('drop');
drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => { e.preventDefault(); drop.classList.remove('over'); loadFiles(e.dataTransfer.files); });
// Dropping a file anywhere else must not navigate away from the page.
window.addEventListener('dragover', (e) => e.preventDefault());
window.addEventListener('drop', (e) => { e.preventDefault(); if (!drop.contains(e.target)) loadFiles(e.dataTransfer.files); });

// ---- settings ----------------------------------------------------------------------------------

// The note under the settings: the engine's verdict on them (engine.validate), or what they mean.
let noteSeq = 0;
async function checkSettings() {
  if (!state.defaults) return; // the form is filled once the engine has said its defaults
  const o = readSettings($);
  try { localStorage.setItem(SETTINGS_KEY, JSON.stringify(dg.kept(o))); } catch {}
  if (dg.on) return void ($('settings-note').textContent = dg.note(o));
  const seq = ++noteSeq, infill = mode() === 'infill';
  const problem = state.engine ? await state.engine.validate(samplerOptions(o), { infill }).catch(() => null) : null;
  if (seq === noteSeq) $('settings-note').textContent = settingsNote(o, infill, problem);
}

$('settings').addEventListener('input', checkSettings);
$('settings').addEventListener('submit', (e) => e.preventDefault());
$('opt-threshold-on').onchange = () => { $('opt-threshold').disabled = !$('opt-threshold-on').checked; checkSettings(); };
$('reset-settings').onclick = () => { if (state.defaults) { writeSettings($, formDefaults(state.defaults)); dg.reset(); checkSettings(); } };

// ---- modes ---------------------------------------------------------------------------------------

function mode() {
  return $('mode-infill').checked ? 'infill' : 'generate';
}

function onMode() {
  const infill = mode() === 'infill';
  document.body.classList.toggle('infill', infill);
  $('go').textContent = infill ? 'Fill masks' : 'Generate';
  $('prompt').placeholder = infill ? 'Text with [MASK] spans, e.g. The capital of France is [MASK].' : 'Write a prompt…';
  $('mode-help').innerHTML = infill
    ? 'Write text with <code>[MASK]</code> (a span of <i>span length</i> tokens) or <code>&lt;mask:N&gt;</code> (N tokens): the model fills only those.'
    : dg.on ? 'DiffusionGemma writes whole canvases: every cell starts as a random token; each step the model re-decides every cell, keeps (accepts) those it is surest of and re-noises the rest, until the canvas is stable and confident or out of steps.'
    : 'The model writes an answer of <i>gen length</i> tokens after the prompt, unmasking a few positions per step. Afterwards, click words of the answer to regenerate just them.';
  if (infill && !/\[MASK\]|<mask:\d+>/i.test($('prompt').value)) $('prompt').value = 'The weather today is [MASK] and the sky is [MASK].';
  if (!infill && /\[MASK\]|<mask:\d+>/i.test($('prompt').value)) $('prompt').value = $('prompt').value.replace(/\s*(\[MASK\]|<mask:\d+>).*$/i, '');
  checkSettings();
}
$('mode-generate').onchange = onMode;
$('mode-infill').onchange = onMode;

// ---- running -------------------------------------------------------------------------------------

function request() {
  const o = readSettings($);
  const options = samplerOptions(o);
  const text = $('prompt').value;
  if (dg.on) return dg.request(o, text, $('chat').checked);
  // Infill fills the whole text as one block (like `unmask infill`; the worker puts the
  // engine's `oneBlock()` there); gen length is unused.
  if (mode() === 'infill') return { infill: text, span_length: o.span_length, options: { ...options, block_length: 'whole' } };
  return { prompt: text, chat: $('chat').checked, options };
}

function go(remask) {
  if (!state.model || state.running || state.loading) return;
  stopPlaying();
  showError('');
  const req = request();
  if (remask && dg.on) return;
  if (!remask && mode() === 'generate' && !req.prompt.trim()) {
    showError('The prompt is empty: write something first.');
    return;
  }
  const handlers = { onStart, onStep };
  let done;
  if (remask) {
    const run = state.run;
    const tokens = Array.from(run.token);
    for (const p of view.selected) tokens[p] = run.start.mask;
    done = state.engine.remask(tokens, run.genStart, req.options, handlers);
  } else {
    done = state.engine.generate(req, handlers);
  }
  state.running = { kind: remask ? 'remask' : mode(), t0: performance.now(), committed: 0, ms: 0 };
  if (dg.on) { view.detach(); state.run = dg.begin(req.steps); }
  done.then(onDone, (e) => onError(e, 'run'));
  $('stat-ms').textContent = '…';
  $('stat-tps').textContent = '…';
  setStatus('Generating…');
  updateButtons();
}

function onStart(canvas) {
  state.run = new Run(canvas);
  dg.view.detach();
  view.begin(state.run);
  $('output').textContent = '';
  $('scrubber').max = canvas.steps;
  $('scrubber').value = 0;
  $('stat-steps').textContent = `0 / ${canvas.steps}`;
}

function onStep(ev) {
  const run = state.run;
  if (!run) return;
  if (dg.owns(run)) return dg.step(run, ev, state.running);
  run.add(ev);
  view.draw(ev.step);
  const r = state.running;
  if (r) {
    r.committed += ev.committed.length;
    r.ms += ev.ms;
    $('stat-ms').textContent = `${ev.ms.toFixed(1)} (avg ${(r.ms / run.events.length).toFixed(1)})`;
    $('stat-tps').textContent = (r.committed / Math.max(r.ms / 1000, 1e-6)).toFixed(1);
  }
  $('stat-steps').textContent = `${ev.step} / ${run.start.steps}`;
  $('scrubber').value = ev.step;
  if (4 * ev.step >= run.start.steps) announce.quarter('steps', ev.step / run.start.steps, `Step ${ev.step} of ${run.start.steps}, ${ev.masked_left} masked`);
}

function onDone(result) {
  const run = state.run;
  state.running = null;
  if (dg.owns(run)) {
    dg.done(run, result);
    document.body.dataset.done = String(Date.now());
    return updateButtons();
  }
  if (run) {
    run.result = result;
    // The engine's final canvas is the truth (early stop may fill without per-position events).
    result.tokens.forEach((t, p) => { if (run.when[p] === Infinity && t !== run.start.mask) { run.when[p] = run.lastStep || 1; run.token[p] = t; run.piece[p] = `#${t}`; } });
    $('scrubber').max = run.lastStep;
    $('scrubber').value = run.lastStep;
    view.setSelectable(true);
    view.draw(run.lastStep);
  }
  $('output').textContent = result.text;
  $('stat-steps').textContent = `${result.steps} · ${result.model_passes} passes`;
  $('stat-ms').textContent = result.steps ? (result.ms / result.steps).toFixed(1) : '–';
  $('stat-tps').textContent = result.tokens_per_second.toFixed(1);
  $('stat-total').textContent = `${(result.ms / 1000).toFixed(2)} s${result.early_stopped ? ' · early stop' : ''}${result.cancelled ? ' · stopped' : ''}`;
  const how = `${result.steps} steps${result.early_stopped ? ', stopped early at the end of text' : ''}`;
  setStatus(result.cancelled ? 'Stopped.' : 'Done.', `${result.cancelled ? 'Stopped' : 'Done'} after ${how}. The answer is under Text.`);
  document.body.dataset.done = String(Date.now());
  updateButtons();
}

// `e`: an UnmaskError ({kind, field, message}) of a load or a run.
function onError(e, where) {
  if (where === 'load') {
    state.loading = false;
    if (state.engine && !state.engine.model) state.model = null; // the old model was freed for the new one (unmask.js load)
    $('progress').hidden = true;
    $('model-status').textContent = state.model ? `Could not load that model; still using ${state.model.name}.` : 'No model loaded.';
  }
  if (where === 'run') {
    state.running = null;
    // The GPU failed during the run (lost, out of memory): the worker freed the model.
    if (state.engine && !state.engine.model && state.model) { state.model = null; $('model-status').textContent = 'No model loaded (the GPU failed): load one again.'; }
  }
  showError(forPage(e.message || String(e)));
  setStatus(where === 'load' ? 'Loading failed.' : 'Failed.');
  if (e.kind === 'crashed') restartEngine();
  updateButtons();
}

$('go').onclick = () => go(false);
$('remask').onclick = () => go(true);
$('clear-selection').onclick = () => { view.selected.clear(); view.draw(view.step); updateButtons(); };
$('stop').onclick = () => state.engine && state.engine.cancel();
$('prompt').addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) go(false); });

// ---- replay ----------------------------------------------------------------------------------------

function seek(step) {
  if (!state.run || state.running) return;
  $('scrubber').value = step;
  shown().draw(step);
}

$('scrubber').addEventListener('input', (e) => { stopPlaying(); seek(Number(e.target.value)); });

function stopPlaying() {
  if (state.playing) clearTimeout(state.playing);
  state.playing = null;
  $('play').textContent = '▶';
  $('play').setAttribute('aria-label', 'Play');
}

$('play').onclick = () => {
  if (state.playing) return stopPlaying();
  const run = state.run;
  if (!run) return;
  let s = Number($('scrubber').value);
  if (s >= run.lastStep) s = 0;
  $('play').textContent = '❚❚';
  $('play').setAttribute('aria-label', 'Pause');
  const tick = () => {
    seek(s);
    if (s >= run.lastStep) return stopPlaying();
    s++;
    // About 8 steps a second at 1×, whatever the run's length.
    state.playing = setTimeout(tick, 125 / Number($('speed').value));
  };
  tick();
};

// ---- buttons -----------------------------------------------------------------------------------

function updateButtons() {
  const idle = !state.running && !state.loading && !state.fatal;
  $('go').disabled = !idle || !state.model;
  $('stop').disabled = !state.running;
  $('remask').disabled = !idle || !state.model || view.selected.size === 0;
  $('remask').textContent = view.selected.size ? `Regenerate selected (${view.selected.size})` : 'Regenerate selected';
  $('clear-selection').disabled = view.selected.size === 0;
  for (const id of ['load-bundled', 'url-load', 'file-input']) $(id).disabled = !idle;
  const replay = idle && state.run && state.run.events.length > 0;
  $('scrubber').disabled = !replay;
  $('play').disabled = !replay;
  document.body.dataset.busy = state.running ? 'run' : state.loading ? 'load' : '';
}

// ---- start -----------------------------------------------------------------------------------------

async function main() {
  let saved = null;
  try { saved = JSON.parse(localStorage.getItem(SETTINGS_KEY) || 'null'); } catch {}
  updateButtons();
  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.register('sw.js').catch((e) => console.warn('service worker not registered:', e));
  }
  refreshSaved();
  if (!navigator.gpu) {
    fatal('This browser has no WebGPU, which Unmask needs to run the model on your GPU. Use a current Chrome or Edge (113+) on Windows, macOS or ChromeOS, Chrome on Linux/Android with WebGPU enabled (chrome://flags/#enable-unsafe-webgpu), or Firefox/Safari with WebGPU turned on.');
    return;
  }
  if (!(await startEngine())) return;
  writeSettings($, { ...formDefaults(state.defaults), ...(saved || {}) });
  onMode();
  updateButtons();
  state.bundled = await bundledModel();
  const params = new URLSearchParams(location.search);
  if (params.get('model')) {
    $('url-input').value = params.get('model');
    loadModel({ kind: 'url', url: params.get('model'), keep: $('keep').checked }, params.get('model').split('/').pop());
  } else if (state.bundled) {
    loadModel(state.bundled, state.bundled.entry.name);
  } else {
    $('model-status').textContent = 'No bundled model (models/manifest.json is missing): load one from a URL or a file below.';
    $('model-choices').open = true;
  }
}

// For the browser tests and for poking around in the console.
window.unmask = { state, view, dgView: dg.view };
main();
