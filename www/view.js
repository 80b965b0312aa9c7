// The denoising view: one cell per canvas position, drawn at any step of a run (live or replayed
// with the scrubber), the per-step chart, and the selection of answer cells to remask.
// A run is its initial canvas plus the step events; the canvas at step s is the initial one
// with every commit of steps 1..s applied.

const SVG = 'http://www.w3.org/2000/svg';

export function confidenceClass(c) {
  return c < 0.3 ? 'lo' : c < 0.7 ? 'mid' : 'hi';
}

// How a token's text is shown in its cell: whitespace made visible.
export function cellText(piece) {
  if (piece === '') return '∅';
  if (/^\s+$/.test(piece)) return piece.replace(/\n/g, '⏎').replace(/\t/g, '⇥').replace(/ /g, '␣');
  return piece.replace(/\n/g, '⏎').replace(/\t/g, '⇥');
}

export class Run {
  // `start` is the engine's onStart canvas: {tokens, pieces, gen_start, mask, block_length, steps}.
  constructor(start) {
    this.start = start;
    const n = start.tokens.length;
    this.n = n;
    this.events = [];
    // Per position: the step that committed it (Infinity: masked so far; 0: given), its token,
    // text and confidence.
    this.when = new Float64Array(n).fill(Infinity);
    this.token = Uint32Array.from(start.tokens);
    this.piece = start.pieces.slice();
    this.conf = new Float32Array(n);
    for (let p = 0; p < n; p++) if (start.tokens[p] !== start.mask) this.when[p] = 0;
    this.result = null;
  }
  get genStart() { return this.start.gen_start; }
  get lastStep() { return this.events.length ? this.events[this.events.length - 1].step : 0; }
  add(ev) {
    this.events.push(ev);
    for (const c of ev.committed) {
      this.when[c.pos] = ev.step;
      this.token[c.pos] = c.token;
      this.piece[c.pos] = c.text;
      this.conf[c.pos] = c.confidence;
    }
  }
}

export class View {
  constructor({ grid, counter, chart, onSeek, onSelect }) {
    this.grid = grid;
    this.counter = counter;
    this.chart = chart;
    this.onSeek = onSeek;
    this.onSelect = onSelect;
    this.run = null;
    this.cells = [];
    this.step = 0;
    this.selected = new Set();
    this.selectable = false;
    // What was drawn, step by step (read by the browser tests and handy when debugging); with
    // `recordDom`, each frame also keeps every cell's class and text.
    this.drawn = [];
    this.recordDom = false;
    grid.addEventListener('click', (e) => this.click(e));
    let dragging = false;
    const seek = (e) => {
      if (!this.run || !this.run.events.length) return;
      const r = chart.getBoundingClientRect();
      const steps = this.run.lastStep;
      const s = Math.round(((e.clientX - r.left) / r.width) * steps + 0.5);
      this.onSeek(Math.max(0, Math.min(steps, s)));
    };
    chart.addEventListener('pointerdown', (e) => { dragging = true; chart.setPointerCapture(e.pointerId); seek(e); });
    chart.addEventListener('pointermove', (e) => dragging && seek(e));
    chart.addEventListener('pointerup', () => { dragging = false; });
  }

  // A new run: builds one cell per position.
  begin(run) {
    this.run = run;
    this.selected.clear();
    this.selectable = false;
    this.drawn = [];
    const { gen_start: g, block_length: bl } = run.start;
    const frag = document.createDocumentFragment();
    this.cells = [];
    for (let p = 0; p < run.n; p++) {
      const el = document.createElement('span');
      el.className = 'cell';
      el.dataset.pos = p;
      if (p >= g && bl > 0 && (p - g) % bl === 0) el.classList.add(p === g && g > 0 ? 'answer-start' : 'block-start');
      frag.append(el);
      this.cells.push(el);
    }
    this.grid.replaceChildren(frag);
    this.draw(0);
  }

  // DiffusionGemma's view (dgview.js) takes the grid: forget the run.
  detach() {
    this.run = null;
    this.selected.clear();
    this.selectable = false;
  }

