// DiffusionGemma's view (uniform-state denoising: every cell holds a token from the start). A
// DgRun is one generation's step events; DgView draws it at any step, live or replayed with the
// scrubber: the canvas being denoised (accepted cells solid, shaded by entropy; re-noised cells
// dim and flickering), earlier canvases as committed, the per-step chart (accepted cells, mean
// entropy) and, at the end, the stop reason. Cells are options of the grid's listbox (view.js
// keeps its keyboard), labelled with their text and state; end-of-text cells show the dim ∅.

import { cellText, newCell, setAttr, spoken, PADDING } from './view.js';

// How strongly an accepted cell is drawn: low entropy (nats) = strong.
export function entropyClass(h) {
  return h < 0.05 ? 'ent-lo' : h < 0.5 ? 'ent-mid' : 'ent-hi';
}

const STOPS = { eos: 'end of text (EOS)', length: 'length reached' };

export class DgRun {
  // `steps`: the most denoising steps per canvas (the request's), for "step k / N"; `ends`: the
  // model's end-of-text and padding tokens (its config's `ends`).
  constructor(steps, ends = []) {
    this.steps = steps;
    this.ends = new Set(ends);
    this.events = [];
    this.result = null;
  }
  get lastStep() { return this.events.length; }
  add(ev) { this.events.push(ev); }
  // The engine counts steps down from N; shown counting up.
  stepOf(ev) { return this.steps - ev.step + 1; }
}

export class DgView {
  constructor({ grid, counter, chart, onSeek }) {
    Object.assign(this, { grid, counter, chart, onSeek });
    this.run = null;
    this.cells = [];
    this.step = 0;
    this.drawn = []; // as View's: what was drawn, for the browser tests
    this.recordDom = false;
    let dragging = false;
    const seek = (e) => {
      if (!this.run || !this.run.events.length) return;
      const r = chart.getBoundingClientRect();
      const n = this.run.lastStep;
      this.onSeek(Math.max(0, Math.min(n, Math.round(((e.clientX - r.left) / r.width) * n + 0.5))));
    };
    chart.addEventListener('pointerdown', (e) => { if (this.run) { dragging = true; seek(e); } });
    chart.addEventListener('pointermove', (e) => dragging && seek(e));
    chart.addEventListener('pointerup', () => { dragging = false; });
  }

  begin(run) {
    this.run = run;
    this.drawn = [];
    this.cells = [];
    this.grid.replaceChildren();
    this.draw(0);
  }

  // The masked families' view takes the grid back.
  detach() { this.run = null; }

  // One cell per position of every canvas so far (the grid grows by a canvas at a time).
  cellsFor(n, L) {
    while (this.cells.length < n) {
      const p = this.cells.length;
      const el = newCell(p);
      el.dataset.start = p % L === 0 ? (p === 0 ? 'answer' : 'block') : '';
      this.grid.append(el);
      this.cells.push(el);
    }
    while (this.cells.length > n) this.cells.pop().remove();
    // One cell in the tab order (view.js's keys move it).
    if (this.cells.length && !this.cells.some((c) => c.tabIndex === 0)) this.cells[0].tabIndex = 0;
  }

  // Draws the run after its `i`-th step event (0: nothing yet).
  draw(i) {
    const run = this.run;
    if (!run) return;
    this.step = i;
    const evs = run.events.slice(0, i);
    const ev = evs[evs.length - 1];
    // Earlier canvases as their last step left them (its argmax is what was committed).
    const last = [];
    for (const e of evs) last[e.canvas] = e;
    const L = ev ? ev.pieces.length : 0;
    this.cellsFor(ev ? (ev.canvas + 1) * L : 0, L || 1);
    let accepted = 0;
    this.cells.forEach((el, p) => {
      const c = Math.floor(p / L), q = p % L, e = last[c];
      const pad = run.ends.has(e.tokens[q]);
      const h = e.entropy[q], what = pad ? 'end of text (padding)' : spoken(e.pieces[q]);
      let cls, title, label;
      if (c < ev.canvas) {
        cls = 'done';
        title = `canvas ${c + 1} · token ${e.tokens[q]}`;
        label = `${what}, canvas ${c + 1}, entropy ${h.toFixed(2)}`;
      } else if (ev.accepted[q]) {
        cls = `dg-acc ${entropyClass(h)}`;
        accepted++;
        title = `accepted · entropy ${h.toFixed(3)} · token ${ev.tokens[q]}`;
        label = `${what}, accepted, entropy ${h.toFixed(2)}`;
      } else {
        cls = 'dg-noise';
        title = `re-noised (the model's choice so far) · entropy ${h.toFixed(3)} · token ${ev.tokens[q]}`;
        label = `${what}, re-noised, entropy ${h.toFixed(2)}`;
      }
      if (pad) title = `end of text · ${title}`;
      const text = pad ? PADDING : cellText(e.pieces[q]);
      if (pad) cls += ' pad';
      if (/^[␣⏎⇥]+$/.test(text)) cls += ' ws';
      if (el.dataset.start) cls += el.dataset.start === 'answer' ? ' answer-start' : ' block-start';
      const next = `cell ${cls}`;
      if (el.className !== next) el.className = next;
      if (el.textContent !== text) el.textContent = text;
      if (el.title !== title) el.title = title;
      setAttr(el, 'aria-label', label);
      // The bar under the cell: its certainty, e^-entropy (1: sure).
      const conf = Math.exp(-h).toFixed(3);
      if (el.style.getPropertyValue('--conf') !== conf) el.style.setProperty('--conf', conf);
    });
    this.counter.textContent = ev ? this.describe(ev, accepted, L, i === run.lastStep) : 'step 0';
    this.grid.dataset.step = i;
    const frame = { step: i, accepted, noise: ev ? L - accepted : 0, canvas: ev ? ev.canvas : -1 };
    if (this.recordDom) frame.dom = this.cells.map((c) => `${c.className}|${c.textContent}`).join('\n');
    this.drawn.push(frame);
    if (this.drawn.length > 4000) this.drawn.splice(0, 2000);
    this.drawChart();
  }

  describe(ev, accepted, L, last) {
    let s = `canvas ${ev.canvas + 1} · step ${this.run.stepOf(ev)} / ${this.run.steps} · T=${ev.temperature.toFixed(2)} · accepted ${accepted}/${L}`;
    if (ev.stopped) s += ' · stable and confident: canvas done';
    const r = this.run.result;
    if (last && r) s += r.cancelled ? ' · stopped' : ` · stop: ${STOPS[r.stop] || r.stop}`;
    return s;
  }

  // Bars: cells accepted per step; line: mean entropy, scaled to the run's largest.
  drawChart() {
    const evs = this.run ? this.run.events : [];
    const W = 600, H = 110, pad = 6;
    const parts = [];
    if (evs.length) {
      const n = evs.length;
      const bw = (W - 2 * pad) / n;
      const L = evs[0].accepted.length;
      const means = evs.map((e) => e.entropy.reduce((s, h) => s + h, 0) / e.entropy.length);
      const maxH = Math.max(1e-6, ...means);
      let line = '';
      evs.forEach((e, i) => {
        const x = pad + i * bw;
        const a = e.accepted.filter(Boolean).length;
        const h = ((H - 2 * pad) * a) / L;
        parts.push(`<rect class="bar${i + 1 === this.step ? ' now' : ''}" x="${x + bw * 0.12}" y="${H - pad - h}" width="${Math.max(bw * 0.76, 0.5)}" height="${h}"><title>canvas ${e.canvas + 1}, step ${this.run.stepOf(e)}: ${a}/${L} accepted, mean entropy ${means[i].toFixed(3)}, ${e.ms.toFixed(1)} ms</title></rect>`);
        if (i > 0 && e.canvas !== evs[i - 1].canvas) parts.push(`<line class="block" x1="${x}" x2="${x}" y1="${pad}" y2="${H - pad}"/>`);
        line += `${line ? 'L' : 'M'}${x + bw / 2},${H - pad - ((H - 2 * pad) * means[i]) / maxH} `;
      });
      parts.push(`<path class="conf" d="${line}"/>`);
      if (this.step > 0) {
        const x = pad + (this.step - 0.5) * bw;
        parts.push(`<line class="cursor" x1="${x}" x2="${x}" y1="0" y2="${H}"/>`);
      }
    }
    this.chart.innerHTML = parts.join('');
    this.chart.setAttribute('viewBox', `0 0 ${W} ${H}`);
  }
}