  // Draws the canvas as it was after `step` (0: the initial canvas).
  draw(step) {
    const run = this.run;
    if (!run) return;
    this.step = step;
    let masked = 0;
    for (let p = 0; p < run.n; p++) {
      const el = this.cells[p];
      const w = run.when[p];
      let cls, text = '', title = '';
      if (w === 0) {
        cls = p < run.genStart ? 'given prompt' : 'given';
        text = cellText(run.piece[p]);
      } else if (w > step) {
        cls = 'masked';
        masked++;
      } else {
        const c = run.conf[p];
        cls = w === step ? `fresh ${confidenceClass(c)}` : 'done';
        text = cellText(run.piece[p]);
        title = `step ${w} · confidence ${c.toFixed(3)} · token ${run.token[p]}`;
      }
      if (/^[␣⏎⇥]+$/.test(text)) cls += ' ws';
      const keep = el.className.split(' ').filter((k) => k === 'block-start' || k === 'answer-start');
      if (this.selectable && p >= run.genStart && w !== Infinity && w <= step) keep.push('selectable');
      if (this.selected.has(p)) keep.push('selected');
      const next = ['cell', ...cls.split(' '), ...keep].join(' ');
      if (el.className !== next) el.className = next;
      if (el.textContent !== text) el.textContent = text;
      if (el.title !== title) el.title = title;
    }
    const total = run.start.steps;
    const ev = run.events.find((e) => e.step === step);
    this.counter.textContent = `step ${step} / ${total} · ${masked} masked${ev && ev.early_stop ? ' · rest is padding (early stop)' : ''}`;
    this.grid.dataset.step = step;
    const frame = { step, masked, tokens: Array.from(run.token, (t, p) => (run.when[p] > step ? -1 : t)).join(',') };
    if (this.recordDom) frame.dom = this.cells.map((c) => `${c.className}|${c.textContent}`).join('\n');
    this.drawn.push(frame);
    if (this.drawn.length > 4000) this.drawn.splice(0, 2000);
    this.drawChart();
  }

  drawChart() {
    const run = this.run;
    const svg = this.chart;
    const evs = run ? run.events : [];
    const W = 600, H = 110, pad = 6;
    const parts = [];
    if (evs.length) {
      // While a run is live the x axis spans every planned step; afterwards the steps taken.
      const n = run.result ? evs.length : Math.max(evs.length, run.start.steps);
      const bw = (W - 2 * pad) / n;
      const maxC = Math.max(1, ...evs.map((e) => e.committed.length));
      let line = '';
      evs.forEach((e, i) => {
        const x = pad + i * bw;
        const h = ((H - 2 * pad) * e.committed.length) / maxC;
        parts.push(`<rect class="bar${e.step === this.step ? ' now' : ''}" x="${x + bw * 0.12}" y="${H - pad - h}" width="${Math.max(bw * 0.76, 0.5)}" height="${h}"><title>step ${e.step}: ${e.committed.length} committed, mean confidence ${mean(e).toFixed(3)}, ${e.ms.toFixed(1)} ms</title></rect>`);
        if (i > 0 && e.block !== evs[i - 1].block) parts.push(`<line class="block" x1="${x}" x2="${x}" y1="${pad}" y2="${H - pad}"/>`);
        if (e.committed.length) line += `${line ? 'L' : 'M'}${x + bw / 2},${H - pad - (H - 2 * pad) * mean(e)} `;
      });
      if (line) parts.push(`<path class="conf" d="${line}"/>`);
      if (this.step > 0) {
        const x = pad + (Math.min(this.step, n) - 0.5) * bw;
        parts.push(`<line class="cursor" x1="${x}" x2="${x}" y1="0" y2="${H}"/>`);
      }
    }
    svg.innerHTML = parts.join('');
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  }

  setSelectable(on) {
    this.selectable = on;
    if (!on) this.selected.clear();
    if (this.run) this.draw(this.step);
  }

  // Clicking a committed answer cell selects its whole word (the run of tokens up to the next
  // one that starts with whitespace); with Alt or Shift, just that token.
  click(e) {
    const el = e.target.closest('.cell');
    if (!el || !this.selectable || !this.run) return;
    const p = Number(el.dataset.pos);
    if (!el.classList.contains('selectable')) return;
    const span = e.altKey || e.shiftKey ? [p] : this.wordAt(p);
    const on = !this.selected.has(p);
    for (const q of span) on ? this.selected.add(q) : this.selected.delete(q);
    this.draw(this.step);
    this.onSelect(this.selected.size);
  }

  wordAt(p) {
    const run = this.run;
    const piece = (q) => run.piece[q] || '';
    const isSpace = (q) => /^\s+$/.test(piece(q));
    if (isSpace(p)) return [p];
    const startsWord = (q) => /^\s/.test(piece(q)) || isSpace(q - 1);
    let a = p;
    while (a > run.genStart && !startsWord(a) && !isSpace(a - 1)) a--;
    let b = p;
    while (b + 1 < run.n && !startsWord(b + 1) && !isSpace(b + 1)) b++;
    const out = [];
    for (let q = a; q <= b; q++) out.push(q);
    return out;
  }
}

function mean(e) {
  return e.committed.length ? e.committed.reduce((s, c) => s + c.confidence, 0) / e.committed.length : 0;
}
